//! Logistic regression, trained by full-batch gradient descent (Adam) with L2 regularisation,
//! over dense vectors (embeddings) or sparse ones (TF-IDF); and Platt scaling.
//!
//! Training is deterministic: same data, same weights.

use serde::{Deserialize, Serialize};

/// A feature vector the trainer can read.
pub trait Features {
    /// `w · x`.
    fn dot(&self, w: &[f32]) -> f32;
    /// `grad += alpha * x`.
    fn add_to(&self, alpha: f32, grad: &mut [f32]);
}

impl Features for [f32] {
    fn dot(&self, w: &[f32]) -> f32 {
        self.iter().zip(w).map(|(a, b)| a * b).sum()
    }
    fn add_to(&self, alpha: f32, grad: &mut [f32]) {
        for (g, x) in grad.iter_mut().zip(self) {
            *g += alpha * x;
        }
    }
}

impl Features for Vec<f32> {
    fn dot(&self, w: &[f32]) -> f32 {
        self.as_slice().dot(w)
    }
    fn add_to(&self, alpha: f32, grad: &mut [f32]) {
        self.as_slice().add_to(alpha, grad)
    }
}

/// A sparse vector: (dimension, value) pairs.
pub type Sparse = Vec<(u32, f32)>;

impl Features for Sparse {
    fn dot(&self, w: &[f32]) -> f32 {
        self.iter().map(|&(i, v)| w[i as usize] * v).sum()
    }
    fn add_to(&self, alpha: f32, grad: &mut [f32]) {
        for &(i, v) in self {
            grad[i as usize] += alpha * v;
        }
    }
}

/// How to train.
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    /// L2 penalty on the weights (not the bias), per example.
    pub l2: f32,
    /// Full passes over the data.
    pub epochs: usize,
    /// Adam's step size.
    pub learning_rate: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            l2: 1e-4,
            epochs: 300,
            learning_rate: 0.05,
        }
    }
}

/// A linear model `sigmoid(w · x + b)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    /// Weights, one per feature dimension.
    pub weights: Vec<f32>,
    /// Bias.
    pub bias: f32,
}

/// The logistic function.
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl Logistic {
    /// The logit `w · x + b`.
    pub fn logit<F: Features + ?Sized>(&self, x: &F) -> f32 {
        x.dot(&self.weights) + self.bias
    }

    /// The probability `sigmoid(w · x + b)`.
    pub fn prob<F: Features + ?Sized>(&self, x: &F) -> f32 {
        sigmoid(self.logit(x))
    }

    /// Fits `dim` weights to examples `xs` with targets `ys` (0 or 1). Classes are weighted so
    /// that each contributes equally when `balanced` is set.
    pub fn train<F: Features>(
        xs: &[F],
        ys: &[f32],
        dim: usize,
        balanced: bool,
        options: TrainOptions,
    ) -> Logistic {
        assert_eq!(xs.len(), ys.len(), "one target per example");
        let n = xs.len().max(1) as f32;
        let positives = ys.iter().filter(|&&y| y > 0.5).count() as f32;
        let (w_pos, w_neg) = if balanced && positives > 0.0 && positives < n {
            (n / (2.0 * positives), n / (2.0 * (n - positives)))
        } else {
            (1.0, 1.0)
        };
        let mut model = Logistic {
            weights: vec![0.0; dim],
            bias: 0.0,
        };
        let (mut m, mut v) = (vec![0f32; dim + 1], vec![0f32; dim + 1]);
        let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let mut grad = vec![0f32; dim + 1];
        for epoch in 1..=options.epochs {
            grad.iter_mut().for_each(|g| *g = 0.0);
            for (x, &y) in xs.iter().zip(ys) {
                let weight = if y > 0.5 { w_pos } else { w_neg };
                let err = weight * (model.prob(x) - y) / n;
                x.add_to(err, &mut grad[..dim]);
                grad[dim] += err;
            }
            for (g, w) in grad[..dim].iter_mut().zip(&model.weights) {
                *g += options.l2 * w;
            }
            let (c1, c2) = (
                1.0 - beta1.powi(epoch as i32),
                1.0 - beta2.powi(epoch as i32),
            );
            for i in 0..=dim {
                m[i] = beta1 * m[i] + (1.0 - beta1) * grad[i];
                v[i] = beta2 * v[i] + (1.0 - beta2) * grad[i] * grad[i];
                let step = options.learning_rate * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
                if i < dim {
                    model.weights[i] -= step;
                } else {
                    model.bias -= step;
                }
            }
        }
        model
    }
}

/// Platt scaling: `p = sigmoid(a * logit + b)`, fitted on held-out logits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    /// Slope on the raw logit.
    pub a: f32,
    /// Offset.
    pub b: f32,
}

impl Platt {
    /// No rescaling.
    pub const IDENTITY: Platt = Platt { a: 1.0, b: 0.0 };

    /// Fits `a` and `b` so that `sigmoid(a * logit + b)` matches the held-out targets.
    pub fn fit(logits: &[f32], ys: &[f32]) -> Platt {
        let xs: Vec<Vec<f32>> = logits.iter().map(|&l| vec![l]).collect();
        let options = TrainOptions {
            l2: 0.0,
            epochs: 500,
            learning_rate: 0.05,
        };
        let m = Logistic::train(&xs, ys, 1, false, options);
        Platt {
            a: m.weights[0],
            b: m.bias,
        }
    }

    /// The calibrated probability of `logit`.
    pub fn apply(&self, logit: f32) -> f32 {
        sigmoid(self.a * logit + self.b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_rule_densely_and_sparsely() {
        // y = 1 when the first feature exceeds the second.
        let xs: Vec<Vec<f32>> = (0..200)
            .map(|i| {
                let a = ((i * 37) % 100) as f32 / 100.0;
                let b = ((i * 61) % 100) as f32 / 100.0;
                vec![a, b]
            })
            .collect();
        let ys: Vec<f32> = xs.iter().map(|x| f32::from(x[0] > x[1])).collect();
        let m = Logistic::train(&xs, &ys, 2, false, TrainOptions::default());
        let correct = xs
            .iter()
            .zip(&ys)
            .filter(|(x, &y)| (m.prob(*x) > 0.5) == (y > 0.5))
            .count();
        assert!(correct >= 190, "{correct}/200");
        assert!(m.weights[0] > 0.0 && m.weights[1] < 0.0);

        let sparse: Vec<Sparse> = xs.iter().map(|x| vec![(0, x[0]), (1, x[1])]).collect();
        let s = Logistic::train(&sparse, &ys, 2, false, TrainOptions::default());
        for (a, b) in s.weights.iter().zip(&m.weights) {
            assert!((a - b).abs() < 1e-4, "sparse and dense agree");
        }
    }

    #[test]
    fn platt_recovers_a_known_scaling() {
        // Targets drawn (deterministically) with p = sigmoid(2 * logit - 1).
        let mut logits = Vec::new();
        let mut ys = Vec::new();
        for i in 0..4000 {
            let l = (i % 200) as f32 / 50.0 - 2.0;
            let p = sigmoid(2.0 * l - 1.0);
            let u = ((i as u64 * 2654435761) % 1000) as f32 / 1000.0;
            logits.push(l);
            ys.push(f32::from(u < p));
        }
        let platt = Platt::fit(&logits, &ys);
        assert!((platt.a - 2.0).abs() < 0.3, "{platt:?}");
        assert!((platt.b + 1.0).abs() < 0.3, "{platt:?}");
    }
}
