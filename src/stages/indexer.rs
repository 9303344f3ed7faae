//! The indexer: reads scored envelopes from Kafka into the tantivy index.
//!
//! ## The checkpoint
//! The indexer reads `vigie.posts.scored` and writes tantivy. Its position in the topic — for
//! each partition, the offset of the next message to read — is its *checkpoint*. The checkpoint
//! is stored in the payload of each tantivy commit, in the same atomic write as the documents
//! read up to it (see `vigie_index`): the index and the position it was read up to can never
//! disagree. On start, the indexer reads the checkpoint back from the last commit and seeks each
//! partition there; the consumer group's committed offsets play no part. A crash loses only
//! uncommitted work, which is read again; documents are upserted by Vigie id, so a message read
//! twice never makes a second document.
//!
//! ## Coverage gaps
//! A checkpoint position can fall out of the topic: the broker's retention deleted messages the
//! indexer had not read yet (it was down too long), or the topic was recreated. The consumer
//! then restarts from the earliest message the broker still has, never the latest: jumping to
//! the end would skip everything in between without a word. At start the indexer compares each
//! checkpoint position with the partition's watermarks itself (some brokers, tansu among them,
//! never answer "out of range" and wait past the end), and the consumer keeps
//! `auto.offset.reset=earliest` for a position lost while it runs. Then it compares every offset
//! it reads with the one it expected. A difference is a [`Gap`]: `skipped` (messages lost to the index,
//! from `expected` to `got - 1`) or `rewound` (the topic restarted below the checkpoint; what is
//! read again is upserted, so nothing is duplicated). Each gap is logged as a warning, counted in
//! `vigie_stage_offset_gaps_total{stage="index"}`, and kept in the checkpoint (the last [`MAX_GAPS`]), so
//! `vigie stats` shows which stretch of which partition the index does not cover.
//!
//! ## Retention
//! With [`IndexerConfig::retention`] (`vigie index`, when `retention_days` is not 0), the indexer
//! enforces retention itself, at start and then every `every`, between two commits: it holds the
//! index writer, so nobody else can. Each deletion batch is first logged in
//! `<data-dir>/retention-log/` exactly as `vigie retention enforce` logs it, and the commit that
//! deletes the posts keeps the checkpoint; then the identity file forgets the days before the
//! cutoff.
//!
//! ## Deletions
//! A deletion record (`{"tombstone": …}`, passed on unscored by the analyse workers) removes its
//! post and is recorded in the same commit as the checkpoint; a post whose id has a deletion
//! record is not indexed again (see `vigie_index::deletion`).

use super::metrics::StageMetrics;
use super::{collect, dead_letter};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigie_index::{IndexWriter, PostIndex, Upsert};
use vigie_record::bus::{BusConfig, Publisher, Subscriber};
use vigie_record::Record;

/// Most coverage gaps a checkpoint keeps (the latest).
pub const MAX_GAPS: usize = 100;

/// The indexer's position, stored in the payload of every commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The topic read.
    pub topic: String,
    /// Partition -> offset of the next message to read.
    pub offsets: BTreeMap<i32, i64>,
    /// When the commit was made (RFC 3339).
    pub committed_at: Option<String>,
    /// Discontinuities met while reading, oldest first (see the module doc).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
}

/// A stretch of a partition the indexer did not read in order (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// The partition.
    pub partition: i32,
    /// The offset the checkpoint expected next.
    pub expected: i64,
    /// The offset read instead.
    pub got: i64,
    /// `skipped` (offsets `expected..got` were never indexed) or `rewound`.
    pub kind: GapKind,
    /// When it was seen (RFC 3339).
    pub seen_at: String,
}

/// Which way the position jumped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// Forward: messages were lost to the index.
    Skipped,
    /// Backward: messages are read again.
    Rewound,
}

impl Checkpoint {
    /// Moves `partition` past the message at `offset`; returns the gap if `offset` is not the
    /// one expected (a partition not in the checkpoint yet expects nothing).
    pub fn advance(&mut self, partition: i32, offset: i64) -> Option<Gap> {
        let expected = self.offsets.insert(partition, offset + 1);
        expected
            .filter(|&e| e != offset)
            .map(|expected| self.record(partition, expected, offset))
    }

    /// Records that reading `partition` restarts at `start` instead of the checkpoint's
    /// `expected` (the topic no longer holds it), and moves the position there.
    pub fn moved(&mut self, partition: i32, expected: i64, start: i64) -> Gap {
        self.offsets.insert(partition, start);
        self.record(partition, expected, start)
    }

    /// Keeps the gap between `expected` and `got` (the last [`MAX_GAPS`]).
    fn record(&mut self, partition: i32, expected: i64, got: i64) -> Gap {
        let gap = Gap {
            partition,
            expected,
            got,
            kind: if got > expected {
                GapKind::Skipped
            } else {
                GapKind::Rewound
            },
            seen_at: chrono::Utc::now().to_rfc3339(),
        };
        self.gaps.push(gap.clone());
        if self.gaps.len() > MAX_GAPS {
            self.gaps.remove(0);
        }
        gap
    }

    /// The checkpoint of the index's last commit, if it has one.
    pub fn of(index: &PostIndex) -> Result<Option<Checkpoint>> {
        index
            .commit_payload()?
            .map(|p| {
                serde_json::from_str(&p).context("the index's commit payload is not a checkpoint")
            })
            .transpose()
    }
}

/// Settings of the indexer stage.
#[derive(Debug, Clone)]
pub struct IndexerConfig {
    /// The brokers.
    pub bus: BusConfig,
    /// Topic of scored envelopes.
    pub topic: String,
    /// Topic of dead letters.
    pub deadletter: String,
    /// Most messages per commit.
    pub batch: usize,
    /// Longest wait for a batch to fill before committing what there is.
    pub linger: Duration,
    /// Where the indexer counts what it does (`stage="index"`).
    pub metrics: StageMetrics,
    /// Retention, enforced by the indexer between two commits; `None`: not here.
    pub retention: Option<IndexerRetention>,
}

/// Retention as the indexer enforces it: it holds the index writer for as long as it runs, so
/// `vigie serve` and `vigie retention enforce` cannot (see `vigie_api::retention`).
#[derive(Debug, Clone)]
pub struct IndexerRetention {
    /// Posts created more than this many days ago leave the index.
    pub days: u32,
    /// The data dir: the access-log signing key, and the retention log it appends to.
    pub data_dir: PathBuf,
    /// Where the retention log's signed heads are published (`access_log_heads_file`).
    pub heads_file: Option<PathBuf>,
    /// How often to enforce it (first at start).
    pub every: Duration,
    /// The identity file, whose days before the cutoff are forgotten after each enforcement
    /// (as `vigie retention enforce` does).
    pub identities: PathBuf,
}

/// Runs the indexer until `shutdown` resolves; then commits what it read and returns.
pub async fn run_indexer(
    config: &IndexerConfig,
    index: &PostIndex,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<u64> {
    let mut checkpoint = Checkpoint::of(index)?.unwrap_or_default();
    if !checkpoint.offsets.is_empty() && checkpoint.topic != config.topic {
        anyhow::bail!(
            "this index was fed from topic {}, not {}",
            checkpoint.topic,
            config.topic
        );
    }
    checkpoint.topic = config.topic.clone();
    config
        .bus
        .ensure_topics(&[&config.topic, &config.deadletter], 1)
        .await?;
    let subscriber = Arc::new(Subscriber::assigned(
        &config.bus,
        &config.topic,
        &checkpoint.offsets,
    )?);
    for m in subscriber.moved_starts() {
        let gap = checkpoint.moved(m.partition, m.asked, m.start);
        report_gap(&gap, &config.metrics);
    }
    let dead = Publisher::new(&config.bus, &config.deadletter)?;
    let mut writer = index.writer()?;
    // One batch at a time: read, written, committed.
    config.metrics.set_bound(config.batch.max(1));
    let lag = config.metrics.watch_lag(subscriber.clone());
    tracing::info!(topic = %config.topic, offsets = ?checkpoint.offsets, "indexer started");
    tokio::pin!(shutdown);
    let mut indexed = 0u64;
    let mut next_retention = tokio::time::Instant::now();
    loop {
        if let Some(r) = &config.retention {
            if tokio::time::Instant::now() >= next_retention {
                // Between two commits: the writer holds nothing uncommitted.
                enforce_retention(r, &mut writer, index).await;
                next_retention = tokio::time::Instant::now() + r.every;
            }
        }
        // Wake for shutdown, and for retention when it is due even if no message comes.
        let retention_due = AtomicBool::new(false);
        let (batch, woke) = {
            let wake = async {
                if config.retention.is_some() {
                    tokio::select! {
                        _ = shutdown.as_mut() => {}
                        _ = tokio::time::sleep_until(next_retention) => {
                            retention_due.store(true, Ordering::Relaxed);
                        }
                    }
                } else {
                    shutdown.as_mut().await
                }
            };
            tokio::pin!(wake);
            collect(&subscriber, config.batch, config.linger, &mut wake).await?
        };
        let stopping = woke && !retention_due.load(Ordering::Relaxed);
        if batch.is_empty() {
            if stopping {
                break;
            }
            continue;
        }
        let (read_at, indexed_before, dead_before) = (Instant::now(), indexed, dead.acknowledged());
        config.metrics.received(batch.len());
        for d in &batch {
            // A post is upserted (refused if deleted at its source); a deletion removes its
            // post and is recorded in the same commit (see `vigie_index::deletion`).
            match Record::from_json(&d.payload) {
                Ok(Record::Post(mut envelope)) => {
                    // Where the post entered Kafka, when an analyse worker has not said so.
                    envelope.kafka.get_or_insert_with(|| d.coords.clone());
                    if writer.upsert(&envelope)? == Upsert::Indexed {
                        indexed += 1;
                    }
                }
                Ok(Record::Delete(mut deletion)) => {
                    deletion.kafka.get_or_insert_with(|| d.coords.clone());
                    writer.delete(&deletion)?;
                }
                Err(e) => dead_letter(&dead, d, &e.to_string()).await?,
            }
            if let Some(gap) = checkpoint.advance(d.coords.partition, d.coords.offset) {
                report_gap(&gap, &config.metrics);
            }
        }
        checkpoint.committed_at = Some(chrono::Utc::now().to_rfc3339());
        writer.commit(Some(&serde_json::to_string(&checkpoint)?))?;
        tracing::debug!(messages = batch.len(), "committed");
        let m = &config.metrics;
        m.messages_out.inc_by(indexed - indexed_before);
        m.dead_letters.inc_by(dead.acknowledged() - dead_before);
        m.batch_seconds.observe(read_at.elapsed().as_secs_f64());
        m.busy("index", read_at);
        m.committed(batch.len());
        if stopping {
            break;
        }
    }
    drop(lag);
    tracing::info!(indexed, offsets = ?checkpoint.offsets, "indexer stopped");
    Ok(indexed)
}

/// Logs a coverage gap as a warning and counts it in `/metrics`.
fn report_gap(gap: &Gap, metrics: &StageMetrics) {
    tracing::warn!(
        partition = gap.partition,
        expected = gap.expected,
        got = gap.got,
        kind = ?gap.kind,
        "coverage gap: the topic no longer holds the checkpoint's position"
    );
    metrics.offset_gap();
}

/// Enforces `r` once with the indexer's `writer`, keeping its checkpoint in the commit; a
/// failure (no signing key, the log unwritable) is logged and retried at the next turn.
async fn enforce_retention(r: &IndexerRetention, writer: &mut IndexWriter, index: &PostIndex) {
    let enforced = async {
        let key = vigie_api::access_log::load_signing_key(&r.data_dir)?;
        let payload = index.commit_payload()?;
        let report = vigie_api::retention::enforce_with(
            writer,
            index,
            payload.as_deref(),
            vigie_api::retention::RetentionLog {
                data_dir: &r.data_dir,
                key,
                heads_file: r.heads_file.clone(),
            },
            r.days,
            chrono::Utc::now(),
        )
        .await?;
        anyhow::Ok(report)
    }
    .await;
    if let Ok(report) = &enforced {
        match vigie_ingest::identities::expire(&r.identities, report.cutoff.date_naive()) {
            Ok(0) => {}
            Ok(n) => tracing::info!("retention: forgot {n} identity lines"),
            Err(e) => tracing::warn!("retention: identity file not expired: {e}"),
        }
    }
    match enforced {
        Ok(report) if report.deleted.is_empty() => {}
        Ok(report) => tracing::info!(
            deleted = report.deleted.len(),
            cutoff = %report.cutoff,
            "retention: deleted old posts (logged in {})",
            report.log.display()
        ),
        Err(e) => tracing::warn!("retention not enforced this time: {e:#}"),
    }
}

/// What `vigie stats --json` prints.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Posts visible to searchers.
    pub docs: u64,
    /// Deletion records: posts deleted at their source (see `vigie_index::deletion`).
    pub deletions: u64,
    /// Partition -> next offset to read, from the last commit's checkpoint.
    pub offsets: BTreeMap<i32, i64>,
    /// The topic the offsets refer to.
    pub topic: Option<String>,
    /// When the last checkpointed commit was made.
    pub committed_at: Option<String>,
    /// The coverage gaps the checkpoint keeps (see [`Gap`]).
    pub gaps: Vec<Gap>,
}

/// The statistics of the index in `dir`.
pub fn stats(dir: &std::path::Path) -> Result<Stats> {
    anyhow::ensure!(
        dir.join("meta.json").is_file(),
        "no index in {}",
        dir.display()
    );
    let index = PostIndex::open(dir)?;
    let checkpoint = Checkpoint::of(&index)?;
    Ok(Stats {
        docs: index.num_docs(),
        deletions: index.num_deletions()?,
        offsets: checkpoint
            .as_ref()
            .map(|c| c.offsets.clone())
            .unwrap_or_default(),
        topic: checkpoint.as_ref().map(|c| c.topic.clone()),
        gaps: checkpoint
            .as_ref()
            .map(|c| c.gaps.clone())
            .unwrap_or_default(),
        committed_at: checkpoint.and_then(|c| c.committed_at),
    })
}

#[cfg(test)]
mod checkpoint_tests {
    use super::*;

    #[test]
    fn an_offset_jump_is_a_coverage_gap_not_a_silent_skip() {
        let mut c = Checkpoint::default();
        // The first message of a partition the checkpoint does not know: no gap.
        assert_eq!(c.advance(0, 5), None);
        assert_eq!(c.advance(0, 6), None);
        // Messages 7..=9 were deleted from the topic before the indexer read them.
        let gap = c.advance(0, 10).unwrap();
        assert_eq!((gap.expected, gap.got, gap.kind), (7, 10, GapKind::Skipped));
        // The topic was recreated: offsets start again below the checkpoint.
        let gap = c.advance(0, 0).unwrap();
        assert_eq!((gap.expected, gap.got, gap.kind), (11, 0, GapKind::Rewound));
        assert_eq!(c.offsets[&0], 1);
        assert_eq!(c.gaps.len(), 2);
        // Kept in the commit payload, and readable by an older checkpoint without gaps.
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), c);
        let old: Checkpoint =
            serde_json::from_str(r#"{"topic":"t","offsets":{"0":3},"committed_at":null}"#).unwrap();
        assert!(old.gaps.is_empty());
        for n in 0..(MAX_GAPS as i64 + 10) {
            c.advance(1, n * 2);
        }
        assert_eq!(c.gaps.len(), MAX_GAPS);
    }
}
