//! `vigie experiment loco`: leave one crisis out. For each crisis file, the `danger` head is
//! trained on the files of the other crises and measured on it, against the CrisisLex lexicon
//! and TF-IDF with logistic regression trained on the same posts.
//!
//! A crisis is named by its file's stem, up to case: CrisisLexT6's `2013_Boston_Bombings` and
//! CrisisLexT26's `2013_Boston_bombings` are one crisis (their tweets overlap), so a rotation
//! that holds out either trains on neither. Each held-out post's scores are also pooled by the
//! language Vigie detects in it, over every rotation: the metrics per language on crises the
//! model never trained on.

use super::{crisis_files, encoder_info, load_datasets, ExperimentError, Settings};
use crate::baseline::{Lexicon, TfIdf};
use crate::centring::{self, StreamMeans};
use crate::dataset::{Dataset, LabelledPost};
use crate::metrics::{self, LabelMetrics};
use crate::{training, EncoderInfo, Taxonomy};
use serde::Serialize;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

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

/// The metrics of each method on the held-out posts of one language, pooled over rotations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Language {
    /// ISO 639-1 code as Vigie detects it (`und`: none found).
    pub lang: String,
    /// Held-out posts in it.
    pub n: usize,
    /// `danger` positives among them.
    pub positives: usize,
    /// Vigie's `danger` head.
    pub vigie: LabelMetrics,
    /// The CrisisLex lexicon.
    pub lexicon: LabelMetrics,
    /// TF-IDF + logistic regression.
    pub tfidf: LabelMetrics,
}

/// Where the posts of rotation `k` are in the concatenation of every dataset's embeddings:
/// the held-out range (dataset `k`) and the training rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// The held-out dataset's rows.
    pub held_out: Range<usize>,
    /// The rows of every dataset of another crisis, in order.
    pub train: Vec<usize>,
    /// The datasets trained on.
    pub train_sets: Vec<usize>,
}

/// One fold per dataset, for datasets of `sizes` posts laid end to end, whose crises are
/// `crises` (a dataset trains the folds of the other crises only).
pub fn folds(sizes: &[usize], crises: &[String]) -> Vec<Fold> {
    let starts: Vec<usize> = sizes
        .iter()
        .scan(0, |start, &n| {
            let s = *start;
            *start += n;
            Some(s)
        })
        .collect();
    (0..sizes.len())
        .map(|k| {
            let train_sets: Vec<usize> = (0..sizes.len())
                .filter(|&j| crises[j] != crises[k])
                .collect();
            let train = train_sets
                .iter()
                .flat_map(|&j| starts[j]..starts[j] + sizes[j])
                .collect();
            Fold {
                held_out: starts[k]..starts[k] + sizes[k],
                train,
                train_sets,
            }
        })
        .collect()
}

/// The crisis of a dataset: its file's stem in lower case.
pub fn crisis_of(dataset: &Dataset) -> String {
    dataset
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

/// The result of [`run`]: one rotation per crisis file, in the order of the directories and
/// their files, and the held-out posts pooled by language.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Loco {
    /// The rotations.
    pub rotations: Vec<Rotation>,
    /// Per language (most posts first), over every rotation.
    pub languages: Vec<Language>,
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
        if !self.languages.is_empty() {
            out.push_str(
                "\n| language | n | positives | Vigie F1 | Vigie AP | lexicon F1 | lexicon AP | \
                 TF-IDF F1 | TF-IDF AP | Vigie ECE |\n\
                 |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            );
            for l in &self.languages {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.3} | **{:.3}** | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                    l.lang,
                    l.n,
                    l.positives,
                    l.vigie.f1,
                    l.vigie.average_precision,
                    l.lexicon.f1,
                    l.lexicon.average_precision,
                    l.tfidf.f1,
                    l.tfidf.average_precision,
                    l.vigie.ece
                );
            }
        }
        out
    }
}

/// The held-out posts of every rotation, pooled by language: (lang, truth, Vigie, lexicon,
/// TF-IDF scores).
#[derive(Default)]
struct Pool(std::collections::BTreeMap<String, [Vec<f32>; 4]>);

impl Pool {
    fn add(&mut self, lang: String, truth: bool, scores: [f32; 3]) {
        let columns = self.0.entry(lang).or_default();
        columns[0].push(f32::from(u8::from(truth)));
        for (c, s) in columns[1..].iter_mut().zip(scores) {
            c.push(s);
        }
    }

    /// One row a language with at least `min` posts, most posts first.
    fn languages(self, threshold: f32, min: usize) -> Vec<Language> {
        let mut out: Vec<Language> = self
            .0
            .into_iter()
            .filter(|(_, c)| c[0].len() >= min)
            .map(|(lang, c)| {
                let truth: Vec<bool> = c[0].iter().map(|&t| t > 0.5).collect();
                Language {
                    n: truth.len(),
                    positives: truth.iter().filter(|&&t| t).count(),
                    vigie: metrics::evaluate(&c[1], &truth, threshold),
                    lexicon: metrics::evaluate(&c[2], &truth, 0.5),
                    tfidf: metrics::evaluate(&c[3], &truth, threshold),
                    lang,
                }
            })
            .collect();
        out.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.lang.cmp(&b.lang)));
        out
    }
}

/// Languages with fewer held-out posts than this are left out of the table (their metrics
/// would be noise).
pub const MIN_LANGUAGE_POSTS: usize = 30;

/// The crisis files (`.jsonl`) of `dirs`, in order, and the lexicon file `lexicon`.
pub(super) fn crises(
    dirs: &[PathBuf],
    lexicon: &Path,
) -> Result<(Vec<Dataset>, Lexicon), ExperimentError> {
    let mut files = Vec::new();
    for dir in dirs {
        files.extend(crisis_files(dir)?);
    }
    Ok((load_datasets(&files)?, Lexicon::load(lexicon)?))
}

/// Runs the experiment on the crisis files (`.jsonl`) of `dirs`, with the CrisisLex lexicon
/// file `lexicon`; with `center`, Vigie's heads are trained and read on embeddings centred per
/// language, as `vigie train` ships them ([`crate::centring`]).
pub fn run(
    settings: &Settings,
    dirs: &[PathBuf],
    lexicon: &Path,
    center: bool,
) -> Result<Loco, ExperimentError> {
    let (datasets, lexicon) = crises(dirs, lexicon)?;
    let encoder = settings.encoder.load()?;
    let embeddings = settings.embed_datasets(&encoder, &datasets)?;
    let bar = settings.bar(datasets.len(), "rotations");
    let loco = rotate(
        &datasets,
        &embeddings,
        &lexicon,
        encoder_info(&encoder),
        settings.alert_threshold,
        center,
        || bar.inc(1),
    )?;
    bar.finish_and_clear();
    Ok(loco)
}

/// The rotations over `datasets` and their `embeddings` (every dataset's, end to end), at
/// `threshold`, Vigie's heads centred per language when `center`; `done` is called after each.
///
/// Centred, each held-out crisis is read as a stream, in its file's order: a language its
/// training crises had too few posts of is centred on the running mean of its posts so far,
/// as the classifier does live.
pub fn rotate(
    datasets: &[Dataset],
    embeddings: &[Vec<f32>],
    lexicon: &Lexicon,
    info: EncoderInfo,
    threshold: f32,
    center: bool,
    done: impl FnMut(),
) -> Result<Loco, ExperimentError> {
    let danger = [Taxonomy::DANGER.to_string()];
    let posts: Vec<&LabelledPost> = datasets.iter().flat_map(|d| &d.posts).collect();
    let heads = |fold: &Fold, langs: &[String]| -> Result<Vec<f32>, ExperimentError> {
        let train_posts: Vec<&LabelledPost> = fold.train.iter().map(|&i| posts[i]).collect();
        let train_x: Vec<Vec<f32>> = fold.train.iter().map(|&i| embeddings[i].clone()).collect();
        let train_langs: Option<Vec<String>> =
            center.then(|| fold.train.iter().map(|&i| langs[i].clone()).collect());
        let trained = training::train(
            &train_posts,
            &train_x,
            &danger,
            info.clone(),
            threshold,
            train_langs.as_deref(),
        );
        let head = trained.heads.labels.get(Taxonomy::DANGER).ok_or_else(|| {
            ExperimentError::Input(format!(
                "no danger head trained without the posts {:?}",
                fold.held_out
            ))
        })?;
        let mut stream = StreamMeans::default();
        Ok(fold
            .held_out
            .clone()
            .map(|i| match &trained.heads.centring {
                Some(c) => head.score(&c.center(&langs[i], &embeddings[i], &mut stream, true)),
                None => head.score(&embeddings[i]),
            })
            .collect())
    };
    rotate_with(datasets, lexicon, threshold, heads, done)
}

/// The rotations over `datasets` at `threshold`, Vigie's held-out scores of each [`Fold`]
/// given by `vigie` from the fold and every post's [`centring::language`] (rows of every
/// dataset's posts, end to end; detected once here); `done` is called after each.
pub fn rotate_with(
    datasets: &[Dataset],
    lexicon: &Lexicon,
    threshold: f32,
    mut vigie: impl FnMut(&Fold, &[String]) -> Result<Vec<f32>, ExperimentError>,
    mut done: impl FnMut(),
) -> Result<Loco, ExperimentError> {
    let label = |p: &LabelledPost| p.labels.get(Taxonomy::DANGER).copied();
    let langs: Vec<String> = datasets
        .iter()
        .flat_map(|d| d.posts.iter().map(|p| centring::language(&p.text)))
        .collect();
    let sizes: Vec<usize> = datasets.iter().map(|d| d.posts.len()).collect();
    let crises: Vec<String> = datasets.iter().map(crisis_of).collect();
    let mut rotations = Vec::new();
    let mut pool = Pool::default();
    for (held, fold) in datasets.iter().zip(folds(&sizes, &crises)) {
        let train_posts: Vec<&LabelledPost> = fold
            .train_sets
            .iter()
            .flat_map(|&j| &datasets[j].posts)
            .collect();
        let truth: Vec<bool> = held.posts.iter().map(|p| label(p) == Some(1)).collect();
        let vigie = vigie(&fold, &langs)?;
        let lex: Vec<f32> = held.posts.iter().map(|p| lexicon.score(&p.text)).collect();
        let train_texts: Vec<&str> = train_posts.iter().map(|p| p.text.as_str()).collect();
        let train_y: Vec<f32> = train_posts
            .iter()
            .map(|p| f32::from(label(p).unwrap_or(0)))
            .collect();
        let tfidf = TfIdf::train(&train_texts, &train_y);
        let tf: Vec<f32> = held.posts.iter().map(|p| tfidf.score(&p.text)).collect();
        for ((i, p), lang) in held
            .posts
            .iter()
            .enumerate()
            .zip(&langs[fold.held_out.clone()])
        {
            if label(p).is_some() {
                pool.add(lang.clone(), truth[i], [vigie[i], lex[i], tf[i]]);
            }
        }
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
    Ok(Loco {
        rotations,
        languages: pool.languages(threshold, MIN_LANGUAGE_POSTS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::tests::metrics;
    use crate::training::tests::separable;
    use std::path::PathBuf;

    #[test]
    fn each_fold_holds_out_one_dataset_and_trains_on_the_other_crises() {
        let crises = ["a", "b", "c"].map(String::from);
        let f = folds(&[2, 0, 3], &crises);
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].held_out, 0..2);
        assert_eq!(f[0].train, [2, 3, 4]);
        assert_eq!(f[1].held_out, 2..2);
        assert_eq!(f[1].train, [0, 1, 2, 3, 4]);
        assert_eq!(f[2].held_out, 2..5);
        assert_eq!(f[2].train, [0, 1]);
        assert_eq!(f[2].train_sets, [0, 1]);
    }

    #[test]
    fn two_files_of_one_crisis_are_held_out_together() {
        let path = |p: &str| Dataset {
            path: PathBuf::from(p),
            sha256: String::new(),
            posts: Vec::new(),
        };
        let crises: Vec<String> = [
            "t6/2013_Boston_Bombings.jsonl",
            "t26/2013_Boston_bombings.jsonl",
            "t26/2012_Italy_earthquakes.jsonl",
        ]
        .map(path)
        .iter()
        .map(crisis_of)
        .collect();
        assert_eq!(crises[0], crises[1]);
        let f = folds(&[2, 2, 2], &crises);
        assert_eq!(f[0].train, [4, 5]);
        assert_eq!(f[1].train, [4, 5]);
        assert_eq!(f[2].train, [0, 1, 2, 3]);
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
                        format!("the flood water is rising fast in our street, house {i}")
                    } else {
                        format!("what a lovely sunny day at the park with my friends {i}")
                    },
                    labels: [("danger".to_string(), danger)].into(),
                    crisis: None,
                    event: None,
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
        let loco = rotate(&datasets, &embeddings, &lexicon, info, 0.5, true, || {
            calls += 1
        })
        .unwrap();
        let rotations = &loco.rotations;
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
        // Every held-out post is pooled by its language: all English here.
        assert_eq!(loco.languages.len(), 1, "{:?}", loco.languages);
        assert_eq!(loco.languages[0].lang, "en");
        assert_eq!(
            (loco.languages[0].n, loco.languages[0].positives),
            (450, 150)
        );
        for r in rotations {
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
            languages: vec![Language {
                lang: "fr".into(),
                n: 10,
                positives: 5,
                vigie: metrics(10, 0.8),
                lexicon: metrics(10, 0.4),
                tfidf: metrics(10, 0.6),
            }],
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
        assert_eq!(
            lines[10],
            "| fr | 10 | 5 | 0.800 | **0.800** | 0.400 | 0.400 | 0.600 | 0.600 | 0.080 |"
        );
        let json: serde_json::Value = serde_json::from_str(&loco.to_json().unwrap()).unwrap();
        assert_eq!(json["rotations"][1]["held_out"], "b");
        assert_eq!(json["rotations"][0]["vigie"]["f1"], 0.9);
        assert_eq!(json["languages"][0]["lang"], "fr");
    }
}
