//! Watches and alerts over real HTTP: an analyst's own watches, webhooks only to allowed
//! receivers, the alert stream (server-sent events) fed by a real dispatcher, its access-log
//! entries, resuming with `Last-Event-ID`, stream limits and shutdown.

use crate::common;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use vigie_alerts::{DispatchConfig, Dispatcher, Owners};
use vigie_record::Envelope;

/// A fire post `n` minutes after 08:00, in `city`.
fn fire(n: u32, text: &str, city: (&str, f64, f64)) -> Envelope {
    common::fire(n, n.into(), text, city, 0.9)
}

const LYON: (&str, f64, f64) = ("Lyon", 45.748, 4.847);

async fn call(
    server: &common::Server,
    user: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(&server.tokens[user]);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn watch_body(name: &str) -> Value {
    json!({"name": name, "purpose": "protection of Part-Dieu station", "near": "45.76,4.86,10"})
}

fn dispatcher(server: &common::Server) -> Dispatcher {
    let users =
        vigie_api::UserStore::open(&server.data.path().join(vigie_api::users::USERS_FILE)).unwrap();
    let owners: Owners = Arc::new(move |name: &str| {
        users
            .by_name(name)
            .filter(|c| c.role.allows(vigie_api::users::Permission::Watches))
            .map(|c| c.role.to_string())
    });
    Dispatcher::new(
        server.hub.clone(),
        server.index.clone(),
        server.log.clone(),
        owners,
        server.data.path(),
        DispatchConfig::default(),
    )
    .unwrap()
}

fn index(server: &common::Server, posts: &[Envelope]) {
    let mut w = server.index.writer().unwrap();
    for p in posts {
        w.upsert(p).unwrap();
    }
    w.commit(None).unwrap();
}

/// Reads the stream until a whole event (blank line) has arrived; its `id` and parsed `data`.
async fn next_event(res: &mut reqwest::Response, buffer: &mut String) -> Option<(String, Value)> {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                event
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
            };
            if field("event:").as_deref() != Some("alert") {
                continue; // a keep-alive comment
            }
            let data = serde_json::from_str(&field("data:")?).unwrap();
            return Some((field("id:")?, data));
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), res.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()?;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn stream(server: &common::Server, user: &str, last: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .get(format!(
            "{}/v1/alerts/stream?purpose=watch%20duty",
            server.base
        ))
        .bearer_auth(&server.tokens[user]);
    if let Some(l) = last {
        req = req.header("last-event-id", l);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn analysts_keep_their_own_watches_and_no_one_else_sees_them() {
    let mut server = common::start(100).await;
    let (status, made) = call(
        &server,
        "ana",
        reqwest::Method::POST,
        "/v1/watches",
        Some(watch_body("Part-Dieu")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["watch"]["id"].as_str().unwrap().to_string();
    assert_eq!(made["watch"]["near"], "45.76,4.86,10");
    assert_eq!(made["secret"], Value::Null, "no webhook, no secret");
    // With an allowed webhook: its secret, shown this once.
    let mut hooked = watch_body("Perrache");
    hooked["webhook"] = json!("http://127.0.0.1:9/hook");
    let (status, made_hook) = call(
        &server,
        "ana",
        reqwest::Method::POST,
        "/v1/watches",
        Some(hooked),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made_hook}");
    let secret = made_hook["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64);
    let (status, list) = call(
        &server,
        "ana",
        reqwest::Method::GET,
        "/v1/watches?purpose=review",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["watches"].as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains(&secret),
        "a secret is never shown again"
    );
    // Another analyst sees none of them, and cannot remove them: 404, not 403.
    let (_, theirs) = call(
        &server,
        "bea",
        reqwest::Method::GET,
        "/v1/watches?purpose=review",
        None,
    )
    .await;
    assert_eq!(theirs["watches"], json!([]));
    let (status, _) = call(
        &server,
        "bea",
        reqwest::Method::DELETE,
        &format!("/v1/watches/{id}?purpose=cleanup"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Auditors and experimenters may not keep watches.
    for user in ["olga", "eve", "adam"] {
        let (status, _) = call(
            &server,
            user,
            reqwest::Method::GET,
            "/v1/watches?purpose=x",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{user}");
    }
    let (status, _) = call(
        &server,
        "ana",
        reqwest::Method::DELETE,
        &format!("/v1/watches/{id}?purpose=cleanup"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = call(
        &server,
        "ana",
        reqwest::Method::GET,
        "/v1/watches?purpose=review",
        None,
    )
    .await;
    assert_eq!(list["watches"].as_array().unwrap().len(), 1);
    // Each of these was logged with its purpose, and the made watch is named.
    let entries = server.entries();
    let made_entry = entries
        .iter()
        .find(|e| e.method == "POST" && e.endpoint == "/v1/watches" && e.status == 201)
        .unwrap();
    assert_eq!(
        made_entry.purpose.as_deref(),
        Some("protection of Part-Dieu station")
    );
    assert_eq!(made_entry.params["watch"], id.as_str());
    server.stop().await;
}

#[tokio::test]
async fn bad_watches_and_unallowed_webhooks_are_refused_with_the_reason() {
    let mut server = common::start(100).await;
    let post = |body: Value| {
        let server = &server;
        async move {
            call(
                server,
                "ana",
                reqwest::Method::POST,
                "/v1/watches",
                Some(body),
            )
            .await
        }
    };
    let with = |key: &str, value: Value| {
        let mut b = watch_body("w");
        b[key] = value;
        b
    };
    for (body, says) in [
        (
            with("webhook", json!("http://203.0.113.9/steal")),
            "allowed",
        ),
        (
            with("webhook", json!("http://127.0.0.1.evil.example/")),
            "allowed",
        ),
        (with("near", json!("45.76,4.86")), "near"),
        (with("near", json!("91,0,10")), "near"),
        (with("category", json!("weather")), "category"),
        (with("q", json!("(((")), "q"),
        (with("min_score", json!(2)), "min_score"),
        (with("purpose", json!("  ")), "purpose"),
        (with("name", json!("")), "name"),
        (with("colour", json!("red")), "colour"),
    ] {
        let (status, problem) = post(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {problem}");
        let text = problem.to_string();
        assert!(text.contains(says), "{body}: {text}");
    }
    let (status, _) = post(json!("not an object")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Nothing was made.
    assert!(server.hub.watches().list().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn an_alert_reaches_its_owners_stream_logged_and_again_after_a_reconnect() {
    let mut server = common::start(100).await;
    let (status, made) = call(
        &server,
        "ana",
        reqwest::Method::POST,
        "/v1/watches",
        Some(watch_body("Part-Dieu")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let watch = made["watch"]["id"].as_str().unwrap().to_string();
    let mut ana = stream(&server, "ana", None).await;
    assert_eq!(ana.status(), StatusCode::OK);
    assert_eq!(
        ana.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut bea = stream(&server, "bea", None).await;
    assert_eq!(bea.status(), StatusCode::OK);
    let mut d = dispatcher(&server);
    let post = fire(10, "Incendie dans un entrepôt à Lyon", LYON);
    let post_id = post.post.id.to_string();
    index(&server, &[post]);
    let made = d.scan().await.unwrap();
    assert_eq!(made.len(), 1);
    let mut buffer = String::new();
    let (id, alert) = next_event(&mut ana, &mut buffer).await.unwrap();
    assert_eq!(id, made[0].seq.to_string());
    assert_eq!(alert["watch"]["name"], "Part-Dieu");
    assert_eq!(alert["watch"]["id"], watch.as_str());
    assert_eq!(alert["incident"]["place"]["name"], "Lyon");
    assert_eq!(alert["matched_posts"], json!([post_id]));
    // Bea has no watch there: her stream stays silent.
    let silent = tokio::time::timeout(std::time::Duration::from_millis(300), bea.chunk()).await;
    assert!(
        silent.is_err()
            || silent
                .unwrap()
                .unwrap()
                .is_none_or(|c| !String::from_utf8_lossy(&c).contains("alert")),
        "bea got ana's alert"
    );
    // The delivery is in the access log: ana, the stream's purpose, the watch, the post shown.
    let delivered: Vec<_> = server
        .entries()
        .into_iter()
        .filter(|e| e.endpoint == "/v1/alerts/stream" && e.params.contains_key("alert"))
        .collect();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].user.as_deref(), Some("ana"));
    assert_eq!(delivered[0].purpose.as_deref(), Some("watch duty"));
    assert_eq!(delivered[0].params["watch_name"], "Part-Dieu");
    assert_eq!(delivered[0].posts, std::slice::from_ref(&post_id));
    // The incident grows: no second alert.
    index(&server, &[fire(11, "Incendie entrepôt Lyon, fumée", LYON)]);
    assert!(d.scan().await.unwrap().is_empty());
    // A client that reconnects from before it gets it again (and that is logged again).
    drop(ana);
    let mut again = stream(&server, "ana", Some("0")).await;
    let mut buffer = String::new();
    let (id_again, _) = next_event(&mut again, &mut buffer).await.unwrap();
    assert_eq!(id_again, id);
    let logged = server
        .entries()
        .into_iter()
        .filter(|e| e.endpoint == "/v1/alerts/stream" && e.params.contains_key("alert"))
        .count();
    assert_eq!(logged, 2);
    let bad = stream(&server, "ana", Some("yesterday")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // The server stops while streams are open: they end, and the stop does not hang.
    tokio::time::timeout(std::time::Duration::from_secs(10), server.stop())
        .await
        .expect("the server stops with streams open");
}

#[tokio::test]
async fn a_user_may_hold_only_a_few_streams_and_a_purpose_is_required() {
    let mut server = common::start(100).await;
    let no_purpose = reqwest::Client::new()
        .get(format!("{}/v1/alerts/stream", server.base))
        .bearer_auth(&server.tokens["ana"])
        .send()
        .await
        .unwrap();
    assert_eq!(no_purpose.status(), StatusCode::BAD_REQUEST);
    let mut open = Vec::new();
    for _ in 0..vigie_api::watches::STREAMS_PER_USER {
        let s = stream(&server, "ana", None).await;
        assert_eq!(s.status(), StatusCode::OK);
        open.push(s);
    }
    assert_eq!(
        stream(&server, "ana", None).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another user still may.
    assert_eq!(stream(&server, "bea", None).await.status(), StatusCode::OK);
    // One closed: a slot is free again.
    drop(open.pop());
    let mut freed = false;
    for _ in 0..50 {
        let s = stream(&server, "ana", None).await;
        if s.status() == StatusCode::OK {
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(freed, "a closed stream gives its slot back");
    tokio::time::timeout(std::time::Duration::from_secs(10), server.stop())
        .await
        .unwrap();
}
