//! The record types every Vigie stage shares.
//!
//! A public post travels through Vigie as a [`Post`] inside an [`Envelope`]. The envelope
//! carries the post's provenance (where, when and how it was fetched), then collects what each
//! later stage adds: the Kafka coordinates it was read from ([`KafkaCoords`]) and its scores with
//! their explanation ([`Scoring`]), and the places it is about ([`Place`], see [`geo`]).
//!
//! Guarantees:
//! - **Stable identity.** A post's [`VigieId`] is derived from its source and its native id
//!   alone, so the same post fetched twice, replayed or redelivered by Kafka has the same id, and
//!   downstream stages collapse duplicates on it.
//! - **Strict wire format.** Envelopes are JSON (serde). Decoding rejects unknown fields and
//!   missing required fields with an error that names the field; nothing is silently dropped or
//!   defaulted.
//! - **Pseudonymous authors.** [`Post::author`] holds a pseudonym, never a handle: ingestors
//!   replace authors before a post is wrapped.
//!
//! A post deleted at its source travels as a [`Tombstone`] (in a [`Deletion`]); a [`Record`] is
//! either a post or a deletion, as one message of a topic or one line of a capture. [`lang`]
//! names a post's language, as the ingestors set it and the experiments group by it.
//!
//! With the `kafka` feature, [`bus`] moves envelopes over Kafka topics, named in [`topics`]; with
//! the `broker` feature, [`broker`] starts a local Kafka-protocol broker (tansu) for tests and
//! benchmarks.

#[cfg(feature = "broker")]
pub mod broker;
#[cfg(feature = "kafka")]
pub mod bus;
mod envelope;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod geo;
mod id;
pub mod lang;
mod tombstone;
pub mod topics;

pub use envelope::{
    Contribution, Envelope, Ingestor, KafkaCoords, Post, Provenance, ScoreState, Scoring,
};
pub use geo::{GeoPoint, Near, Place, PlaceFound};
pub use id::{content_sha256, VigieId};
pub use tombstone::{Deletion, Record, Tombstone};

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not a valid envelope; the message names the field or position at fault.
    #[error("invalid envelope: {0}")]
    Invalid(#[from] serde_json::Error),
    /// The bytes start as a deletion (`{"tombstone": …}`) but are not a valid one.
    #[error("invalid tombstone: {0}")]
    Tombstone(serde_json::Error),
    /// The value is empty (a Kafka tombstone, null value, carries no deletion details).
    #[error(
        "empty value: a deletion is a JSON record {{\"tombstone\": …}} keyed by the Vigie id, \
         not a null value"
    )]
    Empty,
}
