//! RSS 2.0 and Atom feeds against a local server that honours conditional GET.

use crate::common;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use common::Collect;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigie_ingest::driver::{self, RunOptions};
use vigie_ingest::rss::{Feed, FeedConfig};
use vigie_ingest::state::StateStore;
use vigie_ingest::Item;

const RSS_V1: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>Préfecture du Rhône — Alertes</title>
    <link>https://www.rhone.gouv.fr/</link>
    <description>Alertes et communiqués de la préfecture</description>
    <language>fr</language>
    <lastBuildDate>Fri, 27 Nov 2026 09:10:00 +0100</lastBuildDate>
    <atom:link href="https://www.rhone.gouv.fr/rss/alertes.xml" rel="self" type="application/rss+xml"/>
    <item>
      <title>Incendie au port Édouard Herriot : confinement du 7e arrondissement</title>
      <link>https://www.rhone.gouv.fr/actualites/incendie-port-edouard-herriot</link>
      <description><![CDATA[<p>Un incendie d'entrepôt de pneus produit une fumée épaisse. Restez chez vous, fermez les fenêtres. Suivez <a href="https://twitter.com/prefetrhone">@prefetrhone</a>.</p>]]></description>
      <pubDate>Fri, 27 Nov 2026 09:05:00 +0100</pubDate>
      <guid isPermaLink="true">https://www.rhone.gouv.fr/actualites/incendie-port-edouard-herriot</guid>
      <dc:creator>Service communication</dc:creator>
    </item>
    <item>
      <guid isPermaLink="false">urn:rhone:alerte:empty-0042</guid>
      <pubDate>Fri, 27 Nov 2026 08:58:00 +0100</pubDate>
    </item>
    <item>
      <title>Vigilance orange pluie-inondation</title>
      <link>https://www.rhone.gouv.fr/actualites/vigilance-orange</link>
      <description>Météo-France place le département en vigilance orange &amp; appelle à la prudence.</description>
      <pubDate>Fri, 27 Nov 2026 07:30:00 +0100</pubDate>
      <guid isPermaLink="false">urn:rhone:alerte:0041</guid>
    </item>
  </channel>
</rss>"#;

const NEW_ITEM: &str = r#"    <item>
      <title>Levée du confinement</title>
      <link>https://www.rhone.gouv.fr/actualites/levee-confinement</link>
      <description>Le confinement du 7e arrondissement est levé à 14h.</description>
      <pubDate>Fri, 27 Nov 2026 14:00:00 +0100</pubDate>
      <guid isPermaLink="false">urn:rhone:alerte:0043</guid>
    </item>
"#;

const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Lyon Fire Watch</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2026-11-27T10:00:00Z</updated>
  <link href="https://firewatch.example/"/>
  <entry>
    <title>Smoke plume drifting north over Gerland</title>
    <link href="https://firewatch.example/2026/11/27/plume"/>
    <id>tag:firewatch.example,2026-11-27:/plume</id>
    <published>2026-11-27T09:40:00Z</published>
    <updated>2026-11-27T09:45:00Z</updated>
    <author><name>J. Martin</name></author>
    <summary type="html">&lt;p&gt;The plume from the tyre warehouse fire is drifting north; residents should keep windows closed.&lt;/p&gt;</summary>
  </entry>
</feed>"#;

/// The `If-None-Match` and `If-Modified-Since` a request sent.
type Validators = (Option<String>, Option<String>);

/// A feed and its validators; records the conditional headers each request sent.
#[derive(Clone, Default)]
struct Server {
    rss: Arc<Mutex<(String, String)>>,
    seen: Arc<Mutex<Vec<Validators>>>,
}

const LAST_MODIFIED: &str = "Fri, 27 Nov 2026 10:00:00 GMT";

async fn serve(server: &Server) -> String {
    let router = Router::new()
        .route(
            "/rss/alertes.xml",
            get(|State(s): State<Server>, headers: HeaderMap| async move {
                let inm = headers
                    .get(header::IF_NONE_MATCH)
                    .map(|v| v.to_str().unwrap().to_string());
                s.seen.lock().unwrap().push((inm.clone(), None));
                let (body, etag) = s.rss.lock().unwrap().clone();
                if inm.as_deref() == Some(etag.as_str()) {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                (
                    [
                        (
                            header::CONTENT_TYPE,
                            "application/rss+xml; charset=utf-8".to_string(),
                        ),
                        (header::ETAG, etag),
                    ],
                    body,
                )
                    .into_response()
            }),
        )
        .route(
            "/atom.xml",
            get(|State(s): State<Server>, headers: HeaderMap| async move {
                let ims = headers
                    .get(header::IF_MODIFIED_SINCE)
                    .map(|v| v.to_str().unwrap().to_string());
                s.seen.lock().unwrap().push((None, ims.clone()));
                if ims.as_deref() == Some(LAST_MODIFIED) {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                (
                    [
                        (header::CONTENT_TYPE, "application/atom+xml"),
                        (header::LAST_MODIFIED, LAST_MODIFIED),
                    ],
                    ATOM,
                )
                    .into_response()
            }),
        )
        .route(
            "/@alice.rss",
            get(|| async { ([(header::CONTENT_TYPE, "application/rss+xml")], RSS_V1) }),
        )
        .route(
            "/other/alertes.xml",
            get(|| async { ([(header::CONTENT_TYPE, "application/rss+xml")], RSS_V1) }),
        )
        .route(
            "/maintenance",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body>Maintenance</body></html>",
                )
            }),
        )
        .with_state(server.clone());
    common::serve(router).await
}

fn feed(url: String) -> Feed {
    Feed::new(
        FeedConfig {
            name: "prefecture-69".into(),
            url,
            poll_interval: Duration::from_millis(10),
        },
        common::client(),
        common::pseudonymiser(),
    )
}

fn once() -> RunOptions {
    RunOptions {
        stop_when_caught_up: true,
        max_polls: Some(1),
        ..Default::default()
    }
}

fn posts(items: &[Item]) -> Vec<&vigie_record::Envelope> {
    items
        .iter()
        .map(|i| match i {
            Item::Post(e) => e.as_ref(),
            Item::Delete(_) => panic!("no deletions in feeds"),
        })
        .collect()
}

#[tokio::test]
async fn rss_with_etag_delivers_new_items_only_and_skips_the_malformed_one() {
    let server = Server::default();
    *server.rss.lock().unwrap() = (RSS_V1.to_string(), "\"v1\"".to_string());
    let base = serve(&server).await;
    let url = format!("{base}/rss/alertes.xml");
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let mut src = feed(url.clone());

    let mut sink = Collect::default();
    let report = driver::run(&mut src, &store, &mut sink, once())
        .await
        .unwrap();
    assert_eq!((report.posts, report.skipped), (2, 1));
    let items = sink.items();
    let got = posts(&items);
    // Oldest first.
    assert_eq!(got[0].post.native_id, "urn:rhone:alerte:0041");
    assert_eq!(
        got[0].post.text,
        "Vigilance orange pluie-inondation — Météo-France place le département en vigilance orange & appelle à la prudence."
    );
    assert_eq!(
        got[0].post.created_at.to_rfc3339(),
        "2026-11-27T06:30:00+00:00"
    );
    let fire = got[1];
    let p = common::pseudonymiser();
    assert_eq!(
        fire.post.text,
        format!(
            "Incendie au port Édouard Herriot : confinement du 7e arrondissement — Un incendie \
             d'entrepôt de pneus produit une fumée épaisse. Restez chez vous, fermez les fenêtres. \
             Suivez @{}.",
            p.pseudonym("rss", "prefetrhone")
        )
    );
    assert_eq!(fire.post.lang.as_deref(), Some("fr"), "from the channel");
    assert_eq!(
        fire.post.url.as_deref(),
        Some("https://www.rhone.gouv.fr/actualites/incendie-port-edouard-herriot")
    );
    assert_eq!(
        fire.post.author,
        p.pseudonym("rss", "Service communication")
    );
    assert_eq!(fire.provenance.fetch_url, url);
    assert_eq!(
        fire.provenance.matched.as_deref(),
        Some(format!("prefecture-69: feed {url}").as_str())
    );
    assert_eq!(
        fire.provenance.content_sha256,
        vigie_record::content_sha256(RSS_V1.as_bytes())
    );

    // Unchanged: the server answers 304 to the ETag, nothing is delivered.
    let report = driver::run(&mut src, &store, &mut sink, once())
        .await
        .unwrap();
    assert_eq!(report.posts, 0);

    // A new item: only it is delivered, though the feed repeats the old ones.
    let v2 = RSS_V1.replace(
        "    <item>\n      <title>Incendie",
        &format!("{NEW_ITEM}    <item>\n      <title>Incendie"),
    );
    assert_ne!(v2, RSS_V1);
    *server.rss.lock().unwrap() = (v2, "\"v2\"".to_string());
    let mut later = Collect::default();
    let report = driver::run(&mut src, &store, &mut later, once())
        .await
        .unwrap();
    assert_eq!(
        (report.posts, report.skipped),
        (1, 0),
        "the malformed item is not retried"
    );
    assert_eq!(
        later.native_ids(),
        vec!["urn:rhone:alerte:0043".to_string()]
    );

    let seen = server.seen.lock().unwrap();
    let sent: Vec<Option<&str>> = seen.iter().map(|(inm, _)| inm.as_deref()).collect();
    assert_eq!(sent, vec![None, Some("\"v1\""), Some("\"v1\"")]);
}

#[tokio::test]
async fn atom_with_last_modified_gets_304_and_html_is_not_a_feed() {
    let server = Server::default();
    let base = serve(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::in_data_dir(dir.path());
    let mut src = feed(format!("{base}/atom.xml"));
    let mut sink = Collect::default();
    driver::run(&mut src, &store, &mut sink, once())
        .await
        .unwrap();
    driver::run(&mut src, &store, &mut sink, once())
        .await
        .unwrap();
    let items = sink.items();
    let got = posts(&items);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].post.native_id,
        "tag:firewatch.example,2026-11-27:/plume"
    );
    assert_eq!(
        got[0].post.text,
        "Smoke plume drifting north over Gerland — The plume from the tyre warehouse fire is drifting north; residents should keep windows closed."
    );
    assert_eq!(
        got[0].post.created_at.to_rfc3339(),
        "2026-11-27T09:40:00+00:00"
    );
    assert_eq!(got[0].post.lang.as_deref(), Some("en"), "detected");
    let second = server.seen.lock().unwrap()[1].clone();
    assert_eq!(second.1.as_deref(), Some(LAST_MODIFIED));

    let url = format!("{base}/maintenance");
    let mut html = feed(url.clone());
    let e = vigie_ingest::Source::poll(&mut html, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("prefecture-69: GET {url}: not a feed")) && e.contains("text/html"),
        "{e}"
    );
}

#[tokio::test]
async fn a_feed_url_naming_a_user_leaves_no_handle_in_the_provenance() {
    let server = Server::default();
    let base = serve(&server).await;
    let url = format!("{base}/@alice.rss");
    let mut src = feed(url);
    let batch = vigie_ingest::Source::poll(&mut src, None).await.unwrap();
    let items = batch.items;
    let got = posts(&items);
    assert_eq!(got.len(), 2);
    let p = common::pseudonymiser();
    // The same pseudonym as the Mastodon author alice@127.0.0.1 gets.
    let alice = p.pseudonym("mastodon", "alice@127.0.0.1");
    let scrubbed = format!("{base}/@{alice}.rss");
    for post in got {
        assert_eq!(post.provenance.fetch_url, scrubbed);
        assert_eq!(
            post.provenance.matched.as_deref(),
            Some(format!("prefecture-69: feed {scrubbed}").as_str())
        );
        let json = String::from_utf8(post.to_json()).unwrap();
        assert!(!json.contains("alice"), "{json}");
    }
}

#[tokio::test]
async fn two_feeds_with_the_same_guid_do_not_collide_into_one_post() {
    let server = Server::default();
    *server.rss.lock().unwrap() = (RSS_V1.to_string(), "\"v1\"".to_string());
    let base = serve(&server).await;
    let mut ids = Vec::new();
    for path in ["/rss/alertes.xml", "/other/alertes.xml"] {
        let mut src = feed(format!("{base}{path}"));
        let batch = vigie_ingest::Source::poll(&mut src, None).await.unwrap();
        let items = batch.items;
        let got = posts(&items);
        assert_eq!(got[0].post.native_id, "urn:rhone:alerte:0041");
        assert_eq!(
            got[0].post.id,
            vigie_ingest::rss::post_id(&format!("{base}{path}"), "urn:rhone:alerte:0041")
        );
        ids.extend(got.iter().map(|e| e.post.id.clone()));
    }
    assert_eq!(ids.len(), 4);
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        4,
        "the same GUIDs in two feeds are four posts: {ids:?}"
    );
}
