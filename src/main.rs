//! `vigie`: the command line that wires Vigie's stages together.
//!
//! Each subcommand is a thin layer over the crates: `vigie-ingest` reads posts,
//! `vigie-analyse` scores them, `vigie-index` stores them, `vigie-api` serves them.

mod cmd;
mod config;
mod learn;
mod pipeline;
mod report;
mod stages;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use config::{Config, Overrides};
use std::path::PathBuf;
use vigie_analyse::{Analyser, Classifier, Encoder, ModelFiles, PrototypeScorer, Scorer, Taxonomy};
use vigie_index::PostIndex;
use vigie_ingest::Pseudonymiser;

/// Vigie: an OSINT stream analyser that helps analysts notice public posts reporting danger.
///
/// It suggests; people decide. Nothing in Vigie acts on a score by itself.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Configuration file (TOML); default: ./vigie.toml if present.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory: indexes, users, keys, cursors, access log (default ./data).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay a stream through analyse and index in-process (no Kafka), then serve the API; with
    /// --brokers, run every stage in this process over Kafka.
    Run(RunArgs),
    /// Score raw posts from Kafka into the scored topic, as one worker of a consumer group.
    Analyse {
        /// Kafka bootstrap brokers, host:port[,host:port].
        #[arg(long, value_name = "BROKERS")]
        brokers: String,
        /// Consumer group shared by the workers.
        #[arg(long, default_value = "vigie-analyse")]
        group: String,
        /// Topic of raw posts.
        #[arg(long, default_value = "vigie.posts.raw")]
        input: String,
        /// Topic of scored posts.
        #[arg(long, default_value = "vigie.posts.scored")]
        output: String,
        /// Topic of messages that could not be scored.
        #[arg(long, default_value = "vigie.deadletter")]
        deadletter: String,
        /// Partitions of the topics, when this worker creates them.
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        /// Batches queued between consumer, model and producer: the worker holds at most
        /// (2 * QUEUE + 3) * batch_size messages.
        #[arg(long, default_value_t = 2)]
        queue: usize,
        /// Serve GET /metrics (Prometheus text) on ADDR, e.g. 127.0.0.1:9100.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
    },
    /// Index scored posts from Kafka; the offsets read are kept in each index commit.
    Index {
        /// Kafka bootstrap brokers, host:port[,host:port].
        #[arg(long, value_name = "BROKERS")]
        brokers: String,
        /// Index directory (default <data-dir>/index).
        #[arg(long, value_name = "DIR")]
        index: Option<PathBuf>,
        /// Topic of scored posts.
        #[arg(long, default_value = "vigie.posts.scored")]
        topic: String,
        /// Topic of messages that could not be indexed.
        #[arg(long, default_value = "vigie.deadletter")]
        deadletter: String,
        /// Most messages per index commit.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Serve GET /metrics (Prometheus text) on ADDR, e.g. 127.0.0.1:9100.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
        /// How often the indexer enforces `retention_days` (first at start), since it holds the
        /// index writer (e.g. 1h, 10m).
        #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
        retention_every: std::time::Duration,
    },
    /// Documents, offsets and last commit of an index.
    Stats {
        /// Index directory (default <data-dir>/index).
        #[arg(long, value_name = "DIR")]
        index: Option<PathBuf>,
        /// Print one JSON object: `docs`, `offsets`, `topic`, `committed_at`.
        #[arg(long)]
        json: bool,
    },
    /// Serve the analyst API over an existing index.
    Serve(ServeArgs),
    /// Print sentence embeddings of texts as JSON (to check the model).
    Embed {
        /// Texts to embed.
        #[arg(required = true)]
        texts: Vec<String>,
        /// Model directory (overrides the config).
        #[arg(long, value_name = "DIR")]
        model_dir: Option<PathBuf>,
    },
    /// Show the configuration in effect (secrets hidden).
    Config,
    /// Manage the users of the API and their roles.
    #[command(subcommand)]
    Users(cmd::users::UsersCommand),
    /// Manage the access log's signing key.
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// Check the access log or an export of it, offline.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Admin: the handle behind a pseudonym, from the identity file; logged with its purpose
    /// (in <data-dir>/reidentify-log/) before anything is shown.
    Reidentify(cmd::reidentify::ReidentifyArgs),
    /// Retention: delete the posts older than `retention_days`, each batch logged first.
    #[command(subcommand)]
    Retention(cmd::retention::RetentionCommand),
    /// Capture what a configured source yields into a JSONL file (zstd when FILE ends in .zst).
    Capture(cmd::capture::CaptureArgs),
    /// Replay a capture, a CrisisLex CSV or a labelled JSONL file into the embedded pipeline.
    Replay(cmd::replay::ReplayArgs),
    /// The public sources: their cursors, counters and coverage gaps.
    #[command(subcommand)]
    Sources(cmd::sources::SourcesCommand),
    /// Train the classifier: one calibrated head per label of the taxonomy.
    Train {
        /// Labelled JSONL files (repeat the flag for several).
        #[arg(long = "data", value_name = "FILE", required = true)]
        data: Vec<PathBuf>,
        /// The taxonomy (labels and example posts).
        #[arg(long, value_name = "FILE", default_value = "config/taxonomy.toml")]
        taxonomy: PathBuf,
        /// Where to write heads.json and model-card.json.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Measure the classifier on a labelled JSONL file.
    Eval {
        /// Labelled JSONL file.
        #[arg(long, value_name = "FILE")]
        data: PathBuf,
        /// Only this label.
        #[arg(long, value_name = "NAME")]
        label: Option<String>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write a PR curve, a score histogram, a reliability diagram and index.html.
        #[arg(long, value_name = "DIR")]
        report: Option<PathBuf>,
    },
    /// Measure speed.
    #[command(subcommand)]
    Bench(Bench),
    /// Reproducible experiments on the classifier.
    #[command(subcommand)]
    Experiment(Experiment),
}

#[derive(Subcommand)]
enum Bench {
    /// End-to-end posts/s of the Kafka pipeline (publish, analyse, index) and the time per
    /// stage, with the classifier and with a no-op scorer.
    Pipeline(cmd::bench_pipeline::PipelineArgs),
    /// Posts/s of the classifier on real tweets, with its batch size and threads.
    Classify {
        /// Number of posts.
        #[arg(long, default_value_t = 2000)]
        n: usize,
        /// Directory of labelled CrisisLex files to take the posts from.
        #[arg(long, value_name = "DIR", default_value = "fixtures/crisislex")]
        data: PathBuf,
        /// Also time the Python sentence-transformers encoder (`bench/python_encoder.py`) with
        /// this interpreter, on the same posts, batch size and threads, alternating with Vigie's
        /// encoder for `--rounds` rounds.
        #[arg(long, value_name = "PYTHON")]
        python: Option<PathBuf>,
        /// Rounds of the comparison with `--python`.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Search latency (p50, p99) and requests/s over real HTTP on 127.0.0.1, access log on and
    /// off, over a synthetic index of pre-scored posts (in <data-dir>/bench/; no model needed).
    Search {
        /// Posts in the synthetic index (at most 1,000,000).
        #[arg(long, default_value_t = 100_000)]
        docs: usize,
        /// Concurrent clients, one keep-alive connection each (at most 256).
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// How long each run (log on, log off) lasts (at most 120s).
        #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
    },
}

#[derive(Subcommand)]
enum Experiment {
    /// Leave-one-crisis-out on CrisisLexT6: Vigie against the lexicon and TF-IDF baselines.
    Loco {
        /// Directory of labelled CrisisLex files, one per crisis.
        #[arg(long, value_name = "DIR", default_value = "fixtures/crisislex")]
        data: PathBuf,
        /// The CrisisLex lexicon, one term a line.
        #[arg(
            long,
            value_name = "FILE",
            default_value = "fixtures/crisislex/CrisisLexRec.txt"
        )]
        lexicon: PathBuf,
        /// Print JSON instead of a Markdown table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Index directory (default <data-dir>/index).
    #[arg(long, value_name = "DIR")]
    index: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

#[derive(Args)]
struct RunArgs {
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
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let mut overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        ..Default::default()
    };
    match &cli.command {
        Command::Run(a) => {
            overrides.model_dir = a.model_dir.clone();
            overrides.index_dir = a.serve.index.clone();
            overrides.listen = a.serve.listen.clone();
            overrides.metrics = a.metrics.clone();
        }
        Command::Serve(a) => {
            overrides.index_dir = a.index.clone();
            overrides.listen = a.listen.clone();
        }
        Command::Embed { model_dir, .. } => overrides.model_dir = model_dir.clone(),
        Command::Users(_) | Command::Keys(_) | Command::Audit(_) => {}
        Command::Retention(_) | Command::Reidentify(_) => {}
        Command::Replay(a) => {
            overrides.model_dir = a.model_dir.clone();
            overrides.index_dir = a.index.clone();
        }
        Command::Capture(_) | Command::Sources(_) => {}
        Command::Analyse { metrics, .. } => overrides.metrics = metrics.clone(),
        Command::Index { index, metrics, .. } => {
            overrides.index_dir = index.clone();
            overrides.metrics = metrics.clone();
        }
        Command::Stats { index, .. } => overrides.index_dir = index.clone(),
        Command::Config
        | Command::Train { .. }
        | Command::Eval { .. }
        | Command::Bench(_)
        | Command::Experiment(_) => {}
    }
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    match cli.command {
        Command::Run(a) => run(&config, &a),
        Command::Serve(_) => serve(&config),
        Command::Embed { texts, .. } => {
            let encoder = Encoder::load(&ModelFiles::in_dir(config.model_dir()?)?)?;
            println!("{}", serde_json::to_string(&encoder.encode(&texts)?)?);
            Ok(())
        }
        Command::Users(c) => cmd::users::run(&config, &c),
        Command::Keys(c) => cmd::keys::run(&config, &c),
        Command::Audit(c) => cmd::audit::run(&config, &c),
        Command::Retention(c) => cmd::retention::run(&config, &c),
        Command::Reidentify(a) => cmd::reidentify::run(&config, &a),
        Command::Capture(a) => cmd::capture::run(&config, &a),
        Command::Replay(a) => cmd::replay::run(&config, &a),
        Command::Sources(c) => cmd::sources::run(&config, &c),
        Command::Config => {
            print!("{}", config.to_toml_redacted()?);
            Ok(())
        }
        Command::Train {
            data,
            taxonomy,
            out,
        } => learn::train(&config, &data, &taxonomy, &out),
        Command::Analyse {
            brokers,
            group,
            input,
            output,
            deadletter,
            partitions,
            queue,
            ..
        } => {
            let analyser = analyser(&config)?;
            let metrics = stages::metrics::Metrics::new();
            let stage = stages::AnalyserConfig {
                bus: config.bus(&brokers),
                group,
                input,
                output,
                deadletter,
                partitions,
                batch: config.batch_size.max(1),
                linger: std::time::Duration::from_millis(200),
                max_text_bytes: config.max_text_bytes,
                max_envelope_bytes: config.max_envelope_bytes,
                queue,
                metrics: metrics.stage("analyse"),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                stages::metrics::start(config.metrics.as_deref(), metrics.clone()).await?;
                stages::run_analyser(&stage, &analyser, shutdown_signal()).await
            })?;
            Ok(())
        }
        Command::Index {
            brokers,
            topic,
            deadletter,
            batch,
            retention_every,
            ..
        } => {
            let index = PostIndex::open(&config.index_dir())?;
            let metrics = stages::metrics::Metrics::new();
            let stage = stages::IndexerConfig {
                bus: config.bus(&brokers),
                topic,
                deadletter,
                batch: batch.max(1),
                linger: std::time::Duration::from_millis(200),
                metrics: metrics.stage("index"),
                // Issue #5: the indexer holds the writer, so it enforces retention itself.
                retention: (config.retention_days > 0).then(|| stages::IndexerRetention {
                    days: config.retention_days,
                    data_dir: config.data_dir.clone(),
                    heads_file: config.access_log_heads_file.clone(),
                    every: retention_every,
                    identities: config.identities_file(),
                }),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                stages::metrics::start(config.metrics.as_deref(), metrics.clone()).await?;
                stages::run_indexer(&stage, &index, shutdown_signal()).await
            })?;
            Ok(())
        }
        Command::Stats { json, .. } => {
            let stats = stages::stats(&config.index_dir())?;
            if json {
                println!("{}", serde_json::to_string(&stats)?);
            } else {
                println!("documents:   {}", stats.docs);
                println!("deletions:   {}", stats.deletions);
                println!(
                    "topic:       {}",
                    stats.topic.as_deref().unwrap_or("(none)")
                );
                for (p, o) in &stats.offsets {
                    println!("partition {p}: next offset {o}");
                }
                for g in &stats.gaps {
                    println!(
                        "coverage gap: partition {} expected offset {}, read {} ({:?}, {})",
                        g.partition, g.expected, g.got, g.kind, g.seen_at
                    );
                }
                println!(
                    "last commit: {}",
                    stats.committed_at.as_deref().unwrap_or("(no checkpoint)")
                );
            }
            Ok(())
        }
        Command::Eval {
            data,
            label,
            json,
            report,
        } => learn::eval(&config, &data, label.as_deref(), json, report.as_deref()),
        Command::Bench(Bench::Pipeline(a)) => {
            cmd::bench_pipeline::run(&config, &a, || scorer(&config))
        }
        Command::Bench(Bench::Classify {
            n,
            data,
            python,
            rounds,
        }) => learn::bench_classify(&config, n, &data, python.as_deref(), rounds),
        Command::Bench(Bench::Search {
            docs,
            clients,
            duration,
        }) => cmd::bench_search::run(&config, docs, clients, duration),
        Command::Experiment(Experiment::Loco {
            data,
            lexicon,
            json,
        }) => learn::loco(&config, &data, &lexicon, json),
    }
}

fn run(config: &Config, args: &RunArgs) -> Result<()> {
    if let Some(brokers) = &args.brokers {
        return cmd::run_kafka::run(config, args, brokers);
    }
    if config.metrics.is_some() {
        tracing::warn!("no /metrics without --brokers: the metrics are the Kafka stages'");
    }
    let started = std::time::Instant::now();
    let analyser = analyser(config)?;
    let index = PostIndex::open(&config.index_dir())?;
    let pseudonymiser: Pseudonymiser = config.pseudonymiser()?;
    let summary = pipeline::replay_into_index(
        &args.input,
        &pseudonymiser,
        &analyser,
        config.alert_threshold,
        config.batch_size,
        &index,
    )
    .with_context(|| format!("replaying {}", args.input.display()))?;
    tracing::info!(
        indexed = summary.indexed,
        alerts = summary.alerts,
        not_scored = summary.not_scored,
        rejected = summary.rejected,
        model = analyser.model_id(),
        seconds = started.elapsed().as_secs_f32(),
        "replayed {} into {}",
        args.input.display(),
        config.index_dir().display()
    );
    if args.no_serve {
        return Ok(());
    }
    cmd::demo_access(config)?;
    serve_index(config, index, false)
}

/// The analyser of `config`: its [`scorer`] with [`Config::analyser_config`].
fn analyser(config: &Config) -> Result<Analyser<Box<dyn Scorer>>> {
    Ok(Analyser::new(scorer(config)?, config.analyser_config()))
}

/// The trained classifier of `config.heads`, or the prototype scorer when none is there.
fn scorer(config: &Config) -> Result<Box<dyn Scorer>> {
    let encoder = learn::encoder(config)?;
    if config.heads.join("heads.json").is_file() {
        let classifier = Classifier::load(encoder, &config.heads)
            .with_context(|| format!("loading the heads in {}", config.heads.display()))?;
        return Ok(Box::new(classifier));
    }
    tracing::warn!(
        "no trained heads in {}: scoring with the untrained prototype scorer",
        config.heads.display()
    );
    let taxonomy = Taxonomy::load(&config.taxonomy)?;
    Ok(Box::new(PrototypeScorer::new(encoder, &taxonomy)?))
}

fn serve(config: &Config) -> Result<()> {
    let dir = config.index_dir();
    anyhow::ensure!(
        dir.join("meta.json").is_file(),
        "no index in {} (run `vigie run` first, or pass --index)",
        dir.display()
    );
    serve_index(config, PostIndex::open(&dir)?, true)
}

/// Serves `index`; with `retention`, also enforces `retention_days` every hour (`vigie serve`;
/// not `vigie run`, whose replayed demo posts may be older than the period).
fn serve_index(config: &Config, index: PostIndex, retention: bool) -> Result<()> {
    let state = cmd::app_state(config, index, None)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        // On stdout, for scripts and tests that wait for the server.
        println!("listening on http://{addr}");
        tracing::info!(
            docs = state.index.num_docs(),
            "serving the API on http://{addr}"
        );
        if retention {
            tokio::spawn(cmd::retention::schedule(
                config.clone(),
                state.index.clone(),
            ));
        }
        vigie_api::serve(listener, state, shutdown_signal())
            .await
            .context("API server")
    })
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM: the server then finishes the requests in flight.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!("no SIGTERM handler ({e}); stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down");
}
