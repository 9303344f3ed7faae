//! The Kafka indexer against a real broker: killed with SIGKILL mid-stream and restarted, it
//! still ends with exactly one document per post, each with its Kafka coordinates; a poison
//! message goes to the dead-letter topic with its reason and original bytes; SIGTERM stops it
//! cleanly.

use crate::util::{self, broker, consumed, index_stage, terminate, Process, Vigie};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigie_record::bus::{BusConfig, Publisher, Subscriber};
use vigie_record::topics::{DEADLETTER, SCORED};

const TOPIC: &str = SCORED;
const N: usize = 2000;

fn indexer(broker: &str, data: &Path) -> Process {
    index_stage(data, broker, 50)
}

/// `vigie stats --json` of the index in `data`; `None` while it has no commit.
fn try_stats(data: &Path) -> Option<serde_json::Value> {
    let out = Vigie::new(data).args(["stats", "--json"]).output();
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// `vigie stats --json` of the index in `data`, which must have a commit.
fn stats(data: &Path) -> serde_json::Value {
    try_stats(data).expect("vigie stats: the index has a commit")
}

fn docs(data: &Path) -> u64 {
    try_stats(data).map_or(0, |v| v["docs"].as_u64().unwrap())
}

fn wait_for(data: &Path, what: impl Fn(u64) -> bool, limit: Duration) -> u64 {
    let start = Instant::now();
    loop {
        let n = docs(data);
        if what(n) {
            return n;
        }
        assert!(start.elapsed() < limit, "stuck at {n} documents");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_indexer_resumes_from_its_commit_without_loss_or_duplicates() {
    let broker = broker();
    let bus = BusConfig::new(broker.address());
    bus.ensure_topics(&[TOPIC, DEADLETTER], 3).await.unwrap();
    // One message per record batch: tansu 0.6 serves a fetch only from a batch's first offset,
    // so a restart at an offset inside a batch would wait forever there.
    let single = util::bus(&broker);
    let publisher = Arc::new(Publisher::new(&single, TOPIC).unwrap());
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..N {
        let p = publisher.clone();
        sends.spawn(async move {
            let e = vigie_record::fixtures::scored(&i.to_string(), &format!("post {i}"), 0.5);
            p.publish(&e).await.unwrap()
        });
        if i == N / 2 {
            publisher.send("poison", b"not json {").await.unwrap();
        }
    }
    while let Some(r) = sends.join_next().await {
        r.unwrap();
    }

    let data = tempfile::tempdir().unwrap();
    let mut first = indexer(broker.address(), data.path());
    let at_kill = wait_for(data.path(), |n| n >= 50, Duration::from_secs(120));
    first.kill(); // SIGKILL
    assert!(at_kill <= N as u64);

    let second = indexer(broker.address(), data.path());
    wait_for(data.path(), |n| n >= N as u64, Duration::from_secs(180));
    // SIGTERM: finish, commit, exit 0.
    terminate(second);

    let index = vigie_index::PostIndex::open(&data.path().join("index")).unwrap();
    assert_eq!(index.num_docs(), N as u64, "exactly one document per post");
    let mut coords = BTreeSet::new();
    for i in 0..N {
        let id = vigie_record::VigieId::derive("mastodon", &i.to_string());
        let e = index.get(id.as_str()).unwrap().expect("every post indexed");
        let k = e.kafka.expect("Kafka coordinates in provenance");
        assert_eq!(k.topic, TOPIC);
        assert!(
            coords.insert((k.partition, k.offset)),
            "one message, one document"
        );
    }
    let stats = stats(data.path());
    let consumed: i64 = consumed(&stats["offsets"]);
    assert_eq!(
        consumed,
        N as i64 + 1,
        "every message consumed, the poison one too"
    );

    let dead = Subscriber::new(&bus, "vigie-test-deadletter", &[DEADLETTER]).unwrap();
    let letter = tokio::time::timeout(Duration::from_secs(60), dead.next())
        .await
        .expect("a dead letter")
        .unwrap();
    assert_eq!(letter.payload, b"not json {");
    let reason = letter
        .headers
        .iter()
        .find(|(k, _)| k == "vigie-reason")
        .map(|(_, v)| v.as_str())
        .unwrap();
    assert!(reason.contains("invalid envelope"), "{reason}");
    assert!(letter
        .headers
        .iter()
        .any(|(k, v)| k == "vigie-source-topic" && v == TOPIC));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_the_topic_no_longer_holds_restarts_at_the_earliest_and_is_reported() {
    const GAP_TOPIC: &str = SCORED;
    let broker = broker();
    let bus = BusConfig::new(broker.address());
    bus.ensure_topics(&[GAP_TOPIC, DEADLETTER], 1)
        .await
        .unwrap();
    let single = util::bus(&broker);
    let publisher = Publisher::new(&single, GAP_TOPIC).unwrap();
    for i in 0..5 {
        let e = vigie_record::fixtures::scored(&i.to_string(), &format!("post {i}"), 0.5);
        publisher.publish(&e).await.unwrap();
    }
    // An index whose checkpoint points past what the topic holds (the topic was recreated, or
    // its retention ran while the indexer was down).
    let data = tempfile::tempdir().unwrap();
    {
        let index = vigie_index::PostIndex::open(&data.path().join("index")).unwrap();
        let mut w = index.writer().unwrap();
        let checkpoint = serde_json::json!({"topic": GAP_TOPIC, "offsets": {"0": 1000}});
        w.commit(Some(&checkpoint.to_string())).unwrap();
    }
    let stage = indexer(broker.address(), data.path());
    // librdkafka's default reset (`latest`) would wait at the end of the topic forever.
    wait_for(data.path(), |n| n >= 5, Duration::from_secs(120));
    terminate(stage);
    let stats = stats(data.path());
    let gaps = stats["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{stats}");
    assert_eq!(
        (&gaps[0]["kind"], &gaps[0]["expected"], &gaps[0]["got"]),
        (&"rewound".into(), &1000.into(), &0.into())
    );
    assert_eq!(stats["offsets"]["0"], 5);
}
