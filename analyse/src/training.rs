//! Training the heads: one calibrated logistic regression per label.
//!
//! For each label, the posts with a known value are split by a hash of their id — 70% to fit
//! the linear model, 15% to fit its Platt calibration, 15% held out for the metrics of the
//! model card. The split depends only on ids, so retraining on the same files gives the same
//! split and the same heads. Classes are balanced while fitting (rare categories would
//! otherwise never score high); Platt scaling then maps logits back to probabilities on the
//! calibration split, whose base rate is the data's.

use crate::cascade::Cascade;
use crate::centring::Centring;
use crate::classifier::{EncoderInfo, Head, Heads};
use crate::dataset::LabelledPost;
use crate::logistic::{Logistic, Platt, TrainOptions};
use crate::metrics::{self, Bin, LabelMetrics};
use std::collections::BTreeMap;

/// Which part of the data a post belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Fits the linear model.
    Fit,
    /// Fits the calibration.
    Calibrate,
    /// Held out for metrics.
    Test,
}

/// The part of post `id` (stable: a hash of the id).
pub fn part(id: &str) -> Part {
    let h = crate::sha256_hex(id.as_bytes());
    let bucket = u32::from_str_radix(&h[..4], 16).unwrap_or(0) % 100;
    match bucket {
        0..=69 => Part::Fit,
        70..=84 => Part::Calibrate,
        _ => Part::Test,
    }
}

/// Fewest positives (and negatives) a split needs for Platt scaling to be fitted on it.
const MIN_CALIBRATION_CLASS: usize = 5;

/// Trained heads with their held-out metrics.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The heads.
    pub heads: Heads,
    /// Metrics per label on the test split.
    pub metrics: BTreeMap<String, LabelMetrics>,
    /// Reliability table of `danger` on the test split.
    pub reliability: Vec<Bin>,
    /// What happened that a reader of the model card should know.
    pub notes: Vec<String>,
}

/// Trains a head per label of `labels` from `posts` and their `embeddings` (same order); with
/// `languages` (the posts' [`crate::centring::language`]s, same order), on the embeddings
/// centred per language ([`crate::centring`]), the means of every post given (labels are not
/// needed for them) stored with the heads.
pub fn train(
    posts: &[&LabelledPost],
    embeddings: &[Vec<f32>],
    labels: &[String],
    encoder: EncoderInfo,
    threshold: f32,
    languages: Option<&[String]>,
) -> Trained {
    let centring = languages.map(|langs| {
        let danger: Vec<Option<bool>> = posts
            .iter()
            .map(|p| p.labels.get(crate::Taxonomy::DANGER).map(|&y| y == 1))
            .collect();
        let c = Centring::fit(langs, &danger, embeddings);
        let centred = c.center_training(langs, embeddings);
        (c, centred)
    });
    let embeddings = centring.as_ref().map_or(embeddings, |(_, x)| x.as_slice());
    let dim = embeddings.first().map_or(0, Vec::len);
    let parts: Vec<Part> = posts.iter().map(|p| part(&p.id)).collect();
    let mut heads = BTreeMap::new();
    let mut metrics = BTreeMap::new();
    let mut reliability = Vec::new();
    let mut notes = Vec::new();
    for label in labels {
        let rows = |which: &[Part]| -> (Vec<&Vec<f32>>, Vec<f32>) {
            posts
                .iter()
                .zip(embeddings)
                .zip(&parts)
                .filter_map(|((p, x), part)| {
                    let y = *p.labels.get(label)?;
                    which.contains(part).then_some((x, f32::from(y)))
                })
                .unzip()
        };
        let (fit_x, fit_y) = rows(&[Part::Fit]);
        let positives = fit_y.iter().filter(|&&y| y > 0.5).count();
        if positives < 2 || positives == fit_y.len() {
            notes.push(format!(
                "`{label}`: not trained ({positives} positives of {} in the fit split)",
                fit_y.len()
            ));
            continue;
        }
        let owned: Vec<Vec<f32>> = fit_x.iter().map(|x| x.to_vec()).collect();
        let linear = Logistic::train(&owned, &fit_y, dim, true, TrainOptions::default());
        let (cal_x, cal_y) = rows(&[Part::Calibrate]);
        let cal_pos = cal_y.iter().filter(|&&y| y > 0.5).count();
        let platt = if cal_pos >= MIN_CALIBRATION_CLASS
            && cal_y.len() - cal_pos >= MIN_CALIBRATION_CLASS
        {
            let logits: Vec<f32> = cal_x.iter().map(|x| linear.logit(x.as_slice())).collect();
            Platt::fit(&logits, &cal_y)
        } else {
            notes.push(format!(
                "`{label}`: calibrated on the fit split ({cal_pos} positives in the calibration split)"
            ));
            let logits: Vec<f32> = owned.iter().map(|x| linear.logit(x)).collect();
            Platt::fit(&logits, &fit_y)
        };
        let head = Head { linear, platt };
        let (test_x, test_y) = rows(&[Part::Test]);
        if !test_y.is_empty() {
            let scores: Vec<f32> = test_x.iter().map(|x| head.score(x)).collect();
            let truth: Vec<bool> = test_y.iter().map(|&y| y > 0.5).collect();
            metrics.insert(label.clone(), metrics::evaluate(&scores, &truth, threshold));
            if label == crate::Taxonomy::DANGER {
                reliability = metrics::reliability(&scores, &truth, 10);
            }
        }
        heads.insert(label.clone(), head);
    }
    let cascade = train_cascade(posts, &parts);
    if let Some(c) = &cascade {
        notes.push(format!(
            "Cascade first stage: stops {:.1}% of held-out posts and {:.2}% of held-out `danger` \
             positives; {} (on only below {:.0}% loss).",
            100.0 * c.held_out_skipped,
            100.0 * c.held_out_recall_loss,
            if c.enabled { "on" } else { "off" },
            100.0 * crate::cascade::MAX_RECALL_LOSS
        ));
    }
    if let Some((c, _)) = &centring {
        let languages: Vec<String> = c
            .languages
            .iter()
            .map(|(lang, m)| format!("{lang} ({} posts)", m.posts))
            .collect();
        notes.push(format!(
            "Each embedding is centred on its language's mean before the heads read it \
             (docs/classifier.md): the training means of {}; any other language, the running \
             mean of its posts in the stream, starting from the mean of every training post.",
            languages.join(", ")
        ));
    }
    Trained {
        heads: Heads {
            version: Heads::VERSION,
            encoder,
            labels: heads,
            cascade,
            centring: centring.map(|(c, _)| c),
        },
        metrics,
        reliability,
        notes,
    }
}

/// Trains the cascade's first stage on the `danger` values of the fit split.
fn train_cascade(posts: &[&LabelledPost], parts: &[Part]) -> Option<Cascade> {
    let split = |which: Part| -> (Vec<&str>, Vec<f32>) {
        posts
            .iter()
            .zip(parts)
            .filter(|(_, &p)| p == which)
            .filter_map(|(post, _)| {
                let y = *post.labels.get(crate::Taxonomy::DANGER)?;
                Some((post.text.as_str(), f32::from(y)))
            })
            .unzip()
    };
    let (fit, calibrate, test) = (split(Part::Fit), split(Part::Calibrate), split(Part::Test));
    Cascade::train(
        (&fit.0, &fit.1),
        (&calibrate.0, &calibrate.1),
        (&test.0, &test.1),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two-dimensional "embeddings" of `posts`, in order: danger when the first coordinate is
    /// high (1 plus noise in [0, 1), against the noise alone).
    pub(crate) fn separable(posts: &[LabelledPost]) -> Vec<Vec<f32>> {
        posts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let noise = ((i * 7919) % 100) as f32 / 100.0;
                let danger = p.labels.get(crate::Taxonomy::DANGER).copied().unwrap_or(0);
                vec![f32::from(danger) + noise, noise]
            })
            .collect()
    }

    #[test]
    fn the_split_is_stable_and_roughly_70_15_15() {
        assert_eq!(part("abc"), part("abc"));
        let mut counts = [0usize; 3];
        for i in 0..10_000 {
            counts[part(&i.to_string()) as usize] += 1;
        }
        assert!((6_700..7_300).contains(&counts[0]), "{counts:?}");
        assert!((1_300..1_700).contains(&counts[1]), "{counts:?}");
        assert!((1_300..1_700).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn trains_calibrated_heads_and_skips_labels_without_positives() {
        let posts: Vec<LabelledPost> = (0..2000)
            .map(|i| {
                let danger = u8::from(i % 3 == 0);
                LabelledPost {
                    id: format!("p{i}"),
                    text: String::new(),
                    labels: [("danger".to_string(), danger), ("fire".to_string(), 0)].into(),
                    crisis: None,
                    event: None,
                }
            })
            .collect();
        let embeddings = separable(&posts);
        let refs: Vec<&LabelledPost> = posts.iter().collect();
        let info = EncoderInfo {
            name: "test".into(),
            weights_sha256: "00".into(),
        };
        let labels = ["danger".to_string(), "fire".to_string()];
        let t = train(&refs, &embeddings, &labels, info, 0.5, None);
        assert!(t.heads.labels.contains_key("danger"));
        assert!(!t.heads.labels.contains_key("fire"));
        assert!(t.notes.iter().any(|n| n.contains("`fire`: not trained")));
        let m = &t.metrics["danger"];
        assert!(m.average_precision > 0.95, "{m:?}");
        assert!(m.ece < 0.1, "{m:?}");
        assert_eq!(t.reliability.len(), 10);
    }
}
