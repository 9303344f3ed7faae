//! Vigie's stages: what moves a post from the raw topic to the index, and what each step
//! guarantees.
//!
//! ```text
//!  ingest / replay ──publish──▶ vigie.posts.raw ──▶ analyse workers ──▶ vigie.posts.scored ──▶ indexer ──▶ tantivy
//!                                      │            (consumer group)            │              (checkpoint in
//!                                      └────────── vigie.deadletter ◀───────────┘               each commit)
//! ```
//!
//! - [`analyser`]: the analyse worker. It reads raw posts as one member of a consumer group,
//!   scores them and publishes them scored, and commits its input offsets only once every
//!   output is acknowledged: delivery is **at-least-once**, and the stable Vigie id lets the
//!   indexer collapse a post scored twice. It holds a **bounded** number of messages whatever
//!   the backlog ([`AnalyserConfig::in_flight_bound`]).
//! - [`indexer`]: reads scored posts into the index. Its position is a [`Checkpoint`]
//!   (partition -> offset), stored **in the same tantivy commit** as the documents read up to
//!   it, so the index and its position never disagree; it never moves backwards on its own,
//!   and a position the topic no longer holds is recorded as a coverage [`Gap`].
//! - [`apply`]: the one step both the indexer and the embedded pipeline take to write records
//!   (upsert by id, deletions in order, deleted posts refused).
//! - [`deadletter`]: a message a stage cannot use is published to `vigie.deadletter` with its
//!   reason **before** the commit that moves past it: never lost, at worst published twice.
//! - [`embedded`]: the same analyse -> apply -> commit, in one process, without Kafka
//!   (`vigie run`, `vigie replay`).
//! - [`publish`]: posts and deletions to the raw topic, acknowledged before they count.
//! - [`metrics`]: what the stages do, in the Prometheus text format on `/metrics`.
//! - [`bench`](mod@bench): `vigie bench pipeline`, end-to-end posts/s through a real broker;
//!   [`detection`]: `vigie bench detection`, labelled crises replayed into incidents.
//!
//! The topic names are in [`topics`] (from `vigie_record`). Retention, which the indexer
//! enforces itself since it holds the index writer, is `vigie_logs::retention`. The test
//! doubles of the scorer (`NoopScorer`, `SlowScorer`) are next to the `Scorer` trait in
//! `vigie_analyse`.

pub mod analyser;
pub mod apply;
pub mod bench;
pub mod checkpoint;
mod collect;
pub mod deadletter;
pub mod detection;
pub mod embedded;
mod error;
pub mod indexer;
pub mod metrics;
pub mod publish;

pub use analyser::{run_analyser, AnalyserConfig};
pub use apply::{apply_batch, Applied};
pub use checkpoint::{Checkpoint, Gap, GapKind, Refused, MAX_GAPS};
pub use error::{Result, StageError};
pub use indexer::{run_indexer, stats, IndexerConfig, Stats};
pub use vigie_record::topics;
