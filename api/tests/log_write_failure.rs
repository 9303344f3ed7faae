//! When the access log cannot be written, the answer is withheld (500), and the log stays a
//! valid chain without the failed entries. The failure is real: the file-size limit of this
//! process is lowered under the log's size, so the kernel refuses the write (EFBIG).
//! (One test in this binary: the limit applies to the whole process.)
#![allow(clippy::unwrap_used)]

mod common;

use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn no_answer_leaves_without_its_entry() {
    let mut server = common::start(1000).await;
    let http = reqwest::Client::new();
    let search = format!("{}/v1/search?q=fire&purpose=case%201", server.base);
    let token = server.tokens["ana"].clone();
    let first = http.get(&search).bearer_auth(&token).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);

    let size = std::fs::metadata(&server.log_path).unwrap().len();
    common::set_file_size_limit(size + 10);
    for _ in 0..2 {
        let refused = http.get(&search).bearer_auth(&token).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            refused.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = refused.json().await.unwrap();
        assert_eq!(problem["title"], "access log unavailable");
        assert!(problem.get("hits").is_none());
    }
    assert_eq!(
        std::fs::metadata(&server.log_path).unwrap().len(),
        size,
        "the partial write was cut off"
    );

    common::set_file_size_limit(libc::RLIM_INFINITY);
    let again = http.get(&search).bearer_auth(&token).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    server.stop().await;

    let log = std::fs::read(&server.log_path).unwrap();
    let report = vigie_logs::access_log::verify_log(&log, &server.public_key()).unwrap();
    assert_eq!((report.entries, report.last, report.covered), (2, 2, 2));
    assert!(server.entries().iter().all(|e| e.status == 200));
}
