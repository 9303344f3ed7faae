//! Envelopes over Kafka.
//!
//! ## Wire format
//! One Kafka message per post: the key is the post's Vigie id, the value the envelope's JSON
//! ([`Envelope::to_json`]). Keying by id sends every version of a post to the same partition,
//! so their order is kept.
//!
//! ## Offsets
//! A consumer's position in a partition is an offset: the number of the next message it will
//! read. [`Subscriber`] never commits on its own (`enable.auto.commit=false`): the stage that
//! reads a message calls [`Subscriber::commit`] with that message's [`KafkaCoords`] only once
//! its output is safe (acknowledged by the broker, or committed to the index). The committed
//! offset is then `offset + 1`. A crash before the commit makes the group read the message
//! again: delivery is at-least-once, and the stable Vigie id lets the next stage collapse the
//! duplicate. Offsets are always committed explicitly, never as librdkafka "stored offsets".
//!
//! ## Producing
//! [`Publisher`] is idempotent (`enable.idempotence=true`, `acks=all`): a retry after a lost
//! acknowledgement does not write the message twice, and [`Publisher::send`] returns only once
//! every in-sync replica has the message.
//!
//! ## Bounded memory
//! librdkafka prefetches and buffers on its own; both are bounded here so that a process's
//! memory does not grow with the backlog on the broker. A consumer stops fetching once
//! [`CONSUMER_QUEUE_KBYTES`] KiB (or [`CONSUMER_QUEUE_MESSAGES`] messages per partition) wait
//! unread in its queue, and a fetch response is at most as large (`fetch.max.bytes` follows
//! `queued.max.messages.kbytes`, and is never below `message.max.bytes`, 1 MB by default): so
//! a consumer holds at most about twice [`CONSUMER_QUEUE_KBYTES`]. A producer holds at most
//! [`PRODUCER_QUEUE_KBYTES`] KiB (or [`PRODUCER_QUEUE_MESSAGES`] messages) not yet
//! acknowledged; past that, [`Publisher::send`] waits for room. Each is a default that
//! [`BusConfig::set`] overrides.

use crate::{Envelope, KafkaCoords};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, FutureProducer, FutureRecord, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Default `queued.max.messages.kbytes` of a consumer: its prefetch queue, in KiB.
pub const CONSUMER_QUEUE_KBYTES: u32 = 8 * 1024;
/// Default `queued.min.messages` of a consumer: messages it prefetches per partition at most.
pub const CONSUMER_QUEUE_MESSAGES: u32 = 1000;
/// Default `queue.buffering.max.kbytes` of a producer: unacknowledged messages, in KiB.
pub const PRODUCER_QUEUE_KBYTES: u32 = 16 * 1024;
/// Default `queue.buffering.max.messages` of a producer.
pub const PRODUCER_QUEUE_MESSAGES: u32 = 10_000;

/// What can go wrong talking to Kafka.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The client could not be created or the broker refused an operation.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A topic could not be created.
    #[error("kafka: cannot create topic {topic}: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

impl BusError {
    /// Whether the client or the broker refused a message for its size (`message.max.bytes`).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            BusError::Kafka(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge
            ))
        )
    }
}

/// Connection settings shared by producers, consumers and the admin client.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `host:port[,host:port...]` of the bootstrap brokers.
    pub brokers: String,
    /// Client id reported to the broker.
    pub client_id: String,
    /// Further librdkafka properties, applied to every client made from this config.
    pub extra: Vec<(String, String)>,
}

impl BusConfig {
    /// Settings for `brokers` with client id `vigie`.
    pub fn new(brokers: impl Into<String>) -> Self {
        BusConfig {
            brokers: brokers.into(),
            client_id: "vigie".into(),
            extra: Vec::new(),
        }
    }

    /// Adds a librdkafka property (e.g. `batch.num.messages`) for every client made from this.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }

    /// Adds every librdkafka property of `properties` (a deployment's `[kafka]` table), as
    /// [`BusConfig::set`] does one.
    pub fn set_all<'a>(
        self,
        properties: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Self {
        properties
            .into_iter()
            .fold(self, |bus, (key, value)| bus.set(key, value))
    }

    fn client(&self) -> ClientConfig {
        self.client_with(&[])
    }

    /// A client config with `defaults`, which the extra properties override.
    fn client_with(&self, defaults: &[(&str, String)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id);
        for (k, v) in defaults {
            c.set(*k, v);
        }
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }

    /// A consumer's config: the bounded prefetch queue (see the module doc), then the extras.
    fn consumer_client(&self) -> ClientConfig {
        self.client_with(&[
            (
                "queued.max.messages.kbytes",
                CONSUMER_QUEUE_KBYTES.to_string(),
            ),
            ("queued.min.messages", CONSUMER_QUEUE_MESSAGES.to_string()),
        ])
    }

    /// Creates `topics` with `partitions` partitions each, unless they exist already.
    pub async fn ensure_topics(&self, topics: &[&str], partitions: i32) -> Result<(), BusError> {
        let admin: AdminClient<DefaultClientContext> = self.client().create()?;
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in admin.create_topics(&new, &opts).await? {
            match result {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(BusError::CreateTopic { topic, code }),
            }
        }
        Ok(())
    }
}

/// Sends small notices to one topic without ever waiting (the signed heads of the logs, sent
/// from the log writer's thread): a send that cannot be queued, or a delivery that fails, is
/// logged, never returned.
pub struct Enqueuer {
    producer: ThreadedProducer<DeliveryLog>,
    topic: String,
}

/// Logs the deliveries of an [`Enqueuer`] that failed.
pub struct DeliveryLog;

impl ClientContext for DeliveryLog {}

impl ProducerContext for DeliveryLog {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            tracing::warn!(topic = m.topic(), "a message could not be delivered: {e}");
        }
    }
}

impl Enqueuer {
    /// A producer to `topic` whose sends never block.
    pub fn new(config: &BusConfig, topic: impl Into<String>) -> Result<Self, BusError> {
        let producer = config
            .client()
            .set("acks", "all")
            .set("message.timeout.ms", "60000")
            .create_with_context(DeliveryLog)?;
        Ok(Enqueuer {
            producer,
            topic: topic.into(),
        })
    }

    /// Queues `payload` under `key`; delivered in the background.
    pub fn enqueue(&self, key: &str, payload: &[u8]) {
        let record = BaseRecord::to(&self.topic).key(key).payload(payload);
        if let Err((e, _)) = self.producer.send(record) {
            tracing::warn!(topic = %self.topic, "a message could not be queued: {e}");
        }
    }
}

/// Writes envelopes (or raw bytes) to one topic.
pub struct Publisher {
    producer: FutureProducer,
    topic: String,
    acknowledged: AtomicU64,
}

impl Publisher {
    /// An idempotent producer to `topic`.
    pub fn new(config: &BusConfig, topic: impl Into<String>) -> Result<Self, BusError> {
        let producer = config
            .client_with(&[
                (
                    "queue.buffering.max.kbytes",
                    PRODUCER_QUEUE_KBYTES.to_string(),
                ),
                (
                    "queue.buffering.max.messages",
                    PRODUCER_QUEUE_MESSAGES.to_string(),
                ),
            ])
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "60000")
            .create()?;
        Ok(Publisher {
            producer,
            topic: topic.into(),
            acknowledged: AtomicU64::new(0),
        })
    }

    /// How many messages the broker has acknowledged since this publisher was made.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Publishes `envelope`, keyed by its Vigie id; returns where it landed once acknowledged.
    pub async fn publish(&self, envelope: &Envelope) -> Result<KafkaCoords, BusError> {
        self.send(envelope.post.id.as_str(), &envelope.to_json())
            .await
    }

    /// Publishes `payload` under `key`; returns where it landed once acknowledged.
    pub async fn send(&self, key: &str, payload: &[u8]) -> Result<KafkaCoords, BusError> {
        self.send_with_headers(key, payload, &[]).await
    }

    /// Publishes `payload` under `key` with string `headers`; returns where it landed once
    /// acknowledged.
    pub async fn send_with_headers(
        &self,
        key: &str,
        payload: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<KafkaCoords, BusError> {
        let mut owned = rdkafka::message::OwnedHeaders::new();
        for (k, v) in headers {
            owned = owned.insert(rdkafka::message::Header {
                key: k,
                value: Some(*v),
            });
        }
        let record = FutureRecord::to(&self.topic)
            .key(key)
            .payload(payload)
            .headers(owned);
        let delivery = self
            .producer
            .send(record, Duration::from_secs(60))
            .await
            .map_err(|(e, _)| e)?;
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
        Ok(KafkaCoords {
            topic: self.topic.clone(),
            partition: delivery.partition,
            offset: delivery.offset,
        })
    }
}

/// One message read from Kafka.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Where the message sits.
    pub coords: KafkaCoords,
    /// The message key (a Vigie id for envelopes).
    pub key: Option<Vec<u8>>,
    /// The message value, exactly as produced.
    pub payload: Vec<u8>,
    /// The message headers whose values are UTF-8.
    pub headers: Vec<(String, String)>,
}

/// A consumer-group member that commits explicit offsets only.
pub struct Subscriber {
    consumer: StreamConsumer<GroupLog>,
    /// For [`Subscriber::assigned`]: the positions it started from; `None` for a group member.
    start: Option<std::collections::BTreeMap<i32, i64>>,
    /// For [`Subscriber::assigned`]: the positions given that the partition no longer holds.
    moved: Vec<MovedStart>,
}

/// A start position given to [`Subscriber::assigned`] that its partition no longer holds: below
/// the earliest message kept (deleted by the topic's retention) or past the end (the topic was
/// recreated). The consumer starts at the earliest message kept instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedStart {
    /// The partition.
    pub partition: i32,
    /// The position asked for.
    pub asked: i64,
    /// Where reading starts: the partition's earliest offset.
    pub start: i64,
}

/// How far a consumer is behind in one partition, as [`Subscriber::lag`] measures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Offset the next message produced to the partition will get.
    pub high_watermark: i64,
    /// Offset of the next message this consumer will hand out.
    pub position: i64,
    /// `high_watermark - position`, at least 0: messages not yet read.
    pub lag: i64,
}

/// The consumer's context: logs every change of assignment (which partitions this member
/// gained or lost, at which offsets), so that a stage's log says who read what when.
pub struct GroupLog;

impl ClientContext for GroupLog {}

impl ConsumerContext for GroupLog {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let describe = |list: &TopicPartitionList| {
            list.elements()
                .iter()
                .map(|e| format!("{}/{}", e.topic(), e.partition()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(partitions = %describe(list), "consumer group: assigned")
            }
            Rebalance::Revoke(list) => {
                tracing::info!(partitions = %describe(list), "consumer group: revoked")
            }
            Rebalance::Error(e) => tracing::warn!("consumer group: rebalance failed: {e}"),
        }
    }
}

impl Subscriber {
    /// Joins consumer group `group` and subscribes to `topics`. A group with no committed
    /// offset starts from the earliest message.
    pub fn new(config: &BusConfig, group: &str, topics: &[&str]) -> Result<Self, BusError> {
        let consumer: StreamConsumer<GroupLog> = config
            .consumer_client()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .create_with_context(GroupLog)?;
        consumer.subscribe(topics)?;
        Ok(Subscriber {
            consumer,
            start: None,
            moved: Vec::new(),
        })
    }

    /// Reads every partition of `topic` without a consumer group, each from the offset
    /// `positions` gives (the next offset to read), or from the beginning. A position the
    /// partition no longer holds starts at its earliest message, and is reported by
    /// [`Subscriber::moved_starts`]. For a stage that
    /// keeps its own positions atomically with its output (the indexer keeps them in the
    /// index commit), so the group's committed offsets play no part.
    pub fn assigned(
        config: &BusConfig,
        topic: &str,
        positions: &std::collections::BTreeMap<i32, i64>,
    ) -> Result<Self, BusError> {
        let consumer: StreamConsumer<GroupLog> = config
            .consumer_client()
            .set("group.id", "vigie-unused")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A position the topic no longer holds restarts at the earliest message kept, never
            // at the end: the stage sees the jump and reports it (librdkafka's default,
            // `latest`, would skip every message in between without a word).
            .set("auto.offset.reset", "earliest")
            .create_with_context(GroupLog)?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let mut list = TopicPartitionList::new();
        let mut start = positions.clone();
        let mut moved = Vec::new();
        for t in metadata.topics().iter().filter(|t| t.name() == topic) {
            for p in t.partitions() {
                let offset = match positions.get(&p.id()) {
                    None => Offset::Beginning,
                    Some(&asked) => {
                        // Not left to the broker's out-of-range answer: some brokers (tansu)
                        // never give it, and wait past the end for ever.
                        let (low, high) =
                            consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
                        if asked < low || asked > high {
                            moved.push(MovedStart {
                                partition: p.id(),
                                asked,
                                start: low,
                            });
                            start.insert(p.id(), low);
                            Offset::Offset(low)
                        } else {
                            Offset::Offset(asked)
                        }
                    }
                };
                list.add_partition_offset(topic, p.id(), offset)?;
            }
        }
        if list.count() == 0 {
            return Err(BusError::Kafka(KafkaError::MetadataFetch(
                RDKafkaErrorCode::UnknownTopicOrPartition,
            )));
        }
        consumer.assign(&list)?;
        Ok(Subscriber {
            consumer,
            start: Some(start),
            moved,
        })
    }

    /// The start positions given to [`Subscriber::assigned`] that their partitions no longer
    /// held, and where reading starts instead.
    pub fn moved_starts(&self) -> &[MovedStart] {
        &self.moved
    }

    /// Waits for the next message.
    pub async fn next(&self) -> Result<Delivery, BusError> {
        let m = self.consumer.recv().await?;
        Ok(Delivery {
            coords: KafkaCoords {
                topic: m.topic().to_string(),
                partition: m.partition(),
                offset: m.offset(),
            },
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().unwrap_or_default().to_vec(),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .filter_map(|h| {
                            let v = std::str::from_utf8(h.value?).ok()?;
                            Some((h.key.to_string(), v.to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// The lag of every partition assigned now: high watermark minus position. A partition
    /// that has handed out no message yet counts from the position given to
    /// [`Subscriber::assigned`]; for a group member it is left out until its first message
    /// (asking the group's committed offsets every time upsets tansu's group coordinator).
    /// Blocking: asks the broker for the watermarks, each call waiting at most `timeout`.
    pub fn lag(&self, timeout: Duration) -> Result<Vec<PartitionLag>, BusError> {
        let assignment = self.consumer.assignment()?;
        let positions = self.consumer.position()?;
        let offset_in = |list: Option<&TopicPartitionList>, topic: &str, partition: i32| match list?
            .find_partition(topic, partition)?
            .offset()
        {
            Offset::Offset(o) if o >= 0 => Some(o),
            _ => None,
        };
        let mut lags = Vec::with_capacity(assignment.count());
        for e in assignment.elements() {
            let (topic, partition) = (e.topic(), e.partition());
            let read = offset_in(Some(&positions), topic, partition);
            let start = self.start.as_ref().map(|s| s.get(&partition).copied());
            if read.is_none() && start.is_none() {
                continue; // A group member's partition not read from yet.
            }
            let (low, high) = self.consumer.fetch_watermarks(topic, partition, timeout)?;
            let position = read.or(start.flatten()).unwrap_or(low);
            lags.push(PartitionLag {
                topic: topic.to_string(),
                partition,
                high_watermark: high,
                position,
                lag: (high - position).max(0),
            });
        }
        Ok(lags)
    }

    /// How many partitions this consumer reads now: its share of the group's, or those given
    /// to [`Subscriber::assigned`].
    pub fn assigned_partitions(&self) -> Result<usize, BusError> {
        Ok(self.consumer.assignment()?.count())
    }

    /// Commits, synchronously, that every message up to and including `coords` is done.
    pub fn commit(&self, coords: &[KafkaCoords]) -> Result<(), BusError> {
        let mut list = TopicPartitionList::new();
        for c in coords {
            list.add_partition_offset(&c.topic, c.partition, Offset::Offset(c.offset + 1))?;
        }
        self.consumer.commit(&list, CommitMode::Sync)?;
        Ok(())
    }
}
