//! Retention: posts older than the configured period leave the index, and each deletion batch
//! is logged in a verifiable log first.
//!
//! ## The retention log
//! `<data_dir>/retention-log/access.jsonl` has exactly the format of the access log (see
//! [`crate::access_log`]): hash-chained entries and ed25519 checkpoints signed with the
//! access-log key. So `vigie audit verify <data_dir>/retention-log/access.jsonl --pubkey
//! <data_dir>/access-log.pub --log` checks it. Each deletion batch is one entry: user
//! `system:retention`, role `admin`, method `DELETE`, endpoint `retention`, purpose
//! `retention: posts created before <cutoff>`, params `{cutoff, retention_days}`, `count` and
//! `posts` (the Vigie ids deleted, at most [`BATCH`] per entry).
//!
//! ## Guarantees
//! - No unlogged deletion: the entries are durable (fsynced) before the deletions are committed
//!   to the index; if the log cannot be written nothing is deleted.
//! - One deleter at a time: the index writer (tantivy's exclusive lock) is taken before the log
//!   is opened and held until it is closed, so `vigie retention enforce` and the schedule of
//!   `vigie serve` never write the log together (the second one fails, saying the index is busy).
//! - If the commit fails after the entries were written, a second entry with status 500 says so.

use crate::access_log::{Access, AccessLog, LogError, LogOptions};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};
use vigie_index::{IndexError, PostIndex};

/// The retention log's directory in the data dir.
pub const RETENTION_LOG_DIR: &str = "retention-log";

/// Most post ids in one retention-log entry.
pub const BATCH: usize = 1000;

/// What can go wrong while enforcing retention.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The index could not be written (its writer is held by another process, I/O...).
    #[error("index: {0}")]
    Index(#[from] IndexError),
    /// The retention log could not be opened or written: nothing was deleted.
    #[error("retention log: {0}")]
    Log(#[from] LogError),
    /// A blocking task failed.
    #[error("retention task: {0}")]
    Task(String),
}

/// What one enforcement did.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionReport {
    /// Posts created before this were deleted.
    pub cutoff: DateTime<Utc>,
    /// The ids deleted.
    pub deleted: Vec<String>,
    /// The retention log file.
    pub log: PathBuf,
}

/// Deletes from `index` every post created more than `retention_days` before `now`, after
/// logging the deletion batches in `<data_dir>/retention-log/` signed with `key`.
pub async fn enforce(
    index: &PostIndex,
    data_dir: &Path,
    key: SigningKey,
    retention_days: u32,
    now: DateTime<Utc>,
) -> Result<RetentionReport, RetentionError> {
    let cutoff = now - Duration::days(i64::from(retention_days));
    let dir = data_dir.join(RETENTION_LOG_DIR);
    let log_path = dir.join(crate::access_log::FILE_NAME);
    let index = index.clone();
    let (mut writer, deleted) = tokio::task::spawn_blocking(move || {
        let mut writer = index.writer()?;
        let ids = writer.delete_created_before(cutoff)?;
        Ok::<_, IndexError>((writer, ids))
    })
    .await
    .map_err(|e| RetentionError::Task(e.to_string()))??;
    let report = RetentionReport {
        cutoff,
        deleted,
        log: log_path,
    };
    if report.deleted.is_empty() {
        return Ok(report);
    }
    let log = AccessLog::open(
        &dir,
        key,
        LogOptions {
            checkpoint_every: 1,
        },
    )?;
    let cutoff_text = cutoff.to_rfc3339_opts(SecondsFormat::Secs, true);
    let entry = |posts: Vec<String>, status: u16| {
        let mut params = serde_json::Map::new();
        params.insert("cutoff".into(), cutoff_text.clone().into());
        params.insert("retention_days".into(), retention_days.into());
        Access {
            time: Utc::now(),
            user: Some("system:retention".into()),
            role: Some("admin".into()),
            purpose: Some(format!("retention: posts created before {cutoff_text}")),
            method: "DELETE".into(),
            endpoint: "retention".into(),
            params,
            status,
            count: posts.len() as u64,
            posts,
        }
    };
    for batch in report.deleted.chunks(BATCH) {
        if let Err(e) = log.append(entry(batch.to_vec(), 200)).await {
            // Nothing is committed: the deletions are dropped with the writer.
            let _ = log.close().await;
            return Err(e.into());
        }
    }
    let committed = tokio::task::spawn_blocking(move || writer.commit(None))
        .await
        .map_err(|e| RetentionError::Task(e.to_string()))?;
    if let Err(e) = committed {
        let _ = log.append(entry(Vec::new(), 500)).await;
        let _ = log.close().await;
        return Err(e.into());
    }
    log.close().await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::{self, chain::Line};
    use vigie_record::fixtures::scored;

    #[tokio::test]
    async fn old_posts_leave_after_their_batch_is_logged_and_the_log_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(&dir.path().join("index")).unwrap();
        let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
        let mut w = index.writer().unwrap();
        let mut old = Vec::new();
        for (n, days) in [(1, 40), (2, 31), (3, 29), (4, 1)] {
            let mut e = scored(&n.to_string(), "a post", 0.5);
            e.post.created_at = now - Duration::days(days);
            if days > 30 {
                old.push(e.post.id.to_string());
            }
            w.upsert(&e).unwrap();
        }
        w.commit(None).unwrap();
        drop(w);
        let verifying = access_log::init_keys(dir.path()).unwrap();
        let key = || access_log::load_signing_key(dir.path()).unwrap();

        let report = enforce(&index, dir.path(), key(), 30, now).await.unwrap();
        old.sort();
        assert_eq!(report.deleted, old);
        assert_eq!(index.num_docs(), 2);
        for id in &old {
            assert_eq!(index.get(id).unwrap(), None);
        }
        // A second run deletes nothing and logs nothing more.
        let again = enforce(&index, dir.path(), key(), 30, now).await.unwrap();
        assert!(again.deleted.is_empty());

        let bytes = std::fs::read(&report.log).unwrap();
        access_log::verify_log(&bytes, &verifying).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let entries: Vec<Access> = text
            .lines()
            .filter_map(|l| match Line::parse(l).unwrap() {
                Line::Entry { body, .. } => Some(serde_json::from_str(body).unwrap()),
                _ => None,
            })
            .collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].posts, old);
        assert_eq!(entries[0].user.as_deref(), Some("system:retention"));
        assert_eq!(entries[0].params["retention_days"], 30);

        // While another writer holds the index, enforcement fails and deletes nothing.
        let _busy = index.writer().unwrap();
        let e = enforce(&index, dir.path(), key(), 0, now)
            .await
            .unwrap_err();
        assert!(matches!(e, RetentionError::Index(_)), "{e}");
        assert_eq!(index.num_docs(), 2);
    }
}
