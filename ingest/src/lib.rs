//! Ingestors: turn public posts into [`Envelope`]s with their provenance.
//!
//! Every ingestor replaces authors by a keyed pseudonym ([`Pseudonymiser`]) before a post is
//! wrapped, and records how the post was fetched: where from, when, by which ingestor and
//! version, and the SHA-256 of the item's bytes exactly as fetched.
//!
//! Guarantees: an input item that cannot be read yields an [`IngestError`] that names the
//! source and the position (file and line, or URL) and the field at fault; the items around
//! it are still delivered.
//!
//! [`Envelope`]: vigie_record::Envelope

mod pseudonym;
pub mod replay;

pub use pseudonym::Pseudonymiser;

/// The version recorded in the provenance of every post this crate ingests.
pub const INGESTOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why an item could not be ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The input could not be opened or read.
    #[error("{source_name}: cannot read {location}: {error}")]
    Io {
        /// The source (ingestor) name.
        source_name: String,
        /// The file or URL.
        location: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// One item is malformed; the message names the field or position.
    #[error("{source_name}: {location}: {message}")]
    Malformed {
        /// The source (ingestor) name.
        source_name: String,
        /// The file and line, or URL, of the item.
        location: String,
        /// What is wrong, naming the field.
        message: String,
    },
}
