//! Mastodon's streaming API (server-sent events): live statuses, and their deletions.
//!
//! Only the stream reports deletions, so this is the Mastodon source that yields
//! [`Tombstone`]s. It reads `GET /api/v1/streaming/public` (or `/public/local`,
//! `/hashtag?tag=…`, `/hashtag/local?tag=…`) as server-sent events (parsed by the
//! `eventsource-stream` crate) through the shared [`HttpClient`]: its User-Agent, connect
//! timeout, per-host rate limit and read timeout. Mastodon sends a `:thump` comment every few
//! seconds, so a silent but healthy stream never trips the read timeout; a dead one does.
//!
//! ## Bounded reads
//! Lines and events are bounded ([`MastodonStreamConfig::max_event_bytes`], 1 MiB) as the
//! bytes arrive, before they are buffered: a server that sends one endless line, or `data:`
//! lines without end, gets its connection closed with an error ([`ReadError::TooLong`]) and
//! is reconnected to like any dropped stream. A server that accepts the connection and then
//! sends nothing trips the connect or read timeout of the [`HttpClient`].
//!
//! ## Events
//! - `update` (a Status JSON) becomes a post exactly as the REST source makes it
//!   ([`mastodon`]: same pseudonyms, plain text, language, and the same Vigie
//!   id, derived from the status's ActivityPub URI). `status.update` (an edit) becomes the
//!   post again, with the same id. Provenance: the stream URL, the event's `data` hashed.
//! - `delete` carries only the *local* status id. The source remembers the local id and
//!   pseudonymised URI of the last `remember` statuses it delivered (in its cursor, about 100
//!   bytes each, written with every commit) and turns a delete of one of them into a
//!   [`Tombstone`] with that post's Vigie id, deleted when the event arrived (it carries no
//!   time). A delete of a status it does not remember (delivered before the window, or never
//!   seen) is **skipped and counted** with its reason: without the URI its Vigie id cannot be
//!   known, and a tombstone under another id would remove nothing. A boost is remembered under the boosted status's own local id, so
//!   un-boosting never deletes the original.
//! - An event that does not decode is skipped with its reason and counted; other event types
//!   (notifications, announcements…) are ignored.
//!
//! ## Resumption and gaps
//! A Mastodon stream has no server-side cursor: events sent while Vigie is not connected are
//! lost. The cursor keeps the newest status id delivered; when the source (re)connects with a
//! cursor, it records the window since the connection was lost (else since the last event
//! committed) as an outage [`Gap`], and, with `backfill = true` (the default), fetches the
//! statuses of that window from the REST timeline (`min_id` = newest id delivered, at most
//! [`MAX_BACKFILL_PAGES`] pages, after the stream is open so nothing falls between). Statuses
//! already delivered (and remembered) are not delivered twice. Deletions made during the window cannot be
//! recovered: the gap says so. A stream that closes is reopened at the next poll, after an
//! exponential backoff with jitter when it keeps closing without delivering anything. A source
//! never committed starts at the live tail, with no gap.
//!
//! ## Access token
//! Public streams need none on most instances. `token_env` names an environment variable
//! holding one, sent as `Authorization: Bearer`; it is never logged nor written anywhere.

use crate::coverage::{Gap, GapKind};
use crate::http::{backoff_delay, HttpClient};
use crate::source::mastodon::{cmp_ids, Mastodon, MastodonConfig, Status};
use crate::source::{
    mastodon, next_before, Batch, Cursor, FetchInfo, Item, Skipped, Source, Tombstone,
};
use crate::{IngestError, Pseudonymiser};
use chrono::{DateTime, Utc};
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::stream::{BoxStream, StreamExt};
use reqwest::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;
use vigie_record::VigieId;

/// The source kind (its posts' `source` stays `mastodon`, so ids match the REST source's).
pub const KIND: &str = "mastodon-stream";

/// The most REST pages fetched to fill one reconnection gap (40 statuses each).
pub const MAX_BACKFILL_PAGES: u32 = 10;

/// A `kind = "mastodon-stream"` entry of the sources file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MastodonStreamConfig {
    /// The configuration's name (unique; names its cursor file).
    pub name: String,
    /// The instance's base URL, e.g. `https://mamot.fr` (REST backfill, and the stream).
    pub instance: String,
    /// The streaming server's base URL when it is not the instance's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming_url: Option<String>,
    /// A hashtag (without `#`): stream its statuses instead of the public timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashtag: Option<String>,
    /// Only statuses from the instance's own users.
    #[serde(default)]
    pub local: bool,
    /// Fetch the statuses missed while disconnected from the REST timeline.
    #[serde(default = "default_backfill")]
    pub backfill: bool,
    /// Statuses remembered (local id -> URI) to turn their deletions into tombstones.
    #[serde(default = "default_remember")]
    pub remember: usize,
    /// Most events per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Longest wait to fill a batch.
    #[serde(default = "default_batch_wait", with = "humantime_serde")]
    pub batch_wait: Duration,
    /// The environment variable holding an access token, if the instance wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// The longest line, and the longest event (its lines but comments), accepted from the
    /// stream, in bytes: a longer one ends the connection with an error (then a reconnection).
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
}

fn default_backfill() -> bool {
    true
}
fn default_remember() -> usize {
    2000
}
fn default_batch_size() -> usize {
    200
}
fn default_batch_wait() -> Duration {
    Duration::from_secs(2)
}
fn default_max_event_bytes() -> usize {
    1024 * 1024
}

/// The resume position: the newest status delivered, and the statuses remembered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct StreamCursor {
    /// The newest local status id delivered (the REST `min_id` of a backfill).
    #[serde(default)]
    last_id: Option<String>,
    /// When the last event was received.
    #[serde(default)]
    last_at: Option<DateTime<Utc>>,
    /// `(local id, pseudonymised native id)` of the statuses delivered, oldest first.
    #[serde(default)]
    seen: VecDeque<(String, String)>,
}

impl StreamCursor {
    fn native_id(&self, local_id: &str) -> Option<&str> {
        self.seen
            .iter()
            .find(|(id, _)| id == local_id)
            .map(|(_, n)| n.as_str())
    }

    fn remember(&mut self, local_id: String, native_id: String, limit: usize) {
        if self.native_id(&local_id).is_none() {
            self.seen.push_back((local_id, native_id));
        }
        while self.seen.len() > limit {
            self.seen.pop_front();
        }
    }

    fn forget(&mut self, local_id: &str) -> Option<String> {
        let at = self.seen.iter().position(|(id, _)| id == local_id)?;
        self.seen.remove(at).map(|(_, n)| n)
    }

    fn advance(&mut self, id: &str) {
        if self
            .last_id
            .as_deref()
            .is_none_or(|last| cmp_ids(id, last) == std::cmp::Ordering::Greater)
        {
            self.last_id = Some(id.to_string());
        }
    }
}

type Events = BoxStream<'static, Result<Event, EventStreamError<ReadError>>>;

/// Why the bytes of a stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The connection failed (reset, read timeout...).
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// The server sent a line, or an event, longer than allowed.
    #[error("the server sent {what} longer than the {limit} bytes allowed (max_event_bytes)")]
    TooLong {
        /// `a line` or `an event`.
        what: &'static str,
        /// [`MastodonStreamConfig::max_event_bytes`].
        limit: usize,
    },
}

/// Bounds the lines and events of a server-sent event stream as its bytes arrive, before the
/// event parser buffers them: a server that sends one endless line (or endless `data:` lines
/// with no blank line) is cut off once past the limit, not buffered without end.
#[derive(Debug)]
struct EventLimit {
    max: usize,
    /// Bytes of the line being read.
    line: usize,
    /// Whether that line is a comment (`:thump`): comments are not part of an event.
    comment: bool,
    /// Bytes of the event being read (its lines but comments).
    event: usize,
    /// The previous byte was a `\r` (so a `\n` now ends no further line).
    after_cr: bool,
}

impl EventLimit {
    fn new(max: usize) -> Self {
        EventLimit {
            max,
            line: 0,
            comment: false,
            event: 0,
            after_cr: false,
        }
    }

    /// Checks the next bytes of the stream.
    fn check(&mut self, bytes: &[u8]) -> Result<(), ReadError> {
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    if self.line == 0 {
                        // A blank line ends the event.
                        self.event = 0;
                    } else if !self.comment {
                        self.event += self.line;
                    }
                    self.line = 0;
                    self.comment = false;
                }
                _ => {
                    self.after_cr = false;
                    if self.line == 0 && b == b':' {
                        self.comment = true;
                    }
                    self.line += 1;
                    if self.line > self.max {
                        return Err(ReadError::TooLong {
                            what: "a line",
                            limit: self.max,
                        });
                    }
                    if !self.comment && self.event + self.line > self.max {
                        return Err(ReadError::TooLong {
                            what: "an event",
                            limit: self.max,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// An open stream and the cursor it has reached.
struct Connection {
    events: Events,
    reached: StreamCursor,
}

/// A Mastodon streaming source (public, local or hashtag stream).
pub struct MastodonStream {
    config: MastodonStreamConfig,
    http: HttpClient,
    /// The REST source, for the post conversion and the backfill.
    rest: Mastodon,
    token: Option<String>,
    /// In a mutex only so the source is `Sync` (a stream is not); never locked.
    connection: Option<std::sync::Mutex<Connection>>,
    /// When and why the last connection was lost, in this process.
    dropped: Option<(DateTime<Utc>, String)>,
    /// Connections in a row that closed without delivering an event.
    empty_drops: u32,
}

impl std::fmt::Debug for MastodonStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MastodonStream")
            .field("config", &self.config)
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .field("connected", &self.connection.is_some())
            .finish()
    }
}

/// A JSON string payload unwrapped (`"123"` -> `123`); anything else as it is.
fn unquote(data: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = data.trim();
    if trimmed.starts_with('"') {
        if let Ok(inner) = serde_json::from_str::<String>(trimmed) {
            return inner.into();
        }
    }
    trimmed.into()
}

impl MastodonStream {
    /// A source reading `config` through `http`; reads the token from `token_env` now.
    pub fn new(
        config: MastodonStreamConfig,
        http: HttpClient,
        pseudonymiser: Pseudonymiser,
    ) -> Result<Self, IngestError> {
        let token = match &config.token_env {
            None => None,
            Some(var) => Some(std::env::var(var).map_err(|_| IngestError::Config {
                location: format!("source {}: token_env", config.name),
                message: format!("the environment variable {var} is not set (or not UTF-8)"),
            })?),
        };
        let rest = Mastodon::new(
            MastodonConfig {
                name: config.name.clone(),
                instance: config.instance.clone(),
                hashtag: config.hashtag.clone(),
                local: config.local,
                limit: 40,
                poll_interval: Duration::from_secs(60),
            },
            http.clone(),
            pseudonymiser,
        )?;
        Ok(MastodonStream {
            config,
            http,
            rest,
            token,
            connection: None,
            dropped: None,
            empty_drops: 0,
        })
    }

    /// The stream's URL.
    pub fn stream_url(&self) -> String {
        let base = self
            .config
            .streaming_url
            .as_deref()
            .unwrap_or(&self.config.instance)
            .trim_end_matches('/');
        let local = if self.config.local { "/local" } else { "" };
        match &self.config.hashtag {
            Some(tag) => format!(
                "{base}/api/v1/streaming/hashtag{local}?tag={}",
                url::form_urlencoded::byte_serialize(tag.trim_start_matches('#').as_bytes())
                    .collect::<String>()
            ),
            None => format!("{base}/api/v1/streaming/public{local}"),
        }
    }

    async fn connect(&self, url: &str) -> Result<Events, IngestError> {
        let mut headers: Vec<(HeaderName, HeaderValue)> =
            vec![(ACCEPT, HeaderValue::from_static("text/event-stream"))];
        if let Some(token) = &self.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                IngestError::Config {
                    location: format!("source {}: token_env", self.config.name),
                    message: "the token is not a valid header value".into(),
                }
            })?;
            value.set_sensitive(true);
            headers.push((AUTHORIZATION, value));
        }
        let response = self
            .http
            .open_stream(&self.config.name, url, &headers)
            .await?;
        let limit = EventLimit::new(self.config.max_event_bytes);
        let bytes = futures_util::stream::unfold(Some((response, limit)), |state| async move {
            let (mut r, mut limit) = state?;
            match r.chunk().await {
                Ok(Some(chunk)) => match limit.check(&chunk) {
                    Ok(()) => Some((Ok(chunk), Some((r, limit)))),
                    // Past the limit: the error, then the end (the connection is dropped).
                    Err(e) => Some((Err(e), None)),
                },
                Ok(None) => None,
                Err(e) => Some((Err(ReadError::Http(e)), None)),
            }
        });
        Ok(bytes.eventsource().boxed())
    }

    /// Fills the window missed since `committed` from the REST timeline, into `batch`.
    async fn backfill(
        &self,
        reached: &mut StreamCursor,
        batch: &mut Batch,
    ) -> Result<String, IngestError> {
        let mut min_id = reached.last_id.clone();
        let (mut pages, mut posts) = (0u32, 0usize);
        loop {
            let page = self.rest.page(min_id.as_deref()).await?;
            pages += 1;
            batch.gaps.extend(page.gaps);
            batch.skipped.extend(page.skipped);
            for (id, envelope) in page.posts {
                reached.advance(&id);
                if reached.native_id(&id).is_some() {
                    continue;
                }
                reached.remember(id, envelope.post.native_id.clone(), self.config.remember);
                batch.items.push(Item::Post(Box::new(envelope)));
                posts += 1;
            }
            if page.next_min_id.is_some() {
                min_id = page.next_min_id;
            }
            if !page.full {
                return Ok(format!(
                    "{posts} statuses of the window fetched from the REST timeline; \
                     deletions made in it are not known"
                ));
            }
            if pages >= MAX_BACKFILL_PAGES {
                return Ok(format!(
                    "{posts} statuses fetched from the REST timeline, then stopped after \
                     {pages} pages: later statuses of the window and its deletions are missing"
                ));
            }
        }
    }

    /// The item of one event; `Ok(None)` for events that are not about posts, or duplicates.
    fn item(
        &self,
        event: &Event,
        reached: &mut StreamCursor,
        fetch: &FetchInfo,
    ) -> Result<Option<Item>, String> {
        match event.event.as_str() {
            "update" | "status.update" => {
                let data = unquote(&event.data);
                let status: Status = serde_json::from_str(&data)
                    .map_err(|e| format!("{} event: status: {e}", event.event))?;
                // A boost is remembered under the boosted status's id: an un-boost (a
                // delete of the boost's id) must not delete the original.
                let key = status
                    .reblog
                    .as_ref()
                    .map_or(status.id.clone(), |r| r.id.clone());
                reached.advance(&status.id);
                if event.event == "update" && reached.native_id(&key).is_some() {
                    return Ok(None);
                }
                let envelope = self.rest.post(status, &event.data, fetch)?;
                reached.remember(key, envelope.post.native_id.clone(), self.config.remember);
                Ok(Some(Item::Post(Box::new(envelope))))
            }
            "delete" => {
                let id = unquote(&event.data);
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("delete event: {id:?} is not a status id"));
                }
                let native_id = reached.forget(&id).ok_or_else(|| {
                    format!(
                        "delete of status {id}, not among the {} statuses this source \
                         remembers: its Vigie id is unknown, no tombstone",
                        self.config.remember
                    )
                })?;
                Ok(Some(Item::Delete(Box::new(Tombstone {
                    id: VigieId::derive(mastodon::KIND, &native_id),
                    source: mastodon::KIND.into(),
                    native_id,
                    deleted_at: fetch.fetched_at,
                    provenance: fetch.provenance(event.data.as_bytes()),
                }))))
            }
            _ => Ok(None),
        }
    }
}

#[async_trait::async_trait]
impl Source for MastodonStream {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    async fn poll(&mut self, cursor: Option<&Cursor>) -> Result<Batch, IngestError> {
        let committed: StreamCursor = self.resume(cursor)?;
        let url = self.stream_url();
        let mut batch = Batch::default();
        let reusable = self
            .connection
            .as_mut()
            .is_some_and(|c| c.get_mut().is_ok_and(|c| c.reached == committed));
        if !reusable {
            self.connection = None;
            if self.empty_drops > 0 {
                let http = self.http.config();
                let wait = backoff_delay(self.empty_drops - 1, http.backoff_base, http.backoff_max);
                tokio::time::sleep(wait).await;
            }
            let events = self.connect(&url).await?;
            let connected_at = Utc::now();
            tracing::info!(source = %self.config.name, url = %url, "stream connected");
            let mut reached = committed.clone();
            if committed.last_id.is_some() {
                let (from, why) = match self.dropped.take() {
                    Some((at, why)) => (at, why),
                    None => (
                        committed.last_at.unwrap_or(connected_at),
                        "not running".to_string(),
                    ),
                };
                let mut detail = format!(
                    "stream {url} not connected ({why}): Mastodon streams cannot resume, \
                     events of this window were not received"
                );
                if self.config.backfill {
                    let filled = self.backfill(&mut reached, &mut batch).await?;
                    detail.push_str("; ");
                    detail.push_str(&filled);
                }
                batch.gaps.push(Gap {
                    kind: GapKind::Outage,
                    from,
                    to: Some(connected_at),
                    detail,
                });
            }
            self.dropped = None;
            self.connection = Some(std::sync::Mutex::new(Connection { events, reached }));
        }
        let Some(Connection {
            mut events,
            mut reached,
        }) = self.connection.take().and_then(|c| c.into_inner().ok())
        else {
            return Ok(batch);
        };
        let deadline = tokio::time::Instant::now() + self.config.batch_wait;
        let mut closed: Option<String> = None;
        let mut count = 0usize;
        while count < self.config.batch_size {
            let event = match next_before(&mut events, deadline).await {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(why) => {
                    closed = Some(why);
                    break;
                }
            };
            count += 1;
            self.empty_drops = 0;
            let mut fetch = self.rest.fetch_info(&url, Some(200));
            fetch.ingestor = KIND;
            reached.last_at = Some(fetch.fetched_at);
            match self.item(&event, &mut reached, &fetch) {
                Ok(Some(item)) => batch.items.push(item),
                Ok(None) => {}
                Err(reason) => batch.skipped.push(Skipped {
                    location: format!("{url} ({} event)", event.event),
                    reason,
                }),
            }
        }
        batch.more = count >= self.config.batch_size;
        if reached != committed {
            batch.cursor = Some(Cursor::encode(&reached));
        }
        match closed {
            None => self.connection = Some(std::sync::Mutex::new(Connection { events, reached })),
            Some(why) => {
                tracing::warn!(source = %self.config.name, url = %url, "{why}; will reconnect");
                self.dropped = Some((Utc::now(), why));
                if count == 0 {
                    self.empty_drops = self.empty_drops.saturating_add(1);
                }
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remembered_statuses_are_bounded_and_forgotten_once_deleted() {
        let mut c = StreamCursor::default();
        for n in 1..=5 {
            c.remember(n.to_string(), format!("uri{n}"), 3);
        }
        assert_eq!(c.seen.len(), 3);
        assert_eq!(c.native_id("2"), None);
        assert_eq!(c.forget("4").as_deref(), Some("uri4"));
        assert_eq!(c.native_id("4"), None);
        c.advance("99");
        c.advance("100");
        c.advance("98");
        assert_eq!(c.last_id.as_deref(), Some("100"));
        assert_eq!(unquote("\"123\""), "123");
        assert_eq!(unquote(" 123\n"), "123");
    }

    #[test]
    fn an_endless_line_or_event_is_cut_off_but_heartbeats_and_crlf_are_not() {
        let mut limit = EventLimit::new(16);
        // Comments never count toward an event, however many.
        for _ in 0..100 {
            limit.check(b":thump\n").unwrap();
        }
        limit.check(b"event: x\r\ndata: 1\r\n\r\n").unwrap();
        limit.check(b"event: x\r\ndata: 1\r\n\r\n").unwrap();
        let mut limit = EventLimit::new(16);
        limit.check(b"data: 12\r\n\r\ndata: 12\n\n").unwrap();
        assert!(matches!(
            limit.check(&[b'x'; 17]),
            Err(ReadError::TooLong { what: "a line", .. })
        ));
        let mut limit = EventLimit::new(16);
        limit.check(b"data: 1234\n").unwrap();
        assert!(matches!(
            limit.check(b"data: 1234\n"),
            Err(ReadError::TooLong {
                what: "an event",
                ..
            })
        ));
    }
}
