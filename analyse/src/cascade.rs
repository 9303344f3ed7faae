//! The cascade's first stage: a linear model over hashed word n-grams that lets clearly
//! harmless posts skip the transformer.
//!
//! It is trained by `vigie train` on the same fit split as the heads (for `danger`), and its
//! threshold is the highest one that keeps at least [`TARGET_RECALL`] of the `danger`
//! positives of the calibration split. It is switched on only when, on the held-out test
//! split, the `danger` recall it costs is below [`MAX_RECALL_LOSS`]; the model card records
//! both numbers. A post it stops is scored 0 for every category and its first-stage
//! probability for `danger`, which lies below the alert threshold.

use crate::baseline::words;
use crate::logistic::{Logistic, Sparse, TrainOptions};
use serde::{Deserialize, Serialize};

/// Share of `danger` positives of the calibration split the first stage must let through.
pub const TARGET_RECALL: f64 = 0.998;
/// Largest loss of `danger` recall on held-out posts for the cascade to be switched on.
pub const MAX_RECALL_LOSS: f64 = 0.01;

/// The first stage and whether it is in use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cascade {
    /// log2 of the number of hashed feature dimensions.
    pub bits: u32,
    /// The linear model over hashed unigrams and bigrams.
    pub linear: Logistic,
    /// Posts whose first-stage probability is below this skip the transformer.
    pub threshold: f32,
    /// Whether the classifier uses it (the held-out recall loss was below the limit).
    pub enabled: bool,
    /// Share of held-out posts it stopped.
    pub held_out_skipped: f64,
    /// `danger` recall it cost on held-out posts (share of positives it stopped).
    pub held_out_recall_loss: f64,
}

/// FNV-1a, 64 bits: a hash that never changes between Rust versions.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Hashed unigram and bigram counts of `text`, L2-normalised, in `2^bits` dimensions.
pub fn features(text: &str, bits: u32) -> Sparse {
    let w = words(text);
    let mask = (1u64 << bits) - 1;
    let mut counts: std::collections::BTreeMap<u32, f32> = Default::default();
    let unigrams = w.iter().map(|a| fnv1a(a.as_bytes()));
    let bigrams = w
        .windows(2)
        .map(|p| fnv1a(format!("{} {}", p[0], p[1]).as_bytes()));
    for h in unigrams.chain(bigrams) {
        *counts.entry((h & mask) as u32).or_default() += 1.0;
    }
    let norm = counts
        .values()
        .map(|c| c * c)
        .sum::<f32>()
        .sqrt()
        .max(1e-12);
    counts.into_iter().map(|(i, c)| (i, c / norm)).collect()
}

impl Cascade {
    /// Feature dimensions: 2^18.
    pub const BITS: u32 = 18;

    /// Trains the first stage on `fit` (texts, 0/1 targets), sets its threshold on
    /// `calibrate`, and measures it on `test`.
    pub fn train(
        fit: (&[&str], &[f32]),
        calibrate: (&[&str], &[f32]),
        test: (&[&str], &[f32]),
    ) -> Option<Cascade> {
        let xs: Vec<Sparse> = fit.0.iter().map(|t| features(t, Self::BITS)).collect();
        let options = TrainOptions {
            epochs: 100,
            ..TrainOptions::default()
        };
        let linear = Logistic::train(&xs, fit.1, 1 << Self::BITS, true, options);
        let prob = |t: &str| linear.prob(&features(t, Self::BITS));
        let mut positives: Vec<f32> = calibrate
            .0
            .iter()
            .zip(calibrate.1)
            .filter(|(_, &y)| y > 0.5)
            .map(|(t, _)| prob(t))
            .collect();
        if positives.is_empty() || test.0.is_empty() {
            return None;
        }
        positives.sort_by(f32::total_cmp);
        let allowed = ((1.0 - TARGET_RECALL) * positives.len() as f64).floor() as usize;
        let threshold = positives[allowed.min(positives.len() - 1)];
        let stopped: Vec<bool> = test.0.iter().map(|t| prob(t) < threshold).collect();
        let test_pos = test.1.iter().filter(|&&y| y > 0.5).count().max(1);
        let lost = stopped
            .iter()
            .zip(test.1)
            .filter(|(&s, &y)| s && y > 0.5)
            .count();
        let loss = lost as f64 / test_pos as f64;
        Some(Cascade {
            bits: Self::BITS,
            linear,
            threshold,
            enabled: loss < MAX_RECALL_LOSS,
            held_out_skipped: stopped.iter().filter(|&&s| s).count() as f64 / stopped.len() as f64,
            held_out_recall_loss: loss,
        })
    }

    /// The first-stage probability of `text`.
    pub fn probability(&self, text: &str) -> f32 {
        self.linear.prob(&features(text, self.bits))
    }

    /// Whether `text` goes on to the transformer.
    pub fn passes(&self, text: &str) -> bool {
        self.probability(text) >= self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_features_are_stable_and_normalised() {
        let a = features("Fire at the port, fire everywhere", Cascade::BITS);
        assert_eq!(
            a,
            features("fire AT the port  fire everywhere", Cascade::BITS)
        );
        let norm: f32 = a.iter().map(|(_, x)| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c, "FNV-1a test vector");
    }

    #[test]
    fn keeps_the_positives_and_stops_the_obvious_negatives() {
        let danger = [
            "huge fire downtown",
            "explosion at the plant",
            "flood in the streets",
        ];
        let calm = ["lovely coffee", "new album out", "cat asleep on the sofa"];
        let mut texts = Vec::new();
        let mut ys = Vec::new();
        for i in 0..60 {
            texts.push(danger[i % 3]);
            ys.push(1.0);
            texts.push(calm[i % 3]);
            ys.push(0.0);
        }
        let c = Cascade::train((&texts, &ys), (&texts, &ys), (&texts, &ys)).unwrap();
        assert!(danger.iter().all(|t| c.passes(t)));
        assert!(calm.iter().all(|t| !c.passes(t)));
        assert_eq!(c.held_out_recall_loss, 0.0);
        assert!((c.held_out_skipped - 0.5).abs() < 1e-9);
        assert!(c.enabled);
    }
}
