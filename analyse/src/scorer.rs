//! Scorers: from texts to a score in [0, 1] per label.

use crate::encoder::cosine;
use crate::{AnalyseError, Encoder, Taxonomy};
use std::collections::BTreeMap;

/// Scores per label of one text.
pub type Scores = BTreeMap<String, f32>;

/// Something that scores texts per label.
pub trait Scorer: Send {
    /// Id of the model card that describes this scorer.
    fn model_id(&self) -> &str;
    /// Scores non-empty texts, one map of label -> score in [0, 1] per text, in order.
    fn score(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError>;
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

impl<S: Scorer + ?Sized> Scorer for Box<S> {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }

    fn score(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError> {
        (**self).score(texts)
    }
}
