//! What the Kafka stages are doing, in the Prometheus text format on `GET /metrics`.
//!
//! Every series of a stage carries the label `stage` (`analyse` or `index`):
//!
//! | series | kind | meaning |
//! |---|---|---|
//! | `vigie_stage_messages_in_total` | counter | messages read from the input topic |
//! | `vigie_stage_messages_out_total` | counter | posts published scored (`analyse`) or written to the index (`index`) |
//! | `vigie_stage_dead_letters_total` | counter | messages published to the dead-letter topic |
//! | `vigie_stage_batch_seconds` | histogram | from a batch's last message read to its commit |
//! | `vigie_stage_busy_seconds_total` | counter | per `phase`: seconds spent working (analyse: `decode`, `score`, `produce`; index: `index`) |
//! | `vigie_stage_in_flight_messages` | gauge | messages read and not yet committed |
//! | `vigie_stage_in_flight_messages_peak` | gauge | the highest `in_flight` since start |
//! | `vigie_stage_in_flight_messages_bound` | gauge | the most `in_flight` can be, by configuration |
//! | `vigie_stage_consumer_lag_messages` | gauge | per `topic` and `partition`: high watermark minus position |
//! | `vigie_stage_partitions_assigned` | gauge | partitions of the input topic the stage reads now (a group member's share; 0: idle) |
//!
//! and, for the process, `vigie_peak_resident_memory_bytes` (Linux `VmHWM`) and the standard
//! `process_*` series (resident memory, CPU, open files). A message counted in `in` is, once
//! its batch is committed, counted in `out` or `dead_letters` (the analyse worker's `out` counts
//! posts: a message dead-lettered is not in it). Lag is measured every [`LAG_EVERY`] by asking
//! the broker for each assigned partition's high watermark (an analyse worker's partition appears
//! once it has read from it): it reaches 0 when the stage has read everything; what it read and
//! has not committed yet is `in_flight`.

use prometheus::{
    CounterVec, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigie_record::bus::{PartitionLag, Subscriber};

/// How often the stages measure their consumer lag.
pub const LAG_EVERY: Duration = Duration::from_secs(1);

/// The registry of one process: every stage it runs registers its series here.
pub struct Metrics {
    registry: Registry,
    messages_in: IntCounterVec,
    messages_out: IntCounterVec,
    dead_letters: IntCounterVec,
    offset_gaps: IntCounterVec,
    batch_seconds: HistogramVec,
    busy: CounterVec,
    in_flight: IntGaugeVec,
    in_flight_peak: IntGaugeVec,
    in_flight_bound: IntGaugeVec,
    lag: IntGaugeVec,
    assigned: IntGaugeVec,
    peak_rss: IntGauge,
}

/// Registers `c` in `r`; the names are fixed and distinct, so this cannot fail twice.
fn registered<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("distinct metric names");
    c
}

impl Metrics {
    /// A fresh registry with every series of the stages and of the process.
    pub fn new() -> Arc<Metrics> {
        let r = Registry::new();
        let stage = &["stage"];
        let counter = |name: &str, help: &str| {
            registered(
                &r,
                IntCounterVec::new(Opts::new(name, help), stage).expect("valid metric"),
            )
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            registered(
                &r,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let batch = HistogramOpts::new(
            "vigie_stage_batch_seconds",
            "Seconds from a batch's last message read to its commit.",
        )
        .buckets(vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]);
        #[cfg(target_os = "linux")]
        if let Err(e) = r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            tracing::warn!("no process metrics: {e}");
        }
        Arc::new(Metrics {
            messages_in: counter(
                "vigie_stage_messages_in_total",
                "Messages read from the stage's input topic.",
            ),
            messages_out: counter(
                "vigie_stage_messages_out_total",
                "Posts published scored (analyse) or written to the index (index).",
            ),
            dead_letters: counter(
                "vigie_stage_dead_letters_total",
                "Messages published to the dead-letter topic.",
            ),
            offset_gaps: counter(
                "vigie_stage_offset_gaps_total",
                "Jumps between the offset a stage expected and the one it read (coverage gaps).",
            ),
            batch_seconds: registered(&r, HistogramVec::new(batch, stage).expect("valid metric")),
            busy: registered(
                &r,
                CounterVec::new(
                    Opts::new(
                        "vigie_stage_busy_seconds_total",
                        "Seconds the stage spent working, per phase.",
                    ),
                    &["stage", "phase"],
                )
                .expect("valid metric"),
            ),
            in_flight: gauge(
                "vigie_stage_in_flight_messages",
                "Messages read and not yet committed.",
                stage,
            ),
            in_flight_peak: gauge(
                "vigie_stage_in_flight_messages_peak",
                "The highest number of messages in flight since start.",
                stage,
            ),
            in_flight_bound: gauge(
                "vigie_stage_in_flight_messages_bound",
                "The most messages the stage holds in flight, by configuration.",
                stage,
            ),
            lag: gauge(
                "vigie_stage_consumer_lag_messages",
                "High watermark minus the consumer's position, per partition.",
                &["stage", "topic", "partition"],
            ),
            assigned: gauge(
                "vigie_stage_partitions_assigned",
                "Partitions of the input topic assigned to the stage now.",
                stage,
            ),
            peak_rss: registered(
                &r,
                IntGauge::new(
                    "vigie_peak_resident_memory_bytes",
                    "Peak resident set size of the process (VmHWM).",
                )
                .expect("valid metric"),
            ),
            registry: r,
        })
    }

    /// The handles of stage `stage` (`analyse`, `index`).
    pub fn stage(self: &Arc<Self>, stage: &str) -> StageMetrics {
        StageMetrics {
            stage: stage.to_string(),
            messages_in: self.messages_in.with_label_values(&[stage]),
            messages_out: self.messages_out.with_label_values(&[stage]),
            dead_letters: self.dead_letters.with_label_values(&[stage]),
            offset_gaps: self.offset_gaps.with_label_values(&[stage]),
            batch_seconds: self.batch_seconds.with_label_values(&[stage]),
            busy: self.busy.clone(),
            in_flight: self.in_flight.with_label_values(&[stage]),
            in_flight_peak: self.in_flight_peak.with_label_values(&[stage]),
            in_flight_bound: self.in_flight_bound.with_label_values(&[stage]),
            lag: self.lag.clone(),
            lag_partitions: Arc::default(),
            assigned: self.assigned.with_label_values(&[stage]),
        }
    }

    /// Every series, in the Prometheus text format.
    pub fn render(&self) -> String {
        if let Some(peak) = peak_rss_bytes() {
            self.peak_rss.set(peak as i64);
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!("encoding the metrics: {e}");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The peak resident set size of this process (`VmHWM` of `/proc/self/status`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One stage's series: what the stage counts as it goes.
#[derive(Clone)]
pub struct StageMetrics {
    stage: String,
    /// Messages read from the input topic.
    pub messages_in: IntCounter,
    /// Posts published (analyse) or indexed (index).
    pub messages_out: IntCounter,
    /// Messages dead-lettered.
    pub dead_letters: IntCounter,
    /// Coverage gaps met (see `indexer`).
    offset_gaps: IntCounter,
    /// Seconds from a batch's last message read to its commit.
    pub batch_seconds: Histogram,
    busy: CounterVec,
    in_flight: IntGauge,
    in_flight_peak: IntGauge,
    in_flight_bound: IntGauge,
    lag: IntGaugeVec,
    lag_partitions: Arc<Mutex<BTreeSet<(String, String)>>>,
    assigned: IntGauge,
}

impl std::fmt::Debug for StageMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageMetrics")
            .field("stage", &self.stage)
            .field("messages_in", &self.messages_in.get())
            .field("in_flight", &self.in_flight.get())
            .finish_non_exhaustive()
    }
}

impl StageMetrics {
    /// Adds the time since `since` to the seconds spent in `phase` (e.g. `score`).
    pub fn busy(&self, phase: &str, since: Instant) {
        self.busy
            .with_label_values(&[&self.stage, phase])
            .inc_by(since.elapsed().as_secs_f64());
    }

    /// Seconds spent in `phase` so far.
    pub fn busy_seconds(&self, phase: &str) -> f64 {
        self.busy.with_label_values(&[&self.stage, phase]).get()
    }

    /// Records the configured bound of the in-flight messages.
    pub fn set_bound(&self, messages: usize) {
        self.in_flight_bound.set(messages as i64);
    }

    /// `n` messages were read: counted in, and in flight.
    pub fn received(&self, n: usize) {
        self.messages_in.inc_by(n as u64);
        self.in_flight.add(n as i64);
        let now = self.in_flight.get();
        if now > self.in_flight_peak.get() {
            self.in_flight_peak.set(now);
        }
    }

    /// One coverage gap was met (the offset read is not the one expected).
    pub fn offset_gap(&self) {
        self.offset_gaps.inc();
    }

    /// `n` messages were committed: no longer in flight.
    pub fn committed(&self, n: usize) {
        self.in_flight.sub(n as i64);
    }

    /// `n` messages were let go uncommitted (a rebalance, a stop): read again later.
    pub fn released(&self, n: usize) {
        self.in_flight.sub(n as i64);
    }

    /// Replaces the lag series of this stage with `lags` (partitions no longer assigned drop).
    pub fn set_lag(&self, lags: &[PartitionLag]) {
        let mut known = self
            .lag_partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now: BTreeSet<(String, String)> = lags
            .iter()
            .map(|l| (l.topic.clone(), l.partition.to_string()))
            .collect();
        for (topic, partition) in known.difference(&now) {
            let _ = self
                .lag
                .remove_label_values(&[&self.stage, topic, partition]);
        }
        for l in lags {
            self.lag
                .with_label_values(&[&self.stage, &l.topic, &l.partition.to_string()])
                .set(l.lag);
        }
        *known = now;
    }

    /// Measures `subscriber`'s lag and counts its partitions every [`LAG_EVERY`] until the
    /// returned guard is dropped.
    pub fn watch_lag(&self, subscriber: Arc<Subscriber>) -> LagWatch {
        let metrics = self.clone();
        LagWatch(tokio::spawn(async move {
            loop {
                let s = subscriber.clone();
                let measured = tokio::task::spawn_blocking(move || {
                    (s.assigned_partitions(), s.lag(Duration::from_secs(5)))
                });
                let Ok((assigned, lags)) = measured.await else {
                    return;
                };
                match assigned {
                    Ok(n) => metrics.assigned.set(n as i64),
                    Err(e) => tracing::debug!("counting the assigned partitions: {e}"),
                }
                match lags {
                    Ok(lags) => metrics.set_lag(&lags),
                    Err(e) => tracing::debug!("measuring the consumer lag: {e}"),
                }
                tokio::time::sleep(LAG_EVERY).await;
            }
        }))
    }
}

/// The task of [`StageMetrics::watch_lag`]; dropping it stops the measuring.
pub struct LagWatch(tokio::task::JoinHandle<()>);

impl Drop for LagWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `GET /metrics` (everything in `metrics`) on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::header::CONTENT_TYPE;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { ([(CONTENT_TYPE, prometheus::TEXT_FORMAT)], metrics.render()) }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves `metrics` on `addr`, when there is one, in a task of its own for as long as the
/// process runs; prints `metrics on http://ADDR/metrics` on stdout (for scripts and tests).
pub async fn start(addr: Option<&str>, metrics: Arc<Metrics>) -> crate::Result<()> {
    let Some(addr) = addr else { return Ok(()) };
    let io = |source| crate::StageError::Io {
        what: format!("cannot listen on {addr} for /metrics"),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(io)?;
    let local = listener.local_addr().map_err(io)?;
    println!("metrics on http://{local}/metrics");
    tracing::info!("serving /metrics on http://{local}/metrics");
    tokio::spawn(async move {
        if let Err(e) = serve(listener, metrics, std::future::pending()).await {
            tracing::warn!("the /metrics server stopped: {e}");
        }
    });
    Ok(())
}
