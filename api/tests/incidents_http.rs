//! Incidents over real HTTP: the list and its filters, one incident's detail, reviews that reach
//! the posts' lineage, the access log naming what was shown, and roles.

use crate::common;

use reqwest::StatusCode;
use serde_json::{json, Value};
use vigie_record::Envelope;

use common::fire;

const LYON: (&str, f64, f64) = ("Lyon", 45.748, 4.847);
const MARSEILLE: (&str, f64, f64) = ("Marseille", 43.297, 5.381);

fn posts() -> Vec<Envelope> {
    vec![
        fire(1, 0, "Incendie dans un entrepôt à Lyon", LYON, 0.8),
        fire(
            2,
            20,
            "Incendie entrepôt Lyon, énorme fumée noire",
            LYON,
            0.95,
        ),
        fire(
            3,
            40,
            "Incendie entrepôt Lyon : les pompiers sur place",
            LYON,
            0.7,
        ),
        fire(4, 90, "Incendie d'un immeuble à Marseille", MARSEILLE, 0.9),
        // Under the threshold: in no incident.
        fire(5, 95, "Un petit feu de poubelle à Lyon", LYON, 0.2),
    ]
}

async fn get(server: &common::Server, user: &str, path: &str) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .bearer_auth(&server.tokens[user])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn review(server: &common::Server, id: &str, body: Value) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/v1/incidents/{id}/review", server.base))
        .bearer_auth(&server.tokens["ana"])
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn incidents_are_listed_newest_first_with_their_place_and_filtered() {
    let posts = posts();
    let mut server = common::start_with(&posts, 1000).await;
    let (status, body) = get(&server, "ana", "/v1/incidents?purpose=case%2012").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], 2, "{body}");
    let list = body["incidents"].as_array().unwrap();
    // Marseille's is the newest activity.
    assert_eq!(list[0]["place"]["name"], "Marseille");
    let lyon = &list[1];
    assert_eq!(lyon["id"], format!("inc-{}", posts[0].post.id));
    assert_eq!(lyon["post_count"], 3);
    assert_eq!(lyon["category"], "fire");
    assert_eq!(lyon["status"], "open");
    assert_eq!(lyon["title"], "Incendie entrepôt Lyon, énorme fumée noire");
    assert_eq!(lyon["first_seen"], "2026-11-27T08:00:00Z");
    assert_eq!(lyon["last_seen"], "2026-11-27T08:40:00Z");
    assert!((lyon["peak_danger"].as_f64().unwrap() - 0.95).abs() < 1e-6);
    assert_eq!(lyon["sources"], json!(["mastodon"]));
    assert!(lyon["review"].is_null());
    // The access log names the incidents and the best posts whose text the titles show.
    let entry = server.entries().into_iter().last().unwrap();
    assert_eq!(entry.endpoint, "/v1/incidents");
    assert_eq!(entry.purpose.as_deref(), Some("case 12"));
    assert!(
        entry.posts.contains(&posts[1].post.id.to_string()),
        "{entry:?}"
    );
    assert_eq!(entry.params["incidents"].as_array().unwrap().len(), 2);
    for (query, total) in [
        ("near=45.76,4.85,20", 1),
        ("near=48.85,2.35,20", 0),
        ("category=fire", 2),
        ("category=fire_explosion", 2),
        ("category=accident", 0),
        ("status=open", 2),
        ("status=closed", 0),
        ("since=2026-11-27T09:00:00Z", 1),
        ("limit=1", 2),
    ] {
        let (status, body) = get(&server, "ana", &format!("/v1/incidents?purpose=x&{query}")).await;
        assert_eq!(
            (status, body["total"].as_u64()),
            (StatusCode::OK, Some(total)),
            "{query}: {body}"
        );
    }
    for (query, title) in [
        ("", "purpose required"),
        ("purpose=x&status=maybe", "invalid `status`"),
        ("purpose=x&limit=0", "invalid limit"),
        ("purpose=x&near=1,2", "invalid `near`"),
        ("purpose=x&since=yesterday", "invalid `since`"),
        ("purpose=x&colour=red", "invalid query parameters"),
    ] {
        let (status, body) = get(&server, "ana", &format!("/v1/incidents?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["title"], title, "{query}: {body}");
    }
    // An auditor may not see incidents (their titles are post text).
    let (status, _) = get(&server, "olga", "/v1/incidents?purpose=x").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test]
async fn one_incident_shows_its_timeline_members_and_reviews_reach_its_posts() {
    let posts = posts();
    let mut server = common::start_with(&posts, 1000).await;
    let id = format!("inc-{}", posts[0].post.id);
    let (status, body) = get(
        &server,
        "ana",
        &format!("/v1/incidents/{id}?purpose=x&interval=30m"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let members = body["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert!((members[1]["scores"]["fire"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    let counts: Vec<u64> = body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [2, 1]);
    assert_eq!(body["first_post"]["id"], posts[0].post.id.to_string());
    assert_eq!(body["best_post"]["id"], posts[1].post.id.to_string());
    assert!(!body["most_confirmed"].as_array().unwrap().is_empty());
    let entry = server.entries().into_iter().last().unwrap();
    for p in &posts[..3] {
        assert!(entry.posts.contains(&p.post.id.to_string()), "{entry:?}");
    }
    // No such incident.
    let (status, body) = get(&server, "ana", "/v1/incidents/inc-nope?purpose=x").await;
    assert_eq!(
        (status, body["title"].as_str()),
        (StatusCode::NOT_FOUND, Some("no such incident"))
    );

    // A review: logged, stored for the incident and for each post, shown in their lineage.
    let (status, body) = review(
        &server,
        &id,
        json!({"verdict": "confirmed", "note": "vu par le SDIS"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["posts"].as_array().unwrap().len(), 3);
    let (_, list) = get(&server, "ana", "/v1/incidents?purpose=x").await;
    assert_eq!(
        list["incidents"][1]["review"]["verdict"], "confirmed",
        "{list}"
    );
    let (_, post) = get(
        &server,
        "ana",
        &format!("/v1/posts/{}?purpose=x", posts[2].post.id),
    )
    .await;
    let reviews = post["lineage"]["reviews"].as_array().unwrap();
    assert_eq!(reviews[0]["incident"], id.as_str(), "{post}");
    assert_eq!(reviews[0]["verdict"], "confirmed");
    // The alert queue no longer lists them.
    let (_, alerts) = get(&server, "ana", "/v1/alerts?purpose=x").await;
    let ids: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&posts[0].post.id.as_str()), "{alerts}");
    // Duplicates name another incident that exists.
    let marseille = format!("inc-{}", posts[3].post.id);
    for (body, needle) in [
        (json!({"verdict": "duplicate_of"}), "needs the id"),
        (
            json!({"verdict": "duplicate_of", "duplicate_of": marseille}),
            "not another incident",
        ),
        (
            json!({"verdict": "duplicate_of", "duplicate_of": "inc-nope"}),
            "not another incident",
        ),
        (
            json!({"verdict": "confirmed", "duplicate_of": id}),
            "goes only with",
        ),
        (json!({"verdict": "maybe"}), "verdict"),
        (json!({"verdict": "confirmed", "extra": 1}), "extra"),
    ] {
        let (status, answer) = review(&server, &marseille, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(needle),
            "{body}: {answer}"
        );
    }
    let (status, body) = review(
        &server,
        &marseille,
        json!({"verdict": "duplicate_of", "duplicate_of": id}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["review"]["verdict"], "duplicate");
    // A post review may not say `duplicate`.
    let res = reqwest::Client::new()
        .post(format!(
            "{}/v1/posts/{}/review",
            server.base, posts[0].post.id
        ))
        .bearer_auth(&server.tokens["ana"])
        .json(&json!({"verdict": "duplicate"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}
