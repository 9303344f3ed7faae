//! Replaying a CrisisLex CSV file: posts in time order, timestamps from the tweet ids.

use crate::common;

use std::path::PathBuf;
use vigie_ingest::replay::{self, Format};
use vigie_ingest::Item;

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/crisislex-csv/2013_Boston_Bombings-sample.csv")
}

#[test]
fn a_crisislex_csv_replays_in_time_order_with_snowflake_timestamps() {
    let path = sample();
    assert_eq!(Format::detect(&path).unwrap(), Format::CrisisLex);
    let replay = replay::load(&path, None, &common::pseudonymiser()).unwrap();
    assert!(replay.rejected.is_empty(), "{:?}", replay.rejected);
    assert_eq!(replay.items.len(), 40);

    // The file is not in time order; the replay is.
    let file_ids: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().trim_matches('\'').to_string())
        .collect();
    let posts: Vec<_> = replay
        .items
        .iter()
        .map(|i| match i {
            Item::Post(e) => e,
            Item::Delete(_) => panic!("no deletions in CrisisLex"),
        })
        .collect();
    let replay_ids: Vec<String> = posts.iter().map(|e| e.post.native_id.clone()).collect();
    assert_ne!(replay_ids, file_ids);
    let mut sorted = file_ids.clone();
    sorted.sort_by_key(|id| id.parse::<u64>().unwrap());
    assert_eq!(replay_ids, sorted, "time order is snowflake order");
    assert!(posts
        .windows(2)
        .all(|w| w[0].post.created_at <= w[1].post.created_at));

    // Timestamps: (id >> 22) + 1288834974657 ms.
    for e in &posts {
        let id: u64 = e.post.native_id.parse().unwrap();
        assert_eq!(
            e.post.created_at.timestamp_millis(),
            (id >> 22) as i64 + 1_288_834_974_657
        );
    }
    assert_eq!(posts[0].post.native_id, "323630018536275968");
    assert_eq!(
        posts[0].post.created_at.to_rfc3339(),
        "2013-04-15T02:53:03.831+00:00"
    );
    assert_eq!(
        posts[39].post.created_at.to_rfc3339(),
        "2013-04-19T23:51:47.035+00:00"
    );

    // Handles pseudonymised, provenance names file and line.
    let punk = posts
        .iter()
        .find(|e| e.post.native_id == "324654539850539009")
        .unwrap();
    assert_eq!(
        punk.post.text,
        format!(
            "@{} oops, someone doesn't like to be told he's a lying punk.",
            common::pseudonymiser().pseudonym("twitter", "J_Adams91")
        )
    );
    assert_eq!(punk.post.source, "twitter");
    assert_eq!(punk.post.lang.as_deref(), Some("en"));
    assert_eq!(
        punk.post.url.as_deref(),
        Some("https://twitter.com/i/web/status/324654539850539009")
    );
    assert!(punk
        .provenance
        .fetch_url
        .ends_with("2013_Boston_Bombings-sample.csv#L5"));
    assert_eq!(punk.provenance.ingestor.name, "crisislex");
    assert_eq!(
        punk.provenance.content_sha256,
        vigie_record::content_sha256(
            b"'324654539850539009',\"@J_Adams91 oops, someone doesn't like to be told he's a lying punk.\",off-topic"
        )
    );
    assert_eq!(
        punk.provenance.matched.as_deref(),
        Some("crisislex: 2013_Boston_Bombings-sample")
    );
    assert!(posts.iter().all(|e| !e.post.text.contains("@J_Adams91")));
}

#[test]
fn a_bad_line_is_named_and_the_others_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(
        &path,
        "tweet id, tweet, label\n'325208201740029952',\"Explosion near the finish line\",on-topic\n'not-an-id',\"x\",off-topic\n'325301650791215106',\"I just wanna go outside\",off-topic\n",
    )
    .unwrap();
    let replay = replay::load(&path, None, &common::pseudonymiser()).unwrap();
    assert_eq!(replay.items.len(), 2);
    assert_eq!(replay.rejected.len(), 1);
    let e = replay.rejected[0].to_string();
    assert!(
        e.contains("t.csv:3") && e.contains("`tweet id` \"'not-an-id'\""),
        "{e}"
    );
}
