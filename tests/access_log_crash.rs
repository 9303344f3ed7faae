//! The real `vigie` binary: keys, users, and the access log through a crash.
//!
//! `vigie serve` is SIGKILLed while 32 clients keep it busy: afterwards the log verifies up to
//! its last complete entry, and every request that got an answer has its entry. The server then
//! starts again on the same log, and an auditor's export of it verifies offline with
//! `vigie audit verify`, which also names an altered entry.

use crate::util::{Server, Vigie};
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigie_logs::access_log::chain::Line;
use vigie_record::fixtures::scored;

/// Runs `vigie` in `data` (the relative paths below are in it), whatever its exit status.
fn vigie(data: &Path, args: &[&str]) -> Output {
    Vigie::new(data).current_dir(data).args(args).output()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Starts `vigie serve` on a free port.
fn serve(data: &Path) -> Server {
    Vigie::new(data)
        .current_dir(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("VIGIE_ACCESS_LOG_CHECKPOINT_EVERY", "50")
        // The fixture posts have fixed dates: retention must not remove them as time passes.
        .env("VIGIE_RETENTION_DAYS", "0")
        .serve()
}

/// A data dir with a small index, the signing key and an analyst; returns the analyst's token.
fn prepare(data: &Path) -> String {
    let index = vigie_index::PostIndex::open(&data.join("index")).unwrap();
    let mut w = index.writer().unwrap();
    w.upsert(&scored(
        "1",
        "Warehouse fire in Vénissieux, thick smoke",
        0.92,
    ))
    .unwrap();
    w.upsert(&scored("2", "Fire drill at the school", 0.2))
        .unwrap();
    w.upsert(&scored("3", "Lovely sunset over the Saône", 0.03))
        .unwrap();
    w.commit(None).unwrap();
    drop(w);
    drop(index);

    let init = vigie(data, &["keys", "init"]);
    assert!(init.status.success(), "{init:?}");
    assert!(data.join("access-log.pub").is_file());
    let again = vigie(data, &["keys", "init"]);
    assert!(!again.status.success(), "a key is never replaced");

    let add = vigie(data, &["users", "add", "loader", "--role", "analyst"]);
    assert!(add.status.success(), "{add:?}");
    let token = stdout(&add).trim().to_string();
    assert!(token.starts_with("vigie_"), "{token}");
    let bad = vigie(data, &["users", "add", "x", "--role", "root"]);
    assert!(!bad.status.success());
    let list = stdout(&vigie(data, &["users", "list"]));
    assert!(
        list.contains("loader") && list.contains("analyst"),
        "{list}"
    );
    assert!(!list.contains(&token));
    token
}

/// (purpose, status) of every complete entry of the log.
fn logged(data: &Path) -> Vec<(Option<String>, u16)> {
    let bytes = std::fs::read(data.join("access-log/access.jsonl")).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    text.split_terminator('\n')
        .filter_map(|l| match Line::parse(l) {
            Ok(Line::Entry { body, .. }) => {
                let v: Value = serde_json::from_str(body).unwrap();
                Some((
                    v["purpose"].as_str().map(String::from),
                    v["status"].as_u64().unwrap() as u16,
                ))
            }
            _ => None,
        })
        .collect()
}

fn verify_log(data: &Path) -> Output {
    vigie(
        data,
        &[
            "audit",
            "verify",
            "access-log/access.jsonl",
            "--pubkey",
            "access-log.pub",
            "--log",
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_answered_access() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let token = prepare(data);
    let mut server = serve(data);
    let base = server.base.clone();

    // 32 clients, a quarter of them without a token (refused, and logged too).
    let answered = Arc::new(Mutex::new(Vec::<(String, u16)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut clients = Vec::new();
    for c in 0..32 {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        let (answered, stop) = (answered.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                let purpose = format!("crash-{c}-{n}");
                let mut req = http
                    .get(format!("{base}/v1/search"))
                    .query(&[("q", "fire"), ("purpose", purpose.as_str())]);
                if c % 4 != 3 {
                    req = req.bearer_auth(&token);
                }
                let Ok(res) = req.send().await else { break };
                let status = res.status().as_u16();
                // An answer counts once its body has fully arrived.
                if res.bytes().await.is_err() {
                    break;
                }
                answered.lock().unwrap().push((purpose, status));
                n += 1;
            }
        }));
    }
    let started = Instant::now();
    while answered.lock().unwrap().len() < 500 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill(); // SIGKILL
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 500, "only {} answers", answered.len());
    assert!(answered.iter().any(|(_, s)| *s == 200));
    assert!(answered.iter().any(|(_, s)| *s == 401));

    // The log verifies up to its last complete entry...
    let check = verify_log(data);
    assert!(check.status.success(), "{check:?}");
    assert!(
        stdout(&check).starts_with("intact: entries 1 to "),
        "{check:?}"
    );
    // ... and every answered request is in it, with the status it was answered with (but the
    // anonymous ones past their rate limit, answered 429: those are counted in the next
    // anonymous entry, `_refused_unlogged`, not logged one by one).
    let entries: HashSet<(Option<String>, u16)> = logged(data).into_iter().collect();
    eprintln!(
        "{} requests answered before the SIGKILL, {} entries in the log",
        answered.len(),
        entries.len()
    );
    for (purpose, status) in answered.iter().filter(|(_, s)| *s != 429) {
        assert!(
            entries.contains(&(Some(purpose.clone()), *status)),
            "answered but not logged: {purpose} ({status})"
        );
    }

    // The server starts again on the same log, seals what survived, and goes on.
    let server = serve(data);
    let base = server.base.clone();
    let res = http
        .get(format!("{base}/v1/search?q=fire&purpose=after%20restart"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // SIGTERM: a clean exit.
    server.stop();
    let check = verify_log(data);
    assert!(check.status.success(), "{check:?}");
    let report = stdout(&check);
    assert!(
        !report.contains("not yet signed"),
        "shutdown signs a checkpoint: {report}"
    );
    let last = logged(data).pop().unwrap();
    assert_eq!(last, (Some("after restart".into()), 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditors_export_verifies_offline_and_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let token = prepare(data);
    let add = vigie(data, &["users", "add", "olga", "--role", "auditor"]);
    let auditor = stdout(&add).trim().to_string();
    let server = serve(data);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    for i in 0..5 {
        let res = http
            .get(format!("{base}/v1/search?q=fire&purpose=case%20{i}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let refused = http
        .get(format!("{base}/v1/search?q=fire&purpose=curious"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let export = http
        .get(format!("{base}/v1/audit/export?user=loader"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let export = export.text().await.unwrap();
    drop(server);

    std::fs::write(data.join("export.jsonl"), &export).unwrap();
    let verify = |file: &str| {
        vigie(
            data,
            &["audit", "verify", file, "--pubkey", "access-log.pub"],
        )
    };
    let ok = verify("export.jsonl");
    assert!(ok.status.success(), "{ok:?}");
    // Every group commit is signed: the export ends at the checkpoint of entry 5.
    let said = stdout(&ok);
    assert!(
        said.contains("entries 1 to 5 (5 shown, 0 omitted"),
        "{said}"
    );
    // The report states the seal's filter and time.
    assert!(
        said.contains("filter: the entries of user \"loader\" at any time: 5 selected"),
        "{said}"
    );
    assert!(said.contains("exported at 20"), "{said}");
    assert!(said.contains("log: the access log"), "{said}");

    // Entry 3 swapped for its digest: the chain holds, the seal's count does not.
    let hidden: String = export
        .lines()
        .map(|l| match Line::parse(l) {
            Ok(Line::Entry { seq: 3, prev, body }) => vigie_logs::access_log::chain::omitted_line(
                3,
                &prev,
                &vigie_logs::access_log::chain::body_digest(body),
            ),
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(data.join("hidden.jsonl"), hidden).unwrap();
    let bad = verify("hidden.jsonl");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("hidden behind its digest"), "{err}");

    // Entry 3 altered: exit 1, and the message names it.
    let altered = export.replace("case 2", "case 9");
    std::fs::write(data.join("altered.jsonl"), altered).unwrap();
    let bad = verify("altered.jsonl");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("entry 3 (line ") && err.contains("was altered"),
        "{err}"
    );

    // Its tail cut: exit 1, truncated.
    let cut: String = export.lines().take(4).map(|l| format!("{l}\n")).collect();
    std::fs::write(data.join("cut.jsonl"), cut).unwrap();
    let bad = verify("cut.jsonl");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("truncated"), "{err}");
}
