//! The names of Vigie's Kafka topics, in one place.
//!
//! ```text
//! ingest/replay --> RAW --> analyse workers --> SCORED --> indexer
//!                    \________________\____________\-----> DEADLETTER (what a stage refused)
//! access, retention and re-identification logs ----------> AUDIT_HEADS (their signed heads)
//! ```

/// Raw posts and deletions, as ingestors and `vigie replay --brokers` publish them.
pub const RAW: &str = "vigie.posts.raw";

/// Scored posts (and deletions passed on unscored), as analyse workers publish them.
pub const SCORED: &str = "vigie.posts.scored";

/// Messages a stage could not use, with the reason in their headers.
pub const DEADLETTER: &str = "vigie.deadletter";

/// The signed heads of the access, retention and re-identification logs, when brokers are
/// configured (a second place besides the heads file).
pub const AUDIT_HEADS: &str = "vigie.audit.heads";

/// The three topics of the pipeline: raw, scored, dead letters.
pub const PIPELINE: [&str; 3] = [RAW, SCORED, DEADLETTER];

/// Partitions of the pipeline's topics when a command creates them.
pub const DEFAULT_PARTITIONS: i32 = 3;
