//! The detection bench (`vigie bench detection`): labelled crises replayed in their original
//! order through the embedded pipeline (the real classifier, places and the incident rule),
//! and what an analyst would have seen.
//!
//! Per crisis file, into a fresh index:
//! - **delay to the first alert**: from the first post labelled dangerous to the first post
//!   Vigie scores at or above the alert threshold that is labelled dangerous (and, apart, to the
//!   first alert of any kind, which may come before: a false alert);
//! - **delay to the first incident**: from the first dangerous post to the first post of the
//!   *main* incident (the one holding the most dangerous posts);
//! - **incidents made** (ideally one per crisis; merged ones not counted) and those of three
//!   posts or more;
//! - **share** of the crisis's dangerous posts in its main incident;
//! - **false situations**: incidents none of whose posts is labelled dangerous, per day of the
//!   crisis file's span.
//!
//! Explanations are not computed (they change no score); everything else is what `vigie run`
//! does. Time is the posts' own, so the figures do not depend on the replay speed.

use crate::error::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use vigie_analyse::{Analyser, Scorer};
use vigie_index::{Filters, IncidentFilter, PostIndex, SearchRequest, Sort};
use vigie_ingest::replay::{self, Speed};
use vigie_ingest::{Item, Pseudonymiser};
use vigie_record::Place;
use vigie_situation::IncidentConfig;

/// What one crisis replay showed.
#[derive(Debug, Clone, Serialize)]
pub struct CrisisDetection {
    /// The file's stem.
    pub crisis: String,
    /// Posts replayed.
    pub posts: usize,
    /// Posts labelled dangerous.
    pub dangerous: usize,
    /// Seconds from the first dangerous post to the first true alert (none: never alerted).
    pub first_true_alert_s: Option<i64>,
    /// Seconds from the first dangerous post to the first alert of any kind (negative: a
    /// false alert came first).
    pub first_alert_s: Option<i64>,
    /// Seconds from the first dangerous post to the first post of the main incident.
    pub main_incident_s: Option<i64>,
    /// Incidents made (merged ones not counted).
    pub incidents: usize,
    /// Of those, with three posts or more.
    pub incidents_3plus: usize,
    /// Share of the dangerous posts in the main incident.
    pub main_share: f64,
    /// The main incident's place.
    pub main_place: Option<Place>,
    /// Incidents with no dangerous post.
    pub false_incidents: usize,
    /// Those per day of the file's span.
    pub false_per_day: f64,
}

/// The `labels.danger` of each line of a labelled JSONL file, by its `id` (the native id).
fn truth(path: &Path) -> std::io::Result<HashMap<String, bool>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let id = match &v["id"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let danger = v["labels"]["danger"].as_f64()?;
            Some((id, danger >= 0.5))
        })
        .collect())
}

/// Replays `path` into a fresh index in `dir` with `analyser` (see the module doc).
pub fn detect<S: Scorer>(
    path: &Path,
    dir: &Path,
    analyser: &Analyser<S>,
    incidents: IncidentConfig,
    batch_size: usize,
    pseudonymiser: &Pseudonymiser,
) -> Result<CrisisDetection> {
    let loaded = replay::load(path, None, pseudonymiser)?;
    let labels = truth(path).map_err(|source| crate::StageError::Io {
        what: format!("reading the labels of {}", path.display()),
        source,
    })?;
    let mut danger_ids = HashSet::new();
    let mut first_danger: Option<DateTime<Utc>> = None;
    let (mut first, mut last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    for item in &loaded.items {
        if let Item::Post(e) = item {
            let t = e.post.created_at;
            first = first.min(Some(t)).or(Some(t));
            last = last.max(Some(t));
            if labels.get(&e.post.native_id).copied().unwrap_or(false) {
                danger_ids.insert(e.post.id.to_string());
                first_danger = first_danger.min(Some(t)).or(Some(t));
            }
        }
    }
    let posts = loaded.items.len();
    let index = PostIndex::open(dir)?;
    crate::embedded::replay_into_index_with(
        loaded.items,
        Speed::Max,
        batch_size,
        analyser,
        incidents,
        &index,
        |_| {},
    )?;
    // The alerts, in time order.
    let alerts = index.search(&SearchRequest {
        query: "*".into(),
        limit: posts.max(1),
        filters: Filters {
            min_scores: vec![("danger".into(), incidents.threshold)],
            ..Filters::default()
        },
        sort: Sort::Time,
        cursor: None,
        collapse: false,
    })?;
    let since = |t: DateTime<Utc>| first_danger.map(|d| (t - d).num_seconds());
    let first_alert = alerts.iter().map(|h| h.created_at).min();
    let first_true_alert = alerts
        .iter()
        .filter(|h| danger_ids.contains(&h.id))
        .map(|h| h.created_at)
        .min();
    let (all, _) = index.incidents(&IncidentFilter {
        limit: 10_000,
        ..IncidentFilter::default()
    })?;
    let made: Vec<_> = all.iter().filter(|i| i.merged_into.is_none()).collect();
    let dangerous_in = |i: &vigie_situation::Incident| {
        i.members
            .iter()
            .filter(|m| danger_ids.contains(&m.id))
            .count()
    };
    let main = made
        .iter()
        .max_by(|a, b| {
            dangerous_in(a)
                .cmp(&dangerous_in(b))
                .then_with(|| b.first_seen.cmp(&a.first_seen))
        })
        .filter(|i| dangerous_in(i) > 0);
    let false_incidents = made.iter().filter(|i| dangerous_in(i) == 0).count();
    let days = match (first, last) {
        (Some(a), Some(b)) => ((b - a).num_seconds() as f64 / 86_400.0).max(1.0 / 24.0),
        _ => 1.0,
    };
    Ok(CrisisDetection {
        crisis: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        posts,
        dangerous: danger_ids.len(),
        first_true_alert_s: first_true_alert.and_then(since),
        first_alert_s: first_alert.and_then(since),
        main_incident_s: main.and_then(|i| since(i.first_seen)),
        incidents: made.len(),
        incidents_3plus: made.iter().filter(|i| i.members.len() >= 3).count(),
        main_share: main.map_or(0.0, |i| {
            dangerous_in(i) as f64 / danger_ids.len().max(1) as f64
        }),
        main_place: main.and_then(|i| i.place.clone()),
        false_incidents,
        false_per_day: false_incidents as f64 / days,
    })
}

fn duration(s: Option<i64>) -> String {
    match s {
        None => "never".into(),
        Some(s) if s < 0 => format!("-{}", duration(Some(-s))),
        Some(s) if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        Some(s) => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The Markdown table of the README.
pub fn markdown(rows: &[CrisisDetection]) -> String {
    let mut out = String::from(
        "| crisis | posts | dangerous | first true alert | first alert | main incident | incidents (3+ posts) | share in main | main place | false situations/day |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} ({}) | {:.2} | {} | {:.1} |\n",
            r.crisis,
            r.posts,
            r.dangerous,
            duration(r.first_true_alert_s),
            duration(r.first_alert_s),
            duration(r.main_incident_s),
            r.incidents,
            r.incidents_3plus,
            r.main_share,
            r.main_place
                .as_ref()
                .map_or("-".into(), |p| format!("{} ({})", p.name, p.country)),
            r.false_per_day
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_analyse::{AnalyseError, AnalyserConfig, Scores};

    /// Scores `danger` and `fire` 0.9 on a text saying "fire", 0.1 otherwise.
    struct Keyword;

    impl Scorer for Keyword {
        fn model_id(&self) -> &str {
            "keyword"
        }
        fn score(&self, texts: &[&str]) -> std::result::Result<Vec<Scores>, AnalyseError> {
            Ok(texts
                .iter()
                .map(|t| {
                    let s = if t.contains("fire") { 0.9 } else { 0.1 };
                    [("danger".to_string(), s), ("fire".to_string(), s)].into()
                })
                .collect())
        }
    }

    #[test]
    fn a_replayed_crisis_is_measured_against_its_labels() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("2030_Lyon_fire.jsonl");
        let line = |id: u32, minutes: u32, text: &str, danger: u8| {
            format!(
                r#"{{"id": "{id}", "source": "replay", "text": "{text}", "created_at": "2030-01-01T08:{minutes:02}:00Z", "labels": {{"danger": {danger}}}}}"#
            )
        };
        let lines = [
            // A false alert first, then the crisis, then an unrelated false alert.
            line(1, 0, "campfire songs tonight with marshmallows", 0),
            line(2, 5, "warehouse fire near the station, smoke everywhere", 1),
            line(3, 15, "the warehouse fire is spreading to the station", 1),
            line(4, 20, "nice weather today", 0),
            line(5, 25, "people hurt near the station", 1),
        ];
        std::fs::write(&file, lines.join("\n")).unwrap();
        let analyser = Analyser::new(
            Keyword,
            AnalyserConfig {
                explain_max_words: 0,
                ..AnalyserConfig::default()
            },
        );
        let pseudonymiser = Pseudonymiser::new(&[7u8; 32]);
        let row = detect(
            &file,
            &dir.path().join("index"),
            &analyser,
            IncidentConfig::default(),
            2,
            &pseudonymiser,
        )
        .unwrap();
        assert_eq!(
            (row.crisis.as_str(), row.posts, row.dangerous),
            ("2030_Lyon_fire", 5, 3)
        );
        assert_eq!(row.first_true_alert_s, Some(0));
        assert_eq!(row.first_alert_s, Some(-300));
        assert_eq!(row.main_incident_s, Some(0));
        // The campfire is an incident of its own, with no dangerous post.
        assert_eq!((row.incidents, row.false_incidents), (2, 1));
        // Post 5 was never an alert: 2 of the 3 dangerous posts are in the main incident.
        assert!((row.main_share - 2.0 / 3.0).abs() < 1e-9, "{row:?}");
        assert!(markdown(&[row])
            .contains("| 2030_Lyon_fire | 5 | 3 | 0m00s | -5m00s | 0m00s | 2 (0) |"));
    }
}
