//! `vigie analyse`: one analyse worker of a consumer group, from the raw topic to the scored
//! one (see [`vigie_pipeline::analyser`] for its delivery and memory guarantees).

use super::{analyser, ScorerChoice};
use crate::config::{Config, Overrides};
use anyhow::Result;
use vigie_pipeline::metrics::{self, Metrics};
use vigie_pipeline::{topics, AnalyserConfig};

/// `vigie analyse` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Kafka bootstrap brokers, host:port[,host:port].
    #[arg(long, value_name = "BROKERS")]
    brokers: String,
    /// Consumer group shared by the workers.
    #[arg(long, default_value = "vigie-analyse")]
    group: String,
    /// Topic of raw posts.
    #[arg(long, default_value = topics::RAW)]
    input: String,
    /// Topic of scored posts.
    #[arg(long, default_value = topics::SCORED)]
    output: String,
    /// Topic of messages that could not be scored.
    #[arg(long, default_value = topics::DEADLETTER)]
    deadletter: String,
    /// Partitions of the topics, when this worker creates them.
    #[arg(long, default_value_t = topics::DEFAULT_PARTITIONS)]
    partitions: i32,
    /// Batches queued between consumer, model and producer: the worker holds at most
    /// (2 * QUEUE + 3) * batch_size messages.
    #[arg(long, default_value_t = 2)]
    queue: usize,
    /// Serve GET /metrics (Prometheus text) on ADDR, e.g. 127.0.0.1:9100.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// The scorer: the configured classifier, or `noop` (danger 0 for every post, no model:
    /// for delivery tests and benchmarks).
    #[arg(long, value_enum, default_value_t = ScorerChoice::Model)]
    scorer: ScorerChoice,
}

impl super::Cmd for Args {
    fn overrides(&self, o: &mut Overrides) {
        o.metrics = self.metrics.clone();
    }

    fn run(&self, config: &Config) -> Result<()> {
        let analyser = analyser(config, self.scorer)?;
        let registry = Metrics::new();
        let stage = AnalyserConfig {
            bus: config.bus(&self.brokers),
            group: self.group.clone(),
            input: self.input.clone(),
            output: self.output.clone(),
            deadletter: self.deadletter.clone(),
            partitions: self.partitions,
            batch: config.batch_size.max(1),
            linger: std::time::Duration::from_millis(200),
            max_text_bytes: config.max_text_bytes,
            max_envelope_bytes: config.max_envelope_bytes,
            queue: self.queue,
            metrics: registry.stage("analyse"),
        };
        tokio::runtime::Runtime::new()?.block_on(async {
            metrics::start(config.metrics.as_deref(), registry.clone()).await?;
            vigie_pipeline::run_analyser(&stage, &analyser, crate::shutdown::signal()).await
        })?;
        Ok(())
    }
}
