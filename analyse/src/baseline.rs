//! Baselines the classifier is measured against: the CrisisLex lexicon and TF-IDF with
//! logistic regression.

use crate::logistic::{Logistic, Sparse, TrainOptions};
use crate::AnalyseError;
use std::collections::HashMap;
use std::path::Path;

/// Lower-cased word tokens of `text` (letters, digits; `#` and `@` dropped).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The CrisisLex lexicon: a post matches when any term (one or more words) occurs in it.
pub struct Lexicon {
    terms: Vec<Vec<String>>,
}

impl Lexicon {
    /// Reads a lexicon file, one term a line.
    pub fn load(path: &Path) -> Result<Self, AnalyseError> {
        let text = std::fs::read_to_string(path).map_err(|source| AnalyseError::ModelFile {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Lexicon {
            terms: text.lines().map(words).filter(|t| !t.is_empty()).collect(),
        })
    }

    /// 1 when a term occurs in `text` as consecutive words, else 0.
    pub fn score(&self, text: &str) -> f32 {
        let w = words(text);
        let hit = self.terms.iter().any(|term| {
            w.windows(term.len())
                .any(|window| window == term.as_slice())
        });
        f32::from(u8::from(hit))
    }
}

/// TF-IDF features (unigrams and bigrams, sublinear term frequency, L2-normalised) and a
/// logistic regression over them.
pub struct TfIdf {
    vocabulary: HashMap<String, u32>,
    idf: Vec<f32>,
    model: Logistic,
}

impl TfIdf {
    /// Terms must occur in at least this many training texts.
    const MIN_DF: usize = 2;

    fn terms(text: &str) -> Vec<String> {
        let w = words(text);
        let bigrams = w.windows(2).map(|p| format!("{} {}", p[0], p[1]));
        w.iter().cloned().chain(bigrams).collect()
    }

    /// Fits the vocabulary, IDF and model on `texts` with targets `ys` (0 or 1).
    pub fn train(texts: &[&str], ys: &[f32]) -> Self {
        let mut df: HashMap<String, usize> = HashMap::new();
        for t in texts {
            let mut terms = Self::terms(t);
            terms.sort();
            terms.dedup();
            for term in terms {
                *df.entry(term).or_default() += 1;
            }
        }
        let mut kept: Vec<(String, usize)> =
            df.into_iter().filter(|(_, n)| *n >= Self::MIN_DF).collect();
        kept.sort();
        let n = texts.len() as f32;
        let idf = kept
            .iter()
            .map(|(_, d)| ((1.0 + n) / (1.0 + *d as f32)).ln() + 1.0)
            .collect();
        let vocabulary = kept
            .into_iter()
            .enumerate()
            .map(|(i, (t, _))| (t, i as u32))
            .collect();
        let mut tfidf = TfIdf {
            vocabulary,
            idf,
            model: Logistic {
                weights: Vec::new(),
                bias: 0.0,
            },
        };
        let xs: Vec<Sparse> = texts.iter().map(|t| tfidf.features(t)).collect();
        tfidf.model = Logistic::train(&xs, ys, tfidf.idf.len(), true, TrainOptions::default());
        tfidf
    }

    /// The sparse TF-IDF vector of `text`.
    pub fn features(&self, text: &str) -> Sparse {
        let mut tf: HashMap<u32, f32> = HashMap::new();
        for term in Self::terms(text) {
            if let Some(&i) = self.vocabulary.get(&term) {
                *tf.entry(i).or_default() += 1.0;
            }
        }
        let mut v: Sparse = tf
            .into_iter()
            .map(|(i, c)| (i, (1.0 + c.ln()) * self.idf[i as usize]))
            .collect();
        v.sort_by_key(|&(i, _)| i);
        let norm = v.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|(_, x)| *x /= norm);
        }
        v
    }

    /// The model's probability for `text`.
    pub fn score(&self, text: &str) -> f32 {
        self.model.prob(&self.features(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicon_matches_whole_words_and_phrases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lex.txt");
        std::fs::write(&path, "flood victims\nexplosion\n").unwrap();
        let lex = Lexicon::load(&path).unwrap();
        assert_eq!(lex.score("Help the FLOOD victims now"), 1.0);
        assert_eq!(lex.score("victims of the flood"), 0.0);
        assert_eq!(lex.score("an #explosion downtown"), 1.0);
        assert_eq!(lex.score("explosions"), 0.0);
    }

    #[test]
    fn tfidf_learns_which_words_matter() {
        let texts = [
            "huge fire downtown",
            "fire in the warehouse",
            "smoke and fire everywhere",
            "lovely day downtown",
            "coffee in the warehouse",
            "lovely coffee everywhere",
        ];
        let ys = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0];
        let m = TfIdf::train(&texts, &ys);
        assert!(m.score("fire at the station") > 0.5);
        assert!(m.score("lovely coffee at the station") < 0.5);
        let f = m.features("fire fire downtown");
        let norm: f32 = f.iter().map(|(_, x)| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}
