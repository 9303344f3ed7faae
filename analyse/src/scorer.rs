//! Scorers: from texts to a score in [0, 1] per label, and two test doubles ([`NoopScorer`],
//! [`SlowScorer`]) for the delivery tests and benchmarks that must not depend on the model.

use crate::encoder::cosine;
use crate::{AnalyseError, Encoder, Taxonomy};
use std::collections::BTreeMap;
use std::time::Duration;

/// Scores per label of one text.
pub type Scores = BTreeMap<String, f32>;

/// Something that scores texts per label.
pub trait Scorer: Send {
    /// Id of the model card that describes this scorer.
    fn model_id(&self) -> &str;
    /// What runs its encoder, when it has one ([`crate::Runtime`]'s name).
    fn runtime(&self) -> Option<&'static str> {
        None
    }
    /// Scores non-empty texts, one map of label -> score in [0, 1] per text, in order.
    fn score(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError>;
    /// Scores texts made from a post (occlusion's variants) as [`Scorer::score`] does, except
    /// that a scorer that learns from its stream (the [`crate::Classifier`]'s language means)
    /// does not count them as posts.
    fn score_variants(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError> {
        self.score(texts)
    }
}

/// The first scorer: similarity to the taxonomy's example posts.
///
/// A post's score for a category is `sigmoid(SLOPE * (s - CENTRE))`, where `s` is its highest
/// cosine similarity to one of the category's examples; `danger` is the highest category score.
/// The scores rank posts but are not calibrated probabilities.
pub struct PrototypeScorer {
    encoder: Encoder,
    prototypes: Vec<(String, Vec<Vec<f32>>)>,
    model_id: String,
}

impl PrototypeScorer {
    /// Similarity at which a score is 0.5.
    pub const CENTRE: f32 = 0.45;
    /// Steepness of the similarity-to-score curve.
    pub const SLOPE: f32 = 12.0;

    /// Embeds the examples of every category of `taxonomy`.
    pub fn new(encoder: Encoder, taxonomy: &Taxonomy) -> Result<Self, AnalyseError> {
        let mut identity = encoder.weights_sha256().to_string();
        let mut prototypes = Vec::new();
        for category in &taxonomy.categories {
            let examples: Vec<&str> = category.examples().collect();
            for e in &examples {
                identity.push_str(&category.name);
                identity.push_str(e);
            }
            prototypes.push((category.name.clone(), encoder.encode(&examples)?));
        }
        let model_id = format!(
            "prototype-{}",
            &crate::sha256_hex(identity.as_bytes())[..12]
        );
        Ok(PrototypeScorer {
            encoder,
            prototypes,
            model_id,
        })
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Scorer for PrototypeScorer {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn runtime(&self) -> Option<&'static str> {
        Some(self.encoder.runtime().as_str())
    }

    fn score(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError> {
        let vectors = self.encoder.encode(texts)?;
        Ok(vectors
            .iter()
            .map(|v| {
                let mut scores = Scores::new();
                let mut danger = 0f32;
                for (name, examples) in &self.prototypes {
                    let best = examples
                        .iter()
                        .map(|e| cosine(v, e))
                        .fold(f32::MIN, f32::max);
                    let score = sigmoid(Self::SLOPE * (best - Self::CENTRE));
                    danger = danger.max(score);
                    scores.insert(name.clone(), score);
                }
                scores.insert(Taxonomy::DANGER.to_string(), danger);
                scores
            })
            .collect())
    }
}

/// Every text `danger` `value`, one map per text.
fn constant(texts: &[&str], value: f32) -> Vec<Scores> {
    texts
        .iter()
        .map(|_| Scores::from([(Taxonomy::DANGER.to_string(), value)]))
        .collect()
}

/// A test double that does no work: model id `noop`, every text gets `danger` 0.
///
/// For delivery tests and benchmarks of the stages around the scorer (`vigie analyse --scorer
/// noop`, `vigie bench pipeline`), where the model would only add time.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopScorer;

impl NoopScorer {
    /// The model id it records.
    pub const MODEL_ID: &'static str = "noop";
}

impl Scorer for NoopScorer {
    fn model_id(&self) -> &str {
        Self::MODEL_ID
    }

    fn score(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError> {
        Ok(constant(texts, 0.0))
    }
}

/// A test double slower than the broker: sleeps `per_call` on every call (one batch), then
/// gives every text `danger` 0.1; model id `slow-test-scorer`.
///
/// For delivery tests of backpressure and benchmarks where the scorer is the bottleneck.
#[derive(Debug, Clone, Copy)]
pub struct SlowScorer {
    /// How long each call to [`Scorer::score`] sleeps, whatever the batch's size.
    pub per_call: Duration,
}

impl SlowScorer {
    /// The model id it records.
    pub const MODEL_ID: &'static str = "slow-test-scorer";
    /// The `danger` score of every text.
    pub const DANGER: f32 = 0.1;

    /// A scorer that sleeps `per_call` per batch.
    pub fn new(per_call: Duration) -> Self {
        SlowScorer { per_call }
    }
}

impl Scorer for SlowScorer {
    fn model_id(&self) -> &str {
        Self::MODEL_ID
    }

    fn score(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError> {
        std::thread::sleep(self.per_call);
        Ok(constant(texts, Self::DANGER))
    }
}

impl<S: Scorer + ?Sized> Scorer for Box<S> {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }

    fn runtime(&self) -> Option<&'static str> {
        (**self).runtime()
    }

    fn score(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError> {
        (**self).score(texts)
    }

    fn score_variants(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError> {
        (**self).score_variants(texts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_noop_scorer_gives_danger_zero_to_every_text() {
        let scores = NoopScorer.score(&["a", "b"]).unwrap();
        assert_eq!(NoopScorer.model_id(), "noop");
        assert_eq!(scores, vec![Scores::from([("danger".to_string(), 0.0)]); 2]);
    }

    #[test]
    fn the_slow_scorer_sleeps_once_per_batch_and_scores_one_tenth() {
        let slow = SlowScorer::new(Duration::from_millis(30));
        let started = Instant::now();
        let scores = slow.score(&["a", "b", "c"]).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(slow.model_id(), "slow-test-scorer");
        assert_eq!(scores, vec![Scores::from([("danger".to_string(), 0.1)]); 3]);
    }
}
