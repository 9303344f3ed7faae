//! `vigie experiment loco`: leave one crisis out. For each crisis file, the `danger` head is
//! trained on the others and measured on it, against the CrisisLex lexicon and TF-IDF with
//! logistic regression trained on the same posts.

use super::{crisis_files, encoder_info, load_datasets, ExperimentError, Settings};
use crate::baseline::{Lexicon, TfIdf};
use crate::dataset::{Dataset, LabelledPost};
use crate::metrics::{self, LabelMetrics};
use crate::{training, EncoderInfo, Taxonomy};
use serde::Serialize;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

/// One rotation: the metrics of each method on the held-out crisis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rotation {
    /// The held-out crisis (its file's stem).
    pub held_out: String,
    /// Posts of that crisis.
    pub n: usize,
    /// `danger` positives among them.
    pub positives: usize,
    /// Vigie's `danger` head, at the alert threshold.
    pub vigie: LabelMetrics,
    /// The CrisisLex lexicon (a match is 1), at 0.5.
    pub lexicon: LabelMetrics,
    /// TF-IDF + logistic regression, at the alert threshold.
    pub tfidf: LabelMetrics,
}

/// Where the posts of rotation `k` are in the concatenation of every dataset's embeddings:
/// the held-out range (dataset `k`) and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// The held-out dataset's rows.
    pub held_out: Range<usize>,
    /// Every other row, in order.
    pub train: Vec<usize>,
}

/// One fold per dataset, for datasets of `sizes` posts laid end to end.
pub fn folds(sizes: &[usize]) -> Vec<Fold> {
    let total: usize = sizes.iter().sum();
    let mut start = 0;
    sizes
        .iter()
        .map(|&n| {
            let held_out = start..start + n;
            start += n;
            let train = (0..total).filter(|i| !held_out.contains(i)).collect();
            Fold { held_out, train }
        })
        .collect()
}

/// The result of [`run`]: one rotation per crisis, in file order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Loco {
    /// The rotations.
    pub rotations: Vec<Rotation>,
}

impl Loco {
    /// The rotations as a pretty JSON array (`vigie experiment loco --json`).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// How many rotations Vigie's average precision beats both baselines on.
    pub fn wins(&self) -> usize {
        self.rotations
            .iter()
            .filter(|r| {
                r.vigie.average_precision
                    > r.lexicon.average_precision.max(r.tfidf.average_precision)
            })
            .count()
    }

    /// The Markdown table of F1, AP and ECE per rotation and their means, then a sentence
    /// counting Vigie's wins.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| held-out crisis | n | Vigie F1 | Vigie AP | lexicon F1 | lexicon AP | TF-IDF F1 | \
             TF-IDF AP | Vigie ECE |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        let row = |out: &mut String, name: &str, n: Option<usize>, v: [f64; 7]| {
            let n = n.map_or(String::new(), |n| format!(" {n}"));
            let _ = writeln!(
                out,
                "| {name} |{n} | {:.3} | **{:.3}** | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                v[0], v[1], v[2], v[3], v[4], v[5], v[6]
            );
        };
        let figures = |r: &Rotation| {
            [
                r.vigie.f1,
                r.vigie.average_precision,
                r.lexicon.f1,
                r.lexicon.average_precision,
                r.tfidf.f1,
                r.tfidf.average_precision,
                r.vigie.ece,
            ]
        };
        let mut sums = [0.0; 7];
        for r in &self.rotations {
            let f = figures(r);
            row(&mut out, &r.held_out, Some(r.n), f);
            sums.iter_mut().zip(f).for_each(|(s, x)| *s += x);
        }
        let count = self.rotations.len() as f64;
        row(&mut out, "**mean**", None, sums.map(|s| s / count));
        let _ = writeln!(
            out,
            "\nVigie's average precision beats both baselines on {} of {} rotations.",
            self.wins(),
            self.rotations.len()
        );
        out
    }
}

/// Runs the experiment on the crisis files (`.jsonl`) of `dir`, with the CrisisLex lexicon
/// file `lexicon`.
pub fn run(settings: &Settings, dir: &Path, lexicon: &Path) -> Result<Loco, ExperimentError> {
    let datasets = load_datasets(&crisis_files(dir)?)?;
    let lexicon = Lexicon::load(lexicon)?;
    let encoder = settings.encoder.load()?;
    let embeddings = settings.embed_datasets(&encoder, &datasets)?;
    let bar = settings.bar(datasets.len(), "rotations");
    let rotations = rotate(
        &datasets,
        &embeddings,
        &lexicon,
        encoder_info(&encoder),
        settings.alert_threshold,
        || bar.inc(1),
    )?;
    bar.finish_and_clear();
    Ok(Loco { rotations })
}

/// The rotations over `datasets` and their `embeddings` (every dataset's, end to end), at
/// `threshold`; `done` is called after each.
pub fn rotate(
    datasets: &[Dataset],
    embeddings: &[Vec<f32>],
    lexicon: &Lexicon,
    info: EncoderInfo,
    threshold: f32,
    mut done: impl FnMut(),
) -> Result<Vec<Rotation>, ExperimentError> {
    let danger = [Taxonomy::DANGER.to_string()];
    let label = |p: &LabelledPost| p.labels.get(Taxonomy::DANGER).copied();
    let sizes: Vec<usize> = datasets.iter().map(|d| d.posts.len()).collect();
    let mut rotations = Vec::new();
    for (k, (held, fold)) in datasets.iter().zip(folds(&sizes)).enumerate() {
        let train_posts: Vec<&LabelledPost> = datasets
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != k)
            .flat_map(|(_, d)| &d.posts)
            .collect();
        let train_x: Vec<Vec<f32>> = fold.train.iter().map(|&i| embeddings[i].clone()).collect();
        let trained = training::train(&train_posts, &train_x, &danger, info.clone(), threshold);
        let head = trained.heads.labels.get(Taxonomy::DANGER).ok_or_else(|| {
            ExperimentError::Input(format!(
                "no danger head trained without {}",
                held.path.display()
            ))
        })?;
        let truth: Vec<bool> = held.posts.iter().map(|p| label(p) == Some(1)).collect();
        let vigie: Vec<f32> = embeddings[fold.held_out]
            .iter()
            .map(|x| head.score(x))
            .collect();
        let lex: Vec<f32> = held.posts.iter().map(|p| lexicon.score(&p.text)).collect();
        let train_texts: Vec<&str> = train_posts.iter().map(|p| p.text.as_str()).collect();
        let train_y: Vec<f32> = train_posts
            .iter()
            .map(|p| f32::from(label(p).unwrap_or(0)))
            .collect();
        let tfidf = TfIdf::train(&train_texts, &train_y);
        let tf: Vec<f32> = held.posts.iter().map(|p| tfidf.score(&p.text)).collect();
        rotations.push(Rotation {
            held_out: held
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            n: truth.len(),
            positives: truth.iter().filter(|&&b| b).count(),
            vigie: metrics::evaluate(&vigie, &truth, threshold),
            lexicon: metrics::evaluate(&lex, &truth, 0.5),
            tfidf: metrics::evaluate(&tf, &truth, threshold),
        });
        done();
    }
    Ok(rotations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::tests::metrics;
    use crate::training::tests::separable;
    use std::path::PathBuf;

    #[test]
    fn each_fold_holds_out_one_dataset_and_trains_on_the_rest() {
        let f = folds(&[2, 0, 3]);
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].held_out, 0..2);
        assert_eq!(f[0].train, [2, 3, 4]);
        assert_eq!(f[1].held_out, 2..2);
        assert_eq!(f[1].train, [0, 1, 2, 3, 4]);
        assert_eq!(f[2].held_out, 2..5);
        assert_eq!(f[2].train, [0, 1]);
    }

    /// A crisis of 150 posts, every third one danger ("flood" in its text, its embedding
    /// [`separable`]).
    fn crisis(name: &str) -> (Dataset, Vec<Vec<f32>>) {
        let posts: Vec<LabelledPost> = (0..150)
            .map(|i| {
                let danger = u8::from(i % 3 == 0);
                LabelledPost {
                    id: format!("{name}:{i}"),
                    text: if danger == 1 {
                        format!("flood water rising street {i}")
                    } else {
                        format!("lovely day at the park {i}")
                    },
                    labels: [("danger".to_string(), danger)].into(),
                }
            })
            .collect();
        let x = separable(&posts);
        let d = Dataset {
            path: PathBuf::from(format!("fixtures/{name}.jsonl")),
            sha256: String::new(),
            posts,
        };
        (d, x)
    }

    #[test]
    fn rotations_measure_every_method_on_the_held_out_crisis() {
        let (mut datasets, mut embeddings) = (Vec::new(), Vec::new());
        for name in [
            "2013_Alberta_Floods",
            "2012_Sandy_Hurricane",
            "2013_Queensland_Floods",
        ] {
            let (d, x) = crisis(name);
            datasets.push(d);
            embeddings.extend(x);
        }
        let dir = tempfile::tempdir().unwrap();
        let lexicon_path = dir.path().join("lexicon.txt");
        std::fs::write(&lexicon_path, "flood water\n").unwrap();
        let lexicon = Lexicon::load(&lexicon_path).unwrap();
        let info = EncoderInfo {
            name: "test".into(),
            weights_sha256: "00".into(),
        };
        let mut calls = 0;
        let rotations = rotate(&datasets, &embeddings, &lexicon, info, 0.5, || calls += 1).unwrap();
        assert_eq!(calls, 3);
        let names: Vec<&str> = rotations.iter().map(|r| r.held_out.as_str()).collect();
        assert_eq!(
            names,
            [
                "2013_Alberta_Floods",
                "2012_Sandy_Hurricane",
                "2013_Queensland_Floods"
            ]
        );
        for r in &rotations {
            assert_eq!((r.n, r.positives), (150, 50));
            assert!(r.vigie.average_precision > 0.95, "{r:?}");
            assert_eq!(r.lexicon.recall, 1.0, "{r:?}");
            assert!(r.tfidf.average_precision > 0.9, "{r:?}");
        }
    }

    #[test]
    fn the_markdown_table_has_a_row_a_rotation_a_mean_and_counts_wins() {
        let rotation = |name: &str, vigie: f64, baseline: f64| Rotation {
            held_out: name.into(),
            n: 10,
            positives: 5,
            vigie: metrics(10, vigie),
            lexicon: metrics(10, baseline),
            tfidf: metrics(10, baseline),
        };
        let loco = Loco {
            rotations: vec![rotation("a", 0.9, 0.5), rotation("b", 0.3, 0.5)],
        };
        assert_eq!(loco.wins(), 1);
        let md = loco.markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert!(lines[0].starts_with("| held-out crisis | n | Vigie F1 |"));
        assert_eq!(lines[1], "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        assert_eq!(
            lines[2],
            "| a | 10 | 0.900 | **0.900** | 0.500 | 0.500 | 0.500 | 0.500 | 0.090 |"
        );
        assert_eq!(
            lines[4],
            "| **mean** | | 0.600 | **0.600** | 0.500 | 0.500 | 0.500 | 0.500 | 0.060 |"
        );
        assert_eq!(
            lines[6],
            "Vigie's average precision beats both baselines on 1 of 2 rotations."
        );
        let json: serde_json::Value = serde_json::from_str(&loco.to_json().unwrap()).unwrap();
        assert_eq!(json[1]["held_out"], "b");
        assert_eq!(json[0]["vigie"]["f1"], 0.9);
    }
}
