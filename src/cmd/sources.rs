//! `vigie sources status`: what each source has committed, and what it may have missed.
//!
//! It reads the state files in `<data_dir>/cursors/` (see [`vigie_ingest::state`]) and lists,
//! for each source: its cursor's commit time, its counters (posts, deletions, malformed items
//! skipped), the error it is failing with, if any, and its coverage gaps (outages, rate-limit
//! waits, skipped pages) as time windows. Sources of the sources file that never ran are listed
//! too, so an analyst sees what was never seen.

use crate::cmd::capture::DEFAULT_SOURCES;
use crate::config::Config;
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;
use vigie_ingest::config::SourcesConfig;
use vigie_ingest::state::{SourceState, StateStore};

/// `vigie sources` subcommands.
#[derive(Subcommand)]
pub enum SourcesCommand {
    /// Show each source's cursor, counters and coverage gaps.
    Status {
        /// The sources file, to list configured sources that never ran.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_SOURCES)]
        sources: PathBuf,
        /// Print the state files as one JSON array.
        #[arg(long)]
        json: bool,
    },
}

impl super::Cmd for SourcesCommand {
    fn run(&self, config: &Config) -> Result<()> {
        let command = self;
        let SourcesCommand::Status { sources, json } = command;
        let store = StateStore::in_data_dir(&config.data_dir);
        let mut states = store.list()?;
        if sources.is_file() {
            for s in SourcesConfig::load(sources)?.sources {
                if !states.iter().any(|st| st.name == s.name()) {
                    states.push(SourceState {
                        name: s.name().to_string(),
                        kind: s.kind().to_string(),
                        ..Default::default()
                    });
                }
            }
        }
        if *json {
            println!("{}", serde_json::to_string_pretty(&states)?);
            return Ok(());
        }
        if states.is_empty() {
            println!(
                "no source has run yet (cursors in {})",
                store.dir().display()
            );
        }
        for state in &states {
            print!("{}", describe(state));
        }
        Ok(())
    }
}

/// The human-readable status of one source.
pub fn describe(state: &SourceState) -> String {
    let mut out = String::new();
    let kind = if state.kind.is_empty() {
        "?"
    } else {
        &state.kind
    };
    out.push_str(&format!("{} ({kind})\n", state.name));
    match state.committed_at {
        Some(at) => out.push_str(&format!(
            "  committed {}: {} posts, {} deletions, {} malformed items skipped\n",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            state.posts,
            state.deletions,
            state.skipped
        )),
        None => out.push_str("  never committed: nothing seen yet\n"),
    }
    if let Some(e) = &state.last_error {
        out.push_str(&format!("  FAILING: {e}\n"));
    }
    if state.gaps.is_empty() {
        out.push_str("  no coverage gaps recorded\n");
    } else {
        out.push_str("  coverage gaps:\n");
        for g in &state.gaps {
            let kind = serde_json::to_value(g.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let from = g.from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let (to, length) = match g.to {
                Some(to) => (
                    to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    // Whole seconds: sub-second parts only make noise here.
                    humantime::format_duration(std::time::Duration::from_secs(
                        (to - g.from).num_seconds().max(0) as u64,
                    ))
                    .to_string(),
                ),
                None => ("now".to_string(), "ongoing".to_string()),
            };
            out.push_str(&format!(
                "    {kind:<13} {from} -> {to} ({length}): {}\n",
                g.detail
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shows_counters_failure_and_gaps_as_windows() {
        let state: SourceState = serde_json::from_str(
            r#"{"name":"mamot","kind":"mastodon","committed_at":"2026-11-27T08:10:00Z",
                "posts":120,"deletions":1,"skipped":2,"last_error":"mamot: GET https://mamot.fr/x: HTTP 502",
                "gaps":[{"kind":"rate_limited","from":"2026-11-27T08:00:00Z","to":"2026-11-27T08:01:30Z","detail":"HTTP 429"},
                        {"kind":"outage","from":"2026-11-27T08:05:00Z","detail":"HTTP 502"}]}"#,
        )
        .unwrap();
        assert_eq!(
            describe(&state),
            "mamot (mastodon)\n\
             \x20 committed 2026-11-27T08:10:00Z: 120 posts, 1 deletions, 2 malformed items skipped\n\
             \x20 FAILING: mamot: GET https://mamot.fr/x: HTTP 502\n\
             \x20 coverage gaps:\n\
             \x20   rate_limited  2026-11-27T08:00:00Z -> 2026-11-27T08:01:30Z (1m 30s): HTTP 429\n\
             \x20   outage        2026-11-27T08:05:00Z -> now (ongoing): HTTP 502\n"
        );
        let fresh = SourceState {
            name: "r-news".into(),
            kind: "reddit".into(),
            ..Default::default()
        };
        assert_eq!(
            describe(&fresh),
            "r-news (reddit)\n  never committed: nothing seen yet\n  no coverage gaps recorded\n"
        );
    }
}
