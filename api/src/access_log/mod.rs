//! The access log: who saw what, when and why, in a form an oversight body can check.
//!
//! ## What is logged
//! Every API request under `/v1/`, allowed or refused, becomes one [`Access`] entry: time, user
//! and role (absent when the caller could not be identified), stated purpose, method, endpoint,
//! query parameters, status, number of results and the ids of the posts returned. Tokens are
//! never logged. The entry is appended, and made durable, **before** the response leaves the
//! server; if it cannot be, the caller gets a 500 instead of the data: there is no unlogged
//! access. (That 500 itself cannot be logged; it carries no data.)
//!
//! ## Where
//! `<data_dir>/access-log/access.jsonl`, append-only, one JSON object per line, written by a
//! single thread.
//!
//! ## What is chained
//! An entry line is `{"seq":N,"prev":"<hex>","body":{...}}`. `seq` counts from 1 without gaps.
//! The **body digest** is SHA-256 of the bytes of the `body` value exactly as they appear in the
//! line (never a re-serialisation). The **entry hash** is
//! `SHA-256("vigie-access-log/v1\n" || seq as 8 bytes big-endian || prev || body digest)`, and
//! `prev` of entry N is the hash of entry N-1 (32 zero bytes for entry 1). Changing, removing,
//! inserting or moving any entry therefore changes the hash of every entry after it.
//!
//! Splitting the body digest out of the hash lets an export leave out entries that its filter
//! does not select while keeping the chain checkable: such an entry is shown as
//! `{"seq":N,"prev":"<hex>","omitted":"<body digest hex>"}`.
//!
//! ## What a checkpoint proves
//! A checkpoint line `{"checkpoint":{"seq","hash","time","key","sig"}}` is an ed25519 signature,
//! by the key that `vigie keys init` made, of the ASCII bytes
//! `vigie-access-log/v1 checkpoint <seq> <hash hex> <time>`. It proves that, when it was signed,
//! the log held exactly the entries 1..=seq whose chain ends in `hash`: anyone holding the public
//! key can detect a later change to any of them. Entries after the last checkpoint are chained
//! but not yet signed. The writer signs one every `checkpoint_every` entries, when it opens a log
//! that has entries after its last checkpoint (after a crash), and when the server shuts down.
//!
//! ## When an entry is durable
//! Appends are queued to the writer thread, which takes every entry waiting, writes them (and any
//! checkpoint due) in one `write`, then `fdatasync`s the file before it acknowledges any of them
//! (group commit: concurrent requests share one fsync). A request's response is sent only after
//! its acknowledgement. A crash can leave a torn last line, never acknowledged: the next start
//! cuts it off, checks the whole chain and every checkpoint, refuses to start if anything else is
//! wrong, and signs a checkpoint over what survived. A failed write is cut off and reported to the
//! requests of that batch; a failed fsync leaves the file in an unknown state, so the log then
//! refuses every later append until the server restarts.
//!
//! ## Exports
//! See [`AccessLog::export`] and [`verify::verify_export`]: an export is the stretch of the chain
//! from the last checkpoint before the first selected entry to the first checkpoint after the
//! last one, closed by a signed seal that states its range and filter.

pub mod chain;
mod export;
mod keys;
mod lookup;
pub mod verify;

pub use export::{Export, ExportFilter};
pub use keys::{
    init_keys, key_paths, load_signing_key, read_public_key, PUBLIC_KEY_FILE, SIGNING_KEY_FILE,
};
pub use verify::{verify_export, verify_log, Report, Tamper};

use chain::{Checkpoint, Hash};
use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

/// The log file's name inside the access-log directory.
pub const FILE_NAME: &str = "access.jsonl";

/// Most commands the writer takes into one write and one fsync.
const MAX_BATCH: usize = 4096;

/// One access, as logged (the `body` of an entry line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Access {
    /// When the response was ready.
    pub time: DateTime<Utc>,
    /// The caller's user name; absent when no valid token was given.
    pub user: Option<String>,
    /// The caller's role.
    pub role: Option<String>,
    /// The purpose the request stated, if any.
    pub purpose: Option<String>,
    /// HTTP method.
    pub method: String,
    /// The path requested.
    pub endpoint: String,
    /// Query (or body) parameters, by name.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// HTTP status of the answer.
    pub status: u16,
    /// Number of results returned.
    pub count: u64,
    /// Ids of the posts returned.
    pub posts: Vec<String>,
}

/// What can go wrong with the access log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file could not be read or written.
    #[error("access log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The log on disk is not intact; the server will not add to it.
    #[error(
        "access log {path} is not intact: {tamper} (check it with `vigie audit verify --log`)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The first problem.
        tamper: Tamper,
    },
    /// The signing key is missing or invalid.
    #[error("access-log key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// An append failed; the request must not be answered.
    #[error("the access log cannot be written: {0}")]
    Unavailable(String),
    /// The log was closed (the server is shutting down).
    #[error("the access log is closed")]
    Closed,
}

/// The bodies of the entry lines of a log or an export, in order. Checkpoints, omitted entries,
/// the seal and lines that do not parse (a torn last line) are skipped, and nothing is checked:
/// [`verify_log`] and [`verify_export`] do that.
pub fn entries(text: &str) -> Vec<Access> {
    text.lines()
        .filter_map(|l| match chain::Line::parse(l) {
            Ok(chain::Line::Entry { body, .. }) => serde_json::from_str(body).ok(),
            _ => None,
        })
        .collect()
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How the writer behaves.
#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    /// Sign a checkpoint after this many entries (at least 1).
    pub checkpoint_every: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            checkpoint_every: 1000,
        }
    }
}

enum Command {
    Append(Box<Access>, oneshot::Sender<Result<u64, LogError>>),
    Checkpoint(oneshot::Sender<Result<u64, LogError>>),
    Close(oneshot::Sender<Result<u64, LogError>>),
}

/// A handle on the open access log; clones share the one writer.
#[derive(Clone)]
pub struct AccessLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    tx: mpsc::Sender<Command>,
    key: Arc<SigningKey>,
    /// Bytes of the file that are written and fsynced.
    durable_len: Arc<AtomicU64>,
}

impl AccessLog {
    /// Opens (or creates) the log in `dir`, checks it whole with the public half of `key`, cuts
    /// a torn last line, signs a checkpoint over unsigned entries, and starts the writer.
    pub fn open(dir: &Path, key: SigningKey, options: LogOptions) -> Result<Self, LogError> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let path = dir.join(FILE_NAME);
        let existed = path.exists();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error(&path))?;
        if !existed {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error(dir))?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_error(&path))?;
        let report =
            verify_log(&bytes, &key.verifying_key()).map_err(|tamper| LogError::Corrupt {
                path: path.clone(),
                tamper,
            })?;
        if report.torn_tail {
            tracing::warn!(
                "access log {}: cutting an incomplete last line ({} bytes) left by a crash; it \
                 was never acknowledged",
                path.display(),
                bytes.len() as u64 - report.complete_len
            );
            file.set_len(report.complete_len)
                .and_then(|_| file.sync_all())
                .map_err(io_error(&path))?;
        }
        let key = Arc::new(key);
        let durable_len = Arc::new(AtomicU64::new(report.complete_len));
        let mut writer = Writer {
            path: path.clone(),
            file,
            seq: report.last,
            head: report.head,
            covered: report.covered,
            every: options.checkpoint_every.max(1),
            key: key.clone(),
            len: report.complete_len,
            durable_len: durable_len.clone(),
            poisoned: None,
        };
        if writer.seq > writer.covered {
            let mut buf = Vec::new();
            writer.push_checkpoint(&mut buf);
            writer
                .write(&buf)
                .map_err(|e| LogError::Unavailable(e.to_string()))?;
        }
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer.run(rx))
            .map_err(io_error(&path))?;
        Ok(AccessLog {
            inner: Arc::new(Inner {
                path,
                tx,
                key,
                durable_len,
            }),
        })
    }

    /// Appends `access` and returns its seq once it is durable.
    pub async fn append(&self, access: Access) -> Result<u64, LogError> {
        self.ask(|tx| Command::Append(Box::new(access), tx)).await
    }

    /// Signs a checkpoint over the entries not yet covered (if any); returns the seq covered.
    pub async fn checkpoint(&self) -> Result<u64, LogError> {
        self.ask(Command::Checkpoint).await
    }

    /// Signs a final checkpoint and stops the writer; later appends fail with
    /// [`LogError::Closed`].
    pub async fn close(&self) -> Result<u64, LogError> {
        self.ask(Command::Close).await
    }

    async fn ask(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<u64, LogError>>) -> Command,
    ) -> Result<u64, LogError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .tx
            .send(command(tx))
            .map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The key that verifies its checkpoints.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.inner.key.verifying_key()
    }

    /// Bytes of the log that are written and fsynced: a prefix made of whole lines.
    pub fn durable_len(&self) -> u64 {
        self.inner.durable_len.load(Ordering::Acquire)
    }

    fn signing_key(&self) -> &SigningKey {
        &self.inner.key
    }
}

/// The writer thread's state.
struct Writer {
    path: PathBuf,
    file: std::fs::File,
    /// Last entry written.
    seq: u64,
    /// Its hash.
    head: Hash,
    /// Last entry covered by a checkpoint.
    covered: u64,
    every: u64,
    key: Arc<SigningKey>,
    len: u64,
    durable_len: Arc<AtomicU64>,
    poisoned: Option<String>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Command>) {
        loop {
            let Ok(first) = rx.recv() else {
                // Every handle is gone: sign what is not yet signed, and stop.
                let _ = self.commit(vec![Command::Checkpoint(oneshot::channel().0)]);
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            if self.commit(batch) {
                return;
            }
        }
    }

    /// Writes and fsyncs one batch, then answers each command; true when closing.
    fn commit(&mut self, batch: Vec<Command>) -> bool {
        let saved = (self.seq, self.head, self.covered);
        let mut buf = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        let mut closing = false;
        for command in batch {
            match command {
                Command::Append(access, tx) => match serde_json::to_string(&access) {
                    Ok(body) => {
                        self.seq += 1;
                        let hash =
                            chain::entry_hash(self.seq, &self.head, &chain::body_digest(&body));
                        buf.extend_from_slice(
                            chain::entry_line(self.seq, &self.head, &body).as_bytes(),
                        );
                        self.head = hash;
                        replies.push((tx, self.seq));
                        if self.seq - self.covered >= self.every {
                            self.push_checkpoint(&mut buf);
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(LogError::Unavailable(e.to_string())));
                    }
                },
                Command::Checkpoint(tx) => {
                    self.push_checkpoint(&mut buf);
                    replies.push((tx, self.seq));
                }
                Command::Close(tx) => {
                    self.push_checkpoint(&mut buf);
                    replies.push((tx, self.seq));
                    closing = true;
                }
            }
        }
        let result = match &self.poisoned {
            Some(why) => Err(why.clone()),
            None if buf.is_empty() => Ok(()),
            None => self.write(&buf).map_err(|e| e.to_string()),
        };
        match result {
            Ok(()) => {
                for (tx, seq) in replies {
                    let _ = tx.send(Ok(seq));
                }
            }
            Err(why) => {
                (self.seq, self.head, self.covered) = saved;
                tracing::error!("access log {}: {why}", self.path.display());
                for (tx, _) in replies {
                    let _ = tx.send(Err(LogError::Unavailable(why.clone())));
                }
            }
        }
        closing
    }

    /// Adds a checkpoint line over the head, unless the head is already covered.
    fn push_checkpoint(&mut self, buf: &mut Vec<u8>) {
        if self.seq > self.covered {
            let cp = Checkpoint::sign(self.seq, &self.head, &self.key);
            buf.extend_from_slice(chain::checkpoint_line(&cp).as_bytes());
            self.covered = self.seq;
        }
    }

    /// Appends `buf` and fsyncs. A failed write is cut off; a failed fsync poisons the log.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Err(e) = self.file.write_all(buf) {
            if let Err(cut) = self.file.set_len(self.len) {
                self.poisoned = Some(format!(
                    "a write failed ({e}) and its partial data could not be cut off ({cut}); \
                     restart the server"
                ));
            }
            return Err(e);
        }
        if let Err(e) = self.file.sync_data() {
            self.poisoned = Some(format!(
                "fsync failed ({e}): what is on disk is unknown; restart the server"
            ));
            return Err(e);
        }
        self.len += buf.len() as u64;
        self.durable_len.store(self.len, Ordering::Release);
        Ok(())
    }
}
