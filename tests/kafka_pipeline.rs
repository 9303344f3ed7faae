//! The Kafka pipeline end to end against a real broker: raw posts -> `vigie analyse` (real
//! model) -> `vigie index`; every post indexed once, scored, with the coordinates where it
//! entered Kafka; a poison message goes to the dead-letter topic and the posts around it are
//! indexed; SIGTERM stops both stages with exit code 0. An analyse worker killed with SIGKILL
//! mid-stream and restarted loses nothing and duplicates nothing in the index; two workers split
//! the partitions and, one killed, the other takes over its partitions; poison messages, a
//! 10 MB post among them, are dead-lettered with their reasons. The stages are real `vigie`
//! processes; their logs are in the test's data directory (see `util::Vigie::stage`).

use crate::util::{
    self, analyse_stage, broker, free_port, index_stage, pipeline_bus, series, stage_log_tails,
    terminate, Scorer, Vigie,
};
use std::path::Path;
use std::time::{Duration, Instant};
use vigie_record::broker::LocalBroker;
use vigie_record::bus::{BusConfig, Publisher};
use vigie_record::topics::{DEADLETTER, RAW};

const N: usize = 60;

/// Waits until the index in `dir` has at least `n` documents.
fn wait_docs(dir: &Path, n: usize, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    loop {
        let mut docs = 0;
        if dir.join("meta.json").is_file() {
            docs = vigie_index::PostIndex::open(dir).unwrap().num_docs();
            if docs >= n as u64 {
                return docs;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{docs} documents, fewer than {n}, after {limit:?}; the stages' logs:\n{}",
            dir.parent().map(stage_log_tails).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Publishes posts number `posts`, one in three a danger report, to the raw topic.
async fn publish_posts(bus: &BusConfig, posts: std::ops::Range<usize>) {
    let raw = Publisher::new(bus, RAW).unwrap();
    for i in posts {
        raw.publish(&vigie_record::fixtures::envelope(&i.to_string(), &text(i)))
            .await
            .unwrap();
    }
}

fn text(i: usize) -> String {
    if i % 3 == 0 {
        format!("Huge explosion at the chemical plant, people injured, avoid the area ({i})")
    } else {
        format!("Lovely morning at the market, fresh bread and coffee ({i})")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_posts_are_scored_and_indexed_once_with_their_coordinates() {
    let broker = broker();
    // One message per record batch (see tests/kafka_index.rs).
    let bus = pipeline_bus(&broker, 3).await;
    publish_posts(&bus, 0..N / 2).await;
    let raw = Publisher::new(&bus, RAW).unwrap();
    raw.send("poison", br#"{"post": {"id": 1}}"#).await.unwrap();
    publish_posts(&bus, N / 2..N).await;

    let data = tempfile::tempdir().unwrap();
    let brokers = broker.address();
    let analyse = analyse_stage(data.path(), brokers, Scorer::Model);
    let index = index_stage(data.path(), brokers, 20);
    let index_dir = data.path().join("index");
    wait_docs(&index_dir, N, Duration::from_secs(300));
    terminate(analyse);
    terminate(index);

    let index = vigie_index::PostIndex::open(&index_dir).unwrap();
    assert_eq!(index.num_docs(), N as u64);
    for i in 0..N {
        let id = vigie_record::VigieId::derive("mastodon", &i.to_string());
        let e = index.get(id.as_str()).unwrap().expect("indexed");
        let kafka = e.kafka.expect("coordinates");
        assert_eq!(kafka.topic, RAW, "where the post entered Kafka");
        let scoring = e.scoring.expect("scored");
        assert!(scoring.model.starts_with("heads-"), "{}", scoring.model);
        let danger = scoring.danger();
        if i % 3 == 0 {
            assert!(danger >= 0.5, "post {i}: {danger}");
        } else {
            assert!(danger < 0.5, "post {i}: {danger}");
        }
    }
}

/// The Prometheus text of the stage whose `/metrics` listens on `port`; empty while it does not.
async fn scrape(port: u16) -> String {
    match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// How many partitions of the raw topic an analyse worker reads now, by its `/metrics`, once
/// `done` holds of that number; panics after `limit` with the logs of the stages under `data`.
async fn wait_assigned(
    data: &Path,
    port: u16,
    limit: Duration,
    done: impl Fn(usize) -> bool,
) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let text = scrape(port).await;
        let assigned = series(
            &text,
            "vigie_stage_partitions_assigned",
            &[("stage", "analyse")],
        );
        if let Some(n) = assigned.map(|n| n as usize).filter(|&n| done(n)) {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "the worker on :{port} reads {assigned:?} partitions after {limit:?}; the stages' \
             logs:\n{}",
            stage_log_tails(data)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_the_partitions_and_one_takes_over_when_the_other_dies() {
    const M: usize = 300;
    const PARTITIONS: usize = 4;
    let broker = broker();
    let bus = pipeline_bus(&broker, PARTITIONS as i32).await;
    publish_posts(&bus, 0..M / 2).await;

    let data = tempfile::tempdir().unwrap();
    let brokers = broker.address();
    let index = index_stage(data.path(), brokers, 20);
    let analyse = |port: u16| {
        let metrics = format!("127.0.0.1:{port}");
        Vigie::new(data.path())
            .args(["analyse", "--brokers", brokers, "--metrics", &metrics])
            .args(["--scorer", "noop"])
            .stage()
    };
    // The first worker is alone in the group: it reads every partition.
    let (first_port, second_port) = (free_port(), free_port());
    let mut first = analyse(first_port);
    let limit = Duration::from_secs(300);
    wait_assigned(data.path(), first_port, limit, |n| n == PARTITIONS).await;
    // A second joins: the group re-forms and the two split the partitions.
    let second = analyse(second_port);
    let share = wait_assigned(data.path(), second_port, limit, |n| n > 0).await;
    assert!(share < PARTITIONS, "the second worker took all {share}");
    wait_assigned(data.path(), first_port, limit, |n| n == PARTITIONS - share).await;
    // The first dies without warning (it was the group's leader, too), and more posts come on
    // every partition: the survivor takes over the dead worker's partitions, and every post
    // arrives, once.
    first.kill();
    publish_posts(&bus, M / 2..M).await;
    wait_assigned(data.path(), second_port, limit, |n| n == PARTITIONS).await;
    wait_docs(&data.path().join("index"), M, Duration::from_secs(300));
    // Every post published after the death was read by the survivor, those on the dead
    // worker's partitions included.
    let text = scrape(second_port).await;
    let read = series(
        &text,
        "vigie_stage_messages_in_total",
        &[("stage", "analyse")],
    );
    assert!(
        read >= Some((M - M / 2) as f64),
        "the survivor read {read:?} posts"
    );
    terminate(second);
    terminate(index);
    let index = vigie_index::PostIndex::open(&data.path().join("index")).unwrap();
    assert_eq!(index.num_docs(), M as u64, "nothing lost, nothing twice");
    for i in 0..M {
        let id = vigie_record::VigieId::derive("mastodon", &i.to_string());
        assert!(
            index.get(id.as_str()).unwrap().is_some(),
            "post {i} indexed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stages_ride_out_a_broker_restart() {
    const M: usize = 60;
    let storage = tempfile::tempdir().unwrap();
    let broker = LocalBroker::start_with("sqlite://tansu.db", storage.path().to_path_buf())
        .unwrap_or_else(|e| panic!("{e}"));
    let bus = pipeline_bus(&broker, 2).await;
    publish_posts(&bus, 0..M / 2).await;

    let data = tempfile::tempdir().unwrap();
    let brokers = broker.address().to_string();
    let analyse = analyse_stage(data.path(), &brokers, Scorer::Noop);
    let index = index_stage(data.path(), &brokers, 10);
    let index_dir = data.path().join("index");
    wait_docs(&index_dir, 10, Duration::from_secs(300));
    // The broker goes away for a few seconds, then comes back with its data.
    let broker = broker
        .restart(Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("{e}"));
    let bus = util::bus(&broker);
    publish_posts(&bus, M / 2..M).await;
    wait_docs(&index_dir, M, Duration::from_secs(300));
    terminate(analyse);
    terminate(index);
    let index = vigie_index::PostIndex::open(&index_dir).unwrap();
    assert_eq!(index.num_docs(), M as u64, "nothing lost, nothing twice");
}

/// Waits until the index in `dir` has not changed for `quiet`, and returns its documents.
fn settled_docs(dir: &Path, quiet: Duration) -> u64 {
    let mut last = (u64::MAX, Instant::now());
    loop {
        let docs = if dir.join("meta.json").is_file() {
            vigie_index::PostIndex::open(dir).unwrap().num_docs()
        } else {
            0
        };
        if docs != last.0 {
            last = (docs, Instant::now());
        } else if last.1.elapsed() >= quiet {
            return docs;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_analyse_worker_restarts_and_every_post_is_indexed_exactly_once() {
    const M: usize = 150;
    let broker = broker();
    let bus = pipeline_bus(&broker, 3).await;
    publish_posts(&bus, 0..M).await;

    let data = tempfile::tempdir().unwrap();
    let brokers = broker.address();
    let index = index_stage(data.path(), brokers, 20);
    let mut worker = analyse_stage(data.path(), brokers, Scorer::Model);
    let index_dir = data.path().join("index");
    wait_docs(&index_dir, 20, Duration::from_secs(300));
    // SIGKILL: no chance to commit the batch in flight.
    worker.kill();
    // Once the indexer has taken in all the worker had published, the stream is not done.
    let at_kill = settled_docs(&index_dir, Duration::from_secs(3));
    assert!(
        at_kill < M as u64,
        "the worker was killed mid-stream ({at_kill} of {M} indexed)"
    );
    // The restarted worker resumes from the group's committed offsets. It joins once the dead
    // member's session (10 s) has expired: tansu 0.6 keeps a member that joins earlier waiting
    // for the dead one for ever (Kafka would rebalance when the session expires).
    std::thread::sleep(Duration::from_secs(12));
    let worker = analyse_stage(data.path(), brokers, Scorer::Model);
    wait_docs(&index_dir, M, Duration::from_secs(600));
    terminate(worker);
    terminate(index);
    let index = vigie_index::PostIndex::open(&index_dir).unwrap();
    assert_eq!(index.num_docs(), M as u64, "nothing lost, nothing twice");
    for i in 0..M {
        let id = vigie_record::VigieId::derive("mastodon", &i.to_string());
        let e = index.get(id.as_str()).unwrap().expect("every post indexed");
        assert!(e.scoring.is_some(), "post {i} scored");
    }
}

/// The value of header `name` of a dead letter.
fn header<'a>(letter: &'a vigie_record::bus::Delivery, name: &str) -> &'a str {
    letter
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no header {name}: {:?}", letter.headers))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_even_a_10_mb_post_are_dead_lettered_and_the_posts_around_them_indexed() {
    const M: usize = 40;
    let broker = broker();
    // The producer must be allowed a 10 MB message (librdkafka's default limit is 1 MB).
    let bus = pipeline_bus(&broker, 3)
        .await
        .set("message.max.bytes", &(16 << 20).to_string());
    publish_posts(&bus, 0..M / 2).await;
    let raw = Publisher::new(&bus, RAW).unwrap();
    let huge =
        vigie_record::fixtures::envelope("huge", &"fire! ".repeat((10 << 20) / 6 + 1)).to_json();
    assert!(huge.len() > 10 << 20);
    // Under the message limit (256 KiB) but over the text limit (64 KiB).
    let long_text = "smoke ".repeat(12 << 10);
    let long = vigie_record::fixtures::envelope("long", &long_text).to_json();
    let poisons: [(&str, &[u8]); 4] = [
        ("poison-huge", &huge),
        ("poison-long", &long),
        ("poison-json", b"not json {"),
        ("poison-schema", br#"{"post": {"id": 1}}"#),
    ];
    for (key, value) in poisons {
        raw.send(key, value).await.unwrap();
    }
    publish_posts(&bus, M / 2..M).await;

    let data = tempfile::tempdir().unwrap();
    let brokers = broker.address();
    let analyse = analyse_stage(data.path(), brokers, Scorer::Noop);
    let index = index_stage(data.path(), brokers, 10);
    let index_dir = data.path().join("index");
    wait_docs(&index_dir, M, Duration::from_secs(300));
    terminate(analyse);
    terminate(index);
    let index = vigie_index::PostIndex::open(&index_dir).unwrap();
    assert_eq!(index.num_docs(), M as u64, "the good posts, and only they");
    for i in 0..M {
        let id = vigie_record::VigieId::derive("mastodon", &i.to_string());
        assert!(index.get(id.as_str()).unwrap().is_some(), "post {i}");
    }

    let dead =
        vigie_record::bus::Subscriber::new(&bus, "vigie-test-deadletter", &[DEADLETTER]).unwrap();
    let mut letters = std::collections::BTreeMap::new();
    while letters.len() < poisons.len() {
        let letter = tokio::time::timeout(Duration::from_secs(60), dead.next())
            .await
            .unwrap_or_else(|_| panic!("only {:?} dead letters", letters.keys()))
            .unwrap();
        let key = String::from_utf8(letter.key.clone().unwrap()).unwrap();
        letters.insert(key, letter);
    }
    for (key, value) in poisons {
        let letter = &letters[key];
        assert_eq!(header(letter, "vigie-source-topic"), RAW);
        assert_eq!(
            header(letter, "vigie-original-length"),
            value.len().to_string()
        );
        assert_eq!(
            header(letter, "vigie-original-sha256"),
            vigie_record::content_sha256(value)
        );
        let kept = value.len().min(512 << 10);
        assert_eq!(letter.payload, value[..kept], "{key}: the original bytes");
        assert_eq!(header(letter, "vigie-kept-bytes"), kept.to_string());
    }
    let reason = |key: &str| header(&letters[key], "vigie-reason").to_string();
    let huge_reason = reason("poison-huge");
    assert!(
        huge_reason.contains(&format!("{} bytes", huge.len()))
            && huge_reason.contains("limit of 262144 bytes"),
        "{huge_reason}"
    );
    let long_reason = reason("poison-long");
    assert!(
        long_reason.contains(&format!("{} bytes", long_text.len()))
            && long_reason.contains("limit of 65536 bytes"),
        "{long_reason}"
    );
    assert!(reason("poison-json").contains("invalid envelope"));
    assert!(reason("poison-schema").contains("invalid envelope"));
}
