//! The Kafka stages of the pipeline: the analyse worker and the indexer.
//!
//! ## The analyse worker
//! Analyse workers share the partitions of `vigie.posts.raw` as one consumer group, so N of them
//! split the load and a survivor takes over the partitions of one that dies. A worker scores a
//! batch, publishes it to `vigie.posts.scored` (idempotent producer, `acks=all`) and commits its
//! input offsets only once every output is acknowledged: delivery is at-least-once, and a post
//! scored twice keeps its Vigie id, so the indexer's upsert collapses the copies.
//!
//! ## The indexer's checkpoint
//! The indexer reads `vigie.posts.scored` and writes tantivy. Its position in the topic — for
//! each partition, the offset of the next message to read — is its *checkpoint*. The checkpoint
//! is stored in the payload of each tantivy commit, in the same atomic write as the documents
//! read up to it (see `vigie_index`): the index and the position it was read up to can never
//! disagree. On start, the indexer reads the checkpoint back from the last commit and seeks each
//! partition there; the consumer group's committed offsets play no part. A crash loses only
//! uncommitted work, which is read again; documents are upserted by Vigie id, so a message read
//! twice never makes a second document.
//!
//! ## Dead letters
//! A message that is not a valid envelope is published to `vigie.deadletter` with its original
//! bytes as the value and the reason and source coordinates as headers (`vigie-reason`,
//! `vigie-source-topic`, `vigie-source-partition`, `vigie-source-offset`), and the indexer goes
//! on. A dead letter is published before the commit that moves past its message, so after a
//! crash it may be published twice, never lost.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use vigie_index::PostIndex;
use vigie_record::bus::{BusConfig, Delivery, Publisher, Subscriber};
use vigie_record::Envelope;

/// The indexer's position, stored in the payload of every commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The topic read.
    pub topic: String,
    /// Partition -> offset of the next message to read.
    pub offsets: BTreeMap<i32, i64>,
    /// When the commit was made (RFC 3339).
    pub committed_at: Option<String>,
}

impl Checkpoint {
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
    let subscriber = Subscriber::assigned(&config.bus, &config.topic, &checkpoint.offsets)?;
    let dead = Publisher::new(&config.bus, &config.deadletter)?;
    let mut writer = index.writer()?;
    tracing::info!(topic = %config.topic, offsets = ?checkpoint.offsets, "indexer started");
    tokio::pin!(shutdown);
    let mut indexed = 0u64;
    loop {
        let (batch, stopping) =
            collect(&subscriber, config.batch, config.linger, &mut shutdown).await?;
        if batch.is_empty() {
            if stopping {
                break;
            }
            continue;
        }
        for d in &batch {
            match Envelope::from_json(&d.payload) {
                Ok(mut envelope) => {
                    // Where the post entered Kafka, when an analyse worker has not said so.
                    envelope.kafka.get_or_insert_with(|| d.coords.clone());
                    writer.upsert(&envelope)?;
                    indexed += 1;
                }
                Err(e) => dead_letter(&dead, d, &e.to_string()).await?,
            }
            checkpoint
                .offsets
                .insert(d.coords.partition, d.coords.offset + 1);
        }
        checkpoint.committed_at = Some(chrono::Utc::now().to_rfc3339());
        writer.commit(Some(&serde_json::to_string(&checkpoint)?))?;
        tracing::debug!(messages = batch.len(), "committed");
        if stopping {
            break;
        }
    }
    tracing::info!(indexed, offsets = ?checkpoint.offsets, "indexer stopped");
    Ok(indexed)
}

async fn dead_letter(dead: &Publisher, d: &Delivery, reason: &str) -> Result<()> {
    tracing::warn!(coords = ?d.coords, "dead letter: {reason}");
    let (partition, offset) = (d.coords.partition.to_string(), d.coords.offset.to_string());
    let key = String::from_utf8_lossy(d.key.as_deref().unwrap_or_default()).into_owned();
    dead.send_with_headers(
        &key,
        &d.payload,
        &[
            ("vigie-reason", reason),
            ("vigie-source-topic", &d.coords.topic),
            ("vigie-source-partition", &partition),
            ("vigie-source-offset", &offset),
        ],
    )
    .await?;
    Ok(())
}

/// Settings of the analyse worker.
#[derive(Debug, Clone)]
pub struct AnalyserConfig {
    /// The brokers.
    pub bus: BusConfig,
    /// Consumer group shared by the workers.
    pub group: String,
    /// Topic of raw envelopes.
    pub input: String,
    /// Topic of scored envelopes.
    pub output: String,
    /// Topic of dead letters.
    pub deadletter: String,
    /// Partitions of the topics when this worker creates them.
    pub partitions: i32,
    /// Most messages per batch.
    pub batch: usize,
    /// Longest wait for a batch to fill.
    pub linger: Duration,
}

/// Collects up to `max` messages, waiting at most `linger` once the first has come; the flag
/// is set when `shutdown` fired. A broker that goes away is waited out: read errors are logged
/// and reading goes on once librdkafka has reconnected.
async fn collect(
    subscriber: &Subscriber,
    max: usize,
    linger: Duration,
    shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Result<(Vec<Delivery>, bool)> {
    let mut batch = Vec::new();
    let deadline = tokio::time::sleep(linger);
    tokio::pin!(deadline);
    while batch.len() < max {
        tokio::select! {
            _ = shutdown.as_mut() => return Ok((batch, true)),
            _ = &mut deadline, if !batch.is_empty() => break,
            next = subscriber.next() => match next {
                Ok(d) => batch.push(d),
                Err(e) => {
                    tracing::warn!("reading from Kafka: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
        }
    }
    Ok((batch, false))
}

/// Runs an analyse worker until `shutdown` resolves; returns the number of posts scored.
pub async fn run_analyser<S: vigie_analyse::Scorer>(
    config: &AnalyserConfig,
    analyser: &vigie_analyse::Analyser<S>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<u64> {
    config
        .bus
        .ensure_topics(
            &[&config.input, &config.output, &config.deadletter],
            config.partitions,
        )
        .await?;
    let subscriber = Subscriber::new(&config.bus, &config.group, &[&config.input])?;
    let output = Publisher::new(&config.bus, &config.output)?;
    let dead = Publisher::new(&config.bus, &config.deadletter)?;
    tracing::info!(group = %config.group, input = %config.input, "analyse worker started");
    tokio::pin!(shutdown);
    let mut scored = 0u64;
    loop {
        let (batch, stopping) =
            collect(&subscriber, config.batch, config.linger, &mut shutdown).await?;
        let mut envelopes = Vec::with_capacity(batch.len());
        for d in &batch {
            match Envelope::from_json(&d.payload) {
                Ok(mut e) => {
                    e.kafka = Some(d.coords.clone());
                    envelopes.push(e);
                }
                Err(e) => dead_letter(&dead, d, &e.to_string()).await?,
            }
        }
        if !envelopes.is_empty() {
            tokio::task::block_in_place(|| analyser.analyse(&mut envelopes))?;
            let sends = envelopes.iter().map(|e| output.publish(e));
            for sent in futures_util::future::join_all(sends).await {
                sent?;
            }
            scored += envelopes.len() as u64;
        }
        // Every output is acknowledged: the inputs are done.
        let mut last: BTreeMap<(String, i32), vigie_record::KafkaCoords> = BTreeMap::new();
        for d in &batch {
            last.insert(
                (d.coords.topic.clone(), d.coords.partition),
                d.coords.clone(),
            );
        }
        if !last.is_empty() {
            subscriber.commit(&last.into_values().collect::<Vec<_>>())?;
        }
        if stopping {
            break;
        }
    }
    tracing::info!(scored, "analyse worker stopped");
    Ok(scored)
}

/// What `vigie stats --json` prints.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Documents visible to searchers.
    pub docs: u64,
    /// Partition -> next offset to read, from the last commit's checkpoint.
    pub offsets: BTreeMap<i32, i64>,
    /// The topic the offsets refer to.
    pub topic: Option<String>,
    /// When the last checkpointed commit was made.
    pub committed_at: Option<String>,
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
        offsets: checkpoint
            .as_ref()
            .map(|c| c.offsets.clone())
            .unwrap_or_default(),
        topic: checkpoint.as_ref().map(|c| c.topic.clone()),
        committed_at: checkpoint.and_then(|c| c.committed_at),
    })
}
