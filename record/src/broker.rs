//! A local Kafka-protocol broker for tests and benchmarks (feature `broker`).
//!
//! Vigie's tests and `vigie bench pipeline` talk to a real broker over the real protocol, never
//! a mock: [`LocalBroker`] starts the tansu binary that `scripts/setup.sh --broker` builds, on a
//! free loopback port, and kills it when dropped, so no test leaves a process behind.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting broker may take to listen.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a broker could not be started.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// There is no broker binary where one is looked for.
    #[error(
        "no tansu broker at {0}: run `make test` (scripts/setup.sh --broker) first, or set \
         VIGIE_TANSU to a tansu binary"
    )]
    Missing(PathBuf),
    /// The binary could not be run, or no port could be had.
    #[error("cannot start the broker {0}: {1}")]
    Spawn(PathBuf, std::io::Error),
    /// It did not listen in time.
    #[error("the broker {0} did not listen on {1} within {START_TIMEOUT:?}")]
    NotListening(PathBuf, String),
}

/// A tansu broker on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct LocalBroker {
    child: Child,
    address: String,
    port: u16,
    storage: String,
    workdir: PathBuf,
}

impl LocalBroker {
    /// The broker binary: `VIGIE_TANSU` (set by the Makefile), else the set-up's cache
    /// (`~/.cache/vigie/tansu/bin/tansu`).
    pub fn binary() -> PathBuf {
        std::env::var_os("VIGIE_TANSU")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").unwrap_or_default();
                Path::new(&home).join(".cache/vigie/tansu/bin/tansu")
            })
    }

    /// Starts a broker that keeps its data in memory.
    pub fn start() -> Result<LocalBroker, BrokerError> {
        Self::start_with("memory://tansu/", std::env::temp_dir())
    }

    /// Starts a broker with `storage` (e.g. `sqlite://tansu.db`, relative to `workdir`).
    pub fn start_with(storage: &str, workdir: PathBuf) -> Result<LocalBroker, BrokerError> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| BrokerError::Spawn(Self::binary(), e))?
            .port();
        Self::spawn(port, storage.to_string(), workdir)
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Stops the broker, waits `down`, and starts it again on the same port and storage.
    pub fn restart(mut self, down: Duration) -> Result<LocalBroker, BrokerError> {
        self.stop();
        std::thread::sleep(down);
        let (port, storage, workdir) = (self.port, self.storage.clone(), self.workdir.clone());
        Self::spawn(port, storage, workdir)
    }

    fn spawn(port: u16, storage: String, workdir: PathBuf) -> Result<LocalBroker, BrokerError> {
        let bin = Self::binary();
        if !bin.is_file() {
            return Err(BrokerError::Missing(bin));
        }
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", &storage])
            .current_dir(&workdir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| BrokerError::Spawn(bin.clone(), e))?;
        let broker = LocalBroker {
            child,
            address: format!("127.0.0.1:{port}"),
            port,
            storage,
            workdir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(&broker.address).is_err() {
            if Instant::now() >= deadline {
                return Err(BrokerError::NotListening(bin, broker.address.clone()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(broker)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        self.stop();
    }
}
