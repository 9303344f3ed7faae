//! `vigie replay`: play a recorded stream into the embedded pipeline (analyse, then index), or
//! into Kafka's raw topic.
//!
//! The file is a capture (`vigie capture`, `.jsonl` or `.jsonl.zst`), a CrisisLex CSV or a
//! labelled JSONL file; its format is detected from its name and first line, or given with
//! `--format`. Items are replayed in a deterministic order, by their time at the source then
//! their Vigie id, keeping the original inter-arrival times divided by `--speed` (`max`: no
//! waiting) ([`vigie_ingest::replay::play`]), and a progress bar shows posts/s and the time
//! left.
//!
//! - **Embedded** (default): each batch is analysed, written and committed to the index before
//!   the next. A deletion (tombstone) removes its post and records the deletion in the same
//!   commit; a post already deleted is refused (see `vigie_index::deletion`).
//! - **`--brokers B`**: each batch is published to the raw topic (`--topic`, default
//!   `vigie.posts.raw`, created with `--partitions` if missing), one message per post or
//!   deletion keyed by its Vigie id (a deletion is the record `{"tombstone": …}`, see
//!   `vigie_record::Deletion`). The progress advances only once the broker has acknowledged
//!   every message of the batch (idempotent producer, `acks=all`); the messages of a batch are
//!   queued in replay order, and the producer keeps that order within each partition.
//!
//! Replaying twice indexes each post once: the index upserts by Vigie id.

use super::ScorerChoice;
use crate::config::{Config, Overrides};
use anyhow::{Context, Result};
use clap::Args;
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::time::Instant;
use vigie_index::PostIndex;
use vigie_ingest::replay::{self, Format, Speed};
use vigie_ingest::{Item, Pseudonymiser};
use vigie_pipeline::publish::{publish_batch, Published};
use vigie_pipeline::{topics, Applied};
use vigie_record::bus::Publisher;

/// `vigie replay` arguments.
#[derive(Args)]
pub struct ReplayArgs {
    /// The file to replay: a capture (.jsonl, .jsonl.zst), a CrisisLex CSV or labelled JSONL.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Pace: 1 keeps the original inter-arrival times, 10 plays ten times faster, max does not
    /// wait.
    #[arg(long, value_name = "1|10|max", default_value = "1")]
    pub speed: Speed,
    /// Index directory (default <data-dir>/index).
    #[arg(long, value_name = "DIR", conflicts_with = "brokers")]
    pub index: Option<PathBuf>,
    /// The file's format: capture, crisislex or labelled (default: detected).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Model directory (overrides the config).
    #[arg(long, value_name = "DIR", conflicts_with = "brokers")]
    pub model_dir: Option<PathBuf>,
    /// Publish to Kafka's raw topic at these bootstrap brokers (host:port[,host:port]) instead
    /// of analysing and indexing in-process.
    #[arg(long, value_name = "BROKERS")]
    pub brokers: Option<String>,
    /// Topic of raw posts (with --brokers).
    #[arg(long, value_name = "TOPIC", default_value = topics::RAW)]
    pub topic: String,
    /// Partitions of the topic, when this command creates it (with --brokers).
    #[arg(long, default_value_t = topics::DEFAULT_PARTITIONS)]
    pub partitions: i32,
}

impl super::Cmd for ReplayArgs {
    fn overrides(&self, o: &mut Overrides) {
        o.model_dir = self.model_dir.clone();
        o.index_dir = self.index.clone();
    }

    fn run(&self, config: &Config) -> Result<()> {
        let args = self;
        let started = Instant::now();
        let pseudonymiser: Pseudonymiser = config.pseudonymiser()?;
        let loaded = replay::load(&args.file, args.format, &pseudonymiser)
            .with_context(|| format!("reading {}", args.file.display()))?;
        for e in &loaded.rejected {
            tracing::warn!("skipped: {e}");
        }
        let progress = vigie_analyse::experiment::progress_bar(
            loaded.items.len(),
            format!("replaying at {}", args.speed),
        );
        let rejected = loaded.rejected.len();
        match &args.brokers {
            Some(brokers) => {
                let summary = to_kafka(config, args, brokers, loaded.items, &progress)?;
                progress.finish_and_clear();
                println!(
                    "replayed {}: {} posts and {} deletions published to {} at {brokers}, {} lines rejected",
                    args.file.display(),
                    summary.posts,
                    summary.deletions,
                    args.topic,
                    rejected
                );
            }
            None => {
                let index_dir = config.index_dir();
                let summary = to_index(config, args, loaded.items, &progress)?;
                progress.finish_and_clear();
                println!(
                    "replayed {}: {} posts indexed ({} alerts, {} not scored), {} deletions applied, {} posts refused as deleted at their source, {} lines rejected, into {}",
                    args.file.display(),
                    summary.posts,
                    summary.alerts,
                    summary.not_scored,
                    summary.deletions,
                    summary.refused,
                    rejected,
                    index_dir.display()
                );
            }
        }
        tracing::info!(seconds = started.elapsed().as_secs_f32(), "replay done");
        Ok(())
    }
}

/// The embedded pipeline ([`vigie_pipeline::embedded`]): analyse each batch, apply it to the
/// index in replay order, commit.
fn to_index(
    config: &Config,
    args: &ReplayArgs,
    items: Vec<Item>,
    progress: &ProgressBar,
) -> Result<Applied> {
    let analyser = super::analyser(config, ScorerChoice::Model)?;
    let index = PostIndex::open(&config.index_dir())?;
    Ok(vigie_pipeline::embedded::replay_into_index(
        items,
        args.speed,
        config.batch_size,
        &analyser,
        config.alert_threshold,
        &index,
        |n| progress.inc(n as u64),
    )?)
}

/// Publishes each batch to the raw topic, keyed by Vigie id, and waits for every
/// acknowledgement before the progress advances ([`vigie_pipeline::publish`]).
fn to_kafka(
    config: &Config,
    args: &ReplayArgs,
    brokers: &str,
    items: Vec<Item>,
    progress: &ProgressBar,
) -> Result<Published> {
    let runtime = tokio::runtime::Runtime::new()?;
    let bus = config.bus(brokers);
    runtime
        .block_on(bus.ensure_topics(&[&args.topic], args.partitions))
        .with_context(|| format!("cannot reach topic {} at {brokers}", args.topic))?;
    let publisher = Publisher::new(&bus, &args.topic)?;
    let mut published = Published::default();
    replay::play_now(
        items,
        args.speed,
        config.batch_size,
        |batch: Vec<Item>| -> Result<()> {
            let p = runtime
                .block_on(publish_batch(&publisher, &batch))
                .with_context(|| format!("publishing to {}", args.topic))?;
            published.posts += p.posts;
            published.deletions += p.deletions;
            progress.inc(batch.len() as u64);
            Ok(())
        },
    )?;
    Ok(published)
}
