//! What each source has committed: its cursor, its counters and its coverage gaps.
//!
//! ## On disk
//! One JSON file per source configuration, `<data_dir>/cursors/<name>.json` ([`SourceState`]).
//! It is written atomically: the new content goes to `<name>.json.tmp`, which is flushed to
//! disk (`fsync`), then renamed over the old file, and the directory is flushed so the rename
//! itself survives a power cut. A reader therefore sees either the previous state or the new
//! one, never a mix; a crash in the middle leaves at most a stale `.tmp` file, which the next
//! write replaces.
//!
//! ## When it is written
//! The [`driver`](crate::driver) saves the state after the sink accepted a batch (new cursor),
//! and when a gap opens or closes (an outage starts or ends). The cursor in this file is
//! therefore always one whose posts are safe downstream.
//!
//! ## Gaps
//! The file keeps the source's coverage [`Gap`]s (defined in [`coverage`](crate::coverage),
//! re-exported here): only the most recent [`MAX_GAPS`] are kept.

use crate::IngestError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::coverage::Cursor;
/// The coverage gaps a state file keeps (defined in [`coverage`](crate::coverage)).
pub use crate::coverage::{Gap, GapKind};

/// How many gaps a state file keeps (the oldest are dropped first).
pub const MAX_GAPS: usize = 500;

/// Everything committed for one source configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// The source configuration's name.
    pub name: String,
    /// The source's kind (`mastodon`, `rss`...).
    pub kind: String,
    /// The cursor after the last batch accepted downstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// When the cursor was last committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<DateTime<Utc>>,
    /// Posts accepted downstream, in all runs.
    #[serde(default)]
    pub posts: u64,
    /// Deletions accepted downstream, in all runs.
    #[serde(default)]
    pub deletions: u64,
    /// Malformed items skipped, in all runs.
    #[serde(default)]
    pub skipped: u64,
    /// The last error, while the source is failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Coverage gaps, oldest first.
    #[serde(default)]
    pub gaps: Vec<Gap>,
}

impl SourceState {
    /// Records `gap`, dropping the oldest beyond [`MAX_GAPS`].
    pub fn push_gap(&mut self, gap: Gap) {
        self.gaps.push(gap);
        if self.gaps.len() > MAX_GAPS {
            let extra = self.gaps.len() - MAX_GAPS;
            self.gaps.drain(..extra);
        }
    }

    /// The outage going on, if any.
    pub fn open_outage(&mut self) -> Option<&mut Gap> {
        self.gaps
            .iter_mut()
            .rev()
            .find(|g| g.kind == GapKind::Outage && g.to.is_none())
    }
}

/// The directory of state files, `<data_dir>/cursors/`.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// The store in `<data_dir>/cursors/` (created on first save).
    pub fn in_data_dir(data_dir: &Path) -> Self {
        StateStore {
            dir: data_dir.join("cursors"),
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn io_err(&self, path: &Path, error: std::io::Error) -> IngestError {
        IngestError::Io {
            source_name: "cursors".into(),
            location: path.display().to_string(),
            error,
        }
    }

    /// The committed state of source `name`, or a fresh one if it never committed.
    pub fn load(&self, name: &str, kind: &str) -> Result<SourceState, IngestError> {
        let path = self.path(name);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| IngestError::Malformed {
                source_name: name.into(),
                location: path.display().to_string(),
                message: format!("corrupt state file: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SourceState {
                name: name.into(),
                kind: kind.into(),
                ..Default::default()
            }),
            Err(e) => Err(self.io_err(&path, e)),
        }
    }

    /// Every committed state, by name.
    pub fn list(&self) -> Result<Vec<SourceState>, IngestError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_err(&self.dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io_err(&self.dir, e))?;
            let file = entry.file_name();
            if let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json")) {
                names.push(name.to_string());
            }
        }
        names.sort();
        names.iter().map(|n| self.load(n, "")).collect()
    }

    /// Writes `state` atomically (temporary file, fsync, rename, fsync of the directory).
    pub fn save(&self, state: &SourceState) -> Result<(), IngestError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io_err(&self.dir, e))?;
        let path = self.path(&state.name);
        let tmp = self.dir.join(format!("{}.json.tmp", state.name));
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| IngestError::Malformed {
            source_name: state.name.clone(),
            location: path.display().to_string(),
            message: format!("state does not serialise: {e}"),
        })?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| self.io_err(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_atomically_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::in_data_dir(dir.path());
        let mut s = store.load("mamot", "mastodon").unwrap();
        assert_eq!(s.cursor, None);
        s.cursor = Some(Cursor(serde_json::json!({"min_id": "42"})));
        s.push_gap(Gap {
            kind: GapKind::Outage,
            from: "2026-11-27T08:00:00Z".parse().unwrap(),
            to: None,
            detail: "connection refused".into(),
        });
        store.save(&s).unwrap();
        assert!(dir.path().join("cursors/mamot.json").is_file());
        assert!(!dir.path().join("cursors/mamot.json.tmp").exists());
        let back = store.load("mamot", "mastodon").unwrap();
        assert_eq!(back, s);
        assert!(back.clone().open_outage().is_some());
        assert_eq!(store.list().unwrap(), vec![s]);
    }

    #[test]
    fn gaps_are_bounded() {
        let mut s = SourceState::default();
        for i in 0..(MAX_GAPS + 3) {
            s.push_gap(Gap {
                kind: GapKind::RateLimited,
                from: Utc::now(),
                to: None,
                detail: i.to_string(),
            });
        }
        assert_eq!(s.gaps.len(), MAX_GAPS);
        assert_eq!(s.gaps[0].detail, "3");
    }

    #[test]
    fn a_corrupt_state_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cursors")).unwrap();
        std::fs::write(dir.path().join("cursors/x.json"), "{not json").unwrap();
        let e = StateStore::in_data_dir(dir.path())
            .load("x", "rss")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cursors/x.json") && e.contains("corrupt"), "{e}");
    }
}
