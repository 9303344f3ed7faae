//! The console in a real browser: Debian's headless chromium, driven through chromedriver
//! (both installed by `scripts/setup.sh --broker`). An analyst signs in, states a purpose, sees
//! an alert, reviews it with the keyboard-reachable form, and the queue no longer shows it; finds
//! it again with a search and opens its lineage (the review, the accesses), opens the incident
//! the alerts make and its map; a new alert appears
//! in the open queue by itself; an auditor signs in and sees no post. Each page is checked for
//! what a script can tell of WCAG 2.1 AA (labels, contrast, language, a skip link) and the queue
//! is walked with the Tab key; each page is saved as a screenshot in
//! `target/console-screenshots/` (the README shows two). A deployment's tile server is drawn
//! under the incident map.

use crate::common;

use crate::common::browser::{
    assert_accessible, browser, click, driver, shot, sign_in, tab_order, text_of, type_into,
};
use fantoccini::Locator;
use std::time::{Duration, Instant};
use vigie_record::fixtures::scored;

/// Two alerts 12 minutes apart, 7 km apart in Lyon: one incident with two places.
fn lyon_fires() -> Vec<vigie_record::Envelope> {
    vec![
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
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_reviews_an_alert_in_the_browser_and_an_auditor_sees_no_post() {
    let mut posts = lyon_fires();
    posts.push(scored("3", "Beau coucher de soleil sur la Saône", 0.02));
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
    assert_accessible(&c, "login").await;
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
    assert_accessible(&c, "queue").await;
    // Everything is reached with the Tab key: the skip link first, then the menu, the
    // purpose, and each alert's review form.
    let order = tab_order(&c, 60).await;
    assert_eq!(
        order.first().map(String::as_str),
        Some("a[href=#main]"),
        "{order:?}"
    );
    for stop in [
        "a[href=/console/search]",
        "input#purpose-field[name=purpose]",
        "form.review input[name=verdict][value=confirmed]",
        "form.review input[name=note]",
        "form.review button",
    ] {
        assert!(
            order.iter().any(|e| e.ends_with(stop)),
            "{stop} not reached: {order:?}"
        );
    }

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
    assert_accessible(&c, "incident").await;
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
    assert_accessible(&c, "search").await;
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
    assert_accessible(&c, "post").await;
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
    assert_accessible(&a, "auditor").await;
    a.close().await.unwrap();
    server.stop().await;
}

/// A 1x1 grey PNG: the test tile server's answer to every tile.
const TILE_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b,
    0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x38, 0x01, 0x00, 0x00,
    0xca, 0x00, 0xc9, 0x99, 0xca, 0x5d, 0x7e, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// The tiles a tile server was asked for: (z, x, y).
type Asked = std::sync::Arc<std::sync::Mutex<Vec<(u32, i64, i64)>>>;

/// A slippy-map tile server on 127.0.0.1 (`/{z}/{x}/{y}.png`, each answered with
/// [`TILE_PNG`]); returns its base URL and the tiles asked for.
async fn tile_server() -> (String, Asked) {
    use axum::extract::Path;
    use axum::response::IntoResponse;
    let asked: Asked = Default::default();
    let seen = asked.clone();
    let app = axum::Router::new().route(
        "/{z}/{x}/{file}",
        axum::routing::get(move |Path((z, x, file)): Path<(u32, i64, String)>| {
            let seen = seen.clone();
            async move {
                let y = file.strip_suffix(".png").and_then(|y| y.parse().ok());
                match y {
                    Some(y) => {
                        seen.lock().unwrap().push((z, x, y));
                        ([("content-type", "image/png")], TILE_PNG).into_response()
                    }
                    None => axum::http::StatusCode::NOT_FOUND.into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, asked)
}

/// The slippy-map tile holding (lat, lon) at zoom `z`, as tile servers number them.
fn tile_of(lat: f64, lon: f64, z: u32) -> (i64, i64) {
    let n = f64::from(1u32 << z);
    let lat = lat.to_radians();
    let x = (lon + 180.0) / 360.0 * n;
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n;
    (x.floor() as i64, y.floor() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployments_tile_server_draws_the_incident_map_under_its_places() {
    let (tiles, asked) = tile_server().await;
    let posts = lyon_fires();
    let console = vigie_api::console::Console {
        map_tiles: Some(format!("{tiles}/{{z}}/{{x}}/{{y}}.png")),
        ..Default::default()
    };
    let mut server = common::start_configured(&posts, 100, Default::default(), console).await;
    let driver = driver();
    let c = browser(&driver, "en").await;
    sign_in(&c, &server.base, &server.tokens["ana"], "tiles test").await;
    click(&c, "ul.incidents a").await;
    let images = c
        .find_all(Locator::Css("figure.map svg image"))
        .await
        .unwrap();
    assert!(images.len() >= 6, "{} tiles drawn", images.len());
    // The browser fetched them from the tile server, all at one zoom, the tiles under both
    // places among them.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = asked.lock().unwrap().clone();
        if got.len() >= images.len() {
            let z = got[0].0;
            assert!(got.iter().all(|t| t.0 == z), "{got:?}");
            assert!((9..=14).contains(&z), "zoom {z} for two places 7 km apart");
            for (lat, lon) in [(45.697, 4.886), (45.760, 4.859)] {
                let (x, y) = tile_of(lat, lon, z);
                assert!(got.contains(&(z, x, y)), "({z}, {x}, {y}) not in {got:?}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the browser asked for {got:?} only"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let caption = text_of(&c, "figure.map figcaption").await;
    assert!(caption.contains("tile server"), "{caption}");
    shot(&c, "incident-tiles").await;
    c.close().await.unwrap();
    server.stop().await;
}
