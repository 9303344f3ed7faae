//! The [`Source`] trait: what every ingestor of a live public source implements, and the
//! sources, one module each ([`mastodon`], [`mastodon_stream`], [`rss`], [`reddit`],
//! [`jetstream`]).
//!
//! A source is polled with the last committed [`Cursor`] and answers with a [`Batch`]: the
//! items that come after that cursor, in the order they were published, and the cursor that
//! comes after them. The source keeps no resume state of its own: given the same committed
//! cursor it yields the same posts again (or newer ones), so the caller decides, by committing
//! or not, whether a batch counts as seen. That is what lets the [`driver`](crate::driver)
//! persist a cursor only after the sink accepted the batch.
//!
//! A source may keep transient state between polls (an open WebSocket, a rate limiter); when
//! it is polled with a cursor other than the one it last returned (the previous batch was not
//! committed), it starts again from the cursor it is given.

/// The `name`, `kind` and `poll_interval` of a [`Source`] implementation whose `self.config`
/// has `name` and `poll_interval` fields (the sources that fetch pages), `kind` being `$kind`.
macro_rules! polled_source {
    ($kind:expr) => {
        fn name(&self) -> &str {
            &self.config.name
        }

        fn kind(&self) -> &'static str {
            $kind
        }

        fn poll_interval(&self) -> std::time::Duration {
            self.config.poll_interval
        }
    };
}

pub mod jetstream;
pub mod mastodon;
pub mod mastodon_stream;
pub mod reddit;
pub mod rss;

use crate::coverage::Gap;
use crate::{IngestError, Pseudonymiser};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use vigie_record::{Envelope, Provenance, VigieId};

/// A source's resume position (defined in [`coverage`](crate::coverage)).
pub use crate::coverage::Cursor;

/// A post removed at its source (defined in `vigie-record`, shared by every stage).
pub use vigie_record::Tombstone;

/// One thing a source yields: a post, or the deletion of one.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A new (or updated) post.
    Post(Box<Envelope>),
    /// A post deleted at its source.
    Delete(Box<Tombstone>),
}

impl Item {
    /// The Vigie id of the post this item is about.
    pub fn id(&self) -> &VigieId {
        match self {
            Item::Post(e) => &e.post.id,
            Item::Delete(t) => &t.id,
        }
    }

    /// When the item happened at its source (publication or deletion).
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Item::Post(e) => e.post.created_at,
            Item::Delete(t) => t.deleted_at,
        }
    }
}

/// An item a source could not read, and why (logged and counted, never fatal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Where the item was: URL and position, or id.
    pub location: String,
    /// What is wrong with it, naming the field.
    pub reason: String,
}

/// What one poll of a source yields.
#[derive(Debug, Default)]
pub struct Batch {
    /// Posts and deletions after the committed cursor, oldest first.
    pub items: Vec<Item>,
    /// The cursor after these items; `None` leaves the committed cursor as it is.
    pub cursor: Option<Cursor>,
    /// Items that could not be read.
    pub skipped: Vec<Skipped>,
    /// Windows this poll could not see (rate-limit waits, pages it had to skip).
    pub gaps: Vec<Gap>,
    /// True when more items are available right now (the page was full): poll again at once.
    pub more: bool,
}

/// A live public source of posts.
#[async_trait::async_trait]
pub trait Source: Send {
    /// The source configuration's name (unique; names its cursor file).
    fn name(&self) -> &str;

    /// The kind of source: `mastodon`, `rss`, `reddit`, `jetstream`.
    fn kind(&self) -> &'static str;

    /// How long to wait between polls once caught up. By default no time at all: right for a
    /// source whose poll itself waits for items (a stream, up to its `batch_wait`); a source
    /// that fetches pages says how long to leave between them.
    fn poll_interval(&self) -> Duration {
        Duration::ZERO
    }

    /// The committed `cursor` decoded as this source's own cursor type `T`, or `T`'s default
    /// (a first poll) when there is none; the error names the source.
    fn resume<T: serde::de::DeserializeOwned + Default>(
        &self,
        cursor: Option<&Cursor>,
    ) -> Result<T, IngestError>
    where
        Self: Sized,
    {
        Cursor::decode_or_default(cursor, self.name())
    }

    /// Yields what follows `cursor` (`None`: the source has never been committed; start from
    /// the newest items).
    async fn poll(&mut self, cursor: Option<&Cursor>) -> Result<Batch, IngestError>;
}

/// How the items of one response were fetched: shared by their provenances.
#[derive(Debug, Clone)]
pub(crate) struct FetchInfo {
    /// The URL fetched, handles pseudonymised.
    pub url: String,
    /// The HTTP status, for web sources.
    pub status: Option<u16>,
    /// When the response arrived.
    pub fetched_at: DateTime<Utc>,
    /// The ingestor (source kind).
    pub ingestor: &'static str,
    /// The source configuration and the query that matched.
    pub matched: String,
}

impl FetchInfo {
    /// How the items of a response from `url`, arriving now, were fetched. Handles in `url` and
    /// `matched` are pseudonymised ([`Pseudonymiser::scrub_urls`]): a feed's URL may name a
    /// user (`https://mastodon.social/@alice.rss`), and provenance is shown to analysts.
    pub fn new(
        url: &str,
        status: Option<u16>,
        ingestor: &'static str,
        matched: &str,
        pseudonymiser: &Pseudonymiser,
    ) -> Self {
        FetchInfo {
            url: pseudonymiser.scrub_urls(url),
            status,
            fetched_at: Utc::now(),
            ingestor,
            matched: pseudonymiser.scrub_urls(matched),
        }
    }

    /// The provenance of an item whose bytes as fetched were `raw`.
    pub fn provenance(&self, raw: &[u8]) -> Provenance {
        Provenance {
            fetched_at: self.fetched_at,
            fetch_url: self.url.clone(),
            http_status: self.status,
            ingestor: vigie_record::Ingestor {
                name: self.ingestor.into(),
                version: crate::INGESTOR_VERSION.into(),
            },
            content_sha256: vigie_record::content_sha256(raw),
            matched: Some(self.matched.clone()),
        }
    }
}

/// The next message of a long-lived stream (a WebSocket, server-sent events) if one comes
/// before `deadline`: `Ok(None)` at the deadline, `Err(why)` when the stream ended or failed
/// (the caller then reconnects).
pub(crate) async fn next_before<T, E: std::fmt::Display>(
    stream: &mut (impl futures_util::Stream<Item = Result<T, E>> + Unpin),
    deadline: tokio::time::Instant,
) -> Result<Option<T>, String> {
    match tokio::time::timeout_at(deadline, futures_util::StreamExt::next(stream)).await {
        Err(_) => Ok(None),
        Ok(None) => Err("the server closed the stream".into()),
        Ok(Some(Err(e))) => Err(format!("stream failed: {e}")),
        Ok(Some(Ok(message))) => Ok(Some(message)),
    }
}
