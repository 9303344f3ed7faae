//! `vigie run`: the whole flow on one machine.
//!
//! **Embedded** (default): the stream (`--input`, the sample by default) is replayed through the
//! analyser into the index in this process ([`vigie_pipeline::embedded`]), then the API serves
//! it (with the demo user of [`super::demo_access`]).
//!
//! **`--brokers B`**: every stage in one process, over Kafka. The stream is published to
//! `vigie.posts.raw`; an analyse worker scores it into `vigie.posts.scored`; the indexer writes
//! it into the index; the API serves that same index (one [`PostIndex`], whose searchers see
//! each commit of the indexer). The stages are the ones `vigie analyse` and `vigie index` run,
//! with the same guarantees (at-least-once, checkpoint in the index commit, dead letters,
//! bounded memory), and their metrics on `--metrics ADDR`.
//!
//! ## Stopping
//! Ctrl-C or SIGTERM stops the stages in the order the posts flow: publishing stops, the analyse
//! worker finishes and commits the batches it holds, then the indexer commits what it read,
//! then the API finishes the requests in flight and signs its access log's checkpoint; the
//! process exits 0. Starting again publishes the stream again: the posts keep their Vigie ids,
//! so the index's upsert keeps one document each.

use super::{analyser, Cmd, ScorerChoice};
use crate::config::{Config, Overrides};
use anyhow::{Context, Result};
use std::future::Future;
use std::path::PathBuf;
use tokio::sync::watch;
use vigie_index::PostIndex;
use vigie_ingest::replay::{self, Format, Speed};
use vigie_ingest::Item;
use vigie_pipeline::metrics::{self, Metrics};
use vigie_pipeline::topics;
use vigie_pipeline::{AnalyserConfig, IndexerConfig};
use vigie_record::bus::{Enqueuer, Publisher};

/// `vigie run` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The stream to replay (labelled JSONL).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "fixtures/sample-stream.jsonl"
    )]
    input: PathBuf,
    /// Model directory (overrides the config).
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// Index and stop, without serving (with --brokers: run the stages without the API).
    #[arg(long)]
    no_serve: bool,
    /// Kafka bootstrap brokers: publish the stream to Kafka and run the analyse worker, the
    /// indexer and the API in this process over it, until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "BROKERS")]
    brokers: Option<String>,
    /// With --brokers: serve GET /metrics (Prometheus text) on ADDR.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// With --brokers: batches queued between the analyse worker's consumer, model and producer.
    #[arg(long, default_value_t = 2)]
    queue: usize,
    /// Where the index is and the API listens, as for `vigie serve`.
    #[command(flatten)]
    serve: super::serve::Args,
}

impl Cmd for Args {
    fn overrides(&self, o: &mut Overrides) {
        self.serve.overrides(o);
        o.model_dir = self.model_dir.clone();
        o.metrics = self.metrics.clone();
    }

    fn run(&self, config: &Config) -> Result<()> {
        let loaded = replay::load(
            &self.input,
            Some(Format::Labelled),
            &config.pseudonymiser()?,
        )
        .with_context(|| format!("reading {}", self.input.display()))?;
        for e in &loaded.rejected {
            tracing::warn!("skipped: {e}");
        }
        match &self.brokers {
            Some(brokers) => over_kafka(config, self, brokers, loaded.items),
            None => embedded(config, self, loaded.items, loaded.rejected.len()),
        }
    }
}

/// Replays `items` into the index in this process, then serves it unless `--no-serve`.
fn embedded(config: &Config, args: &Args, items: Vec<Item>, rejected: usize) -> Result<()> {
    if config.metrics.is_some() {
        tracing::warn!("no /metrics without --brokers: the metrics are the Kafka stages'");
    }
    let started = std::time::Instant::now();
    let analyser = analyser(config, ScorerChoice::Model)?;
    let index = PostIndex::open(&config.index_dir())?;
    let progress = vigie_analyse::experiment::progress_bar(items.len(), "analysing");
    let applied = vigie_pipeline::embedded::replay_into_index(
        items,
        Speed::Max,
        config.batch_size,
        &analyser,
        config.alert_threshold,
        &index,
        |n| progress.inc(n as u64),
    )
    .with_context(|| format!("replaying {}", args.input.display()))?;
    progress.finish_and_clear();
    tracing::info!(
        indexed = applied.posts,
        alerts = applied.alerts,
        not_scored = applied.not_scored,
        rejected,
        model = analyser.model_id(),
        seconds = started.elapsed().as_secs_f32(),
        "replayed {} into {}",
        args.input.display(),
        config.index_dir().display()
    );
    if args.no_serve {
        return Ok(());
    }
    super::demo_access(config)?;
    super::serve_index(config, index, false)
}

/// Resolves once `flag` is set (or its sender is gone).
async fn once_set(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

/// Runs the pipeline over the brokers `brokers` until Ctrl-C or SIGTERM.
fn over_kafka(config: &Config, args: &Args, brokers: &str, items: Vec<Item>) -> Result<()> {
    let analyser = analyser(config, ScorerChoice::Model)?;
    let index = PostIndex::open(&config.index_dir())?;
    let bus = config.bus(brokers);
    let runtime = tokio::runtime::Runtime::new()?;
    let api = if args.no_serve {
        None
    } else {
        super::demo_access(config)?;
        // The access log's signed heads also go to Kafka, a second place besides the heads
        // file (`vigie audit heads` reads them back for `vigie audit verify --heads`).
        runtime.block_on(bus.ensure_topics(&[topics::AUDIT_HEADS], 1))?;
        let heads = Enqueuer::new(&bus, topics::AUDIT_HEADS)?;
        let sink: vigie_logs::access_log::HeadSink =
            std::sync::Arc::new(move |line: &str| heads.enqueue("access", line.as_bytes()));
        Some(super::app_state(config, index.clone(), Some(sink))?)
    };
    let metrics = Metrics::new();
    let analyse = AnalyserConfig {
        bus: bus.clone(),
        group: "vigie-analyse".into(),
        input: topics::RAW.into(),
        output: topics::SCORED.into(),
        deadletter: topics::DEADLETTER.into(),
        partitions: topics::DEFAULT_PARTITIONS,
        batch: config.batch_size.max(1),
        linger: std::time::Duration::from_millis(200),
        max_text_bytes: config.max_text_bytes,
        max_envelope_bytes: config.max_envelope_bytes,
        queue: args.queue,
        metrics: metrics.stage("analyse"),
    };
    let indexer = IndexerConfig {
        bus: bus.clone(),
        topic: topics::SCORED.into(),
        deadletter: topics::DEADLETTER.into(),
        batch: 500,
        linger: std::time::Duration::from_millis(200),
        metrics: metrics.stage("index"),
        // Like `vigie run`: no retention (the replayed demo posts may be older).
        retention: None,
        incidents: config.incident_config(),
    };
    runtime.block_on(async {
        bus.ensure_topics(&topics::PIPELINE, topics::DEFAULT_PARTITIONS)
            .await?;
        metrics::start(config.metrics.as_deref(), metrics.clone()).await?;
        // Each stage stops once the one before it has: signal -> publish, analyse -> index -> API.
        let (signalled, signal) = watch::channel(false);
        let (analysed, analyse_done) = watch::channel(false);
        let (indexed, index_done) = watch::channel(false);
        let index_stopped = index_done.clone();
        tokio::spawn(async move {
            crate::shutdown::signal().await;
            let _ = signalled.send(true);
        });
        let publisher = Publisher::new(&bus, topics::RAW)?;
        let input = args.input.display().to_string();
        let publishing = tokio::spawn(publish(publisher, items, once_set(signal.clone()), input));
        let index_task = {
            let index = index.clone();
            tokio::spawn(async move {
                let done =
                    vigie_pipeline::run_indexer(&indexer, &index, once_set(analyse_done)).await;
                let _ = indexed.send(true);
                done
            })
        };
        let server = match api {
            Some(state) => {
                let listener = super::listen(config).await?;
                tracing::info!("serving the API on http://{}", listener.local_addr()?);
                super::start_alerts(config, &state)?;
                Some(tokio::spawn(vigie_api::serve(
                    listener,
                    state,
                    once_set(index_done),
                )))
            }
            None => None,
        };
        // The model runs on this thread (see `vigie_pipeline::analyser`). It stops on the signal, or
        // when the indexer stopped on its own (an error, returned below).
        let stop = once_set(signal);
        let index_failed = once_set(index_stopped);
        let stop = async move {
            tokio::select! {
                _ = stop => {}
                _ = index_failed => {}
            }
        };
        let scored = vigie_pipeline::run_analyser(&analyse, &analyser, stop).await;
        let _ = analysed.send(true);
        publishing.abort();
        let indexed = index_task.await?;
        if let Some(server) = server {
            server.await?.context("API server")?;
        }
        tracing::info!(scored = scored?, indexed = indexed?, "stopped");
        Ok(())
    })
}

/// Publishes `items` to the raw topic, a few hundred at a time, until done or `stop`.
async fn publish(
    publisher: Publisher,
    items: Vec<Item>,
    stop: impl Future<Output = ()>,
    input: String,
) {
    tokio::pin!(stop);
    let mut sent = 0u64;
    for chunk in items.chunks(256) {
        tokio::select! {
            _ = stop.as_mut() => return,
            published = vigie_pipeline::publish::publish_batch(&publisher, chunk) => match published {
                Ok(p) => sent += p.posts,
                Err(e) => tracing::warn!("publishing posts of {input}: {e}"),
            }
        }
    }
    tracing::info!(posts = sent, "published {input} to {}", topics::RAW);
}
