//! Ingestors: turn public posts into [`Envelope`]s with their provenance.
//!
//! ## Sources
//! Each kind of public source is one implementation of the [`Source`] trait, in one file of
//! [`source`]: [`mastodon`] (public and hashtag timelines, REST), [`mastodon_stream`] (the
//! same timelines live, with deletions), [`rss`] (RSS and Atom feeds), [`reddit`]
//! (`/r/{sub}/new` listings) and [`jetstream`] (Bluesky's firehose of posts); each is also
//! reachable at its old path (`vigie_ingest::mastodon`...). A source is polled for a
//! [`Batch`]: the posts and deletions ([`Item`]) that follow a [`Cursor`], and the cursor that
//! follows them. A source writes only what is its own (its name, kind and poll, and its pause
//! between polls when it fetches pages); the trait gives the rest: no pause for a stream
//! ([`Source::poll_interval`]), the committed cursor decoded ([`Source::resume`]).
//!
//! Files are read by [`replay`] (labelled JSONL), [`crisislex`] (CrisisLex CSV) and
//! [`capture`] (what a source yielded, written by `vigie capture`). They stay at the top
//! level, not in [`source`]: they are not [`Source`]s (no cursor, no driver: a file is read
//! once, whole), and the binary calls each by its own path.
//!
//! ## Layers
//! [`coverage`] (the [`Cursor`] and the [`Gap`](coverage::Gap)s) depends on nothing else
//! here; [`source`] and [`state`] both use it, and neither uses the other; [`driver`] joins
//! a source, its [`state`] and a sink; [`config`] builds the sources from the sources file.
//!
//! ## Cursors: nothing lost, nothing repeated
//! A source never remembers on its own where it is: it is handed the last *committed* cursor
//! and returns the cursor after the batch it yields. The [`driver`] commits that cursor (an
//! atomic file write under `<data_dir>/cursors/`, see [`state`]) only once the batch's sink has
//! accepted every item (written to a capture file, indexed, acknowledged by Kafka). A crash
//! before the commit makes the next run fetch the same batch again; a crash after it makes the
//! next run start after it. Each post's [`VigieId`](vigie_record::VigieId) is stable, so a
//! batch delivered twice by a crash between the sink and the commit collapses downstream.
//!
//! ## Politeness and robustness
//! Web sources share one [`http::HttpClient`]: a clear User-Agent, connect and read timeouts, a
//! cap on response size, a rate limit per host, `Retry-After` honoured on 429 and 503, and
//! exponential backoff with jitter on failures. Every failure names the source and the URL. A
//! malformed item is skipped with its reason, logged and counted; the items around it are
//! still delivered. A source that fails is retried by its own driver, and never stops others.
//!
//! ## Pseudonyms
//! Every ingestor replaces authors by a keyed pseudonym ([`Pseudonymiser`]) before a post is
//! wrapped, and also the handles inside the text and in URLs (mentions, profile links, the post's
//! URL and id, the fetch URL of its provenance: no handle survives in a URL), noting
//! each pseudonym's handle in the private [`identities`] file before the post is delivered. It
//! records how the post was fetched: where from, when, by which ingestor and version, which
//! source configuration and query matched, and the SHA-256 of the item's bytes as fetched.
//!
//! The key is 32 random bytes in `<data_dir>/keys/pseudonym.key`, private and made atomically
//! by [`key::load_or_create_key`], which refuses a short or exposed key file.
//!
//! ## Coverage
//! What a source could not see is recorded as time windows ([`coverage::Gap`]): outages,
//! rate-limit waits, skipped pages. `vigie sources status` prints them.
//!
//! [`Envelope`]: vigie_record::Envelope

pub mod capture;
pub mod config;
pub mod coverage;
pub mod crisislex;
pub mod driver;
#[cfg(test)]
mod fuzz;
pub mod http;
pub mod identities;
pub mod key;
// Languages moved to the record crate (the analyse stage detects them too); kept at this path.
pub use vigie_record::lang;
mod pseudonym;
pub mod replay;
pub mod source;
pub mod state;
pub mod text;

// The sources' modules at their old paths (`vigie_ingest::mastodon`...).
pub use source::{jetstream, mastodon, mastodon_stream, reddit, rss};

pub use coverage::Cursor;
pub use pseudonym::{HandleContext, Platform, Pseudonymiser};
pub use source::{Batch, Item, Skipped, Source, Tombstone};

/// The version recorded in the provenance of every post this crate ingests.
pub const INGESTOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why an item, a fetch or a source could not be ingested.
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
    /// An HTTP fetch failed; the error names the source and the URL.
    #[error(transparent)]
    Fetch(#[from] http::FetchError),
    /// A streaming connection (WebSocket) failed.
    #[error("{source_name}: {url}: {message}")]
    Stream {
        /// The source configuration's name.
        source_name: String,
        /// The stream's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The sources configuration is invalid.
    #[error("sources configuration {location}: {message}")]
    Config {
        /// The file (and key) at fault.
        location: String,
        /// What is wrong, and how to fix it.
        message: String,
    },
    /// The identity file could not be written: the posts are not delivered.
    #[error(transparent)]
    Identities(#[from] identities::IdentityError),
    /// The sink refused a batch: the cursor stays where it was.
    #[error("{source_name}: the sink refused a batch: {message}")]
    Sink {
        /// The source configuration's name.
        source_name: String,
        /// The sink's error.
        message: String,
    },
}

impl IngestError {
    /// How long the server asked us to wait before trying again, when it said so.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            IngestError::Fetch(e) => e.retry_after(),
            _ => None,
        }
    }
}
