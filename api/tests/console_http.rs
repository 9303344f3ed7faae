//! The console over real HTTP: sign-in with a token and a purpose, the session cookie, CSRF on
//! every form, the alert queue (escaped text, the access log naming what a page showed), a
//! review from the queue, sign-out, auditors who see no post, and a user removed mid-session.

use crate::common;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use vigie_record::fixtures::scored;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs `user` in with `purpose`; the session cookie (`name=value`).
async fn sign_in(server: &common::Server, user: &str, purpose: &str) -> String {
    let res = client()
        .post(format!("{}/console/login", server.base))
        .form(&[
            ("token", server.tokens[user].as_str()),
            ("purpose", purpose),
            ("lang", "en"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{user}");
    assert_eq!(res.headers()[LOCATION], "/console/");
    let set = res.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    set.split(';').next().unwrap().to_string()
}

async fn page(server: &common::Server, cookie: &str, path: &str) -> (StatusCode, String) {
    let res = client()
        .get(format!("{}{path}", server.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

/// The CSRF token the page's forms carry.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[at..at + 64].to_string()
}

fn posts() -> Vec<vigie_record::Envelope> {
    vec![
        scored("1", "Warehouse fire in Vénissieux, thick smoke", 0.92),
        scored(
            "2",
            "Explosion <script>alert('x')</script> at the depot",
            0.81,
        ),
        scored("3", "Fire drill at the school this morning", 0.2),
    ]
}

#[tokio::test]
async fn a_person_signs_in_sees_the_queue_reviews_and_signs_out_every_step_logged() {
    let mut server = common::start_with(&posts(), 100).await;
    // No session: to the sign-in page (and that request is logged).
    let res = client()
        .get(format!("{}/console/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/console/login");
    let res = client()
        .get(format!("{}/console/login", server.base))
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let login = res.text().await.unwrap();
    assert!(
        login.contains("lang=\"en\"") && login.contains("Sign in"),
        "{login}"
    );
    let french = client()
        .get(format!("{}/console/login", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(french.contains("Connexion"));
    // A wrong token, or no purpose: refused, no cookie.
    let bad = client()
        .post(format!("{}/console/login", server.base))
        .form(&[("token", "vigie_nope"), ("purpose", "case 7")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(bad.headers().get(SET_COOKIE).is_none());
    let no_purpose = client()
        .post(format!("{}/console/login", server.base))
        .form(&[("token", server.tokens["ana"].as_str()), ("purpose", " ")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_purpose.status(), StatusCode::BAD_REQUEST);

    let cookie = sign_in(&server, "ana", "case 2026-117").await;
    // A refusal page never carries markup from the request: an incident id made of markup,
    // which the 404's detail names, is escaped in the page.
    let hostile = client()
        .get(format!(
            "{}/console/incidents/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            server.base
        ))
        .header(COOKIE, &cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(hostile.status(), StatusCode::NOT_FOUND);
    let body = hostile.text().await.unwrap();
    assert!(body.contains("&lt;script&gt;alert(1)"), "{body}");
    assert!(!body.contains("<script>alert"), "{body}");
    let (status, queue) = page(&server, &cookie, "/console/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        queue.contains("case 2026-117"),
        "the purpose is on the page"
    );
    assert!(queue.contains("Warehouse fire in"));
    let warehouse = posts()[0].post.id.to_string();
    assert!(queue.contains(&format!("id=\"post-{warehouse}\"")));
    // A post's text is text: escaped, never markup.
    assert!(!queue.contains("<script>alert"), "{queue}");
    assert!(queue.contains("&lt;script&gt;"));
    // The calm post is no alert.
    assert!(!queue.contains("Fire drill"));

    // The log: the sign-in is ana's, with her purpose, and holds no token; the queue view lists
    // the posts it showed, with the session's purpose.
    let entries = server.entries();
    let signed = entries
        .iter()
        .find(|e| e.endpoint == "/console/login" && e.status == 303)
        .unwrap();
    assert_eq!(signed.user.as_deref(), Some("ana"));
    assert_eq!(signed.purpose.as_deref(), Some("case 2026-117"));
    let log_text = std::fs::read_to_string(&server.log_path).unwrap();
    assert!(
        !log_text.contains(server.tokens["ana"].as_str()),
        "a token in the log"
    );
    let viewed = entries
        .iter()
        .find(|e| e.endpoint == "/console/" && e.status == 200)
        .unwrap();
    assert_eq!(viewed.purpose.as_deref(), Some("case 2026-117"));
    assert_eq!(viewed.posts.len(), 2, "{viewed:?}");
    assert!(viewed.posts.contains(&warehouse));

    // A review without the CSRF token is refused; with it, stored and off the queue.
    let path = format!("{}/console/posts/{warehouse}/review", server.base);
    let forged = client()
        .post(&path)
        .header(COOKIE, &cookie)
        .form(&[("verdict", "confirmed"), ("note", "seen on TV")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let wrong = client()
        .post(&path)
        .header(COOKIE, &cookie)
        .form(&[("csrf", "0".repeat(64).as_str()), ("verdict", "confirmed")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let csrf = csrf_of(&queue);
    let ok = client()
        .post(&path)
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("verdict", "confirmed"),
            ("note", "pompiers sur place"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let (_, queue) = page(&server, &cookie, "/console/").await;
    assert!(
        !queue.contains(&format!("id=\"post-{warehouse}\"")),
        "reviewed: off the queue"
    );
    let entries = server.entries();
    let review_entries: Vec<_> = entries
        .iter()
        .filter(|e| e.endpoint.ends_with("/review") && e.posts == [warehouse.clone()])
        .collect();
    // Logged before it was stored, then the request itself; both with the session's purpose.
    assert!(review_entries.len() >= 2, "{review_entries:?}");
    assert!(review_entries
        .iter()
        .all(|e| e.purpose.as_deref() == Some("case 2026-117")));
    assert!(entries
        .iter()
        .any(|e| e.endpoint.ends_with("/review") && e.status == 403));

    // The post's page: its lineage shows the review, and the page view is logged.
    let (status, post_page) = page(&server, &cookie, &format!("/console/posts/{warehouse}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(post_page.contains("pompiers sur place"), "{post_page}");
    assert!(server
        .entries()
        .iter()
        .any(|e| e.endpoint == format!("/console/posts/{warehouse}")
            && e.posts == [warehouse.clone()]
            && e.purpose.as_deref() == Some("case 2026-117")));
    let (status, _) = page(&server, &cookie, "/console/posts/no-such-post").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The search page: the session's purpose, the posts shown logged; a bad query is refused.
    let (status, results) = page(&server, &cookie, "/console/search?q=fire&sort=score").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        results.contains(&format!("id=\"post-{warehouse}\"")),
        "{results}"
    );
    assert!(server
        .entries()
        .iter()
        .any(|e| e.endpoint == "/console/search"
            && e.posts.contains(&warehouse)
            && e.purpose.as_deref() == Some("case 2026-117")));
    let (status, _) = page(&server, &cookie, "/console/search?q=(((").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = page(&server, &cookie, "/console/search?colour=red").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The cookie also reaches the API for reads (the console's scripts), with a purpose.
    let (status, _) = page(
        &server,
        &cookie,
        "/v1/search?q=fire&purpose=case%202026-117",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // An unsafe API call from the session needs the CSRF header.
    let api_review = client()
        .post(format!("{}/v1/posts/{warehouse}/review", server.base))
        .header(COOKIE, &cookie)
        .json(&serde_json::json!({"verdict": "unclear"}))
        .send()
        .await
        .unwrap();
    assert_eq!(api_review.status(), StatusCode::FORBIDDEN);

    // Sign out: the cookie leads to the sign-in page again.
    let out = client()
        .post(format!("{}/console/logout", server.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (status, _) = page(&server, &cookie, "/console/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    server.stop().await;
}

#[tokio::test]
async fn auditors_see_no_post_and_a_removed_user_is_signed_out() {
    let mut server = common::start_with(&posts(), 100).await;
    let cookie = sign_in(&server, "olga", "annual audit").await;
    let (status, home) = page(&server, &cookie, "/console/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!home.contains("Warehouse") && !home.contains("Explosion"));
    let csrf = csrf_of(&home);
    let id = posts()[0].post.id.to_string();
    let review = client()
        .post(format!("{}/console/posts/{id}/review", server.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("verdict", "confirmed")])
        .send()
        .await
        .unwrap();
    assert_eq!(review.status(), StatusCode::FORBIDDEN);
    // A post's page asked for by its address: refused. A browser gets a page that says why
    // (same status, no post text); a script, the API's problem JSON.
    for (accept, html) in [
        ("text/html,application/xhtml+xml,*/*;q=0.8", true),
        ("*/*", false),
    ] {
        let res = client()
            .get(format!("{}/console/posts/{id}", server.base))
            .header(COOKIE, &cookie)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{accept}");
        let kind = res.headers()["content-type"].to_str().unwrap().to_string();
        let body = res.text().await.unwrap();
        assert!(!body.contains("Warehouse"), "{body}");
        if html {
            assert!(kind.starts_with("text/html"), "{kind}");
            assert!(
                body.contains("<h1>This page cannot be shown</h1>"),
                "{body}"
            );
            assert!(body.contains("role `auditor`"), "{body}");
            assert!(
                body.contains("annual audit"),
                "the purpose is shown: {body}"
            );
        } else {
            assert_eq!(kind, "application/problem+json");
        }
    }
    // A post that does not exist, in a browser: the page says so, with its status.
    let missing = client()
        .get(format!("{}/console/posts/no-such-post", server.base))
        .header(COOKIE, &cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        missing.status(),
        StatusCode::FORBIDDEN,
        "an auditor learns nothing of ids"
    );
    // The audit page: the export form, and a verification of what it would export.
    assert!(home.contains("action=\"/console/audit/verify\""), "{home}");
    let (status, verdict) = page(
        &server,
        &cookie,
        "/console/audit/verify?purpose=annual%20audit",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(verdict.contains("Intact"), "{verdict}");
    // The export itself, through the cookie (a GET of the API).
    let (status, export) = page(&server, &cookie, "/v1/audit/export?purpose=annual%20audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !export.contains("Warehouse"),
        "an export holds no post text"
    );
    // An entry altered on disk: the verification says so.
    let log = std::fs::read_to_string(&server.log_path).unwrap();
    let altered = log.replacen("\"olga\"", "\"oLga\"", 1);
    assert_ne!(altered, log);
    std::fs::write(&server.log_path, altered).unwrap();
    let (_, verdict) = page(
        &server,
        &cookie,
        "/console/audit/verify?purpose=annual%20audit",
    )
    .await;
    assert!(verdict.contains("Tampered with"), "{verdict}");
    // Nor the queue's live events.
    assert_eq!(
        page(&server, &cookie, "/console/queue/events").await.0,
        StatusCode::FORBIDDEN
    );
    // Experimenters and admins may not use the console at all.
    for user in ["eve", "adam"] {
        let res = client()
            .post(format!("{}/console/login", server.base))
            .form(&[("token", server.tokens[user].as_str()), ("purpose", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{user}");
        assert!(res.headers().get(SET_COOKIE).is_none());
    }
    // A user removed while signed in is signed out at their next request.
    let ana = sign_in(&server, "ana", "case 1").await;
    assert_eq!(page(&server, &ana, "/console/").await.0, StatusCode::OK);
    assert_eq!(
        page(&server, &ana, "/console/audit/verify").await.0,
        StatusCode::FORBIDDEN
    );
    vigie_api::users::remove_user(
        &server.data.path().join(vigie_api::users::USERS_FILE),
        "ana",
    )
    .unwrap();
    assert_eq!(
        page(&server, &ana, "/console/").await.0,
        StatusCode::SEE_OTHER
    );
    // A made-up cookie is no session.
    let forged = format!("vigie_session={}", "a".repeat(64));
    assert_eq!(
        page(&server, &forged, "/console/").await.0,
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}
