//! `vigie capture`: run one configured source and write what it yields to a file.
//!
//! The file is JSONL, one envelope a line (`{"tombstone": …}` for a deletion), zstd-compressed
//! when its name ends in `.zst` ([`vigie_ingest::capture`]). It is appended to, batch by batch,
//! each batch flushed to disk before the source's cursor is committed in
//! `<data_dir>/cursors/<name>.json`: a capture stopped (Ctrl-C, `--for`, a crash) and started
//! again continues where the file ends, without losing or repeating posts.

use crate::config::Config;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use vigie_ingest::capture::CaptureWriter;
use vigie_ingest::config::SourcesConfig;
use vigie_ingest::driver::{self, RunOptions};
use vigie_ingest::http::HttpClient;
use vigie_ingest::state::StateStore;
use vigie_ingest::Pseudonymiser;

/// The sources file read when no `--sources` is given.
pub const DEFAULT_SOURCES: &str = "sources.toml";

/// `vigie capture` arguments.
#[derive(Args)]
pub struct CaptureArgs {
    /// The source to capture: a `name` of the sources file.
    #[arg(long, value_name = "NAME")]
    pub source: String,
    /// Where to write (JSONL; zstd when it ends in .zst). Appended to if it exists.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Stop after this long (e.g. 90s, 10m, 2h); default: until Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// The sources file (see config/sources.example.toml).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_SOURCES)]
    pub sources: PathBuf,
}

impl super::Cmd for CaptureArgs {
    fn run(&self, config: &Config) -> Result<()> {
        let args = self;
        let sources = SourcesConfig::load(&args.sources).with_context(|| {
            format!(
                "no usable sources file {} (start from config/sources.example.toml)",
                args.sources.display()
            )
        })?;
        let source_config = sources.get(&args.source).with_context(|| {
            let names: Vec<&str> = sources.sources.iter().map(|s| s.name()).collect();
            format!(
                "no source named {:?} in {} (there: {})",
                args.source,
                args.sources.display(),
                names.join(", ")
            )
        })?;
        let http = HttpClient::new(sources.http.clone())?;
        let pseudonymiser: Pseudonymiser = config.pseudonymiser()?;
        let mut source = source_config.build(&http, &pseudonymiser)?;
        let store = StateStore::in_data_dir(&config.data_dir);
        let mut writer = CaptureWriter::open(&args.out)?;
        let runtime = tokio::runtime::Runtime::new()?;
        let report = runtime.block_on(async {
            let (stop, stopped) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    tracing::info!("stopping after the batch in flight");
                    let _ = stop.send(true);
                }
            });
            let options = RunOptions {
                deadline: args.duration.map(|d| tokio::time::Instant::now() + d),
                stop: Some(stopped),
                ..Default::default()
            };
            tracing::info!(
                source = %args.source,
                out = %args.out.display(),
                cursors = %store.dir().display(),
                "capturing"
            );
            driver::run(source.as_mut(), &store, &mut writer, options).await
        })?;
        println!(
            "captured {} posts and {} deletions from {} into {} ({} malformed items skipped, {} failed polls)",
            report.posts,
            report.deletions,
            args.source,
            args.out.display(),
            report.skipped,
            report.failures
        );
        Ok(())
    }
}
