//! Retention: posts collected longer ago than the configured period leave the index, and each
//! deletion batch is logged in a verifiable log first.
//!
//! ## From when
//! The period counts from when Vigie **collected** the post (its provenance's `fetched_at`),
//! never from the date its source claims (`created_at`): a replayed archive of old posts is kept
//! its full period after the replay instead of being deleted at the first tick, and a post whose
//! source claims a date in the future is deleted on time instead of being kept for ever.
//!
//! ## The retention log
//! `<data_dir>/retention-log/access.jsonl` has exactly the format of the access log (see
//! [`crate::access_log`]): hash-chained entries and ed25519 checkpoints signed with the
//! access-log key, under the retention log's own domain `vigie-retention-log/v1` (so no entry
//! or checkpoint of it can pass for one of the access log, nor the reverse). So `vigie audit verify <data_dir>/retention-log/access.jsonl --pubkey
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
//!
//! ## Who enforces it
//! Whoever holds the index writer: `vigie retention enforce` and the hourly schedule of
//! `vigie serve` ([`enforce`]) for an index written by `vigie replay` or `vigie run`; in a Kafka
//! deployment, the indexer `vigie index` itself, between two of its commits ([`enforce_with`]),
//! since it holds the writer for as long as it runs (`vigie serve` over that index then finds
//! the writer busy and leaves retention to it).

use crate::access_log::{Access, AccessLog, LogError, LogKind, LogOptions};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};
use vigie_index::{IndexError, IndexWriter, PostIndex};

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

impl RetentionReport {
    /// The report of deleting `deleted`, created before `cutoff`, logged under `data_dir`.
    fn new(data_dir: &Path, cutoff: DateTime<Utc>, deleted: Vec<String>) -> Self {
        RetentionReport {
            cutoff,
            deleted,
            log: data_dir
                .join(RETENTION_LOG_DIR)
                .join(crate::access_log::FILE_NAME),
        }
    }
}

/// Where retention logs its deletion batches: `<data_dir>/retention-log/`, signed with `key`,
/// each signed head also published to `heads_file` (see [`crate::access_log`]) when set.
pub struct RetentionLog<'a> {
    /// The data dir.
    pub data_dir: &'a Path,
    /// The access-log signing key.
    pub key: SigningKey,
    /// Where the log's signed heads are published, outside the data dir.
    pub heads_file: Option<PathBuf>,
}

/// Deletes from `index` every post collected more than `retention_days` before `now`, after
/// logging the deletion batches in `log`.
pub async fn enforce(
    index: &PostIndex,
    log: RetentionLog<'_>,
    retention_days: u32,
    now: DateTime<Utc>,
) -> Result<RetentionReport, RetentionError> {
    let data_dir = log.data_dir;
    let cutoff = now - Duration::days(i64::from(retention_days));
    let index = index.clone();
    let (mut writer, deleted, payload) = tokio::task::spawn_blocking(move || {
        let mut writer = index.writer()?;
        let ids = writer.delete_collected_before(cutoff)?;
        // The last commit's payload (a Kafka indexer's checkpoint) is carried over.
        Ok::<_, IndexError>((writer, ids, index.commit_payload()?))
    })
    .await
    .map_err(|e| RetentionError::Task(e.to_string()))??;
    let report = RetentionReport::new(data_dir, cutoff, deleted);
    if report.deleted.is_empty() {
        return Ok(report);
    }
    // On failure nothing is committed: the deletions are dropped with the writer.
    let log = log_batches(log, cutoff, retention_days, &report.deleted).await?;
    let committed = tokio::task::spawn_blocking(move || writer.commit(payload.as_deref()))
        .await
        .map_err(|e| RetentionError::Task(e.to_string()))?;
    close_after(log, committed, cutoff, retention_days).await?;
    Ok(report)
}

/// Closes the retention log once the deletions' commit is done; when it `committed` with an
/// error, a second entry with status 500 says so first.
async fn close_after(
    log: AccessLog,
    committed: Result<(), IndexError>,
    cutoff: DateTime<Utc>,
    retention_days: u32,
) -> Result<(), RetentionError> {
    if let Err(e) = committed {
        let _ = log
            .append(entry(cutoff, retention_days, Vec::new(), 500))
            .await;
        let _ = log.close().await;
        return Err(e.into());
    }
    log.close().await?;
    Ok(())
}

/// Like [`enforce`], with the writer of a caller that holds it (the Kafka indexer, between two of
/// its commits; `writer` must have nothing uncommitted). The posts are listed, each batch is
/// logged, and only then deleted, in a commit that carries `payload` (the indexer's checkpoint,
/// kept as it is).
pub async fn enforce_with(
    writer: &mut IndexWriter,
    index: &PostIndex,
    payload: Option<&str>,
    log: RetentionLog<'_>,
    retention_days: u32,
    now: DateTime<Utc>,
) -> Result<RetentionReport, RetentionError> {
    let cutoff = now - Duration::days(i64::from(retention_days));
    let report = RetentionReport::new(log.data_dir, cutoff, index.collected_before(cutoff)?);
    if report.deleted.is_empty() {
        return Ok(report);
    }
    // Nothing is deleted before it is logged.
    let log = log_batches(log, cutoff, retention_days, &report.deleted).await?;
    // The same posts: nothing was written since the listing, and this is the only writer.
    let committed = writer
        .delete_collected_before(cutoff)
        .and_then(|_| writer.commit(payload));
    close_after(log, committed, cutoff, retention_days).await?;
    Ok(report)
}

/// The retention-log entry of a batch of `posts` deleted as older than `cutoff`.
fn entry(cutoff: DateTime<Utc>, retention_days: u32, posts: Vec<String>, status: u16) -> Access {
    let cutoff_text = cutoff.to_rfc3339_opts(SecondsFormat::Secs, true);
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
}

/// Opens the retention log of `data_dir` and appends one entry per [`BATCH`] of `ids`, fsynced;
/// returns the log, still open. On failure the log is closed and the error returned.
async fn log_batches(
    target: RetentionLog<'_>,
    cutoff: DateTime<Utc>,
    retention_days: u32,
    ids: &[String],
) -> Result<AccessLog, RetentionError> {
    let dir = target.data_dir.join(RETENTION_LOG_DIR);
    let log = AccessLog::builder(LogKind::Retention, &dir, target.key)
        .options(LogOptions {
            checkpoint_every: 1,
        })
        .heads_file(target.heads_file)
        .open()?;
    for batch in ids.chunks(BATCH) {
        if let Err(e) = log
            .append(entry(cutoff, retention_days, batch.to_vec(), 200))
            .await
        {
            let _ = log.close().await;
            return Err(e.into());
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log;
    use vigie_record::fixtures::scored;

    /// The retention log of `data_dir`, publishing its heads nowhere.
    fn local(data_dir: &Path, key: SigningKey) -> RetentionLog<'_> {
        RetentionLog {
            data_dir,
            key,
            heads_file: None,
        }
    }

    #[tokio::test]
    async fn old_posts_leave_after_their_batch_is_logged_and_the_log_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let target = |key| local(dir.path(), key);
        let index = PostIndex::open(&dir.path().join("index")).unwrap();
        let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
        let mut w = index.writer().unwrap();
        let mut old = Vec::new();
        for (n, days) in [(1, 40), (2, 31), (3, 29), (4, 1)] {
            let mut e = scored(&n.to_string(), "a post", 0.5);
            e.provenance.fetched_at = now - Duration::days(days);
            if days > 30 {
                old.push(e.post.id.to_string());
            }
            w.upsert(&e).unwrap();
        }
        w.commit(None).unwrap();
        drop(w);
        let verifying = access_log::init_keys(dir.path()).unwrap();
        let key = || access_log::load_signing_key(dir.path()).unwrap();

        let report = enforce(&index, target(key()), 30, now).await.unwrap();
        old.sort();
        assert_eq!(report.deleted, old);
        assert_eq!(index.num_docs(), 2);
        for id in &old {
            assert_eq!(index.get(id).unwrap(), None);
        }
        // A second run deletes nothing and logs nothing more.
        let again = enforce(&index, target(key()), 30, now).await.unwrap();
        assert!(again.deleted.is_empty());

        let bytes = std::fs::read(&report.log).unwrap();
        access_log::verify_log(&bytes, &verifying).unwrap();
        let entries = access_log::entries(&String::from_utf8(bytes).unwrap());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].posts, old);
        assert_eq!(entries[0].user.as_deref(), Some("system:retention"));
        assert_eq!(entries[0].params["retention_days"], 30);

        // A writer held by its caller (the Kafka indexer): same deletions and log, and the
        // commit keeps the caller's payload.
        drop(index);
        let index = PostIndex::open(&dir.path().join("index")).unwrap();
        let mut w = index.writer().unwrap();
        let mut e = scored("5", "a post", 0.5);
        e.provenance.fetched_at = now - Duration::days(35);
        w.upsert(&e).unwrap();
        w.commit(Some("checkpoint")).unwrap();
        let kept = enforce_with(&mut w, &index, Some("checkpoint"), target(key()), 30, now)
            .await
            .unwrap();
        assert_eq!(kept.deleted, [e.post.id.to_string()]);
        assert_eq!(index.get(e.post.id.as_str()).unwrap(), None);
        assert_eq!(
            index.commit_payload().unwrap().as_deref(),
            Some("checkpoint")
        );
        let none = enforce_with(&mut w, &index, None, target(key()), 30, now)
            .await
            .unwrap();
        assert!(none.deleted.is_empty());
        drop(w);
        let bytes = std::fs::read(&report.log).unwrap();
        access_log::verify_log(&bytes, &verifying).unwrap();
        assert_eq!(
            String::from_utf8(bytes)
                .unwrap()
                .matches("system:retention")
                .count(),
            2
        );

        // While another writer holds the index, enforcement fails and deletes nothing.
        let _busy = index.writer().unwrap();
        let e = enforce(&index, target(key()), 0, now).await.unwrap_err();
        assert!(matches!(e, RetentionError::Index(_)), "{e}");
        assert_eq!(index.num_docs(), 2);
    }

    #[tokio::test]
    async fn a_replayed_archive_is_kept_its_period_and_a_future_dated_post_is_not_kept_for_ever() {
        let dir = tempfile::tempdir().unwrap();
        let target = |key| local(dir.path(), key);
        let index = PostIndex::open(&dir.path().join("index")).unwrap();
        let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
        let mut w = index.writer().unwrap();
        // A post of 2012 replayed from an archive an hour ago.
        let mut archived = scored("old", "a post of 2012", 0.5);
        archived.post.created_at = "2012-10-29T20:00:00Z".parse().unwrap();
        archived.provenance.fetched_at = now - Duration::hours(1);
        // A post whose source claims 2099, collected 40 days ago.
        let mut future = scored("future", "a post from the future", 0.5);
        future.post.created_at = "2099-01-01T00:00:00Z".parse().unwrap();
        future.provenance.fetched_at = now - Duration::days(40);
        w.upsert(&archived).unwrap();
        w.upsert(&future).unwrap();
        w.commit(None).unwrap();
        drop(w);
        access_log::init_keys(dir.path()).unwrap();
        let key = access_log::load_signing_key(dir.path()).unwrap();
        let report = enforce(&index, target(key), 30, now).await.unwrap();
        assert_eq!(report.deleted, [future.post.id.to_string()]);
        assert!(index.get(archived.post.id.as_str()).unwrap().is_some());
        assert_eq!(index.get(future.post.id.as_str()).unwrap(), None);
    }

    #[tokio::test]
    async fn a_retention_log_cut_back_after_its_heads_were_published_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let heads = tempfile::tempdir().unwrap();
        let heads_file = heads.path().join("heads.jsonl");
        let index = PostIndex::open(&dir.path().join("index")).unwrap();
        access_log::init_keys(dir.path()).unwrap();
        let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
        let enforce_one = |n: u32| {
            let mut w = index.writer().unwrap();
            let mut e = scored(&n.to_string(), "a post", 0.5);
            e.provenance.fetched_at = now - Duration::days(40);
            w.upsert(&e).unwrap();
            w.commit(None).unwrap();
            drop(w);
            let target = RetentionLog {
                data_dir: dir.path(),
                key: access_log::load_signing_key(dir.path()).unwrap(),
                heads_file: Some(heads_file.clone()),
            };
            enforce(&index, target, 30, now)
        };
        let first = enforce_one(1).await.unwrap();
        let after_first = std::fs::read(&first.log).unwrap();
        enforce_one(2).await.unwrap();
        let published = std::fs::read_to_string(&heads_file).unwrap();
        assert!(published.contains("\"log\":\"retention\""), "{published}");
        // Someone who can write the data dir removes the second batch's entries.
        std::fs::write(&first.log, after_first).unwrap();
        let e = enforce_one(3).await.unwrap_err();
        assert!(matches!(e, RetentionError::Log(_)), "{e}");
        assert!(
            index
                .get(vigie_record::VigieId::derive("mastodon", "3").as_str())
                .unwrap()
                .is_some(),
            "nothing deleted without its log"
        );
    }
}
