//! A crisis replayed end to end into a situation: the first day of the 2013 Boston bombings
//! (CrisisLexT26, 368 posts in time order) through the real model and gazetteer with `vigie run`,
//! a watch zone around Boston made with `vigie watch add`, a real local webhook receiver, and a
//! real client of `GET /v1/alerts/stream`.

use crate::util::{root, Vigie};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigie_alerts::webhook;

/// The requests a receiver got: (alert id, signature, body).
type Received = Arc<Mutex<Vec<(String, String, Bytes)>>>;

/// A webhook receiver on 127.0.0.1 (its own runtime thread); returns its URL.
fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let seen = got.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/vigie-hook", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new().route(
                "/vigie-hook",
                axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                    let seen = seen.clone();
                    async move {
                        let h = |n: &str| {
                            headers
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string()
                        };
                        seen.lock().unwrap().push((
                            h(webhook::ALERT_ID_HEADER),
                            h(webhook::SIGNATURE_HEADER),
                            body,
                        ));
                        StatusCode::NO_CONTENT
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (url, got)
}

/// The first day of the Boston crisis, in time order, as a labelled JSONL file in `dir`.
fn boston_day_one(dir: &std::path::Path) -> std::path::PathBuf {
    let text =
        std::fs::read_to_string(root().join("fixtures/crisislex-t26/2013_Boston_bombings.jsonl"))
            .unwrap();
    let mut rows: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.sort_by(|a, b| a["created_at"].as_str().cmp(&b["created_at"].as_str()));
    rows.retain(|r| r["created_at"].as_str().unwrap() < "2013-04-16T00");
    assert_eq!(rows.len(), 368);
    let path = dir.join("boston-day-one.jsonl");
    let lines: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_crisis_is_one_main_incident_on_its_city_and_one_alert_per_incident() {
    let data = tempfile::tempdir().unwrap();
    let input = boston_day_one(data.path());
    let (url, got) = receiver();
    let token = crate::util::analyst(data.path(), "ana");
    // The watch is made before the stream is replayed: Copley Square, 15 km around.
    let out = Vigie::new(data.path())
        .args(["watch", "add", "Boston Marathon", "--user", "ana"])
        .args(["--near", "42.35,-71.08,15"])
        .args(["--purpose", "protection of the marathon finish line"])
        .args(["--webhook", &url])
        .ok();
    let mut printed = out.lines();
    let watch_id = printed.next().unwrap().trim().to_string();
    let secret = hex::decode(printed.next().unwrap().trim()).unwrap();
    assert!(watch_id.starts_with("w-"), "{out}");

    let server = Vigie::new(data.path())
        .args(["run", "--input"])
        .arg(&input)
        .args(["--listen", "127.0.0.1:0"])
        .env("VIGIE_ALERTS_POLL_MS", "100")
        .serve_within(Duration::from_secs(600));
    let base = &server.base;
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let token = token.clone();
        async move {
            let res = http.get(path).bearer_auth(token).send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };

    // One main incident, on Boston.
    let list = get(format!(
        "{base}/v1/incidents?purpose=situations%20test&limit=200"
    ))
    .await;
    let incidents = list["incidents"].as_array().unwrap();
    assert!(!incidents.is_empty());
    let main = incidents
        .iter()
        .max_by_key(|i| i["post_count"].as_u64().unwrap())
        .unwrap();
    let main_id = main["id"].as_str().unwrap().to_string();
    assert_eq!(main["place"]["name"], "Boston", "{main}");
    assert_eq!(main["place"]["country"], "US");
    let total: u64 = incidents
        .iter()
        .map(|i| i["post_count"].as_u64().unwrap())
        .sum();
    let main_count = main["post_count"].as_u64().unwrap();
    assert!(
        main_count * 2 >= total,
        "the main incident holds {main_count} of the {total} alert posts grouped"
    );

    // The watch fires: its webhook gets the main incident exactly once, signed.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let main_hooks = loop {
        let hooks: Vec<Value> = got
            .lock()
            .unwrap()
            .iter()
            .map(|(id, signature, body)| {
                let now = chrono::Utc::now().timestamp();
                assert!(
                    webhook::verify(&secret, signature, body, now, 300),
                    "a webhook that does not verify: {signature}"
                );
                let alert: Value = serde_json::from_slice(body).unwrap();
                assert_eq!(alert["id"], id.as_str());
                alert
            })
            .collect();
        let main_hooks: Vec<Value> = hooks
            .iter()
            .filter(|a| a["incident"]["id"] == main_id.as_str())
            .cloned()
            .collect();
        if !main_hooks.is_empty() || std::time::Instant::now() > deadline {
            break main_hooks;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(main_hooks.len(), 1, "{main_hooks:?}");
    assert_eq!(main_hooks[0]["watch"]["name"], "Boston Marathon");
    assert_eq!(main_hooks[0]["watch"]["id"], watch_id.as_str());
    // A few more scans: no incident is alerted twice.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let hooks = got.lock().unwrap().clone();
    let mut incident_ids: Vec<String> = hooks
        .iter()
        .map(|(_, _, body)| {
            let alert: Value = serde_json::from_slice(body).unwrap();
            alert["incident"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    let alerts = incident_ids.len();
    incident_ids.sort();
    incident_ids.dedup();
    assert_eq!(incident_ids.len(), alerts, "at most one alert per incident");

    // A client of the alert stream gets it too (from the start: `Last-Event-ID: 0`).
    let mut stream = http
        .get(format!("{base}/v1/alerts/stream?purpose=situations%20test"))
        .bearer_auth(&token)
        .header("last-event-id", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut text = String::new();
    let main_alert_id = main_hooks[0]["id"].as_str().unwrap().to_string();
    while !text.contains(&format!("\"id\":\"{main_alert_id}\"")) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("the stream sends the alerts")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: alert"), "{text}");
    drop(stream);

    // Both deliveries are in the access log, naming the watch.
    let log = std::fs::read_to_string(
        data.path()
            .join("access-log")
            .join(vigie_logs::access_log::FILE_NAME),
    )
    .unwrap();
    let named: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&main_id) && l.contains(&watch_id))
        .collect();
    assert!(
        named.iter().any(|l| l.contains("webhook http://127.0.0.1")),
        "no webhook entry: {named:?}"
    );
    assert!(
        named.iter().any(|l| l.contains("/v1/alerts/stream")),
        "no stream entry: {named:?}"
    );
    server.stop();
}
