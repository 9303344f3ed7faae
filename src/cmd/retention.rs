//! `vigie retention enforce`, and the retention schedule of `vigie serve`.
//!
//! Posts created more than `retention_days` ago (configuration; 0 keeps posts forever) leave
//! the index; each deletion batch is first logged, hash-chained and signed, in
//! `<data-dir>/retention-log/access.jsonl` (see `vigie_logs::retention`), which
//! `vigie audit verify FILE --pubkey <data-dir>/access-log.pub --log` checks. Then the identity
//! file (`<data-dir>/keys/identities.jsonl`, see `vigie_ingest::identities`) forgets the
//! pseudonyms not seen since the same cutoff's day, so no one can be re-identified after the
//! posts that named them are gone.

use crate::config::Config;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::time::Duration;
use vigie_index::PostIndex;
use vigie_logs::retention::{RetentionError, RetentionReport, Target};

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

impl super::Cmd for RetentionCommand {
    fn run(&self, config: &Config) -> Result<()> {
        let command = self;
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
                let forgotten = report.identities.as_ref().map_err(|e| {
                    anyhow::anyhow!(
                        "the posts are deleted, but the identity file {} was not expired: {e}",
                        config.identities_file().display()
                    )
                })?;
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
}

/// One enforcement over `index` (its writer taken for the time of it).
pub async fn enforce_once(config: &Config, index: &PostIndex) -> Result<RetentionReport> {
    config
        .retention()
        .enforce(Target::Index(index), chrono::Utc::now())
        .await
        .context("enforcing retention")
}

/// Enforces retention every [`SCHEDULE`] for as long as the server runs (nothing when
/// `retention_days` is 0). Failures are reported and retried at the next tick.
pub async fn schedule(config: Config, index: PostIndex) {
    if config.retention_days == 0 {
        return;
    }
    let retention = config.retention();
    let mut tick = tokio::time::interval(SCHEDULE);
    let mut told_busy = false;
    loop {
        tick.tick().await;
        match retention
            .enforce(Target::Index(&index), chrono::Utc::now())
            .await
        {
            // A Kafka indexer holds the writer, and enforces retention itself.
            Err(RetentionError::Index(i)) if i.is_writer_busy() => {
                if !told_busy {
                    tracing::info!(
                        "retention: the index's writer is held by another process (a Kafka \
                         indexer enforces retention itself); this server leaves it to that writer"
                    );
                    told_busy = true;
                }
            }
            Err(e) => tracing::warn!("retention not enforced this time: {e}"),
            Ok(report) => report.trace(),
        }
    }
}
