//! `vigie capture`, `vigie sources status` and `vigie replay` as a user runs them: a capture of
//! a local RSS feed, resumed without repeats, its coverage shown, then replayed through the real
//! model into an index; and a CrisisLex CSV replayed the same way.

use crate::util::{serve_static, Vigie};
use vigie_index::PostIndex;

const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>Préfecture du Rhône — Alertes</title>
    <link>https://www.rhone.gouv.fr/</link>
    <description>Alertes</description>
    <language>fr</language>
    <item>
      <title>Incendie au port Édouard Herriot : confinement du 7e arrondissement</title>
      <link>https://www.rhone.gouv.fr/actualites/incendie-port-edouard-herriot</link>
      <description>Un incendie d'entrepôt produit une fumée épaisse. Restez chez vous.</description>
      <pubDate>Fri, 27 Nov 2026 09:05:00 +0100</pubDate>
      <guid>urn:rhone:alerte:0042</guid>
    </item>
    <item>
      <guid>urn:rhone:alerte:empty</guid>
    </item>
    <item>
      <title>Vigilance orange pluie-inondation</title>
      <link>https://www.rhone.gouv.fr/actualites/vigilance-orange</link>
      <description>Le département passe en vigilance orange.</description>
      <pubDate>Fri, 27 Nov 2026 09:04:00 +0100</pubDate>
      <guid>urn:rhone:alerte:0041</guid>
    </item>
  </channel>
</rss>"#;

/// Serves `FEED` to every request on 127.0.0.1; returns the feed's URL.
fn serve_feed() -> String {
    let base = serve_static("application/rss+xml", FEED);
    format!("{base}/rss/alertes.xml")
}

#[test]
fn capture_resumes_shows_its_coverage_and_replays_into_the_index() {
    let data = tempfile::tempdir().unwrap();
    let sources = data.path().join("sources.toml");
    std::fs::write(
        &sources,
        format!(
            "[http]\nuser_agent = \"Vigie-test/1\"\n\n[[source]]\nname = \"prefecture-69\"\nkind = \"rss\"\nurl = \"{}\"\npoll_interval = \"1s\"\n",
            serve_feed()
        ),
    )
    .unwrap();
    let out_file = data.path().join("capture.jsonl.zst");
    let capture = |args: &[&str]| {
        Vigie::new(data.path())
            .args(["capture", "--source", "prefecture-69", "--sources"])
            .arg(&sources)
            .arg("--out")
            .arg(&out_file)
            .args(args)
            .ok()
    };
    let first = capture(&["--for", "2s"]);
    assert!(
        first.contains("captured 2 posts and 0 deletions from prefecture-69")
            && first.contains("1 malformed items skipped"),
        "{first}"
    );
    // Resumed: the feed has not changed, nothing is captured twice.
    let second = capture(&["--for", "2s"]);
    assert!(second.contains("captured 0 posts"), "{second}");
    let items = vigie_ingest::capture::read(&out_file).unwrap();
    assert_eq!(items.len(), 2);

    let status = Vigie::new(data.path())
        .args(["sources", "status", "--json", "--sources"])
        .arg(&sources)
        .ok();
    let states: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(states[0]["name"], "prefecture-69");
    assert_eq!(states[0]["kind"], "rss");
    assert_eq!(states[0]["posts"], 2);
    assert_eq!(states[0]["skipped"], 1);
    let text = Vigie::new(data.path()).args(["sources", "status"]).ok();
    assert!(
        text.contains("prefecture-69 (rss)") && text.contains("2 posts"),
        "{text}"
    );

    // The capture replays into an index; a second replay upserts, it does not duplicate.
    let index = data.path().join("replayed");
    for _ in 0..2 {
        let out = Vigie::new(data.path())
            .arg("replay")
            .arg(&out_file)
            .args(["--speed", "max", "--index"])
            .arg(&index)
            .ok();
        assert!(out.contains("2 posts indexed"), "{out}");
    }
    assert_eq!(PostIndex::open(&index).unwrap().num_docs(), 2);
}

#[test]
fn a_crisislex_csv_replays_into_the_index_at_a_scaled_pace() {
    let data = tempfile::tempdir().unwrap();
    let index = data.path().join("crisislex");
    let started = std::time::Instant::now();
    // The sample spans 4 days 21 hours: at 10^6 times real time, about 0.4 s of waiting.
    let out = Vigie::new(data.path())
        .args([
            "replay",
            "fixtures/crisislex-csv/2013_Boston_Bombings-sample.csv",
        ])
        .args(["--speed", "1000000", "--index"])
        .arg(&index)
        .ok();
    assert!(out.contains("40 posts indexed"), "{out}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    assert_eq!(PostIndex::open(&index).unwrap().num_docs(), 40);
}
