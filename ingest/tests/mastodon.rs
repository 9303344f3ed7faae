//! The Mastodon source against a local instance that speaks the real API: statuses with HTML
//! content, `min_id`/`max_id` paging with `Link` headers, hashtag timelines.

use crate::common;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use common::Collect;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigie_ingest::capture::CaptureWriter;
use vigie_ingest::driver::{self, RunOptions};
use vigie_ingest::mastodon::{Mastodon, MastodonConfig};
use vigie_ingest::state::{GapKind, StateStore};
use vigie_ingest::{IngestError, Item};

use common::mastodon::status_id;

/// A public status as `GET /api/v1/timelines/*` returns it.
fn status(n: u64, acct: &str, content: &str, language: Option<&str>) -> String {
    status_value(n, acct, content, language).to_string()
}

/// [`status`] as JSON, to change before it is served.
fn status_value(n: u64, acct: &str, content: &str, language: Option<&str>) -> serde_json::Value {
    common::mastodon::status(n, acct, content, language, "public")
}

/// A local Mastodon instance: statuses by id, and the query strings it was asked.
#[derive(Clone, Default)]
struct Instance {
    /// (id, raw JSON), ascending ids.
    statuses: Arc<Mutex<Vec<(u64, String)>>>,
    requests: Arc<Mutex<Vec<HashMap<String, String>>>>,
    /// Answer this many requests with an HTML maintenance page first.
    html_first: Arc<AtomicUsize>,
    base: Arc<Mutex<String>>,
}

impl Instance {
    fn add(&self, n: u64, raw: String) {
        let mut s = self.statuses.lock().unwrap();
        s.push((status_id(n), raw));
        s.sort_by_key(|(id, _)| *id);
    }

    fn add_plain(&self, range: std::ops::RangeInclusive<u64>) {
        for n in range {
            self.add(
                n,
                status(
                    n,
                    "alice",
                    &format!("<p>Post number {n} about the river level</p>"),
                    Some("en"),
                ),
            );
        }
    }

    fn min_ids_asked(&self) -> Vec<Option<String>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|q| q.get("min_id").cloned())
            .collect()
    }

    async fn serve(&self) -> String {
        async fn timeline(
            State(inst): State<Instance>,
            path: Option<Path<String>>,
            Query(q): Query<HashMap<String, String>>,
        ) -> axum::response::Response {
            inst.requests.lock().unwrap().push(q.clone());
            if inst
                .html_first
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    "<!DOCTYPE html><html><body><h1>We'll be back soon</h1></body></html>",
                )
                    .into_response();
            }
            let limit: usize = q
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(20)
                .min(40);
            let num = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok());
            let all = inst.statuses.lock().unwrap().clone();
            let mut page: Vec<(u64, String)> = if let Some(min) = num("min_id") {
                // The statuses immediately after min_id, returned newest first.
                let mut after: Vec<_> = all.into_iter().filter(|(id, _)| *id > min).collect();
                after.truncate(limit);
                after.reverse();
                after
            } else {
                let mut newest: Vec<_> = all
                    .into_iter()
                    .filter(|(id, _)| num("max_id").is_none_or(|m| *id < m))
                    .filter(|(id, _)| num("since_id").is_none_or(|s| *id > s))
                    .collect();
                newest.reverse();
                newest.truncate(limit);
                newest
            };
            page.retain(|_| true);
            let body = format!(
                "[{}]",
                page.iter()
                    .map(|(_, raw)| raw.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            if let (Some(newest), Some(oldest)) = (page.first(), page.last()) {
                let path = match path {
                    Some(Path(tag)) => format!("/api/v1/timelines/tag/{tag}"),
                    None => "/api/v1/timelines/public".into(),
                };
                let base = inst.base.lock().unwrap().clone();
                let link = format!(
                    "<{base}{path}?limit={limit}&max_id={}>; rel=\"next\", <{base}{path}?limit={limit}&min_id={}>; rel=\"prev\"",
                    oldest.0, newest.0
                );
                headers.insert(header::LINK, HeaderValue::from_str(&link).unwrap());
            }
            (headers, body).into_response()
        }
        let router = Router::new()
            .route("/api/v1/timelines/public", get(timeline))
            .route("/api/v1/timelines/tag/{tag}", get(timeline))
            .with_state(self.clone());
        let base = common::serve(router).await;
        *self.base.lock().unwrap() = base.clone();
        base
    }
}

fn source(base: &str, hashtag: Option<&str>, limit: u32) -> Mastodon {
    Mastodon::new(
        MastodonConfig {
            name: "mamot-test".into(),
            instance: base.into(),
            hashtag: hashtag.map(str::to_string),
            local: false,
            limit,
            poll_interval: Duration::from_millis(10),
        },
        common::client(),
        common::pseudonymiser(),
    )
    .unwrap()
}

fn caught_up() -> RunOptions {
    RunOptions {
        stop_when_caught_up: true,
        error_backoff_base: Duration::from_millis(10),
        error_backoff_max: Duration::from_millis(20),
        ..Default::default()
    }
}

fn ids(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    // Native ids are the statuses' ActivityPub URIs, the handle pseudonymised.
    let alice = common::pseudonymiser().pseudonym("mastodon", "alice@mamot.fr");
    range
        .map(|n| format!("https://mamot.fr/users/{alice}/statuses/{}", status_id(n)))
        .collect()
}

#[tokio::test]
async fn pages_through_the_timeline_with_min_id_and_link_headers() {
    let inst = Instance::default();
    inst.add_plain(1..=7);
    let base = inst.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let mut src = source(&base, None, 3);
    let mut sink = Collect::default();

    // Never committed: the newest page only, no backfill.
    let report = driver::run(&mut src, &store, &mut sink, caught_up())
        .await
        .unwrap();
    assert_eq!(sink.native_ids(), ids(5..=7));
    assert_eq!(report.polls, 1);

    // Eight new statuses: three pages of min_id paging, oldest first.
    inst.add_plain(8..=15);
    let report = driver::run(&mut src, &store, &mut sink, caught_up())
        .await
        .unwrap();
    assert_eq!(report.polls, 3);
    assert_eq!(report.posts, 8);
    assert_eq!(sink.native_ids(), ids(5..=15));
    assert_eq!(
        inst.min_ids_asked(),
        vec![
            None,
            Some(status_id(7).to_string()),
            Some(status_id(10).to_string()),
            Some(status_id(13).to_string()),
        ]
    );
    let state = store.load("mamot-test", "mastodon").unwrap();
    assert_eq!(state.posts, 11);
    assert_eq!(
        state.cursor.unwrap().0["min_id"],
        status_id(15).to_string(),
        "the cursor is the newest id delivered"
    );
    // Caught up: one more poll asks after the last id and gets nothing.
    let report = driver::run(&mut src, &store, &mut sink, caught_up())
        .await
        .unwrap();
    assert_eq!((report.polls, report.posts), (1, 0));
}

#[tokio::test]
async fn a_restart_in_the_middle_neither_loses_nor_repeats() {
    let inst = Instance::default();
    inst.add_plain(1..=2);
    let base = inst.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let mut first = Collect::default();
    driver::run(&mut source(&base, None, 3), &store, &mut first, caught_up())
        .await
        .unwrap();
    assert_eq!(first.native_ids(), ids(1..=2));

    // Ten new statuses; downstream goes down after two more batches (a crash).
    inst.add_plain(3..=12);
    let mut crashing = Collect {
        fail_after: Some(2),
        ..Default::default()
    };
    let e = driver::run(
        &mut source(&base, None, 3),
        &store,
        &mut crashing,
        caught_up(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, IngestError::Sink { .. }), "{e}");
    assert_eq!(crashing.native_ids(), ids(3..=8));
    let state = store.load("mamot-test", "mastodon").unwrap();
    assert_eq!(
        state.cursor.as_ref().unwrap().0["min_id"],
        status_id(8).to_string(),
        "the refused batch was not committed"
    );

    // While Vigie is down, two more arrive. A new process resumes from the cursor file.
    inst.add_plain(13..=14);
    let mut after = Collect::default();
    driver::run(&mut source(&base, None, 3), &store, &mut after, caught_up())
        .await
        .unwrap();
    assert_eq!(after.native_ids(), ids(9..=14));

    let mut all = first.native_ids();
    all.extend(crashing.native_ids());
    all.extend(after.native_ids());
    assert_eq!(all, ids(1..=14), "every status once, in order");
}

#[tokio::test]
async fn a_malformed_status_among_good_ones_is_skipped_counted_and_passed() {
    let inst = Instance::default();
    inst.add_plain(1..=1);
    let base = inst.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let mut sink = Collect::default();
    driver::run(&mut source(&base, None, 40), &store, &mut sink, caught_up())
        .await
        .unwrap();

    inst.add_plain(2..=2);
    let mut no_account = status_value(3, "x", "<p>x</p>", None);
    no_account.as_object_mut().unwrap().remove("account");
    inst.add(3, no_account.to_string());
    let mut bad_date = status_value(4, "x", "<p>x</p>", None);
    bad_date["created_at"] = "yesterday".into();
    inst.add(4, bad_date.to_string());
    let mut private = status_value(5, "x", "<p>x</p>", None);
    private["visibility"] = "private".into();
    inst.add(5, private.to_string());
    inst.add_plain(6..=6);

    let report = driver::run(&mut source(&base, None, 40), &store, &mut sink, caught_up())
        .await
        .unwrap();
    assert_eq!(report.skipped, 3);
    assert_eq!(report.posts, 2);
    let mut want = ids(1..=2);
    want.extend(ids(6..=6));
    assert_eq!(sink.native_ids(), want);
    let state = store.load("mamot-test", "mastodon").unwrap();
    assert_eq!(state.skipped, 3);
    assert_eq!(
        state.cursor.unwrap().0["min_id"],
        status_id(6).to_string(),
        "the cursor passes the bad statuses"
    );
}

#[tokio::test]
async fn posts_are_plain_pseudonymised_text_with_provenance() {
    let inst = Instance::default();
    let html = r#"<p>Gros incendie port Édouard Herriot, fumée noire ! <a href="https://mamot.fr/tags/Lyon" class="mention hashtag" rel="tag">#<span>Lyon</span></a><br />Merci <span class="h-card" translate="no"><a href="https://piaille.fr/@bob" class="u-url mention">@<span>bob</span></a></span> et <span class="h-card"><a href="https://mamot.fr/@carol" class="u-url mention">@<span>carol</span></a></span> (vu sur https://mamot.fr/@alice)</p>"#;
    let mut raw = status_value(1, "alice", html, Some("fr"));
    raw["mentions"] = serde_json::json!([
        {"id": "1", "username": "bob", "url": "https://piaille.fr/@bob", "acct": "bob@piaille.fr"},
        {"id": "2", "username": "carol", "url": "https://mamot.fr/@carol", "acct": "carol"}
    ]);
    let raw = raw.to_string();
    inst.add(1, raw.clone());
    // A boost of a remote status, with no language given.
    let inner = status_value(
        2,
        "dan@mstdn.social",
        "<p>Flooding on the A7 near Valence, the water is rising fast and the road is closed in both directions</p>",
        None,
    );
    let mut boost = status_value(3, "erin", "", None);
    boost["reblog"] = inner;
    inst.add(3, boost.to_string());
    let base = inst.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Collect::default();
    driver::run(
        &mut source(&base, Some("incendie"), 40),
        &StateStore::in_data_dir(dir.path()),
        &mut sink,
        caught_up(),
    )
    .await
    .unwrap();
    let items = sink.items();
    assert_eq!(items.len(), 2);
    let Item::Post(fire) = &items[0] else {
        panic!("a post")
    };
    let p = common::pseudonymiser();
    let alice = p.pseudonym("mastodon", "alice@mamot.fr");
    let bob = p.pseudonym("mastodon", "bob@piaille.fr");
    let carol = p.pseudonym("mastodon", "carol@mamot.fr");
    assert_eq!(
        fire.post.text,
        format!("Gros incendie port Édouard Herriot, fumée noire ! #Lyon\nMerci @{bob} et @{carol} (vu sur https://mamot.fr/@{alice})")
    );
    assert_eq!(fire.post.author, alice);
    assert_eq!(fire.post.lang.as_deref(), Some("fr"));
    assert_eq!(fire.post.source, "mastodon");
    assert_eq!(
        fire.post.url.as_deref(),
        Some(format!("https://mamot.fr/@{alice}/{}", status_id(1)).as_str())
    );
    assert_eq!(
        fire.post.created_at.to_rfc3339(),
        "2026-11-27T08:01:00+00:00"
    );
    let json = String::from_utf8(fire.to_json()).unwrap();
    for handle in ["alice", "bob", "carol"] {
        assert!(!json.contains(handle), "{handle} leaked: {json}");
    }
    let prov = &fire.provenance;
    assert_eq!(
        prov.fetch_url,
        format!("{base}/api/v1/timelines/tag/incendie?limit=40")
    );
    assert_eq!(prov.http_status, Some(200));
    assert_eq!(prov.ingestor.name, "mastodon");
    assert_eq!(
        prov.content_sha256,
        vigie_record::content_sha256(raw.as_bytes())
    );
    assert_eq!(
        prov.matched.as_deref(),
        Some("mamot-test: hashtag #incendie on 127.0.0.1")
    );

    let Item::Post(boosted) = &items[1] else {
        panic!("a post")
    };
    assert_eq!(
        boosted.post.author,
        p.pseudonym("mastodon", "dan@mstdn.social")
    );
    assert!(boosted.post.text.starts_with("Flooding on the A7"));
    assert_eq!(boosted.post.lang.as_deref(), Some("en"), "detected");
}

#[tokio::test]
async fn an_html_page_fails_the_poll_with_source_and_url_then_the_outage_closes() {
    let inst = Instance::default();
    inst.add_plain(1..=1);
    inst.html_first.store(2, Ordering::SeqCst);
    let base = inst.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let mut sink = Collect::default();
    let mut src = source(&base, None, 40);
    let report = driver::run(
        &mut src,
        &store,
        &mut sink,
        RunOptions {
            max_polls: Some(1),
            ..caught_up()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.failures, 1);
    let state = store.load("mamot-test", "mastodon").unwrap();
    let error = state.last_error.clone().unwrap();
    assert!(
        error.starts_with(&format!(
            "mamot-test: GET {base}/api/v1/timelines/public?limit=40: expected JSON, got text/html"
        )),
        "{error}"
    );
    assert_eq!(state.gaps.len(), 1);
    assert_eq!(state.gaps[0].kind, GapKind::Outage);
    assert_eq!(state.gaps[0].to, None, "the outage is going on");

    let report = driver::run(&mut src, &store, &mut sink, caught_up())
        .await
        .unwrap();
    assert_eq!((report.failures, report.posts), (1, 1));
    let state = store.load("mamot-test", "mastodon").unwrap();
    assert_eq!(state.gaps.len(), 1, "one outage, however many failed polls");
    assert!(state.gaps[0].to.is_some(), "closed at recovery");
    assert_eq!(state.last_error, None);
    assert_eq!(sink.native_ids(), ids(1..=1));
}

#[tokio::test]
async fn a_zstd_capture_replays_what_the_source_yielded() {
    let inst = Instance::default();
    inst.add_plain(1..=5);
    let base = inst.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("capture.jsonl.zst");
    let mut writer = CaptureWriter::open(&out).unwrap();
    let mut src = source(&base, None, 2);
    let store = StateStore::in_data_dir(dir.path());
    driver::run(&mut src, &store, &mut writer, caught_up())
        .await
        .unwrap();
    inst.add_plain(6..=9);
    driver::run(&mut src, &store, &mut writer, caught_up())
        .await
        .unwrap();
    assert_eq!(writer.written, 6);
    let replay = vigie_ingest::replay::load(&out, None, &common::pseudonymiser()).unwrap();
    assert!(replay.rejected.is_empty());
    let native: Vec<String> = replay
        .items
        .iter()
        .map(|i| match i {
            Item::Post(e) => e.post.native_id.clone(),
            Item::Delete(_) => unreachable!(),
        })
        .collect();
    let mut want = ids(4..=5);
    want.extend(ids(6..=9));
    assert_eq!(native, want);
}
