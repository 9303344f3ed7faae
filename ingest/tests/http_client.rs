//! The polite HTTP client against local servers that misbehave: 429 with Retry-After, a 500
//! then recovery, timeouts, oversized and truncated bodies, HTML where JSON was expected.

use crate::common;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigie_ingest::http::{FetchErrorKind, HttpClient, HttpConfig};
use vigie_ingest::state::GapKind;

/// Counts requests; the handler decides by the count.
#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

impl Hits {
    fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

const JSON: &str = r#"[{"id":"1"}]"#;

fn json_ok() -> axum::response::Response {
    ([(header::CONTENT_TYPE, "application/json")], JSON).into_response()
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_recorded_as_a_gap() {
    let hits = Hits::default();
    let seen_at = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let router = Router::new()
        .route(
            "/limited",
            get(
                |State((hits, seen)): State<(Hits, Arc<Mutex<Vec<Instant>>>)>| async move {
                    seen.lock().unwrap().push(Instant::now());
                    if hits.next() == 0 {
                        (
                            StatusCode::TOO_MANY_REQUESTS,
                            [(header::RETRY_AFTER, "1")],
                            "slow down",
                        )
                            .into_response()
                    } else {
                        json_ok()
                    }
                },
            ),
        )
        .with_state((hits.clone(), seen_at.clone()));
    let base = common::serve(router).await;
    let url = format!("{base}/limited");
    let fetched = common::client().get("mamot", &url, &[]).await.unwrap();
    assert_eq!(fetched.status, 200);
    assert_eq!(hits.count(), 2);
    let seen = seen_at.lock().unwrap();
    let waited = seen[1] - seen[0];
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 not honoured: retried after {waited:?}"
    );
    assert_eq!(fetched.waits.len(), 1);
    let gap = &fetched.waits[0];
    assert_eq!(gap.kind, GapKind::RateLimited);
    assert!(
        gap.detail.contains("429") && gap.detail.contains(&url),
        "{}",
        gap.detail
    );
    assert_eq!(
        (gap.to.unwrap() - gap.from).num_seconds(),
        1,
        "the gap spans the wait"
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_allowed_ends_the_fetch_with_the_wait() {
    let hits = Hits::default();
    let router = Router::new()
        .route(
            "/limited",
            get(|State(hits): State<Hits>| async move {
                hits.next();
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "3600")],
                    "maintenance",
                )
            }),
        )
        .with_state(hits.clone());
    let base = common::serve(router).await;
    let url = format!("{base}/limited");
    let e = common::client().get("r-news", &url, &[]).await.unwrap_err();
    assert_eq!(hits.count(), 1, "no retry when the wait is too long");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3600)));
    assert!(matches!(
        e.kind,
        FetchErrorKind::RateLimited { status: 503, .. }
    ));
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("r-news: GET {url}: ")), "{msg}");
}

#[tokio::test]
async fn a_500_then_recovery_succeeds_and_a_persistent_500_fails_naming_the_url() {
    let hits = Hits::default();
    let router = Router::new()
        .route(
            "/flaky",
            get(|State(hits): State<Hits>| async move {
                if hits.next() == 0 {
                    (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response()
                } else {
                    json_ok()
                }
            }),
        )
        .route(
            "/down",
            get(|| async { (StatusCode::BAD_GATEWAY, "upstream down") }),
        )
        .with_state(hits.clone());
    let base = common::serve(router).await;
    let client = common::client();
    let fetched = client
        .get("feed", &format!("{base}/flaky"), &[])
        .await
        .unwrap();
    assert_eq!(fetched.json::<serde_json::Value>().unwrap()[0]["id"], "1");
    assert_eq!(hits.count(), 2);
    assert!(
        fetched.waits.is_empty(),
        "a backoff is not a rate-limit gap"
    );

    let url = format!("{base}/down");
    let e = client.get("feed", &url, &[]).await.unwrap_err();
    assert!(matches!(e.kind, FetchErrorKind::Status { status: 502, .. }));
    assert_eq!(e.to_string(), format!("feed: GET {url}: HTTP 502"));
}

#[tokio::test]
async fn a_timeout_is_retried_then_reported_with_the_url() {
    let hits = Hits::default();
    let router = Router::new()
        .route(
            "/slow-once",
            get(|State(hits): State<Hits>| async move {
                if hits.next() == 0 {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                json_ok()
            }),
        )
        .route(
            "/hangs",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                json_ok()
            }),
        )
        .with_state(hits.clone());
    let base = common::serve(router).await;
    let client = common::client();
    let started = Instant::now();
    let fetched = client
        .get("m", &format!("{base}/slow-once"), &[])
        .await
        .unwrap();
    assert_eq!(fetched.status, 200);
    assert_eq!(hits.count(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "read timeout applied"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "did not wait for the slow answer"
    );

    let client = HttpClient::new(HttpConfig {
        max_retries: 1,
        ..common::fast_http()
    })
    .unwrap();
    let url = format!("{base}/hangs");
    let started = Instant::now();
    let e = client.get("m", &url, &[]).await.unwrap_err();
    assert!(matches!(e.kind, FetchErrorKind::Timeout(_)), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("m: GET {url}: timed out")),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn oversized_bodies_are_refused_declared_or_streamed() {
    let big = "x".repeat(100 * 1024);
    let router = Router::new()
        .route("/declared", get(move || async move { big.clone() }))
        .route(
            "/streamed",
            get(|| async {
                let chunks = (0..100).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 4096]));
                axum::body::Body::from_stream(futures_util::stream::iter(chunks))
            }),
        );
    let base = common::serve(router).await;
    let client = common::client();
    let e = client
        .get("rss", &format!("{base}/declared"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind,
            FetchErrorKind::Oversized {
                limit: 65536,
                declared: Some(102400)
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("/declared: response larger than the 65536 bytes"),
        "{e}"
    );
    let e = client
        .get("rss", &format!("{base}/streamed"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind, FetchErrorKind::Oversized { declared: None, .. }),
        "{e}"
    );
}

#[tokio::test]
async fn a_truncated_body_is_an_error_naming_the_url() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{\"id\":\"1\",\"content\":\"<p>Fire",
                )
                .await;
            let _ = socket.shutdown().await;
        }
    });
    let url = format!("http://{addr}/api/v1/timelines/public");
    let client = HttpClient::new(HttpConfig {
        max_retries: 1,
        ..common::fast_http()
    })
    .unwrap();
    let e = client.get("mamot", &url, &[]).await.unwrap_err();
    assert!(
        matches!(
            e.kind,
            FetchErrorKind::Truncated {
                received: 29,
                expected: Some(1000)
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!("mamot: GET {url}: truncated body: received 29 bytes of 1000 declared")
    );
}

/// The User-Agent of each request, and when it came.
type Agents = Arc<Mutex<Vec<(Instant, String)>>>;

#[tokio::test]
async fn sends_the_user_agent_and_limits_the_rate_per_host() {
    let agents: Agents = Arc::new(Mutex::new(Vec::new()));
    let router = Router::new()
        .route(
            "/ua",
            get(
                |State(agents): State<Agents>, headers: HeaderMap| async move {
                    let ua = headers
                        .get(header::USER_AGENT)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    agents.lock().unwrap().push((Instant::now(), ua));
                    json_ok()
                },
            ),
        )
        .with_state(agents.clone());
    let base = common::serve(router).await;
    // 600 a minute with no burst: one request every 100 ms.
    let client = HttpClient::new(HttpConfig {
        requests_per_minute: 600,
        burst: 1,
        ..common::fast_http()
    })
    .unwrap();
    let started = Instant::now();
    for _ in 0..4 {
        client.get("m", &format!("{base}/ua"), &[]).await.unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "4 requests at 10/s took only {:?}",
        started.elapsed()
    );
    let agents = agents.lock().unwrap();
    assert!(agents
        .iter()
        .all(|(_, ua)| ua == "Vigie-test/1 (+mailto:test@example.org)"));
}

/// A server that answers every request 429 with `retry_after`.
async fn always_limited(retry_after: &'static str) -> (String, Hits) {
    let hits = Hits::default();
    let router = Router::new()
        .fallback(get(move |State(hits): State<Hits>| async move {
            hits.next();
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after)],
                "go away",
            )
        }))
        .with_state(hits.clone());
    (common::serve(router).await, hits)
}

#[tokio::test]
async fn retry_after_of_u64_max_neither_panics_nor_sleeps_for_centuries() {
    for retry_after in [
        "18446744073709551615",
        "184467440737095516150000",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let (base, hits) = always_limited(retry_after).await;
        // The client clamps the wait it reports to max_wait.
        let e = common::client()
            .get("mamot", &format!("{base}/api/v1/timelines/public"), &[])
            .await
            .unwrap_err();
        assert_eq!(
            e.retry_after(),
            Some(common::fast_http().max_wait),
            "{retry_after}"
        );
        // The driver waits at most its own max_wait between polls, and records the clamped gap.
        let mut source = vigie_ingest::mastodon::Mastodon::new(
            vigie_ingest::mastodon::MastodonConfig {
                name: "mamot".into(),
                instance: base.clone(),
                hashtag: None,
                local: false,
                limit: 40,
                poll_interval: Duration::from_millis(10),
            },
            common::client(),
            common::pseudonymiser(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = vigie_ingest::state::StateStore::in_data_dir(dir.path());
        let options = vigie_ingest::driver::RunOptions {
            max_polls: Some(3),
            max_wait: Duration::from_millis(200),
            ..Default::default()
        };
        let started = Instant::now();
        let report = tokio::time::timeout(
            Duration::from_secs(20),
            vigie_ingest::driver::run(
                &mut source,
                &store,
                &mut common::Collect::default(),
                options,
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("Retry-After {retry_after}: the driver slept for ages"))
        .unwrap();
        assert_eq!(report.failures, 3, "{retry_after}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(hits.count(), 4, "one fetch by hand, one a poll");
        let state = store.load("mamot", "mastodon").unwrap();
        let gap = state
            .gaps
            .iter()
            .find(|g| g.kind == GapKind::RateLimited)
            .expect("a rate-limit gap");
        assert_eq!(
            (gap.to.unwrap() - gap.from).num_milliseconds(),
            200,
            "the gap spans the clamped wait"
        );
    }
}
