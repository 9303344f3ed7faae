//! The embedded pipeline: replay -> analyse -> index in one process, no Kafka.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use vigie_analyse::{Analyser, Scorer};
use vigie_index::PostIndex;
use vigie_ingest::{replay, Pseudonymiser};

/// What a run of the embedded pipeline did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Posts indexed.
    pub indexed: usize,
    /// Posts at or above the alert threshold.
    pub alerts: usize,
    /// Posts marked "not scored".
    pub not_scored: usize,
    /// Input lines refused (each logged with its reason).
    pub rejected: usize,
}

/// Replays `input` (labelled JSONL) through `analyser` into `index`, committing after each batch.
pub fn replay_into_index<S: Scorer>(
    input: &Path,
    pseudonymiser: &Pseudonymiser,
    analyser: &Analyser<S>,
    alert_threshold: f32,
    batch_size: usize,
    index: &PostIndex,
) -> Result<Summary> {
    let items = replay::read_jsonl(input, pseudonymiser)?;
    let mut summary = Summary::default();
    let mut envelopes = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Ok(e) => envelopes.push(e),
            Err(e) => {
                tracing::warn!("skipped: {e}");
                summary.rejected += 1;
            }
        }
    }
    let progress = ProgressBar::new(envelopes.len() as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} posts, {per_sec}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    progress.set_message("analysing");
    let mut writer = index
        .writer()
        .context("cannot open the index for writing")?;
    for batch in envelopes.chunks_mut(batch_size.max(1)) {
        analyser.analyse(batch)?;
        for e in batch.iter() {
            writer.upsert(e)?;
            let scoring = e.scoring.as_ref();
            if scoring.is_some_and(|s| s.state == vigie_record::ScoreState::NotScored) {
                summary.not_scored += 1;
            } else if scoring.is_some_and(|s| s.danger() >= alert_threshold) {
                summary.alerts += 1;
            }
        }
        writer.commit(None)?;
        summary.indexed += batch.len();
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    Ok(summary)
}
