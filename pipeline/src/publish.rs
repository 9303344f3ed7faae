//! Publishing posts and deletions to the raw topic, as `vigie replay --brokers` and
//! `vigie run --brokers` do.
//!
//! One message per item, keyed by its Vigie id (so every version of a post, and its deletion,
//! go to the same partition, in order); a deletion is the record `{"tombstone": …}` (see
//! `vigie_record::Deletion`). [`publish_batch`] returns only once the broker has acknowledged
//! every message of the batch (idempotent producer, `acks=all`): a caller that counts progress
//! after it never counts a message the broker could still lose.

use crate::error::Result;
use vigie_ingest::Item;
use vigie_record::bus::Publisher;
use vigie_record::Deletion;

/// What was published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    /// Posts acknowledged.
    pub posts: u64,
    /// Deletions acknowledged.
    pub deletions: u64,
}

/// The message of `item`: its key (the Vigie id) and value (its JSON record).
pub fn message(item: &Item) -> (String, Vec<u8>) {
    match item {
        Item::Post(e) => (e.post.id.to_string(), e.to_json()),
        Item::Delete(t) => (t.id.to_string(), Deletion::from((**t).clone()).to_json()),
    }
}

/// Publishes `items` in order and waits for every acknowledgement; the first failure is
/// returned (the messages before it may be published: a retry publishes them again, with the
/// same keys, and the index's upsert collapses them).
pub async fn publish_batch(publisher: &Publisher, items: &[Item]) -> Result<Published> {
    let messages: Vec<(String, Vec<u8>)> = items.iter().map(message).collect();
    // Polled in order, so queued in order; awaited together.
    let sends = messages
        .iter()
        .map(|(key, value)| publisher.send(key, value));
    for sent in futures_util::future::join_all(sends).await {
        sent?;
    }
    let deletions = items
        .iter()
        .filter(|i| matches!(i, Item::Delete(_)))
        .count() as u64;
    Ok(Published {
        posts: items.len() as u64 - deletions,
        deletions,
    })
}
