//! Over real HTTP: a post's lineage (fetched -> scored -> reviewed -> accessed), the alerts
//! still to review, and reviews.

use crate::common;

use reqwest::StatusCode;
use serde_json::{json, Value};
use vigie_record::VigieId;

#[tokio::test]
async fn lineage_alerts_and_reviews() {
    let mut server = common::start(1000).await;
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let ana = server.tokens["ana"].clone();
    let olga = server.tokens["olga"].clone();
    let fire = VigieId::derive("mastodon", "1").to_string();
    let drill = VigieId::derive("mastodon", "2").to_string();
    let get =
        |path: String, token: &str| http.get(format!("{base}{path}")).bearer_auth(token).send();
    // The JSON body of a GET.
    let get_json = |path: String, token: &str| {
        let sent = get(path, token);
        async move { sent.await.unwrap().json::<Value>().await.unwrap() }
    };

    let found = get("/v1/search?q=fire&purpose=case%201".into(), &ana)
        .await
        .unwrap();
    assert_eq!(found.status(), StatusCode::OK);

    // The post, with where it came from and who has seen it.
    let res = get(format!("/v1/posts/{fire}?purpose=case%201"), &ana)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let view: Value = res.json().await.unwrap();
    assert_eq!(
        view["post"]["text"],
        "Warehouse fire in Vénissieux, thick smoke"
    );
    let lineage = &view["lineage"];
    assert_eq!(lineage["fetched"]["ingestor"]["name"], "mastodon");
    assert_eq!(
        lineage["fetched"]["content_sha256"].as_str().unwrap().len(),
        64
    );
    assert_eq!(lineage["scored"]["model"], "test-model");
    assert_eq!(lineage["kafka"], Value::Null);
    let accesses = lineage["accesses"].as_array().unwrap();
    assert_eq!(accesses.len(), 1, "{lineage}");
    assert_eq!(accesses[0]["user"], "ana");
    assert_eq!(accesses[0]["purpose"], "case 1");
    assert_eq!(accesses[0]["endpoint"], "/v1/search");

    // Purpose, existence and role are checked.
    let res = get(format!("/v1/posts/{fire}"), &ana).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = get("/v1/posts/nope?purpose=x".into(), &ana).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = get(format!("/v1/posts/{fire}?purpose=x"), &olga)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = get("/v1/alerts?purpose=x".into(), &olga).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Alerts: at or above the threshold, not yet reviewed.
    let alerts = get_json("/v1/alerts?purpose=triage".into(), &ana).await;
    let ids: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [fire.as_str()], "{alerts}");
    assert_ne!(ids[0], drill);
    let later = get_json(
        "/v1/alerts?purpose=triage&since=2030-01-01T00:00:00Z".into(),
        &ana,
    )
    .await;
    assert_eq!(later["count"], 0);
    let res = get("/v1/alerts?purpose=triage&since=monday".into(), &ana)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // A review: stored, shown in the lineage, and the alert leaves the list.
    let review = |body: Value| {
        http.post(format!("{base}/v1/posts/{fire}/review"))
            .bearer_auth(&ana)
            .json(&body)
            .send()
    };
    let res = review(json!({"verdict": "maybe"})).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = review(json!({"verdict": "false_alarm", "note": "a drill"}))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let alerts = get_json("/v1/alerts?purpose=triage".into(), &ana).await;
    assert_eq!(alerts["count"], 0, "{alerts}");
    let view = get_json(format!("/v1/posts/{fire}?purpose=case%201"), &ana).await;
    let reviews = view["lineage"]["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0]["verdict"], "false_alarm");
    assert_eq!(reviews[0]["user"], "ana");
    // The post view, the first alert list and the review (logged before it was stored, then
    // its answer) are now among its accesses.
    assert_eq!(view["lineage"]["accesses"].as_array().unwrap().len(), 5);

    server.stop().await;
    let logged = server.entries();
    let r = logged
        .iter()
        .find(|e| e.endpoint.ends_with("/review") && e.status == 201)
        .unwrap();
    assert_eq!(r.params["verdict"], "false_alarm");
    assert_eq!(r.posts, [fire]);
}
