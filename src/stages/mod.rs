//! The Kafka stages of the pipeline: the analyse worker (`analyser`) and the indexer
//! (`indexer`), and what they share: batching reads and dead letters.
//!
//! ## Dead letters
//! A message that is not a valid envelope (or, for the analyse worker, is over a size limit) is
//! published to `vigie.deadletter` with its original bytes (at most 512 KiB of them) as the
//! value and the reason, source coordinates, length and SHA-256 as headers, and the stage goes
//! on (`deadletter`). A dead letter is published before the commit that moves past its message,
//! so after a crash it may be published twice, never lost.

mod analyser;
mod deadletter;
mod indexer;
pub mod metrics;
#[cfg(test)]
mod tests;

pub(crate) use deadletter::dead_letter;

pub use analyser::{run_analyser, AnalyserConfig};
pub use indexer::{run_indexer, stats, IndexerConfig, IndexerRetention};

use anyhow::Result;
use std::time::Duration;
use vigie_record::bus::{Delivery, Subscriber};

/// Collects up to `max` messages, waiting at most `linger` once the first has come; the flag
/// is set when `shutdown` fired. A broker that goes away is waited out: read errors are logged
/// and reading goes on once librdkafka has reconnected.
pub(crate) async fn collect(
    subscriber: &Subscriber,
    max: usize,
    linger: Duration,
    shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Result<(Vec<Delivery>, bool)> {
    let mut batch = Vec::new();
    let deadline = tokio::time::sleep(linger);
    tokio::pin!(deadline);
    while batch.len() < max {
        tokio::select! {
            _ = shutdown.as_mut() => return Ok((batch, true)),
            _ = &mut deadline, if !batch.is_empty() => break,
            next = subscriber.next() => match next {
                Ok(d) => batch.push(d),
                Err(e) => {
                    tracing::warn!("reading from Kafka: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            },
        }
    }
    Ok((batch, false))
}
