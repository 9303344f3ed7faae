//! `vigie reidentify PSEUDONYM --purpose TEXT [--user NAME]`: the one way back from a pseudonym
//! to the handle it replaced, and itself accountable.
//!
//! Pseudonyms are HMACs and cannot be reversed; the handle comes from the identity file that the
//! ingestors keep (`<data_dir>/keys/identities.jsonl`, 0600: see `vigie_ingest::identities`). So
//! only an administrator of the machine, whose account can read the data dir, can re-identify.
//!
//! ## The reidentify log
//! Every attempt, answered or refused, is first appended to
//! `<data_dir>/reidentify-log/access.jsonl`, in exactly the access log's format (hash-chained,
//! each entry covered by an ed25519 checkpoint signed with the access-log key, under the
//! re-identification log's own domain `vigie-reidentify-log/v1`), so
//! `vigie audit verify <data_dir>/reidentify-log/access.jsonl --pubkey <data_dir>/access-log.pub
//! --log` checks it. One entry: user (`--user`, else the OS account), role `admin`, purpose,
//! method `GET`, endpoint `reidentify`, params `{pseudonym, os_user}`, `count` (handles found)
//! and status: 200 found, 404 unknown pseudonym, 400 no purpose, 500 identity file unreadable.
//!
//! ## Guarantees
//! - Nothing is printed before its entry is durable and signed: if the log cannot be written,
//!   the command prints no handle and exits non-zero.
//! - An empty purpose, an unknown pseudonym or an unreadable identity file exit non-zero (after
//!   being logged).
//! - One writer at a time: the command waits for an exclusive `flock` on
//!   `<data_dir>/reidentify-log/lock` while it opens and appends to the log.

use crate::config::Config;
use anyhow::{anyhow, Context, Result};
use chrono::Utc;
use clap::Args;
use vigie_ingest::identities::{self, Sighting};
use vigie_logs::access_log::Access;
use vigie_logs::reidentify;

/// `vigie reidentify` arguments.
#[derive(Args)]
pub struct ReidentifyArgs {
    /// The pseudonym, as shown in a post (`ps:` and 32 hex digits).
    #[arg(value_name = "PSEUDONYM")]
    pub pseudonym: String,
    /// Why this person must be re-identified (required, logged).
    #[arg(long, value_name = "TEXT")]
    pub purpose: String,
    /// Who asks, when not the OS account itself (logged, with the OS account).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

impl super::Cmd for ReidentifyArgs {
    fn run(&self, config: &Config) -> Result<()> {
        let args = self;
        let os_user = whoami::username().unwrap_or_else(|e| format!("<unknown: {e}>"));
        let purpose = args.purpose.trim();
        let pseudonym = args.pseudonym.trim();
        let (status, found, refusal) = if purpose.is_empty() {
            let why = anyhow!("refused: a purpose is required (--purpose TEXT, logged)");
            (400, Vec::new(), Some(why))
        } else {
            match identities::lookup(&config.identities_file(), pseudonym) {
                Ok(found) if found.is_empty() => {
                    let why = anyhow!(
                        "unknown pseudonym {pseudonym}: the identity file {} has no handle for it \
                         (never ingested here, or not seen for the retention period)",
                        config.identities_file().display()
                    );
                    (404, found, Some(why))
                }
                Ok(found) => (200, found, None),
                Err(e) => (500, Vec::new(), Some(anyhow!(e))),
            }
        };
        let mut params = serde_json::Map::new();
        params.insert("pseudonym".into(), pseudonym.into());
        params.insert("os_user".into(), os_user.clone().into());
        let access = Access {
            time: Utc::now(),
            user: Some(args.user.clone().unwrap_or(os_user)),
            role: Some("admin".into()),
            purpose: (!purpose.is_empty()).then(|| purpose.to_string()),
            method: "GET".into(),
            endpoint: "reidentify".into(),
            params,
            status,
            count: found.len() as u64,
            posts: Vec::new(),
        };
        let (seq, log) = log(config, access)
            .context("the reidentify log cannot be written: nothing is shown")?;
        if let Some(why) = refusal {
            return Err(why.context(format!("logged as entry {seq} of {}", log.display())));
        }
        for s in &found {
            println!("{}", describe(s));
        }
        tracing::info!("logged as entry {seq} of {}", log.display());
        Ok(())
    }
}

/// One line per handle: platform, handle and the days it was seen.
fn describe(s: &Sighting) -> String {
    format!(
        "{} {} (first seen {}, last seen {})",
        s.source, s.handle, s.first_seen, s.last_seen
    )
}

/// Appends `access` to the reidentify log and signs a checkpoint over it; returns its seq and
/// the log file once durable (see [`vigie_logs::reidentify`]).
fn log(config: &Config, access: Access) -> Result<(u64, std::path::PathBuf)> {
    Ok(reidentify::append(
        &config.data_dir,
        config.access_log_heads_file.clone(),
        access,
    )?)
}
