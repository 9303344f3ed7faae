//! The console as `make run` serves it, in a real browser: `vigie run` scores the bundled
//! sample stream with the real model and prints the console's URL and the demo token; a person
//! signs in with that token in Debian's headless chromium, states a purpose, sees an alert of
//! the sample (the words that drove its score marked), reviews it with the keyboard alone,
//! finds it again with a search, and opens its lineage (fetched from the file, scored by the
//! shipped heads, the review, the accesses). An auditor signs in and is refused the post's page.
//! Screenshots go to `target/console-screenshots/replayed-*.png`.

use crate::browser::{self, assert_accessible, click, shot, sign_in, text_of, type_into};
use crate::util::Vigie;
use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::Value;
use std::time::{Duration, Instant};
use vigie_logs::access_log;

/// The longest run of letters in `text`: a word a search finds the post by.
fn rarest_looking_word(text: &str) -> String {
    text.split(|c: char| !c.is_alphabetic())
        .max_by_key(|w| w.chars().count())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_run_prints_the_console_where_a_replayed_alert_is_reviewed_and_found_again() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Vigie::new(data.path())
        .args(["run", "--input", "fixtures/sample-stream.jsonl"])
        .args(["--listen", "127.0.0.1:0"])
        .serve_within(Duration::from_secs(600));
    let base = server.base.clone();
    // What `make run` prints besides the API's address: the console, and the token.
    let console = server.line("console: ", Duration::from_secs(10));
    assert_eq!(console, format!("{base}/console/"));
    let told = server.line(
        "  sign in as `demo` with the token in ",
        Duration::from_secs(10),
    );
    let token = told.rsplit(": ").next().unwrap().trim().to_string();
    let kept = std::fs::read_to_string(data.path().join("demo.token")).unwrap();
    assert_eq!(token, kept.trim(), "{told}");

    let driver = browser::driver();
    let c = browser::browser(&driver, "fr").await;
    sign_in(&c, &base, &token, "veille des sites olympiques").await;
    // The first alert of the queue: a post of the sample the model scored at or above the
    // threshold, with the explanation's words marked in its text.
    let card = c
        .wait()
        .for_element(Locator::Css("article.alert"))
        .await
        .expect("the replayed sample put alerts in the queue");
    let card_id = card.attr("id").await.unwrap().unwrap();
    let id = card_id.strip_prefix("post-").unwrap().to_string();
    let card_css = format!("article[id='{card_id}']");
    let marks = c
        .find_all(Locator::Css(&format!("{card_css} p.text mark")))
        .await
        .unwrap();
    assert!(!marks.is_empty(), "no explanation word marked in the alert");
    let post: Value = reqwest::Client::new()
        .get(format!("{base}/v1/posts/{id}?purpose=console%20test"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = post["post"]["text"].as_str().unwrap().to_string();
    // Scored by the shipped heads through the default runtime, and the record says which.
    assert_eq!(post["scoring"]["runtime"], "int8", "{}", post["scoring"]);
    assert_eq!(post["lineage"]["scored"]["runtime"], "int8");
    assert!(
        text_of(&c, &format!("{card_css} p.text"))
            .await
            .contains(&text[..text.len().min(20)]),
        "the card shows the post's text"
    );
    shot(&c, "replayed-queue").await;
    assert_accessible(&c, "replayed-queue").await;

    // Reviewed with the keyboard alone: space checks the radio, Enter in the note sends.
    let form = format!("{card_css} form.review");
    c.find(Locator::Css(&format!("{form} input[value=confirmed]")))
        .await
        .unwrap()
        .send_keys(" ")
        .await
        .unwrap();
    let note = "vérifié auprès de la préfecture";
    c.find(Locator::Css(&format!("{form} input[name=note]")))
        .await
        .unwrap()
        .send_keys(&format!("{note}{}", &*Key::Enter))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while c.find(Locator::Css(&card_css)).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the reviewed alert stays in the queue"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Found again with a search on one of its words.
    let word = rarest_looking_word(&text);
    click(&c, "header nav a[href='/console/search']").await;
    type_into(&c, "#q", &word).await;
    click(&c, "form.search button[type=submit]").await;
    let results = text_of(&c, "section.results").await;
    assert!(
        c.find(Locator::Css(&format!("section.results {card_css}")))
            .await
            .is_ok(),
        "a search for `{word}` does not list the post: {results}"
    );
    shot(&c, "replayed-search").await;
    assert_accessible(&c, "replayed-search").await;

    // Its lineage: fetched from the replayed file, scored by the shipped heads, the review,
    // and the accesses with the session's purpose.
    click(
        &c,
        &format!("section.results {card_css} a[href='/console/posts/{id}']"),
    )
    .await;
    let lineage = text_of(&c, "ol.lineage").await;
    assert!(
        lineage.contains("file://") && lineage.contains("heads-") && lineage.contains("(int8)"),
        "{lineage}"
    );
    let review = text_of(&c, "li.review-step").await;
    assert!(review.contains("demo") && review.contains(note), "{review}");
    let accesses = text_of(&c, "table.accesses").await;
    assert!(
        accesses.contains("veille des sites olympiques") && accesses.contains("/console/search"),
        "{accesses}"
    );
    shot(&c, "replayed-post").await;
    assert_accessible(&c, "replayed-post").await;
    c.close().await.unwrap();

    // An auditor signs in, then asks for the post's page by its address: refused, no text.
    let olga = Vigie::new(data.path())
        .args(["users", "add", "olga", "--role", "auditor"])
        .ok()
        .trim()
        .to_string();
    let a = browser::browser(&driver, "en").await;
    sign_in(&a, &base, &olga, "annual audit").await;
    a.goto(&format!("{base}/console/posts/{id}")).await.unwrap();
    let body = text_of(&a, "body").await;
    assert!(!body.contains(&text[..text.len().min(20)]), "{body}");
    shot(&a, "replayed-auditor-refused").await;
    assert_accessible(&a, "replayed-auditor-refused").await;
    a.close().await.unwrap();
    server.stop();

    let log = std::fs::read_to_string(data.path().join("access-log").join(access_log::FILE_NAME))
        .unwrap();
    let entries = access_log::entries(&log);
    assert!(
        entries.iter().any(|e| e.user.as_deref() == Some("demo")
            && e.endpoint.ends_with("/review")
            && e.posts == [id.clone()]
            && e.purpose.as_deref() == Some("veille des sites olympiques")
            && e.params.get("note").and_then(Value::as_str) == Some(note)),
        "the keyboard review's entry"
    );
    let refused = entries
        .iter()
        .find(|e| e.user.as_deref() == Some("olga") && e.endpoint == format!("/console/posts/{id}"))
        .expect("the auditor's attempt is logged");
    assert_eq!(refused.status, 403);
    assert!(refused.posts.is_empty(), "{refused:?}");
}
