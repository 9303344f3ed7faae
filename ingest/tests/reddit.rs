//! The Reddit source against a local `/r/{sub}/new.json` that pages with `before`/`after` as
//! Reddit does, including the empty page Reddit returns when the `before` post was deleted.

use crate::common;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use common::Collect;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigie_ingest::driver::{self, RunOptions};
use vigie_ingest::reddit::{Reddit, RedditConfig};
use vigie_ingest::state::{GapKind, StateStore};
use vigie_ingest::Item;

/// Base-36 ids counting up from `1p4k200`.
fn id36(n: u64) -> String {
    let mut v = u64::from_str_radix("1p4k200", 36).unwrap() + n;
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    while v > 0 {
        s.push(digits[(v % 36) as usize]);
        v /= 36;
    }
    s.reverse();
    String::from_utf8(s).unwrap()
}

fn fullname(n: u64) -> String {
    format!("t3_{}", id36(n))
}

/// A listing child as Reddit returns it (`kind: t3`).
fn link(n: u64, author: &str, title: &str, selftext: &str) -> serde_json::Value {
    let id = id36(n);
    let created = 1_795_766_400 + n * 60;
    serde_json::json!({
        "kind": "t3",
        "data": {
            "approved_at_utc": null,
            "subreddit": "lyon",
            "selftext": selftext,
            "author_fullname": "t2_8f3k2",
            "saved": false,
            "gilded": 0,
            "clicked": false,
            "title": title,
            "subreddit_name_prefixed": "r/lyon",
            "hidden": false,
            "ups": 12,
            "downs": 0,
            "name": format!("t3_{id}"),
            "upvote_ratio": 0.93,
            "score": 12,
            "edited": false,
            "is_self": true,
            "created": created as f64,
            "created_utc": created as f64,
            "domain": "self.lyon",
            "link_flair_text": null,
            "removed_by_category": null,
            "over_18": false,
            "id": id,
            "author": author,
            "num_comments": 3,
            "permalink": format!("/r/lyon/comments/{id}/post_{n}/"),
            "url": format!("https://www.reddit.com/r/lyon/comments/{id}/post_{n}/"),
            "stickied": false
        }
    })
}

#[derive(Clone, Default)]
struct Subreddit {
    /// Children in ascending id order: (n, child).
    links: Arc<Mutex<Vec<(u64, serde_json::Value)>>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Subreddit {
    fn add(&self, n: u64, child: serde_json::Value) {
        self.links.lock().unwrap().push((n, child));
    }
    fn add_plain(&self, range: std::ops::RangeInclusive<u64>) {
        for n in range {
            self.add(
                n,
                link(
                    n,
                    "brinebrother",
                    &format!("Post {n}: tram stopped at Perrache"),
                    "",
                ),
            );
        }
    }
    fn remove(&self, n: u64) {
        self.links.lock().unwrap().retain(|(m, _)| *m != n);
    }
}

async fn serve(sub: &Subreddit) -> String {
    async fn new(
        State(sub): State<Subreddit>,
        Path(name): Path<String>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::response::Response {
        assert_eq!(name, "lyon");
        assert_eq!(q.get("raw_json").map(String::as_str), Some("1"));
        let mut asked = String::new();
        for key in ["before", "after"] {
            if let Some(v) = q.get(key) {
                asked = format!("{key}={v}");
            }
        }
        sub.asked.lock().unwrap().push(asked);
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(25);
        let links = sub.links.lock().unwrap().clone();
        let position = |name: &str| links.iter().position(|(n, _)| fullname(*n) == name);
        // Newest first, as Reddit lists them.
        let (page, more_older): (Vec<_>, bool) = if let Some(before) = q.get("before") {
            match position(before) {
                // The anchor is gone: Reddit answers with an empty listing.
                None => (Vec::new(), false),
                Some(i) => {
                    let mut newer: Vec<_> = links[i + 1..].iter().take(limit).cloned().collect();
                    newer.reverse();
                    (newer, true)
                }
            }
        } else {
            let end = match q.get("after") {
                Some(after) => position(after).unwrap_or(0),
                None => links.len(),
            };
            let start = end.saturating_sub(limit);
            let mut older: Vec<_> = links[start..end].to_vec();
            older.reverse();
            (older, start > 0)
        };
        let after = if more_older {
            page.last().map(|(n, _)| fullname(*n))
        } else {
            None
        };
        let body = serde_json::json!({
            "kind": "Listing",
            "data": {
                "after": after,
                "dist": page.len(),
                "modhash": "",
                "geo_filter": "",
                "children": page.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
                "before": null
            }
        });
        (
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            body.to_string(),
        )
            .into_response()
    }
    let router = Router::new()
        .route("/r/{name}/new.json", get(new))
        .with_state(sub.clone());
    common::serve(router).await
}

fn source(base: &str, limit: u32, max_pages: u32) -> Reddit {
    Reddit::new(
        RedditConfig {
            name: "r-lyon".into(),
            subreddit: "lyon".into(),
            base_url: base.into(),
            limit,
            max_pages,
            poll_interval: Duration::from_millis(10),
        },
        common::client(),
        common::pseudonymiser(),
    )
}

fn caught_up() -> RunOptions {
    RunOptions {
        stop_when_caught_up: true,
        ..Default::default()
    }
}

fn names(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range.map(fullname).collect()
}

#[tokio::test]
async fn pages_forward_with_before_turns_removals_into_tombstones_and_skips_bad_children() {
    let sub = Subreddit::default();
    sub.add_plain(1..=3);
    let base = serve(&sub).await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let mut src = source(&base, 2, 10);
    let mut sink = Collect::default();
    driver::run(&mut src, &store, &mut sink, caught_up())
        .await
        .unwrap();
    assert_eq!(
        sink.native_ids(),
        names(2..=3),
        "the newest page, no backfill"
    );

    sub.add_plain(4..=5);
    let mut removed = link(6, "[deleted]", "Post 6", "[removed]");
    removed["data"]["removed_by_category"] = "moderator".into();
    sub.add(6, removed);
    let mut comment = link(7, "x", "not a post", "");
    comment["kind"] = "t1".into();
    sub.add(7, comment);
    sub.add(
        8,
        link(
            8,
            "Lyon_Watcher",
            "Fumée noire au port Édouard Herriot",
            "Vu depuis Gerland, ça brûle fort. Merci u/brinebrother pour l'alerte.",
        ),
    );
    let report = driver::run(&mut src, &store, &mut sink, caught_up())
        .await
        .unwrap();
    assert_eq!(report.polls, 3, "pages 4-5, 6-7, then 8");
    assert_eq!((report.posts, report.deletions, report.skipped), (3, 1, 1));
    let mut want = names(2..=5);
    want.push(format!("deleted:{}", fullname(6)));
    want.push(fullname(8));
    assert_eq!(sink.native_ids(), want);
    assert_eq!(
        *sub.asked.lock().unwrap(),
        vec![
            String::new(),
            format!("before={}", fullname(3)),
            format!("before={}", fullname(5)),
            format!("before={}", fullname(7)),
        ]
    );

    let items = sink.items();
    let Some(Item::Post(smoke)) = items.last() else {
        panic!("a post")
    };
    let p = common::pseudonymiser();
    assert_eq!(
        smoke.post.text,
        format!(
            "Fumée noire au port Édouard Herriot\n\nVu depuis Gerland, ça brûle fort. Merci u/{} pour l'alerte.",
            p.pseudonym("reddit", "brinebrother")
        )
    );
    assert_eq!(smoke.post.author, p.pseudonym("reddit", "lyon_watcher"));
    assert_eq!(smoke.post.lang.as_deref(), Some("fr"));
    assert_eq!(smoke.post.created_at.timestamp(), 1_795_766_400 + 8 * 60);
    assert_eq!(
        smoke.post.url.as_deref(),
        Some(format!("https://www.reddit.com/r/lyon/comments/{}/post_8/", id36(8)).as_str())
    );
    assert_eq!(
        smoke.provenance.matched.as_deref(),
        Some("r-lyon: r/lyon/new")
    );
}

#[tokio::test]
async fn when_the_cursor_post_is_deleted_it_walks_back_with_after() {
    let sub = Subreddit::default();
    sub.add_plain(1..=4);
    let base = serve(&sub).await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let mut sink = Collect::default();
    driver::run(&mut source(&base, 2, 10), &store, &mut sink, caught_up())
        .await
        .unwrap();
    assert_eq!(sink.native_ids(), names(3..=4));

    // The post the cursor points at disappears; five new ones arrive.
    sub.remove(4);
    sub.add_plain(5..=9);
    sub.asked.lock().unwrap().clear();
    let mut after = Collect::default();
    driver::run(&mut source(&base, 2, 10), &store, &mut after, caught_up())
        .await
        .unwrap();
    assert_eq!(
        after.native_ids(),
        names(5..=9),
        "all new posts, once, in order"
    );
    assert_eq!(
        *sub.asked.lock().unwrap(),
        vec![
            format!("before={}", fullname(4)),
            String::new(),
            format!("after={}", fullname(8)),
            format!("after={}", fullname(6)),
        ]
    );
}

#[tokio::test]
async fn walking_back_further_than_allowed_records_skipped_pages() {
    let sub = Subreddit::default();
    sub.add_plain(1..=2);
    let base = serve(&sub).await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let mut sink = Collect::default();
    driver::run(&mut source(&base, 2, 1), &store, &mut sink, caught_up())
        .await
        .unwrap();
    sub.remove(2);
    sub.add_plain(3..=8);
    let mut after = Collect::default();
    driver::run(&mut source(&base, 2, 1), &store, &mut after, caught_up())
        .await
        .unwrap();
    assert_eq!(after.native_ids(), names(7..=8), "one page only");
    let state = store.load("r-lyon", "reddit").unwrap();
    let gap = state.gaps.last().unwrap();
    assert_eq!(gap.kind, GapKind::SkippedPages);
    assert!(
        gap.detail.contains(&fullname(2)) && gap.detail.contains(&fullname(7)),
        "{}",
        gap.detail
    );
}
