//! `vigie retention enforce`, and the retention schedule of `vigie serve`.
//!
//! Posts created more than `retention_days` ago (configuration; 0 keeps posts forever) leave
//! the index; each deletion batch is first logged, hash-chained and signed, in
//! `<data-dir>/retention-log/access.jsonl` (see `vigie_api::retention`), which
//! `vigie audit verify FILE --pubkey <data-dir>/access-log.pub --log` checks. Then the identity
//! file (`<data-dir>/keys/identities.jsonl`, see `vigie_ingest::identities`) forgets the
//! pseudonyms not seen since the same cutoff's day, so no one can be re-identified after the
//! posts that named them are gone.

use crate::config::Config;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::time::Duration;
use vigie_api::access_log;
use vigie_api::retention::{self, RetentionReport};
use vigie_index::PostIndex;

/// How often `vigie serve` enforces retention (first at start).
pub const SCHEDULE: Duration = Duration::from_secs(3600);

/// `vigie retention ...`
#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Delete from the index the posts older than `retention_days`, logging each batch in
    /// <data-dir>/retention-log/ first. Fails, deleting nothing, while another process writes
    /// the index.
    Enforce,
}

/// Runs a `vigie retention` command.
pub fn run(config: &Config, command: &RetentionCommand) -> Result<()> {
    match command {
        RetentionCommand::Enforce => {
            if config.retention_days == 0 {
                println!("retention_days = 0: posts are kept forever; nothing to do");
                return Ok(());
            }
            let dir = config.index_dir();
            anyhow::ensure!(
                dir.join("meta.json").is_file(),
                "no index in {}",
                dir.display()
            );
            let index = PostIndex::open(&dir)?;
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(enforce_once(config, &index))?;
            let forgotten = expire_identities(config, &report)?;
            println!(
                "forgot {forgotten} identity lines of days before {} in {}",
                report.cutoff.date_naive(),
                config.identities_file().display()
            );
            if report.deleted.is_empty() {
                println!(
                    "nothing to delete: no post created before {} (retention {} days)",
                    report.cutoff.to_rfc3339(),
                    config.retention_days
                );
                return Ok(());
            }
            println!(
                "deleted {} posts created before {} (retention {} days); logged in {}",
                report.deleted.len(),
                report.cutoff.to_rfc3339(),
                config.retention_days,
                report.log.display()
            );
            Ok(())
        }
    }
}

/// One enforcement over `index`.
pub async fn enforce_once(config: &Config, index: &PostIndex) -> Result<RetentionReport> {
    let key = access_log::load_signing_key(&config.data_dir)?;
    let log = retention::RetentionLog {
        data_dir: &config.data_dir,
        key,
        heads_file: config.access_log_heads_file.clone(),
    };
    retention::enforce(index, log, config.retention_days, chrono::Utc::now())
        .await
        .context("enforcing retention")
}

/// Drops from the identity file the lines of days before the cutoff of `report`; returns how
/// many.
pub fn expire_identities(config: &Config, report: &RetentionReport) -> Result<usize> {
    Ok(vigie_ingest::identities::expire(
        &config.identities_file(),
        report.cutoff.date_naive(),
    )?)
}

/// Enforces retention every [`SCHEDULE`] for as long as the server runs (nothing when
/// `retention_days` is 0). Failures are reported and retried at the next tick.
pub async fn schedule(config: Config, index: PostIndex) {
    if config.retention_days == 0 {
        return;
    }
    let mut tick = tokio::time::interval(SCHEDULE);
    let mut told_busy = false;
    loop {
        tick.tick().await;
        let enforced = enforce_once(&config, &index).await;
        if let Err(e) = &enforced {
            let busy = e.chain().any(|c| {
                c.downcast_ref::<retention::RetentionError>().is_some_and(
                    |r| matches!(r, retention::RetentionError::Index(i) if i.is_writer_busy()),
                )
            });
            if busy {
                // A Kafka indexer holds the writer, and enforces retention itself.
                if !told_busy {
                    tracing::info!(
                        "retention: the index's writer is held by another process (a Kafka \
                         indexer enforces retention itself); this server leaves it to that writer"
                    );
                    told_busy = true;
                }
                continue;
            }
        }
        if let Ok(r) = &enforced {
            match expire_identities(&config, r) {
                Ok(0) => {}
                Ok(n) => tracing::info!("retention: forgot {n} identity lines"),
                Err(e) => tracing::warn!("retention: identity file not expired: {e:#}"),
            }
        }
        match enforced {
            Ok(r) if r.deleted.is_empty() => {}
            Ok(r) => tracing::info!(
                deleted = r.deleted.len(),
                cutoff = %r.cutoff,
                "retention: deleted old posts (logged in {})",
                r.log.display()
            ),
            Err(e) => tracing::warn!("retention not enforced this time: {e:#}"),
        }
    }
}
