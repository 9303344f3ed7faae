//! `vigie bench`: the numbers that matter, measured by a command anyone can rerun.

use crate::cmd::ScorerChoice;
use crate::config::Config;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Duration;
use vigie_analyse::Taxonomy;
use vigie_pipeline::bench::{self, BenchSettings, ScorerKind};

/// `vigie bench ...`
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// End-to-end posts/s of the Kafka pipeline (publish, analyse, index) and the time per
    /// stage, with the classifier and with a no-op scorer.
    Pipeline(PipelineArgs),
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
    /// off, over a synthetic index of pre-scored posts (in <data-dir>/bench/; no model needed;
    /// see `vigie_api::bench`).
    Search {
        /// Posts in the synthetic index (at most 1,000,000).
        #[arg(long, default_value_t = 100_000)]
        docs: usize,
        /// Concurrent clients, one keep-alive connection each (at most 256).
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// How long each run (log on, log off) lasts (at most 120s).
        #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
    /// Labelled crises replayed in their original order through the embedded pipeline:
    /// delay to the first alert and to the main incident, incidents made, share of the
    /// dangerous posts in the main incident, false situations per day (see
    /// `vigie_pipeline::detection`).
    Detection {
        /// Labelled JSONL files, one crisis each.
        #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
        data: Vec<PathBuf>,
        /// Print JSON lines instead of a Markdown table.
        #[arg(long)]
        json: bool,
        /// Leave the word similarity out of the incident rule (places and time only).
        #[arg(long)]
        no_words: bool,
        /// The rule's word similarity bar (default: the rule's).
        #[arg(long, value_name = "S")]
        min_similarity: Option<f64>,
        /// The rule's window between an incident's posts, in hours (default: the rule's); an
        /// incident then closes after twice this without a post.
        #[arg(long, value_name = "H")]
        window_hours: Option<i64>,
        /// How words are compared: `profile` (the rule's: the share of the incident's posts
        /// that use each word) or `jaccard` (of the word sets, as MinHash estimates).
        #[arg(long, value_parser = ["profile", "jaccard"], default_value = "profile")]
        similarity: String,
    },
}

/// `vigie bench pipeline` arguments (see [`vigie_pipeline::bench`]).
#[derive(clap::Args)]
pub struct PipelineArgs {
    /// Kafka bootstrap brokers, host:port[,host:port] (default: start the tansu broker of
    /// VIGIE_TANSU on a loopback port).
    #[arg(long, value_name = "BROKERS")]
    brokers: Option<String>,
    /// The capture to push (any file `vigie replay` reads), repeated up to --n posts.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "fixtures/sample-stream.jsonl"
    )]
    capture: PathBuf,
    /// Posts per run.
    #[arg(long, default_value_t = 3000)]
    n: usize,
    /// The scorer: model (the classifier) or noop; default both, one after the other.
    #[arg(long, value_enum)]
    scorer: Option<ScorerChoice>,
    /// Partitions of the bench's topics.
    #[arg(long, default_value_t = 3)]
    partitions: i32,
}

impl super::Cmd for BenchCommand {
    fn run(&self, config: &Config) -> Result<()> {
        match self {
            BenchCommand::Pipeline(a) => pipeline(config, a),
            BenchCommand::Classify {
                n,
                data,
                python,
                rounds,
            } => {
                let bench = vigie_analyse::experiment::bench::classify(
                    &config.experiment_settings()?,
                    *n,
                    data,
                    python.as_deref(),
                    *rounds,
                )?;
                print!("{}", bench.text());
                Ok(())
            }
            BenchCommand::Search {
                docs,
                clients,
                duration,
            } => {
                let taxonomy = Taxonomy::load(&config.taxonomy)?;
                let report = vigie_api::bench::run(&vigie_api::bench::SearchBench {
                    docs: *docs,
                    clients: *clients,
                    duration: *duration,
                    categories: taxonomy.categories.iter().map(|c| c.name.clone()).collect(),
                    work_dir: config.data_dir.join("bench"),
                })?;
                print!("{report}");
                Ok(())
            }
            BenchCommand::Detection {
                data,
                json,
                no_words,
                min_similarity,
                window_hours,
                similarity,
            } => {
                let mut incidents = config.incident_config();
                if similarity == "jaccard" {
                    incidents.text = vigie_situation::incidents::TextSimilarity::Jaccard;
                }
                if let Some(s) = min_similarity {
                    incidents.min_similarity = *s;
                }
                if let Some(h) = window_hours {
                    incidents.window = chrono::Duration::hours(*h);
                    incidents.quiet = chrono::Duration::hours(2 * *h);
                }
                if *no_words {
                    // Similarity never reaches the bar: only shared places join posts.
                    incidents.min_similarity = f64::INFINITY;
                }
                detection(config, data, *json, incidents)
            }
        }
    }
}

/// `vigie bench detection`: each file into a fresh index under `<data-dir>/bench/detection`.
fn detection(
    config: &Config,
    data: &[PathBuf],
    json: bool,
    incidents: vigie_situation::IncidentConfig,
) -> Result<()> {
    let mut settings = config.analyser_config();
    // Explanations change no score: the bench leaves them out.
    settings.explain_max_words = 0;
    let mut analyser = vigie_analyse::Analyser::new(super::scorer(config)?, settings);
    if let Some(resolver) = super::place_resolver(config)? {
        analyser = analyser.with_places(resolver);
    }
    let pseudonymiser = config.pseudonymiser()?;
    let root = config.data_dir.join("bench").join("detection");
    let mut rows = Vec::new();
    for file in data {
        let dir = root.join(file.file_stem().unwrap_or_default());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        let row = vigie_pipeline::detection::detect(
            file,
            &dir,
            &analyser,
            incidents,
            config.batch_size,
            &pseudonymiser,
        )
        .with_context(|| format!("replaying {}", file.display()))?;
        if json {
            println!("{}", serde_json::to_string(&row)?);
        }
        rows.push(row);
    }
    if !json {
        print!("{}", vigie_pipeline::detection::markdown(&rows));
    }
    Ok(())
}

/// `vigie bench pipeline`: the capture repeated to `--n` posts, through a real broker.
fn pipeline(config: &Config, args: &PipelineArgs) -> Result<()> {
    let loaded = vigie_ingest::replay::load(&args.capture, None, &config.pseudonymiser()?)
        .with_context(|| format!("reading {}", args.capture.display()))?;
    let originals: Vec<_> = loaded
        .items
        .into_iter()
        .filter_map(|item| match item {
            vigie_ingest::Item::Post(e) => Some(*e),
            vigie_ingest::Item::Delete(_) => None,
        })
        .collect();
    anyhow::ensure!(
        !originals.is_empty(),
        "{} has no posts",
        args.capture.display()
    );
    let posts = bench::repeat(&originals, args.n);
    let kinds = match args.scorer {
        Some(ScorerChoice::Model) => vec![ScorerKind::Model],
        Some(ScorerChoice::Noop) => vec![ScorerKind::Noop],
        None => vec![ScorerKind::Model, ScorerKind::Noop],
    };
    let settings = BenchSettings {
        brokers: args.brokers.clone(),
        kafka: config.kafka.clone(),
        partitions: args.partitions,
        batch: config.batch_size.max(1),
        max_text_bytes: config.max_text_bytes,
        max_envelope_bytes: config.max_envelope_bytes,
        scoring: config.analyser_config(),
        work_dir: config
            .data_dir
            .join("bench")
            .join(format!("pipeline-{}", std::process::id())),
    };
    let report = bench::run(&settings, &posts, &kinds, || {
        super::scorer(config).map_err(|e| vigie_pipeline::StageError::Bench(format!("{e:#}")))
    })?;
    let how = if report.started_broker {
        "tansu in memory, started by the bench"
    } else {
        "given with --brokers"
    };
    println!(
        "pipeline: {} posts of {} through Kafka at {} ({how}), {} partitions, batch {}",
        args.n,
        args.capture.display(),
        report.brokers,
        args.partitions,
        config.batch_size.max(1)
    );
    print!("{report}");
    Ok(())
}
