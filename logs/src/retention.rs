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
//! or checkpoint of it can pass for one of the access log, nor the reverse). So
//! `vigie audit verify <data_dir>/retention-log/access.jsonl --pubkey <data_dir>/access-log.pub
//! --log` checks it. Each deletion batch is one entry: user
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
//! Whoever holds the index writer, through [`Retention::enforce`]: `vigie retention enforce` and
//! the hourly schedule of `vigie serve` on an index written by `vigie replay` or `vigie run`
//! ([`Target::Index`]: it takes the writer, and gives it back); in a Kafka deployment, the
//! indexer `vigie index` itself, between two of its commits ([`Target::Writer`]), since it holds
//! the writer for as long as it runs (`vigie serve` over that index then finds the writer busy,
//! [`RetentionError::is_writer_busy`], and leaves retention to it).
//!
//! ## And the identities
//! Once the posts are deleted, the identity file forgets the pseudonyms not seen since the
//! cutoff's day (`vigie_ingest::identities::expire`), so no one can be re-identified after the
//! posts that named them are gone. Its failure does not undo the deletion: the report says it.

use crate::access_log::{self, Access, AccessLog, LogError, LogKind, LogOptions};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use ed25519_dalek::SigningKey;
use std::path::PathBuf;
use vigie_index::{IndexError, IndexWriter, PostIndex};
use vigie_ingest::identities::IdentityError;

/// The retention log's directory in the data dir.
pub const RETENTION_LOG_DIR: &str = "retention-log";

/// Most post ids in one retention-log entry.
pub const BATCH: usize = 1000;

/// What can go wrong while enforcing retention. Whatever it is, nothing was deleted unlogged.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The index could not be written (its writer is held by another process, I/O...).
    #[error("index: {0}")]
    Index(#[from] IndexError),
    /// The signing key could not be loaded, or the retention log could not be opened or
    /// written: nothing was deleted.
    #[error("retention log: {0}")]
    Log(#[from] LogError),
    /// A blocking task failed.
    #[error("retention task: {0}")]
    Task(String),
}

impl RetentionError {
    /// Whether another process holds the index's writer (a Kafka indexer, which enforces
    /// retention itself): the enforcement can be left to it.
    pub fn is_writer_busy(&self) -> bool {
        matches!(self, RetentionError::Index(e) if e.is_writer_busy())
    }
}

/// What one enforcement did.
#[derive(Debug)]
pub struct RetentionReport {
    /// Posts collected before this were deleted.
    pub cutoff: DateTime<Utc>,
    /// The ids deleted.
    pub deleted: Vec<String>,
    /// The retention log file.
    pub log: PathBuf,
    /// How many lines of days before the cutoff's day the identity file forgot, or why it could
    /// not be expired (the deletions stand either way).
    pub identities: Result<usize, IdentityError>,
}

impl RetentionReport {
    /// Logs what the enforcement did (the posts deleted, the identity lines forgotten), as the
    /// schedules that enforce it unattended report it.
    pub fn trace(&self) {
        match &self.identities {
            Ok(0) => {}
            Ok(n) => tracing::info!("retention: forgot {n} identity lines"),
            Err(e) => tracing::warn!("retention: identity file not expired: {e}"),
        }
        if !self.deleted.is_empty() {
            tracing::info!(
                deleted = self.deleted.len(),
                cutoff = %self.cutoff,
                "retention: deleted old posts (logged in {})",
                self.log.display()
            );
        }
    }
}

/// Retention's settings: how long posts are kept, and where its log, its published heads and
/// the identity file it expires are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Posts collected more than this many days ago leave the index. 0 deletes every post
    /// collected before now: whoever keeps posts forever (`retention_days = 0` in the
    /// configuration) does not enforce retention at all.
    pub days: u32,
    /// The data dir: the signing key (`keys/`) and the retention log (`retention-log/`).
    pub data_dir: PathBuf,
    /// Where the retention log's signed heads are published, outside the data dir, if anywhere.
    pub heads_file: Option<PathBuf>,
    /// The identity file (`<data_dir>/keys/identities.jsonl`), expired with the posts.
    pub identities: PathBuf,
}

/// The index an enforcement deletes from, and how it gets its writer.
pub enum Target<'a> {
    /// An index whose writer the enforcement takes, and drops when done (`vigie retention
    /// enforce`, the schedule of `vigie serve`); the commit carries over the payload of the
    /// index's last commit. Fails with [`RetentionError::Index`] while another process holds
    /// the writer.
    Index(&'a PostIndex),
    /// The writer of a caller that holds it (the Kafka indexer, between two of its commits):
    /// `writer` must have nothing uncommitted; the deletions' commit carries `payload` (the
    /// indexer's checkpoint) as it is.
    Writer {
        /// The caller's writer of `index`.
        writer: &'a mut IndexWriter,
        /// The index it writes.
        index: &'a PostIndex,
        /// The payload of the deletions' commit.
        payload: Option<&'a str>,
    },
}

impl Retention {
    /// Deletes from `target` every post collected more than [`Retention::days`] before `now`,
    /// after logging the deletion batches in the retention log (signed with the data dir's
    /// key, its heads published to [`Retention::heads_file`]), then expires the identity file
    /// to the cutoff's day. Nothing is deleted if the key cannot be loaded or the log cannot
    /// be written; the identity file is expired whether or not there was a post to delete.
    pub async fn enforce(
        &self,
        target: Target<'_>,
        now: DateTime<Utc>,
    ) -> Result<RetentionReport, RetentionError> {
        let key = access_log::load_signing_key(&self.data_dir)?;
        let cutoff = now - Duration::days(i64::from(self.days));
        let deleted = self.delete_logged(target, key, cutoff).await?;
        Ok(RetentionReport {
            cutoff,
            deleted,
            log: self.log_dir().join(access_log::FILE_NAME),
            identities: vigie_ingest::identities::expire(&self.identities, cutoff.date_naive()),
        })
    }

    /// The retention log's directory: `<data_dir>/retention-log/`.
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join(RETENTION_LOG_DIR)
    }

    /// Lists the posts of `target` collected before `cutoff`, logs them batch by batch, and
    /// only then deletes them in one commit; when that commit fails, a second entry with
    /// status 500 says so. Returns their ids.
    async fn delete_logged(
        &self,
        target: Target<'_>,
        key: SigningKey,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<String>, RetentionError> {
        let (held, deleted) = match target {
            Target::Index(index) => {
                let index = index.clone();
                let task = tokio::task::spawn_blocking(move || {
                    let mut writer = index.writer()?;
                    let ids = writer.delete_collected_before(cutoff)?;
                    // The last commit's payload (a Kafka indexer's checkpoint) is carried over.
                    let payload = index.commit_payload()?;
                    Ok::<_, IndexError>((Held::Taken(Box::new(writer), payload), ids))
                });
                task.await.map_err(task_error)??
            }
            Target::Writer {
                writer,
                index,
                payload,
            } => (
                Held::Caller(writer, payload),
                index.collected_before(cutoff)?,
            ),
        };
        if deleted.is_empty() {
            return Ok(deleted);
        }
        // Nothing is deleted before it is logged; on failure, a taken writer is dropped with
        // its deletions uncommitted, and a caller's writer has deleted nothing yet.
        let log = self.log_batches(key, cutoff, &deleted).await?;
        let committed = match held {
            Held::Taken(mut writer, payload) => {
                tokio::task::spawn_blocking(move || writer.commit(payload.as_deref()))
                    .await
                    .map_err(task_error)?
            }
            // The same posts: nothing was written since the listing, and this is the only
            // writer.
            Held::Caller(writer, payload) => writer
                .delete_collected_before(cutoff)
                .and_then(|_| writer.commit(payload)),
        };
        if let Err(e) = committed {
            let _ = log.append(self.entry(cutoff, Vec::new(), 500)).await;
            let _ = log.close().await;
            return Err(e.into());
        }
        log.close().await?;
        Ok(deleted)
    }

    /// Opens the retention log, signed with `key`, and appends one entry per [`BATCH`] of
    /// `ids`, fsynced; returns the log, still open. On failure the log is closed and the error
    /// returned.
    async fn log_batches(
        &self,
        key: SigningKey,
        cutoff: DateTime<Utc>,
        ids: &[String],
    ) -> Result<AccessLog, RetentionError> {
        let log = AccessLog::builder(LogKind::Retention, &self.log_dir(), key)
            .options(LogOptions {
                checkpoint_every: 1,
            })
            .heads_file(self.heads_file.clone())
            .open()?;
        for batch in ids.chunks(BATCH) {
            if let Err(e) = log.append(self.entry(cutoff, batch.to_vec(), 200)).await {
                let _ = log.close().await;
                return Err(e.into());
            }
        }
        Ok(log)
    }

    /// The retention-log entry of a batch of `posts` deleted as collected before `cutoff`.
    fn entry(&self, cutoff: DateTime<Utc>, posts: Vec<String>, status: u16) -> Access {
        let cutoff_text = cutoff.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut params = serde_json::Map::new();
        params.insert("cutoff".into(), cutoff_text.clone().into());
        params.insert("retention_days".into(), self.days.into());
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
}

/// The index writer of an enforcement, between the listing and the commit.
enum Held<'a> {
    /// Taken from the index, its deletions already made, and the payload to commit them with.
    Taken(Box<IndexWriter>, Option<String>),
    /// The caller's, nothing deleted yet, and the payload to commit with.
    Caller(&'a mut IndexWriter, Option<&'a str>),
}

fn task_error(e: tokio::task::JoinError) -> RetentionError {
    RetentionError::Task(e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::access_log;
    use std::path::Path;
    use vigie_record::fixtures::scored;

    fn now() -> DateTime<Utc> {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    /// The retention of `data_dir` (its key made), keeping posts 30 days, publishing its heads
    /// nowhere.
    fn retention(data_dir: &Path) -> Retention {
        Retention {
            days: 30,
            data_dir: data_dir.to_path_buf(),
            heads_file: None,
            identities: data_dir.join("keys").join("identities.jsonl"),
        }
    }

    /// Upserts `posts` into `index` and commits with `payload`.
    fn commit(index: &PostIndex, posts: &[vigie_record::Envelope], payload: Option<&str>) {
        let mut w = index.writer().unwrap();
        for post in posts {
            w.upsert(post).unwrap();
        }
        w.commit(payload).unwrap();
    }

    /// Post `n`, collected `days` before [`now`].
    fn collected(n: u32, days: i64) -> vigie_record::Envelope {
        let mut e = scored(&n.to_string(), "a post", 0.5);
        e.provenance.fetched_at = now() - Duration::days(days);
        e
    }

    #[tokio::test]
    async fn old_posts_leave_after_their_batch_is_logged_and_the_log_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(&dir.path().join("index")).unwrap();
        let posts: Vec<_> = [(1, 40), (2, 31), (3, 29), (4, 1)]
            .into_iter()
            .map(|(n, days)| collected(n, days))
            .collect();
        commit(&index, &posts, None);
        let mut old: Vec<_> = posts[..2].iter().map(|e| e.post.id.to_string()).collect();
        let verifying = access_log::init_keys(dir.path()).unwrap();
        let retention = retention(dir.path());
        // The identity file forgets the days before the cutoff's, with the posts.
        let seen = |days| {
            format!(
                "{{\"pseudonym\":\"ps:{days}\",\"source\":\"mastodon\",\"handle\":\"h{days}\",\
                 \"seen\":\"{}\"}}\n",
                (now() - Duration::days(days)).date_naive()
            )
        };
        std::fs::write(&retention.identities, seen(40) + &seen(1)).unwrap();

        let report = retention
            .enforce(Target::Index(&index), now())
            .await
            .unwrap();
        old.sort();
        assert_eq!(report.deleted, old);
        assert_eq!(report.identities.unwrap(), 1);
        assert_eq!(index.num_docs(), 2);
        for id in &old {
            assert_eq!(index.get(id).unwrap(), None);
        }
        // A second run deletes nothing and logs nothing more.
        let again = retention
            .enforce(Target::Index(&index), now())
            .await
            .unwrap();
        assert!(again.deleted.is_empty());
        assert_eq!(again.identities.unwrap(), 0);

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
        let e = collected(5, 35);
        commit(&index, std::slice::from_ref(&e), Some("checkpoint"));
        let mut w = index.writer().unwrap();
        fn held<'a>(writer: &'a mut IndexWriter, index: &'a PostIndex) -> Target<'a> {
            Target::Writer {
                writer,
                index,
                payload: Some("checkpoint"),
            }
        }
        let kept = retention
            .enforce(held(&mut w, &index), now())
            .await
            .unwrap();
        assert_eq!(kept.deleted, [e.post.id.to_string()]);
        assert_eq!(index.get(e.post.id.as_str()).unwrap(), None);
        assert_eq!(
            index.commit_payload().unwrap().as_deref(),
            Some("checkpoint")
        );
        let none = retention
            .enforce(held(&mut w, &index), now())
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
        let all = Retention {
            days: 0,
            ..retention
        };
        let e = all.enforce(Target::Index(&index), now()).await.unwrap_err();
        assert!(e.is_writer_busy(), "{e}");
        assert_eq!(index.num_docs(), 2);
    }

    #[tokio::test]
    async fn a_replayed_archive_is_kept_its_period_and_a_future_dated_post_is_not_kept_for_ever() {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(&dir.path().join("index")).unwrap();
        // A post of 2012 replayed from an archive an hour ago.
        let mut archived = scored("old", "a post of 2012", 0.5);
        archived.post.created_at = "2012-10-29T20:00:00Z".parse().unwrap();
        archived.provenance.fetched_at = now() - Duration::hours(1);
        // A post whose source claims 2099, collected 40 days ago.
        let mut future = scored("future", "a post from the future", 0.5);
        future.post.created_at = "2099-01-01T00:00:00Z".parse().unwrap();
        future.provenance.fetched_at = now() - Duration::days(40);
        commit(&index, &[archived.clone(), future.clone()], None);
        access_log::init_keys(dir.path()).unwrap();
        let report = retention(dir.path())
            .enforce(Target::Index(&index), now())
            .await
            .unwrap();
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
        let retention = Retention {
            heads_file: Some(heads_file.clone()),
            ..retention(dir.path())
        };
        let enforce_one = |n: u32| {
            commit(&index, &[collected(n, 40)], None);
            retention.enforce(Target::Index(&index), now())
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
