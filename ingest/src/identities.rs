//! The identity file: the only link from a pseudonym back to the handle it replaced.
//!
//! A pseudonym is an HMAC ([`crate::Pseudonymiser`]): nobody, not even with the key, can turn
//! it back into a handle. So that an administrator can still re-identify an author when there
//! is a legitimate reason (`vigie reidentify PSEUDONYM --purpose TEXT`, itself logged), the
//! ingestors note, at ingest, which handle each pseudonym stands for: one JSON line
//! `{"pseudonym","source","handle","seen"}` per pseudonym and UTC day it was seen, in
//! `<data_dir>/keys/identities.jsonl` ([`IDENTITIES_FILE`]).
//!
//! ## Who can read it
//! The file is created mode 0600 in a directory made 0700, next to the pseudonym key: only the
//! operator's account (and root) can read it. Nothing else in Vigie reads it but
//! `vigie reidentify`; the API never does.
//!
//! ## Guarantees
//! - Recorded before delivery: a new pseudonym's line is written (one `write` under an
//!   exclusive `flock`, so concurrent ingesting processes never interleave lines) when the
//!   pseudonym is made; [`IdentityRecorder::sync`] retries what could not be written and
//!   `fsync`s, and fails while anything is still unwritten. The sources' batches, replays and
//!   CrisisLex reads call it before any post leaves the ingestor, so no post reaches a sink
//!   with a pseudonym the file does not resolve.
//! - Retention: [`expire`] drops the lines of days before a cutoff (`vigie retention enforce`
//!   passes the posts' cutoff). A person still seen keeps a line of the day last seen, and a
//!   line lives at least as long as the posts ingested that day, so a pseudonym in the index
//!   always resolves; a person not seen for the retention period is forgotten.
//! - A line torn by a crash is skipped by readers and never glued to the next line.

use chrono::{NaiveDate, Utc};
use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The identity file's name, in `<data_dir>/keys/`.
pub const IDENTITIES_FILE: &str = "identities.jsonl";

/// One line of the identity file: `pseudonym` stood for `handle` on `source` that day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The pseudonym (`ps:` and 32 hex digits).
    pub pseudonym: String,
    /// The pseudonym's namespace: the platform (`mastodon`, `bluesky`, `reddit`...).
    pub source: String,
    /// The handle as the ingestor saw it (canonical form: `user@instance`, a DID, a name).
    pub handle: String,
    /// The UTC day it was seen.
    pub seen: NaiveDate,
}

/// What a look-up found: a handle and the first and last day its pseudonym was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sighting {
    /// The platform.
    pub source: String,
    /// The handle.
    pub handle: String,
    /// First UTC day recorded (within the retention period).
    pub first_seen: NaiveDate,
    /// Last UTC day recorded.
    pub last_seen: NaiveDate,
}

/// Why the identity file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("identity file {path}: {error}")]
pub struct IdentityError {
    /// The file.
    pub path: PathBuf,
    /// The I/O error.
    pub error: std::io::Error,
}

/// Appends the pseudonyms an ingestor makes to the identity file; clones share one writer.
#[derive(Clone)]
pub struct IdentityRecorder {
    inner: Arc<Mutex<Recorder>>,
}

impl std::fmt::Debug for IdentityRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityRecorder")
    }
}

struct Recorder {
    path: PathBuf,
    /// The day `recorded` is about.
    day: NaiveDate,
    /// Pseudonyms with a line of `day` (written or pending).
    recorded: HashSet<String>,
    /// Lines not written yet (a write failed); retried at each record and sync.
    pending: Vec<u8>,
    /// Whether lines were written since the last fsync.
    dirty: bool,
    /// Why an identity could not be made into a line, until a sync reports it.
    unrecorded: Option<String>,
    file: Option<File>,
}

impl IdentityRecorder {
    /// Opens (or creates, 0600, its directory 0700) the identity file at `path`, remembering
    /// the pseudonyms it already holds for today.
    pub fn open(path: &Path) -> Result<Self, IdentityError> {
        let err = |error| IdentityError {
            path: path.to_path_buf(),
            error,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
        }
        let file = open_append(path).map_err(err)?;
        // A file made by hand, or copied, may be readable by others: it is narrowed to 0600.
        if file.metadata().map_err(err)?.mode() & 0o077 != 0 {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(err)?;
        }
        let day = Utc::now().date_naive();
        let recorded = read_locked(&file, false)
            .map_err(err)?
            .into_iter()
            .filter(|i| i.seen == day)
            .map(|i| i.pseudonym)
            .collect();
        Ok(IdentityRecorder {
            inner: Arc::new(Mutex::new(Recorder {
                path: path.to_path_buf(),
                day,
                recorded,
                pending: Vec::new(),
                dirty: false,
                unrecorded: None,
                file: Some(file),
            })),
        })
    }

    /// Notes that `pseudonym` stands for `handle` on `source`, once a day. A failed write is
    /// logged and kept for [`Self::sync`] to retry (and report).
    pub fn record(&self, source: &str, handle: &str, pseudonym: &str) {
        let handle = handle.trim();
        if handle.is_empty() {
            return;
        }
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let day = Utc::now().date_naive();
        if day != r.day {
            r.day = day;
            r.recorded.clear();
        }
        if !r.recorded.insert(pseudonym.to_string()) {
            return;
        }
        let line = Identity {
            pseudonym: pseudonym.to_string(),
            source: source.to_string(),
            handle: handle.to_string(),
            seen: day,
        };
        let mut bytes = match serde_json::to_vec(&line) {
            Ok(bytes) => bytes,
            Err(e) => {
                // Not recorded: the next sync fails (the batch is not delivered), and the
                // pseudonym is recorded again when the batch is fetched again.
                r.recorded.remove(pseudonym);
                r.unrecorded = Some(format!("identity of {pseudonym} does not serialise: {e}"));
                return;
            }
        };
        bytes.push(b'\n');
        let was_failing = !r.pending.is_empty();
        r.pending.extend_from_slice(&bytes);
        if let Err(e) = r.write_pending() {
            if !was_failing {
                tracing::error!(
                    "identity file {}: {e}; ingest stops delivering until it can be written",
                    r.path.display()
                );
            }
        }
    }

    /// Writes what is pending and fsyncs: returns once every pseudonym recorded so far is on
    /// disk, or the error that prevents it.
    pub fn sync(&self) -> Result<(), IdentityError> {
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let path = r.path.clone();
        let err = |error| IdentityError {
            path: path.clone(),
            error,
        };
        if let Some(why) = r.unrecorded.take() {
            return Err(err(std::io::Error::other(why)));
        }
        r.write_pending().map_err(err)?;
        if r.dirty {
            if let Some(f) = &r.file {
                f.sync_data().map_err(err)?;
            }
            r.dirty = false;
        }
        Ok(())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let done = self.write_pending().and_then(|()| match &self.file {
            Some(f) if self.dirty => f.sync_data(),
            _ => Ok(()),
        });
        if let Err(e) = done {
            tracing::error!("identity file {}: {e}", self.path.display());
        }
    }
}

impl Recorder {
    /// Appends `pending` under an exclusive lock, reopening the file if [`expire`] replaced it.
    fn write_pending(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        loop {
            let file = match self.file.take() {
                Some(f) => f,
                None => open_append(&self.path)?,
            };
            FileExt::lock_exclusive(&file)?;
            // `expire` renames a new file over the path while holding the old one's lock.
            let current = std::fs::metadata(&self.path)
                .map(|m| (m.dev(), m.ino()))
                .ok();
            let ours = file.metadata().map(|m| (m.dev(), m.ino()))?;
            if current != Some(ours) {
                // Dropping the file releases its lock; the next round opens the new one.
                continue;
            }
            let written = append_line_safely(&file, &self.pending);
            let unlocked = FileExt::unlock(&file);
            self.file = Some(file);
            written?;
            unlocked?;
            self.pending.clear();
            self.dirty = true;
            return Ok(());
        }
    }
}

/// Writes `bytes` at the end of `file`, after a newline if a torn line ends it.
fn append_line_safely(mut file: &File, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    let len = file.metadata()?.len();
    let mut last = [0u8; 1];
    if len > 0 && file.read_at(&mut last, len - 1)? == 1 && last[0] != b'\n' {
        let mut fixed = Vec::with_capacity(bytes.len() + 1);
        fixed.push(b'\n');
        fixed.extend_from_slice(bytes);
        return file.write_all(&fixed);
    }
    file.write_all(bytes)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// Reads every well-formed line of `file` under a shared (or, with `exclusive`, an exclusive)
/// lock, which it leaves held when `exclusive`.
fn read_locked(file: &File, exclusive: bool) -> std::io::Result<Vec<Identity>> {
    if exclusive {
        FileExt::lock_exclusive(file)?;
    } else {
        FileExt::lock_shared(file)?;
    }
    let mut out = Vec::new();
    let mut reader = std::io::BufReader::new(file);
    let read = (|| {
        use std::io::Seek;
        reader.seek(std::io::SeekFrom::Start(0))?;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            // A torn or foreign line is skipped.
            if let Ok(i) = serde_json::from_str::<Identity>(line.trim_end()) {
                out.push(i);
            }
        }
    })();
    if !exclusive || read.is_err() {
        FileExt::unlock(file)?;
    }
    read.map(|()| out)
}

/// What the identity file at `path` says of `pseudonym`: one [`Sighting`] per handle (there is
/// one, unless two handles collide). An absent file knows no pseudonym.
pub fn lookup(path: &Path, pseudonym: &str) -> Result<Vec<Sighting>, IdentityError> {
    let err = |error| IdentityError {
        path: path.to_path_buf(),
        error,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let pseudonym = pseudonym.trim();
    let mut found: Vec<Sighting> = Vec::new();
    for i in read_locked(&file, false).map_err(err)? {
        if i.pseudonym != pseudonym {
            continue;
        }
        match found
            .iter_mut()
            .find(|s| s.source == i.source && s.handle.eq_ignore_ascii_case(&i.handle))
        {
            Some(s) => {
                s.first_seen = s.first_seen.min(i.seen);
                s.last_seen = s.last_seen.max(i.seen);
            }
            None => found.push(Sighting {
                source: i.source,
                handle: i.handle,
                first_seen: i.seen,
                last_seen: i.seen,
            }),
        }
    }
    Ok(found)
}

/// Drops from the identity file at `path` every line of a day before `cutoff`; returns how
/// many lines were dropped. The file is replaced atomically (new file 0600, fsync, rename,
/// fsync of the directory) under an exclusive lock, so concurrent recorders lose nothing.
pub fn expire(path: &Path, cutoff: NaiveDate) -> Result<usize, IdentityError> {
    let err = |error| IdentityError {
        path: path.to_path_buf(),
        error,
    };
    let file = match std::fs::OpenOptions::new().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(err(e)),
    };
    // Held until `file` is dropped, after the rename.
    let lines = read_locked(&file, true).map_err(err)?;
    let total = lines.len();
    let kept: Vec<Identity> = lines.into_iter().filter(|i| i.seen >= cutoff).collect();
    let dropped = total - kept.len();
    if dropped == 0 {
        return Ok(0);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("jsonl.tmp");
    let _ = std::fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?,
        );
        for i in &kept {
            serde_json::to_writer(&mut out, i)?;
            out.write_all(b"\n")?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(err)?;
    drop(file);
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn line(p: &str, handle: &str, seen: &str) -> String {
        format!(
            "{{\"pseudonym\":\"{p}\",\"source\":\"mastodon\",\"handle\":\"{handle}\",\"seen\":\"{seen}\"}}\n"
        )
    }

    #[test]
    fn records_once_a_day_privately_and_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join(IDENTITIES_FILE);
        let r = IdentityRecorder::open(&path).unwrap();
        r.record("mastodon", "alice@mamot.fr", "ps:a");
        r.record("mastodon", "alice@mamot.fr", "ps:a");
        r.record("mastodon", " ", "ps:empty");
        r.clone().record("reddit", "bob", "ps:b");
        r.sync().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        // A second recorder (a restart) knows today's lines and adds none.
        let again = IdentityRecorder::open(&path).unwrap();
        again.record("mastodon", "alice@mamot.fr", "ps:a");
        again.sync().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

        let today = Utc::now().date_naive();
        assert_eq!(
            lookup(&path, "ps:a").unwrap(),
            vec![Sighting {
                source: "mastodon".into(),
                handle: "alice@mamot.fr".into(),
                first_seen: today,
                last_seen: today,
            }]
        );
        assert!(lookup(&path, "ps:unknown").unwrap().is_empty());
        assert!(lookup(&path, "ps:empty").unwrap().is_empty());
        assert!(lookup(&dir.path().join("none"), "ps:a").unwrap().is_empty());
    }

    #[test]
    fn expire_keeps_the_days_within_retention_and_recorders_follow_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(IDENTITIES_FILE);
        let old = line("ps:old", "gone@x.fr", "2026-01-01");
        let both = line("ps:both", "carol@x.fr", "2026-01-01")
            + &line("ps:both", "carol@x.fr", "2026-03-01");
        // A torn line from a crash ends the file.
        std::fs::write(&path, format!("{old}{both}{{\"pseudonym\":\"ps:to")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = IdentityRecorder::open(&path).unwrap();
        // Narrowed to the operator.
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Appending after the torn line starts a new line.
        r.record("mastodon", "dan@x.fr", "ps:dan");
        r.sync().unwrap();
        assert_eq!(lookup(&path, "ps:dan").unwrap().len(), 1);
        let carol = lookup(&path, "ps:both").unwrap();
        assert_eq!(carol[0].first_seen.to_string(), "2026-01-01");
        assert_eq!(carol[0].last_seen.to_string(), "2026-03-01");

        let dropped = expire(&path, "2026-02-01".parse().unwrap()).unwrap();
        assert_eq!(dropped, 2);
        assert!(lookup(&path, "ps:old").unwrap().is_empty());
        assert_eq!(
            lookup(&path, "ps:both").unwrap()[0].first_seen.to_string(),
            "2026-03-01"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The recorder opened before the rename writes into the new file.
        r.record("mastodon", "erin@x.fr", "ps:erin");
        r.sync().unwrap();
        assert_eq!(lookup(&path, "ps:erin").unwrap().len(), 1);
        assert_eq!(lookup(&path, "ps:dan").unwrap().len(), 1);
        assert_eq!(expire(&path, "2026-02-01".parse().unwrap()).unwrap(), 0);
    }

    #[test]
    fn a_failed_write_is_retried_and_reported_by_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(IDENTITIES_FILE);
        let r = IdentityRecorder::open(&path).unwrap();
        // A directory takes the file's place: no one, root included, can append to it.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        r.record("mastodon", "frank@x.fr", "ps:frank");
        assert!(
            r.sync().is_err(),
            "sync must fail while a line is unwritten"
        );
        assert!(r.sync().is_err(), "and keep failing until it is written");
        std::fs::remove_dir(&path).unwrap();
        r.sync().unwrap();
        assert_eq!(lookup(&path, "ps:frank").unwrap().len(), 1);
    }
}
