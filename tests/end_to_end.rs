//! The walking skeleton end to end: `vigie run` replays the bundled sample stream through the
//! real model into an index on disk and serves it; a real HTTP client searches it.

use crate::util::{self, root, Vigie};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// The fixture's labels and raw authors, by native id.
fn fixture() -> HashMap<String, Value> {
    let text = std::fs::read_to_string(root().join("fixtures/sample-stream.jsonl")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_stream_is_scored_indexed_and_searchable_over_http() {
    let data = tempfile::tempdir().unwrap();
    // `vigie run` on a free port with a fresh data dir: it scores the stream, then serves.
    let server = Vigie::new(data.path())
        .args(["run", "--input", "fixtures/sample-stream.jsonl"])
        .args(["--listen", "127.0.0.1:0"])
        .serve_within(Duration::from_secs(600));
    let base = &server.base;
    let posts = fixture();
    // `vigie run` made the analyst `demo` and left its token in the data dir.
    let token = std::fs::read_to_string(data.path().join("demo.token")).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", token.trim()).parse().unwrap(),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();

    // Every post of the stream was indexed, once.
    let all = util::search_all(base, &token, "end-to-end test", 500).await;
    assert_eq!(all["purpose"], "end-to-end test");
    let hits = all["hits"].as_array().unwrap();
    assert_eq!(hits.len(), posts.len(), "every post indexed once");

    let (mut danger, mut calm) = (Vec::new(), Vec::new());
    for hit in hits {
        let native = hit["provenance"]["fetch_url"].as_str().unwrap();
        assert!(native.starts_with("file://"), "{native}");
        assert_eq!(hit["provenance"]["ingestor"]["name"], "replay");
        assert_eq!(
            hit["provenance"]["content_sha256"].as_str().unwrap().len(),
            64
        );
        // Scored by the shipped, trained heads (models/danger), named by their card id.
        assert!(
            hit["model"].as_str().unwrap().starts_with("heads-"),
            "{}",
            hit["model"]
        );
        assert!(hit["created_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-27T"));
        let score = hit["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score));
        // Find the fixture line by its creation time, unique in the stream (the text is
        // pseudonymised: mentions become pseudonyms).
        let original = posts
            .values()
            .find(|p| p["created_at"] == hit["created_at"])
            .expect("hit comes from the stream");
        assert_ne!(
            hit["author"], original["author"],
            "authors are pseudonymised"
        );
        assert!(hit["author"].as_str().unwrap().starts_with("ps:"));
        // The handle is nowhere in what an analyst sees: not in the text, URL or provenance.
        let handle = original["author"].as_str().unwrap();
        assert!(!hit.to_string().contains(handle), "{handle} in {hit}");
        if original["labels"]["danger"] == 1 {
            danger.push(score);
        } else {
            calm.push(score);
        }
    }
    // The model separates danger reports from ordinary posts on average.
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(!danger.is_empty() && !calm.is_empty());
    assert!(
        mean(&danger) > mean(&calm) + 0.1,
        "danger {} vs calm {}",
        mean(&danger),
        mean(&calm)
    );

    // A full-text search returns relevant, explained hits.
    let fire: Value = http
        .get(format!(
            "{base}/v1/search?q=incendie%20OR%20fire&purpose=case%2042"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fire_hits = fire["hits"].as_array().unwrap();
    assert!(!fire_hits.is_empty());
    assert!(fire_hits.iter().all(|h| {
        let text = h["text"].as_str().unwrap().to_lowercase();
        text.contains("incendie") || text.contains("fire")
    }));
    // Alerts (danger >= 0.5) and only alerts carry an explanation: words of the post.
    assert!(fire_hits
        .iter()
        .any(|h| h["score"].as_f64().unwrap() >= 0.5));
    for h in fire_hits {
        let explanation = h["explanation"].as_array().unwrap();
        let alert = h["score"].as_f64().unwrap() >= 0.5;
        assert_eq!(alert, !explanation.is_empty(), "{h}");
        for word in explanation {
            assert!(h["text"]
                .as_str()
                .unwrap()
                .contains(word["word"].as_str().unwrap()));
        }
    }

    // No purpose, no search.
    let refused = http
        .get(format!("{base}/v1/search?q=fire"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["title"], "purpose required");

    // No token, no search.
    let anonymous = reqwest::get(format!("{base}/v1/search?q=fire&purpose=x"))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
