//! The alert ledger: every alert made, and what became of its webhook.
//!
//! `<data_dir>/alerts.jsonl` is append-only. An alert line is written and fsynced **before** the
//! alert is delivered anywhere; the dispatcher makes an alert for a (watch, incident) pair only
//! when the ledger holds none, so each watch is told of each incident **at most once**, across
//! restarts. Each webhook attempt adds a delivery line; an alert whose webhook has no final line
//! (delivered, or given up) is still owed, and a restarted dispatcher resumes it with the same
//! alert id, so a receiver that keeps the ids it accepted sees each alert once.
//!
//! Alerts are numbered from 1 in the order they were made: the number is the id of the
//! server-sent event, so a client that reconnects with `Last-Event-ID` misses nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use vigie_record::Place;

/// The ledger file, relative to the data dir.
pub const LEDGER_FILE: &str = "alerts.jsonl";

/// Why an incident was alerted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// It started in the zone after the watch was made.
    Opened,
    /// It was older, and a post brought it into the zone (or to the watch's words or score).
    Grew,
}

/// The incident, as the alert tells it (a summary: the full view is one API call away).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertIncident {
    /// Its id.
    pub id: String,
    /// Where analysts read it: `/v1/incidents/{id}`.
    pub url: String,
    /// The text of its best post, cut to 140 characters.
    pub title: String,
    /// Its best post's id (the title's source).
    pub best: String,
    /// Its category.
    pub category: String,
    /// Its category family.
    pub family: String,
    /// Its place.
    pub place: Option<Place>,
    /// When its first post was made.
    pub first_seen: DateTime<Utc>,
    /// When its last post was made.
    pub last_seen: DateTime<Utc>,
    /// How many posts it had when alerted.
    pub post_count: usize,
    /// Its highest `danger`.
    pub peak_danger: f32,
}

/// The watch, as the alert names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertWatch {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its owner.
    pub owner: String,
}

/// One alert: a watch told of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// 1, 2, 3... in the order alerts were made (the server-sent event id).
    pub seq: u64,
    /// `al-` and the sequence number.
    pub id: String,
    /// When it was made.
    pub time: DateTime<Utc>,
    /// Why.
    pub reason: Reason,
    /// The watch.
    pub watch: AlertWatch,
    /// The incident.
    pub incident: AlertIncident,
    /// The incident's posts that matched the watch (in its zone, category, words and score).
    pub matched_posts: Vec<String>,
    /// Whether a webhook is owed for it.
    pub webhook: bool,
}

impl Alert {
    /// The ids of the posts whose text or scores the alert shows: the title's post and those
    /// that matched (what an access-log entry of its delivery lists).
    pub fn shown_posts(&self) -> Vec<String> {
        let mut ids = vec![self.incident.best.clone()];
        ids.extend(
            self.matched_posts
                .iter()
                .filter(|p| **p != self.incident.best)
                .cloned(),
        );
        ids
    }
}

/// What one webhook attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The receiver accepted it (2xx): done.
    Delivered,
    /// It failed in a way worth another try (no answer, 5xx, 408, 429).
    Retry,
    /// It failed for good (another 4xx, or the last try): given up.
    GaveUp,
}

/// One webhook attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The alert's sequence number.
    pub seq: u64,
    /// 1 for the first try.
    pub attempt: u32,
    /// When it ended.
    pub time: DateTime<Utc>,
    /// What it did.
    pub outcome: Outcome,
    /// The receiver's HTTP status, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Alert(Box<Alert>),
    Delivery(Delivery),
}

/// What can go wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The file could not be read or written.
    #[error("alert ledger {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of the file is not a ledger line.
    #[error("alert ledger {path}, line {line}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Most alerts kept in memory for clients that reconnect (older ones stay in the file).
pub const RECENT_ALERTS: usize = 10_000;

/// The ledger: the file and, in memory, which pairs were alerted and which webhooks are owed.
#[derive(Clone)]
pub struct Ledger {
    path: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    file: std::fs::File,
    last_seq: u64,
    alerted: HashSet<(String, String)>,
    recent: BTreeMap<u64, Alert>,
    owed: BTreeMap<u64, (Alert, u32)>,
}

impl Ledger {
    /// Opens (or creates) the ledger at `path` and reads it.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let io = |source| LedgerError::Io {
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
        let mut inner = Inner {
            file,
            last_seq: 0,
            alerted: HashSet::new(),
            recent: BTreeMap::new(),
            owed: BTreeMap::new(),
        };
        let reader = std::io::BufReader::new(inner.file.try_clone().map_err(io)?);
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(io)?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(&line).map_err(|e| LedgerError::Invalid {
                path: path.to_path_buf(),
                line: i + 1,
                reason: e.to_string(),
            })?;
            inner.apply(parsed);
        }
        Ok(Ledger {
            path: path.to_path_buf(),
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    fn io(&self, source: std::io::Error) -> LedgerError {
        LedgerError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, LedgerError> {
        self.inner
            .lock()
            .map_err(|_| self.io(std::io::Error::other("ledger lock poisoned")))
    }

    fn write(&self, inner: &mut Inner, line: &Line) -> Result<(), LedgerError> {
        let mut bytes = serde_json::to_vec(line).map_err(|e| self.io(std::io::Error::other(e)))?;
        bytes.push(b'\n');
        inner
            .file
            .write_all(&bytes)
            .and_then(|_| inner.file.sync_data())
            .map_err(|e| self.io(e))
    }

    /// Whether `watch` was already told of `incident`.
    pub fn alerted(&self, watch: &str, incident: &str) -> bool {
        self.lock()
            .map(|i| {
                i.alerted
                    .contains(&(watch.to_string(), incident.to_string()))
            })
            // A ledger we cannot read says "yes": at most once.
            .unwrap_or(true)
    }

    /// Records a new alert (numbered here) and makes it durable; `None` if the pair was
    /// already alerted. Only after this returns may the alert be delivered.
    pub fn record(&self, mut alert: Alert) -> Result<Option<Alert>, LedgerError> {
        let mut inner = self.lock()?;
        let pair = (alert.watch.id.clone(), alert.incident.id.clone());
        if inner.alerted.contains(&pair) {
            return Ok(None);
        }
        alert.seq = inner.last_seq + 1;
        alert.id = format!("al-{}", alert.seq);
        let line = Line::Alert(Box::new(alert.clone()));
        self.write(&mut inner, &line)?;
        inner.apply(line);
        Ok(Some(alert))
    }

    /// Records one webhook attempt.
    pub fn delivery(&self, delivery: Delivery) -> Result<(), LedgerError> {
        let mut inner = self.lock()?;
        let line = Line::Delivery(delivery);
        self.write(&mut inner, &line)?;
        inner.apply(line);
        Ok(())
    }

    /// The webhooks still owed, oldest first, with the number of attempts already made.
    pub fn owed(&self) -> Vec<(Alert, u32)> {
        self.lock()
            .map(|i| i.owed.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The alerts after `seq` still in memory, oldest first.
    pub fn after(&self, seq: u64) -> Vec<Alert> {
        self.lock()
            .map(|i| {
                i.recent
                    .range(seq.saturating_add(1)..)
                    .map(|(_, a)| a.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The number of the last alert made (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.lock().map(|i| i.last_seq).unwrap_or(0)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Inner {
    fn apply(&mut self, line: Line) {
        match line {
            Line::Alert(alert) => {
                let alert = *alert;
                self.last_seq = self.last_seq.max(alert.seq);
                self.alerted
                    .insert((alert.watch.id.clone(), alert.incident.id.clone()));
                if alert.webhook {
                    self.owed.insert(alert.seq, (alert.clone(), 0));
                }
                self.recent.insert(alert.seq, alert);
                while self.recent.len() > RECENT_ALERTS {
                    self.recent.pop_first();
                }
            }
            Line::Delivery(d) => match d.outcome {
                Outcome::Retry => {
                    if let Some((_, attempts)) = self.owed.get_mut(&d.seq) {
                        *attempts = (*attempts).max(d.attempt);
                    }
                }
                Outcome::Delivered | Outcome::GaveUp => {
                    self.owed.remove(&d.seq);
                }
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn alert(watch: &str, incident: &str, webhook: bool) -> Alert {
        let t: DateTime<Utc> = "2026-11-27T08:00:00Z".parse().unwrap();
        Alert {
            seq: 0,
            id: String::new(),
            time: t,
            reason: Reason::Opened,
            watch: AlertWatch {
                id: watch.into(),
                name: "gare".into(),
                owner: "ana".into(),
            },
            incident: AlertIncident {
                id: incident.into(),
                url: format!("/v1/incidents/{incident}"),
                title: "Incendie".into(),
                best: "p1".into(),
                category: "fire".into(),
                family: "fire_explosion".into(),
                place: None,
                first_seen: t,
                last_seen: t,
                post_count: 1,
                peak_danger: 0.9,
            },
            matched_posts: vec!["p1".into(), "p2".into()],
            webhook,
        }
    }

    #[test]
    fn a_pair_is_alerted_once_and_owed_webhooks_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER_FILE);
        let ledger = Ledger::open(&path).unwrap();
        let first = ledger.record(alert("w-1", "inc-a", true)).unwrap().unwrap();
        assert_eq!((first.seq, first.id.as_str()), (1, "al-1"));
        assert_eq!(first.shown_posts(), ["p1", "p2"]);
        assert!(ledger.alerted("w-1", "inc-a"));
        assert!(!ledger.alerted("w-2", "inc-a"));
        assert_eq!(ledger.record(alert("w-1", "inc-a", true)).unwrap(), None);
        let second = ledger
            .record(alert("w-2", "inc-a", false))
            .unwrap()
            .unwrap();
        assert_eq!(second.seq, 2);
        ledger
            .delivery(Delivery {
                seq: 1,
                attempt: 1,
                time: Utc::now(),
                outcome: Outcome::Retry,
                status: Some(503),
                error: None,
            })
            .unwrap();
        // Reopened (a restart): the pair is still alerted, the webhook still owed, after one try.
        let reopened = Ledger::open(&path).unwrap();
        assert!(reopened.alerted("w-1", "inc-a"));
        assert_eq!(reopened.record(alert("w-1", "inc-a", true)).unwrap(), None);
        let owed = reopened.owed();
        assert_eq!(owed.len(), 1);
        assert_eq!((owed[0].0.seq, owed[0].1), (1, 1));
        assert_eq!(reopened.last_seq(), 2);
        assert_eq!(reopened.after(1).len(), 1);
        reopened
            .delivery(Delivery {
                seq: 1,
                attempt: 2,
                time: Utc::now(),
                outcome: Outcome::Delivered,
                status: Some(200),
                error: None,
            })
            .unwrap();
        assert!(Ledger::open(&path).unwrap().owed().is_empty());
        // The numbering goes on after a restart.
        let third = reopened
            .record(alert("w-3", "inc-b", false))
            .unwrap()
            .unwrap();
        assert_eq!(third.seq, 3);
    }
}
