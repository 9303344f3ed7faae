//! Exports of a real access log (written by the real writer to a real file), tampered with in
//! each of the ways an oversight body must catch: the verifier names the entry.

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use vigie_logs::access_log::chain::{self, Line, LogKind};
use vigie_logs::access_log::{
    verify_export, verify_log, Access, AccessLog, ExportFilter, LogOptions, Tamper,
};

fn t0() -> DateTime<Utc> {
    "2026-11-27T08:00:00Z".parse().unwrap()
}

/// Search `seq` of a test log: ana on odd seqs, bob on even, a minute apart.
fn search(seq: u64) -> Access {
    let mut params = serde_json::Map::new();
    params.insert("q".into(), format!("fire {seq}").into());
    Access {
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
    }
}

/// A log of `n` searches (see [`search`]), appended one at a time, so each group commit holds
/// one entry and ends with its checkpoint; no heartbeat (the lines are known).
async fn log_of(n: u64) -> (tempfile::TempDir, AccessLog, VerifyingKey) {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[3; 32]);
    let public = key.verifying_key();
    let log = AccessLog::builder(LogKind::Access, &dir.path().join("access-log"), key)
        .options(LogOptions {
            checkpoint_every: 5,
        })
        .heartbeat(None)
        .open()
        .unwrap();
    for seq in 1..=n {
        let got = log.append(search(seq)).await.unwrap();
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
        .position(|l| Line::parse(l).unwrap().seq().is_some_and(|s| s == seq))
        .unwrap()
        + 1
}

fn is_checkpoint_of(line: &str, keep: impl Fn(u64) -> bool) -> bool {
    matches!(Line::parse(line), Ok(Line::Checkpoint(cp)) if keep(cp.seq))
}

/// The 12-entry export, unfiltered, without the checkpoints of seqs that are not multiples of
/// 5 (an export verifies without its inner checkpoints, and this one has entries next to each
/// other): e1..e5, cp5, e6..e10, cp10, e11, e12, seal.
async fn full_export() -> (tempfile::TempDir, Vec<String>, VerifyingKey) {
    let (dir, log, key) = log_of(12).await;
    let all = lines(&log, &ExportFilter::default());
    // e1, cp1, ..., e12, cp12, seal: every group commit ends with its checkpoint.
    assert_eq!(all.len(), 25);
    let lines: Vec<String> = all
        .into_iter()
        .filter(|l| !is_checkpoint_of(l, |seq| seq % 5 != 0))
        .collect();
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
    let (_, _, h7) = Line::parse(&lines[at - 1])
        .unwrap()
        .link(LogKind::Access)
        .unwrap();
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

/// Bob's searches at or after 08:07 (8, 10 and 12) of a 12-entry log, and its export: from the
/// checkpoint of entry 7 (the anchor) to the checkpoint of entry 12: cp7, e8, cp8, e9, cp9,
/// e10, cp10, e11, cp11, e12, cp12, seal.
async fn bobs_export() -> (tempfile::TempDir, AccessLog, Vec<String>, VerifyingKey) {
    let (dir, log, key) = log_of(12).await;
    let filter = ExportFilter {
        user: Some("bob".into()),
        from: Some(t0() + Duration::minutes(7)),
        to: None,
    };
    let lines = lines(&log, &filter);
    assert_eq!(lines.len(), 12);
    (dir, log, lines, key)
}

#[tokio::test]
async fn a_filtered_export_omits_others_yet_stays_checkable() {
    let (_dir, _log, lines, key) = bobs_export().await;
    let report = verify_export(&join(&lines), &key).unwrap();
    assert_eq!((report.first, report.last), (8, 12));
    assert_eq!((report.entries, report.omitted), (3, 2));
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
    let at = line_of(&forged, 9);
    let (seq, prev, _) = Line::parse(&forged[at - 1])
        .unwrap()
        .link(LogKind::Access)
        .unwrap();
    forged[at - 1] = chain::omitted_line(seq, &prev, &[0; 32])
        .trim_end()
        .to_string();
    assert_eq!(
        verify_export(&join(&forged), &key),
        Err(Tamper::Altered { seq: 9, line: at })
    );
    // Cutting the anchor (and the head with it) is caught.
    assert_eq!(
        verify_export(&join(&lines[2..]), &key),
        Err(Tamper::MissingAnchor { seq: 7 })
    );
    // So is widening the filter stated in the seal.
    let mut widened = lines.clone();
    let last = widened.len() - 1;
    widened[last] = widened[last].replace("\"user\":\"bob\"", "\"user\":null");
    assert_eq!(
        verify_export(&join(&widened), &key),
        Err(Tamper::BadSeal { line: 12 })
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
    log.close().await.unwrap();
    // Simulate a crash in the middle of the write of entry 7's group commit: its checkpoint
    // was not written, and half a line of the next one is at the end.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut bytes: Vec<u8> = text
        .lines()
        .filter(|l| !is_checkpoint_of(l, |seq| seq == 7))
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let report = verify_log(&bytes, &key).unwrap();
    assert_eq!(
        (report.last, report.covered, report.torn_tail),
        (7, 6, false)
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

// Issue 11, hardening: each test is named after the attack it stops.

#[tokio::test]
async fn an_export_whose_selected_entry_was_swapped_for_its_digest_fails() {
    let (_dir, _log, lines, key) = bobs_export().await;
    // Entry 10 is bob's: shown as a digest, the chain still checks out.
    let mut hidden = lines.clone();
    let at = line_of(&hidden, 10);
    let Line::Entry { seq, prev, body } = Line::parse(&hidden[at - 1]).unwrap() else {
        panic!("entry 10 is shown in full");
    };
    hidden[at - 1] = chain::omitted_line(seq, &prev, &chain::body_digest(body))
        .trim_end()
        .to_string();
    assert_eq!(
        verify_export(&join(&hidden), &key),
        Err(Tamper::SelectedMismatch {
            sealed: 3,
            shown: 2
        })
    );
}

#[tokio::test]
async fn an_export_showing_an_entry_its_filter_does_not_select_fails() {
    let (_dir, log, lines, key) = bobs_export().await;
    // Whoever holds the log reveals ana's entry 9 in an export of bob's.
    let full = std::fs::read_to_string(log.path()).unwrap();
    let nine = full
        .lines()
        .find(|l| matches!(Line::parse(l), Ok(Line::Entry { seq: 9, .. })))
        .unwrap();
    let mut revealed = lines.clone();
    let at = line_of(&revealed, 9);
    revealed[at - 1] = nine.to_string();
    assert_eq!(
        verify_export(&join(&revealed), &key),
        Err(Tamper::NotSelected { seq: 9, line: at })
    );
}

#[tokio::test]
async fn the_report_states_the_filter_and_time_of_the_export() {
    let (_dir, _log, lines, key) = bobs_export().await;
    let report = verify_export(&join(&lines), &key).unwrap();
    let seal = report.seal.unwrap();
    assert_eq!(seal.user.as_deref(), Some("bob"));
    assert_eq!(seal.from.as_deref(), Some("2026-11-27T08:07:00.000000Z"));
    assert_eq!(seal.to, None);
    assert_eq!(seal.selected, 3);
    assert!(seal.time.ends_with('Z'), "{}", seal.time);
    assert_eq!(report.kind, Some(LogKind::Access));
}

/// The lines of the log file of `log`.
fn file_lines(log: &AccessLog) -> Vec<String> {
    std::fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn reopen(dir: &tempfile::TempDir) -> Result<AccessLog, vigie_logs::access_log::LogError> {
    AccessLog::builder(
        LogKind::Access,
        &dir.path().join("access-log"),
        SigningKey::from_bytes(&[3; 32]),
    )
    .heartbeat(None)
    .open()
}

#[tokio::test]
async fn a_log_rewritten_without_its_checkpoints_is_refused() {
    let (dir, log, key) = log_of(3).await;
    log.close().await.unwrap();
    let path = log.path().to_path_buf();
    // Drop every checkpoint, then alter entry 2 and chain the rest again: no key needed.
    let mut prev = chain::GENESIS;
    let mut forged = String::new();
    for l in file_lines(&log) {
        if let Ok(Line::Entry { seq, body, .. }) = Line::parse(&l) {
            let body = body.replace("case 2", "case X");
            forged.push_str(&chain::entry_line(seq, &prev, &body));
            prev = LogKind::Access.entry_hash(seq, &prev, &chain::body_digest(&body));
        }
    }
    std::fs::write(&path, &forged).unwrap();
    assert_eq!(
        verify_log(forged.as_bytes(), &key),
        Err(Tamper::Unsigned { entries: 3 })
    );
    let e = reopen(&dir).err().unwrap();
    assert!(e.to_string().contains("no signed checkpoint"), "{e}");
}

/// Appends `n` entries to the file of a closed log, chained correctly but never signed (what
/// someone who can write the file, without the key, can do).
fn append_unsigned(log: &AccessLog, n: u64) {
    let lines = file_lines(log);
    let (mut seq, mut head) = lines
        .iter()
        .rev()
        .find_map(|l| Line::parse(l).unwrap().link(LogKind::Access))
        .map(|(seq, _, hash)| (seq, hash))
        .unwrap();
    let mut out = lines.join("\n") + "\n";
    for _ in 0..n {
        seq += 1;
        let body = serde_json::to_string(&search(seq)).unwrap();
        out.push_str(&chain::entry_line(seq, &head, &body));
        head = LogKind::Access.entry_hash(seq, &head, &chain::body_digest(&body));
    }
    std::fs::write(log.path(), out).unwrap();
}

#[tokio::test]
async fn an_unsigned_tail_longer_than_one_group_commit_is_refused() {
    use vigie_logs::access_log::{verify::MAX_UNSIGNED, MAX_BATCH};
    assert_eq!(MAX_UNSIGNED, MAX_BATCH as u64);
    // One group commit's worth of unsigned entries is what a crash can leave: accepted, and
    // signed at open.
    let (dir, log, key) = log_of(2).await;
    log.close().await.unwrap();
    append_unsigned(&log, MAX_UNSIGNED);
    let report = verify_log(&std::fs::read(log.path()).unwrap(), &key).unwrap();
    assert_eq!((report.last, report.covered), (2 + MAX_UNSIGNED, 2));
    let reopened = reopen(&dir).unwrap();
    reopened.close().await.unwrap();
    let report = verify_log(&std::fs::read(log.path()).unwrap(), &key).unwrap();
    assert_eq!(report.covered, report.last);

    // One more is not.
    let (dir, log, key) = log_of(2).await;
    log.close().await.unwrap();
    append_unsigned(&log, MAX_UNSIGNED + 1);
    let bytes = std::fs::read(log.path()).unwrap();
    assert_eq!(
        verify_log(&bytes, &key),
        Err(Tamper::UnsignedTail {
            first: 3,
            last: 3 + MAX_UNSIGNED,
            bound: MAX_UNSIGNED
        })
    );
    let e = reopen(&dir).err().unwrap();
    assert!(
        e.to_string().contains("not signed by any checkpoint"),
        "{e}"
    );
}

#[tokio::test]
async fn a_deleted_log_is_not_started_again_in_its_place() {
    let (dir, log, _key) = log_of(2).await;
    log.close().await.unwrap();
    let marker = vigie_logs::access_log::created_marker(&dir.path().join("access-log"));
    assert!(marker.is_file(), "creating the log left its marker");
    std::fs::remove_file(log.path()).unwrap();
    let e = reopen(&dir).err().unwrap();
    assert!(
        matches!(e, vigie_logs::access_log::LogError::Vanished { .. }),
        "{e}"
    );
    assert!(!log.path().exists(), "no new log was made in its place");
}

#[tokio::test]
async fn an_emptied_log_is_refused() {
    let (dir, log, key) = log_of(2).await;
    log.close().await.unwrap();
    std::fs::write(log.path(), b"").unwrap();
    assert_eq!(verify_log(b"", &key), Err(Tamper::Empty));
    let e = reopen(&dir).err().unwrap();
    assert!(e.to_string().contains("empty"), "{e}");
}

#[tokio::test]
async fn a_new_log_starts_with_its_signed_creation_checkpoint() {
    let (_dir, log, key) = log_of(0).await;
    let lines = file_lines(&log);
    assert_eq!(lines.len(), 1);
    let Line::Checkpoint(cp) = Line::parse(&lines[0]).unwrap() else {
        panic!("{}", lines[0]);
    };
    assert_eq!(
        (cp.seq, cp.hash.as_str()),
        (0, chain::to_hex(&chain::GENESIS).as_str())
    );
    assert!(cp.verify(LogKind::Access, &key));
}

#[tokio::test]
async fn a_cut_tail_shows_as_a_gap_in_the_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[3; 32]);
    let public = key.verifying_key();
    let log = AccessLog::builder(LogKind::Access, &dir.path().join("access-log"), key)
        .heartbeat(Some(std::time::Duration::from_millis(100)))
        .open()
        .unwrap();
    log.append(search(1)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(550)).await;
    log.close().await.unwrap();
    let times: Vec<DateTime<Utc>> = file_lines(&log)
        .iter()
        .filter_map(|l| match Line::parse(l).unwrap() {
            Line::Checkpoint(cp) if cp.seq == 1 => Some(cp.time.parse().unwrap()),
            _ => None,
        })
        .collect();
    // The commit's checkpoint, then one every 100 ms while idle.
    assert!(times.len() >= 4, "{times:?}");
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] < Duration::milliseconds(300), "{times:?}");
    }
    verify_log(&std::fs::read(log.path()).unwrap(), &public).unwrap();
}

#[tokio::test]
async fn a_retention_log_cannot_pass_for_the_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[3; 32]);
    let public = key.verifying_key();
    let retention = AccessLog::builder(LogKind::Retention, &dir.path().join("retention-log"), key)
        .open()
        .unwrap();
    retention.append(search(1)).await.unwrap();
    retention.close().await.unwrap();
    let bytes = std::fs::read(retention.path()).unwrap();
    let report = verify_log(&bytes, &public).unwrap();
    assert_eq!(report.kind, Some(LogKind::Retention));
    let access_only = vigie_logs::access_log::Checks {
        kind: Some(LogKind::Access),
        heads: None,
    };
    assert_eq!(
        vigie_logs::access_log::verify::verify_log_with(&bytes, &public, &access_only),
        Err(Tamper::WrongKind {
            expected: LogKind::Access,
            found: LogKind::Retention
        })
    );
    // Put in place of the access log, the server refuses it.
    let access_dir = dir.path().join("access-log");
    std::fs::create_dir_all(&access_dir).unwrap();
    std::fs::write(access_dir.join("access.jsonl"), &bytes).unwrap();
    let e = reopen(&dir).err().unwrap();
    assert!(e.to_string().contains("not the access log"), "{e}");
    // Its entries do not hash as an access log's either.
    let entry = String::from_utf8(bytes)
        .unwrap()
        .lines()
        .find_map(|l| match Line::parse(l) {
            Ok(e @ Line::Entry { .. }) => Some((
                e.link(LogKind::Retention).unwrap().2,
                e.link(LogKind::Access).unwrap().2,
            )),
            _ => None,
        })
        .unwrap();
    assert_ne!(entry.0, entry.1);
}

#[tokio::test]
async fn a_log_cut_back_to_an_earlier_checkpoint_fails_against_its_published_heads() {
    use vigie_logs::access_log::{verify, Checks};
    let dir = tempfile::tempdir().unwrap();
    let heads = dir.path().join("elsewhere").join("heads.jsonl");
    std::fs::create_dir_all(heads.parent().unwrap()).unwrap();
    let open = || {
        AccessLog::builder(
            LogKind::Access,
            &dir.path().join("access-log"),
            SigningKey::from_bytes(&[3; 32]),
        )
        .heartbeat(None)
        .heads_file(Some(heads.clone()))
        .open()
    };
    let log = open().unwrap();
    for seq in 1..=4 {
        log.append(search(seq)).await.unwrap();
    }
    log.close().await.unwrap();
    let public = log.verifying_key();
    let (published, others) = verify::parse_heads(
        &std::fs::read_to_string(&heads).unwrap(),
        &public,
        LogKind::Access,
    )
    .unwrap();
    assert_eq!(others, 0);
    // The creation checkpoint at open, the last one at close.
    assert_eq!(
        published.iter().map(|h| h.seq).collect::<Vec<_>>(),
        [0, 4],
        "{published:?}"
    );
    let checks = Checks {
        kind: None,
        heads: Some(published.clone()),
    };
    let bytes = std::fs::read(log.path()).unwrap();
    let report = verify::verify_log_with(&bytes, &public, &checks).unwrap();
    assert_eq!(report.heads_checked, 2);

    // Cut back to entry 2 and its checkpoint: a valid log by itself...
    let lines = file_lines(&log);
    let cp2 = lines
        .iter()
        .position(|l| is_checkpoint_of(l, |seq| seq == 2))
        .unwrap();
    let cut = join(&lines[..=cp2]);
    std::fs::write(log.path(), &cut).unwrap();
    assert_eq!(verify_log(&cut, &public).unwrap().last, 2);
    // ... but not against the heads published outside the data dir.
    let e = verify::verify_log_with(&cut, &public, &checks).unwrap_err();
    assert!(
        matches!(
            e,
            Tamper::HeadMissing {
                seq: 4,
                last: 2,
                ..
            }
        ),
        "{e}"
    );
    let refused = open().err().unwrap();
    assert!(refused.to_string().contains("truncated"), "{refused}");

    // An export of what is left, checked against the heads: the head of entry 4 is outside it.
    std::fs::write(log.path(), &bytes).unwrap();
    let log = open().unwrap();
    let export = log.export(&ExportFilter::default()).unwrap();
    let report = verify::verify_export_with(&export.bytes, &public, &checks).unwrap();
    assert!(report.heads_checked >= 2, "{report:?}");
    log.close().await.unwrap();
}

#[tokio::test]
async fn a_second_server_on_the_same_log_is_refused() {
    let (dir, log, _key) = log_of(1).await;
    let e = reopen(&dir).err().unwrap();
    assert!(
        matches!(e, vigie_logs::access_log::LogError::Locked { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("another writer"), "{e}");
    // The first goes on; once it is closed, the log opens again.
    assert_eq!(log.append(search(2)).await.unwrap(), 2);
    log.close().await.unwrap();
    let again = reopen(&dir).unwrap();
    assert_eq!(again.append(search(3)).await.unwrap(), 3);
}
