//! Applying a scorer to envelopes: scores, explanations and the "not scored" state.

use crate::{AnalyseError, Scorer, Taxonomy};
use chrono::Utc;
use vigie_record::{Contribution, Envelope, ScoreState, Scoring};
use vigie_situation::PlaceResolver;

/// How the analyser batches, alerts and explains.
#[derive(Debug, Clone)]
pub struct AnalyserConfig {
    /// `danger` score from which a post is an alert and gets an explanation.
    pub alert_threshold: f32,
    /// How many words an explanation keeps.
    pub explain_top: usize,
    /// Occlusion looks at the first this-many words of a post.
    pub explain_max_words: usize,
    /// Posts per call to the model.
    pub batch_size: usize,
}

impl Default for AnalyserConfig {
    fn default() -> Self {
        AnalyserConfig {
            alert_threshold: 0.5,
            explain_top: 5,
            explain_max_words: 64,
            batch_size: 32,
        }
    }
}

/// Scores envelopes with a [`Scorer`], explains the alerts and, with a gazetteer, resolves
/// their places.
pub struct Analyser<S> {
    scorer: S,
    config: AnalyserConfig,
    places: Option<PlaceResolver>,
}

impl<S: Scorer> Analyser<S> {
    /// An analyser over `scorer`.
    pub fn new(scorer: S, config: AnalyserConfig) -> Self {
        Analyser {
            scorer,
            config,
            places: None,
        }
    }

    /// The same, also setting each envelope's `places` with `resolver`.
    pub fn with_places(mut self, resolver: PlaceResolver) -> Self {
        self.places = Some(resolver);
        self
    }

    /// The scorer.
    pub fn scorer(&self) -> &S {
        &self.scorer
    }

    /// The scorer's model card id.
    pub fn model_id(&self) -> &str {
        self.scorer.model_id()
    }

    /// Sets `scoring` on every envelope: scores and, for alerts, an explanation; or
    /// "not scored" with the reason when the post has no text.
    pub fn analyse(&self, envelopes: &mut [Envelope]) -> Result<(), AnalyseError> {
        let now = Utc::now();
        let (empty, scorable): (Vec<usize>, Vec<usize>) =
            (0..envelopes.len()).partition(|&i| envelopes[i].post.text.trim().is_empty());
        for i in empty {
            envelopes[i].scoring = Some(Scoring {
                model: self.model_id().to_string(),
                runtime: None,
                scored_at: now,
                state: ScoreState::NotScored,
                reason: Some("the post has no text".into()),
                scores: Default::default(),
                explanation: Vec::new(),
            });
        }
        for chunk in scorable.chunks(self.config.batch_size.max(1)) {
            let texts: Vec<&str> = chunk
                .iter()
                .map(|&i| envelopes[i].post.text.as_str())
                .collect();
            let scores = self.scorer.score(&texts)?;
            let mut scorings = Vec::with_capacity(chunk.len());
            for (text, scores) in texts.iter().zip(scores) {
                let danger = scores.get(Taxonomy::DANGER).copied().unwrap_or(0.0);
                let explanation = if danger >= self.config.alert_threshold {
                    self.explain(text, danger)?
                } else {
                    Vec::new()
                };
                scorings.push(Scoring {
                    model: self.model_id().to_string(),
                    runtime: self.scorer.runtime().map(String::from),
                    scored_at: now,
                    state: ScoreState::Scored,
                    reason: None,
                    scores,
                    explanation,
                });
            }
            for (&i, scoring) in chunk.iter().zip(scorings) {
                envelopes[i].scoring = Some(scoring);
            }
        }
        if let Some(resolver) = &self.places {
            for e in envelopes.iter_mut() {
                e.places = Some(resolver.resolve(&e.post));
            }
        }
        Ok(())
    }

    /// Occlusion: drop each word in turn, re-score, and rank words by how much `danger` fell.
    pub fn explain(&self, text: &str, danger: f32) -> Result<Vec<Contribution>, AnalyseError> {
        let words: Vec<&str> = text
            .split_whitespace()
            .take(self.config.explain_max_words)
            .collect();
        if words.len() < 2 {
            return Ok(words
                .iter()
                .map(|w| Contribution {
                    word: w.to_string(),
                    weight: danger,
                })
                .collect());
        }
        let variants: Vec<String> = (0..words.len())
            .map(|skip| {
                words
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != skip)
                    .map(|(_, w)| *w)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let refs: Vec<&str> = variants.iter().map(String::as_str).collect();
        let mut contributions = Vec::with_capacity(words.len());
        for (batch_words, batch) in words
            .chunks(self.config.batch_size.max(1))
            .zip(refs.chunks(self.config.batch_size.max(1)))
        {
            for (word, scores) in batch_words.iter().zip(self.scorer.score_variants(batch)?) {
                let without = scores.get(Taxonomy::DANGER).copied().unwrap_or(0.0);
                contributions.push(Contribution {
                    word: word.to_string(),
                    weight: danger - without,
                });
            }
        }
        contributions.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        contributions.retain(|c| c.weight > 0.0);
        contributions.truncate(self.config.explain_top);
        Ok(contributions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scorer::Scores;

    /// A scorer whose `danger` is the share of the words "fire" among all words.
    struct WordScorer;

    impl Scorer for WordScorer {
        fn model_id(&self) -> &str {
            "word-test"
        }
        fn score(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError> {
            Ok(texts
                .iter()
                .map(|t| {
                    let n = t.split_whitespace().count().max(1) as f32;
                    let fire = t.split_whitespace().filter(|w| *w == "fire").count() as f32;
                    [(Taxonomy::DANGER.to_string(), fire / n)].into()
                })
                .collect())
        }
    }

    fn envelope(text: &str) -> Envelope {
        vigie_record::fixtures::envelope(text, text)
    }

    #[test]
    fn empty_posts_are_marked_not_scored_and_alerts_are_explained() {
        let analyser = Analyser::new(WordScorer, AnalyserConfig::default());
        let mut batch = vec![
            envelope("fire fire at home"),
            envelope("   "),
            envelope("a quiet day"),
        ];
        analyser.analyse(&mut batch).unwrap();

        let alert = batch[0].scoring.as_ref().unwrap();
        assert_eq!(alert.state, ScoreState::Scored);
        assert_eq!(alert.danger(), 0.5);
        assert_eq!(alert.model, "word-test");
        assert_eq!(alert.explanation.len(), 2, "{:?}", alert.explanation);
        assert!(alert.explanation.iter().all(|c| c.word == "fire"));

        let empty = batch[1].scoring.as_ref().unwrap();
        assert_eq!(empty.state, ScoreState::NotScored);
        assert_eq!(empty.reason.as_deref(), Some("the post has no text"));

        let calm = batch[2].scoring.as_ref().unwrap();
        assert_eq!(calm.danger(), 0.0);
        assert!(calm.explanation.is_empty());
    }
}
