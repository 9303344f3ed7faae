//! `vigie run --brokers` against a real broker: every stage in one process over Kafka. The
//! sample stream is published, scored (real model), indexed and searchable over the API; the
//! stages' `/metrics`, scraped over HTTP, count exactly the messages that went through (a
//! poison message as a dead letter) and their consumer lag falls to 0; SIGTERM stops it all
//! with exit code 0, the index's checkpoint past every scored message.

use crate::util::{self, broker, consumed, pipeline_bus, root, series, verify_log, Vigie};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use vigie_record::bus::Publisher;
use vigie_record::topics::{RAW, SCORED};

/// Posts of the sample stream the test replays (its first ones): enough for batches on every
/// partition, few enough for the real model on two cores.
const POSTS: usize = 80;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_brokers_scores_indexes_serves_and_counts_every_post() {
    let data = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(root().join("fixtures/sample-stream.jsonl")).unwrap();
    let input: Vec<&str> = sample
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(POSTS)
        .collect();
    let stream = data.path().join("stream.jsonl");
    std::fs::write(&stream, input.join("\n")).unwrap();
    let lines: Vec<Value> = input
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let posts: HashSet<String> = lines
        .iter()
        .map(|v| format!("{}/{}", v["source"], v["id"]))
        .collect();
    let broker = broker();
    let bus = pipeline_bus(&broker, 3).await;
    Publisher::new(&bus, RAW)
        .unwrap()
        .send("poison", b"not an envelope")
        .await
        .unwrap();

    let limit = Duration::from_secs(300);
    let mut server = Vigie::new(data.path())
        .args(["run", "--brokers", broker.address(), "--input"])
        .arg(&stream)
        .args(["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        .quiet()
        .serve_within(limit);
    let api = server.base.clone();
    let metrics = server.line("metrics on ", limit);

    let token = std::fs::read_to_string(data.path().join("demo.token")).unwrap();
    let search = || async {
        let answer = util::search_all(&api, &token, "kafka run test", 1).await;
        answer["total"].as_u64().unwrap()
    };
    // The posts become searchable as the indexer commits.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let total = search().await;
        if total >= posts.len() as u64 {
            assert_eq!(total, posts.len() as u64, "every post indexed once");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{total} of {} posts searchable after 10 minutes",
            posts.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The metrics, over HTTP, once both stages have read everything.
    let deadline = Instant::now() + Duration::from_secs(120);
    let text = loop {
        let response = reqwest::get(&metrics).await.unwrap();
        assert!(response.status().is_success());
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = response.text().await.unwrap();
        let lag = |stage| {
            series(
                &text,
                "vigie_stage_consumer_lag_messages",
                &[("stage", stage)],
            )
        };
        let out = series(
            &text,
            "vigie_stage_messages_out_total",
            &[("stage", "index")],
        );
        if lag("analyse") == Some(0.0)
            && lag("index") == Some(0.0)
            && out == Some(lines.len() as f64)
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the lag did not fall to 0 within 2 minutes:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let count = |name: &str, stage: &str| series(&text, name, &[("stage", stage)]);
    let n = lines.len() as f64;
    // The analyse worker read every post and the poison message, scored the posts, and
    // dead-lettered the poison; the indexer read and wrote every scored post.
    assert_eq!(
        count("vigie_stage_messages_in_total", "analyse"),
        Some(n + 1.0)
    );
    assert_eq!(count("vigie_stage_messages_out_total", "analyse"), Some(n));
    assert_eq!(
        count("vigie_stage_dead_letters_total", "analyse"),
        Some(1.0)
    );
    assert_eq!(count("vigie_stage_messages_in_total", "index"), Some(n));
    assert_eq!(count("vigie_stage_messages_out_total", "index"), Some(n));
    assert_eq!(count("vigie_stage_dead_letters_total", "index"), Some(0.0));
    for stage in ["analyse", "index"] {
        assert_eq!(
            count("vigie_stage_in_flight_messages", stage),
            Some(0.0),
            "{stage}"
        );
        let batches = count("vigie_stage_batch_seconds_count", stage).unwrap();
        assert!(
            batches >= 1.0 && batches <= n + 1.0,
            "{stage}: {batches} batches"
        );
        let peak = count("vigie_stage_in_flight_messages_peak", stage).unwrap();
        let bound = count("vigie_stage_in_flight_messages_bound", stage).unwrap();
        assert!(
            peak >= 1.0 && peak <= bound,
            "{stage}: peak {peak}, bound {bound}"
        );
    }
    // One lag series per partition of each stage's input topic.
    let partitions = |stage: &str, topic: &str| {
        text.lines()
            .filter(|l| l.starts_with("vigie_stage_consumer_lag_messages{"))
            .filter(|l| l.contains(&format!("stage=\"{stage}\"")))
            .filter(|l| l.contains(&format!("topic=\"{topic}\"")))
            .count()
    };
    assert_eq!(partitions("analyse", RAW), 3);
    assert_eq!(partitions("index", SCORED), 3);
    let peak_rss: f64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("vigie_peak_resident_memory_bytes ")?
                .parse()
                .ok()
        })
        .expect("the peak RSS");
    assert!(peak_rss > 0.0);

    // SIGTERM: the stages stop in order, the process exits 0.
    server.stop();
    // The index's last commit holds the position past every scored message.
    let index = vigie_index::PostIndex::open(&data.path().join("index")).unwrap();
    assert_eq!(index.num_docs(), posts.len() as u64);
    let checkpoint: Value =
        serde_json::from_str(&index.commit_payload().unwrap().unwrap()).unwrap();
    assert_eq!(checkpoint["topic"], SCORED);
    let read: i64 = consumed(&checkpoint["offsets"]);
    assert_eq!(
        read,
        lines.len() as i64,
        "the index read every scored message"
    );

    // The access log's signed heads went to `vigie.audit.heads` too: read back, they check the
    // log, and a log cut back to its first checkpoint no longer passes.
    let heads = data.path().join("heads-from-kafka.jsonl");
    let out = Vigie::new(data.path())
        .args(["audit", "heads", "--brokers", broker.address(), "--out"])
        .arg(&heads)
        .ok();
    assert!(!out.starts_with("0 heads"), "{out}");
    let log = data.path().join("access-log/access.jsonl");
    let verify = || {
        verify_log(data.path(), &log)
            .arg("--heads")
            .arg(&heads)
            .output()
    };
    let intact = verify();
    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let first = text.lines().next().unwrap();
    std::fs::write(&log, format!("{first}\n")).unwrap();
    let cut = verify();
    assert!(
        !cut.status.success(),
        "a cut log passed its published heads"
    );
}
