//! Watch zones and standing searches: analysts are told when an incident starts or grows near a
//! place they guard.
//!
//! A [`Watch`] is a disc (`near=lat,lon,radius_km`) with, optionally, a category, words and a
//! minimum score, a purpose and an owner ([`watch`]). The [`Dispatcher`] reads the incidents the
//! index writer changed, matches them against the watches ([`matcher`]) and makes an
//! [`Alert`] for each (watch, incident) pair that matches, delivered to the watch's webhook
//! ([`webhook`]: POST JSON, HMAC-signed, retried with backoff) and to the owner's connected
//! event streams (`GET /v1/alerts/stream` in `vigie_api`).
//!
//! Guarantees:
//! - **At most once per incident per watch**, across restarts: the [`Ledger`] records each
//!   alert durably before it is delivered, and a pair with an alert is never alerted again. A
//!   webhook owed when the server stopped is resumed, with the same alert id.
//! - **Nothing leaves unlogged.** Each delivery — to a webhook, or on a stream — is an entry of
//!   the access log naming the watch, the incident and the posts shown, written before the
//!   delivery (see [`dispatch`]).
//! - **The machine tells; a person decides.** An alert is a message to a person; nothing in
//!   Vigie acts on it.

pub mod dispatch;
pub mod ledger;
pub mod matcher;
pub mod watch;
pub mod webhook;

pub use dispatch::{DispatchConfig, Dispatcher, Owners};
pub use ledger::{Alert, Ledger, LEDGER_FILE};
pub use watch::{Watch, WatchSpec, WatchStore, WATCHES_FILE};

use std::path::Path;
use std::sync::Arc;
use tokio::sync::{broadcast, watch as signal};

/// What can go wrong while alerting.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The watches file.
    #[error(transparent)]
    Watch(#[from] watch::WatchError),
    /// The ledger.
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    /// The index could not be read.
    #[error("index: {0}")]
    Index(#[from] vigie_index::IndexError),
    /// The access log refused the delivery's entry (the delivery waits).
    #[error("access log: {0}")]
    Log(#[from] vigie_logs::LogError),
    /// The cursor file is unreadable.
    #[error("alert cursor {0}")]
    Cursor(String),
    /// The webhook client could not be made.
    #[error("webhook: {0}")]
    Webhook(String),
}

/// Alerts buffered for a stream that reads slowly; past it the stream catches up from the
/// ledger.
pub const STREAM_BUFFER: usize = 1024;

/// What the dispatcher and the API share: the watches, the ledger, and the live alerts.
#[derive(Clone)]
pub struct AlertHub {
    watches: WatchStore,
    ledger: Ledger,
    live: broadcast::Sender<Arc<Alert>>,
    closed: Arc<signal::Sender<bool>>,
}

impl AlertHub {
    /// The watches and ledger of `data_dir` (`watches.jsonl`, `alerts.jsonl`).
    pub fn open(data_dir: &Path) -> Result<Self, AlertError> {
        Ok(AlertHub::new(
            WatchStore::open(&data_dir.join(WATCHES_FILE))?,
            Ledger::open(&data_dir.join(LEDGER_FILE))?,
        ))
    }

    /// A hub over these stores.
    pub fn new(watches: WatchStore, ledger: Ledger) -> Self {
        let (live, _) = broadcast::channel(STREAM_BUFFER);
        let (closed, _) = signal::channel(false);
        AlertHub {
            watches,
            ledger,
            live,
            closed: Arc::new(closed),
        }
    }

    /// The watches.
    pub fn watches(&self) -> &WatchStore {
        &self.watches
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// New alerts, as they are made.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Alert>> {
        self.live.subscribe()
    }

    /// Hands `alert` to the connected streams.
    pub fn publish(&self, alert: &Alert) {
        // No stream connected: nothing to do (the ledger keeps it for the next one).
        let _ = self.live.send(Arc::new(alert.clone()));
    }

    /// Ends every stream (the server is stopping).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves when [`Self::close`] is called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closed.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }
}
