//! `vigie audit verify`: checks an access-log export (or the log itself) offline.

use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use vigie_api::access_log;

/// `vigie audit ...`
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check an export of GET /v1/audit/export with the log's public key. Exits 0 only when it
    /// is intact; otherwise names the first entry altered, removed, reordered or inserted, or the
    /// truncated tail.
    Verify {
        /// The export (JSONL).
        file: PathBuf,
        /// The public key file (`access-log.pub` of the server's data dir).
        #[arg(long, value_name = "FILE")]
        pubkey: PathBuf,
        /// FILE is the log itself (`<data-dir>/access-log/access.jsonl`), not an export: it must
        /// start at entry 1, may end with a torn line left by a crash, and needs no seal.
        #[arg(long)]
        log: bool,
    },
}

/// Runs a `vigie audit` command.
pub fn run(command: &AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify { file, pubkey, log } => {
            let key = access_log::read_public_key(pubkey)?;
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let checked = if *log {
                access_log::verify_log(&bytes, &key)
            } else {
                access_log::verify_export(&bytes, &key)
            };
            let report = checked
                .map_err(|tamper| anyhow::anyhow!("{} is NOT intact: {tamper}", file.display()))?;
            if report.last == 0 {
                println!("intact: no entries");
            } else {
                println!(
                    "intact: entries {} to {} ({} shown, {} omitted by the export's filter), {} \
                     checkpoints",
                    report.first, report.last, report.entries, report.omitted, report.checkpoints
                );
            }
            if *log {
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
            Ok(())
        }
    }
}
