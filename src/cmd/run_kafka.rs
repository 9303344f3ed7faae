//! `vigie run --brokers B`: every stage in one process, over Kafka.
//!
//! The stream (`--input`, the sample by default) is published to `vigie.posts.raw`; an analyse
//! worker scores it into `vigie.posts.scored`; the indexer writes it into the index; the API
//! serves that same index (one [`PostIndex`], whose searchers see each commit of the indexer).
//! The stages are the ones `vigie analyse` and `vigie index` run, with the same guarantees
//! (at-least-once, checkpoint in the index commit, dead letters, bounded memory), and their
//! metrics on `--metrics ADDR`.
//!
//! ## Stopping
//! Ctrl-C or SIGTERM stops the stages in the order the posts flow: publishing stops, the analyse
//! worker finishes and commits the batches it holds, then the indexer commits what it read,
//! then the API finishes the requests in flight and signs its access log's checkpoint; the
//! process exits 0. Starting again publishes the stream again: the posts keep their Vigie ids,
//! so the index's upsert keeps one document each.

use crate::config::Config;
use crate::stages::{self, metrics::Metrics};
use crate::RunArgs;
use anyhow::{Context, Result};
use std::future::Future;
use tokio::sync::watch;
use vigie_index::PostIndex;
use vigie_ingest::Pseudonymiser;
use vigie_record::bus::{Enqueuer, Publisher, AUDIT_HEADS_TOPIC};

/// Topic of raw posts.
const RAW: &str = "vigie.posts.raw";
/// Topic of scored posts.
const SCORED: &str = "vigie.posts.scored";
/// Topic of dead letters.
const DEAD: &str = "vigie.deadletter";
/// Partitions of the topics, when this command creates them.
const PARTITIONS: i32 = 3;

/// Resolves once `flag` is set (or its sender is gone).
async fn once_set(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

/// Runs the pipeline over the brokers `brokers` until Ctrl-C or SIGTERM.
pub fn run(config: &Config, args: &RunArgs, brokers: &str) -> Result<()> {
    let analyser = crate::analyser(config)?;
    let pseudonymiser: Pseudonymiser = config.pseudonymiser()?;
    let items = vigie_ingest::replay::read_jsonl(&args.input, &pseudonymiser)
        .with_context(|| format!("reading {}", args.input.display()))?;
    let mut envelopes = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Ok(e) => envelopes.push(e),
            Err(e) => tracing::warn!("skipped: {e}"),
        }
    }
    let index = PostIndex::open(&config.index_dir())?;
    let bus = config.bus(brokers);
    let runtime = tokio::runtime::Runtime::new()?;
    let api = if args.no_serve {
        None
    } else {
        crate::cmd::demo_access(config)?;
        // The access log's signed heads also go to Kafka, a second place besides the heads
        // file (`vigie audit heads` reads them back for `vigie audit verify --heads`).
        runtime.block_on(bus.ensure_topics(&[AUDIT_HEADS_TOPIC], 1))?;
        let heads = Enqueuer::new(&bus, AUDIT_HEADS_TOPIC)?;
        let sink: vigie_api::access_log::HeadSink =
            std::sync::Arc::new(move |line: &str| heads.enqueue("access", line.as_bytes()));
        Some(crate::cmd::app_state(config, index.clone(), Some(sink))?)
    };
    let metrics = Metrics::new();
    let analyse = stages::AnalyserConfig {
        bus: bus.clone(),
        group: "vigie-analyse".into(),
        input: RAW.into(),
        output: SCORED.into(),
        deadletter: DEAD.into(),
        partitions: PARTITIONS,
        batch: config.batch_size.max(1),
        linger: std::time::Duration::from_millis(200),
        max_text_bytes: config.max_text_bytes,
        max_envelope_bytes: config.max_envelope_bytes,
        queue: args.queue,
        metrics: metrics.stage("analyse"),
    };
    let indexer = stages::IndexerConfig {
        bus: bus.clone(),
        topic: SCORED.into(),
        deadletter: DEAD.into(),
        batch: 500,
        linger: std::time::Duration::from_millis(200),
        metrics: metrics.stage("index"),
        // Like `vigie run`: no retention (the replayed demo posts may be older).
        retention: None,
    };
    runtime.block_on(async {
        bus.ensure_topics(&[RAW, SCORED, DEAD], PARTITIONS).await?;
        stages::metrics::start(config.metrics.as_deref(), metrics.clone()).await?;
        // Each stage stops once the one before it has: signal -> publish, analyse -> index -> API.
        let (signalled, signal) = watch::channel(false);
        let (analysed, analyse_done) = watch::channel(false);
        let (indexed, index_done) = watch::channel(false);
        let index_stopped = index_done.clone();
        tokio::spawn(async move {
            crate::shutdown_signal().await;
            let _ = signalled.send(true);
        });
        let publisher = Publisher::new(&bus, RAW)?;
        let input = args.input.display().to_string();
        let publishing = tokio::spawn(publish(
            publisher,
            envelopes,
            once_set(signal.clone()),
            input,
        ));
        let index_task = {
            let index = index.clone();
            tokio::spawn(async move {
                let done = stages::run_indexer(&indexer, &index, once_set(analyse_done)).await;
                let _ = indexed.send(true);
                done
            })
        };
        let server = match api {
            Some(state) => {
                let listener = tokio::net::TcpListener::bind(&config.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", config.listen))?;
                let addr = listener.local_addr()?;
                // On stdout, for scripts and tests that wait for the server.
                println!("listening on http://{addr}");
                tracing::info!("serving the API on http://{addr}");
                Some(tokio::spawn(vigie_api::serve(
                    listener,
                    state,
                    once_set(index_done),
                )))
            }
            None => None,
        };
        // The model runs on this thread (see `stages::analyser`). It stops on the signal, or
        // when the indexer stopped on its own (an error, returned below).
        let stop = once_set(signal);
        let index_failed = once_set(index_stopped);
        let stop = async move {
            tokio::select! {
                _ = stop => {}
                _ = index_failed => {}
            }
        };
        let scored = stages::run_analyser(&analyse, &analyser, stop).await;
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

/// Publishes `envelopes` to the raw topic, a few hundred at a time, until done or `stop`.
async fn publish(
    publisher: Publisher,
    envelopes: Vec<vigie_record::Envelope>,
    stop: impl Future<Output = ()>,
    input: String,
) {
    tokio::pin!(stop);
    let mut sent = 0usize;
    for chunk in envelopes.chunks(256) {
        let sends = futures_util::future::join_all(chunk.iter().map(|e| publisher.publish(e)));
        tokio::select! {
            _ = stop.as_mut() => return,
            results = sends => {
                for r in results {
                    match r {
                        Ok(_) => sent += 1,
                        Err(e) => tracing::warn!("publishing a post of {input}: {e}"),
                    }
                }
            }
        }
    }
    tracing::info!(posts = sent, "published {input} to {RAW}");
}
