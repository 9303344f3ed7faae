//! A review is logged before it is stored: when its access cannot be logged, it is not kept.
//! The failure is real: the file-size limit of this process is lowered just above the access
//! log's size, so the kernel refuses the log's write (EFBIG) while the small reviews file could
//! still grow. (One test in this binary: the limit applies to the whole process.)
#![allow(clippy::unwrap_used)]

mod common;

use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn a_review_whose_access_cannot_be_logged_is_not_stored() {
    let mut server = common::start(1000).await;
    let http = reqwest::Client::new();
    let token = server.tokens["ana"].clone();
    let (_, page): (StatusCode, Value) = {
        let res = http
            .get(format!("{}/v1/search?q=fire&purpose=p", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    };
    let id = page["hits"][0]["id"].as_str().unwrap().to_string();
    let review = format!("{}/v1/posts/{id}/review", server.base);
    let reviews_file = server.data.path().join("reviews.jsonl");
    let reviews_size = || std::fs::metadata(&reviews_file).map_or(0, |m| m.len());

    // A note over the cap is refused, and nothing is stored.
    let res = http
        .post(&review)
        .bearer_auth(&token)
        .json(&json!({"verdict": "confirmed", "note": "n".repeat(4001)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(reviews_size(), 0);

    let send_review = || {
        http.post(&review)
            .bearer_auth(&token)
            .json(&json!({"verdict": "confirmed", "note": "seen on site"}))
            .send()
    };
    let size = std::fs::metadata(&server.log_path).unwrap().len();
    common::set_file_size_limit(size + 10);
    let res = send_review().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reviews_size(),
        0,
        "a review was stored without its log entry"
    );

    common::set_file_size_limit(libc::RLIM_INFINITY);
    let res = send_review().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(reviews_size() > 0);
    server.stop().await;
    let entries = server.entries();
    let last_two: Vec<(u16, Option<&str>)> = entries[entries.len() - 2..]
        .iter()
        .map(|e| (e.status, e.params.get("stage").and_then(Value::as_str)))
        .collect();
    assert_eq!(last_two, [(202, Some("before storing")), (201, None)]);
}
