//! Human decisions on alerts: `POST /v1/posts/{id}/review`.
//!
//! A review is a person's verdict on a post (`confirmed`, `false_alarm`, `unclear`) with a note,
//! or on an incident (`confirmed`, `false_alarm`, `duplicate` of another), stored for the
//! incident and for each of its posts, naming the incident (`POST /v1/incidents/{id}/review`).
//! Reviews are appended to `<data_dir>/reviews.jsonl` and fsynced before the answer; they are
//! never changed or removed (a new review supersedes in reading, not in storage). Nothing in
//! Vigie acts on a score or a review by itself: reviews are shown in a post's lineage and take it
//! off the list of alerts to review.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The reviews file, relative to the data dir.
pub const REVIEWS_FILE: &str = "reviews.jsonl";

/// A reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The post reports a real danger situation.
    Confirmed,
    /// It does not.
    FalseAlarm,
    /// The reviewer cannot tell.
    Unclear,
    /// (Incidents only) the same situation as another incident (`duplicate_of`).
    Duplicate,
}

/// One review, as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Review {
    /// The post reviewed.
    pub post: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The reviewer's note.
    pub note: String,
    /// Who reviewed.
    pub user: String,
    /// When.
    pub time: DateTime<Utc>,
    /// The incident reviewed, when the review was given to an incident (stored for the
    /// incident and for each of its posts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// For `duplicate`: the incident it duplicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
}

/// What can go wrong with reviews.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The file could not be read or written.
    #[error("reviews file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of the file is not a review.
    #[error("reviews file {path}, line {line}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The reviews: an append-only file and, in memory, the reviews of each post.
#[derive(Clone)]
pub struct ReviewStore {
    path: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    file: std::fs::File,
    by_post: HashMap<String, Vec<Review>>,
}

impl ReviewStore {
    /// Opens (or creates) the reviews file at `path` and reads it.
    pub fn open(path: &Path) -> Result<Self, ReviewError> {
        let io = |source| ReviewError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let mut by_post: HashMap<String, Vec<Review>> = HashMap::new();
        for (i, line) in std::io::BufReader::new(&file).lines().enumerate() {
            let line = line.map_err(io)?;
            if line.trim().is_empty() {
                continue;
            }
            let review: Review = serde_json::from_str(&line).map_err(|e| ReviewError::Invalid {
                path: path.to_path_buf(),
                line: i + 1,
                reason: e.to_string(),
            })?;
            by_post.entry(review.post.clone()).or_default().push(review);
        }
        Ok(ReviewStore {
            path: path.to_path_buf(),
            inner: Arc::new(Mutex::new(Inner { file, by_post })),
        })
    }

    /// Appends `review` and fsyncs (blocking).
    pub fn add(&self, review: Review) -> Result<(), ReviewError> {
        let io = |source| ReviewError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(&review).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| io(std::io::Error::other("reviews lock poisoned")))?;
        inner
            .file
            .write_all(&line)
            .and_then(|_| inner.file.sync_data())
            .map_err(io)?;
        inner
            .by_post
            .entry(review.post.clone())
            .or_default()
            .push(review);
        Ok(())
    }

    /// The reviews of post `id`, oldest first.
    pub fn for_post(&self, id: &str) -> Vec<Review> {
        self.inner
            .lock()
            .map(|i| i.by_post.get(id).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Ids of the posts reviewed at least once.
    pub fn reviewed(&self) -> std::collections::HashSet<String> {
        self.inner
            .lock()
            .map(|i| i.by_post.keys().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reviews_are_kept_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(REVIEWS_FILE);
        let store = ReviewStore::open(&path).unwrap();
        let review = Review {
            post: "p1".into(),
            verdict: Verdict::FalseAlarm,
            note: "a drill".into(),
            user: "ana".into(),
            time: Utc::now(),
            incident: None,
            duplicate_of: None,
        };
        store.add(review.clone()).unwrap();
        let reopened = ReviewStore::open(&path).unwrap();
        assert_eq!(reopened.for_post("p1"), [review]);
        assert!(reopened.for_post("p2").is_empty());
        assert!(reopened.reviewed().contains("p1"));
    }
}
