//! The Mastodon streaming source against a local instance that speaks the real streaming API:
//! server-sent events `update` (a Status JSON), `status.update`, `delete` (a status id), `:thump`
//! heartbeats, streams that close, and the REST timeline used to backfill a reconnection.
// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::Collect;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigie_ingest::driver::{self, RunOptions};
use vigie_ingest::mastodon::{Mastodon, MastodonConfig};
use vigie_ingest::mastodon_stream::{MastodonStream, MastodonStreamConfig};
use vigie_ingest::state::{GapKind, StateStore};
use vigie_ingest::{Item, Source};

use common::mastodon::status_id;

/// A status by alice about the Saône, as the streaming API's `update` payload and the REST
/// timelines carry it.
fn status(n: u64, visibility: &str) -> String {
    let content = format!("<p>Crue de la Saône, message {n}, <a href=\"https://mamot.fr/tags/inondation\" class=\"mention hashtag\">#<span>inondation</span></a></p>");
    common::mastodon::status(n, "alice", &content, Some("fr"), visibility).to_string()
}

/// One step of a scripted stream: wait, then send these bytes.
type Step = (u64, String);
/// The steps of one connection, and whether it then closes.
type Script = (Vec<Step>, bool);
/// The path and query of one connection, and its headers.
type Connection = (String, HashMap<String, String>);

fn update(n: u64) -> Step {
    (
        20,
        format!("event: update\ndata: {}\n\n", status(n, "public")),
    )
}

fn delete(n: u64) -> Step {
    (20, format!("event: delete\ndata: {}\n\n", status_id(n)))
}

fn edited(n: u64) -> String {
    status(n, "public").replace(&format!("message {n}"), &format!("message {n} (édité)"))
}

fn thump(after_ms: u64) -> Step {
    (after_ms, ":thump\n".into())
}

/// A local instance: one script per stream connection (the last one then stays open with
/// heartbeats, or closes when `close` is set), and a REST timeline.
#[derive(Clone, Default)]
struct Instance {
    scripts: Arc<Mutex<Vec<Script>>>,
    /// `(path?query, headers)` of each stream connection.
    connections: Arc<Mutex<Vec<Connection>>>,
    /// Statuses of the REST timeline (ascending ids).
    timeline: Arc<Mutex<Vec<(u64, String)>>>,
    /// `min_id`s asked of the REST timeline.
    rest_min_ids: Arc<Mutex<Vec<Option<String>>>>,
}

impl Instance {
    fn script(&self, steps: Vec<Step>, close: bool) {
        self.scripts.lock().unwrap().push((steps, close));
    }

    fn publish(&self, range: std::ops::RangeInclusive<u64>) {
        let mut t = self.timeline.lock().unwrap();
        for n in range {
            t.push((status_id(n), status(n, "public")));
        }
    }

    async fn serve(&self) -> String {
        async fn stream(State(inst): State<Instance>, request: Request) -> Response {
            let target = request
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let headers = request
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            let (steps, close) = {
                let mut conns = inst.connections.lock().unwrap();
                conns.push((target, headers));
                let scripts = inst.scripts.lock().unwrap();
                scripts
                    .get(conns.len() - 1)
                    .cloned()
                    .unwrap_or((Vec::new(), false))
            };
            let mut steps: Vec<Step> = std::iter::once((0, ":)\n".to_string()))
                .chain(steps)
                .collect();
            if !close {
                steps.extend((0..200).map(|_| thump(100)));
            }
            let body = futures_util::stream::iter(steps).then(|(wait, bytes)| async move {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                Ok::<_, std::convert::Infallible>(bytes)
            });
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/event-stream"),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                Body::from_stream(body),
            )
                .into_response()
        }
        async fn timeline(
            State(inst): State<Instance>,
            Query(q): Query<HashMap<String, String>>,
        ) -> Response {
            inst.rest_min_ids
                .lock()
                .unwrap()
                .push(q.get("min_id").cloned());
            let min: u64 = q.get("min_id").and_then(|m| m.parse().ok()).unwrap_or(0);
            let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
            let mut page: Vec<String> = inst
                .timeline
                .lock()
                .unwrap()
                .iter()
                .filter(|(id, _)| *id > min)
                .take(limit)
                .map(|(_, raw)| raw.clone())
                .collect();
            page.reverse();
            (
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                format!("[{}]", page.join(",")),
            )
                .into_response()
        }
        let router = Router::new()
            .route("/api/v1/streaming/public", get(stream))
            .route("/api/v1/streaming/public/local", get(stream))
            .route("/api/v1/streaming/hashtag", get(stream))
            .route("/api/v1/streaming/hashtag/local", get(stream))
            .route("/api/v1/timelines/public", get(timeline))
            .route("/api/v1/timelines/tag/{tag}", get(timeline))
            .with_state(self.clone());
        common::serve(router).await
    }
}

fn config(base: &str) -> MastodonStreamConfig {
    MastodonStreamConfig {
        name: "mamot-live".into(),
        instance: base.into(),
        streaming_url: None,
        hashtag: None,
        local: false,
        backfill: true,
        remember: 100,
        batch_size: 200,
        batch_wait: Duration::from_millis(300),
        token_env: None,
        max_event_bytes: 64 * 1024,
    }
}

/// The tests' client, with a read timeout ten heartbeats long (the machine may be busy).
fn client() -> vigie_ingest::http::HttpClient {
    vigie_ingest::http::HttpClient::new(vigie_ingest::http::HttpConfig {
        read_timeout: Duration::from_millis(1_000),
        ..common::fast_http()
    })
    .unwrap()
}

fn source(config: MastodonStreamConfig) -> MastodonStream {
    MastodonStream::new(config, client(), common::pseudonymiser()).unwrap()
}

/// Runs the live source (backfill off) against `inst` for `ms` ms: what it delivered, and its
/// state store (in the temporary directory returned with it).
async fn run_live(inst: &Instance, ms: u64) -> (Collect, StateStore, tempfile::TempDir) {
    let base = inst.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let mut sink = Collect::default();
    let mut src = source(MastodonStreamConfig {
        backfill: false,
        ..config(&base)
    });
    driver::run(&mut src, &store, &mut sink, for_(ms))
        .await
        .unwrap();
    (sink, store, dir)
}

fn for_(ms: u64) -> RunOptions {
    RunOptions {
        deadline: Some(tokio::time::Instant::now() + Duration::from_millis(ms)),
        error_backoff_base: Duration::from_millis(10),
        error_backoff_max: Duration::from_millis(50),
        ..Default::default()
    }
}

fn posts(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| match i {
            Item::Post(e) => format!("post {}", e.post.native_id),
            Item::Delete(t) => format!("delete {}", t.native_id),
        })
        .collect()
}

#[tokio::test]
async fn updates_heartbeats_a_malformed_event_and_deletes() {
    let inst = Instance::default();
    let mut steps = vec![update(1)];
    // 1.5 s of heartbeats only: longer than the 1 s read timeout, which they keep off.
    steps.extend((0..15).map(|_| thump(100)));
    steps.extend([
        update(2),
        // A second `update` of status 2 is a duplicate; a `status.update` is an edit.
        update(2),
        (20, format!("event: status.update\ndata: {}\n\n", edited(2))),
        (
            20,
            "event: update\ndata: {\"id\": \"12\", \"content\": \n\n".to_string(),
        ),
        (
            20,
            "event: notification\ndata: {\"id\": \"5\"}\n\n".to_string(),
        ),
        (
            20,
            "event: update\ndata: ".to_string() + &status(3, "direct") + "\n\n",
        ),
        delete(1),
        delete(9),
    ]);
    inst.script(steps, false);
    let base = inst.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let mut sink = Collect::default();
    let mut src = source(config(&base));
    driver::run(&mut src, &store, &mut sink, for_(3_000))
        .await
        .unwrap();

    let items = sink.items();
    let stream_url = format!("{base}/api/v1/streaming/public");
    assert_eq!(inst.connections.lock().unwrap().len(), 1, "reconnected");
    assert_eq!(items.len(), 4, "{:?}", posts(&items));
    let (Item::Post(p1), Item::Post(p2), Item::Post(edit), Item::Delete(t)) =
        (&items[0], &items[1], &items[2], &items[3])
    else {
        panic!("{:?}", posts(&items));
    };
    assert_eq!(edit.post.id, p2.post.id);
    assert!(edit.post.text.contains("(édité)"), "{}", edit.post.text);
    assert_eq!(
        t.id, p1.post.id,
        "the tombstone must carry the post's Vigie id"
    );
    assert_eq!(t.native_id, p1.post.native_id);
    assert_eq!(t.source, "mastodon");
    assert!(
        !p1.post.native_id.contains("alice"),
        "{}",
        p1.post.native_id
    );
    assert!(
        p2.post.text.starts_with("Crue de la Saône, message 2"),
        "{}",
        p2.post.text
    );
    assert_eq!(p2.post.lang.as_deref(), Some("fr"));
    assert_eq!(p2.provenance.fetch_url, stream_url);
    assert_eq!(p2.provenance.ingestor.name, "mastodon-stream");
    assert_eq!(
        p2.provenance.content_sha256,
        vigie_record::content_sha256(status(2, "public").as_bytes())
    );
    assert_eq!(t.provenance.fetch_url, stream_url);
    assert_eq!(
        t.provenance.content_sha256,
        vigie_record::content_sha256(status_id(1).to_string().as_bytes())
    );

    let state = store.load("mamot-live", "mastodon-stream").unwrap();
    // The truncated update, the direct status, the delete of a status never seen.
    assert_eq!(state.skipped, 3);
    assert_eq!((state.posts, state.deletions), (3, 1));
    assert!(state.gaps.is_empty(), "{:?}", state.gaps);

    // The same status read by the REST source gets the same Vigie id.
    inst.publish(1..=1);
    let mut rest = Mastodon::new(
        MastodonConfig {
            name: "mamot-rest".into(),
            instance: base.clone(),
            hashtag: None,
            local: false,
            limit: 40,
            poll_interval: Duration::from_secs(60),
        },
        common::client(),
        common::pseudonymiser(),
    )
    .unwrap();
    let batch = rest.poll(None).await.unwrap();
    assert_eq!(batch.items.len(), 1);
    assert_eq!(batch.items[0].id(), &p1.post.id);
}

#[tokio::test]
async fn a_dropped_stream_reconnects_and_records_the_gap() {
    let inst = Instance::default();
    inst.script(vec![update(1), update(2)], true);
    inst.script(vec![update(4), update(5)], false);
    let (sink, store, _dir) = run_live(&inst, 1_500).await;
    let got = posts(&sink.items());
    assert_eq!(got.len(), 4, "{got:?}");
    for (g, n) in got.iter().zip([1, 2, 4, 5]) {
        let tail = format!("/statuses/{}", status_id(n));
        assert!(g.starts_with("post ") && g.ends_with(&tail), "{got:?}");
    }
    let state = store.load("mamot-live", "mastodon-stream").unwrap();
    assert_eq!(inst.connections.lock().unwrap().len(), 2, "{:?}", state);
    assert!(
        inst.rest_min_ids.lock().unwrap().is_empty(),
        "backfill is off"
    );
    let state = store.load("mamot-live", "mastodon-stream").unwrap();
    let gaps: Vec<_> = state
        .gaps
        .iter()
        .filter(|g| g.kind == GapKind::Outage)
        .collect();
    assert_eq!(gaps.len(), 1, "{:?}", state.gaps);
    assert!(gaps[0].to.is_some_and(|to| to >= gaps[0].from));
    assert!(
        gaps[0].detail.contains("cannot resume"),
        "{}",
        gaps[0].detail
    );
}

#[tokio::test]
async fn a_restart_backfills_the_gap_without_duplicates_and_honours_old_deletes() {
    let inst = Instance::default();
    // First run: statuses 1 and 2, then the stream closes.
    inst.script(vec![update(1), update(2)], true);
    // After the restart: 3 and 4 were published meanwhile (4 also arrives live, once the
    // stream is open again), then 5, then 1 is deleted.
    inst.script(vec![update(4), update(5), delete(1)], false);
    inst.publish(1..=4);
    let base = inst.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let mut sink = Collect::default();
    let one_poll = RunOptions {
        max_polls: Some(1),
        ..for_(5_000)
    };
    let mut first = source(config(&base));
    driver::run(&mut first, &store, &mut sink, one_poll.clone())
        .await
        .unwrap();
    assert_eq!(sink.items().len(), 2, "{:?}", posts(&sink.items()));
    drop(first);

    let mut second = source(config(&base));
    driver::run(&mut second, &store, &mut sink, one_poll)
        .await
        .unwrap();
    let items = sink.items();
    let got = posts(&items);
    let order: Vec<String> = [1u64, 2, 3, 4, 5]
        .iter()
        .map(|n| format!("/statuses/{}", status_id(*n)))
        .collect();
    assert_eq!(got.len(), 6, "{got:?}");
    for (g, tail) in got.iter().zip(&order) {
        assert!(
            g.starts_with("post ") && g.ends_with(tail.as_str()),
            "{got:?}"
        );
    }
    let Item::Delete(t) = &items[5] else {
        panic!("{got:?}");
    };
    assert_eq!(
        &t.id,
        items[0].id(),
        "a delete remembered across the restart"
    );
    assert_eq!(
        *inst.rest_min_ids.lock().unwrap(),
        vec![Some(status_id(2).to_string())]
    );
    let state = store.load("mamot-live", "mastodon-stream").unwrap();
    assert_eq!(state.gaps.len(), 1, "{:?}", state.gaps);
    assert!(
        state.gaps[0]
            .detail
            .contains("2 statuses of the window fetched"),
        "{}",
        state.gaps[0].detail
    );
}

#[tokio::test]
async fn a_hashtag_stream_with_a_token_from_the_environment() {
    let inst = Instance::default();
    inst.script(vec![update(7)], false);
    let base = inst.serve().await;
    std::env::set_var("VIGIE_TEST_MASTODON_TOKEN", "s3cret-token");
    let mut src = source(MastodonStreamConfig {
        hashtag: Some("#inondation".into()),
        local: true,
        token_env: Some("VIGIE_TEST_MASTODON_TOKEN".into()),
        ..config(&base)
    });
    assert!(!format!("{src:?}").contains("s3cret"), "{src:?}");
    let batch = src.poll(None).await.unwrap();
    assert_eq!(batch.items.len(), 1);
    let Item::Post(p) = &batch.items[0] else {
        panic!()
    };
    assert_eq!(
        p.provenance.fetch_url,
        format!("{base}/api/v1/streaming/hashtag/local?tag=inondation")
    );
    assert!(
        p.provenance
            .matched
            .as_deref()
            .unwrap()
            .contains("#inondation"),
        "{:?}",
        p.provenance.matched
    );
    let conns = inst.connections.lock().unwrap().clone();
    assert_eq!(conns[0].0, "/api/v1/streaming/hashtag/local?tag=inondation");
    let headers = &conns[0].1;
    assert_eq!(headers["authorization"], "Bearer s3cret-token");
    assert_eq!(headers["accept"], "text/event-stream");
    assert_eq!(headers["user-agent"], common::fast_http().user_agent);

    let missing = MastodonStream::new(
        MastodonStreamConfig {
            token_env: Some("VIGIE_TEST_UNSET_TOKEN_VAR".into()),
            ..config(&base)
        },
        common::client(),
        common::pseudonymiser(),
    )
    .unwrap_err()
    .to_string();
    assert!(missing.contains("VIGIE_TEST_UNSET_TOKEN_VAR"), "{missing}");
}

#[tokio::test]
async fn a_silent_stream_trips_the_read_timeout_and_is_reopened() {
    let inst = Instance::default();
    // No heartbeat for 3 s: the 1 s read timeout ends the connection.
    inst.script(vec![update(1), thump(3_000)], false);
    inst.script(vec![update(2)], false);
    let (sink, store, _dir) = run_live(&inst, 2_500).await;
    assert_eq!(sink.items().len(), 2, "{:?}", posts(&sink.items()));
    let state = store.load("mamot-live", "mastodon-stream").unwrap();
    assert_eq!(inst.connections.lock().unwrap().len(), 2, "{state:?}");
    assert_eq!(state.gaps.len(), 1, "{:?}", state.gaps);
    let gap = &state.gaps[0];
    let lasted = gap.to.unwrap() - gap.from;
    assert!(lasted < chrono::Duration::seconds(1), "{gap:?}");
    assert!(gap.detail.contains("stream failed"), "{}", gap.detail);
}

#[tokio::test]
async fn an_endless_line_from_the_server_is_cut_off_and_the_stream_reconnects() {
    let inst = Instance::default();
    // One line of 4 MiB (then heartbeats): it never becomes an event, but it must not be
    // buffered whole either.
    let endless = format!("data: {}", "x".repeat(4 * 1024 * 1024));
    inst.script(vec![update(1), (0, endless)], false);
    inst.script(vec![update(2)], false);
    let (sink, store, _dir) = run_live(&inst, 2_000).await;
    assert_eq!(sink.items().len(), 2, "{:?}", posts(&sink.items()));
    let state = store.load("mamot-live", "mastodon-stream").unwrap();
    assert_eq!(inst.connections.lock().unwrap().len(), 2, "{state:?}");
    let gap = &state.gaps[0];
    assert!(
        gap.detail
            .contains("a line longer than the 65536 bytes allowed"),
        "{}",
        gap.detail
    );
}

#[tokio::test]
async fn a_stream_server_that_accepts_and_never_answers_is_an_error_not_a_hang() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut src = source(config(&format!("http://{addr}")));
    let started = std::time::Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(10), src.poll(None))
        .await
        .expect("a silent server must not hang the source")
        .unwrap_err()
        .to_string();
    assert!(e.contains("timed out"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
