//! `vigie bench pipeline`: end-to-end posts/s of the Kafka pipeline, and where the time goes.
//!
//! Pushes a capture through a real broker: a publisher writes its posts to a raw topic while an
//! analyse worker ([`crate::run_analyser`]) and an indexer
//! ([`crate::run_indexer`]) run in this process, as they do in `vigie analyse` and
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
//! Without `--brokers`, the bench starts a tansu broker (in memory, on a free loopback port,
//! [`vigie_record::broker::LocalBroker`]) from `VIGIE_TANSU` or the set-up's cache, and
//! otherwise says that it needs a broker.

use crate::error::{Result, StageError};
use crate::metrics::{Metrics, StageMetrics};
use crate::{run_analyser, run_indexer, AnalyserConfig, IndexerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use vigie_analyse::{Analyser, AnalyserConfig as ScoringConfig, NoopScorer, Scorer};
use vigie_index::PostIndex;
use vigie_record::broker::LocalBroker;
use vigie_record::bus::{BusConfig, Publisher};
use vigie_record::{Envelope, VigieId};

/// Posts sent through the pipeline before the clock starts.
pub const WARM_UP: usize = 64;

/// Most posts a run may push.
const MAX_POSTS: usize = 1_000_000;

/// Longest the bench waits for the next post to be indexed before it gives up.
const STALL_LIMIT: Duration = Duration::from_secs(120);

/// How a bench runs.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    /// Kafka bootstrap brokers; `None`: start a [`LocalBroker`].
    pub brokers: Option<String>,
    /// The Kafka properties of the deployment (`[kafka]` of the configuration).
    pub kafka: std::collections::BTreeMap<String, String>,
    /// Partitions of the bench's topics.
    pub partitions: i32,
    /// The analyse worker's batch size.
    pub batch: usize,
    /// The analyse worker's limits: text and message bytes.
    pub max_text_bytes: usize,
    /// See `max_text_bytes`.
    pub max_envelope_bytes: usize,
    /// How posts are scored around the scorer (threshold, batch size).
    pub scoring: ScoringConfig,
    /// Where the runs' indexes go (removed at the end).
    pub work_dir: PathBuf,
}

impl BenchSettings {
    fn bus(&self, brokers: &str) -> BusConfig {
        BusConfig::new(brokers).set_all(&self.kafka)
    }
}

/// Which scorer a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScorerKind {
    /// The configured classifier.
    Model,
    /// `danger` 0 for every post, without looking at it ([`NoopScorer`]).
    Noop,
}

/// What the bench measured: one [`Measured`] per scorer, and where.
#[derive(Debug)]
pub struct Report {
    /// The brokers used.
    pub brokers: String,
    /// Whether the bench started them itself.
    pub started_broker: bool,
    /// One run per scorer, in the order run.
    pub runs: Vec<Measured>,
}

/// What one run measured.
#[derive(Debug)]
pub struct Measured {
    /// The scorer's model id.
    pub scorer: String,
    /// Posts pushed.
    pub posts: usize,
    /// From the first publish to the last post indexed.
    pub wall: Duration,
    /// (stage, busy seconds), in pipeline order.
    pub busy: Vec<(&'static str, f64)>,
}

impl Measured {
    /// End-to-end posts per second.
    pub fn posts_per_second(&self) -> f64 {
        self.posts as f64 / self.wall.as_secs_f64()
    }
}

/// Pushes `posts` through the pipeline once per scorer of `kinds`; `model` loads the
/// classifier (only when a run needs it).
pub fn run(
    settings: &BenchSettings,
    posts: &[Envelope],
    kinds: &[ScorerKind],
    model: impl FnOnce() -> Result<Box<dyn Scorer>>,
) -> Result<Report> {
    if !(1..=MAX_POSTS).contains(&posts.len()) {
        return Err(StageError::Bench(format!(
            "the bench pushes between 1 and {MAX_POSTS} posts"
        )));
    }
    if settings.partitions < 1 {
        return Err(StageError::Bench("--partitions must be at least 1".into()));
    }
    let (_broker, brokers, started_broker) = match &settings.brokers {
        Some(b) => (None, b.clone(), false),
        None => {
            let broker = LocalBroker::start()
                .map_err(|e| StageError::Bench(format!("{e}: or pass --brokers")))?;
            let address = broker.address().to_string();
            (Some(broker), address, true)
        }
    };
    let runtime = tokio::runtime::Runtime::new().map_err(|source| StageError::Io {
        what: "cannot start a runtime".into(),
        source,
    })?;
    let mut model = Some(model);
    let mut runs = Vec::new();
    for &kind in kinds {
        let scorer: Box<dyn Scorer> = match kind {
            ScorerKind::Noop => Box::new(NoopScorer),
            ScorerKind::Model => match model.take() {
                Some(load) => load()?,
                None => return Err(StageError::Bench("the model scorer runs once".into())),
            },
        };
        let analyser = Analyser::new(scorer, settings.scoring.clone());
        eprintln!("bench pipeline: {} posts, scorer {kind:?}...", posts.len());
        let index_dir = settings.work_dir.join(format!("{kind:?}").to_lowercase());
        std::fs::create_dir_all(&index_dir).map_err(|source| StageError::Io {
            what: format!("cannot create {}", index_dir.display()),
            source,
        })?;
        runs.push(runtime.block_on(one_run(settings, &brokers, posts, &analyser, &index_dir))?);
    }
    std::fs::remove_dir_all(&settings.work_dir).map_err(|source| StageError::Io {
        what: format!(
            "cannot remove the bench's indexes in {}",
            settings.work_dir.display()
        ),
        source,
    })?;
    Ok(Report {
        brokers,
        started_broker,
        runs,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for m in &self.runs {
            let wall = m.wall.as_secs_f64();
            writeln!(
                f,
                "\nscorer {}: {:.1} posts/s end to end ({} posts in {:.2} s)",
                m.scorer,
                m.posts_per_second(),
                m.posts,
                wall
            )?;
            writeln!(
                f,
                "  {:<16} {:>9} {:>12} {:>8}",
                "stage", "busy s", "µs per post", "of wall"
            )?;
            for (stage, seconds) in &m.busy {
                writeln!(
                    f,
                    "  {:<16} {:>9.2} {:>12.0} {:>7.1}%",
                    stage,
                    seconds,
                    seconds * 1e6 / m.posts as f64,
                    100.0 * seconds / wall
                )?;
            }
        }
        Ok(())
    }
}

/// `originals` repeated with fresh native ids (`<id>~<copy>`) up to `n` posts, so that every
/// post makes its own document.
pub fn repeat(originals: &[Envelope], n: usize) -> Vec<Envelope> {
    if originals.is_empty() {
        return Vec::new();
    }
    (0..n)
        .map(|i| {
            let mut e = originals[i % originals.len()].clone();
            let copy = i / originals.len();
            if copy > 0 {
                e.post.native_id = format!("{}~{copy}", e.post.native_id);
                e.post.id = VigieId::derive(&e.post.source, &e.post.native_id);
            }
            e
        })
        .collect()
}

/// One run: fresh topics and index, warm-up, then `posts` through the pipeline.
async fn one_run<S: Scorer>(
    settings: &BenchSettings,
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
    let bus = settings.bus(brokers);
    bus.ensure_topics(&[&raw, &scored, &dead], settings.partitions)
        .await?;
    let metrics = Metrics::new();
    let (analyse_m, index_m) = (metrics.stage("analyse"), metrics.stage("index"));
    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let indexer_config = IndexerConfig {
        bus: bus.clone(),
        topic: scored.clone(),
        deadletter: dead.clone(),
        batch: 500,
        linger: Duration::from_millis(200),
        metrics: index_m.clone(),
        retention: None,
        incidents: Default::default(),
    };
    let index = PostIndex::open(index_dir)?;
    let indexer = tokio::spawn({
        let shutdown = until_stopped(stopped.clone());
        async move { run_indexer(&indexer_config, &index, shutdown).await }
    });
    let analyser_config = AnalyserConfig {
        bus: bus.clone(),
        group: format!("vigie-bench-{run}"),
        input: raw.clone(),
        output: scored,
        deadletter: dead,
        partitions: settings.partitions,
        batch: settings.batch.max(1),
        linger: Duration::from_millis(200),
        max_text_bytes: settings.max_text_bytes,
        max_envelope_bytes: settings.max_envelope_bytes,
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
    let analysed = run_analyser(&analyser_config, analyser, until_stopped(stopped)).await;
    if let Err(e) = analysed {
        driver.abort();
        return Err(e);
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
    index_m: &StageMetrics,
    analyse_m: &StageMetrics,
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
    let phases = |a: &StageMetrics, i: &StageMetrics| {
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
async fn indexed(index_m: &StageMetrics, n: u64) -> Result<()> {
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
        if last.1.elapsed() >= STALL_LIMIT {
            return Err(StageError::Bench(format!(
                "stalled: {} of {n} posts indexed, none for {STALL_LIMIT:?}",
                last.0
            )));
        }
    }
    Ok(())
}
