//! Reading a batch from a topic, as both stages do.

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
) -> (Vec<Delivery>, bool) {
    let mut batch = Vec::new();
    let deadline = tokio::time::sleep(linger);
    tokio::pin!(deadline);
    while batch.len() < max {
        tokio::select! {
            _ = shutdown.as_mut() => return (batch, true),
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
    (batch, false)
}
