//! Test set-up shared by the integration tests: the model directory and a real Kafka broker.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
