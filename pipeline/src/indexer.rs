//! The indexer: reads scored envelopes from Kafka into the tantivy index.
//!
//! ## The checkpoint
//! The indexer's position in the topic is a [`Checkpoint`] kept in the payload of each index
//! commit (see [`crate::checkpoint`]: stored atomically with the documents, never moved
//! backwards on its own). On start it is read back from the last commit and each partition is
//! sought there; the consumer group's committed offsets play no part. A crash loses only
//! uncommitted work, which is read again; documents are upserted by Vigie id, so a message read
//! twice never makes a second document, and a message below the checkpoint (a redelivery) is
//! skipped.
//!
//! ## Coverage gaps
//! At start the indexer compares each checkpoint position with the partition's watermarks
//! itself (some brokers, tansu among them, never answer "out of range" and wait past the end):
//! a position the topic no longer holds restarts at the earliest message kept, never the
//! latest, and is recorded as a rewound or skipped [`Gap`]; the consumer keeps
//! `auto.offset.reset=earliest` for a position lost while it runs. Every offset read is then
//! compared with the one expected. Each gap is logged as a warning, counted in
//! `vigie_stage_offset_gaps_total{stage="index"}`, and kept in the checkpoint, so `vigie stats`
//! shows which stretch of which partition the index does not cover.
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

use crate::apply::Applied;
use crate::checkpoint::{Checkpoint, Gap};
use crate::collect::collect;
use crate::deadletter::dead_letter;
use crate::error::{Result, StageError};
use crate::metrics::StageMetrics;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigie_index::{IndexWriter, PostIndex};
use vigie_logs::retention::{Retention, Target};
use vigie_record::bus::{BusConfig, Publisher, Subscriber};
use vigie_record::Record;
use vigie_situation::IncidentConfig;

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
    /// How alerts are grouped into incidents (committed with the posts: see
    /// `vigie_index::incidents`).
    pub incidents: IncidentConfig,
}

/// Retention as the indexer enforces it: it holds the index writer for as long as it runs, so
/// `vigie serve` and `vigie retention enforce` cannot (see `vigie_logs::retention`).
#[derive(Debug, Clone)]
pub struct IndexerRetention {
    /// What to enforce: the period, the retention log, the identity file.
    pub retention: Retention,
    /// How often to enforce it (first at start).
    pub every: Duration,
}

/// Runs the indexer until `shutdown` resolves; then commits what it read and returns.
pub async fn run_indexer(
    config: &IndexerConfig,
    index: &PostIndex,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<u64> {
    let mut checkpoint = Checkpoint::of(index)?.unwrap_or_default();
    if !checkpoint.offsets.is_empty() && checkpoint.topic != config.topic {
        return Err(StageError::ForeignTopic {
            fed: checkpoint.topic,
            asked: config.topic.clone(),
        });
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
        let gap = checkpoint.reset(m.partition, m.asked, m.start);
        report_gap(&gap, &config.metrics);
    }
    let dead = Publisher::new(&config.bus, &config.deadletter)?;
    let mut writer = index.writer_with(config.incidents)?;
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
            collect(&subscriber, config.batch, config.linger, &mut wake).await
        };
        let stopping = woke && !retention_due.load(Ordering::Relaxed);
        if batch.is_empty() {
            if stopping {
                break;
            }
            continue;
        }
        let (read_at, dead_before) = (Instant::now(), dead.acknowledged());
        config.metrics.received(batch.len());
        let mut applied = Applied::default();
        for d in &batch {
            // Below the checkpoint: already in the index (a redelivery); refused, skipped.
            match checkpoint.advance(d.coords.partition, d.coords.offset) {
                Err(refused) => {
                    tracing::debug!("skipped: {refused}");
                    continue;
                }
                Ok(Some(gap)) => report_gap(&gap, &config.metrics),
                Ok(None) => {}
            }
            // A post is upserted (refused if deleted at its source); a deletion removes its
            // post and is recorded in the same commit (see `vigie_index::deletion`).
            match Record::from_json(&d.payload) {
                Ok(mut record) => {
                    // Where it entered Kafka, when an analyse worker has not said so.
                    match &mut record {
                        Record::Post(e) => e.kafka.get_or_insert_with(|| d.coords.clone()),
                        Record::Delete(t) => t.kafka.get_or_insert_with(|| d.coords.clone()),
                    };
                    applied.add(&mut writer, &record, f32::INFINITY)?;
                }
                Err(e) => dead_letter(&dead, d, &e.to_string()).await?,
            }
        }
        writer.commit(Some(&checkpoint.to_payload()?))?;
        tracing::debug!(messages = batch.len(), "committed");
        let m = &config.metrics;
        m.messages_out.inc_by(applied.posts);
        m.dead_letters.inc_by(dead.acknowledged() - dead_before);
        m.batch_seconds.observe(read_at.elapsed().as_secs_f64());
        m.busy("index", read_at);
        m.committed(batch.len());
        indexed += applied.posts;
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
    let payload = match index.commit_payload() {
        Ok(payload) => payload,
        Err(e) => {
            tracing::warn!("retention not enforced this time: {e}");
            return;
        }
    };
    let target = Target::Writer {
        writer,
        index,
        payload: payload.as_deref(),
    };
    match r.retention.enforce(target, chrono::Utc::now()).await {
        Ok(report) => report.trace(),
        Err(e) => tracing::warn!("retention not enforced this time: {e}"),
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

/// The statistics of `index`.
pub fn stats(index: &PostIndex) -> Result<Stats> {
    let checkpoint = Checkpoint::of(index)?;
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
