//! `vigie bench search`: search latency and throughput over real HTTP on 127.0.0.1.
//!
//! Builds a synthetic index of [`SearchBench::docs`] posts (English and French texts drawn from a fixed
//! vocabulary and filler words, one in 20 a repost; pre-set scores, times over 30 days; no
//! model needed), serves it on a loopback
//! port, and runs [`SearchBench::clients`] concurrent tokio clients, each on its own keep-alive HTTP/1.1
//! connection, sending `GET /v1/search` with a rotating set of queries, filters and orders for
//! [`SearchBench::duration`]. It does this twice: with the access log on (every request appended and fsynced
//! before its answer, as in production) and off (the same routes, tokens and roles, no log).
//! Each run is preceded by an unmeasured warm-up (a fifth of `--duration`, 1 to 5 s).
//! Reports p50 / p99 / max latency and requests per second for each, and checks that the log
//! holds one intact entry per request answered. Bounded: at most 1,000,000 docs, 256 clients,
//! 120 s per run; loopback only.

use crate::users::{self, Role, UserError};
use crate::{AppState, IndexWork, ReviewStore, UserStore};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vigie_index::{IndexError, PostIndex};
use vigie_logs::access_log::{self, AccessLog, LogError, LogOptions};
use vigie_record::{
    content_sha256, Envelope, Ingestor, Post, Provenance, ScoreState, Scoring, VigieId,
};

/// Why the bench could not run, or found the server at fault.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An argument out of its bounds.
    #[error("{0}")]
    Invalid(String),
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The synthetic index could not be built or opened.
    #[error("index: {0}")]
    Index(#[from] IndexError),
    /// The access log could not be written, or is not intact after the run.
    #[error("access log: {0}")]
    Log(#[from] LogError),
    /// The bench user could not be made.
    #[error("users: {0}")]
    Users(#[from] UserError),
    /// The reviews file could not be opened.
    #[error("reviews: {0}")]
    Reviews(#[from] crate::reviews::ReviewError),
    /// The server answered something that is not HTTP, or the log disagrees with the answers.
    #[error("{0}")]
    Server(String),
    /// A client task failed.
    #[error("client task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The result of the bench's operations.
type Result<T, E = BenchError> = std::result::Result<T, E>;

/// An I/O error's context.
fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// How the bench runs.
#[derive(Debug, Clone)]
pub struct SearchBench {
    /// Posts in the synthetic index (at most [`MAX_DOCS`]).
    pub docs: usize,
    /// Concurrent clients, one keep-alive connection each (at most [`MAX_CLIENTS`]).
    pub clients: usize,
    /// How long each run (log on, log off) lasts (at most [`MAX_DURATION`]).
    pub duration: Duration,
    /// The danger categories each synthetic post gets a score for (the taxonomy's).
    pub categories: Vec<String>,
    /// Where it works: the index there is reused when it already holds `docs` posts (else
    /// rebuilt); the users and access logs there are made afresh.
    pub work_dir: PathBuf,
}

/// What the bench measured.
#[derive(Debug)]
pub struct SearchReport {
    /// Posts in the index searched.
    pub docs: u64,
    /// Where the index is.
    pub index_dir: PathBuf,
    /// How long opening (or building) the index took.
    pub index_seconds: f64,
    /// The run with the access log on.
    pub logged: Figures,
    /// The run with it off.
    pub unlogged: Figures,
    /// Entries of the access log after the logged run (warm-up included), checked intact.
    pub log_entries: u64,
}

/// Most posts in the synthetic index.
pub const MAX_DOCS: usize = 1_000_000;
/// Most concurrent clients.
pub const MAX_CLIENTS: usize = 256;
/// Longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(120);

const EN: &[&str] = &[
    "fire",
    "smoke",
    "flood",
    "explosion",
    "crash",
    "shooting",
    "storm",
    "warehouse",
    "station",
    "bridge",
    "river",
    "road",
    "police",
    "firefighters",
    "people",
    "city",
    "near",
    "huge",
    "today",
    "morning",
    "evacuated",
    "injured",
    "traffic",
    "concert",
    "weather",
    "coffee",
    "market",
    "train",
    "school",
    "lovely",
    "sunset",
    "football",
    "match",
    "new",
    "album",
];
const FR: &[&str] = &[
    "incendie",
    "fumée",
    "inondation",
    "explosion",
    "accident",
    "fusillade",
    "orage",
    "entrepôt",
    "gare",
    "pont",
    "rivière",
    "route",
    "police",
    "pompiers",
    "gens",
    "ville",
    "près",
    "énorme",
    "aujourd'hui",
    "matin",
    "évacués",
    "blessés",
    "circulation",
    "concert",
    "météo",
    "café",
    "marché",
    "train",
    "école",
    "joli",
    "coucher",
    "soleil",
    "match",
    "nouvel",
    "album",
];

/// The query strings the clients rotate through (without `purpose`).
const QUERIES: &[&str] = &[
    "q=fire&limit=20",
    "q=incendie%20OR%20fire&limit=20&sort=score",
    "q=flood%20AND%20river&limit=20&min_score=danger:0.5",
    "q=%22huge%20explosion%22&limit=20",
    "q=pompiers&lang=fr&limit=20&sort=time",
    "q=*&min_score=danger:0.8&sort=score&limit=20",
    "q=station%20OR%20gare&category=fire&limit=20",
    "q=crash&source=rss&limit=20&sort=time",
];

/// xorshift64*: deterministic, so two runs index the same posts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Synthetic words beside the vocabulary, so that posts differ as real ones do.
const FILLER_WORDS: usize = 20_000;

/// Post `n`: 3 to 10 words of the vocabulary of its language and 6 to 17 filler words; one
/// post in 20 reposts (`RT ` + the text) a recent one, so that near-duplicate groups exist.
fn synthetic(
    n: usize,
    categories: &[String],
    rng: &mut Rng,
    t0: chrono::DateTime<chrono::Utc>,
    recent: &mut Vec<String>,
) -> Envelope {
    let french = n.is_multiple_of(3);
    let vocab = if french { FR } else { EN };
    let text = if n % 20 == 19 && !recent.is_empty() {
        format!("RT {}", recent[rng.below(recent.len())])
    } else {
        let mut words: Vec<String> = (0..3 + rng.below(8))
            .map(|_| vocab[rng.below(vocab.len())].to_string())
            .collect();
        words.extend((0..6 + rng.below(12)).map(|_| format!("w{}", rng.below(FILLER_WORDS))));
        words.join(" ")
    };
    if recent.len() == 64 {
        recent.remove(0);
    }
    recent.push(text.clone());
    let source = ["mastodon", "rss", "reddit", "bluesky"][n % 4];
    let native = format!("bench-{n}");
    let mut scores = BTreeMap::new();
    let danger = rng.unit();
    scores.insert("danger".to_string(), danger);
    for c in categories {
        scores.insert(c.clone(), rng.unit() * danger);
    }
    let created_at = t0 - chrono::Duration::seconds(rng.below(30 * 86_400) as i64);
    Envelope {
        post: Post {
            id: VigieId::derive(source, &native),
            source: source.into(),
            native_id: native,
            author: format!("ps:{:032x}", rng.next()),
            text: text.clone(),
            lang: Some(if french { "fr" } else { "en" }.into()),
            created_at,
            url: None,
            coordinates: None,
        },
        provenance: Provenance {
            fetched_at: created_at,
            fetch_url: "bench://synthetic".into(),
            http_status: None,
            ingestor: Ingestor {
                name: "bench".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            content_sha256: content_sha256(text.as_bytes()),
            matched: None,
        },
        kafka: None,
        scoring: Some(Scoring {
            model: "bench-preset-scores".into(),
            runtime: None,
            scored_at: created_at,
            state: ScoreState::Scored,
            reason: None,
            scores,
            explanation: Vec::new(),
        }),
        places: None,
    }
}

/// Builds the synthetic index of `docs` posts in `dir`.
fn build_index(dir: &Path, docs: usize, categories: &[String]) -> Result<PostIndex> {
    let index = PostIndex::open(dir)?;
    let mut writer = index.writer()?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let t0 = chrono::Utc::now();
    let mut recent = Vec::new();
    for n in 0..docs {
        writer.upsert(&synthetic(n, categories, &mut rng, t0, &mut recent))?;
    }
    writer.commit(Some("vigie bench search"))?;
    writer.wait_merges()?;
    Ok(index)
}

/// Sends `GET path` on a keep-alive connection and reads the whole answer; returns its status.
async fn get(stream: &mut TcpStream, path: &str, token: &str, buf: &mut Vec<u8>) -> Result<u16> {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io("sending a request"))?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(io("reading an answer"))?;
        if n == 0 {
            return Err(BenchError::Server("server closed the connection".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let bad = |what: &str| BenchError::Server(format!("the answer's {what} is not HTTP"));
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("head"))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| bad("content-length"))?;
    while buf.len() < head_end + length {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(io("reading an answer"))?;
        if n == 0 {
            return Err(BenchError::Server(
                "server closed the connection mid-body".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}

/// CPU time (user and system) this process has used so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// One run's figures.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Requests answered.
    pub requests: usize,
    /// Answers other than 200.
    pub errors: usize,
    /// CPU time of the whole process (server and clients) per request.
    pub cpu_per_request: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Slowest request.
    pub max: Duration,
    /// Requests per second.
    pub rps: f64,
}

async fn hammer(
    addr: std::net::SocketAddr,
    token: &str,
    clients: usize,
    duration: Duration,
) -> Result<Figures> {
    let started = Instant::now();
    let cpu_before = cpu_time();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr)
                .await
                .map_err(io(format!("connecting to {addr}")))?;
            stream.set_nodelay(true).map_err(io("TCP_NODELAY"))?;
            let mut buf = Vec::new();
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            let mut i = c;
            while Instant::now() < deadline {
                let path = format!(
                    "/v1/search?{}&purpose=load%20test%20client%20{c}",
                    QUERIES[i % QUERIES.len()]
                );
                i += 1;
                let sent = Instant::now();
                let status = get(&mut stream, &path, &token, &mut buf).await?;
                latencies.push(sent.elapsed());
                if status != 200 {
                    errors += 1;
                }
            }
            Ok::<_, BenchError>((latencies, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (latencies, e) = t.await??;
        all.extend(latencies);
        errors += e;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    all.sort();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Figures {
        requests: all.len(),
        errors,
        cpu_per_request: cpu / all.len().max(1) as u32,
        p50: pick(0.50),
        p99: pick(0.99),
        max: all.last().copied().unwrap_or_default(),
        rps: all.len() as f64 / elapsed.as_secs_f64(),
    })
}

/// How long each run is preceded by unmeasured requests: a fifth of it, 1 to 5 s.
fn warmup(duration: Duration) -> Duration {
    (duration / 5).clamp(Duration::from_secs(1), Duration::from_secs(5))
}

impl std::fmt::Display for SearchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (label, figures) in [
            ("access log on", &self.logged),
            ("access log off", &self.unlogged),
        ] {
            writeln!(
                f,
                "{label:<16} {:>8} requests  {:>6} errors  {:>9.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  cpu {:>5.2} ms/req",
                figures.requests,
                figures.errors,
                figures.rps,
                figures.p50.as_secs_f64() * 1e3,
                figures.p99.as_secs_f64() * 1e3,
                figures.max.as_secs_f64() * 1e3,
                figures.cpu_per_request.as_secs_f64() * 1e3
            )?;
        }
        writeln!(
            f,
            "                 access log: {} entries, intact, one per request answered \
             (warm-up included)",
            self.log_entries
        )
    }
}

/// Runs the benchmark (see the module doc); prints its progress on stdout.
pub fn run(bench: &SearchBench) -> Result<SearchReport> {
    let SearchBench {
        docs,
        clients,
        duration,
        ..
    } = *bench;
    if !(1..=MAX_DOCS).contains(&docs) {
        return Err(BenchError::Invalid(format!(
            "--docs must be 1..={MAX_DOCS}"
        )));
    }
    if !(1..=MAX_CLIENTS).contains(&clients) {
        return Err(BenchError::Invalid(format!(
            "--clients must be 1..={MAX_CLIENTS}"
        )));
    }
    if duration == Duration::ZERO || duration > MAX_DURATION {
        return Err(BenchError::Invalid(format!(
            "--duration must be at most {}s",
            MAX_DURATION.as_secs()
        )));
    }
    let root = &bench.work_dir;
    let index_dir = root.join("index");
    let started = Instant::now();
    // An index of another size, or of an older schema, is rebuilt.
    let index = match PostIndex::open(&index_dir) {
        Ok(existing) if existing.num_docs() == docs as u64 => existing,
        _ => {
            if index_dir.exists() {
                std::fs::remove_dir_all(&index_dir)
                    .map_err(io(format!("removing {}", index_dir.display())))?;
            }
            build_index(&index_dir, docs, &bench.categories)?
        }
    };
    let index_seconds = started.elapsed().as_secs_f64();
    println!(
        "index: {} posts in {} ({index_seconds:.1} s)",
        index.num_docs(),
        index_dir.display(),
    );
    let data = root.join("data");
    if data.exists() {
        std::fs::remove_dir_all(&data).map_err(io(format!("removing {}", data.display())))?;
    }
    std::fs::create_dir_all(&data).map_err(io(format!("creating {}", data.display())))?;
    access_log::init_keys(&data)?;
    let users_file = data.join(users::USERS_FILE);
    let token = users::add_user(&users_file, "bench", Role::Analyst)?;
    let runtime = tokio::runtime::Runtime::new().map_err(io("starting a runtime"))?;
    runtime.block_on(async {
        println!(
            "{clients} clients, {} s per run after {} s of warm-up, GET /v1/search over \
             http://127.0.0.1, keep-alive",
            duration.as_secs_f64(),
            warmup(duration).as_secs_f64()
        );
        let mut runs = Vec::new();
        let mut log_entries = 0;
        for logged in [true, false] {
            let log = AccessLog::open(
                &data.join(format!("access-log-{logged}")),
                access_log::load_signing_key(&data)?,
                LogOptions::default(),
            )?;
            let state = AppState {
                index: index.clone(),
                log: log.clone(),
                users: UserStore::open(&users_file)?,
                reviews: ReviewStore::open(&data.join("reviews.jsonl"))?,
                alert_threshold: 0.5,
                work: IndexWork::default(),
                alerts: crate::watches::Alerts::open(&data)
                    .map_err(|e| BenchError::Invalid(format!("alerts: {e}")))?,
                console: Default::default(),
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(io("listening on 127.0.0.1"))?;
            let addr = listener
                .local_addr()
                .map_err(io("listening on 127.0.0.1"))?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let shutdown = async {
                let _ = stopped.await;
            };
            let server = if logged {
                tokio::spawn(crate::serve(listener, state, shutdown))
            } else {
                tokio::spawn(crate::serve_without_access_log(listener, state, shutdown))
            };
            // Warm the page cache, the searchers' caches and the connections first: the figures
            // are of a server in its steady state, whichever run comes first.
            let warm = hammer(addr, &token, clients, warmup(duration)).await?;
            let figures = hammer(addr, &token, clients, duration).await?;
            let _ = stop.send(());
            server.await?.map_err(io("the server"))?;
            if logged {
                let bytes = std::fs::read(log.path())
                    .map_err(io(format!("reading {}", log.path().display())))?;
                let report = access_log::verify_log(&bytes, &log.verifying_key()).map_err(|t| {
                    BenchError::Server(format!("the access log is not intact: {t}"))
                })?;
                let answered = warm.requests + figures.requests;
                if report.last != answered as u64 {
                    return Err(BenchError::Server(format!(
                        "the access log holds {} entries for {answered} requests answered",
                        report.last
                    )));
                }
                log_entries = report.last;
            }
            runs.push(figures);
        }
        let unlogged = runs
            .pop()
            .ok_or_else(|| BenchError::Server("no run".into()))?;
        let logged = runs
            .pop()
            .ok_or_else(|| BenchError::Server("no run".into()))?;
        Ok(SearchReport {
            docs: index.num_docs(),
            index_dir: index_dir.clone(),
            index_seconds,
            logged,
            unlogged,
            log_entries,
        })
    })
}
