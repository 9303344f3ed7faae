//! Shared pieces of the ingest tests: local servers, a fast polite client, collecting sinks.
#![allow(dead_code)]

pub mod mastodon;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigie_ingest::driver::{BoxError, Sink};
use vigie_ingest::http::{HttpClient, HttpConfig};
use vigie_ingest::{Item, Pseudonymiser};

/// The pseudonym key of the tests.
pub const KEY: &[u8] = b"test-key";

/// The pseudonymiser of the tests.
pub fn pseudonymiser() -> Pseudonymiser {
    Pseudonymiser::new(KEY)
}

/// Client settings with short waits, so retry tests take milliseconds.
pub fn fast_http() -> HttpConfig {
    HttpConfig {
        user_agent: "Vigie-test/1 (+mailto:test@example.org)".into(),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(400),
        request_timeout: Duration::from_secs(5),
        max_body_bytes: 64 * 1024,
        requests_per_minute: 60_000,
        burst: 1000,
        max_retries: 3,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
        max_wait: Duration::from_secs(3600),
    }
}

/// A client with [`fast_http`] settings.
pub fn client() -> HttpClient {
    HttpClient::new(fast_http()).expect("client")
}

/// Serves `router` on 127.0.0.1 (a free port); returns `http://127.0.0.1:PORT`.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

/// A sink that keeps what it accepts, and can be told to fail (a crash downstream).
#[derive(Clone, Default)]
pub struct Collect {
    /// Batches accepted, in order.
    pub batches: Arc<Mutex<Vec<Vec<Item>>>>,
    /// Accept this many batches, then refuse every later one.
    pub fail_after: Option<usize>,
}

impl Collect {
    /// Every item accepted, in order.
    pub fn items(&self) -> Vec<Item> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// The native ids of the posts accepted, in order.
    pub fn native_ids(&self) -> Vec<String> {
        self.items()
            .iter()
            .map(|i| match i {
                Item::Post(e) => e.post.native_id.clone(),
                Item::Delete(t) => format!("deleted:{}", t.native_id),
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Sink for Collect {
    async fn accept(&mut self, _source: &str, items: &[Item]) -> Result<(), BoxError> {
        let mut batches = self.batches.lock().unwrap();
        if self.fail_after.is_some_and(|n| batches.len() >= n) {
            return Err("downstream is down".into());
        }
        batches.push(items.to_vec());
        Ok(())
    }
}
