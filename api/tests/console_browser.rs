//! The console in a real browser: Debian's headless chromium, driven through chromedriver
//! (both installed by `scripts/setup.sh --broker`). An analyst signs in, states a purpose, sees
//! an alert, reviews it with the keyboard-reachable form, and the queue no longer shows it; finds
//! it again with a search and opens its lineage (the review, the accesses), opens the incident
//! the alerts make and its map; a new alert appears
//! in the open queue by itself; an auditor signs in and sees no post. Each page is saved as a screenshot in
//! `target/console-screenshots/` (the README shows two).

use crate::common;

use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vigie_record::fixtures::scored;

/// A chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian's chromium-driver): run scripts/setup.sh --broker");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn browser(driver: &Driver, lang: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900",
                     format!("--lang={lang}")],
            "prefs": {"intl.accept_languages": lang},
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// Types `text` into the element `css` finds (once there is one).
async fn type_into(c: &Client, css: &str, text: &str) {
    let field = c.wait().for_element(Locator::Css(css)).await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Clicks the element `css` finds (once there is one).
async fn click(c: &Client, css: &str) {
    let element = c.wait().for_element(Locator::Css(css)).await.unwrap();
    element.click().await.unwrap();
}

/// The text of the element `css` finds, once there is one (a page may still be loading, and
/// an element of the page being left goes stale: both are tried again, for 10 s).
async fn text_of(c: &Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(element) = c.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "no `{css}` within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(c: &Client, base: &str, token: &str, purpose: &str) {
    c.goto(&format!("{base}/console/login")).await.unwrap();
    type_into(c, "#token", token).await;
    type_into(c, "#purpose", purpose).await;
    click(c, "form button[type=submit]").await;
    c.wait()
        .for_url(url::Url::parse(&format!("{base}/console/")).unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_reviews_an_alert_in_the_browser_and_an_auditor_sees_no_post() {
    let posts = vec![
        common::fire(
            1,
            0,
            "Incendie d'un entrepôt à Vénissieux, fumée noire",
            ("Vénissieux", 45.697, 4.886),
            0.93,
        ),
        common::fire(
            2,
            12,
            "Explosion entendue près de la gare Part-Dieu",
            ("Lyon", 45.760, 4.859),
            0.78,
        ),
        scored("3", "Beau coucher de soleil sur la Saône", 0.02),
    ];
    let first = posts[0].post.id.to_string();
    let mut server = common::start_with(&posts, 100).await;
    let driver = driver();

    let c = browser(&driver, "fr").await;
    c.goto(&format!("{}/console/login", server.base))
        .await
        .unwrap();
    let title = text_of(&c, "h1").await;
    assert_eq!(title, "Connexion", "French from the browser's language");
    shot(&c, "login").await;
    sign_in(&c, &server.base, &server.tokens["ana"], "affaire 2026-117").await;
    // The queue: both alerts, the purpose in the header, the calm post absent.
    let card = c
        .find(Locator::Id(&format!("post-{first}")))
        .await
        .expect("the alert is in the queue");
    assert!(card.text().await.unwrap().contains("Vénissieux"));
    let purpose = c
        .find(Locator::Id("purpose-field"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(purpose.as_deref(), Some("affaire 2026-117"));
    let body = text_of(&c, "main").await;
    assert!(!body.contains("coucher de soleil"));
    // The explanation words are marked in the text (the fixture has none: no <mark>), and the
    // danger bar is there.
    assert!(c
        .find(Locator::Css(&format!("#post-{first} meter")))
        .await
        .is_ok());
    shot(&c, "queue").await;

    // The incident the two alerts make: its page has the map of their places.
    click(&c, "ul.incidents a").await;
    let heading = text_of(&c, "h1").await;
    assert!(heading.starts_with("Incident"), "{heading}");
    let circles = c
        .find_all(Locator::Css("figure.map svg circle"))
        .await
        .unwrap();
    assert_eq!(circles.len(), 2);
    let map = text_of(&c, "figure.map").await;
    assert!(map.contains("Vénissieux") && map.contains("Lyon"), "{map}");
    shot(&c, "incident").await;
    c.goto(&format!("{}/console/", server.base)).await.unwrap();

    // Review it: the radio, a note, the button.
    let form = format!("#post-{first} form.review");
    click(&c, &format!("{form} input[value=confirmed]")).await;
    type_into(
        &c,
        &format!("{form} input[name=note]"),
        "pompiers sur place, confirmé par le CODIS",
    )
    .await;
    click(&c, &format!("{form} button")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.find(Locator::Id(&format!("post-{first}"))).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the reviewed alert stays in the queue"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot(&c, "queue-reviewed").await;
    // The review is in the log with the session's purpose.
    let logged = server.entries().into_iter().any(|e| {
        e.endpoint.ends_with("/review")
            && e.posts == [first.clone()]
            && e.purpose.as_deref() == Some("affaire 2026-117")
            && e.params.get("note").and_then(|n| n.as_str())
                == Some("pompiers sur place, confirmé par le CODIS")
    });
    assert!(logged, "the review's entry");
    // Found again with a search, then its page: the lineage holds the review, and the accesses
    // table the queue views.
    click(&c, "header nav a[href='/console/search']").await;
    type_into(&c, "#q", "Vénissieux").await;
    click(&c, "form.search button[type=submit]").await;
    let found = text_of(&c, "section.results").await;
    assert!(found.contains("entrepôt à Vénissieux"), "{found}");
    assert!(text_of(&c, "p.total").await.starts_with('1'));
    shot(&c, "search").await;
    click(
        &c,
        &format!("#post-{first} a[href='/console/posts/{first}']"),
    )
    .await;
    let review = text_of(&c, "li.review-step").await;
    assert!(
        review.contains("ana") && review.contains("confirmé par le CODIS"),
        "{review}"
    );
    let accesses = text_of(&c, "table.accesses").await;
    assert!(
        accesses.contains("affaire 2026-117") && accesses.contains("/console/"),
        "{accesses}"
    );
    shot(&c, "post").await;
    c.goto(&format!("{}/console/", server.base)).await.unwrap();
    // Live: an alert indexed while the page is open shows up, nobody reloading by hand.
    let new = scored(
        "4",
        "Fusillade signalée place Bellecour, évitez le secteur",
        0.88,
    );
    let new_id = new.post.id.to_string();
    let mut w = server.index.writer().unwrap();
    w.upsert(&new).unwrap();
    w.commit(None).unwrap();
    drop(w);
    let deadline = Instant::now() + Duration::from_secs(15);
    while c
        .find(Locator::Id(&format!("post-{new_id}")))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            let events: Vec<_> = server
                .entries()
                .into_iter()
                .filter(|e| e.endpoint.starts_with("/console"))
                .map(|e| (e.method, e.endpoint, e.status))
                .collect();
            panic!("the new alert did not appear in the open queue: {events:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The incident, reviewed as one situation: its page says so, and the queue no longer
    // lists it (nor its posts: the verdict reaches each of them).
    click(
        &c,
        &format!("ul.incidents a[href='/console/incidents/inc-{first}']"),
    )
    .await;
    click(&c, "form.review input[value=confirmed]").await;
    type_into(
        &c,
        "form.review input[name=note]",
        "un seul incendie, deux témoins",
    )
    .await;
    click(&c, "form.review button").await;
    let reviewed = text_of(&c, "p.reviewed").await;
    assert!(reviewed.contains("ana"), "{reviewed}");
    c.goto(&format!("{}/console/", server.base)).await.unwrap();
    let listed = c
        .find_all(Locator::Css(&format!(
            "ul.incidents a[href='/console/incidents/inc-{first}']"
        )))
        .await
        .unwrap();
    assert!(listed.is_empty(), "a reviewed incident left the queue");
    // Switch to English, then sign out.
    click(&c, "form.lang button").await;
    // (The page reloads: wait for the English one.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while text_of(&c, "h1").await != "Alert queue" {
        assert!(
            Instant::now() < deadline,
            "the page did not switch to English"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    click(&c, "form.out button").await;
    c.wait()
        .for_url(url::Url::parse(&format!("{}/console/login", server.base)).unwrap())
        .await
        .unwrap();
    c.close().await.unwrap();

    // An auditor: no post text anywhere.
    let a = browser(&driver, "en").await;
    sign_in(&a, &server.base, &server.tokens["olga"], "annual audit").await;
    let body = text_of(&a, "body").await;
    assert!(
        !body.contains("Explosion") && !body.contains("Vénissieux"),
        "{body}"
    );
    click(&a, "#verify").await;
    let verdict = text_of(&a, "section.verdict").await;
    assert!(verdict.contains("Intact"), "{verdict}");
    shot(&a, "auditor").await;
    a.close().await.unwrap();
    server.stop().await;
}
