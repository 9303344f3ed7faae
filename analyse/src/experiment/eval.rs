//! `vigie eval`: the metrics per label of the trained classifier on a labelled file, with the
//! cascade's first stage as configured, and what the cascade cost in `danger` recall; with
//! `--by lang|event|crisis`, the same metrics per group, so that a user sees where the model is
//! weak.

use super::{metrics_table, report, ExperimentError, Settings};
use crate::dataset::{Dataset, LabelledPost};
use crate::metrics::{self, LabelMetrics};
use crate::{Scorer, Scores, Taxonomy};
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

/// What `vigie eval --by` groups posts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The language Vigie detects in the text ([`vigie_record::lang::detect`]), as ingest does
    /// for a source that gives none; `und` when it finds none reliably.
    Lang,
    /// The crisis type of the file (`event`); `none` for a post without one.
    Event,
    /// The crisis of the file (`crisis`); `none` for a post without one.
    Crisis,
}

impl GroupBy {
    /// The group of `post`.
    pub fn of(self, post: &LabelledPost) -> String {
        let named = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        match self {
            GroupBy::Lang => crate::centring::language(&post.text),
            GroupBy::Event => named(&post.event),
            GroupBy::Crisis => named(&post.crisis),
        }
    }

    /// Its name, as `--by` takes it.
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Lang => "lang",
            GroupBy::Event => "event",
            GroupBy::Crisis => "crisis",
        }
    }
}

/// The metrics of one group of posts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The group's value (`fr`, `earthquake`...).
    pub name: String,
    /// Posts in it.
    pub posts: usize,
    /// Metrics per label, as for the whole file.
    pub labels: BTreeMap<String, LabelMetrics>,
}

/// The groups of `dataset` under `by`, largest first (then by name), each measured like the
/// whole file.
pub fn groups(
    by: GroupBy,
    heads: &[&str],
    dataset: &Dataset,
    scores: &[Scores],
    only: Option<&str>,
    threshold: f32,
) -> Vec<Group> {
    let mut members: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, post) in dataset.posts.iter().enumerate() {
        members.entry(by.of(post)).or_default().push(i);
    }
    let mut out: Vec<Group> = members
        .into_iter()
        .map(|(name, rows)| {
            let subset = Dataset {
                path: dataset.path.clone(),
                sha256: dataset.sha256.clone(),
                posts: rows.iter().map(|&i| dataset.posts[i].clone()).collect(),
            };
            let sub_scores: Vec<Scores> = rows.iter().map(|&i| scores[i].clone()).collect();
            let e = Evaluation::of(heads, &subset, &sub_scores, only, threshold);
            Group {
                name,
                posts: rows.len(),
                labels: e.metrics,
            }
        })
        .collect();
    out.sort_by(|a, b| b.posts.cmp(&a.posts).then_with(|| a.name.cmp(&b.name)));
    out
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
    /// With `--by`: what the posts were grouped by, and the groups.
    pub groups: Option<(GroupBy, Vec<Group>)>,
}

/// The JSON of `vigie eval --json`.
#[derive(Serialize)]
struct EvalJson<'a> {
    model: &'a str,
    labels: &'a BTreeMap<String, LabelMetrics>,
    skipped: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<&'a [Group]>,
}

impl EvalReport {
    /// The one-line JSON of `vigie eval --json`: `model`, `labels` (metrics per label) and
    /// `skipped` (labels without a head); with `--by`, also `by` and `groups` (name, posts,
    /// labels).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&EvalJson {
            model: &self.model,
            labels: &self.evaluation.metrics,
            skipped: &self.evaluation.skipped,
            by: self.groups.as_ref().map(|(by, _)| by.name()),
            groups: self.groups.as_ref().map(|(_, g)| g.as_slice()),
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
        if let Some((by, groups)) = &self.groups {
            for g in groups {
                out.push_str(&format!("\n{}={} ({} posts)\n", by.name(), g.name, g.posts));
                out.push_str(&metrics_table(&g.labels, &[]));
            }
        }
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
    by: Option<GroupBy>,
) -> Result<EvalReport, ExperimentError> {
    let dataset = Dataset::load(data)?;
    let classifier = settings.classifier(settings.encoder.load()?)?;
    let texts = dataset.texts();
    let embeddings = settings.embed(classifier.encoder(), &texts, "scoring")?;
    let mut scores = classifier.score_embeddings(&texts, &embeddings);
    let heads: Vec<&str> = classifier.labels().collect();
    let measure = |scores: &[Scores]| {
        Evaluation::of(&heads, &dataset, scores, label, settings.alert_threshold)
    };
    let without = measure(&scores);
    let stopped = classifier.apply_cascade(&texts, &mut scores);
    let evaluation = measure(&scores);
    let groups = by.map(|by| {
        let g = groups(
            by,
            &heads,
            &dataset,
            &scores,
            label,
            settings.alert_threshold,
        );
        (by, g)
    });
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
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset() -> Dataset {
        let post = |id: &str, labels: &[(&str, u8)]| LabelledPost {
            id: id.into(),
            text: id.into(),
            labels: labels.iter().map(|(l, v)| (l.to_string(), *v)).collect(),
            crisis: None,
            event: (id != "d").then(|| if id == "b" { "floods" } else { "fire" }.into()),
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
            groups: None,
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

    #[test]
    fn groups_are_measured_like_the_whole_file_largest_first() {
        let scores = scores(&[0.9, 0.1, 0.2, 0.8]);
        let g = groups(GroupBy::Event, &["danger"], &dataset(), &scores, None, 0.5);
        let names: Vec<(&str, usize)> = g.iter().map(|g| (g.name.as_str(), g.posts)).collect();
        assert_eq!(names, [("fire", 2), ("floods", 1), ("none", 1)]);
        let fire = &g[0].labels["danger"];
        assert_eq!((fire.n, fire.positives, fire.recall), (2, 2, 0.5));
        // "d" has no danger label: its group is there, with nothing measured.
        assert!(g[2].labels.is_empty());

        let report = EvalReport {
            model: "heads-0123".into(),
            data: PathBuf::from("eval.jsonl"),
            posts: 4,
            evaluation: Evaluation::of(&["danger"], &dataset(), &scores, None, 0.5),
            cascade: None,
            groups: Some((GroupBy::Event, g)),
        };
        assert!(report.text().contains("\nevent=floods (1 posts)\nlabel "));
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        assert_eq!(json["by"], "event");
        assert_eq!(json["groups"][0]["name"], "fire");
        assert_eq!(json["groups"][0]["labels"]["danger"]["n"], 2);
    }

    #[test]
    fn the_language_is_the_one_vigie_detects_not_a_field_of_the_file() {
        let post = |text: &str| LabelledPost {
            id: "x".into(),
            text: text.into(),
            labels: BTreeMap::new(),
            crisis: None,
            event: None,
        };
        let fr =
            post("Un incendie ravage un entrepôt près de la gare, les pompiers sont sur place");
        assert_eq!(GroupBy::Lang.of(&fr), "fr");
        assert_eq!(GroupBy::Lang.of(&post("@x https://t.co/y")), "und");
    }
}
