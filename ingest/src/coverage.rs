//! What a source has covered: the [`Cursor`] it has reached, and the [`Gap`]s it could not see.
//!
//! Both are written by the sources (in a [`Batch`](crate::source::Batch)) and kept by the
//! [`state`](crate::state) files; they live here, on their own, so that neither of those
//! modules depends on the other's types.
//!
//! ## Gaps
//! A [`Gap`] is a time window in which a source may have missed posts: the source was down or
//! unreachable ([`GapKind::Outage`]), the server made us wait ([`GapKind::RateLimited`]), or
//! pages had to be skipped ([`GapKind::SkippedPages`]). An outage still going on has no end.

use crate::IngestError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A source's resume position (JSON), opaque to everyone but the source that made it: the last
/// status id, the ETag and the GUIDs seen, the Jetstream time in microseconds...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub serde_json::Value);

impl Cursor {
    /// Encodes a source's own cursor type.
    pub fn encode<T: Serialize>(value: &T) -> Self {
        // Cursor types are plain structs of strings and numbers: serialising cannot fail.
        Cursor(serde_json::to_value(value).unwrap_or(serde_json::Value::Null))
    }

    /// Decodes `cursor` as a source's own cursor type, or its default (a first poll) when there
    /// is none; the error names the source.
    pub fn decode_or_default<T: serde::de::DeserializeOwned + Default>(
        cursor: Option<&Cursor>,
        source: &str,
    ) -> Result<T, IngestError> {
        cursor.map_or_else(|| Ok(T::default()), |c| c.decode(source))
    }

    /// Decodes a source's own cursor type; the error names the source.
    pub fn decode<T: serde::de::DeserializeOwned>(&self, source: &str) -> Result<T, IngestError> {
        serde_json::from_value(self.0.clone()).map_err(|e| IngestError::Malformed {
            source_name: source.to_string(),
            location: "cursor".into(),
            message: format!("stored cursor is not this source's: {e}"),
        })
    }
}

/// What kind of blind spot a [`Gap`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// The source failed (unreachable, errors, malformed pages) from `from` to `to`.
    Outage,
    /// The server asked us to slow down (429/503 with `Retry-After`), and we waited.
    RateLimited,
    /// Pages between two points were not fetched (too far behind, or unreadable).
    SkippedPages,
}

/// A time window a source may not have seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// What happened.
    pub kind: GapKind,
    /// Start of the window.
    pub from: DateTime<Utc>,
    /// End of the window; `None` while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// Why, in words: the error, the URL, the pages skipped.
    pub detail: String,
}
