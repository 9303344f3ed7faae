//! `vigie bench pipeline`: end-to-end posts/s of the Kafka pipeline, and where the time goes.
//!
//! Pushes a capture through a real broker: a publisher writes its posts to a raw topic while an
//! analyse worker ([`crate::stages::run_analyser`]) and an indexer
//! ([`crate::stages::run_indexer`]) run in this process, as they do in `vigie analyse` and
//! `vigie index`, on topics of their own (`vigie.bench.<run>.*`, left on the broker) and an
//! index in a temporary directory (`<data-dir>/bench/pipeline-<pid>/`, removed at the end). It
//! does so once with the classifier and once with a no-op scorer (which returns `danger` 0 for
//! every post without looking at it), or with the one `--scorer` names: the difference between
//! the two is the model's cost; what the no-op run still spends is Kafka's and the index's.
//!
//! The capture (default `fixtures/sample-stream.jsonl`; any file `vigie replay` reads) is
//! repeated up to `--n` posts, each copy with a new native id (`<id>~<copy>`) so that every post
//! makes its own document. Before the clock starts, a warm-up of [`WARM_UP`] posts goes through
//! the whole pipeline (the consumer group has joined, the model has run once). The run ends when
//! the indexer has indexed every post.
//!
//! Reported: end-to-end posts/s (posts / time from the first publish to the last post indexed)
//! and, per stage, the seconds it was busy (the stages' `vigie_stage_busy_seconds_total`):
//! `publish` (the publisher, acknowledgements awaited), `consume+decode` (the analyse worker
//! turning a batch of messages into envelopes), `score`, `produce` (publishing the scored batch,
//! acknowledgements and offset commit), `index+commit` (the indexer: decode, upsert, commit).
//! The stages overlap, so their seconds add up to more than the wall time; each stage's share
//! of the wall time says how close it is to being the bottleneck.
//!
//! Without `--brokers`, the bench starts a tansu broker (in memory, on a free loopback port)
//! from `VIGIE_TANSU` if that is set, and otherwise says that it needs a broker.

use crate::config::Config;
use crate::stages::{self, metrics::Metrics};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use vigie_analyse::{AnalyseError, Analyser, Scorer, Scores};
use vigie_index::PostIndex;
use vigie_record::bus::Publisher;
use vigie_record::{Envelope, VigieId};

/// Posts sent through the pipeline before the clock starts.
pub const WARM_UP: usize = 64;

/// Most posts a run may push.
const MAX_POSTS: usize = 1_000_000;

/// Longest the bench waits for the next post to be indexed before it gives up.
const STALL_LIMIT: Duration = Duration::from_secs(120);

/// `vigie bench pipeline` arguments.
#[derive(Args)]
pub struct PipelineArgs {
    /// Kafka bootstrap brokers, host:port[,host:port] (default: start the tansu broker of
    /// VIGIE_TANSU on a loopback port).
    #[arg(long, value_name = "BROKERS")]
    pub brokers: Option<String>,
    /// The capture to push (any file `vigie replay` reads), repeated up to --n posts.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "fixtures/sample-stream.jsonl"
    )]
    pub capture: PathBuf,
    /// Posts per run.
    #[arg(long, default_value_t = 3000)]
    pub n: usize,
    /// The scorer: model (the classifier) or noop; default both, one after the other.
    #[arg(long, value_enum)]
    pub scorer: Option<ScorerKind>,
    /// Partitions of the bench's topics.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
}

/// Which scorer a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScorerKind {
    /// The configured classifier (all-MiniLM-L6-v2 and the trained heads).
    Model,
    /// `danger` 0 for every post, without looking at it.
    Noop,
}

/// A scorer that does no work: every post gets `danger` 0.
struct NoopScorer;

impl Scorer for NoopScorer {
    fn model_id(&self) -> &str {
        "noop"
    }

    fn score(&self, texts: &[&str]) -> Result<Vec<Scores>, AnalyseError> {
        Ok(texts
            .iter()
            .map(|_| Scores::from([("danger".to_string(), 0.0)]))
            .collect())
    }
}

/// What one run measured.
struct Measured {
    scorer: String,
    posts: usize,
    wall: Duration,
    /// (stage, busy seconds), in pipeline order.
    busy: Vec<(&'static str, f64)>,
}

/// Runs the bench; `model` loads the classifier (only when a run needs it).
pub fn run(
    config: &Config,
    args: &PipelineArgs,
    model: impl FnOnce() -> Result<Box<dyn Scorer>>,
) -> Result<()> {
    anyhow::ensure!(
        (1..=MAX_POSTS).contains(&args.n),
        "--n must be between 1 and {MAX_POSTS}"
    );
    anyhow::ensure!(args.partitions >= 1, "--partitions must be at least 1");
    let posts = load_capture(config, &args.capture, args.n)?;
    let (_broker, brokers, started_here) = match &args.brokers {
        Some(b) => (None, b.clone(), false),
        None => {
            let broker = Tansu::start()?;
            let address = broker.address.clone();
            (Some(broker), address, true)
        }
    };
    let kinds = match args.scorer {
        Some(k) => vec![k],
        None => vec![ScorerKind::Model, ScorerKind::Noop],
    };
    let work = config
        .data_dir
        .join("bench")
        .join(format!("pipeline-{}", std::process::id()));
    let runtime = tokio::runtime::Runtime::new()?;
    let mut model = Some(model);
    let mut results = Vec::new();
    for kind in kinds {
        let scorer: Box<dyn Scorer> = match kind {
            ScorerKind::Noop => Box::new(NoopScorer),
            ScorerKind::Model => match model.take() {
                Some(load) => load()?,
                None => anyhow::bail!("the model scorer runs once"),
            },
        };
        let analyser = Analyser::new(scorer, config.analyser_config());
        eprintln!("bench pipeline: {} posts, scorer {kind:?}...", posts.len());
        let index_dir = work.join(format!("{kind:?}").to_lowercase());
        std::fs::create_dir_all(&index_dir)
            .with_context(|| format!("cannot create {}", index_dir.display()))?;
        let measured = runtime.block_on(one_run(
            config, args, &brokers, &posts, &analyser, &index_dir,
        ))?;
        results.push(measured);
    }
    std::fs::remove_dir_all(&work)
        .with_context(|| format!("cannot remove the bench's indexes in {}", work.display()))?;
    let how = if started_here {
        "tansu in memory, started by the bench"
    } else {
        "given with --brokers"
    };
    println!(
        "pipeline: {} posts of {} through Kafka at {brokers} ({how}), {} partitions, batch {}",
        args.n,
        args.capture.display(),
        args.partitions,
        config.batch_size.max(1)
    );
    for m in &results {
        let wall = m.wall.as_secs_f64();
        println!(
            "\nscorer {}: {:.1} posts/s end to end ({} posts in {:.2} s)",
            m.scorer,
            m.posts as f64 / wall,
            m.posts,
            wall
        );
        println!(
            "  {:<16} {:>9} {:>12} {:>8}",
            "stage", "busy s", "µs per post", "of wall"
        );
        for (stage, seconds) in &m.busy {
            println!(
                "  {:<16} {:>9.2} {:>12.0} {:>7.1}%",
                stage,
                seconds,
                seconds * 1e6 / m.posts as f64,
                100.0 * seconds / wall
            );
        }
    }
    Ok(())
}

/// The posts of `capture`, repeated with fresh native ids up to `n`.
fn load_capture(config: &Config, capture: &Path, n: usize) -> Result<Vec<Envelope>> {
    let pseudonymiser = vigie_ingest::Pseudonymiser::new(&config.pseudonym_key()?);
    let replay = vigie_ingest::replay::load(capture, None, &pseudonymiser)
        .with_context(|| format!("reading {}", capture.display()))?;
    let originals: Vec<Envelope> = replay
        .items
        .into_iter()
        .filter_map(|item| match item {
            vigie_ingest::Item::Post(e) => Some(*e),
            vigie_ingest::Item::Delete(_) => None,
        })
        .collect();
    anyhow::ensure!(!originals.is_empty(), "{} has no posts", capture.display());
    Ok((0..n)
        .map(|i| {
            let mut e = originals[i % originals.len()].clone();
            let copy = i / originals.len();
            if copy > 0 {
                e.post.native_id = format!("{}~{copy}", e.post.native_id);
                e.post.id = VigieId::derive(&e.post.source, &e.post.native_id);
            }
            e
        })
        .collect())
}

/// One run: fresh topics and index, warm-up, then `posts` through the pipeline.
async fn one_run<S: Scorer>(
    config: &Config,
    args: &PipelineArgs,
    brokers: &str,
    posts: &[Envelope],
    analyser: &Analyser<S>,
    index_dir: &Path,
) -> Result<Measured> {
    let run = format!(
        "{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    );
    let topic = |what: &str| format!("vigie.bench.{run}.{what}");
    let (raw, scored, dead) = (topic("raw"), topic("scored"), topic("deadletter"));
    let bus = config.bus(brokers);
    bus.ensure_topics(&[&raw, &scored, &dead], args.partitions)
        .await
        .with_context(|| format!("cannot reach the broker at {brokers}"))?;
    let metrics = Metrics::new();
    let (analyse_m, index_m) = (metrics.stage("analyse"), metrics.stage("index"));
    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let indexer_config = stages::IndexerConfig {
        bus: bus.clone(),
        topic: scored.clone(),
        deadletter: dead.clone(),
        batch: 500,
        linger: Duration::from_millis(200),
        metrics: index_m.clone(),
        retention: None,
    };
    let index = PostIndex::open(index_dir)?;
    let indexer = tokio::spawn({
        let shutdown = until_stopped(stopped.clone());
        async move { stages::run_indexer(&indexer_config, &index, shutdown).await }
    });
    let analyser_config = stages::AnalyserConfig {
        bus: bus.clone(),
        group: format!("vigie-bench-{run}"),
        input: raw.clone(),
        output: scored,
        deadletter: dead,
        partitions: args.partitions,
        batch: config.batch_size.max(1),
        linger: Duration::from_millis(200),
        max_text_bytes: config.max_text_bytes,
        max_envelope_bytes: config.max_envelope_bytes,
        queue: 2,
        metrics: analyse_m.clone(),
    };

    // The publisher, and the clock: warm-up, then the measured posts.
    let publisher = Arc::new(Publisher::new(&bus, raw)?);
    let driver = tokio::spawn({
        let posts = posts.to_vec();
        let index_m = index_m.clone();
        let analyse_m = analyse_m.clone();
        async move {
            let result = drive(&publisher, &posts, &index_m, &analyse_m).await;
            let _ = stop.send(true);
            result
        }
    });
    // The analyse worker on this task: its model blocks the thread it runs on.
    let analysed = stages::run_analyser(&analyser_config, analyser, until_stopped(stopped)).await;
    if let Err(e) = analysed {
        driver.abort();
        return Err(e.context("the analyse worker failed"));
    }
    let measured = driver.await??;
    indexer.await??;
    let model_id = analyser.model_id().to_string();
    Ok(Measured {
        scorer: model_id,
        ..measured
    })
}

/// Publishes the warm-up, waits for it to be indexed, then publishes `posts` and waits until
/// every one is indexed; the stages' busy time is what they spent between the two.
async fn drive(
    publisher: &Publisher,
    posts: &[Envelope],
    index_m: &stages::metrics::StageMetrics,
    analyse_m: &stages::metrics::StageMetrics,
) -> Result<Measured> {
    let warm: Vec<Envelope> = posts
        .iter()
        .take(WARM_UP)
        .map(|e| {
            let mut e = e.clone();
            e.post.native_id = format!("{}~warm-up", e.post.native_id);
            e.post.id = VigieId::derive(&e.post.source, &e.post.native_id);
            e
        })
        .collect();
    publish_all(publisher, &warm).await?;
    indexed(index_m, warm.len() as u64).await?;
    let phases = |a: &stages::metrics::StageMetrics, i: &stages::metrics::StageMetrics| {
        [
            a.busy_seconds("decode"),
            a.busy_seconds("score"),
            a.busy_seconds("produce"),
            i.busy_seconds("index"),
        ]
    };
    let before = phases(analyse_m, index_m);
    let started = Instant::now();
    let publishing = publish_all(publisher, posts);
    let (published, done) = tokio::join!(
        async {
            let r = publishing.await;
            (r, started.elapsed())
        },
        indexed(index_m, (warm.len() + posts.len()) as u64)
    );
    let (published, publish_time) = published;
    published?;
    done?;
    let wall = started.elapsed();
    let after = phases(analyse_m, index_m);
    let busy = |k: usize| after[k] - before[k];
    Ok(Measured {
        scorer: String::new(),
        posts: posts.len(),
        wall,
        busy: vec![
            ("publish", publish_time.as_secs_f64()),
            ("consume+decode", busy(0)),
            ("score", busy(1)),
            ("produce", busy(2)),
            ("index+commit", busy(3)),
        ],
    })
}

/// Publishes `posts` (at most a few thousand acknowledgements awaited at once).
async fn publish_all(publisher: &Publisher, posts: &[Envelope]) -> Result<()> {
    for chunk in posts.chunks(2000) {
        let sends = chunk.iter().map(|e| publisher.publish(e));
        for sent in futures_util::future::join_all(sends).await {
            sent?;
        }
    }
    Ok(())
}

/// Waits until the indexer has indexed `n` posts; fails when nothing is indexed for
/// [`STALL_LIMIT`] (a stage failed, or the broker is gone).
async fn indexed(index_m: &stages::metrics::StageMetrics, n: u64) -> Result<()> {
    let mut last = (index_m.messages_out.get(), Instant::now());
    let mut shown = Instant::now();
    while last.0 < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = index_m.messages_out.get();
        if now != last.0 {
            last = (now, Instant::now());
        }
        if shown.elapsed() >= Duration::from_secs(10) {
            eprintln!("  {now} of {n} indexed");
            shown = Instant::now();
        }
        anyhow::ensure!(
            last.1.elapsed() < STALL_LIMIT,
            "stalled: {} of {n} posts indexed, none for {STALL_LIMIT:?}",
            last.0
        );
    }
    Ok(())
}

/// A tansu broker on a loopback port, keeping its data in memory; killed when dropped.
struct Tansu {
    child: Child,
    address: String,
}

impl Tansu {
    /// Starts the broker of `VIGIE_TANSU`, or says that a broker is needed.
    fn start() -> Result<Tansu> {
        let bin = std::env::var_os("VIGIE_TANSU").map(PathBuf::from).context(
            "this bench needs a Kafka broker: pass --brokers HOST:PORT, or set VIGIE_TANSU to \
             a tansu binary (`scripts/setup.sh --broker` installs one in \
             ~/.cache/vigie/tansu/bin/tansu)",
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let broker = Tansu {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&broker.address).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} did not listen on {} within 30 s",
                bin.display(),
                broker.address
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(broker)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
