//! `vigie`: the command line that wires Vigie's stages together.
//!
//! Each subcommand is a thin layer over the crates: `vigie-ingest` reads posts,
//! `vigie-analyse` scores them, `vigie-index` stores them, `vigie-api` serves them.

mod config;
mod pipeline;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use config::{Config, Overrides};
use std::path::PathBuf;
use vigie_analyse::{Analyser, AnalyserConfig, Encoder, ModelFiles, PrototypeScorer, Taxonomy};
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
    /// Replay a stream through analyse and index in-process (no Kafka), then serve the API.
    Run(RunArgs),
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
    /// Index and stop, without serving.
    #[arg(long)]
    no_serve: bool,
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
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
        }
        Command::Serve(a) => {
            overrides.index_dir = a.index.clone();
            overrides.listen = a.listen.clone();
        }
        Command::Embed { model_dir, .. } => overrides.model_dir = model_dir.clone(),
        Command::Config => {}
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
        Command::Config => {
            print!("{}", config.to_toml_redacted()?);
            Ok(())
        }
    }
}

fn run(config: &Config, args: &RunArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let files = ModelFiles::in_dir(config.model_dir()?)?;
    let taxonomy = Taxonomy::load(&config.taxonomy)?;
    let scorer = PrototypeScorer::new(Encoder::load(&files)?, &taxonomy)?;
    let analyser = Analyser::new(
        scorer,
        AnalyserConfig {
            alert_threshold: config.alert_threshold,
            batch_size: config.batch_size,
            ..Default::default()
        },
    );
    let index = PostIndex::open(&config.index_dir())?;
    let pseudonymiser = Pseudonymiser::new(&config.pseudonym_key()?);
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
    serve_index(config, index)
}

fn serve(config: &Config) -> Result<()> {
    let dir = config.index_dir();
    anyhow::ensure!(
        dir.join("meta.json").is_file(),
        "no index in {} (run `vigie run` first, or pass --index)",
        dir.display()
    );
    serve_index(config, PostIndex::open(&dir)?)
}

fn serve_index(config: &Config, index: PostIndex) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        // On stdout, for scripts and tests that wait for the server.
        println!("listening on http://{addr}");
        tracing::info!(docs = index.num_docs(), "serving the API on http://{addr}");
        vigie_api::serve(listener, vigie_api::AppState { index }, shutdown_signal())
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
