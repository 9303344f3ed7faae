//! The Jetstream source against a local WebSocket server that speaks Jetstream's event shapes
//! and replays from `?cursor=TIME_US`, as Jetstream does.

use crate::common;

use common::Collect;
use futures_util::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;
use vigie_ingest::driver::{self, RunOptions};
use vigie_ingest::jetstream::{Jetstream, JetstreamConfig};
use vigie_ingest::state::StateStore;
use vigie_ingest::{IngestError, Item};

const ALICE: &str = "did:plc:eygmaihciaxprqvxpfvl6flk";
const BOB: &str = "did:plc:3ypijopijnzoc7kia4u7oncu";
const CAROL: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const T0: i64 = 1_795_766_400_000_000; // 2026-11-27T08:00:00Z in microseconds

fn create(did: &str, time_us: i64, rkey: &str, record: serde_json::Value) -> String {
    serde_json::json!({
        "did": did,
        "time_us": time_us,
        "kind": "commit",
        "commit": {
            "rev": "3l3qo2vutsw2b",
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "record": record,
            "cid": "bafyreidwaivazkwu67xztlmuobx35hs2lnfh3kolmgfmucldvhd3sgzcqi"
        }
    })
    .to_string()
}

fn post(text: &str, langs: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "$type": "app.bsky.feed.post",
        "createdAt": "2026-11-27T07:59:58.120Z",
        "langs": langs,
        "text": text
    })
}

/// The stream, in `time_us` order: posts, an identity event, a like, a malformed post, a
/// deletion; two events share a microsecond.
fn events() -> Vec<(i64, String)> {
    let mut mention = post("Smoke over Gerland, stay inside @bob.bsky.social", &["en"]);
    mention["facets"] = serde_json::json!([{
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": 32, "byteEnd": 48},
        "features": [{"$type": "app.bsky.richtext.facet#mention", "did": BOB}]
    }]);
    vec![
        (T0 + 1, create(ALICE, T0 + 1, "3n3av5q5hxum4", mention)),
        (
            T0 + 2,
            serde_json::json!({
                "did": ALICE, "time_us": T0 + 2, "kind": "identity",
                "identity": {"did": ALICE, "handle": "alice.bsky.social", "seq": 1409752997, "time": "2026-11-27T08:00:00.000Z"}
            })
            .to_string(),
        ),
        (
            T0 + 3,
            create(
                BOB,
                T0 + 3,
                "3n3av5q5hxum5",
                post("Les pompiers évacuent toute la rue, la fumée est très épaisse près du port", &[]),
            ),
        ),
        (
            T0 + 3,
            create(CAROL, T0 + 3, "3n3av5q5hxum6", post("Tram lines T1 and T2 stopped", &["en-GB"])),
        ),
        (
            T0 + 4,
            serde_json::json!({
                "did": CAROL, "time_us": T0 + 4, "kind": "commit",
                "commit": {"rev": "3l3qo2vutsw2c", "operation": "create", "collection": "app.bsky.feed.like",
                           "rkey": "3n3av5q5hxum7", "record": {"$type": "app.bsky.feed.like", "createdAt": "2026-11-27T08:00:00Z",
                           "subject": {"cid": "bafy", "uri": "at://x/app.bsky.feed.post/y"}}, "cid": "bafy"}
            })
            .to_string(),
        ),
        (
            T0 + 5,
            create(BOB, T0 + 5, "3n3av5q5hxum8", serde_json::json!({"$type": "app.bsky.feed.post", "langs": ["en"]})),
        ),
        (
            T0 + 6,
            serde_json::json!({
                "did": ALICE, "time_us": T0 + 6, "kind": "commit",
                "commit": {"rev": "3l3qo2vutsw2d", "operation": "delete", "collection": "app.bsky.feed.post", "rkey": "3n3av5q5hxum4"}
            })
            .to_string(),
        ),
        (
            T0 + 7,
            create(CAROL, T0 + 7, "3n3av5q5hxum9", post("Road reopened", &["en"])),
        ),
    ]
}

/// A Jetstream server: replays from the request's cursor (inclusive), else sends everything
/// (as if it all happened after the client connected), then idles. Records request URIs.
async fn jetstream_server(events: Vec<(i64, String)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let uris = Arc::new(Mutex::new(Vec::new()));
    let seen = uris.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let events = events.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let uri = Arc::new(Mutex::new(String::new()));
                let u = uri.clone();
                // tungstenite's callback signature, not ours.
                #[allow(clippy::result_large_err)]
                let callback = move |req: &Request, resp: Response| {
                    *u.lock().unwrap() = req.uri().to_string();
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                let uri = uri.lock().unwrap().clone();
                seen.lock().unwrap().push(uri.clone());
                let cursor: i64 = uri
                    .split(['?', '&'])
                    .find_map(|p| p.strip_prefix("cursor="))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                for (t, e) in events.iter().filter(|(t, _)| *t >= cursor) {
                    let _ = t;
                    if ws.send(Message::text(e.clone())).await.is_err() {
                        return;
                    }
                }
                // Idle until the client goes.
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    (format!("ws://{addr}/subscribe"), uris)
}

fn source(url: &str) -> Jetstream {
    Jetstream::new(
        JetstreamConfig {
            batch_size: 3,
            batch_wait: Duration::from_millis(300),
            ..JetstreamConfig::new("bsky", url)
        },
        common::pseudonymiser(),
    )
}

#[tokio::test]
async fn a_restart_resumes_from_the_cursor_without_losing_or_repeating_events() {
    let (url, uris) = jetstream_server(events()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let options = RunOptions {
        stop_when_caught_up: true,
        ..Default::default()
    };
    // Downstream accepts one batch (3 events: two posts and an identity event), then fails.
    let mut crashing = Collect {
        fail_after: Some(1),
        ..Default::default()
    };
    let e = driver::run(&mut source(&url), &store, &mut crashing, options.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, IngestError::Sink { .. }), "{e}");
    let p = common::pseudonymiser();
    let at = |did: &str, rkey: &str| {
        format!(
            "at://{}/app.bsky.feed.post/{rkey}",
            p.pseudonym("bluesky", did)
        )
    };
    assert_eq!(
        crashing.native_ids(),
        vec![at(ALICE, "3n3av5q5hxum4"), at(BOB, "3n3av5q5hxum5")]
    );
    let state = store.load("bsky", "jetstream").unwrap();
    assert_eq!(state.cursor.as_ref().unwrap().0["time_us"], T0 + 3);

    // A new process: reconnects at the committed microsecond, which two events share; the one
    // already delivered is not delivered again, the other is.
    let mut after = Collect::default();
    let report = driver::run(&mut source(&url), &store, &mut after, options)
        .await
        .unwrap();
    assert_eq!(
        after.native_ids(),
        vec![
            at(CAROL, "3n3av5q5hxum6"),
            format!("deleted:{}", at(ALICE, "3n3av5q5hxum4")),
            at(CAROL, "3n3av5q5hxum9"),
        ]
    );
    assert_eq!(report.skipped, 1, "the post without text");
    let uris = uris.lock().unwrap();
    assert_eq!(uris.len(), 2);
    assert_eq!(uris[0], "/subscribe?wantedCollections=app.bsky.feed.post");
    assert_eq!(
        uris[1],
        format!(
            "/subscribe?wantedCollections=app.bsky.feed.post&cursor={}",
            T0 + 3
        )
    );
    let state = store.load("bsky", "jetstream").unwrap();
    assert_eq!(state.cursor.as_ref().unwrap().0["time_us"], T0 + 7);
    assert_eq!((state.posts, state.deletions, state.skipped), (4, 1, 1));

    // The posts themselves: pseudonymised DIDs and mentions, languages given or detected.
    let first = crashing.items();
    let Item::Post(smoke) = &first[0] else {
        panic!("a post")
    };
    let alice = p.pseudonym("bluesky", ALICE);
    assert_eq!(smoke.post.author, alice);
    assert_eq!(
        smoke.post.text,
        format!(
            "Smoke over Gerland, stay inside @{}",
            p.pseudonym("bluesky", BOB)
        )
    );
    assert_eq!(
        smoke.post.url.as_deref(),
        Some(format!("https://bsky.app/profile/{alice}/post/3n3av5q5hxum4").as_str())
    );
    assert_eq!(
        smoke.post.created_at.to_rfc3339(),
        "2026-11-27T07:59:58.120+00:00"
    );
    assert_eq!(smoke.post.lang.as_deref(), Some("en"));
    assert_eq!(smoke.post.source, "bluesky");
    let json = String::from_utf8(smoke.to_json()).unwrap();
    assert!(
        !json.contains(ALICE) && !json.contains(BOB) && !json.contains("bob.bsky"),
        "{json}"
    );
    let Item::Post(fr) = &first[1] else {
        panic!("a post")
    };
    assert_eq!(fr.post.lang.as_deref(), Some("fr"), "detected");
    let later = after.items();
    let Item::Post(tram) = &later[0] else {
        panic!("a post")
    };
    assert_eq!(tram.post.lang.as_deref(), Some("en"), "en-GB reduced");
    let Item::Delete(gone) = &later[1] else {
        panic!("a tombstone")
    };
    assert_eq!(
        gone.id, smoke.post.id,
        "the tombstone names the deleted post"
    );
    assert_eq!(gone.deleted_at.timestamp_micros(), T0 + 6);
}

#[tokio::test]
async fn an_unreachable_stream_is_an_error_naming_source_and_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("ws://{addr}/subscribe");
    let e = vigie_ingest::Source::poll(&mut source(&url), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "bsky: {url}?wantedCollections=app.bsky.feed.post: cannot connect"
        )),
        "{e}"
    );
}

/// A hostile server: each connection runs the next of `scripts` (the last one repeats) on
/// the accepted socket; returns the URL and the number of connections.
async fn hostile_server<F, Fut>(script: F) -> (String, Arc<Mutex<usize>>)
where
    F: Fn(usize, tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(Mutex::new(0usize));
    let seen = count.clone();
    let script = Arc::new(script);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let n = {
                let mut c = seen.lock().unwrap();
                *c += 1;
                *c - 1
            };
            tokio::spawn(script(n, stream));
        }
    });
    (format!("ws://{addr}/subscribe"), count)
}

fn guarded(url: &str) -> Jetstream {
    Jetstream::new(
        JetstreamConfig {
            batch_size: 3,
            batch_wait: Duration::from_millis(200),
            max_message_bytes: 64 * 1024,
            connect_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_millis(600),
            ..JetstreamConfig::new("bsky", url)
        },
        common::pseudonymiser(),
    )
}

fn one_event() -> String {
    create(
        ALICE,
        T0 + 1,
        "3n3av5q5hxum4",
        post("Road reopened", &["en"]),
    )
}

#[tokio::test]
async fn a_frame_larger_than_max_message_bytes_is_an_error_and_the_stream_reconnects() {
    let (url, connections) = hostile_server(|n, stream| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        match n {
            // 2 MiB of valid JSON text: a post, but far past the limit.
            0 => {
                let huge = create(ALICE, T0, "3n3huge", post(&"x".repeat(2 << 20), &["en"]));
                let _ = ws.send(Message::text(huge)).await;
            }
            // A frame header announcing 1 GiB, and a trickle of it.
            1 => {
                use tokio::io::AsyncWriteExt;
                let raw = ws.get_mut();
                let mut header = vec![0x81u8, 127];
                header.extend_from_slice(&(1u64 << 30).to_be_bytes());
                let _ = raw.write_all(&header).await;
                let _ = raw.write_all(&[b'x'; 1024]).await;
            }
            _ => {
                let _ = ws.send(Message::text(one_event())).await;
            }
        }
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let mut src = guarded(&url);
    for attempt in 0..2 {
        let e = tokio::time::timeout(
            Duration::from_secs(10),
            vigie_ingest::Source::poll(&mut src, None),
        )
        .await
        .expect("no hang")
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("bsky: ws://") && e.contains("too long"),
            "attempt {attempt}: {e}"
        );
    }
    let batch = vigie_ingest::Source::poll(&mut src, None).await.unwrap();
    assert_eq!(batch.items.len(), 1, "reconnected and read the next event");
    assert_eq!(*connections.lock().unwrap(), 3);
}

#[tokio::test]
async fn a_server_that_never_completes_the_handshake_times_out() {
    let (url, _) = hostile_server(|_, stream| async move {
        // Accept, read nothing, answer nothing, for a minute.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(stream);
    })
    .await;
    let started = std::time::Instant::now();
    let e = tokio::time::timeout(
        Duration::from_secs(10),
        vigie_ingest::Source::poll(&mut guarded(&url), None),
    )
    .await
    .expect("the handshake must time out, not hang")
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("timed out") && e.contains("connect_timeout"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_stream_silent_past_idle_timeout_is_dropped_and_reopened() {
    let (url, connections) = hostile_server(|_, stream| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        let _ = ws.send(Message::text(one_event())).await;
        // Then silence: no event, no ping, the socket open.
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let options = RunOptions {
        deadline: Some(tokio::time::Instant::now() + Duration::from_millis(2_500)),
        error_backoff_base: Duration::from_millis(10),
        error_backoff_max: Duration::from_millis(50),
        ..Default::default()
    };
    let report = driver::run(&mut guarded(&url), &store, &mut Collect::default(), options)
        .await
        .unwrap();
    assert!(*connections.lock().unwrap() >= 2, "{report:?}");
    assert!(report.failures >= 1, "{report:?}");
    let state = store.load("bsky", "jetstream").unwrap();
    let error = state.last_error.unwrap_or_default();
    assert!(
        error.contains("idle_timeout")
            || state.gaps.iter().any(|g| g.detail.contains("idle_timeout")),
        "{error} {:?}",
        state.gaps
    );
}
