//! Deletions honoured end to end (issue #5), with the real binary, model, broker and HTTP API.
//!
//! - Embedded: a capture with a post is replayed into an index and the post viewed through the
//!   API; then a capture with its tombstone, then one with the post again (an older message
//!   re-delivered). The post is gone and stays gone; `GET /v1/posts/{id}` answers 410 with the
//!   lineage's `deleted` step and the earlier view among the accesses.
//! - Kafka: `vigie replay --brokers` publishes a capture of posts and tombstones to the raw
//!   topic; `vigie analyse` passes the tombstones on unscored, `vigie index` removes their posts:
//!   exactly the surviving posts are indexed, a post re-delivered after its tombstone stays out,
//!   a malformed tombstone is dead-lettered, and the deleted posts answer 410 with the Kafka
//!   coordinates where their deletion entered Kafka.
//! - Retention in a Kafka deployment: `vigie index` holds the index writer, so it enforces
//!   retention itself: old posts leave, logged in the verifiable retention log, and the commit
//!   keeps the indexer's checkpoint.

use crate::util::{
    self, analyse_stage, analyst, broker, consumed, index_stage, pipeline_bus, serve_index,
    terminate, verify_log, Scorer, Vigie,
};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use vigie_index::PostIndex;
use vigie_ingest::Item;
use vigie_record::bus::{Publisher, Subscriber};
use vigie_record::fixtures::{envelope, tombstone};
use vigie_record::topics::{DEADLETTER, RAW, SCORED};
use vigie_record::VigieId;

/// Writes a capture file of `items`.
fn capture(path: &Path, items: &[Item]) {
    let mut text = Vec::new();
    for item in items {
        text.extend(vigie_ingest::capture::to_line(item));
        text.push(b'\n');
    }
    std::fs::write(path, text).unwrap();
}

fn post(n: usize) -> Item {
    let text = if n % 3 == 0 {
        format!("Huge explosion at the chemical plant, people injured, avoid the area ({n})")
    } else {
        format!("Lovely morning at the market, fresh bread and coffee ({n})")
    };
    Item::Post(Box::new(envelope(&n.to_string(), &text)))
}

fn deleted(n: usize, at: &str) -> Item {
    Item::Delete(Box::new(tombstone(&n.to_string(), at)))
}

fn id(n: usize) -> String {
    VigieId::derive("mastodon", &n.to_string()).to_string()
}

/// `GET path` with `token`: status, content type, JSON body.
async fn get(base: &str, path: &str, token: &str) -> (u16, String, Value) {
    let res = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
    (status, ctype, res.json().await.unwrap())
}

/// The ids every post search (`*`) returns.
async fn searched(base: &str, token: &str) -> Vec<String> {
    let (status, _, body) = get(
        base,
        "/v1/search?q=*&purpose=check&collapse=false&limit=100",
        token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<String> = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_deletion_removes_the_post_for_good_and_the_api_shows_its_lineage() {
    let started = chrono::Utc::now();
    let data = tempfile::tempdir().unwrap();
    let index = data.path().join("replayed");
    let replay = |items: &[Item], name: &str| {
        let file = data.path().join(name);
        capture(&file, items);
        Vigie::new(data.path())
            .arg("replay")
            .arg(&file)
            .args(["--speed", "max", "--index"])
            .arg(&index)
            .ok()
    };
    let out = replay(&[post(3), post(4)], "posts.jsonl");
    assert!(
        out.contains("2 posts indexed") && out.contains("0 deletions applied"),
        "{out}"
    );
    let token = analyst(data.path(), "ana");
    let server = serve_index(data.path(), &index);
    let (status, _, view) = get(
        &server.base,
        &format!("/v1/posts/{}?purpose=case%205", id(3)),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{view}");
    server.stop();

    let out = replay(&[deleted(3, "2026-11-27T09:00:00Z")], "deletion.jsonl");
    assert!(out.contains("1 deletions applied"), "{out}");
    // The same post again, as an older capture would bring it: refused.
    let out = replay(&[post(3)], "again.jsonl");
    assert!(
        out.contains("0 posts indexed") && out.contains("1 posts refused as deleted"),
        "{out}"
    );

    let server = serve_index(data.path(), &index);
    let (status, ctype, gone) = get(
        &server.base,
        &format!("/v1/posts/{}?purpose=case%205", id(3)),
        &token,
    )
    .await;
    assert_eq!((status, ctype.as_str()), (410, "application/problem+json"));
    assert_eq!(gone["status"], 410);
    assert_eq!(gone["id"], id(3));
    assert!(gone.get("post").is_none(), "the post itself is not shown");
    let step = &gone["lineage"]["deleted"];
    assert_eq!(step["deleted_at"], "2026-11-27T09:00:00Z");
    assert_eq!(
        (&step["source"], &step["native_id"]),
        (&"mastodon".into(), &"3".into())
    );
    assert_eq!(
        step["learnt"]["fetch_url"],
        "wss://mamot.fr/api/v1/streaming?stream=public"
    );
    assert_eq!(step["learnt"]["content_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(step["kafka"], Value::Null, "embedded: no Kafka");
    let committed: chrono::DateTime<chrono::Utc> =
        step["committed_at"].as_str().unwrap().parse().unwrap();
    assert!(committed >= started, "{committed}");
    let accesses = gone["lineage"]["accesses"].as_array().unwrap();
    assert_eq!(accesses.len(), 1, "the view before the deletion: {gone}");
    assert_eq!(accesses[0]["purpose"], "case 5");
    assert_eq!(accesses[0]["user"], "ana");
    // The 410 itself is an access to the post, logged and listed the next time.
    let (_, _, again) = get(
        &server.base,
        &format!("/v1/posts/{}?purpose=case%206", id(3)),
        &token,
    )
    .await;
    assert_eq!(again["lineage"]["accesses"].as_array().unwrap().len(), 2);

    // The other post is untouched; searches never show the deletion record.
    let (status, _, _) = get(
        &server.base,
        &format!("/v1/posts/{}?purpose=x", id(4)),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(searched(&server.base, &token).await, [id(4)]);
    let (status, _, _) = get(&server.base, "/v1/posts/nope?purpose=x", &token).await;
    assert_eq!(status, 404, "never indexed: 404, not 410");
    server.stop();

    let index = PostIndex::open(&index).unwrap();
    assert_eq!((index.num_docs(), index.num_deletions().unwrap()), (1, 1));
}

/// Waits until the indexer's last commit has consumed `n` messages of the scored topic.
fn wait_consumed(dir: &Path, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let consumed = dir
            .join("meta.json")
            .is_file()
            .then(|| PostIndex::open(dir).unwrap().commit_payload().unwrap())
            .flatten()
            .map(|p| {
                let c: Value = serde_json::from_str(&p).unwrap();
                consumed(&c["offsets"])
            })
            .unwrap_or(0);
        if consumed >= n {
            assert_eq!(consumed, n, "more messages than published");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{consumed} of {n} messages indexed after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_replayed_into_kafka_leave_exactly_the_surviving_posts() {
    const N: usize = 12;
    let gone = [2, 5, 9];
    let broker = broker();
    let bus = pipeline_bus(&broker, 3).await;
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("capture.jsonl");
    let mut items: Vec<Item> = (0..N).map(post).collect();
    for n in gone {
        items.push(deleted(n, "2026-11-27T09:00:00Z"));
    }
    // The deletion of a post Vigie never saw: recorded all the same.
    items.push(deleted(99, "2026-11-27T09:30:00Z"));
    capture(&file, &items);
    let out = Vigie::new(data.path())
        .arg("replay")
        .arg(&file)
        .args(["--speed", "max", "--brokers", broker.address()])
        .ok();
    assert!(
        out.contains(&format!("{N} posts and 4 deletions published to {RAW}")),
        "{out}"
    );
    let raw = Publisher::new(&bus, RAW).unwrap();
    raw.send(&id(7), br#"{"tombstone": {"id": "x"}}"#)
        .await
        .unwrap();

    let brokers = broker.address();
    let analyse = analyse_stage(data.path(), brokers, Scorer::Noop);
    let index = index_stage(data.path(), brokers, 5);
    let index_dir = data.path().join("index");
    wait_consumed(&index_dir, (N + 4) as i64);
    // Post 5 again (an older message replayed), and a new post after it.
    for item in [post(5), post(50)] {
        let Item::Post(e) = item else { unreachable!() };
        raw.publish(&e).await.unwrap();
    }
    wait_consumed(&index_dir, (N + 6) as i64);
    terminate(analyse);
    terminate(index);

    let index = PostIndex::open(&index_dir).unwrap();
    let survivors: Vec<usize> = (0..N).filter(|n| !gone.contains(n)).chain([50]).collect();
    assert_eq!(index.num_docs(), survivors.len() as u64);
    assert_eq!(index.num_deletions().unwrap(), 4);
    let stats: Value =
        serde_json::from_str(&Vigie::new(data.path()).args(["stats", "--json"]).ok()).unwrap();
    assert_eq!(
        (&stats["docs"], &stats["deletions"]),
        (&survivors.len().into(), &4.into())
    );
    for n in &survivors {
        let e = index.get(&id(*n)).unwrap().expect("a survivor is indexed");
        assert!(e.scoring.is_some(), "post {n} scored");
    }
    for n in gone.into_iter().chain([99]) {
        assert_eq!(index.get(&id(n)).unwrap(), None, "post {n} deleted");
        let record = index.deletion(&id(n)).unwrap().expect("deletion recorded");
        let kafka = record.kafka.expect("where the deletion entered Kafka");
        assert_eq!(kafka.topic, RAW);
    }

    let dead = Subscriber::new(&bus, "vigie-test-deadletter", &[DEADLETTER]).unwrap();
    let letter = tokio::time::timeout(Duration::from_secs(60), dead.next())
        .await
        .expect("a dead letter")
        .unwrap();
    assert_eq!(letter.payload, br#"{"tombstone": {"id": "x"}}"#);
    let reason = &letter
        .headers
        .iter()
        .find(|(k, _)| k == "vigie-reason")
        .unwrap()
        .1;
    assert!(reason.contains("invalid tombstone"), "{reason}");

    let token = analyst(data.path(), "ana");
    let server = serve_index(data.path(), &index_dir);
    for n in gone {
        let (status, _, body) = get(
            &server.base,
            &format!("/v1/posts/{}?purpose=check", id(n)),
            &token,
        )
        .await;
        assert_eq!(status, 410, "{body}");
        assert_eq!(body["lineage"]["deleted"]["kafka"]["topic"], RAW);
        assert_eq!(
            body["lineage"]["deleted"]["deleted_at"],
            "2026-11-27T09:00:00Z"
        );
    }
    let mut expected: Vec<String> = survivors.iter().map(|n| id(*n)).collect();
    expected.sort();
    assert_eq!(searched(&server.base, &token).await, expected);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_indexer_enforces_retention_and_keeps_its_checkpoint() {
    let broker = broker();
    let bus = util::bus(&broker);
    bus.ensure_topics(&[SCORED, DEADLETTER], 2).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    Vigie::new(data.path()).args(["keys", "init"]).ok();
    let scored = Publisher::new(&bus, SCORED).unwrap();
    let now = chrono::Utc::now();
    let mut old = Vec::new();
    for n in 0..5 {
        let mut e = vigie_record::fixtures::scored(&n.to_string(), "a post", 0.2);
        // Posts 0 to 2 were collected longer ago than the 30 days of retention.
        e.provenance.fetched_at = if n < 3 {
            now - chrono::Duration::days(40)
        } else {
            now
        };
        if n < 3 {
            old.push(id(n));
        }
        scored.publish(&e).await.unwrap();
    }
    let index = Vigie::new(data.path())
        .args(["index", "--brokers", broker.address()])
        .args(["--retention-every", "1s"])
        .stage();
    let index_dir = data.path().join("index");
    wait_consumed(&index_dir, 5);
    let deadline = Instant::now() + Duration::from_secs(60);
    while PostIndex::open(&index_dir).unwrap().num_docs() != 2 {
        assert!(
            Instant::now() < deadline,
            "old posts still there after 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    terminate(index);

    let index = PostIndex::open(&index_dir).unwrap();
    for n in 0..5 {
        assert_eq!(index.get(&id(n)).unwrap().is_some(), n >= 3, "post {n}");
    }
    // The checkpoint survived the retention commits: a restart would not read again.
    wait_consumed(&index_dir, 5);
    let log = data.path().join("retention-log/access.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    old.sort();
    assert!(
        text.contains(&serde_json::to_string(&old).unwrap()),
        "{text}"
    );
    verify_log(data.path(), &log).ok();
}
