//! `vigie audit verify`: checks an access-log export (or the log itself) offline;
//! `vigie audit heads`: reads the signed heads published to Kafka back into a heads file.

use crate::config::Config;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use vigie_logs::access_log::{self, verify, LogKind, Report};

/// `vigie audit ...`
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check an export of GET /v1/audit/export with the log's public key. Exits 0 only when it
    /// is intact; otherwise names the first entry altered, removed, reordered, inserted, hidden
    /// behind its digest or shown outside the filter, or the truncated tail. Says which log it
    /// is of, and, for an export, the filter and time its seal states.
    Verify {
        /// The export (JSONL).
        file: PathBuf,
        /// The public key file (`access-log.pub` of the server's data dir).
        #[arg(long, value_name = "FILE")]
        pubkey: PathBuf,
        /// FILE is the log itself (`<data-dir>/access-log/access.jsonl`), not an export: it must
        /// start at entry 1, may end with a torn line left by a crash and at most one group
        /// commit (4096 entries) not yet signed, and needs no seal.
        #[arg(long)]
        log: bool,
        /// The log FILE must be of: `access`, `retention` or `reidentify` (default: any, and the
        /// report says which its signatures are of).
        #[arg(long, value_name = "KIND", value_parser = parse_kind)]
        kind: Option<LogKind>,
        /// A heads file (the server's `heads_file`): every head published there for this log,
        /// within the stretch FILE holds, must be in its chain; for a log, a head past its last
        /// entry means it was truncated.
        #[arg(long, value_name = "FILE")]
        heads: Option<PathBuf>,
    },
    /// Write every signed head published to the topic `vigie.audit.heads` (by `vigie run
    /// --brokers`) to a heads file, for `vigie audit verify --heads`. Reads the topic from its
    /// start to its end as it is now.
    Heads {
        /// The brokers.
        #[arg(long, value_name = "BROKERS")]
        brokers: String,
        /// The heads file to write (replaced).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

fn parse_kind(name: &str) -> Result<LogKind, String> {
    LogKind::from_name(name)
        .ok_or_else(|| format!("`{name}` is not a log: access, retention or reidentify"))
}

impl super::Cmd for AuditCommand {
    fn run(&self, config: &Config) -> Result<()> {
        let command = self;
        match command {
            AuditCommand::Heads { brokers, out } => {
                let bus = config.bus(brokers);
                let lines = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(read_heads_topic(&bus))?;
                let mut text = String::new();
                for line in &lines {
                    text.push_str(line.trim_end());
                    text.push('\n');
                }
                std::fs::write(out, text)
                    .with_context(|| format!("cannot write {}", out.display()))?;
                println!(
                    "{} heads from {} written to {}",
                    lines.len(),
                    vigie_record::topics::AUDIT_HEADS,
                    out.display()
                );
                Ok(())
            }
            AuditCommand::Verify {
                file,
                pubkey,
                log,
                kind,
                heads,
            } => {
                let key = access_log::read_public_key(pubkey)?;
                let bytes = std::fs::read(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let mut checks = access_log::Checks {
                    kind: *kind,
                    heads: None,
                };
                let check = |checks: &access_log::Checks| {
                    if *log {
                        verify::verify_log_with(&bytes, &key, checks)
                    } else {
                        verify::verify_export_with(&bytes, &key, checks)
                    }
                    .map_err(|tamper| anyhow::anyhow!("{} is NOT intact: {tamper}", file.display()))
                };
                let mut report = check(&checks)?;
                if let (Some(heads), Some(found)) = (heads, report.kind) {
                    let text = std::fs::read_to_string(heads)
                        .with_context(|| format!("cannot read {}", heads.display()))?;
                    let (published, others) = verify::parse_heads(&text, &key, found)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", heads.display()))?;
                    let count = published.len();
                    checks.kind = Some(found);
                    checks.heads = Some(published);
                    report = check(&checks)?;
                    println!(
                        "heads: {} of the {count} heads published in {} for the {found} log are in \
                         its chain, with their hash ({} outside what FILE holds; {others} lines of \
                         other logs or keys)",
                        report.heads_checked,
                        heads.display(),
                        report.heads_outside
                    );
                }
                print_report(&report, *log);
                Ok(())
            }
        }
    }
}

fn print_report(report: &Report, log: bool) {
    if report.last == 0 {
        println!("intact: no entries");
    } else {
        println!(
            "intact: entries {} to {} ({} shown, {} omitted by the export's filter), {} \
             checkpoints",
            report.first, report.last, report.entries, report.omitted, report.checkpoints
        );
    }
    if let Some(kind) = report.kind {
        println!(
            "log: the {kind} log (signatures of domain {})",
            kind.domain()
        );
    }
    if let Some(seal) = &report.seal {
        let user = seal
            .user
            .as_deref()
            .map_or("of every user".to_string(), |u| format!("of user {u:?}"));
        let period = match (&seal.from, &seal.to) {
            (None, None) => "at any time".to_string(),
            (Some(from), None) => format!("at or after {from}"),
            (None, Some(to)) => format!("before {to}"),
            (Some(from), Some(to)) => format!("at or after {from} and before {to}"),
        };
        println!(
            "filter: the entries {user} {period}: {} selected, shown in full",
            seal.selected
        );
        println!("exported at {} (the seal's time)", seal.time);
    }
    if let Some(time) = &report.last_signed {
        println!("last checkpoint signed at {time}");
    }
    if log {
        if report.covered < report.last {
            println!(
                "note: entries {} to {} are chained but not yet signed by a checkpoint",
                report.covered + 1,
                report.last
            );
        }
        if report.torn_tail {
            println!(
                "note: the last line is incomplete (a crash during a write; never \
                 acknowledged); the server cuts it off when it next starts"
            );
        }
    }
}

/// Every message of `vigie.audit.heads`, from the start of each partition to its end as it is
/// when the reading starts.
async fn read_heads_topic(bus: &vigie_record::bus::BusConfig) -> Result<Vec<String>> {
    use std::collections::BTreeMap;
    use std::time::Duration;
    let topic = vigie_record::topics::AUDIT_HEADS;
    let subscriber = vigie_record::bus::Subscriber::assigned(bus, topic, &BTreeMap::new())
        .with_context(|| format!("cannot read {topic}"))?;
    let mut next: BTreeMap<i32, (i64, i64)> = subscriber
        .lag(Duration::from_secs(10))?
        .into_iter()
        .map(|l| (l.partition, (l.position, l.high_watermark)))
        .collect();
    let mut lines = Vec::new();
    while next.values().any(|(at, end)| at < end) {
        let delivery = tokio::time::timeout(Duration::from_secs(30), subscriber.next())
            .await
            .with_context(|| format!("{topic}: no message for 30 s before its end"))??;
        if let Some((at, _)) = next.get_mut(&delivery.coords.partition) {
            *at = delivery.coords.offset + 1;
        }
        lines.push(String::from_utf8_lossy(&delivery.payload).into_owned());
    }
    Ok(lines)
}
