//! `vigie experiment finetune`: beyond frozen embeddings, measured. Leave one crisis out, as
//! [`super::loco`], comparing on the same rotations:
//!
//! - **frozen**: the shipped kind of head, a logistic regression on the encoder's embeddings as
//!   they are, Platt-calibrated;
//! - **fine-tuned**: the encoder's top layers trained together with a `danger` head, by
//!   gradient descent through them (tch autograd, Adam), then Platt-calibrated the same way.
//!
//! The layers below the trained ones do not change, so each post's hidden states entering them
//! are computed once (the `f32` runtime: gradients need f32 weights) and kept in memory; each
//! rotation then starts again from the pretrained top layers and trains on the other crises'
//! fit split (the same hash of the post id as [`crate::training`]), calibrates on their
//! calibration split, and scores the held-out crisis. Both methods read the embeddings
//! uncentred, so that the comparison is about the layers alone, or both centred per language
//! ([`Options::center`]).

use super::loco::{self, Fold, Loco};
use super::{ExperimentError, Settings};
use crate::bert::{rows, Bert, Layer};
use crate::centring::{self, Centring, StreamMeans};
use crate::dataset::LabelledPost;
use crate::logistic::{Logistic, Platt, TrainOptions};
use crate::training::{part, Part};
use crate::{Runtime, Taxonomy};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

/// How the top layers are trained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Options {
    /// How many of the encoder's last layers are trained (the others stay as they are).
    pub layers: usize,
    /// Passes over the fit split.
    pub epochs: usize,
    /// Adam's learning rate for the layers.
    pub lr: f64,
    /// Adam's learning rate for the head (which starts from the frozen logistic head).
    pub head_lr: f64,
    /// Posts per step.
    pub batch: usize,
    /// Centre both methods' embeddings per language, as the shipped heads do: the means are
    /// the training posts' frozen embeddings' (held fixed while the layers train), and the
    /// held-out crisis is read as a stream ([`crate::centring`]).
    pub center: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            layers: 1,
            epochs: 2,
            lr: 2e-5,
            head_lr: 1e-3,
            batch: 32,
            center: false,
        }
    }
}

/// The two methods' leave-one-crisis-out results, rotation by rotation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// How the layers were trained.
    pub options: Options,
    /// The logistic head on frozen embeddings.
    pub frozen: Loco,
    /// The fine-tuned top layers and head.
    pub finetuned: Loco,
}

impl Comparison {
    /// Both Markdown tables, each under a title.
    pub fn markdown(&self) -> String {
        let centred = if self.options.center {
            ", centred per language"
        } else {
            ""
        };
        format!(
            "## Frozen embeddings, logistic head{centred}\n\n{}\n## Top {} layer(s) \
             fine-tuned{centred} ({} epochs, lr {:e}, head lr {:e}, batch {})\n\n{}",
            self.frozen.markdown(),
            self.options.layers,
            self.options.epochs,
            self.options.lr,
            self.options.head_lr,
            self.options.batch,
            self.finetuned.markdown()
        )
    }

    /// Both results as pretty JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// A post's hidden states entering the trained layers: `(pieces, hidden)`.
struct Hidden(Tensor);

/// Runs the comparison on the crisis files of `dirs` with the lexicon file `lexicon`.
pub fn run(
    settings: &Settings,
    dirs: &[PathBuf],
    lexicon: &Path,
    options: &Options,
) -> Result<Comparison, ExperimentError> {
    let (datasets, lexicon) = loco::crises(dirs, lexicon)?;
    let encoder = crate::experiment::EncoderSettings {
        runtime: Runtime::F32,
        ..settings.encoder.clone()
    }
    .load()?;
    let bert = encoder.bert().ok_or_else(|| {
        ExperimentError::Input("fine-tuning needs Vigie's own forward pass".into())
    })?;
    let below = bert.depth().saturating_sub(options.layers);
    let texts: Vec<&str> = datasets
        .iter()
        .flat_map(|d| d.posts.iter().map(|p| p.text.as_str()))
        .collect();
    let bar = settings.bar(texts.len(), "hidden states");
    let mut hidden: Vec<Option<Hidden>> = (0..texts.len()).map(|_| None).collect();
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
    for chunk in order.chunks(encoder.batch_size()) {
        let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        let (ids, mask) = encoder.piece_tensors(&batch);
        let h = bert.hidden(&ids, &mask, below);
        let lengths = Vec::<i64>::try_from(mask.sum_dim_intlist(1, false, Kind::Int64))
            .map_err(|e| ExperimentError::Input(format!("piece counts: {e}")))?;
        for (row, (&i, &n)) in chunk.iter().zip(&lengths).enumerate() {
            hidden[i] = Some(Hidden(h.get(row as i64).narrow(0, 0, n).copy()));
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    tracing::info!(
        posts = texts.len(),
        layers_below = below,
        "hidden states kept"
    );
    let hidden: Vec<Hidden> = hidden.into_iter().flatten().collect();
    if hidden.len() != texts.len() {
        return Err(ExperimentError::Input("a post has no hidden states".into()));
    }
    // The frozen embeddings: the pretrained top layers over the same hidden states.
    let frozen_top = bert
        .trainable_top(&nn::VarStore::new(Device::Cpu).root(), options.layers)
        .map_err(ExperimentError::Input)?;
    let mut frozen: Vec<Vec<f32>> = Vec::with_capacity(hidden.len());
    for chunk in hidden.chunks(64) {
        let v = tch::no_grad(|| embed(bert, &frozen_top, chunk));
        frozen.extend(rows(&v).map_err(tensor_error)?);
    }
    let posts: Vec<&LabelledPost> = datasets.iter().flat_map(|d| &d.posts).collect();
    let info = super::encoder_info(&encoder);
    let threshold = settings.alert_threshold;
    let bar = settings.bar(2 * datasets.len(), "rotations");
    let frozen_loco = loco::rotate(
        &datasets,
        &frozen,
        &lexicon,
        info,
        threshold,
        options.center,
        || bar.inc(1),
    )?;
    let finetuned = loco::rotate_with(
        &datasets,
        &lexicon,
        threshold,
        |fold: &Fold, langs: &[String]| {
            let started = std::time::Instant::now();
            let scores = finetune(bert, &hidden, &frozen, &posts, langs, fold, options)?;
            tracing::info!(
                held_out = fold.held_out.len(),
                seconds = started.elapsed().as_secs_f32(),
                "rotation fine-tuned"
            );
            Ok(scores)
        },
        || bar.inc(1),
    )?;
    bar.finish_and_clear();
    Ok(Comparison {
        options: options.clone(),
        frozen: frozen_loco,
        finetuned,
    })
}

/// The unit-length pooled outputs of `layers` over a batch of posts' hidden states.
fn embed(bert: &Bert, layers: &[Layer], posts: &[Hidden]) -> Tensor {
    let (x, mask) = pad(posts);
    let pooled = bert.pooled_through(layers, x, &mask);
    let norm = pooled.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
    pooled / norm
}

/// The posts' hidden states padded to the longest, and the mask of their pieces.
fn pad(posts: &[Hidden]) -> (Tensor, Tensor) {
    let seqs: Vec<&Tensor> = posts.iter().map(|h| &h.0).collect();
    let x = Tensor::pad_sequence(&seqs, true, 0.0);
    let length = x.size()[1];
    let lengths: Vec<i64> = posts.iter().map(|h| h.0.size()[0]).collect();
    let mask = Tensor::arange(length, (Kind::Int64, Device::Cpu))
        .unsqueeze(0)
        .lt_tensor(&Tensor::from_slice(&lengths).unsqueeze(1))
        .to_kind(Kind::Int64);
    (x, mask)
}

/// A libtorch error of the experiment, in its words.
fn tensor_error(e: tch::TchError) -> ExperimentError {
    ExperimentError::Input(format!("fine-tuning: {e}"))
}

/// One rotation: trains copies of the top layers and a head on the fit split of `fold`'s
/// training posts, calibrates on their calibration split, and returns the held-out posts'
/// calibrated `danger` probabilities.
fn finetune(
    bert: &Bert,
    hidden: &[Hidden],
    frozen: &[Vec<f32>],
    posts: &[&LabelledPost],
    langs: &[String],
    fold: &Fold,
    options: &Options,
) -> Result<Vec<f32>, ExperimentError> {
    let danger = |i: usize| posts[i].labels.get(Taxonomy::DANGER).map(|&y| f32::from(y));
    let split = |which: Part| -> Vec<usize> {
        fold.train
            .iter()
            .copied()
            .filter(|&i| danger(i).is_some() && part(&posts[i].id) == which)
            .collect()
    };
    let (fit, calibrate) = (split(Part::Fit), split(Part::Calibrate));
    let y = |rows: &[usize]| -> Vec<f32> { rows.iter().filter_map(|&i| danger(i)).collect() };
    // Each post's centre (rows of the training and held-out posts), when centring.
    let centres: Option<Vec<Vec<f32>>> = options.center.then(|| {
        let y: Vec<Option<bool>> = fold
            .train
            .iter()
            .map(|&i| danger(i).map(|t| t > 0.5))
            .collect();
        let train_langs: Vec<String> = fold.train.iter().map(|&i| langs[i].clone()).collect();
        let train_x: Vec<Vec<f32>> = fold.train.iter().map(|&i| frozen[i].clone()).collect();
        let c = Centring::fit(&train_langs, &y, &train_x);
        let mut centre = vec![Vec::new(); posts.len()];
        for &i in &fold.train {
            centre[i] = c.training_mean(&langs[i]).to_vec();
        }
        let mut stream = StreamMeans::default();
        for i in fold.held_out.clone() {
            centre[i] = c.stream_mean(&langs[i], &frozen[i], &mut stream, true);
        }
        centre
    });
    let centred = |i: usize, x: &[f32]| -> Vec<f32> {
        match &centres {
            Some(c) => centring::subtract_and_normalise(x, &c[i]),
            None => x.to_vec(),
        }
    };
    // The fine-tuned vectors of posts `rows`, centred as the frozen ones are.
    let vectors = |layers: &[Layer], rows: &[usize]| -> Tensor {
        let batch: Vec<Hidden> = rows
            .iter()
            .map(|&i| Hidden(hidden[i].0.shallow_clone()))
            .collect();
        let v = embed(bert, layers, &batch);
        match &centres {
            Some(c) => {
                let means: Vec<f32> = rows.iter().flat_map(|&i| c[i].iter().copied()).collect();
                let v = v - Tensor::from_slice(&means).view([rows.len() as i64, -1]);
                let norm = v.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
                v / norm
            }
            None => v,
        }
    };
    // The head starts where the frozen logistic head ends.
    let fit_x: Vec<Vec<f32>> = fit.iter().map(|&i| centred(i, &frozen[i])).collect();
    let start = Logistic::train(
        &fit_x,
        &y(&fit),
        frozen.first().map_or(0, Vec::len),
        true,
        TrainOptions::default(),
    );
    tch::manual_seed(17);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let layers = bert
        .trainable_top(&root.sub("top"), options.layers)
        .map_err(ExperimentError::Input)?;
    let head = root.sub("head").set_group(1);
    let w = head.var_copy("w", &Tensor::from_slice(&start.weights).unsqueeze(1));
    let b = head.var_copy("b", &Tensor::from_slice(&[start.bias]));
    let mut adam = nn::Adam::default()
        .build(&vs, options.lr)
        .map_err(tensor_error)?;
    adam.set_lr_group(1, options.head_lr);
    let fit_y = y(&fit);
    let positives = fit_y.iter().filter(|&&t| t > 0.5).count().max(1) as f64;
    let pos_weight = Tensor::from_slice(&[((fit_y.len() as f64 - positives) / positives) as f32]);
    // Batches of posts of similar length, in a shuffled order each epoch.
    let mut by_length = fit.clone();
    by_length.sort_by_key(|&i| hidden[i].0.size()[0]);
    let batches: Vec<&[usize]> = by_length.chunks(options.batch.max(1)).collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..options.epochs {
        let mut order: Vec<usize> = (0..batches.len()).collect();
        for k in (1..order.len()).rev() {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            order.swap(k, (seed >> 33) as usize % (k + 1));
        }
        for &k in &order {
            let target = Tensor::from_slice(&y(batches[k]));
            let logits = (vectors(&layers, batches[k]).matmul(&w) + &b).squeeze_dim(1);
            let loss = logits.binary_cross_entropy_with_logits::<&Tensor>(
                &target,
                None,
                Some(&pos_weight),
                Reduction::Mean,
            );
            adam.backward_step(&loss);
        }
    }
    let logits = |rows: &[usize]| -> Result<Vec<f32>, ExperimentError> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(64) {
            let l = tch::no_grad(|| (vectors(&layers, chunk).matmul(&w) + &b).squeeze_dim(1));
            out.extend(Vec::<f32>::try_from(l).map_err(tensor_error)?);
        }
        Ok(out)
    };
    let platt = Platt::fit(&logits(&calibrate)?, &y(&calibrate));
    let held: Vec<usize> = fold.held_out.clone().collect();
    Ok(logits(&held)?.into_iter().map(|l| platt.apply(l)).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn posts_of_different_lengths_are_padded_and_masked() {
        let post = |n: i64| Hidden(Tensor::ones([n, 4], (Kind::Float, Device::Cpu)));
        let (x, mask) = pad(&[post(3), post(1), post(2)]);
        assert_eq!(x.size(), [3, 3, 4]);
        let mask = Vec::<i64>::try_from(mask.flatten(0, -1)).unwrap();
        assert_eq!(mask, [1, 1, 1, 1, 0, 0, 1, 1, 0]);
        // Padding is zeros: each post's sum is its own pieces'.
        let sums =
            Vec::<f32>::try_from(x.sum_dim_intlist([1, 2].as_slice(), false, Kind::Float)).unwrap();
        assert_eq!(sums, [12.0, 4.0, 8.0]);
        assert_eq!(
            rows(&Tensor::from_slice(&[1f32, 2., 3., 4.]).view([2, 2])).unwrap(),
            [vec![1.0, 2.0], vec![3.0, 4.0]]
        );
    }
}
