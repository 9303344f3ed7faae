//! `vigie reidentify` as an administrator runs it: posts captured from a local RSS feed carry
//! pseudonyms (author, mention, profile link) that map back to their handles only through the
//! private identity file, and every attempt is first logged, with its purpose, in a signed log
//! that `vigie audit verify --log` checks.

use crate::util::{serve_static, verify_log, Vigie};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use vigie_ingest::Item;
use vigie_logs::access_log;

const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>Signalements</title>
    <link>https://signalements.example.org/</link>
    <description>Signalements</description>
    <language>fr</language>
    <item>
      <title>Feu d'entrepôt rue Garibaldi</title>
      <description>Signalé par @bob@piaille.fr, photos sur https://mamot.fr/@carole</description>
      <author>Alice Martin</author>
      <pubDate>Fri, 27 Nov 2026 09:05:00 +0100</pubDate>
      <guid>urn:signalement:0001</guid>
    </item>
  </channel>
</rss>"#;

#[test]
fn pseudonyms_map_back_only_through_a_logged_reidentify() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let sources = dir.join("sources.toml");
    std::fs::write(
        &sources,
        format!(
            "[http]\nuser_agent = \"Vigie-test/1\"\n\n[[source]]\nname = \"signalements\"\nkind = \"rss\"\nurl = \"{}/signalements.xml\"\npoll_interval = \"1s\"\n",
            serve_static("application/rss+xml", FEED)
        ),
    )
    .unwrap();
    let capture = dir.join("capture.jsonl");
    let out = Vigie::new(dir)
        .args(["capture", "--source", "signalements", "--sources"])
        .arg(&sources)
        .arg("--out")
        .arg(&capture)
        .args(["--for", "2s"])
        .ok();
    assert!(out.contains("captured 1 posts"), "{out}");
    let items = vigie_ingest::capture::read(&capture).unwrap();
    let Ok(Item::Post(post)) = &items[0] else {
        panic!("{:?}", items[0]);
    };
    let post = &post.post;
    // What was captured carries pseudonyms only.
    for handle in ["Alice", "bob", "carole"] {
        assert!(!post.text.contains(handle) && !post.author.contains(handle));
    }
    let pseudonyms = handle_pseudonyms(&post.text);
    assert_eq!(pseudonyms.len(), 2, "{}", post.text);

    // The identity file is private, in a private directory.
    let identities = dir.join("keys").join("identities.jsonl");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&identities), 0o600);
    assert_eq!(mode(&dir.join("keys")), 0o700);

    Vigie::new(dir).args(["keys", "init"]).ok();
    let purpose = "enquête judiciaire 2026/117: réquisition du parquet de Lyon";
    let reidentify = |pseudonym: &str, purpose: &str| {
        Vigie::new(dir).args([
            "reidentify",
            pseudonym,
            "--purpose",
            purpose,
            "--user",
            "officer-7",
        ])
    };
    let author = reidentify(&post.author, purpose).ok();
    assert!(
        author.starts_with("rss Alice Martin (first seen ") && author.lines().count() == 1,
        "{author}"
    );
    let mention = reidentify(&pseudonyms[0], purpose).ok();
    assert!(mention.starts_with("rss bob@piaille.fr"), "{mention}");
    let profile = reidentify(&pseudonyms[1], purpose).ok();
    assert!(profile.starts_with("mastodon carole@mamot.fr"), "{profile}");

    // No purpose: refused before anything is shown; without the flag, clap refuses.
    let refused = reidentify(&post.author, "  ").output();
    assert!(!refused.status.success() && refused.stdout.is_empty());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("a purpose is required"));
    let no_flag = Vigie::new(dir).arg("reidentify").arg(&post.author).output();
    assert!(!no_flag.status.success() && no_flag.stdout.is_empty());

    // An unknown pseudonym: non-zero, said clearly, and logged.
    let unknown = reidentify("ps:00000000000000000000000000000000", purpose).output();
    assert!(!unknown.status.success() && unknown.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("unknown pseudonym"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );

    // The log holds every attempt, with its purpose, and verifies.
    let log = dir.join("reidentify-log").join("access.jsonl");
    let verified = verify_log(dir, &log).ok();
    assert!(verified.contains("intact: entries 1 to 5"), "{verified}");
    let logged = access_log::entries(&std::fs::read_to_string(&log).unwrap());
    let statuses: Vec<u16> = logged.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 200, 400, 404]);
    let first = &logged[0];
    assert_eq!(first.endpoint, "reidentify");
    assert_eq!(first.role.as_deref(), Some("admin"));
    assert_eq!(first.user.as_deref(), Some("officer-7"));
    assert_eq!(first.purpose.as_deref(), Some(purpose));
    assert_eq!(first.params["pseudonym"], post.author.as_str());
    assert!(first.params["os_user"]
        .as_str()
        .is_some_and(|u| !u.is_empty()));
    assert_eq!(first.count, 1);
    assert_eq!(logged[3].purpose, None);
    assert_eq!(logged[4].count, 0);
    // The handles themselves are not in the log.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("Alice") && !text.contains("piaille"));

    // A log that cannot be written: nothing is shown.
    std::fs::remove_file(&log).unwrap();
    std::fs::create_dir(&log).unwrap();
    let unlogged = reidentify(&post.author, purpose).output();
    assert!(!unlogged.status.success());
    assert!(unlogged.stdout.is_empty(), "printed without a log entry");
    assert!(
        String::from_utf8_lossy(&unlogged.stderr).contains("reidentify log cannot be written"),
        "{}",
        String::from_utf8_lossy(&unlogged.stderr)
    );
}

/// The pseudonyms of the handles in `text` (`@ps:…`), in order.
fn handle_pseudonyms(text: &str) -> Vec<String> {
    text.match_indices("@ps:")
        .map(|(i, _)| text[i + 1..i + 36].to_string())
        .collect()
}

#[test]
fn retention_forgets_the_people_not_seen_for_the_period() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    vigie_index::PostIndex::open(&dir.join("index")).unwrap();
    Vigie::new(dir).args(["keys", "init"]).ok();
    let keys = dir.join("keys");
    let identities = keys.join("identities.jsonl");
    let today = chrono::Utc::now().date_naive();
    let line = |p: &str, handle: &str, days_ago: i64| {
        format!(
            "{{\"pseudonym\":\"{p}\",\"source\":\"reddit\",\"handle\":\"{handle}\",\"seen\":\"{}\"}}\n",
            today - chrono::Duration::days(days_ago)
        )
    };
    let text =
        line("ps:gone", "gone", 40) + &line("ps:kept", "kept", 40) + &line("ps:kept", "kept", 3);
    std::fs::write(&identities, text).unwrap();

    let out = Vigie::new(dir).args(["retention", "enforce"]).ok();
    // Both lines of 40 days ago go; `kept` keeps the line of its last sighting.
    assert!(out.contains("forgot 2 identity lines"), "{out}");
    let purpose = ["--purpose", "retention test"];
    let gone = Vigie::new(dir)
        .args(["reidentify", "ps:gone"])
        .args(purpose)
        .output();
    assert!(!gone.status.success() && gone.stdout.is_empty());
    let kept = Vigie::new(dir)
        .args(["reidentify", "ps:kept"])
        .args(purpose)
        .ok();
    assert!(kept.starts_with("reddit kept (first seen "), "{kept}");
    assert_eq!(
        std::fs::metadata(&identities).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
