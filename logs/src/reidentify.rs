//! The re-identification log: every attempt to learn the handle behind a pseudonym.
//!
//! `<data_dir>/reidentify-log/access.jsonl` has exactly the access log's format (hash-chained,
//! each entry covered by an ed25519 checkpoint signed with the access-log key) under its own
//! domain `vigie-reidentify-log/v1`, so `vigie audit verify <data_dir>/reidentify-log/access.jsonl
//! --pubkey <data_dir>/access-log.pub --log` checks it.
//!
//! ## Guarantees
//! - [`append`] returns only once the entry and a checkpoint over it are durable: whoever shows
//!   a handle after it has left a signed trace first, and shows nothing when it fails.
//! - One writer at a time: [`append`] waits for an exclusive `flock` on
//!   `<data_dir>/reidentify-log/lock` while it opens and appends to the log, so two
//!   administrators re-identifying at once queue instead of one failing.

use crate::access_log::{self, Access, AccessLog, LogError, LogKind, LogOptions};
use fs4::fs_std::FileExt;
use std::path::{Path, PathBuf};

/// The re-identification log's directory in the data dir.
pub const REIDENTIFY_LOG_DIR: &str = "reidentify-log";

/// Appends `access` to the re-identification log of `data_dir` (its heads also published to
/// `heads_file`) and signs a checkpoint over it; returns its seq and the log file, once durable.
pub fn append(
    data_dir: &Path,
    heads_file: Option<PathBuf>,
    access: Access,
) -> Result<(u64, PathBuf), LogError> {
    let key = access_log::load_signing_key(data_dir)?;
    let dir = data_dir.join(REIDENTIFY_LOG_DIR);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LogError::Io { path, source }
    };
    vigie_ingest::key::private_dir(&dir).map_err(|e| LogError::Io {
        path: dir.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let lock_path = dir.join("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    FileExt::lock_exclusive(&lock).map_err(io(&lock_path))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(io(&dir))?;
    let written = runtime.block_on(async {
        let log = AccessLog::builder(LogKind::Reidentify, &dir, key)
            .options(LogOptions {
                checkpoint_every: 1,
            })
            .heads_file(heads_file)
            .open()?;
        let seq = log.append(access).await;
        let closed = log.close().await;
        Ok::<_, LogError>((seq?, closed.map(|_| log.path().to_path_buf())?))
    });
    drop(lock);
    written
}
