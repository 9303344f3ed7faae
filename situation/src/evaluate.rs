//! Measuring place resolution on a hand-labelled sample (`vigie experiment places`).
//!
//! A sample line is a post (`text`, `lang`) with the populated places a person found in it
//! (`places`: name, country, GeoNames id when the gazetteer has it, lat, lon). A resolved place
//! is *right* when it is one of them: the same GeoNames id, or, for a labelled place the
//! gazetteer lacks, within [`MATCH_KM`] of it. Precision is right / resolved, recall is right /
//! labelled, per language and in all; a labelled place is matched at most once.

use crate::PlaceResolver;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use vigie_record::GeoPoint;

/// A resolved place this close to a labelled place without a GeoNames id matches it.
pub const MATCH_KM: f64 = 10.0;

/// One labelled place.
#[derive(Debug, Clone, Deserialize)]
pub struct Labelled {
    /// Its name.
    pub name: String,
    /// Its GeoNames id, when the gazetteer has it.
    pub geonames_id: Option<u32>,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// One line of a sample.
#[derive(Debug, Clone, Deserialize)]
pub struct SamplePost {
    /// The text.
    pub text: String,
    /// Its language, as the labeller read it.
    pub lang: String,
    /// The places it names.
    pub places: Vec<Labelled>,
}

/// Counts for one language (or all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Posts.
    pub posts: usize,
    /// Places labelled.
    pub labelled: usize,
    /// Places resolved.
    pub resolved: usize,
    /// Resolved places that are labelled ones.
    pub right: usize,
}

impl Counts {
    /// right / resolved (1 when nothing was resolved).
    pub fn precision(&self) -> f64 {
        if self.resolved == 0 {
            1.0
        } else {
            self.right as f64 / self.resolved as f64
        }
    }

    /// right / labelled (1 when nothing was labelled).
    pub fn recall(&self) -> f64 {
        if self.labelled == 0 {
            1.0
        } else {
            self.right as f64 / self.labelled as f64
        }
    }

    fn add(&mut self, o: Counts) {
        self.posts += o.posts;
        self.labelled += o.labelled;
        self.resolved += o.resolved;
        self.right += o.right;
    }
}

/// The measure of one sample file.
#[derive(Debug, Clone, Serialize)]
pub struct PlaceEval {
    /// The file.
    pub file: String,
    /// Per language.
    pub by_lang: BTreeMap<String, Counts>,
    /// In all.
    pub all: Counts,
    /// Wrong resolutions and misses, for reading (at most 40 of each).
    pub errors: Vec<String>,
}

/// Why a sample cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line is not a sample post.
    #[error("{path}, line {line}: {source}")]
    Line {
        /// The file.
        path: std::path::PathBuf,
        /// The line.
        line: usize,
        /// The error.
        source: serde_json::Error,
    },
}

/// Counts one post's resolution against its labels; says what went wrong.
fn score(resolver: &PlaceResolver, post: &SamplePost, errors: &mut Vec<String>) -> Counts {
    let resolved = resolver.resolve_text(&post.text, Some(&post.lang));
    let mut unmatched: Vec<&Labelled> = post.places.iter().collect();
    let mut right = 0;
    for p in &resolved {
        let hit = unmatched.iter().position(|l| match l.geonames_id {
            Some(id) => p.geonames_id == Some(id),
            None => {
                GeoPoint::new(l.lat, l.lon).is_some_and(|q| q.distance_km(&p.point()) <= MATCH_KM)
            }
        });
        match hit {
            Some(i) => {
                unmatched.remove(i);
                right += 1;
            }
            None if errors.len() < 80 => errors.push(format!(
                "wrong: {} ({}, {:.3}) for {:?} in {:?}",
                p.name,
                p.country,
                p.confidence,
                p.mention.as_deref().unwrap_or(""),
                post.text
            )),
            None => {}
        }
    }
    for l in unmatched {
        if errors.len() < 80 {
            errors.push(format!("missed: {} in {:?}", l.name, post.text));
        }
    }
    Counts {
        posts: 1,
        labelled: post.places.len(),
        resolved: resolved.len(),
        right,
    }
}

/// Measures `resolver` on the sample file `path`.
pub fn evaluate(resolver: &PlaceResolver, path: &Path) -> Result<PlaceEval, SampleError> {
    let text = std::fs::read_to_string(path).map_err(|source| SampleError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut by_lang: BTreeMap<String, Counts> = BTreeMap::new();
    let mut all = Counts::default();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let post: SamplePost = serde_json::from_str(line).map_err(|source| SampleError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            source,
        })?;
        let c = score(resolver, &post, &mut errors);
        by_lang.entry(post.lang.clone()).or_default().add(c);
        all.add(c);
    }
    Ok(PlaceEval {
        file: path.display().to_string(),
        by_lang,
        all,
        errors,
    })
}

impl PlaceEval {
    /// A Markdown table: one row per language with 10 posts or more, and all.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "{}\n\n| lang | posts | labelled | resolved | right | precision | recall |\n|---|---|---|---|---|---|---|\n",
            self.file
        );
        let row = |name: &str, c: &Counts| {
            format!(
                "| {name} | {} | {} | {} | {} | {:.3} | {:.3} |\n",
                c.posts,
                c.labelled,
                c.resolved,
                c.right,
                c.precision(),
                c.recall()
            )
        };
        for (lang, c) in &self.by_lang {
            if c.posts >= 10 {
                out.push_str(&row(lang, c));
            }
        }
        out.push_str(&row("all", &self.all));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gazetteer::tests::entry;
    use crate::Gazetteer;
    use std::sync::Arc;

    #[test]
    fn right_wrong_and_missed_places_are_counted() {
        let g = Gazetteer::from_entries(vec![
            entry(1, "Lyon", "FR", 500000, 45.748, 4.847),
            entry(2, "Paris", "FR", 2000000, 48.853, 2.349),
        ]);
        let r = PlaceResolver::new(Arc::new(g), Default::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"text": "Incendie à Lyon", "lang": "fr", "places": [{"name": "Lyon", "geonames_id": 1, "lat": 45.7, "lon": 4.8}]}"#,
                "\n",
                r#"{"text": "Explosion à Paris", "lang": "fr", "places": [{"name": "Versailles", "geonames_id": null, "lat": 48.80, "lon": 2.13}]}"#,
                "\n",
                r#"{"text": "Flood in Springfield", "lang": "en", "places": [{"name": "Springfield", "geonames_id": 9, "lat": 39.8, "lon": -89.6}]}"#,
                "\n"
            ),
        )
        .unwrap();
        let ev = evaluate(&r, &path).unwrap();
        assert_eq!(
            ev.all,
            Counts {
                posts: 3,
                labelled: 3,
                resolved: 2,
                right: 1
            }
        );
        assert_eq!(ev.by_lang["fr"].resolved, 2);
        assert!(ev.errors.iter().any(|e| e.starts_with("wrong: Paris")));
        assert!(ev
            .errors
            .iter()
            .any(|e| e.starts_with("missed: Springfield")));
        assert!(ev
            .markdown()
            .contains("| all | 3 | 3 | 2 | 1 | 0.500 | 0.333 |"));
        std::fs::write(&path, "{not json\n").unwrap();
        assert!(evaluate(&r, &path)
            .unwrap_err()
            .to_string()
            .contains("line 1"));
    }
}
