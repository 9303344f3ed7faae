//! `vigie index`: the indexer, from the scored topic into the index, its checkpoint in each
//! commit (see [`vigie_pipeline::indexer`]); it enforces retention itself, since it holds the
//! index writer.

use crate::config::{Config, Overrides};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;
use vigie_index::PostIndex;
use vigie_pipeline::indexer::IndexerRetention;
use vigie_pipeline::metrics::{self, Metrics};
use vigie_pipeline::{topics, IndexerConfig};

/// `vigie index` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Kafka bootstrap brokers, host:port[,host:port].
    #[arg(long, value_name = "BROKERS")]
    brokers: String,
    /// Index directory (default <data-dir>/index).
    #[arg(long, value_name = "DIR")]
    index: Option<PathBuf>,
    /// Topic of scored posts.
    #[arg(long, default_value = topics::SCORED)]
    topic: String,
    /// Topic of messages that could not be indexed.
    #[arg(long, default_value = topics::DEADLETTER)]
    deadletter: String,
    /// Most messages per index commit.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Serve GET /metrics (Prometheus text) on ADDR, e.g. 127.0.0.1:9100.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// How often the indexer enforces `retention_days` (first at start), since it holds the
    /// index writer (e.g. 1h, 10m).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    retention_every: Duration,
}

impl super::Cmd for Args {
    fn overrides(&self, o: &mut Overrides) {
        o.index_dir = self.index.clone();
        o.metrics = self.metrics.clone();
    }

    fn run(&self, config: &Config) -> Result<()> {
        let index = PostIndex::open(&config.index_dir())?;
        let registry = Metrics::new();
        let stage = IndexerConfig {
            bus: config.bus(&self.brokers),
            topic: self.topic.clone(),
            deadletter: self.deadletter.clone(),
            batch: self.batch.max(1),
            linger: Duration::from_millis(200),
            metrics: registry.stage("index"),
            retention: (config.retention_days > 0).then(|| IndexerRetention {
                retention: config.retention(),
                every: self.retention_every,
            }),
            incidents: config.incident_config(),
        };
        tokio::runtime::Runtime::new()?.block_on(async {
            metrics::start(config.metrics.as_deref(), registry.clone()).await?;
            vigie_pipeline::run_indexer(&stage, &index, crate::shutdown::signal()).await
        })?;
        Ok(())
    }
}
