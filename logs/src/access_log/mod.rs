//! The access log: who saw what, when and why, in a form an oversight body can check.
//!
//! The same writer keeps Vigie's three signed logs ([`LogKind`]): the API's access log, the
//! retention log ([`crate::retention`]) and the re-identification log (`vigie reidentify`).
//! What follows says "the log" for any of them.
//!
//! ## What is logged
//! Every API request under `/v1/`, allowed or refused, becomes one [`Access`] entry: time, user
//! and role (absent when the caller could not be identified), stated purpose, method, endpoint,
//! query parameters, status, number of results and the ids of the posts returned. Tokens are
//! never logged. The entry is appended, and made durable, **before** the response leaves the
//! server; if it cannot be, the caller gets an error instead of the data: there is no unlogged
//! access. (That error itself cannot be logged; it carries no data.)
//!
//! ## Where
//! `<data_dir>/access-log/access.jsonl`, append-only, one JSON object per line, written by a
//! single thread of a single process: the writer holds an exclusive `flock` on
//! `<dir>/access.jsonl.lock` for as long as it runs, and a second open, in this process or
//! another, fails with [`LogError::Locked`].
//!
//! ## What is chained
//! An entry line is `{"seq":N,"prev":"<hex>","body":{...}}`. `seq` counts from 1 without gaps.
//! The **body digest** is SHA-256 of the bytes of the `body` value exactly as they appear in the
//! line (never a re-serialisation). The **entry hash** is
//! `SHA-256(<domain> || "\n" || seq as 8 bytes big-endian || prev || body digest)`, where the
//! domain is that of the log's kind ([`LogKind::domain`]: `vigie-access-log/v1`,
//! `vigie-retention-log/v1` or `vigie-reidentify-log/v1`), and `prev` of entry N is the hash of
//! entry N-1 (32 zero bytes for entry 1). Changing, removing, inserting or moving any entry
//! therefore changes the hash of every entry after it, and no entry of one log hashes the same in
//! another.
//!
//! Splitting the body digest out of the hash lets an export leave out entries that its filter
//! does not select while keeping the chain checkable: such an entry is shown as
//! `{"seq":N,"prev":"<hex>","omitted":"<body digest hex>"}`.
//!
//! ## What a checkpoint proves
//! A checkpoint line `{"checkpoint":{"seq","hash","time","key","sig"}}` is an ed25519 signature,
//! by the key that `vigie keys init` made, of the ASCII bytes
//! `<domain> checkpoint <seq> <hash hex> <time>`. It proves that, when it was signed, the log of
//! that kind held exactly the entries 1..=seq whose chain ends in `hash`: anyone holding the
//! public key can detect a later change to any of them, and can tell which of the three logs it
//! is of. The writer signs one
//! - when it creates the log: its first line is the **creation checkpoint**, of seq 0 and 32
//!   zero bytes;
//! - at the end of **every group commit**, in the same write as its entries, and every
//!   `checkpoint_every` entries within a commit;
//! - when no checkpoint was signed for [`LogBuilder::heartbeat`] (default
//!   [`DEFAULT_HEARTBEAT`]), even over the same head: while the writer runs, the log's
//!   checkpoints are never further apart than that, so a cut tail shows as a gap in their
//!   times;
//! - when it opens a log that has entries after its last checkpoint (after a crash), and when it
//!   closes.
//!
//! ## What the writer refuses to open
//! At open the whole file is checked ([`verify::verify_log_with`]); the writer refuses, with
//! [`LogError::Corrupt`], a log whose chain or any checkpoint does not verify for its kind, a
//! log with entries and no checkpoint, a log with more than [`verify::MAX_UNSIGNED`] (=
//! [`MAX_BATCH`], one group commit: all a crash in the middle of a commit's write can leave
//! unsigned) entries after its last checkpoint, an empty log file, and a log that does not
//! contain every head published for it in the heads file. When it creates a log, it leaves a
//! **creation marker** next to the signing key, `<parent>/keys/<dir name>.created` (e.g.
//! `<data_dir>/keys/access-log.created`, holding the creation checkpoint); a log whose file is
//! missing while its marker exists was deleted, and is refused with [`LogError::Vanished`]
//! rather than created again. (A log made before markers existed gets its marker at its next
//! open.) Whoever can write the log file can still cut it back to an earlier checkpoint
//! without the key: what shows that is the heartbeat's gap and, above all, the heads published
//! outside the data dir.
//!
//! ## Published heads
//! With [`LogBuilder::heads_file`], the writer appends checkpoints, as
//! `{"log":"<kind name>","checkpoint":{...}}` lines ([`chain::Head`]), to a file the operator
//! chose outside the data dir: after the commit that signed it is durable and before its
//! entries are acknowledged, at most once per [`PUBLISH_EVERY`] under load, and always for a
//! heartbeat, a creation and a close. So a published head is always in the durable log, and
//! every acknowledged entry is covered by a published head at most one heartbeat later. A log
//! (or an export) whose chain does not hold a published head with its hash was truncated or
//! rewritten: `vigie audit verify --heads FILE` and the next open say so. A head that cannot be
//! published is reported (error log) and the next one covers it; it does not fail requests.
//! With [`LogBuilder::head_sink`], each published head line is also handed to a sink that must
//! not block (`vigie run --brokers`: the Kafka topic `vigie.audit.heads`); what the sink does
//! with it is not checked at open — the heads file is.
//!
//! ## When an entry is durable
//! Appends are queued to the writer thread, which takes every entry waiting (at most
//! [`MAX_BATCH`]), writes them and their checkpoint in one `write`, then `fdatasync`s the file
//! before it acknowledges any of them (group commit: concurrent requests share one fsync). A
//! request's response is sent only after its acknowledgement. The queue holds at most
//! [`LogBuilder::queue_bytes`] (default [`DEFAULT_QUEUE_BYTES`]) of entries waiting or being
//! written; an append that would pass it fails at once with [`LogError::Busy`] (whose
//! [`LogError::http_status`] is 503), so a flood of requests cannot grow memory without bound.
//! A crash can leave a torn last line, never acknowledged: the next start cuts it off, checks the
//! whole chain and every checkpoint, refuses to start if anything else is wrong, and signs a
//! checkpoint over what survived. A failed write is cut off and reported to the requests of that
//! batch; a failed fsync leaves the file in an unknown state, so the log then refuses every later
//! append until the server restarts.
//!
//! ## Exports
//! See [`AccessLog::plan_export`] and [`verify::verify_export`]: an export is the stretch of the
//! chain from the last checkpoint before the first selected entry to the first checkpoint after
//! the last one, closed by a signed seal that states its range, the number of entries selected,
//! the filter and when it was made; it is streamed, never held in memory whole.
//!
//! ## Compatibility
//! Access logs written before the three kinds were told apart verify as they are (their domain
//! was already `vigie-access-log/v1`). Retention and re-identification logs written before were
//! signed with that same domain: they verify as access logs (`vigie audit verify --kind access`)
//! and the writer refuses to extend them; move such a file aside, and a new log is started.

pub mod chain;
mod export;
mod keys;
mod lookup;
pub mod verify;

pub use chain::LogKind;
pub use export::{Export, ExportFilter, ExportPlan};
pub use keys::{
    init_keys, key_paths, load_signing_key, read_public_key, PUBLIC_KEY_FILE, SIGNING_KEY_FILE,
};
pub use verify::{verify_export, verify_log, Checks, Report, Tamper};

use chain::{Checkpoint, Hash, GENESIS};
use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The log file's name inside the log directory.
pub const FILE_NAME: &str = "access.jsonl";

/// The lock file's name inside the log directory (see [`LogError::Locked`]).
pub const LOCK_FILE: &str = "access.jsonl.lock";

/// Most entries the writer takes into one write and one fsync (one group commit).
pub const MAX_BATCH: usize = 4096;

/// How often the writer signs a checkpoint when nothing else made it sign one.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// Under load, a head is published at most this often (see [module docs](self)).
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// Bytes of entries that may wait for the writer, by default: 16 MiB.
pub const DEFAULT_QUEUE_BYTES: usize = 16 << 20;

/// What an entry costs in the queue besides its body: its line's framing and the command.
const ENTRY_OVERHEAD: usize = 160;

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
    /// The log file is missing although its creation marker says it was created: it was
    /// deleted. The writer does not start a new one in its place.
    #[error("access log {path} is missing, but {marker} says it was created: it was deleted; restore it (or, knowingly, remove the marker to start a new log)")]
    Vanished {
        /// The missing file.
        path: PathBuf,
        /// Its creation marker.
        marker: PathBuf,
    },
    /// Another writer (another server, or another handle in this process) holds the log.
    #[error("access log {path} is held by another writer (lock {lock}): two servers cannot append to one log; stop the other one or give this one its own --data-dir")]
    Locked {
        /// The log file.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The signing key is missing or invalid.
    #[error("access-log key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The writer's queue is full: the entry was not queued, and the request must not be
    /// answered with data (the server answers 503; retrying later may succeed).
    #[error("the access log is busy: {queued} bytes of entries are waiting to be written (at most {limit}); try again shortly")]
    Busy {
        /// Bytes waiting when the entry was refused.
        queued: usize,
        /// The bound ([`LogBuilder::queue_bytes`]).
        limit: usize,
    },
    /// An append failed; the request must not be answered.
    #[error("the access log cannot be written: {0}")]
    Unavailable(String),
    /// The log was closed (the server is shutting down).
    #[error("the access log is closed")]
    Closed,
    /// An export could not be written to its destination (the client went away...).
    #[error("the export could not be written out: {0}")]
    Output(#[source] std::io::Error),
}

impl LogError {
    /// The HTTP status of a request whose entry failed so: 503 for [`LogError::Busy`] (try
    /// again shortly), 500 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            LogError::Busy { .. } => 503,
            _ => 500,
        }
    }
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

/// The creation marker of the log in `dir`: `<parent of dir>/keys/<name of dir>.created`, next
/// to the signing key (`<data_dir>/keys/access-log.created` for the access log).
pub fn created_marker(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map_or_else(|| "log".into(), |n| n.to_string_lossy().into_owned());
    dir.parent()
        .unwrap_or(Path::new(""))
        .join("keys")
        .join(format!("{name}.created"))
}

/// How the writer behaves (see [`LogBuilder`] for the rest).
#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    /// Sign a checkpoint after this many entries within one group commit (at least 1); every
    /// group commit ends with one anyway.
    pub checkpoint_every: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            checkpoint_every: 1000,
        }
    }
}

/// A second place for signed heads besides the heads file (a Kafka topic): called on the
/// writer's thread with each head line as it is published; it must not block, and reports its
/// own failures (the heads file stays the one checked at open).
pub type HeadSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Opens a log of one [`LogKind`], with its settings: [`AccessLog::builder`].
pub struct LogBuilder {
    kind: LogKind,
    dir: PathBuf,
    key: SigningKey,
    options: LogOptions,
    heartbeat: Option<Duration>,
    heads_file: Option<PathBuf>,
    head_sink: Option<HeadSink>,
    queue_bytes: usize,
}

impl LogBuilder {
    /// The [`LogOptions`].
    pub fn options(mut self, options: LogOptions) -> Self {
        self.options = options;
        self
    }

    /// Sign a checkpoint whenever none was signed for `every` (default [`DEFAULT_HEARTBEAT`]);
    /// `None`: only at group commits, open and close.
    pub fn heartbeat(mut self, every: Option<Duration>) -> Self {
        self.heartbeat = every;
        self
    }

    /// Publish signed heads to this file (appended to, created if missing; see the [module
    /// docs](self)), and check at open that the log holds every head published there for it
    /// (unless it is not a regular file, e.g. a pipe to a publisher: then it is only written
    /// to). It belongs outside the data dir. `None` (the default): publish nowhere.
    pub fn heads_file(mut self, path: Option<PathBuf>) -> Self {
        self.heads_file = path;
        self
    }

    /// Also hand every published head line to `sink` (e.g. a Kafka producer of
    /// `vigie.audit.heads`). `None` (the default): nowhere else.
    pub fn head_sink(mut self, sink: Option<HeadSink>) -> Self {
        self.head_sink = sink;
        self
    }

    /// The most bytes of entries that may wait for the writer (default
    /// [`DEFAULT_QUEUE_BYTES`]); past it, appends fail with [`LogError::Busy`]. An entry alone
    /// in the queue is always taken, whatever its size.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Opens (or creates) the log: takes its lock, checks it whole for its kind (and against
    /// the published heads), cuts a torn last line, signs a checkpoint over unsigned entries,
    /// and starts the writer.
    pub fn open(self) -> Result<AccessLog, LogError> {
        let LogBuilder {
            kind,
            dir,
            key,
            options,
            heartbeat,
            heads_file,
            head_sink,
            queue_bytes,
        } = self;
        let dir = dir.as_path();
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let path = dir.join(FILE_NAME);
        let lock_path = dir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        if !FileExt::try_lock_exclusive(&lock).map_err(io_error(&lock_path))? {
            return Err(LogError::Locked {
                path,
                lock: lock_path,
            });
        }
        let marker = created_marker(dir);
        let marked = marker.exists();
        let mut created = None;
        if !path.exists() {
            if marked {
                return Err(LogError::Vanished { path, marker });
            }
            created = Some(create(kind, dir, &path, &key)?);
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_error(&path))?;
        if bytes.is_empty() && !marked {
            // An empty log of a writer that made no markers yet: it starts now.
            let cp = Checkpoint::sign(kind, 0, &GENESIS, &key);
            let line = chain::checkpoint_line(&cp);
            file.write_all(line.as_bytes())
                .and_then(|_| file.sync_all())
                .map_err(io_error(&path))?;
            bytes = line.into_bytes();
            created = Some(cp);
        }
        let heads = match &heads_file {
            Some(heads_path) => read_heads(heads_path, &key.verifying_key(), kind)?,
            None => None,
        };
        let checks = Checks {
            kind: Some(kind),
            heads,
        };
        let report =
            verify::verify_log_with(&bytes, &key.verifying_key(), &checks).map_err(|tamper| {
                LogError::Corrupt {
                    path: path.clone(),
                    tamper,
                }
            })?;
        if !marked {
            write_marker(&marker, kind, &bytes, &key)?;
        }
        if report.torn_tail {
            tracing::warn!(
                "{kind} log {}: cutting an incomplete last line ({} bytes) left by a crash; it \
                 was never acknowledged",
                path.display(),
                bytes.len() as u64 - report.complete_len
            );
            file.set_len(report.complete_len)
                .and_then(|_| file.sync_all())
                .map_err(io_error(&path))?;
        }
        drop(bytes);
        let key = Arc::new(key);
        let durable_len = Arc::new(AtomicU64::new(report.complete_len));
        let queued = Arc::new(AtomicUsize::new(0));
        let mut writer = Writer {
            kind,
            path: path.clone(),
            file,
            lock: Some(lock),
            seq: report.last,
            head: report.head,
            covered: report.covered,
            every: options.checkpoint_every.max(1),
            key: key.clone(),
            len: report.complete_len,
            durable_len: durable_len.clone(),
            poisoned: None,
            queued: queued.clone(),
            heartbeat,
            last_signed: Instant::now(),
            heads_file,
            head_sink,
            unpublished: created,
            last_published: None,
            publish_failing: false,
        };
        let mut buf = Vec::new();
        if let Some(cp) = writer.push_checkpoint(&mut buf, false) {
            writer
                .write(&buf)
                .map_err(|e| LogError::Unavailable(e.to_string()))?;
            writer.unpublished = Some(cp);
        }
        writer.publish(true);
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("{kind}-log"))
            .spawn(move || writer.run(rx))
            .map_err(io_error(&path))?;
        Ok(AccessLog {
            inner: Arc::new(Inner {
                kind,
                path,
                tx,
                key,
                durable_len,
                queued,
                queue_bytes,
            }),
        })
    }
}

/// Creates the log file of `kind` at `path`, whose only line is its signed creation checkpoint:
/// written to a temporary file, fsynced, then renamed into place (so the file never exists
/// empty), and the directory fsynced.
/// Returns that checkpoint.
fn create(
    kind: LogKind,
    dir: &Path,
    path: &Path,
    key: &SigningKey,
) -> Result<Checkpoint, LogError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(format!("{FILE_NAME}.new"));
    let cp = Checkpoint::sign(kind, 0, &GENESIS, key);
    let line = chain::checkpoint_line(&cp);
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|_| f.sync_all()))
        .map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    Ok(cp)
}

/// Writes the creation marker: the log's first line when it is its creation checkpoint (else,
/// for a log made before markers, a creation checkpoint signed now), fsynced.
fn write_marker(
    marker: &Path,
    kind: LogKind,
    log: &[u8],
    key: &SigningKey,
) -> Result<(), LogError> {
    use std::os::unix::fs::OpenOptionsExt;
    let first = log.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = match std::str::from_utf8(first).ok().map(chain::Line::parse) {
        Some(Ok(chain::Line::Checkpoint(cp))) if cp.seq == 0 => chain::checkpoint_line(&cp),
        _ => chain::checkpoint_line(&Checkpoint::sign(kind, 0, &GENESIS, key)),
    };
    if let Some(keys) = marker.parent() {
        keys::private_dir(keys).map_err(io_error(keys))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(marker)
        .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|_| f.sync_all()))
        .map_err(io_error(marker))
}

/// The heads of a log of `kind` published in `path` (none if the file does not exist yet, or is
/// not a regular file: a pipe to a publisher is written to, never read); a torn last line (a
/// crash while it was appended) is left out.
fn read_heads(
    path: &Path,
    key: &VerifyingKey,
    kind: LogKind,
) -> Result<Option<Vec<Checkpoint>>, LogError> {
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Ok(None);
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LogError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let (heads, _) =
        verify::parse_heads(complete, key, kind).map_err(|tamper| LogError::Corrupt {
            path: path.to_path_buf(),
            tamper,
        })?;
    Ok(Some(heads))
}

enum Command {
    /// An entry's body (JSON), its size in the queue, and who waits for it.
    Append(String, usize, oneshot::Sender<Result<u64, LogError>>),
    Checkpoint(oneshot::Sender<Result<u64, LogError>>),
    Close(oneshot::Sender<Result<u64, LogError>>),
}

/// A handle on an open log; clones share the one writer.
#[derive(Clone)]
pub struct AccessLog {
    inner: Arc<Inner>,
}

struct Inner {
    kind: LogKind,
    path: PathBuf,
    tx: mpsc::Sender<Command>,
    key: Arc<SigningKey>,
    /// Bytes of the file that are written and fsynced.
    durable_len: Arc<AtomicU64>,
    /// Bytes of entries queued or being written.
    queued: Arc<AtomicUsize>,
    queue_bytes: usize,
}

impl AccessLog {
    /// Opens (or creates) the API's access log ([`LogKind::Access`]) in `dir`, with the
    /// defaults of [`LogBuilder`] and `options`.
    pub fn open(dir: &Path, key: SigningKey, options: LogOptions) -> Result<Self, LogError> {
        Self::builder(LogKind::Access, dir, key)
            .options(options)
            .open()
    }

    /// A builder for the log of `kind` in `dir`, signed with `key`: default options, heartbeat
    /// [`DEFAULT_HEARTBEAT`], no heads file, queue [`DEFAULT_QUEUE_BYTES`].
    pub fn builder(kind: LogKind, dir: &Path, key: SigningKey) -> LogBuilder {
        LogBuilder {
            kind,
            dir: dir.to_path_buf(),
            key,
            options: LogOptions::default(),
            heartbeat: Some(DEFAULT_HEARTBEAT),
            heads_file: None,
            head_sink: None,
            queue_bytes: DEFAULT_QUEUE_BYTES,
        }
    }

    /// Appends `access` and returns its seq once it is durable; fails at once with
    /// [`LogError::Busy`] when the writer's queue is full.
    pub async fn append(&self, access: Access) -> Result<u64, LogError> {
        let body =
            serde_json::to_string(&access).map_err(|e| LogError::Unavailable(e.to_string()))?;
        let size = body.len() + ENTRY_OVERHEAD;
        let inner = &self.inner;
        let before = inner.queued.fetch_add(size, Ordering::AcqRel);
        if before > 0 && before + size > inner.queue_bytes {
            inner.queued.fetch_sub(size, Ordering::AcqRel);
            return Err(LogError::Busy {
                queued: before,
                limit: inner.queue_bytes,
            });
        }
        let (tx, rx) = oneshot::channel();
        if inner.tx.send(Command::Append(body, size, tx)).is_err() {
            inner.queued.fetch_sub(size, Ordering::AcqRel);
            return Err(LogError::Closed);
        }
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// Signs a checkpoint over the entries not yet covered (if any); returns the seq covered.
    pub async fn checkpoint(&self) -> Result<u64, LogError> {
        self.ask(Command::Checkpoint).await
    }

    /// Signs a final checkpoint, publishes it, and stops the writer (releasing its lock);
    /// later appends fail with [`LogError::Closed`].
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

    /// Which of the three logs it is.
    pub fn kind(&self) -> LogKind {
        self.inner.kind
    }

    /// The key that verifies its checkpoints.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.inner.key.verifying_key()
    }

    /// Bytes of the log that are written and fsynced: a prefix made of whole lines.
    pub fn durable_len(&self) -> u64 {
        self.inner.durable_len.load(Ordering::Acquire)
    }

    /// Bytes of entries waiting for the writer or being written (at most about
    /// [`LogBuilder::queue_bytes`]).
    pub fn queued_bytes(&self) -> usize {
        self.inner.queued.load(Ordering::Acquire)
    }

    fn signing_key(&self) -> &SigningKey {
        &self.inner.key
    }
}

/// The writer thread's state.
struct Writer {
    kind: LogKind,
    path: PathBuf,
    file: std::fs::File,
    /// Holds the log's `flock` for as long as the writer runs (released before a close is
    /// acknowledged).
    lock: Option<std::fs::File>,
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
    queued: Arc<AtomicUsize>,
    heartbeat: Option<Duration>,
    /// When the last checkpoint was signed.
    last_signed: Instant,
    heads_file: Option<PathBuf>,
    head_sink: Option<HeadSink>,
    /// The last durable checkpoint not yet published.
    unpublished: Option<Checkpoint>,
    last_published: Option<Instant>,
    publish_failing: bool,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Command>) {
        loop {
            let received = match self.heartbeat {
                Some(every) => {
                    let wait = every.saturating_sub(self.last_signed.elapsed());
                    rx.recv_timeout(wait)
                }
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            let first = match received {
                Ok(command) => command,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.heartbeat_now();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Every handle is gone: sign what is not yet signed, publish, and stop.
                    self.commit(vec![Command::Close(oneshot::channel().0)]);
                    return;
                }
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

    /// Signs a checkpoint over the head (new or not), writes, fsyncs and publishes it.
    fn heartbeat_now(&mut self) {
        self.last_signed = Instant::now();
        if self.poisoned.is_some() {
            return;
        }
        let mut buf = Vec::new();
        let cp = self.push_checkpoint(&mut buf, true);
        match self.write(&buf) {
            Ok(()) => {
                self.unpublished = cp.or(self.unpublished.take());
                self.publish(true)
            }
            Err(e) => tracing::error!(
                "{} log {}: heartbeat checkpoint not written: {e}",
                self.kind,
                self.path.display()
            ),
        }
    }

    /// Writes and fsyncs one batch, ending with a checkpoint, publishes the head if due, then
    /// answers each command; true when closing.
    fn commit(&mut self, batch: Vec<Command>) -> bool {
        let saved = (self.seq, self.head, self.covered);
        let mut buf = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        let mut closing = false;
        let mut sizes = 0;
        let mut signed = None;
        for command in batch {
            match command {
                Command::Append(body, size, tx) => {
                    sizes += size;
                    self.seq += 1;
                    let hash =
                        self.kind
                            .entry_hash(self.seq, &self.head, &chain::body_digest(&body));
                    buf.extend_from_slice(
                        chain::entry_line(self.seq, &self.head, &body).as_bytes(),
                    );
                    self.head = hash;
                    replies.push((tx, self.seq));
                    if self.seq - self.covered >= self.every {
                        signed = self.push_checkpoint(&mut buf, false).or(signed);
                    }
                }
                Command::Checkpoint(tx) => {
                    signed = self.push_checkpoint(&mut buf, false).or(signed);
                    replies.push((tx, self.seq));
                }
                Command::Close(tx) => {
                    signed = self.push_checkpoint(&mut buf, false).or(signed);
                    replies.push((tx, self.seq));
                    closing = true;
                }
            }
        }
        // Every group commit ends signed: a crash can leave at most one batch unsigned.
        signed = self.push_checkpoint(&mut buf, false).or(signed);
        let result = match &self.poisoned {
            Some(why) => Err(why.clone()),
            None if buf.is_empty() => Ok(()),
            None => self.write(&buf).map_err(|e| e.to_string()),
        };
        if closing {
            self.lock = None;
        }
        match result {
            Ok(()) => {
                self.unpublished = signed.or(self.unpublished.take());
                let due = self
                    .last_published
                    .is_none_or(|t| t.elapsed() >= PUBLISH_EVERY);
                self.publish(closing || due);
                self.queued.fetch_sub(sizes, Ordering::AcqRel);
                for (tx, seq) in replies {
                    let _ = tx.send(Ok(seq));
                }
            }
            Err(why) => {
                (self.seq, self.head, self.covered) = saved;
                tracing::error!("{} log {}: {why}", self.kind, self.path.display());
                self.queued.fetch_sub(sizes, Ordering::AcqRel);
                for (tx, _) in replies {
                    let _ = tx.send(Err(LogError::Unavailable(why.clone())));
                }
            }
        }
        closing
    }

    /// Adds a checkpoint line over the head, unless the head is already covered and `again`
    /// is false (a heartbeat signs the same head again, with a new time).
    /// Returns it, to be published once written.
    fn push_checkpoint(&mut self, buf: &mut Vec<u8>, again: bool) -> Option<Checkpoint> {
        if self.seq > self.covered || again {
            let cp = Checkpoint::sign(self.kind, self.seq, &self.head, &self.key);
            buf.extend_from_slice(chain::checkpoint_line(&cp).as_bytes());
            self.covered = self.seq;
            self.last_signed = Instant::now();
            return Some(cp);
        }
        None
    }

    /// Appends the last durable checkpoint to the heads file, when `now` (else it waits for a
    /// later call); a failure is reported once per streak and left to the next head.
    fn publish(&mut self, now: bool) {
        if self.heads_file.is_none() && self.head_sink.is_none() {
            self.unpublished = None;
            return;
        }
        if !now {
            return;
        }
        let Some(cp) = self.unpublished.take() else {
            return;
        };
        let line = chain::head_line(self.kind, &cp);
        if let Some(sink) = &self.head_sink {
            sink(&line);
        }
        let Some(heads) = &self.heads_file else {
            self.last_published = Some(Instant::now());
            return;
        };
        let written = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(heads)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        self.last_published = Some(Instant::now());
        match written {
            Ok(()) => self.publish_failing = false,
            Err(e) => {
                if !self.publish_failing {
                    tracing::error!(
                        "{} log {}: its head cannot be published to {}: {e} (the next one will \
                         cover it)",
                        self.kind,
                        self.path.display(),
                        heads.display()
                    );
                }
                self.publish_failing = true;
                self.unpublished = Some(cp);
            }
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
