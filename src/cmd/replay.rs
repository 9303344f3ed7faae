//! `vigie replay`: play a recorded stream into the embedded pipeline (analyse, then index).
//!
//! The file is a capture (`vigie capture`, `.jsonl` or `.jsonl.zst`), a CrisisLex CSV or a
//! labelled JSONL file; its format is detected from its name and first line, or given with
//! `--format`. Items are replayed in a deterministic order, by their time at the source then
//! their Vigie id, keeping the original inter-arrival times divided by `--speed` (`max`: no
//! waiting) ([`vigie_ingest::replay::play`]). Each batch is analysed, written and committed to
//! the index before the next, and a progress bar shows posts/s and the time left.
//!
//! Replaying twice indexes each post once: the index upserts by Vigie id. Deletions
//! (tombstones) are counted and reported; the index cannot remove posts yet.

use crate::config::Config;
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Instant;
use vigie_analyse::{Analyser, AnalyserConfig};
use vigie_index::PostIndex;
use vigie_ingest::replay::{self, Format, Speed};
use vigie_ingest::{Item, Pseudonymiser};
use vigie_record::{Envelope, ScoreState};

/// `vigie replay` arguments.
#[derive(Args)]
pub struct ReplayArgs {
    /// The file to replay: a capture (.jsonl, .jsonl.zst), a CrisisLex CSV or labelled JSONL.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Pace: 1 keeps the original inter-arrival times, 10 plays ten times faster, max does not
    /// wait.
    #[arg(long, value_name = "1|10|max", default_value = "1")]
    pub speed: Speed,
    /// Index directory (default <data-dir>/index).
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,
    /// The file's format: capture, crisislex or labelled (default: detected).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Model directory (overrides the config).
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
}

/// What a replay did.
#[derive(Debug, Default)]
struct Summary {
    indexed: usize,
    alerts: usize,
    not_scored: usize,
    deletions: usize,
}

/// Runs the replay.
pub fn run(config: &Config, args: &ReplayArgs) -> Result<()> {
    let started = Instant::now();
    let pseudonymiser = Pseudonymiser::new(&config.pseudonym_key()?);
    let loaded = replay::load(&args.file, args.format, &pseudonymiser)
        .with_context(|| format!("reading {}", args.file.display()))?;
    for e in &loaded.rejected {
        tracing::warn!("skipped: {e}");
    }
    let analyser = Analyser::new(
        crate::scorer(config)?,
        AnalyserConfig {
            alert_threshold: config.alert_threshold,
            batch_size: config.batch_size,
            ..Default::default()
        },
    );
    let index_dir = config.index_dir();
    let index = PostIndex::open(&index_dir)?;
    let mut writer = index
        .writer()
        .context("cannot open the index for writing")?;
    let progress = ProgressBar::new(loaded.items.len() as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} posts, {per_sec}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    progress.set_message(format!("replaying at {}", args.speed));
    let mut summary = Summary::default();
    let clock = Instant::now();
    replay::play(
        loaded.items,
        args.speed,
        config.batch_size,
        || clock.elapsed(),
        std::thread::sleep,
        |batch: Vec<Item>| -> Result<()> {
            let n = batch.len() as u64;
            let mut envelopes: Vec<Envelope> = Vec::with_capacity(batch.len());
            for item in batch {
                match item {
                    Item::Post(e) => envelopes.push(*e),
                    Item::Delete(t) => {
                        summary.deletions += 1;
                        tracing::warn!(
                            id = %t.id,
                            "deletion of {} at {} not applied: the index cannot remove posts yet",
                            t.native_id,
                            t.deleted_at
                        );
                    }
                }
            }
            analyser.analyse(&mut envelopes)?;
            for e in &envelopes {
                writer.upsert(e)?;
                match &e.scoring {
                    Some(s) if s.state == ScoreState::NotScored => summary.not_scored += 1,
                    Some(s) if s.danger() >= config.alert_threshold => summary.alerts += 1,
                    _ => {}
                }
            }
            writer.commit(None)?;
            summary.indexed += envelopes.len();
            progress.inc(n);
            Ok(())
        },
    )?;
    progress.finish_and_clear();
    tracing::info!(
        indexed = summary.indexed,
        alerts = summary.alerts,
        not_scored = summary.not_scored,
        deletions = summary.deletions,
        rejected = loaded.rejected.len(),
        model = analyser.model_id(),
        seconds = started.elapsed().as_secs_f32(),
        "replayed {} into {}",
        args.file.display(),
        index_dir.display()
    );
    println!(
        "replayed {}: {} posts indexed ({} alerts, {} not scored), {} deletions not applied, {} lines rejected, into {}",
        args.file.display(),
        summary.indexed,
        summary.alerts,
        summary.not_scored,
        summary.deletions,
        loaded.rejected.len(),
        index_dir.display()
    );
    Ok(())
}
