//! Exports of a real access log (written by the real writer to a real file), tampered with in
//! each of the ways an oversight body must catch: the verifier names the entry.

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use vigie_api::access_log::chain::{self, Line};
use vigie_api::access_log::{
    verify_export, verify_log, Access, AccessLog, ExportFilter, LogOptions, Tamper,
};

fn t0() -> DateTime<Utc> {
    "2026-11-27T08:00:00Z".parse().unwrap()
}

/// A log of `n` searches (ana on odd seqs, bob on even), checkpointed every 5.
async fn log_of(n: u64) -> (tempfile::TempDir, AccessLog, VerifyingKey) {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[3; 32]);
    let public = key.verifying_key();
    let log = AccessLog::open(
        &dir.path().join("access-log"),
        key,
        LogOptions {
            checkpoint_every: 5,
        },
    )
    .unwrap();
    for seq in 1..=n {
        let mut params = serde_json::Map::new();
        params.insert("q".into(), format!("fire {seq}").into());
        let got = log
            .append(Access {
                time: t0() + Duration::minutes(seq as i64),
                user: Some(if seq % 2 == 1 { "ana" } else { "bob" }.into()),
                role: Some("analyst".into()),
                purpose: Some(format!("case {seq}")),
                method: "GET".into(),
                endpoint: "/v1/search".into(),
                params,
                status: 200,
                count: 1,
                posts: vec![format!("post-{seq}")],
            })
            .await
            .unwrap();
        assert_eq!(got, seq);
    }
    (dir, log, public)
}

fn lines(log: &AccessLog, filter: &ExportFilter) -> Vec<String> {
    let export = log.export(filter).unwrap();
    String::from_utf8(export.bytes)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn join(lines: &[String]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

/// The 1-based line of entry `seq` (in full or omitted).
fn line_of(lines: &[String], seq: u64) -> usize {
    lines
        .iter()
        .position(|l| {
            Line::parse(l)
                .unwrap()
                .link()
                .is_some_and(|(s, _, _)| s == seq)
        })
        .unwrap()
        + 1
}

/// The 12-entry export, unfiltered: e1..e5, cp5, e6..e10, cp10, e11, e12, seal.
async fn full_export() -> (tempfile::TempDir, Vec<String>, VerifyingKey) {
    let (dir, log, key) = log_of(12).await;
    let lines = lines(&log, &ExportFilter::default());
    assert_eq!(lines.len(), 15);
    (dir, lines, key)
}

#[tokio::test]
async fn an_intact_export_verifies_and_says_what_it_holds() {
    let (_dir, lines, key) = full_export().await;
    let report = verify_export(&join(&lines), &key).unwrap();
    assert_eq!((report.first, report.last, report.entries), (1, 12, 12));
    assert_eq!((report.checkpoints, report.covered), (2, 10));
    // Another key does not verify it.
    let other = SigningKey::from_bytes(&[4; 32]).verifying_key();
    assert!(matches!(
        verify_export(&join(&lines), &other),
        Err(Tamper::BadSeal { line: 15 })
    ));
}

#[tokio::test]
async fn an_altered_entry_is_named() {
    let (_dir, mut lines, key) = full_export().await;
    let at = line_of(&lines, 7);
    lines[at - 1] = lines[at - 1].replace("case 7", "case 9");
    assert_eq!(
        verify_export(&join(&lines), &key),
        Err(Tamper::Altered { seq: 7, line: at })
    );

    // Just before a checkpoint, the checkpoint catches it.
    let (_dir, mut lines, key) = full_export().await;
    lines[4] = lines[4].replace("\"status\":200", "\"status\":404");
    assert_eq!(
        verify_export(&join(&lines), &key),
        Err(Tamper::Altered { seq: 5, line: 5 })
    );

    // The last entry: the seal catches it.
    let (_dir, mut lines, key) = full_export().await;
    lines[13] = lines[13].replace("post-12", "post-13");
    assert_eq!(
        verify_export(&join(&lines), &key),
        Err(Tamper::Altered { seq: 12, line: 14 })
    );
}

#[tokio::test]
async fn a_removed_entry_is_named() {
    let (_dir, mut lines, key) = full_export().await;
    let at = line_of(&lines, 7);
    lines.remove(at - 1);
    assert_eq!(
        verify_export(&join(&lines), &key),
        Err(Tamper::Removed {
            first: 7,
            last: 7,
            line: at
        })
    );

    // The last one, before the seal.
    let (_dir, mut lines, key) = full_export().await;
    lines.remove(13);
    assert_eq!(
        verify_export(&join(&lines), &key),
        Err(Tamper::Removed {
            first: 12,
            last: 12,
            line: 14
        })
    );
}

#[tokio::test]
async fn reordered_entries_are_named() {
    let (_dir, mut lines, key) = full_export().await;
    let at = line_of(&lines, 7);
    lines.swap(at - 1, at);
    assert_eq!(
        verify_export(&join(&lines), &key),
        Err(Tamper::Reordered {
            seq: 7,
            line: at,
            found: at + 1
        })
    );
}

#[tokio::test]
async fn an_inserted_entry_is_named() {
    // A forgery that links correctly to entry 7 and claims to be entry 8.
    let (_dir, mut lines, key) = full_export().await;
    let at = line_of(&lines, 7);
    let (_, _, h7) = Line::parse(&lines[at - 1]).unwrap().link().unwrap();
    let forged = chain::entry_line(8, &h7, r#"{"user":"mallory"}"#);
    lines.insert(at, forged.trim_end().to_string());
    assert_eq!(
        verify_export(&join(&lines), &key),
        Err(Tamper::Inserted {
            line: at + 1,
            claims: 8
        })
    );

    // A copy of a real entry.
    let (_dir, mut lines, key) = full_export().await;
    let copy = lines[2].clone();
    lines.insert(at, copy);
    assert_eq!(
        verify_export(&join(&lines), &key),
        Err(Tamper::Inserted {
            line: at + 1,
            claims: 3
        })
    );

    // Garbage seq and prev, just before the seal.
    let (_dir, mut lines, key) = full_export().await;
    let junk = chain::entry_line(99, &[5; 32], r#"{"user":"mallory"}"#);
    lines.insert(14, junk.trim_end().to_string());
    assert_eq!(
        verify_export(&join(&lines), &key),
        Err(Tamper::Inserted {
            line: 15,
            claims: 99
        })
    );
}

#[tokio::test]
async fn a_truncated_tail_is_named() {
    let (_dir, lines, key) = full_export().await;
    // Cut after entry 9.
    let cut = line_of(&lines, 9);
    assert_eq!(
        verify_export(&join(&lines[..cut]), &key),
        Err(Tamper::Truncated { after: 9 })
    );
    // Cut in the middle of entry 9's line.
    let mut bytes = join(&lines[..cut]);
    bytes.truncate(bytes.len() - 20);
    assert_eq!(
        verify_export(&bytes, &key),
        Err(Tamper::Truncated { after: 8 })
    );
    // Only the seal cut.
    assert_eq!(
        verify_export(&join(&lines[..14]), &key),
        Err(Tamper::Truncated { after: 12 })
    );
    // An alteration before the cut is named first.
    let mut altered = lines[..cut].to_vec();
    altered[1] = altered[1].replace("case 2", "case 0");
    assert_eq!(
        verify_export(&join(&altered), &key),
        Err(Tamper::Altered { seq: 2, line: 2 })
    );
}

#[tokio::test]
async fn a_filtered_export_omits_others_yet_stays_checkable() {
    let (_dir, log, key) = log_of(12).await;
    let filter = ExportFilter {
        user: Some("bob".into()),
        from: Some(t0() + Duration::minutes(7)),
        to: None,
    };
    let lines = lines(&log, &filter);
    // From the checkpoint of entry 5 (the anchor) to the head: cp5, e6..e10, cp10, e11, e12, seal.
    assert_eq!(lines.len(), 10);
    let report = verify_export(&join(&lines), &key).unwrap();
    // Bob's entries at or after 08:07: 8, 10, 12.
    assert_eq!((report.first, report.last), (6, 12));
    assert_eq!((report.entries, report.omitted), (3, 4));
    let text = lines.join("\n");
    assert!(
        !text.contains("\"ana\""),
        "other users' entries are not shown"
    );
    assert!(
        !text.contains("case 6"),
        "entries before `from` are not shown"
    );

    // An omitted entry cannot be forged either.
    let mut forged = lines.clone();
    let at = line_of(&forged, 7);
    let (seq, prev, _) = Line::parse(&forged[at - 1]).unwrap().link().unwrap();
    forged[at - 1] = chain::omitted_line(seq, &prev, &[0; 32])
        .trim_end()
        .to_string();
    assert_eq!(
        verify_export(&join(&forged), &key),
        Err(Tamper::Altered { seq: 7, line: at })
    );
    // Cutting the anchor (and the head with it) is caught.
    assert_eq!(
        verify_export(&join(&lines[2..]), &key),
        Err(Tamper::MissingAnchor { seq: 5 })
    );
    // So is widening the filter stated in the seal.
    let mut widened = lines.clone();
    let last = widened.len() - 1;
    widened[last] = widened[last].replace("\"user\":\"bob\"", "\"user\":null");
    assert_eq!(
        verify_export(&join(&widened), &key),
        Err(Tamper::BadSeal { line: 10 })
    );
    // A forged checkpoint signature.
    let mut bad_cp = lines.clone();
    let cp = bad_cp
        .iter()
        .position(|l| l.contains("\"checkpoint\"") && l.contains("\"seq\":10"))
        .unwrap();
    let sig_at = bad_cp[cp].find("\"sig\":\"").unwrap() + 7;
    let flipped = if &bad_cp[cp][sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    bad_cp[cp].replace_range(sig_at..sig_at + 1, flipped);
    assert_eq!(
        verify_export(&join(&bad_cp), &key),
        Err(Tamper::BadCheckpoint {
            seq: 10,
            line: cp + 1
        })
    );
}

#[tokio::test]
async fn an_export_that_selects_nothing_is_sealed_and_verifies() {
    let (_dir, log, key) = log_of(3).await;
    let lines = lines(
        &log,
        &ExportFilter {
            user: Some("nobody".into()),
            ..ExportFilter::default()
        },
    );
    assert_eq!(lines.len(), 1);
    assert_eq!(verify_export(&join(&lines), &key).unwrap().entries, 0);
}

#[tokio::test]
async fn the_log_is_reopened_checked_and_continued_after_a_torn_write() {
    let (dir, log, key) = log_of(7).await;
    let path = log.path().to_path_buf();
    // Stop using it without closing it (no final checkpoint), as a crash would.
    std::mem::forget(log);
    // Simulate a crash in the middle of a write: half a line at the end.
    let mut bytes = std::fs::read(&path).unwrap();
    let report = verify_log(&bytes, &key).unwrap();
    assert_eq!(
        (report.last, report.covered, report.torn_tail),
        (7, 5, false)
    );
    bytes.extend_from_slice(b"{\"seq\":8,\"prev\":\"ab");
    std::fs::write(&path, &bytes).unwrap();
    let torn = verify_log(&bytes, &key).unwrap();
    assert!(torn.torn_tail);
    assert_eq!(torn.last, 7);

    let signing = SigningKey::from_bytes(&[3; 32]);
    let log = AccessLog::open(
        &dir.path().join("access-log"),
        signing,
        LogOptions::default(),
    )
    .unwrap();
    let reopened = verify_log(&std::fs::read(&path).unwrap(), &key).unwrap();
    assert!(!reopened.torn_tail, "the torn line was cut");
    assert_eq!(
        (reopened.last, reopened.covered),
        (7, 7),
        "a checkpoint signs what survived"
    );
    let seq = log
        .append(Access {
            time: t0(),
            user: None,
            role: None,
            purpose: None,
            method: "GET".into(),
            endpoint: "/v1/search".into(),
            params: Default::default(),
            status: 401,
            count: 0,
            posts: vec![],
        })
        .await
        .unwrap();
    assert_eq!(seq, 8);
    assert_eq!(log.close().await.unwrap(), 8);
    let closed = verify_log(&std::fs::read(&path).unwrap(), &key).unwrap();
    assert_eq!(
        (closed.last, closed.covered),
        (8, 8),
        "closing signs a final checkpoint"
    );
    assert!(
        log.checkpoint().await.is_err(),
        "a closed log takes nothing more"
    );

    // A log altered on disk is refused at start.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("case 3", "case 4");
    std::fs::write(&path, text).unwrap();
    let e = AccessLog::open(
        &dir.path().join("access-log"),
        SigningKey::from_bytes(&[3; 32]),
        LogOptions::default(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("entry 3"), "{e}");
}
