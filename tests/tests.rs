//! The integration tests of the `vigie` binary, in one test binary (`cargo test --test
//! integration`; a name filters them, e.g. `cargo test --test integration reidentify`).
//!
//! Every module runs the real binary through [`util::Vigie`], the one command builder, and
//! starts brokers with [`util::broker`]. What they need besides the binary:
//! - nothing more: `access_log_crash`, `reidentify`, and
//!   `embedding_reference::a_missing_model_file_is_named`;
//! - the model and the gazetteer (`scripts/setup.sh`): `capture_replay`, `classifier`,
//!   `console` (and Debian's chromium, `--browser`), `end_to_end`, `situations`, the rest of
//!   `embedding_reference`, and `deletions::a_replayed_deletion_...`;
//! - a broker (`scripts/setup.sh --broker`): `kafka_roundtrip`, `kafka_index`,
//!   `deletions::the_kafka_indexer_enforces_retention_...`, `deletions::deletions_replayed_into_kafka_...`
//!   and the delivery tests of `kafka_pipeline` (their analyse workers run `--scorer noop`); with
//!   the model too, `kafka_run`, `kafka_pipeline::raw_posts_are_scored_...` and
//!   `kafka_pipeline::a_killed_analyse_worker_...` (the model's pace lets it be killed
//!   mid-stream).

// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod util;
// The console's browser helpers, shared with the API's browser test.
#[path = "../api/tests/common/browser.rs"]
mod browser;

mod access_log_crash;
mod capture_replay;
mod classifier;
mod console;
mod deletions;
mod embedding_reference;
mod end_to_end;
mod kafka_index;
mod kafka_pipeline;
mod kafka_roundtrip;
mod kafka_run;
mod reidentify;
mod situations;
