//! `vigie stats`: documents, offsets, coverage gaps and last commit of an index.

use crate::config::{Config, Overrides};
use anyhow::Result;
use std::path::PathBuf;
use vigie_index::PostIndex;

/// `vigie stats` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Index directory (default <data-dir>/index).
    #[arg(long, value_name = "DIR")]
    index: Option<PathBuf>,
    /// Print one JSON object: `docs`, `offsets`, `topic`, `committed_at`.
    #[arg(long)]
    json: bool,
}

impl super::Cmd for Args {
    fn overrides(&self, o: &mut Overrides) {
        o.index_dir = self.index.clone();
    }

    fn run(&self, config: &Config) -> Result<()> {
        let dir = config.index_dir();
        anyhow::ensure!(
            dir.join("meta.json").is_file(),
            "no index in {}",
            dir.display()
        );
        let stats = vigie_pipeline::stats(&PostIndex::open(&dir)?)?;
        if self.json {
            println!("{}", serde_json::to_string(&stats)?);
            return Ok(());
        }
        println!("documents:   {}", stats.docs);
        println!("deletions:   {}", stats.deletions);
        println!(
            "topic:       {}",
            stats.topic.as_deref().unwrap_or("(none)")
        );
        for (p, o) in &stats.offsets {
            println!("partition {p}: next offset {o}");
        }
        for g in &stats.gaps {
            println!(
                "coverage gap: partition {} expected offset {}, read {} ({:?}, {})",
                g.partition, g.expected, g.got, g.kind, g.seen_at
            );
        }
        println!(
            "last commit: {}",
            stats.committed_at.as_deref().unwrap_or("(no checkpoint)")
        );
        Ok(())
    }
}
