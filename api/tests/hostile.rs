//! Attacks on the server by a caller with a token (or none), over real HTTP: each must get a
//! clear refusal, leave the server serving, and be in the access log.

use crate::common;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use vigie_api::ServeLimits;
use vigie_record::fixtures::scored;

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn get(server: &common::Server, who: &str, path: &str) -> (StatusCode, Value) {
    let res = http()
        .get(format!("{}{path}", server.base))
        .bearer_auth(&server.tokens[who])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The server still answers a plain search.
async fn still_serving(server: &common::Server) {
    let (status, body) = get(server, "ana", "/v1/search?q=fire&purpose=check").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["count"].as_u64().unwrap() >= 1, "{body}");
}

fn posts(n: u32) -> Vec<vigie_record::Envelope> {
    // Texts far apart, so that no two collapse as near-duplicates.
    let texts = [
        "Warehouse fire in Vénissieux, thick smoke",
        "Forest fire spreading towards the motorway",
        "Fire alarm at Part-Dieu station, crowds outside",
        "Kitchen fire on rue Garibaldi, firefighters arriving",
        "Huge blaze at the harbour: a fire ship is burning",
        "Smoke and fire seen from the tunnel exit",
        "Fire reported at the covered market downtown",
        "Bridge closed after a truck caught fire",
    ];
    (0..n)
        .map(|i| scored(&i.to_string(), texts[i as usize % texts.len()], 0.6))
        .collect()
}

#[tokio::test]
async fn a_forged_cursor_with_a_raised_offset_is_refused_and_the_server_lives() {
    let server = common::start_with(&posts(6), 1000).await;
    let (status, page) = get(&server, "ana", "/v1/search?q=fire&purpose=p&limit=2").await;
    assert_eq!(status, StatusCode::OK);
    let next = page["next"].as_str().unwrap().to_string();
    let mut parts: Vec<String> = next.split('.').map(String::from).collect();
    parts[2] = format!("{:x}", 10u64.pow(13));
    let forged = parts.join(".");
    for collapse in ["true", "false"] {
        let (status, problem) = get(
            &server,
            "ana",
            &format!("/v1/search?q=fire&purpose=p&limit=2&collapse={collapse}&cursor={forged}"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert_eq!(problem["title"], "invalid `cursor`");
    }
    still_serving(&server).await;
    let entries = server.entries();
    assert_eq!(
        entries.iter().filter(|e| e.status == 400).count(),
        2,
        "{entries:?}"
    );
}

#[tokio::test]
async fn five_thousand_nested_parentheses_are_refused_and_the_server_lives() {
    let server = common::start(1000).await;
    let deep = format!("{}fire{}", "(".repeat(5000), ")".repeat(5000));
    let res = http()
        .post(format!("{}/v1/search", server.base))
        .bearer_auth(&server.tokens["ana"])
        .json(&json!({"q": deep, "purpose": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["title"], "query too complex", "{problem}");

    let nested = format!("{}fire{}", "(".repeat(40), ")".repeat(40));
    let (status, problem) = get(
        &server,
        "ana",
        &format!("/v1/search?purpose=p&q={}", urlencode(&nested)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        problem["detail"].as_str().unwrap().contains("40 deep"),
        "{problem}"
    );
    still_serving(&server).await;
    assert_eq!(server.entries().len(), 3);
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn an_interval_ending_in_a_multibyte_character_is_refused_and_logged() {
    let server = common::start(1000).await;
    for interval in ["1%C3%A9", "%C3%A9", "1%F0%9F%94%A5"] {
        let (status, problem) = get(
            &server,
            "ana",
            &format!("/v1/stats/histogram?purpose=p&interval={interval}"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{interval}");
        assert_eq!(problem["title"], "invalid `interval`");
    }
    still_serving(&server).await;
    let entries = server.entries();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0].params["interval"], "1é");
    assert_eq!(entries[0].status, 400);
}

#[tokio::test]
async fn head_takes_the_permission_of_get_and_unlisted_methods_are_refused() {
    let server = common::start(1000).await;
    let head = |who: &'static str, path: &'static str| {
        let request = http()
            .head(format!("{}{path}", server.base))
            .bearer_auth(&server.tokens[who]);
        async move { request.send().await.unwrap() }
    };
    let search = "/v1/search?q=fire&purpose=p";
    for who in ["olga", "eve"] {
        let res = head(who, search).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{who}");
    }
    let res = head("ana", search).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The auditor's HEAD on a post tells nothing either.
    assert_eq!(
        head("olga", "/v1/posts/whatever?purpose=p").await.status(),
        StatusCode::FORBIDDEN
    );

    let res = http()
        .delete(format!("{}/v1/search?q=fire&purpose=p", server.base))
        .bearer_auth(&server.tokens["adam"])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "{:?}",
        res.headers()
    );
    let entries = server.entries();
    let statuses: Vec<(String, u16)> = entries
        .iter()
        .map(|e| (e.method.clone(), e.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("HEAD".to_string(), 403),
            ("HEAD".to_string(), 403),
            ("HEAD".to_string(), 200),
            ("HEAD".to_string(), 403),
            ("DELETE".to_string(), 405),
        ]
    );
}

#[tokio::test]
async fn the_server_sees_posts_committed_by_another_writer() {
    let server = common::start(1000).await;
    let (_, before) = get(&server, "ana", "/v1/search?q=flood&purpose=p").await;
    assert_eq!(before["count"], 0);
    // As `vigie index` or `vigie replay --index` would, from another process: a handle of its
    // own on the same directory.
    let other = vigie_index::PostIndex::open(&server.data.path().join("index")).unwrap();
    let mut writer = other.writer().unwrap();
    writer
        .upsert(&scored("9", "Flood in the old town", 0.8))
        .unwrap();
    writer.commit(None).unwrap();
    drop(writer);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = get(&server, "ana", "/v1/search?q=flood&purpose=p").await;
        if body["count"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never saw the other commit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_query_string_or_body_over_the_limit_is_refused_and_logged() {
    let limits = ServeLimits {
        max_query_bytes: 1024,
        max_body_bytes: 4096,
        ..ServeLimits::default()
    };
    let server = common::start_limited(&posts(2), 1000, limits).await;
    let long = "a".repeat(2000);
    let (status, problem) = get(&server, "ana", &format!("/v1/search?purpose=p&q={long}")).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG, "{problem}");

    let res = http()
        .post(format!("{}/v1/search", server.base))
        .bearer_auth(&server.tokens["ana"])
        .json(&json!({"q": "x".repeat(10_000), "purpose": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    still_serving(&server).await;
    let entries = server.entries();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].status, 414);
    assert_eq!(entries[0].params["_query_bytes"], 2012);
    assert!(entries[0].params.get("q").is_none(), "not parsed, not kept");
    assert_eq!(entries[1].status, 413);
}

#[tokio::test]
async fn requests_without_a_token_are_capped_and_rate_limited_in_the_log() {
    let limits = ServeLimits {
        anonymous_per_second: 1,
        anonymous_burst: 4,
        ..ServeLimits::default()
    };
    let server = common::start_limited(&posts(2), 1000, limits).await;
    let junk = "z".repeat(5000);
    let mut statuses = Vec::new();
    for i in 0..20 {
        let res = http()
            .get(format!(
                "{}/v1/search?purpose={junk}&q=fire&p{i}=1&a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8",
                server.base
            ))
            .bearer_auth("vigie_not-a-token")
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        // A caller with a token is never limited.
        if i == 10 {
            still_serving(&server).await;
        }
    }
    assert_eq!(&statuses[..4], [401; 4]);
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 14,
        "{statuses:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = http()
        .get(format!("{}/v1/nowhere/{junk}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let entries = server.entries();
    let anonymous: Vec<_> = entries.iter().filter(|e| e.user.is_none()).collect();
    let refused = 20 - (anonymous.len() - 1) as u64;
    assert!(anonymous.len() <= 7, "{}", anonymous.len());
    for e in &anonymous {
        assert!(e.params.len() <= 8 + 2, "{:?}", e.params);
        assert!(e.endpoint.chars().count() <= 128);
        for (name, value) in &e.params {
            assert!(name.chars().count() <= 128);
            assert!(value.to_string().chars().count() <= 130, "{value}");
        }
        assert_eq!(e.params["_capped"], true);
        assert!(e.purpose.as_deref().unwrap_or("").chars().count() <= 128);
    }
    let last = anonymous.last().unwrap();
    assert_eq!(last.params["_refused_unlogged"], refused, "{last:?}");
    // The analyst's search in the middle was logged in full.
    assert!(entries.iter().any(|e| e.user.as_deref() == Some("ana")));
}

/// A raw TCP connection to the server.
fn connect(server: &common::Server) -> std::net::TcpStream {
    let address = server.base.trim_start_matches("http://");
    let stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let limits = ServeLimits {
        header_read_timeout: Duration::from_millis(500),
        ..ServeLimits::default()
    };
    let server = common::start_limited(&posts(1), 1000, limits).await;
    let started = Instant::now();
    let (silent, slow) = tokio::task::spawn_blocking({
        let (a, b) = (connect(&server), connect(&server));
        move || {
            let mut silent = a;
            let mut slow = b;
            slow.write_all(b"GET /v1/search?q=fire HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            let mut buf = Vec::new();
            // Both reads end (EOF, or a 408 and then EOF) well before the 10 s read timeout.
            let silent_read = silent.read_to_end(&mut buf).map(|_| buf.len());
            let mut buf = Vec::new();
            let slow_read = slow.read_to_end(&mut buf).map(|_| buf.len());
            (silent_read, slow_read)
        }
    })
    .await
    .unwrap();
    assert!(silent.is_ok() && slow.is_ok(), "{silent:?} {slow:?}");
    assert!(started.elapsed() < Duration::from_secs(8));
    still_serving(&server).await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let limits = ServeLimits {
        max_connections: 2,
        ..ServeLimits::default()
    };
    let server = common::start_limited(&posts(1), 1000, limits).await;
    let first = connect(&server);
    let second = connect(&server);
    // Give the server the time to accept both.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = http()
        .get(format!("{}/healthz", server.base))
        .timeout(Duration::from_millis(700))
        .send()
        .await;
    assert!(waiting.is_err(), "a third connection was served");
    drop(first);
    let res = http()
        .get(format!("{}/healthz", server.base))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    drop(second);
}
