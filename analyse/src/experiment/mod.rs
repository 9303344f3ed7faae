//! The experimenters' work behind `vigie train`, `vigie eval`, `vigie bench classify` and
//! `vigie experiment loco`, as functions that return their results.
//!
//! - [`train`]: fits and calibrates the heads, writes `heads.json` and the [`ModelCard`] that
//!   records the encoder, the files and the held-out metrics.
//! - [`eval`]: metrics per label of a trained classifier on a labelled file, with and without
//!   the cascade; [`report`] draws its charts.
//! - [`loco`]: leave-one-crisis-out, Vigie's heads against the lexicon and TF-IDF baselines.
//! - [`finetune`]: leave-one-crisis-out, the encoder's top layers fine-tuned against the
//!   logistic head on frozen embeddings.
//! - [`bench`](mod@bench): posts/s of the encoder and the classifier.
//!
//! Nothing here prints: each run returns a struct whose methods render it (Markdown, JSON).
//! [`Settings`] holds what the runs take from the binary's configuration.
//!
//! [`ModelCard`]: crate::ModelCard

pub mod bench;
pub mod eval;
pub mod finetune;
pub mod loco;
pub mod report;
pub mod train;

use crate::dataset::Dataset;
use crate::metrics::LabelMetrics;
use crate::{AnalyseError, Classifier, Encoder, EncoderInfo, ModelFiles};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What loading the encoder takes: where its files are, its batch size and threads.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderSettings {
    /// The folder of the model's files (weights, vocabulary, configs).
    pub model_dir: PathBuf,
    /// Texts per forward pass.
    pub batch_size: usize,
    /// CPU threads for the model; 0 leaves libtorch's default.
    pub threads: usize,
    /// What runs the model.
    pub runtime: crate::Runtime,
}

impl EncoderSettings {
    /// Loads the encoder with these settings.
    pub fn load(&self) -> Result<Encoder, AnalyseError> {
        if self.threads > 0 {
            crate::set_threads(self.threads);
        }
        let mut encoder = Encoder::load_with(&ModelFiles::in_dir(&self.model_dir)?, self.runtime)?;
        encoder.set_batch_size(self.batch_size);
        Ok(encoder)
    }
}

/// What the experiments take from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The sentence encoder.
    pub encoder: EncoderSettings,
    /// The folder of the trained heads (`heads.json`) that eval and the benchmark load.
    pub heads_dir: PathBuf,
    /// The embedding cache ([`crate::cache`]); `None` embeds every time.
    pub cache_dir: Option<PathBuf>,
    /// The alert threshold, at which precision, recall and F1 are measured.
    pub alert_threshold: f32,
    /// Whether to draw progress bars (on stderr, and only on a terminal).
    pub progress: bool,
}

impl Settings {
    /// A progress bar for `len` posts, hidden unless [`Settings::progress`].
    fn bar(&self, len: usize, message: &'static str) -> ProgressBar {
        if self.progress {
            progress_bar(len, message)
        } else {
            ProgressBar::hidden()
        }
    }

    /// Embeds `texts` through the cache, with a progress bar.
    fn embed(
        &self,
        encoder: &Encoder,
        texts: &[&str],
        what: &'static str,
    ) -> Result<Vec<Vec<f32>>, AnalyseError> {
        let bar = self.bar(texts.len(), what);
        let v = crate::cache::embed(encoder, texts, self.cache_dir.as_deref(), |done| {
            bar.set_position(done as u64)
        })?;
        bar.finish_and_clear();
        Ok(v)
    }

    /// Embeds each dataset on its own (so each file has its own cache entry, shared by train,
    /// eval and the experiments), in order.
    fn embed_datasets(
        &self,
        encoder: &Encoder,
        datasets: &[Dataset],
    ) -> Result<Vec<Vec<f32>>, AnalyseError> {
        let mut out = Vec::new();
        for d in datasets {
            out.extend(self.embed(encoder, &d.texts(), "embedding")?);
        }
        Ok(out)
    }

    /// The classifier of [`Settings::heads_dir`] over `encoder`.
    fn classifier(&self, encoder: Encoder) -> Result<Classifier, ExperimentError> {
        Classifier::load(encoder, &self.heads_dir).map_err(|source| ExperimentError::Heads {
            dir: self.heads_dir.clone(),
            source,
        })
    }
}

/// A progress bar for `len` posts: `{msg} [=====>    ] pos/len posts, rate, eta`.
pub fn progress_bar(len: usize, message: impl Into<std::borrow::Cow<'static, str>>) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} posts, {per_sec}, eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// What can stop an experiment.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// Loading the model, reading a data file or embedding failed.
    #[error(transparent)]
    Analyse(#[from] AnalyseError),
    /// The trained heads could not be loaded.
    #[error("loading the heads in {}", dir.display())]
    Heads {
        /// The heads folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: AnalyseError,
    },
    /// A file or folder could not be read, made or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// `read`, `create` or `write`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Serialising heads, a card or results failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// plotters failed to draw a chart.
    #[error("drawing: {0}")]
    Drawing(String),
    /// The input has nothing to work on, or lacks what the experiment needs.
    #[error("{0}")]
    Input(String),
    /// The Python encoder of the benchmark failed or said nothing usable.
    #[error("{0}")]
    Python(String),
}

impl ExperimentError {
    /// An I/O error on `path`.
    fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> Self + 'p {
        move |source| ExperimentError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes `bytes` to `path`, naming the path in the error.
fn write_file(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), ExperimentError> {
    std::fs::write(path, bytes).map_err(ExperimentError::io("write", path))
}

/// Makes `dir` and its parents.
fn create_dir(dir: &Path) -> Result<(), ExperimentError> {
    std::fs::create_dir_all(dir).map_err(ExperimentError::io("create", dir))
}

/// The encoder as model cards record it.
fn encoder_info(encoder: &Encoder) -> EncoderInfo {
    EncoderInfo {
        name: encoder.name().into(),
        weights_sha256: encoder.weights_sha256().into(),
    }
}

/// Reads every file of `paths`, in order.
fn load_datasets(paths: &[PathBuf]) -> Result<Vec<Dataset>, AnalyseError> {
    paths.iter().map(|p| Dataset::load(p)).collect()
}

/// The `.jsonl` files of `dir`, sorted by name; none is an error.
pub fn crisis_files(dir: &Path) -> Result<Vec<PathBuf>, ExperimentError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(ExperimentError::io("read", dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ExperimentError::Input(format!(
            "no .jsonl file in {}",
            dir.display()
        )));
    }
    Ok(files)
}

/// The plain-text table of metrics per label that `vigie train` and `vigie eval` print, one
/// line a label, then a line for each label in `skipped` (no head for it).
pub fn metrics_table(metrics: &BTreeMap<String, LabelMetrics>, skipped: &[String]) -> String {
    let mut out = format!(
        "{:<16} {:>6} {:>9} {:>9} {:>7} {:>7} {:>7}\n",
        "label", "n", "precision", "recall", "f1", "AP", "ECE"
    );
    for (label, m) in metrics {
        let _ = writeln!(
            out,
            "{:<16} {:>6} {:>9.3} {:>9.3} {:>7.3} {:>7.3} {:>7.3}",
            label, m.n, m.precision, m.recall, m.f1, m.average_precision, m.ece
        );
    }
    for label in skipped {
        let _ = writeln!(out, "{label:<16} skipped: the model has no head for it");
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Metrics with every rate `x`, on `n` posts.
    pub(crate) fn metrics(n: usize, x: f64) -> LabelMetrics {
        LabelMetrics {
            n,
            positives: n / 2,
            precision: x,
            recall: x,
            f1: x,
            average_precision: x,
            ece: x / 10.0,
        }
    }

    #[test]
    fn the_metrics_table_has_a_line_a_label_and_names_the_skipped_ones() {
        let m = BTreeMap::from([
            ("danger".to_string(), metrics(120, 0.75)),
            ("fire".to_string(), metrics(8, 0.5)),
        ]);
        let table = metrics_table(&m, &["volcano".to_string()]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("label") && lines[0].ends_with("ECE"));
        assert_eq!(
            lines[1],
            "danger              120     0.750     0.750   0.750   0.750   0.075"
        );
        assert!(lines[2].starts_with("fire "));
        assert_eq!(
            lines[3],
            "volcano          skipped: the model has no head for it"
        );
    }

    #[test]
    fn crisis_files_are_the_sorted_jsonl_files_and_none_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(crisis_files(dir.path())
            .unwrap_err()
            .to_string()
            .starts_with("no .jsonl file in"));
        for name in ["b.jsonl", "a.jsonl", "notes.md"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let files = crisis_files(dir.path()).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap()).collect();
        assert_eq!(names, ["a.jsonl", "b.jsonl"]);
        let missing = crisis_files(&dir.path().join("nowhere")).unwrap_err();
        assert!(missing.to_string().starts_with("cannot read"), "{missing}");
    }

    #[test]
    fn a_hidden_progress_bar_when_progress_is_off() {
        let settings = Settings {
            encoder: EncoderSettings {
                model_dir: PathBuf::from("nowhere"),
                batch_size: 8,
                threads: 0,
                runtime: Default::default(),
            },
            heads_dir: PathBuf::from("nowhere"),
            cache_dir: None,
            alert_threshold: 0.5,
            progress: false,
        };
        assert!(settings.bar(10, "x").is_hidden());
        assert_eq!(progress_bar(10, "x").length(), Some(10));
    }
}
