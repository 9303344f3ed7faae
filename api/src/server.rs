//! The accept loop: how many connections, how long a client may take, how large a request.
//!
//! ## Bounds
//! One slow or hostile client must not hold the server. [`ServeLimits`] bounds:
//! - **connections**: at most [`ServeLimits::max_connections`] are served at once; the next
//!   connection waits in the kernel's backlog until one closes (nothing is read from it, so it
//!   costs no memory of ours);
//! - **header read**: a client that opens a connection (or keeps one alive) and does not send a
//!   complete request head within [`ServeLimits::header_read_timeout`] is disconnected
//!   (slowloris);
//! - **request time**: a request whose answer is not ready within
//!   [`ServeLimits::request_timeout`] is answered 503 — inside the guard, so that answer is in
//!   the access log like any other (see [`crate::router_with`]);
//! - **sizes**: a request body over [`ServeLimits::max_body_bytes`] is answered 413, a query
//!   string over [`ServeLimits::max_query_bytes`] 414, both logged;
//! - **anonymous requests**: their entries are capped and rate-limited (see [`crate::guard`]).
//!
//! ## Shutdown
//! When the shutdown future resolves the loop stops accepting, lets every open connection finish
//! the request it is serving (closing idle keep-alive connections at once), and returns when all
//! are done or after [`ServeLimits::drain_timeout`].

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The bounds the server enforces on its clients (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct ServeLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time allowed to send a request's head (from the connection, or between requests).
    pub header_read_timeout: Duration,
    /// Time allowed to answer one request.
    pub request_timeout: Duration,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest query string (after `?`), in bytes.
    pub max_query_bytes: usize,
    /// How long shutdown waits for open requests.
    pub drain_timeout: Duration,
    /// Entries of anonymous requests (no valid token, no such endpoint) logged per second, on
    /// average; past it they are answered 429 (see [`crate::guard`]).
    pub anonymous_per_second: u32,
    /// Largest burst of such entries.
    pub anonymous_burst: u32,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
            max_query_bytes: 8 * 1024,
            drain_timeout: Duration::from_secs(30),
            anonymous_per_second: 20,
            anonymous_burst: 200,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves (see the module doc).
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    limits: &ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // HTTP/1.1 only: hyper's version detection (HTTP/2 prior knowledge) reads the first bytes
    // of a connection with no timeout, so a silent client would hold its slot forever.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watcher().watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = watched.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "shutdown: connections still open after {:?}, closing them",
            limits.drain_timeout
        );
    }
    Ok(())
}
