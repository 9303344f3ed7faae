//! The analyse worker: scores raw envelopes from Kafka and publishes them scored.
//!
//! Analyse workers share the partitions of `vigie.posts.raw` as one consumer group, so N of them
//! split the load and a survivor takes over the partitions of one that dies. A worker scores a
//! batch, publishes it to `vigie.posts.scored` (idempotent producer, `acks=all`) and commits its
//! input offsets only once every output is acknowledged: delivery is at-least-once, and a post
//! scored twice keeps its Vigie id, so the indexer's upsert collapses the copies.
//!
//! ## Backpressure and the memory bound
//! A worker is three tasks joined by bounded queues of `queue` batches each:
//!
//! ```text
//! consumer --[queue batches]--> model --[queue batches]--> producer
//! (read a batch, decode,        (scores on this thread,     (publishes, awaits every ack,
//!  dead-letter the poison)       block_in_place)              commits the batch's offsets)
//! ```
//!
//! When the model is slower than the broker, the queues fill and the consumer waits on a full
//! queue instead of reading: librdkafka's prefetch queue then fills to its own bound and it
//! stops fetching. So the worker holds at most `(2 * queue + 3) * batch` messages
//! ([`AnalyserConfig::in_flight_bound`]: one batch being read, one being scored, one being
//! published, and the two queues), plus librdkafka's queues, bounded by `vigie_record::bus`
//! (about 2 x 8 MiB for the consumer, 16 MiB per producer, two producers). With the defaults
//! (`queue` 2, `batch` 32), that is 224 messages of at most `max_envelope_bytes` (256 KiB) each:
//! at most 56 MiB of posts, about 104 MiB with librdkafka's, whatever the backlog on the broker;
//! the model's own memory (weights, activations of one batch) comes on top and does not grow
//! either. Offsets are committed in the order batches were read, and only once every output
//! of the batch is acknowledged: the pipeline keeps the at-least-once guarantee. When the
//! worker is told to stop, the batches not yet scored are let go uncommitted: they come after
//! every batch committed, so they are read again on restart and no message is skipped.
//!
//! When a rebalance takes partitions away, the batches in flight are still published and
//! committed, not dropped. Dropping them would lose messages: a batch can mix messages read
//! before and after the new assignment, and librdkafka does not read again what it has already
//! handed out under the current assignment, so a later commit would pass over them. Keeping
//! them is safe: commits go in the order batches were read, so a commit for a partition that
//! another worker now owns names only messages this worker has published; at worst the new
//! owner publishes them again (the same Vigie ids, which the indexer's upsert collapses).
//!
//! ## Deletions
//! A deletion (`{"tombstone": …}`) is not scored: it is published to the scored topic as it
//! came, keyed by the deleted post's Vigie id, with the coordinates where it entered Kafka, in
//! its place among the batch's posts. A malformed one is dead-lettered like a malformed post.
//!
//! ## Size limits
//! A raw message larger than `max_envelope_bytes` is not even parsed, and a post whose text is
//! longer than `max_text_bytes` is not scored: both go to the dead-letter topic with a reason
//! that names the size and the limit, and the posts around them go on. One huge post can thus
//! neither stall the model nor blow up a batch's memory.

use crate::collect::collect;
use crate::deadletter::dead_letter;
use crate::error::Result;
use crate::metrics::StageMetrics;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use vigie_record::bus::{BusConfig, Delivery, Publisher, Subscriber};
use vigie_record::{Deletion, Envelope, KafkaCoords, Record};

/// Settings of the analyse worker.
#[derive(Debug, Clone)]
pub struct AnalyserConfig {
    /// The brokers.
    pub bus: BusConfig,
    /// Consumer group shared by the workers.
    pub group: String,
    /// Topic of raw envelopes.
    pub input: String,
    /// Topic of scored envelopes.
    pub output: String,
    /// Topic of dead letters.
    pub deadletter: String,
    /// Partitions of the topics when this worker creates them.
    pub partitions: i32,
    /// Most messages per batch.
    pub batch: usize,
    /// Longest wait for a batch to fill.
    pub linger: Duration,
    /// Most bytes of a post's text; a longer post is dead-lettered.
    pub max_text_bytes: usize,
    /// Most bytes of a raw message; a larger one is dead-lettered unparsed.
    pub max_envelope_bytes: usize,
    /// Batches each queue between consumer, model and producer holds (at least 1).
    pub queue: usize,
    /// Where the worker counts what it does (`stage="analyse"`).
    pub metrics: StageMetrics,
}

impl AnalyserConfig {
    /// The most messages the worker holds at once: `(2 * queue + 3) * batch`.
    pub fn in_flight_bound(&self) -> usize {
        (2 * self.queue.max(1) + 3) * self.batch.max(1)
    }
}

/// A batch on its way from the consumer through the model to the producer.
struct Batch {
    /// Messages read, posts and dead letters: what committing the batch moves past.
    messages: usize,
    /// The last message read of each partition.
    last: Vec<KafkaCoords>,
    /// The posts to score and publish.
    envelopes: Vec<Envelope>,
    /// Deletions to pass on unscored, each after the first `n` posts of `envelopes`.
    deletions: Vec<(usize, Deletion)>,
    /// When its last message was read.
    read_at: Instant,
}

impl Batch {
    /// The output messages (key, value), posts and deletions, in the order they were read.
    fn outputs(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::with_capacity(self.envelopes.len() + self.deletions.len());
        let mut deletions = self.deletions.iter().peekable();
        for (n, e) in self.envelopes.iter().enumerate() {
            while let Some((_, d)) = deletions.next_if(|(at, _)| *at == n) {
                out.push((d.tombstone.id.to_string(), d.to_json()));
            }
            out.push((e.post.id.to_string(), e.to_json()));
        }
        out.extend(deletions.map(|(_, d)| (d.tombstone.id.to_string(), d.to_json())));
        out
    }
}

/// Issue #5: a deletion (`{"tombstone": …}`, see `vigie_record::Deletion`) is passed on
/// unscored, keyed by the same Vigie id, with where it entered Kafka; `None` when `d` is not
/// one, an error when it is a malformed or oversized one.
fn decode_deletion(d: &Delivery, max_bytes: usize) -> Option<Result<Deletion, String>> {
    if !Record::is_deletion(&d.payload) {
        return None;
    }
    if d.payload.len() > max_bytes {
        return Some(Err(format!(
            "message too large: {} bytes, over the limit of {max_bytes} bytes \
             (max_envelope_bytes)",
            d.payload.len()
        )));
    }
    Some(match Record::from_json(&d.payload) {
        Ok(Record::Delete(deletion)) => {
            let mut deletion = *deletion;
            deletion.kafka = Some(d.coords.clone());
            Ok(deletion)
        }
        Ok(Record::Post(_)) => Err("a post where a deletion was expected".into()),
        Err(e) => Err(e.to_string()),
    })
}

/// The envelope in `d`, or why it cannot be scored: over a size limit, or not an envelope.
fn decode(
    d: &Delivery,
    max_envelope_bytes: usize,
    max_text_bytes: usize,
) -> Result<Envelope, String> {
    if d.payload.len() > max_envelope_bytes {
        return Err(format!(
            "message too large: {} bytes, over the limit of {max_envelope_bytes} bytes \
             (max_envelope_bytes)",
            d.payload.len()
        ));
    }
    let mut e = Envelope::from_json(&d.payload).map_err(|e| e.to_string())?;
    if e.post.text.len() > max_text_bytes {
        return Err(format!(
            "post text too long: {} bytes, over the limit of {max_text_bytes} bytes \
             (max_text_bytes)",
            e.post.text.len()
        ));
    }
    e.kafka = Some(d.coords.clone());
    Ok(e)
}

/// Runs an analyse worker until `shutdown` resolves; returns the number of posts scored.
pub async fn run_analyser<S: vigie_analyse::Scorer>(
    config: &AnalyserConfig,
    analyser: &vigie_analyse::Analyser<S>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<u64> {
    config
        .bus
        .ensure_topics(
            &[&config.input, &config.output, &config.deadletter],
            config.partitions,
        )
        .await?;
    let subscriber = Arc::new(Subscriber::new(
        &config.bus,
        &config.group,
        &[&config.input],
    )?);
    let output = Publisher::new(&config.bus, &config.output)?;
    let dead = Publisher::new(&config.bus, &config.deadletter)?;
    config.metrics.set_bound(config.in_flight_bound());
    let (to_model, mut from_consumer) = mpsc::channel::<Batch>(config.queue.max(1));
    let (to_producer, from_model) = mpsc::channel::<Batch>(config.queue.max(1));
    let (stop, stopped) = watch::channel(false);
    let consumer = tokio::spawn(consume(
        config.clone(),
        subscriber.clone(),
        dead,
        to_model,
        stopped,
    ));
    let producer = tokio::spawn(produce(
        subscriber.clone(),
        output,
        from_model,
        config.metrics.clone(),
    ));
    let lag = config.metrics.watch_lag(subscriber.clone());
    tracing::info!(group = %config.group, input = %config.input, bound = config.in_flight_bound(), "analyse worker started");
    // The model, on this thread: it takes the consumer's batches and hands them on scored.
    tokio::pin!(shutdown);
    let scoring: Result<()> = async {
        loop {
            tokio::select! {
                // Stop: what is being scored goes on to the producer; what waits is let go.
                _ = shutdown.as_mut() => return Ok(()),
                next = from_consumer.recv() => {
                    // None: the consumer is done (stopped, or failed: its error comes below).
                    let Some(mut batch) = next else { return Ok(()) };
                    if !batch.envelopes.is_empty() {
                        let scoring = Instant::now();
                        tokio::task::block_in_place(|| analyser.analyse(&mut batch.envelopes))?;
                        config.metrics.busy("score", scoring);
                    }
                    if to_producer.send(batch).await.is_err() {
                        return Ok(()); // The producer failed: its error comes below.
                    }
                }
            }
        }
    }
    .await;
    // However the model stopped: the consumer stops reading, the producer drains what was
    // scored, and the batches not scored are let go uncommitted, to be read again: they come
    // after every batch committed, so no message is skipped.
    let _ = stop.send(true);
    from_consumer.close();
    while let Ok(batch) = from_consumer.try_recv() {
        config.metrics.released(batch.messages);
    }
    drop((from_consumer, to_producer));
    let consumed = consumer.await?;
    let produced = producer.await?;
    drop(lag);
    scoring?;
    consumed?;
    let scored = produced?;
    tracing::info!(scored, "analyse worker stopped");
    Ok(scored)
}

/// The consumer task: reads batches, dead-letters what cannot be scored, queues the rest for
/// the model (waiting while the queue is full), until `stop` is set.
async fn consume(
    config: AnalyserConfig,
    subscriber: Arc<Subscriber>,
    dead: Publisher,
    to_model: mpsc::Sender<Batch>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let shutdown = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    tokio::pin!(shutdown);
    loop {
        let (messages, stopping) =
            collect(&subscriber, config.batch, config.linger, &mut shutdown).await;
        if !messages.is_empty() {
            config.metrics.received(messages.len());
            let decoding = Instant::now();
            let mut envelopes = Vec::with_capacity(messages.len());
            let mut deletions = Vec::new();
            let mut last = BTreeMap::new();
            for d in &messages {
                let decoded = match decode_deletion(d, config.max_envelope_bytes) {
                    Some(deletion) => deletion.map(|del| deletions.push((envelopes.len(), del))),
                    None => decode(d, config.max_envelope_bytes, config.max_text_bytes)
                        .map(|e| envelopes.push(e)),
                };
                match decoded {
                    Ok(()) => {}
                    Err(reason) => {
                        dead_letter(&dead, d, &reason).await?;
                        config.metrics.dead_letters.inc();
                    }
                }
                last.insert(
                    (d.coords.topic.clone(), d.coords.partition),
                    d.coords.clone(),
                );
            }
            let batch = Batch {
                messages: messages.len(),
                last: last.into_values().collect(),
                envelopes,
                deletions,
                read_at: Instant::now(),
            };
            drop(messages);
            config.metrics.busy("decode", decoding);
            if to_model.send(batch).await.is_err() {
                return Ok(()); // The model stopped.
            }
        }
        if stopping {
            return Ok(());
        }
    }
}

/// The producer task: publishes each scored batch and, once every output is acknowledged,
/// commits the batch's input offsets; returns the number of posts published.
async fn produce(
    subscriber: Arc<Subscriber>,
    output: Publisher,
    mut from_model: mpsc::Receiver<Batch>,
    metrics: StageMetrics,
) -> Result<u64> {
    let mut scored = 0u64;
    while let Some(batch) = from_model.recv().await {
        let producing = Instant::now();
        // Polled in order, so queued in order: a deletion follows its post in the partition.
        let outputs = batch.outputs();
        let sends = outputs.iter().map(|(key, value)| output.send(key, value));
        for sent in futures_util::future::join_all(sends).await {
            sent?;
        }
        scored += batch.envelopes.len() as u64;
        metrics.messages_out.inc_by(outputs.len() as u64);
        // Every output is acknowledged: the inputs are done. Also when a rebalance has given
        // their partitions to another worker meanwhile (see the module doc). A commit refused
        // only means the messages are read again: at-least-once still holds.
        if let Err(e) = tokio::task::block_in_place(|| subscriber.commit(&batch.last)) {
            tracing::warn!(
                "committing {:?}: {e}; these messages may be read again",
                batch.last
            );
        }
        metrics.busy("produce", producing);
        metrics
            .batch_seconds
            .observe(batch.read_at.elapsed().as_secs_f64());
        metrics.committed(batch.messages);
    }
    Ok(scored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(payload: Vec<u8>) -> Delivery {
        Delivery {
            coords: vigie_record::KafkaCoords {
                topic: "vigie.posts.raw".into(),
                partition: 0,
                offset: 7,
            },
            key: None,
            payload,
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_post_within_the_limits_is_decoded_with_its_coordinates() {
        let e = vigie_record::fixtures::envelope("1", "fire downtown");
        let got = decode(&delivery(e.to_json()), 4096, 64).unwrap();
        assert_eq!(got.post, e.post);
        assert_eq!(got.kafka.unwrap().offset, 7);
    }

    #[test]
    fn oversized_messages_and_texts_are_refused_naming_size_and_limit() {
        let json = vigie_record::fixtures::envelope("1", &"x".repeat(100)).to_json();
        let reason = decode(&delivery(json.clone()), json.len() - 1, 1000).unwrap_err();
        assert!(
            reason.contains(&format!("{} bytes", json.len())),
            "{reason}"
        );
        assert!(
            reason.contains(&format!("limit of {} bytes", json.len() - 1)),
            "{reason}"
        );
        let reason = decode(&delivery(json), 1 << 20, 99).unwrap_err();
        assert!(
            reason.contains("100 bytes") && reason.contains("limit of 99 bytes"),
            "{reason}"
        );
        let reason = decode(&delivery(b"{\"post\": 1}".to_vec()), 1 << 20, 99).unwrap_err();
        assert!(reason.contains("invalid envelope"), "{reason}");
    }

    #[test]
    fn deletions_pass_unscored_in_their_place_and_malformed_ones_are_refused() {
        let tombstone = |n: &str| vigie_record::fixtures::tombstone(n, "2026-11-27T09:00:00Z");
        let d = decode_deletion(&delivery(Deletion::from(tombstone("1")).to_json()), 4096)
            .expect("a deletion")
            .unwrap();
        assert_eq!(
            d.kafka.as_ref().unwrap().offset,
            7,
            "where it entered Kafka"
        );
        let post = vigie_record::fixtures::envelope("2", "fire");
        assert!(decode_deletion(&delivery(post.to_json()), 4096).is_none());
        let bad = decode_deletion(&delivery(br#"{"tombstone": {}}"#.to_vec()), 4096).unwrap();
        assert!(bad.unwrap_err().contains("invalid tombstone"));

        // Read: deletion 1, post 2, deletion 3, post 4, deletion 5.
        let batch = Batch {
            messages: 5,
            last: Vec::new(),
            envelopes: vec![post, vigie_record::fixtures::envelope("4", "calm")],
            deletions: vec![
                (0, tombstone("1").into()),
                (1, tombstone("3").into()),
                (2, tombstone("5").into()),
            ],
            read_at: Instant::now(),
        };
        let keys: Vec<String> = batch.outputs().into_iter().map(|(k, _)| k).collect();
        let ids: Vec<String> = ["1", "2", "3", "4", "5"]
            .iter()
            .map(|n| vigie_record::VigieId::derive("mastodon", n).to_string())
            .collect();
        assert_eq!(keys, ids);
    }
}
