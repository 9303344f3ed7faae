//! The trained classifier: logistic-regression heads over sentence embeddings, and its card.

use crate::cascade::Cascade;
use crate::centring::{self, Centring, StreamMeans};
use crate::logistic::{Logistic, Platt};
use crate::metrics::{Bin, LabelMetrics};
use crate::scorer::Scores;
use crate::{AnalyseError, Encoder, Scorer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

/// The encoder the heads were trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderInfo {
    /// Model name, e.g. `sentence-transformers/all-MiniLM-L6-v2`.
    pub name: String,
    /// SHA-256 of its weights file.
    pub weights_sha256: String,
}

/// One label's head: a linear model on the embedding, then Platt scaling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    /// The linear model.
    pub linear: Logistic,
    /// The calibration of its logit.
    pub platt: Platt,
}

impl Head {
    /// The calibrated probability for embedding `x`.
    pub fn score(&self, x: &[f32]) -> f32 {
        self.platt.apply(self.linear.logit(x))
    }
}

/// The trained heads: the file `vigie train` writes as `heads.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heads {
    /// Format version of this file.
    pub version: u32,
    /// The encoder the heads expect.
    pub encoder: EncoderInfo,
    /// Label name -> head.
    pub labels: BTreeMap<String, Head>,
    /// The cascade's first stage, when one was trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade: Option<Cascade>,
    /// The language means the heads' inputs are centred on, when they were trained so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centring: Option<Centring>,
}

impl Heads {
    /// The current format version (2: the heads may read centred embeddings, `centring`).
    pub const VERSION: u32 = 2;

    /// Reads a heads file.
    pub fn load(path: &Path) -> Result<Self, AnalyseError> {
        read_json(path)
    }

    /// What makes these heads unusable on embeddings of `dim` dimensions: a head's weights or
    /// a language mean of another length (a hand-edited or truncated file would otherwise
    /// score on part of the vector, silently).
    pub fn check(&self, dim: usize) -> Result<(), String> {
        for (label, head) in &self.labels {
            if head.linear.weights.len() != dim {
                return Err(format!(
                    "head `{label}` has {} weights for {dim}-dimensional embeddings",
                    head.linear.weights.len()
                ));
            }
        }
        if let Some(c) = &self.centring {
            let means = c.languages.iter().map(|(l, m)| (l.as_str(), &m.mean));
            for (lang, mean) in std::iter::once(("overall", &c.overall)).chain(means) {
                if mean.len() != dim {
                    return Err(format!(
                        "the {lang} mean has {} values for {dim}-dimensional embeddings",
                        mean.len()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A training file named in a model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingFile {
    /// Path as given to `vigie train`.
    pub path: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Posts read from it.
    pub posts: usize,
    /// Labels of the file that training ignored (`vigie train --weak`: `danger`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_labels: Vec<String>,
}

/// What a trained model is, where it came from and how well it did (`model-card.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// The id every score records: `heads-` + the first 12 hex digits of the heads' SHA-256.
    pub id: String,
    /// The sentence encoder.
    pub encoder: EncoderInfo,
    /// Format version of the heads file.
    pub heads_version: u32,
    /// SHA-256 of `heads.json`.
    pub heads_sha256: String,
    /// When the heads were trained (RFC 3339).
    pub trained_at: String,
    /// The labelled files trained on.
    pub training_files: Vec<TrainingFile>,
    /// The taxonomy file and its SHA-256.
    pub taxonomy: TrainingFile,
    /// How labels were derived from the files, how data was split, and known limits.
    pub notes: Vec<String>,
    /// How long posts are handled.
    pub truncation: String,
    /// Metrics per label on the held-out test split, at the default threshold.
    pub metrics: BTreeMap<String, LabelMetrics>,
    /// Reliability table of `danger` on the held-out test split.
    pub reliability: Vec<Bin>,
}

impl ModelCard {
    /// The model id of heads whose file hashes to `heads_sha256`.
    pub fn id_for(heads_sha256: &str) -> String {
        format!("heads-{}", &heads_sha256[..12])
    }

    /// Reads a model card.
    pub fn load(path: &Path) -> Result<Self, AnalyseError> {
        read_json(path)
    }
}

/// Reads the JSON file `path` as a `T`; a missing file or malformed JSON names the file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, AnalyseError> {
    let bytes = std::fs::read(path).map_err(|source| AnalyseError::ModelFile {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| AnalyseError::Data {
        location: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The default scorer: the encoder and the trained heads.
pub struct Classifier {
    encoder: Encoder,
    heads: Heads,
    id: String,
    use_cascade: bool,
    /// The running means of the stream's languages the heads were not trained on.
    stream: Mutex<StreamMeans>,
}

impl Classifier {
    /// Loads `heads.json` from `dir`, checks that it was trained on `encoder`'s weights, and
    /// takes the model id from the hash of the file.
    pub fn load(encoder: Encoder, dir: &Path) -> Result<Self, AnalyseError> {
        let path = dir.join("heads.json");
        let bytes = std::fs::read(&path).map_err(|source| AnalyseError::ModelFile {
            path: path.clone(),
            source,
        })?;
        let heads: Heads = serde_json::from_slice(&bytes).map_err(|e| AnalyseError::Data {
            location: path.display().to_string(),
            message: e.to_string(),
        })?;
        if let Err(message) = heads.check(encoder.dim()) {
            return Err(AnalyseError::Data {
                location: path.display().to_string(),
                message,
            });
        }
        if heads.encoder.weights_sha256 != encoder.weights_sha256() {
            return Err(AnalyseError::Data {
                location: path.display().to_string(),
                message: format!(
                    "trained on encoder weights {} but the model directory has {}",
                    heads.encoder.weights_sha256,
                    encoder.weights_sha256()
                ),
            });
        }
        Ok(Self::new(encoder, heads, &crate::sha256_hex(&bytes)))
    }

    /// A classifier over in-memory heads whose serialised form hashes to `heads_sha256`.
    pub fn new(encoder: Encoder, heads: Heads, heads_sha256: &str) -> Self {
        let use_cascade = heads.cascade.as_ref().is_some_and(|c| c.enabled);
        Classifier {
            encoder,
            heads,
            id: ModelCard::id_for(heads_sha256),
            use_cascade,
            stream: Mutex::default(),
        }
    }

    /// Turns the cascade's first stage on or off (it is on by default when the heads say it
    /// is enabled); returns whether it is now in use.
    pub fn set_cascade(&mut self, on: bool) -> bool {
        self.use_cascade = on && self.heads.cascade.is_some();
        self.use_cascade
    }

    /// The labels this classifier scores.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.heads.labels.keys().map(String::as_str)
    }

    /// Posts of `lang` the running means have counted: those of a language the heads were not
    /// trained on and centre on the stream ([`centring`]); 0 for the others.
    pub fn stream_posts(&self, lang: &str) -> usize {
        self.stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .posts(lang)
    }

    /// The encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The scores of a post the cascade stopped with first-stage probability `p`.
    fn stopped(&self, p: f32) -> Scores {
        self.heads
            .labels
            .keys()
            .map(|l| {
                let s = if l == crate::Taxonomy::DANGER { p } else { 0.0 };
                (l.clone(), s)
            })
            .collect()
    }

    /// Applies the cascade (when in use) to scores computed from embeddings of every text:
    /// the posts it stops get the scores [`Scorer::score`] would give them. Returns how many
    /// it stopped.
    pub fn apply_cascade(&self, texts: &[&str], scores: &mut [Scores]) -> usize {
        let Some(cascade) = self.heads.cascade.as_ref().filter(|_| self.use_cascade) else {
            return 0;
        };
        let mut stopped = 0;
        for (t, s) in texts.iter().zip(scores) {
            let p = cascade.probability(t);
            if p < cascade.threshold {
                *s = self.stopped(p);
                stopped += 1;
            }
        }
        stopped
    }

    /// Scores of `texts` from their embeddings computed elsewhere (e.g. cached), counting them
    /// as posts of the stream.
    pub fn score_embeddings(&self, texts: &[&str], embeddings: &[Vec<f32>]) -> Vec<Scores> {
        self.heads_scores(texts, embeddings, true)
    }

    /// The heads' scores of `texts` from their `embeddings`, centred per language first when
    /// the heads were trained so ([`centring`]); `observe`: the texts are posts of the stream
    /// (not variants of one), to count in the means of languages the training data lacked.
    fn heads_scores(&self, texts: &[&str], embeddings: &[Vec<f32>], observe: bool) -> Vec<Scores> {
        let score = |x: &[f32]| -> Scores {
            self.heads
                .labels
                .iter()
                .map(|(label, head)| (label.clone(), head.score(x)))
                .collect()
        };
        let Some(centring) = &self.heads.centring else {
            return embeddings.iter().map(|x| score(x)).collect();
        };
        // A poisoned lock only means another scoring call panicked: its sums are still sums.
        let mut stream = self
            .stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        texts
            .iter()
            .zip(embeddings)
            .map(|(text, x)| {
                let lang = centring::language(text);
                score(&centring.center(&lang, x, &mut stream, observe))
            })
            .collect()
    }

    /// Scores `texts`, through the cascade when it is in use; `observe` as in
    /// [`Classifier::heads_scores`].
    fn score_texts(&self, texts: &[&str], observe: bool) -> Result<Vec<Scores>, AnalyseError> {
        let cascade = match &self.heads.cascade {
            Some(c) if self.use_cascade => c,
            _ => {
                let embeddings = self.encoder.encode(texts)?;
                return Ok(self.heads_scores(texts, &embeddings, observe));
            }
        };
        let first: Vec<f32> = texts.iter().map(|t| cascade.probability(t)).collect();
        let passing: Vec<&str> = texts
            .iter()
            .zip(&first)
            .filter(|(_, &p)| p >= cascade.threshold)
            .map(|(t, _)| *t)
            .collect();
        let embeddings = self.encoder.encode(&passing)?;
        let mut scored = self
            .heads_scores(&passing, &embeddings, observe)
            .into_iter();
        Ok(first
            .iter()
            .map(|&p| {
                if p >= cascade.threshold {
                    scored.next().unwrap_or_default()
                } else {
                    self.stopped(p)
                }
            })
            .collect())
    }
}

impl Scorer for Classifier {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn runtime(&self) -> Option<&'static str> {
        Some(self.encoder.runtime().as_str())
    }

    fn score(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError> {
        self.score_texts(texts, true)
    }

    fn score_variants(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError> {
        self.score_texts(texts, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::centring::LanguageMean;

    fn heads(weights: usize, mean: usize) -> Heads {
        let head = Head {
            linear: Logistic {
                weights: vec![0.1; weights],
                bias: 0.0,
            },
            platt: Platt { a: 1.0, b: 0.0 },
        };
        Heads {
            version: Heads::VERSION,
            encoder: EncoderInfo {
                name: "test".into(),
                weights_sha256: "00".into(),
            },
            labels: [("danger".to_string(), head)].into(),
            cascade: None,
            centring: Some(Centring {
                languages: [(
                    "it".to_string(),
                    LanguageMean {
                        posts: 60,
                        mean: vec![0.0; mean],
                    },
                )]
                .into(),
                overall: vec![0.0; 4],
            }),
        }
    }

    #[test]
    fn heads_or_means_of_another_length_than_the_embeddings_are_refused() {
        assert_eq!(heads(4, 4).check(4), Ok(()));
        let short_head = heads(3, 4).check(4).unwrap_err();
        assert!(
            short_head.contains("head `danger` has 3 weights"),
            "{short_head}"
        );
        let short_mean = heads(4, 2).check(4).unwrap_err();
        assert!(
            short_mean.contains("the it mean has 2 values"),
            "{short_mean}"
        );
    }
}
