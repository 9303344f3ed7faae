//! Test set-up shared by the integration tests: the model directory and a real Kafka broker.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The pipeline's topics: raw posts, scored posts, dead letters.
pub const PIPELINE_TOPICS: [&str; 3] =
    ["vigie.posts.raw", "vigie.posts.scored", "vigie.deadletter"];

/// A tansu broker on 127.0.0.1, killed when dropped.
pub struct Broker {
    child: Child,
    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub address: String,
    port: u16,
    storage: String,
    workdir: PathBuf,
}

impl Broker {
    /// The broker binary: `VIGIE_TANSU` (set by the Makefile), else the set-up's cache.
    fn binary() -> PathBuf {
        std::env::var_os("VIGIE_TANSU")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var("HOME").expect("HOME");
                Path::new(&home).join(".cache/vigie/tansu/bin/tansu")
            })
    }

    /// The bus to this broker, one message per record batch: tansu 0.6 serves a fetch only
    /// from a batch's first offset, so a consumer restarted at an offset inside a batch would
    /// wait there forever.
    pub fn bus(&self) -> BusConfig {
        BusConfig::new(&self.address).set("batch.num.messages", "1")
    }

    /// [`Broker::bus`], with the pipeline's topics created, `partitions` each.
    pub async fn pipeline_bus(&self, partitions: i32) -> BusConfig {
        let bus = self.bus();
        bus.ensure_topics(&PIPELINE_TOPICS, partitions)
            .await
            .unwrap();
        bus
    }

    /// Starts a broker that keeps its data in memory.
    pub fn start() -> Broker {
        Self::start_with("memory://tansu/", std::env::temp_dir())
    }

    /// Starts a broker with `storage` (e.g. `sqlite://tansu.db`, relative to `workdir`).
    pub fn start_with(storage: &str, workdir: PathBuf) -> Broker {
        Self::spawn(free_port(), storage.to_string(), workdir)
    }

    fn spawn(port: u16, storage: String, workdir: PathBuf) -> Broker {
        let bin = Self::binary();
        assert!(
            bin.is_file(),
            "no tansu broker at {}: run `make test` (scripts/setup.sh --broker) first",
            bin.display()
        );
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", &storage])
            .current_dir(&workdir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let address = format!("127.0.0.1:{port}");
        let broker = Broker {
            child,
            address,
            port,
            storage,
            workdir,
        };
        broker.wait_ready();
        broker
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&self.address).is_err() {
            assert!(
                Instant::now() < deadline,
                "broker did not listen within 30s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the broker, waits `down`, and starts it again on the same port and storage.
    pub fn restart(mut self, down: Duration) -> Broker {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        let (port, storage, workdir) = (self.port, self.storage.clone(), self.workdir.clone());
        std::mem::forget(self);
        Self::spawn(port, storage, workdir)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `vigie` binary in the repository root with `--data-dir data` and the model
/// directory; panics with its stderr unless it succeeds; returns its stdout.
pub fn vigie(data: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vigie"))
        .current_dir(root())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("VIGIE_MODEL_DIR", model_dir())
        .output()
        .expect("run vigie");
    assert!(
        out.status.success(),
        "vigie {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes the access-log signing key of `data` (if missing) and an analyst `name`; returns its
/// token.
pub fn analyst(data: &Path, name: &str) -> String {
    if !data.join("access-log.pub").is_file() {
        vigie(data, &["keys", "init"]);
    }
    vigie(data, &["users", "add", name, "--role", "analyst"])
        .trim()
        .to_string()
}

/// A `vigie serve` process (retention off), killed when dropped.
pub struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Serve {
    /// Serves the index in `index` with the users, keys and access log of `data`.
    pub fn start(data: &Path, index: &Path) -> Serve {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_vigie"))
            .arg("--data-dir")
            .arg(data)
            .arg("serve")
            .arg("--index")
            .arg(index)
            .args(["--listen", "127.0.0.1:0"])
            // Fixture posts have fixed dates: retention must not remove them as time passes.
            .env("VIGIE_RETENTION_DAYS", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vigie serve");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let mut serve = Serve {
            child,
            base: String::new(),
        };
        serve.base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("vigie serve did not start within 60 s");
        serve
    }

    /// SIGTERM; waits for a clean exit (the access log's final checkpoint signed).
    pub fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for vigie serve");
        assert!(status.success(), "vigie serve: {status:?}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// Starts `vigie --data-dir DATA ARGS...` (a pipeline stage). Its log (stderr) goes to
/// `DATA/logs/<stage>-<pid>-<n>.log`, or under `$VIGIE_TEST_LOGS` when that is set so that it
/// outlives the test; [`stage_log_tails`] gives the ends of a test's logs for a failure message.
pub fn stage(data: &Path, args: &[&str]) -> Stage {
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::var_os("VIGIE_TEST_LOGS").map_or_else(|| data.join("logs"), PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join(format!("{}-{}-{n}.log", args[0], std::process::id()));
    let file = std::fs::File::create(&log).unwrap();
    STAGE_LOGS.lock().unwrap().push((data.to_path_buf(), log));
    Command::new(env!("CARGO_BIN_EXE_vigie"))
        .current_dir(root())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("VIGIE_MODEL_DIR", model_dir())
        .stderr(file)
        .spawn()
        .map(|child| Stage(Some(child)))
        .expect("start a stage")
}

/// A running stage. Dropped (a failing test unwinding, say), it is killed: no test leaves a
/// process behind.
pub struct Stage(Option<Child>);

impl Stage {
    /// Kills the stage with SIGKILL, as a crash would, and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.kill();
    }
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

/// Stops a stage with SIGTERM and asserts that it exits with status 0 within 60 s.
pub fn terminate(mut stage: Stage) {
    let Some(mut child) = stage.0.take() else {
        panic!("the stage was killed");
    };
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stage did not stop within 60s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
