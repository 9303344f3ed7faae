//! Search over real HTTP: filters, orders, cursor paging (every hit exactly once, each page's
//! ids in the access log), the JSON form, the errors that name what is wrong, and the histogram.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use vigie_record::fixtures::scored;
use vigie_record::Envelope;

fn t0() -> DateTime<Utc> {
    "2026-11-27T00:00:00Z".parse().unwrap()
}

/// Post `n`: in French from Mastodon when `n` is even, English RSS otherwise; `n` hours after
/// t0; `danger` n/40; in category `fire` when `n` is a multiple of 3.
fn post(n: u32) -> Envelope {
    let (text, lang, source) = if n.is_multiple_of(2) {
        (format!("Incendies signalés, message {n}"), "fr", "mastodon")
    } else {
        (format!("Fires reported, message {n}"), "en", "rss")
    };
    let mut e = scored(&n.to_string(), &text, n as f32 / 40.0);
    e.post.lang = Some(lang.into());
    e.post.source = source.into();
    e.post.created_at = t0() + Duration::hours(i64::from(n));
    let fire = if n.is_multiple_of(3) { 0.9 } else { 0.1 };
    e.scoring
        .as_mut()
        .unwrap()
        .scores
        .insert("fire".into(), fire);
    e
}

async fn get(server: &common::Server, path: &str) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .bearer_auth(&server.tokens["ana"])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

async fn post_json(server: &common::Server, body: Value) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/v1/search", server.base))
        .bearer_auth(&server.tokens["ana"])
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

fn ids(body: &Value) -> Vec<String> {
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn paging_through_with_the_cursor_returns_every_hit_once_and_logs_each_page() {
    let posts: Vec<_> = (0..30).map(post).collect();
    let mut server = common::start_with(&posts, 1000).await;
    // "fires" (English) and "incendie" (French) are both stemmed: every post matches.
    // The posts are near-duplicates of one another: `collapse=false` lists each.
    let first =
        "/v1/search?q=fire%20OR%20incendie&purpose=case%201&limit=7&sort=time&collapse=false";
    let (status, mut body) = get(&server, first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 30);
    let mut seen = Vec::new();
    let mut pages = vec![ids(&body)];
    while let Some(next) = body["next"].as_str().map(String::from) {
        seen.extend(ids(&body));
        let (status, b) = get(&server, &format!("{first}&cursor={next}")).await;
        assert_eq!(status, StatusCode::OK, "{b}");
        pages.push(ids(&b));
        body = b;
    }
    seen.extend(ids(&body));
    assert_eq!(pages.len(), 5);
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!((seen.len(), unique.len()), (30, 30));
    // Newest first: the first hit is post 29.
    assert_eq!(pages[0][0], posts[29].post.id.to_string());

    // Each page's access-log entry lists exactly the ids it returned.
    let logged: Vec<Vec<String>> = server.entries().into_iter().map(|e| e.posts).collect();
    assert_eq!(logged, pages);

    // The same cursor with another query is refused, naming the cursor.
    let next = get(&server, first).await.1["next"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, b) = get(
        &server,
        &format!("/v1/search?q=fire&purpose=x&limit=7&sort=time&collapse=false&cursor={next}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(b["title"], "invalid `cursor`");
    server.stop().await;
}

#[tokio::test]
async fn filters_and_the_json_form_select_the_same_posts() {
    let posts: Vec<_> = (0..30).map(post).collect();
    let mut server = common::start_with(&posts, 1000).await;
    let from = (t0() + Duration::hours(10)).to_rfc3339();
    let to = (t0() + Duration::hours(25)).to_rfc3339();
    let query = format!(
        "/v1/search?purpose=x&from={}&to={}&min_score=danger:0.3,fire:0.5&lang=fr&source=mastodon&category=fire&sort=score&limit=50&collapse=false",
        urlencode(&from),
        urlencode(&to)
    );
    let (status, body) = get(&server, &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Hours 10..25, danger >= 0.3 (n >= 12), French (even), fire (multiple of 3): 12, 18, 24;
    // highest danger first.
    let expected: Vec<String> = [24, 18, 12]
        .iter()
        .map(|n| posts[*n].post.id.to_string())
        .collect();
    assert_eq!(ids(&body), expected);

    let (status, body) = post_json(
        &server,
        json!({"purpose": "x", "from": from, "to": to,
               "min_score": {"danger": 0.3, "fire": 0.5}, "lang": "fr",
               "source": "mastodon", "category": "fire", "sort": "score", "limit": 50,
               "collapse": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body), expected);
    let last = server.entries().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.purpose.as_deref()),
        ("POST", Some("x"))
    );
    assert_eq!(last.posts, expected);
    assert_eq!(last.params["lang"], "fr");

    // By default near-duplicates collapse: the French posts are copies of one text, so one
    // hit stands for them, with the size, start and sources of the whole group.
    let (status, body) = post_json(
        &server,
        json!({"purpose": "x", "from": from, "to": to, "lang": "fr", "sort": "score"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 1, "{body}");
    let hit = &body["hits"][0];
    assert_eq!(hit["id"], posts[24].post.id.to_string());
    assert_eq!(hit["copies"], 15);
    assert_eq!(hit["first_seen"], "2026-11-27T00:00:00Z");
    assert_eq!(hit["sources"], json!(["mastodon"]));
    // The members stay reachable: the post's view lists its group, earliest first.
    let (status, view) = get(
        &server,
        &format!("/v1/posts/{}?purpose=x", posts[24].post.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let members = view["group"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 15);
    assert_eq!(members[0]["id"], posts[0].post.id.to_string());
    assert_eq!(view["group"]["id"], posts[0].post.id.to_string());

    // The JSON form refuses unknown fields and a missing purpose.
    let (status, body) = post_json(&server, json!({"purpose": "x", "colour": "red"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("colour"),
        "{body}"
    );
    let (status, body) = post_json(&server, json!({"q": "fire"})).await;
    assert_eq!(
        (status, body["title"].as_str()),
        (StatusCode::BAD_REQUEST, Some("purpose required"))
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_values_are_refused_naming_the_parameter_and_the_query_position() {
    let mut server = common::start_with(&[post(1)], 1000).await;
    for (path, title, needle) in [
        (
            "/v1/search?purpose=x&q=fire%20AND%20(smoke",
            "invalid query",
            "position",
        ),
        (
            "/v1/search?purpose=x&min_score=danger",
            "invalid `min_score`",
            "danger",
        ),
        (
            "/v1/search?purpose=x&min_score=danger:2",
            "invalid `min_score`",
            "[0, 1]",
        ),
        (
            "/v1/search?purpose=x&sort=loudness",
            "invalid `sort`",
            "loudness",
        ),
        (
            "/v1/search?purpose=x&from=yesterday",
            "invalid `from`",
            "RFC 3339",
        ),
        ("/v1/search?purpose=x&cursor=abc", "invalid `cursor`", "abc"),
        (
            "/v1/search?purpose=x&colour=red",
            "invalid query parameters",
            "colour",
        ),
        (
            "/v1/stats/histogram?purpose=x&interval=5 parsecs",
            "invalid `interval`",
            "parsecs",
        ),
        (
            "/v1/search?purpose=x&near=48.8,2.3",
            "invalid `near`",
            "lat,lon,radius_km",
        ),
        (
            "/v1/search?purpose=x&near=148.8,2.3,5",
            "invalid `near`",
            "latitude",
        ),
        (
            "/v1/search?purpose=x&near=48.8,2.3,1e9",
            "invalid `near`",
            "radius_km",
        ),
        (
            "/v1/stats/histogram?purpose=x&near=a,b,c",
            "invalid `near`",
            "three numbers",
        ),
    ] {
        let (status, body) = get(&server, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["title"], title, "{path}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_histogram_counts_danger_posts_per_bucket_and_category() {
    let posts: Vec<_> = (0..30).map(post).collect();
    let mut server = common::start_with(&posts, 1000).await;
    let (status, body) = get(
        &server,
        "/v1/stats/histogram?interval=6h&min_score=0.5&purpose=weekly%20review",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // danger >= 0.5: posts 20..29, at hours 20..29: buckets 18h (20..23), 24h (24..29).
    let buckets = body["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 2, "{body}");
    assert_eq!(buckets[0]["start"], "2026-11-27T18:00:00Z");
    assert_eq!(
        (buckets[0]["count"].as_u64(), buckets[1]["count"].as_u64()),
        (Some(4), Some(6))
    );
    // fire: multiples of 3: 21 in the first; 24, 27 in the second.
    assert_eq!(buckets[0]["categories"]["fire"], 1);
    assert_eq!(buckets[1]["categories"]["fire"], 2);
    // The default minimum is the alert threshold.
    let (_, body) = get(&server, "/v1/stats/histogram?purpose=x").await;
    assert_eq!(body["min_score"]["danger"], 0.5);
    let (status, _) = get(&server, "/v1/stats/histogram?interval=1h").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

/// Post `n` of [`post`], placed in Lyon when `n` is odd, in Saint-Denis (9 km from Paris)
/// otherwise.
fn placed(n: u32) -> Envelope {
    let mut e = post(n);
    let (name, lat, lon) = if n % 2 == 1 {
        ("Lyon", 45.74846, 4.84671)
    } else {
        ("Saint-Denis", 48.93564, 2.35387)
    };
    e.places = Some(vec![vigie_record::fixtures::place(name, lat, lon)]);
    e
}

#[tokio::test]
async fn near_restricts_search_and_histogram_to_a_disc_and_hits_show_their_places() {
    let posts: Vec<_> = (0..30).map(placed).collect();
    let mut server = common::start_with(&posts, 1000).await;
    let (status, body) = get(
        &server,
        "/v1/search?purpose=x&collapse=false&limit=100&near=48.8534,2.3488,20",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 15, "{body}");
    let hit = &body["hits"][0];
    assert_eq!(hit["places"][0]["name"], "Saint-Denis", "{hit}");
    assert_eq!(hit["places"][0]["found"], "text", "{hit}");
    // 5 km around Paris holds neither city.
    let (_, body) = get(&server, "/v1/search?purpose=x&near=48.8534,2.3488,5").await;
    assert_eq!(body["total"], 0, "{body}");
    // POST takes it too.
    let (status, body) = post_json(
        &server,
        json!({"purpose": "x", "near": "45.75,4.85,10", "collapse": false, "limit": 100}),
    )
    .await;
    assert_eq!(
        (status, body["total"].as_u64()),
        (StatusCode::OK, Some(15)),
        "{body}"
    );
    // The histogram counts only Lyon's alerts: odd n from 20 to 29.
    let (status, body) = get(
        &server,
        "/v1/stats/histogram?purpose=x&interval=1d&min_score=0.5&near=45.75,4.85,10",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let counted: u64 = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 5, "{body}");
    server.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
