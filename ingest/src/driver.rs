//! Runs one source: poll, hand the batch to a sink, then commit the cursor.
//!
//! ## The commit rule
//! For each batch, in this order:
//! 1. the source is polled with the committed cursor;
//! 2. the batch's items go to the [`Sink`], which returns only once they are safe (written and
//!    flushed to a capture file, indexed, acknowledged by Kafka);
//! 3. the batch's cursor is committed ([`StateStore::save`], an atomic file write).
//!
//! A crash between 2 and 3 makes the next run fetch and deliver that batch again (the stable
//! Vigie ids let downstream collapse it); a crash anywhere else loses nothing and repeats
//! nothing. If the sink refuses a batch, the driver stops with [`IngestError::Sink`] and the
//! cursor stays where it was.
//!
//! ## Failures
//! A failed poll never stops the driver: it logs the error, opens an outage [`Gap`] (closed at
//! the next successful poll), and tries again after an exponential backoff with jitter, or
//! after the `Retry-After` the server asked for (recorded as a rate-limit gap). Every wait is
//! clamped to [`RunOptions::max_wait`]: no answer from a server can overflow the clock or
//! make the driver sleep for longer than that. Each source runs
//! its own driver, so a source that is down does not hold up the others.

use crate::coverage::{Gap, GapKind};
use crate::http::backoff_delay;
use crate::source::{Item, Source};
use crate::state::StateStore;
use crate::IngestError;
use chrono::Utc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The error type sinks return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a driver delivers batches.
#[async_trait::async_trait]
pub trait Sink: Send {
    /// Takes `items` of source `source`; returns once they are safe downstream.
    async fn accept(&mut self, source: &str, items: &[Item]) -> Result<(), BoxError>;
}

/// When a driver stops, and how it waits after failures.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop at this instant (between batches).
    pub deadline: Option<Instant>,
    /// Stop once the source has nothing more right now (a poll with `more == false`).
    pub stop_when_caught_up: bool,
    /// Stop after this many polls (successful or not).
    pub max_polls: Option<u64>,
    /// First wait after a failed poll.
    pub error_backoff_base: Duration,
    /// Longest wait after failed polls.
    pub error_backoff_max: Duration,
    /// Longest wait after any failed poll, a server's `Retry-After` included (the HTTP client
    /// already clamps those to [`HttpConfig::max_wait`](crate::http::HttpConfig::max_wait);
    /// this bounds every source, whatever its errors say).
    pub max_wait: Duration,
    /// Stop when this turns true (Ctrl-C).
    pub stop: Option<watch::Receiver<bool>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            deadline: None,
            stop_when_caught_up: false,
            max_polls: None,
            error_backoff_base: Duration::from_secs(5),
            error_backoff_max: Duration::from_secs(600),
            max_wait: Duration::from_secs(3600),
            stop: None,
        }
    }
}

/// What one run of a driver did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Polls made.
    pub polls: u64,
    /// Posts accepted by the sink.
    pub posts: u64,
    /// Deletions accepted by the sink.
    pub deletions: u64,
    /// Malformed items skipped.
    pub skipped: u64,
    /// Polls that failed.
    pub failures: u64,
}

/// Polls `source` into `sink`, committing its cursor in `store` after each accepted batch,
/// until `options` say stop. Returns early only when the sink refuses a batch or the state
/// cannot be written.
pub async fn run(
    source: &mut dyn Source,
    store: &StateStore,
    sink: &mut dyn Sink,
    mut options: RunOptions,
) -> Result<RunReport, IngestError> {
    let name = source.name().to_string();
    let mut state = store.load(&name, source.kind())?;
    state.name = name.clone();
    state.kind = source.kind().to_string();
    let mut report = RunReport::default();
    let mut failures_in_a_row = 0u32;
    // Whether this run wrote the state yet (the first poll always does, so the source shows up).
    let mut saved = false;
    loop {
        if options.max_polls.is_some_and(|m| report.polls >= m) || stopped(&options) {
            break;
        }
        report.polls += 1;
        let polled = tokio::select! {
            polled = source.poll(state.cursor.as_ref()) => polled,
            () = wait_for_stop(&mut options) => break,
        };
        let wait = match polled {
            Ok(batch) => {
                failures_in_a_row = 0;
                let before = state.clone();
                let now = Utc::now();
                if let Some(outage) = state.open_outage() {
                    outage.to = Some(now);
                    tracing::info!(source = %name, "source recovered");
                }
                state.last_error = None;
                for skipped in &batch.skipped {
                    tracing::warn!(
                        source = %name,
                        location = %skipped.location,
                        "skipped a malformed item: {}",
                        skipped.reason
                    );
                }
                for gap in batch.gaps {
                    state.push_gap(gap);
                }
                report.skipped += batch.skipped.len() as u64;
                state.skipped += batch.skipped.len() as u64;
                if !batch.items.is_empty() {
                    sink.accept(&name, &batch.items)
                        .await
                        .map_err(|e| IngestError::Sink {
                            source_name: name.clone(),
                            message: e.to_string(),
                        })?;
                    let deletions = batch
                        .items
                        .iter()
                        .filter(|i| matches!(i, Item::Delete(_)))
                        .count() as u64;
                    let posts = batch.items.len() as u64 - deletions;
                    report.posts += posts;
                    report.deletions += deletions;
                    state.posts += posts;
                    state.deletions += deletions;
                }
                if let Some(cursor) = batch.cursor {
                    state.cursor = Some(cursor);
                    state.committed_at = Some(now);
                }
                // An idle poll changes nothing: no write (a stream polls every few seconds).
                if state != before || !saved {
                    store.save(&state)?;
                    saved = true;
                }
                if batch.more {
                    continue;
                }
                if options.stop_when_caught_up {
                    break;
                }
                source.poll_interval()
            }
            Err(e) => {
                report.failures += 1;
                tracing::warn!(source = %name, "poll failed: {e}");
                let now = Utc::now();
                let wait = match e.retry_after() {
                    Some(wait) => {
                        let wait = wait.min(options.max_wait);
                        state.push_gap(Gap {
                            kind: GapKind::RateLimited,
                            from: now,
                            to: Some(now + chrono::Duration::from_std(wait).unwrap_or_default()),
                            detail: e.to_string(),
                        });
                        wait
                    }
                    None => {
                        if state.open_outage().is_none() {
                            state.push_gap(Gap {
                                kind: GapKind::Outage,
                                from: now,
                                to: None,
                                detail: e.to_string(),
                            });
                        }
                        backoff_delay(
                            failures_in_a_row,
                            options.error_backoff_base,
                            options.error_backoff_max.min(options.max_wait),
                        )
                    }
                };
                failures_in_a_row = failures_in_a_row.saturating_add(1);
                state.last_error = Some(e.to_string());
                store.save(&state)?;
                saved = true;
                wait
            }
        };
        let now = Instant::now();
        // Waits are clamped above; a sum past the clock's range still means "as late as it goes".
        let sleep_until = now
            .checked_add(wait)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
        let until = options.deadline.map_or(sleep_until, |d| d.min(sleep_until));
        tokio::select! {
            () = tokio::time::sleep_until(until) => {}
            () = wait_for_stop(&mut options) => break,
        }
    }
    Ok(report)
}

fn stopped(options: &RunOptions) -> bool {
    options.deadline.is_some_and(|d| Instant::now() >= d)
        || options.stop.as_ref().is_some_and(|s| *s.borrow())
}

/// Resolves when the deadline passes or the stop signal turns true; never otherwise.
async fn wait_for_stop(options: &mut RunOptions) {
    let deadline = async {
        match options.deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    let signal = async {
        match options.stop.as_mut() {
            Some(rx) => {
                if rx.wait_for(|stop| *stop).await.is_err() {
                    // The sender is gone: nobody can ask us to stop any more.
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = deadline => {}
        () = signal => {}
    }
}
