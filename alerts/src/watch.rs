//! Watches: a zone (a disc) and, optionally, a category, words and a minimum score.
//!
//! ## The watches file
//! `<data_dir>/watches.jsonl` is append-only: each line adds a watch or removes one, with who
//! did it and when, so what was watched, by whom and why stays readable after the fact. It is
//! written by `vigie watch` and by the API (`POST`/`DELETE /v1/watches`), one writer at a time
//! (an exclusive lock on the file), and fsynced before the writer answers. A reader re-reads the
//! lines added since it last looked ([`WatchStore::list`]), so a watch added on the command line
//! is seen by a running server at its next scan.
//!
//! The file holds the webhook secrets, so it is made owner-only (0600); no answer of the API
//! ever shows a secret after the one that created it.

use chrono::{DateTime, Utc};
use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use vigie_record::Near;
use vigie_situation::incidents::{CATEGORIES, FAMILIES};

/// The watches file, relative to the data dir.
pub const WATCHES_FILE: &str = "watches.jsonl";
/// Most watches one user may have.
pub const MAX_WATCHES_PER_OWNER: usize = 100;
/// Longest watch name, in characters.
pub const MAX_NAME_CHARS: usize = 80;
/// Longest words (`q`) of a watch, in bytes.
pub const MAX_Q_BYTES: usize = 1000;
/// Longest purpose, in characters.
pub const MAX_PURPOSE_CHARS: usize = 500;
/// Longest webhook URL, in bytes.
pub const MAX_URL_BYTES: usize = 2000;

/// The categories and families a watch may name (see [`vigie_situation::incidents::family`]).
pub fn categories() -> impl Iterator<Item = &'static str> {
    CATEGORIES.into_iter().chain(FAMILIES)
}

/// What a person asks to watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSpec {
    /// A name the owner chooses (unique among their watches): `Gare de Lyon`.
    pub name: String,
    /// Why the place is watched (shown in every alert's access-log entry).
    pub purpose: String,
    /// The zone: an incident matches when one of its posts has a place in it.
    pub near: Near,
    /// Only incidents of this category or family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Only incidents one of whose posts (in the zone) these words match (search syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Only posts whose `danger` is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f32>,
    /// Where alerts are POSTed, signed (see [`crate::webhook`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

/// A watch as stored: what was asked, whose it is, since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// `w-` and 16 random hex digits.
    pub id: String,
    /// Its owner (a user name).
    pub owner: String,
    /// When it was made: it alerts on incidents that change after that.
    pub created: DateTime<Utc>,
    /// What is watched.
    #[serde(flatten)]
    pub spec: WatchSpec,
    /// The key of the webhook's signatures (hex), when it has a webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A watch removed: which, by whom, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Removal {
    /// The watch.
    pub id: String,
    /// Who removed it.
    pub by: String,
    /// When.
    pub time: DateTime<Utc>,
}

/// One line of the watches file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Event {
    Add(Watch),
    Remove(Removal),
}

/// What can go wrong with watches.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The file could not be read or written.
    #[error("watches file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of the file is not a watch event.
    #[error("watches file {path}, line {line}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The watch asked for is not acceptable; the message says why.
    #[error("{0}")]
    Refused(String),
}

/// Checks what `spec` asks, except its words (which need the index: see
/// [`vigie_index::PostIndex::posts_matching`]) and whether its webhook is allowed (the caller's
/// rule).
pub fn check(spec: &WatchSpec) -> Result<(), WatchError> {
    let refuse = |why: String| Err(WatchError::Refused(why));
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return refuse(format!(
            "a watch needs a name of 1 to {MAX_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return refuse("a watch name may not hold control characters".into());
    }
    let purpose = spec.purpose.trim();
    if purpose.is_empty() || purpose.chars().count() > MAX_PURPOSE_CHARS {
        return refuse(format!(
            "a watch needs a purpose (why the place is watched) of 1 to {MAX_PURPOSE_CHARS} \
             characters"
        ));
    }
    if let Some(c) = &spec.category {
        if !categories().any(|k| k == c) {
            let all: Vec<&str> = categories().collect();
            return refuse(format!(
                "unknown category `{c}`; use one of {}",
                all.join(", ")
            ));
        }
    }
    if let Some(q) = &spec.q {
        if q.trim().is_empty() || q.len() > MAX_Q_BYTES {
            return refuse(format!("`q` must hold 1 to {MAX_Q_BYTES} bytes of words"));
        }
    }
    if let Some(s) = spec.min_score {
        if !(0.0..=1.0).contains(&s) {
            return refuse(format!("`min_score` must be within 0 and 1, not {s}"));
        }
    }
    if let Some(url) = &spec.webhook {
        if url.len() > MAX_URL_BYTES {
            return refuse(format!(
                "a webhook URL may hold at most {MAX_URL_BYTES} bytes"
            ));
        }
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| WatchError::Refused(format!("webhook `{url}` is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return refuse(format!(
                "webhook `{url}` must be an http:// or https:// URL"
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return refuse("a webhook URL may not hold credentials; alerts are signed".into());
        }
    }
    Ok(())
}

/// The watches: the file, and in memory every watch not removed.
#[derive(Clone)]
pub struct WatchStore {
    path: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    /// Bytes of the file read so far (complete lines only).
    read: u64,
    /// Lines read so far.
    lines: usize,
    /// The live watches, by id.
    watches: BTreeMap<String, Watch>,
}

fn random_hex(bytes: usize) -> Result<String, std::io::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(hex::encode(buf))
}

impl WatchStore {
    /// Opens (or creates, owner-only) the watches file at `path` and reads it.
    pub fn open(path: &Path) -> Result<Self, WatchError> {
        let store = WatchStore {
            path: path.to_path_buf(),
            inner: Arc::new(Mutex::new(Inner {
                read: 0,
                lines: 0,
                watches: BTreeMap::new(),
            })),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| store.io(e))?;
        }
        store.file()?;
        store.refresh()?;
        Ok(store)
    }

    fn io(&self, source: std::io::Error) -> WatchError {
        WatchError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn file(&self) -> Result<std::fs::File, WatchError> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options.open(&self.path).map_err(|e| self.io(e))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, WatchError> {
        self.inner
            .lock()
            .map_err(|_| self.io(std::io::Error::other("watches lock poisoned")))
    }

    /// Reads the lines added to the file since the last read (by this process or another).
    fn refresh_locked(
        &self,
        inner: &mut Inner,
        file: &mut std::fs::File,
    ) -> Result<(), WatchError> {
        let len = file.metadata().map_err(|e| self.io(e))?.len();
        if len <= inner.read {
            return Ok(());
        }
        file.seek(SeekFrom::Start(inner.read))
            .map_err(|e| self.io(e))?;
        let mut bytes = Vec::new();
        file.take(len - inner.read)
            .read_to_end(&mut bytes)
            .map_err(|e| self.io(e))?;
        // A line still being written (no newline yet) is read next time.
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in bytes[..complete].split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                if !line.is_empty() {
                    inner.lines += 1;
                }
                continue;
            }
            inner.lines += 1;
            let event: Event = serde_json::from_slice(line).map_err(|e| WatchError::Invalid {
                path: self.path.clone(),
                line: inner.lines,
                reason: e.to_string(),
            })?;
            match event {
                Event::Add(w) => {
                    inner.watches.insert(w.id.clone(), w);
                }
                Event::Remove(r) => {
                    inner.watches.remove(&r.id);
                }
            }
        }
        inner.read += complete as u64;
        Ok(())
    }

    /// Reads what was added to the file since the last look.
    pub fn refresh(&self) -> Result<(), WatchError> {
        let mut file = self.file()?;
        let mut inner = self.lock()?;
        self.refresh_locked(&mut inner, &mut file)
    }

    /// Every live watch (after reading what was added to the file), by id.
    pub fn list(&self) -> Result<Vec<Watch>, WatchError> {
        self.refresh()?;
        Ok(self.lock()?.watches.values().cloned().collect())
    }

    /// The live watches of `owner`.
    pub fn of_owner(&self, owner: &str) -> Result<Vec<Watch>, WatchError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|w| w.owner == owner)
            .collect())
    }

    /// Watch `id`, if it is live.
    pub fn get(&self, id: &str) -> Result<Option<Watch>, WatchError> {
        self.refresh()?;
        Ok(self.lock()?.watches.get(id).cloned())
    }

    /// Appends `event` under the file lock, after reading what others appended.
    fn append(
        &self,
        make: impl FnOnce(&Inner) -> Result<Event, WatchError>,
    ) -> Result<Event, WatchError> {
        let mut file = self.file()?;
        let mut inner = self.lock()?;
        FileExt::lock_exclusive(&file).map_err(|e| self.io(e))?;
        let result = (|| {
            self.refresh_locked(&mut inner, &mut file)?;
            let event = make(&inner)?;
            let mut line =
                serde_json::to_vec(&event).map_err(|e| self.io(std::io::Error::other(e)))?;
            line.push(b'\n');
            file.write_all(&line)
                .and_then(|_| file.sync_data())
                .map_err(|e| self.io(e))?;
            self.refresh_locked(&mut inner, &mut file)?;
            Ok(event)
        })();
        let _ = FileExt::unlock(&file);
        result
    }

    /// Adds a watch of `owner` (checked by [`check`]; a name they already use, or a
    /// hundred-and-first watch, is refused). When it has a webhook, a secret is drawn for it.
    pub fn add(&self, owner: &str, mut spec: WatchSpec) -> Result<Watch, WatchError> {
        check(&spec)?;
        spec.name = spec.name.trim().to_string();
        spec.purpose = spec.purpose.trim().to_string();
        let secret = match spec.webhook {
            Some(_) => Some(random_hex(32).map_err(|e| self.io(e))?),
            None => None,
        };
        let id = format!("w-{}", random_hex(8).map_err(|e| self.io(e))?);
        let event = self.append(|inner| {
            let mine: Vec<&Watch> = inner
                .watches
                .values()
                .filter(|w| w.owner == owner)
                .collect();
            if mine.iter().any(|w| w.spec.name == spec.name) {
                return Err(WatchError::Refused(format!(
                    "you already have a watch named `{}`",
                    spec.name
                )));
            }
            if mine.len() >= MAX_WATCHES_PER_OWNER {
                return Err(WatchError::Refused(format!(
                    "at most {MAX_WATCHES_PER_OWNER} watches per user; remove one first"
                )));
            }
            Ok(Event::Add(Watch {
                id,
                owner: owner.to_string(),
                created: Utc::now(),
                spec,
                secret,
            }))
        })?;
        match event {
            Event::Add(w) => Ok(w),
            Event::Remove(_) => Err(self.io(std::io::Error::other("unreachable event"))),
        }
    }

    /// Removes watch `id` of `owner` (`None`: any owner, for the command line); whether there
    /// was one. Another owner's watch is "not there" to them.
    pub fn remove(&self, id: &str, owner: Option<&str>, by: &str) -> Result<bool, WatchError> {
        let outcome = self.append(|inner| match inner.watches.get(id) {
            Some(w) if owner.is_none_or(|o| o == w.owner) => Ok(Event::Remove(Removal {
                id: id.to_string(),
                by: by.to_string(),
                time: Utc::now(),
            })),
            _ => Err(WatchError::Refused(format!("no watch `{id}`"))),
        });
        match outcome {
            Ok(_) => Ok(true),
            Err(WatchError::Refused(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub(crate) fn spec(name: &str) -> WatchSpec {
        WatchSpec {
            name: name.into(),
            purpose: "protection of the station".into(),
            near: "45.76,4.84,10".parse().unwrap(),
            category: None,
            q: None,
            min_score: None,
            webhook: None,
        }
    }

    #[test]
    fn watches_are_added_removed_and_seen_by_another_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WATCHES_FILE);
        let server = WatchStore::open(&path).unwrap();
        let cli = WatchStore::open(&path).unwrap();
        let mut with_hook = spec("Part-Dieu");
        with_hook.webhook = Some("http://127.0.0.1:9/hook".into());
        let a = cli.add("ana", with_hook).unwrap();
        assert!(a.id.starts_with("w-") && a.id.len() == 18, "{}", a.id);
        assert_eq!(a.secret.as_ref().map(String::len), Some(64));
        let b = server.add("ana", spec("Perrache")).unwrap();
        assert_eq!(b.secret, None);
        // Each handle sees the other's lines.
        assert_eq!(server.list().unwrap().len(), 2);
        assert_eq!(cli.of_owner("ana").unwrap().len(), 2);
        // Someone else's watch is not there to remove.
        assert!(!server.remove(&a.id, Some("bob"), "bob").unwrap());
        assert!(server.remove(&a.id, Some("ana"), "ana").unwrap());
        assert!(!server.remove(&a.id, Some("ana"), "ana").unwrap());
        assert_eq!(cli.get(&a.id).unwrap(), None);
        let reopened = WatchStore::open(&path).unwrap();
        assert_eq!(reopened.list().unwrap(), vec![b]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the file holds secrets: {mode:o}");
        }
    }

    #[test]
    fn bad_watches_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let store = WatchStore::open(&dir.path().join(WATCHES_FILE)).unwrap();
        store.add("ana", spec("gare")).unwrap();
        let refused = |s: WatchSpec| match store.add("ana", s) {
            Err(WatchError::Refused(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(refused(spec("gare")).contains("already"));
        assert!(refused(spec("  ")).contains("name"));
        assert!(refused(spec(&"x".repeat(81))).contains("name"));
        assert!(refused(spec("a\u{7}b")).contains("control"));
        let mut s = spec("p");
        s.purpose = " ".into();
        assert!(refused(s).contains("purpose"));
        let mut s = spec("c");
        s.category = Some("weather".into());
        assert!(refused(s).contains("unknown category"));
        let mut s = spec("m");
        s.min_score = Some(1.5);
        assert!(refused(s).contains("min_score"));
        for url in [
            "ftp://x/y",
            "not a url",
            "http://user:pw@host/",
            "file:///etc/passwd",
        ] {
            let mut s = spec("h");
            s.webhook = Some(url.into());
            refused(s);
        }
        // Another user may use the same name.
        store.add("bob", spec("gare")).unwrap();
    }

    #[test]
    fn a_broken_line_is_refused_naming_it_and_a_half_written_one_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WATCHES_FILE);
        let store = WatchStore::open(&path).unwrap();
        store.add("ana", spec("gare")).unwrap();
        // A line still being written: not read yet, not an error.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"remove\":")
            .unwrap();
        assert_eq!(store.list().unwrap().len(), 1);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b" 42}\n")
            .unwrap();
        match WatchStore::open(&path) {
            Err(WatchError::Invalid { line: 2, .. }) => {}
            other => panic!("{:?}", other.err()),
        }
    }
}
