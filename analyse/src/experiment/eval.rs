//! `vigie eval`: the metrics per label of the trained classifier on a labelled file, with the
//! cascade's first stage as configured, and what the cascade cost in `danger` recall.

use super::{metrics_table, report, ExperimentError, Settings};
use crate::dataset::Dataset;
use crate::metrics::{self, LabelMetrics};
use crate::{Classifier, Scorer, Scores, Taxonomy};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Label -> (scores, truth) of the posts with a known value for it, in file order.
pub type Columns = BTreeMap<String, (Vec<f32>, Vec<bool>)>;

/// Scores and known truth of each label of a dataset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    /// Metrics per label the classifier has a head for.
    pub metrics: BTreeMap<String, LabelMetrics>,
    /// Labels of the data without a head, sorted.
    pub skipped: Vec<String>,
    /// The scores and truth the metrics were computed from.
    pub columns: Columns,
}

impl Evaluation {
    /// Measures `scores` (one map per post of `dataset`, in order) on every label that the
    /// dataset gives and `heads` has (or on `only`), at `threshold`; a post counts for a label
    /// only where the label is given.
    pub fn of(
        heads: &[&str],
        dataset: &Dataset,
        scores: &[Scores],
        only: Option<&str>,
        threshold: f32,
    ) -> Self {
        let mut known: Vec<String> = dataset
            .posts
            .iter()
            .flat_map(|p| p.labels.keys().cloned())
            .collect();
        known.sort();
        known.dedup();
        known.retain(|l| only.is_none_or(|o| o == l));
        let mut out = Evaluation::default();
        for label in known {
            if !heads.contains(&label.as_str()) {
                out.skipped.push(label);
                continue;
            }
            let (s, t): (Vec<f32>, Vec<bool>) = dataset
                .posts
                .iter()
                .zip(scores)
                .filter_map(|(p, s)| Some((*s.get(&label)?, *p.labels.get(&label)? == 1)))
                .unzip();
            out.metrics
                .insert(label.clone(), metrics::evaluate(&s, &t, threshold));
            out.columns.insert(label, (s, t));
        }
        out
    }

    /// The `danger` recall, 0 when `danger` was not measured.
    fn danger_recall(&self) -> f64 {
        self.metrics.get(Taxonomy::DANGER).map_or(0.0, |m| m.recall)
    }
}

/// What the cascade's first stage did on an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct CascadeEffect {
    /// Posts it stopped before the transformer.
    pub stopped: usize,
    /// Posts scored.
    pub posts: usize,
    /// `danger` recall with the cascade.
    pub recall_with: f64,
    /// `danger` recall without it.
    pub recall_without: f64,
}

/// The result of [`run`].
#[derive(Debug, Clone)]
pub struct EvalReport {
    /// The model id of the classifier.
    pub model: String,
    /// The labelled file.
    pub data: PathBuf,
    /// Posts in it.
    pub posts: usize,
    /// The metrics, with the cascade as configured.
    pub evaluation: Evaluation,
    /// What the cascade did, when it stopped any post.
    pub cascade: Option<CascadeEffect>,
}

/// The JSON of `vigie eval --json`.
#[derive(Serialize)]
struct EvalJson<'a> {
    model: &'a str,
    labels: &'a BTreeMap<String, LabelMetrics>,
    skipped: &'a [String],
}

impl EvalReport {
    /// The one-line JSON of `vigie eval --json`: `model`, `labels` (metrics per label) and
    /// `skipped` (labels without a head).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&EvalJson {
            model: &self.model,
            labels: &self.evaluation.metrics,
            skipped: &self.evaluation.skipped,
        })
    }

    /// What `vigie eval` prints: the cascade's effect (when it stopped posts), the model and
    /// data, then the metrics table.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(c) = &self.cascade {
            out.push_str(&format!(
                "cascade: stopped {} of {} posts before the transformer; danger recall {:.3} \
                 with it, {:.3} without\n",
                c.stopped, c.posts, c.recall_with, c.recall_without
            ));
        }
        out.push_str(&format!(
            "model {} on {} ({} posts)\n",
            self.model,
            self.data.display(),
            self.posts
        ));
        out.push_str(&metrics_table(
            &self.evaluation.metrics,
            &self.evaluation.skipped,
        ));
        out
    }

    /// Writes the charts and `index.html` of this evaluation into `dir` ([`report::write`]);
    /// returns the path of `index.html`.
    pub fn write_report(&self, dir: &Path) -> Result<PathBuf, ExperimentError> {
        report::write(
            dir,
            &self.model,
            &self.data,
            &self.evaluation.metrics,
            &self.evaluation.columns,
        )?;
        Ok(dir.join("index.html"))
    }
}

/// Scores the labelled file `data` with the classifier of [`Settings::heads_dir`] and
/// measures every label it gives (or only `label`).
pub fn run(
    settings: &Settings,
    data: &Path,
    label: Option<&str>,
) -> Result<EvalReport, ExperimentError> {
    let dataset = Dataset::load(data)?;
    let classifier = settings.classifier(settings.encoder.load()?)?;
    let texts = dataset.texts();
    let embeddings = settings.embed(classifier.encoder(), &texts, "scoring")?;
    let mut scores = classifier.score_embeddings(&embeddings);
    let measure = |c: &Classifier, scores: &[Scores]| {
        let heads: Vec<&str> = c.labels().collect();
        Evaluation::of(&heads, &dataset, scores, label, settings.alert_threshold)
    };
    let without = measure(&classifier, &scores);
    let stopped = classifier.apply_cascade(&texts, &mut scores);
    let evaluation = measure(&classifier, &scores);
    let cascade = (stopped > 0).then(|| CascadeEffect {
        stopped,
        posts: texts.len(),
        recall_with: evaluation.danger_recall(),
        recall_without: without.danger_recall(),
    });
    Ok(EvalReport {
        model: classifier.model_id().to_string(),
        data: data.to_path_buf(),
        posts: dataset.posts.len(),
        evaluation,
        cascade,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::LabelledPost;

    fn dataset() -> Dataset {
        let post = |id: &str, labels: &[(&str, u8)]| LabelledPost {
            id: id.into(),
            text: id.into(),
            labels: labels.iter().map(|(l, v)| (l.to_string(), *v)).collect(),
        };
        Dataset {
            path: PathBuf::from("eval.jsonl"),
            sha256: String::new(),
            posts: vec![
                post("a", &[("danger", 1), ("fire", 1)]),
                post("b", &[("danger", 0)]),
                post("c", &[("danger", 1), ("volcano", 1)]),
                post("d", &[]),
            ],
        }
    }

    fn scores(danger: &[f32]) -> Vec<Scores> {
        danger
            .iter()
            .map(|&d| Scores::from([("danger".into(), d), ("fire".into(), d)]))
            .collect()
    }

    #[test]
    fn labels_without_a_head_are_skipped_and_unknown_values_do_not_count() {
        let e = Evaluation::of(
            &["danger", "fire"],
            &dataset(),
            &scores(&[0.9, 0.1, 0.2, 0.8]),
            None,
            0.5,
        );
        assert_eq!(e.skipped, ["volcano"]);
        assert_eq!(
            e.columns["danger"],
            (vec![0.9, 0.1, 0.2], vec![true, false, true])
        );
        assert_eq!(e.columns["fire"], (vec![0.9], vec![true]));
        let danger = &e.metrics["danger"];
        assert_eq!((danger.n, danger.positives), (3, 2));
        assert_eq!((danger.precision, danger.recall), (1.0, 0.5));

        let only = Evaluation::of(
            &["danger"],
            &dataset(),
            &scores(&[0.9; 4]),
            Some("fire"),
            0.5,
        );
        assert!(only.metrics.is_empty());
        assert_eq!(only.skipped, ["fire"]);
    }

    #[test]
    fn the_report_renders_as_the_json_and_the_text_of_vigie_eval() {
        let evaluation = Evaluation::of(
            &["danger"],
            &dataset(),
            &scores(&[0.9, 0.1, 0.2, 0.8]),
            None,
            0.5,
        );
        let mut report = EvalReport {
            model: "heads-0123".into(),
            data: PathBuf::from("eval.jsonl"),
            posts: 4,
            evaluation,
            cascade: None,
        };
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        assert_eq!(json["model"], "heads-0123");
        assert_eq!(json["labels"]["danger"]["n"], 3);
        assert_eq!(json["skipped"], serde_json::json!(["fire", "volcano"]));
        let text = report.text();
        assert!(text.starts_with("model heads-0123 on eval.jsonl (4 posts)\nlabel "));
        assert!(text.contains("\nvolcano          skipped"));

        report.cascade = Some(CascadeEffect {
            stopped: 2,
            posts: 4,
            recall_with: 0.5,
            recall_without: 0.75,
        });
        assert!(report.text().starts_with(
            "cascade: stopped 2 of 4 posts before the transformer; danger recall 0.500 with \
             it, 0.750 without\nmodel "
        ));
    }
}
