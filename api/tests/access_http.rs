//! Over real HTTP: each role's allowed and refused calls, every one of them in the access log,
//! and the auditor's export verifying with the published key.

use crate::common;

use reqwest::StatusCode;
use serde_json::Value;
use vigie_logs::access_log::verify_export;

const SEARCH: &str = "/v1/search?q=fire&purpose=case%2012";
const EXPORT: &str = "/v1/audit/export";

async fn call(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = http.get(format!("{base}{path}"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn each_role_gets_what_it_may_and_every_call_is_logged() {
    let mut server = common::start(4).await;
    let http = reqwest::Client::new();
    let t = |name: &str| server.tokens[name].clone();
    let cases: Vec<(&str, Option<String>, StatusCode)> = vec![
        (SEARCH, Some(t("ana")), StatusCode::OK),
        (SEARCH, Some(t("olga")), StatusCode::FORBIDDEN),
        (SEARCH, Some(t("eve")), StatusCode::FORBIDDEN),
        (SEARCH, Some(t("adam")), StatusCode::FORBIDDEN),
        (SEARCH, None, StatusCode::UNAUTHORIZED),
        (
            SEARCH,
            Some("vigie_not-a-token".into()),
            StatusCode::UNAUTHORIZED,
        ),
        (EXPORT, Some(t("ana")), StatusCode::FORBIDDEN),
        (EXPORT, Some(t("eve")), StatusCode::FORBIDDEN),
        (EXPORT, Some(t("adam")), StatusCode::FORBIDDEN),
        (EXPORT, None, StatusCode::UNAUTHORIZED),
        ("/v1/search?q=fire", Some(t("ana")), StatusCode::BAD_REQUEST),
    ];
    for (path, token, expected) in &cases {
        let res = call(&http, &server.base, path, token.as_deref()).await;
        assert_eq!(res.status(), *expected, "{path} with {token:?}");
        if *expected != StatusCode::OK {
            assert_eq!(res.headers()["content-type"], "application/problem+json");
        }
        if *expected == StatusCode::UNAUTHORIZED {
            assert_eq!(res.headers()["www-authenticate"], "Bearer");
        }
        if *expected == StatusCode::FORBIDDEN {
            let problem: Value = res.json().await.unwrap();
            assert!(
                problem["detail"].as_str().unwrap().contains("may not"),
                "{problem}"
            );
        }
    }
    // Health checks need no token and touch no data.
    let health = call(&http, &server.base, "/healthz", None).await;
    assert_eq!(health.status(), StatusCode::OK);

    // Every call above, allowed or refused, is in the log, in order, with who and what.
    let entries = server.entries();
    assert_eq!(entries.len(), cases.len());
    for (entry, (path, token, expected)) in entries.iter().zip(&cases) {
        assert_eq!(entry.status, expected.as_u16(), "{path}");
        assert_eq!(
            format!("{}", entry.endpoint),
            path.split('?').next().unwrap()
        );
        let known = token.as_deref().and_then(|tok| {
            server
                .tokens
                .iter()
                .find(|(_, v)| v.as_str() == tok)
                .map(|(k, _)| k.to_string())
        });
        assert_eq!(entry.user, known, "{path}");
    }
    let ok = &entries[0];
    assert_eq!(ok.purpose.as_deref(), Some("case 12"));
    assert_eq!((ok.count, ok.posts.len()), (2, 2));
    assert_eq!(entries[1].role.as_deref(), Some("auditor"));
    assert_eq!(
        entries[1].purpose.as_deref(),
        Some("case 12"),
        "refused calls keep what they claimed"
    );
    assert!(entries[1].posts.is_empty());
    let logged = std::fs::read_to_string(&server.log_path).unwrap();
    for token in server.tokens.values() {
        assert!(!logged.contains(token.as_str()), "tokens are never logged");
    }

    // The auditor's export: intact, verifiable with the published key, no post text.
    let res = call(&http, &server.base, EXPORT, Some(&t("olga"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/jsonl");
    let export = res.bytes().await.unwrap();
    let report = verify_export(&export, &server.public_key()).unwrap();
    assert_eq!((report.first, report.last), (1, cases.len() as u64));
    assert_eq!(report.entries, cases.len() as u64);
    assert!(report.checkpoints >= 2);
    let text = String::from_utf8(export.to_vec()).unwrap();
    assert!(
        !text.contains("Warehouse"),
        "exports carry ids, never post text"
    );

    // Filtered by user: only ana's calls in full, the rest as digests.
    let res = call(
        &http,
        &server.base,
        "/v1/audit/export?user=ana",
        Some(&t("olga")),
    )
    .await;
    let report = verify_export(&res.bytes().await.unwrap(), &server.public_key()).unwrap();
    // Her search, her refused export, her search without a purpose.
    assert_eq!(report.entries, 3);
    // A bad time is explained.
    let res = call(
        &http,
        &server.base,
        "/v1/audit/export?from=yesterday",
        Some(&t("olga")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["title"], "invalid `from`");

    // A removed user is refused from the next request on.
    vigie_api::users::remove_user(&server.data.path().join("users.json"), "ana").unwrap();
    let res = call(&http, &server.base, SEARCH, Some(&t("ana"))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Shutting down signs a checkpoint over everything.
    server.stop().await;
    let log = std::fs::read(&server.log_path).unwrap();
    let report = vigie_logs::access_log::verify_log(&log, &server.public_key()).unwrap();
    assert_eq!(report.covered, report.last);
    assert_eq!(report.entries, cases.len() as u64 + 4);
}
