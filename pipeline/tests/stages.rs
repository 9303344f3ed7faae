//! The stages against a real broker (tansu, [`LocalBroker`]): the analyse worker's
//! backpressure with a scorer much slower than the broker, and dead letters too large to
//! publish.
// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::{Duration, Instant};
use vigie_analyse::{Analyser, SlowScorer};
use vigie_pipeline::deadletter::dead_letter;
use vigie_pipeline::metrics::Metrics;
use vigie_pipeline::{run_analyser, topics, AnalyserConfig};
use vigie_record::broker::LocalBroker;
use vigie_record::bus::{BusConfig, Delivery, Publisher, Subscriber};
use vigie_record::KafkaCoords;

/// The value of the series whose line starts with `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit_once(' ')?.1.parse().ok())
}

/// The analyse stage's lag summed over its partitions, if it has been measured.
fn lag(text: &str) -> Option<f64> {
    let lines: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.starts_with("vigie_stage_consumer_lag_messages{") && l.contains("stage=\"analyse\"")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse().ok())
        .collect();
    (!lines.is_empty()).then(|| lines.iter().sum())
}

/// Messages in `topic`: the sum of its partitions' high watermarks.
fn messages_in(broker: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", "vigie-test-watermarks")
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .sum()
}

/// With a scorer much slower than the broker and a backlog of thousands of posts, the messages
/// the worker holds never exceed its configured bound, every post is scored and published once,
/// and the metrics say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_model_holds_no_more_than_the_bound_while_thousands_wait() {
    const N: usize = 3000;
    const PARTITIONS: i32 = 2;
    let broker = LocalBroker::start().unwrap();
    // One message per record batch (tansu; see tests/kafka_index.rs).
    let bus = BusConfig::new(broker.address()).set("batch.num.messages", "1");
    let topics = topics::PIPELINE;
    bus.ensure_topics(&topics, PARTITIONS).await.unwrap();
    let raw = Publisher::new(&bus, topics[0]).unwrap();
    let posts: Vec<_> = (0..N)
        .map(|i| vigie_record::fixtures::envelope(&i.to_string(), &format!("post number {i}")))
        .collect();
    for chunk in posts.chunks(500) {
        for sent in futures_util::future::join_all(chunk.iter().map(|e| raw.publish(e))).await {
            sent.unwrap();
        }
    }

    let metrics = Metrics::new();
    let config = AnalyserConfig {
        bus: bus.clone(),
        group: "vigie-analyse".into(),
        input: topics[0].into(),
        output: topics[1].into(),
        deadletter: topics[2].into(),
        partitions: PARTITIONS,
        batch: 16,
        linger: Duration::from_millis(50),
        max_text_bytes: 64 * 1024,
        max_envelope_bytes: 256 * 1024,
        queue: 2,
        metrics: metrics.stage("analyse"),
    };
    let bound = config.in_flight_bound();
    assert_eq!(bound, (2 * 2 + 3) * 16);
    // 30 ms per batch of 16: about 530 posts/s, far slower than the broker delivers.
    let analyser = Analyser::new(
        SlowScorer::new(Duration::from_millis(30)),
        vigie_analyse::AnalyserConfig {
            batch_size: 16,
            ..Default::default()
        },
    );

    // Watch the metrics while the worker runs; stop it once every post is out and the lag is 0.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(240);
            let (mut most_in_flight, mut most_lag_within_bound) = (0.0f64, 0.0f64);
            loop {
                let text = metrics.render();
                let in_flight = value(&text, "vigie_stage_in_flight_messages{").unwrap_or(0.0);
                let lag = lag(&text);
                most_in_flight = most_in_flight.max(in_flight);
                if in_flight <= bound as f64 {
                    most_lag_within_bound = most_lag_within_bound.max(lag.unwrap_or(0.0));
                }
                let out = value(&text, "vigie_stage_messages_out_total{").unwrap_or(0.0);
                if out >= N as f64 && lag == Some(0.0) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "not every post scored within 4 minutes:\n{text}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = stop.send(());
            (most_in_flight, most_lag_within_bound)
        })
    };
    let scored = run_analyser(&config, &analyser, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    let (most_in_flight, most_lag) = watcher.await.unwrap();

    let text = metrics.render();
    let peak = value(&text, "vigie_stage_in_flight_messages_peak{").unwrap();
    eprintln!("bound {bound}, peak in flight {peak}, largest backlog on the broker {most_lag}");
    assert!(
        peak > 0.0 && peak <= bound as f64,
        "peak in flight {peak}, bound {bound}"
    );
    assert!(most_in_flight <= bound as f64, "{most_in_flight} > {bound}");
    assert!(
        most_lag >= 1000.0,
        "the backlog on the broker peaked at {most_lag} while the worker held at most {bound}"
    );
    assert_eq!(
        value(&text, "vigie_stage_in_flight_messages_bound{"),
        Some(bound as f64)
    );
    assert_eq!(scored, N as u64);
    assert_eq!(
        value(&text, "vigie_stage_messages_in_total{"),
        Some(N as f64)
    );
    assert_eq!(
        value(&text, "vigie_stage_messages_out_total{"),
        Some(N as f64)
    );
    assert_eq!(value(&text, "vigie_stage_in_flight_messages{"), Some(0.0));
    // Batches of at most 16 messages, each timed once.
    let batches = value(&text, "vigie_stage_batch_seconds_count{").unwrap();
    assert!(
        batches >= (N as f64 / 16.0).ceil() && batches <= N as f64,
        "{batches} batches"
    );
    assert_eq!(
        messages_in(broker.address(), topics[1], PARTITIONS),
        N as i64,
        "every post published scored, once"
    );
}

fn delivery(offset: i64, payload: Vec<u8>) -> Delivery {
    Delivery {
        coords: KafkaCoords {
            topic: "vigie.posts.raw".into(),
            partition: 0,
            offset,
        },
        key: Some(format!("key-{offset}").into_bytes()),
        payload,
        headers: Vec::new(),
    }
}

fn header<'a>(letter: &'a Delivery, name: &str) -> &'a str {
    letter
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no header {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_too_large_to_publish_is_sent_without_its_value_and_the_next_one_whole() {
    let broker = LocalBroker::start().unwrap();
    let bus = BusConfig::new(broker.address());
    bus.ensure_topics(&["dead"], 1).await.unwrap();
    // A producer that refuses messages over 100 kB, as a topic with a lower limit would.
    let small = bus.clone().set("message.max.bytes", "100000");
    let dead = Publisher::new(&small, "dead").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    dead_letter(&dead, &delivery(1, big.clone()), "too big")
        .await
        .unwrap();
    dead_letter(&dead, &delivery(2, b"not json {".to_vec()), "invalid")
        .await
        .unwrap();

    let reader = Subscriber::new(&bus, "test-dead", &["dead"]).unwrap();
    let mut letters = Vec::new();
    while letters.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(60), reader.next());
        letters.push(next.await.expect("a dead letter").unwrap());
    }
    letters.sort_by_key(|l| l.key.clone());
    let (first, second) = (&letters[0], &letters[1]);
    assert!(first.payload.is_empty(), "sent without its value");
    assert_eq!(header(first, "vigie-kept-bytes"), "0");
    assert_eq!(header(first, "vigie-original-length"), "300000");
    assert_eq!(
        header(first, "vigie-original-sha256"),
        vigie_record::content_sha256(&big)
    );
    assert_eq!(header(first, "vigie-reason"), "too big");
    assert_eq!(header(first, "vigie-source-offset"), "1");
    assert_eq!(second.payload, b"not json {");
    assert_eq!(header(second, "vigie-kept-bytes"), "10");
}
