//! `vigie serve`: the analyst API over an existing index, every access logged (see
//! `vigie_logs::access_log`); it also enforces retention hourly unless a Kafka indexer holds the
//! index writer.

use crate::config::{Config, Overrides};
use anyhow::Result;
use std::path::PathBuf;
use vigie_index::PostIndex;

/// `vigie serve` arguments (also flattened into `vigie run`'s).
#[derive(clap::Args)]
#[group(id = "serve_args")]
pub struct Args {
    /// Index directory (default <data-dir>/index).
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

impl super::Cmd for Args {
    fn overrides(&self, o: &mut Overrides) {
        o.index_dir = self.index.clone();
        o.listen = self.listen.clone();
    }

    fn run(&self, config: &Config) -> Result<()> {
        let dir = config.index_dir();
        anyhow::ensure!(
            dir.join("meta.json").is_file(),
            "no index in {} (run `vigie run` first, or pass --index)",
            dir.display()
        );
        super::serve_index(config, PostIndex::open(&dir)?, true)
    }
}
