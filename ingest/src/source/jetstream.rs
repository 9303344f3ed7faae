//! Bluesky: the Jetstream WebSocket stream of `app.bsky.feed.post` commits.
//!
//! ## Cursor
//! Every Jetstream event carries `time_us`, the time (microseconds since the epoch) Jetstream
//! saw it, and a client may reconnect with `?cursor=TIME_US` to replay the stream from that
//! time on, inclusive. The cursor is the `time_us` of the last event delivered, with the keys
//! of the events delivered *at* that microsecond (`did/rkey/operation`): on reconnection,
//! events before it, and those at it that were already delivered, are dropped, so a restart
//! neither loses nor repeats an event even when several share a microsecond. A source never
//! committed starts at the live tail.
//!
//! The WebSocket stays open between polls. A poll reads events until it has `batch_size` of
//! them or `batch_wait` passes; when it is handed a cursor other than the one it reached (the
//! last batch was not committed), it reconnects from the cursor it is given.
//!
//! ## Bounded reads
//! A message or frame larger than [`JetstreamConfig::max_message_bytes`] (1 MiB) ends the
//! connection with an error before it is buffered (a frame header announcing 1 GiB is refused
//! at once); the connection and handshake must complete within `connect_timeout` (10 s), and a
//! stream silent for `idle_timeout` (60 s: no event, no ping) is taken for dead. Each ends the
//! poll with an error naming the source and URL, and the next poll reconnects from the
//! committed cursor.
//!
//! ## Posts and deletions
//! - A `create` (or `update`) commit of `app.bsky.feed.post` becomes a post: its `text`, its
//!   first `langs` entry (else detected), its `createdAt` (else the event time).
//! - A `delete` commit becomes a [`Tombstone`].
//! - The author's DID is pseudonymised everywhere, including in the post's native id (its
//!   `at://` URI with the DID replaced: `at://ps:…/app.bsky.feed.post/RKEY`) and its
//!   `bsky.app` URL; mentions are resolved to DIDs with the post's facets.
//! - Other events (identity, account, other collections) only move the cursor.

use crate::source::{next_before, Batch, Cursor, FetchInfo, Item, Skipped, Source, Tombstone};
use crate::{lang, HandleContext, IngestError, Pseudonymiser};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vigie_record::{Envelope, Post, VigieId};

/// The source kind.
pub const KIND: &str = "jetstream";
/// The `source` of its posts.
pub const SOURCE: &str = "bluesky";
/// The collection of posts.
pub const POSTS: &str = "app.bsky.feed.post";

/// A `kind = "jetstream"` entry of the sources file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetstreamConfig {
    /// The configuration's name (unique; names its cursor file).
    pub name: String,
    /// The Jetstream `subscribe` endpoint.
    #[serde(default = "default_url")]
    pub url: String,
    /// Most events per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Longest wait to fill a batch.
    #[serde(default = "default_batch_wait", with = "humantime_serde")]
    pub batch_wait: Duration,
    /// The largest WebSocket message (and frame) accepted, in bytes; a larger one ends the
    /// connection with an error. Jetstream events are a few KiB.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// How long the connection and the WebSocket handshake may take.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long the stream may stay silent (no event, no ping) before it is taken for dead and
    /// reopened: the firehose of posts is never quiet for long.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl JetstreamConfig {
    /// A configuration named `name` reading `url`, every other setting at its default.
    pub fn new(name: &str, url: &str) -> Self {
        JetstreamConfig {
            name: name.to_string(),
            url: url.to_string(),
            batch_size: default_batch_size(),
            batch_wait: default_batch_wait(),
            max_message_bytes: default_max_message_bytes(),
            connect_timeout: default_connect_timeout(),
            idle_timeout: default_idle_timeout(),
        }
    }
}

fn default_url() -> String {
    "wss://jetstream2.us-east.bsky.network/subscribe".into()
}
fn default_batch_size() -> usize {
    200
}
fn default_batch_wait() -> Duration {
    Duration::from_secs(2)
}
fn default_max_message_bytes() -> usize {
    1024 * 1024
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

/// The resume position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct JetCursor {
    time_us: i64,
    /// Keys of the events delivered at `time_us`.
    #[serde(default)]
    at_time: Vec<String>,
}

impl JetCursor {
    fn advance(&mut self, time_us: i64, key: String) {
        if time_us > self.time_us {
            self.time_us = time_us;
            self.at_time.clear();
        }
        self.at_time.push(key);
    }

    fn already_delivered(&self, time_us: i64, key: &str) -> bool {
        time_us < self.time_us || (time_us == self.time_us && self.at_time.iter().any(|k| k == key))
    }
}

#[derive(Debug, Deserialize)]
struct Event {
    did: String,
    time_us: i64,
    kind: String,
    #[serde(default)]
    commit: Option<Commit>,
}

#[derive(Debug, Deserialize)]
struct Commit {
    operation: String,
    collection: String,
    rkey: String,
    #[serde(default)]
    record: Option<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostRecord {
    text: String,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    langs: Vec<String>,
    #[serde(default)]
    facets: Vec<Facet>,
}

#[derive(Debug, Deserialize)]
struct Facet {
    index: ByteSlice,
    features: Vec<Feature>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ByteSlice {
    byte_start: usize,
    byte_end: usize,
}

#[derive(Debug, Deserialize)]
struct Feature {
    #[serde(rename = "$type")]
    kind: String,
    #[serde(default)]
    did: Option<String>,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A Jetstream subscription to Bluesky posts.
pub struct Jetstream {
    config: JetstreamConfig,
    pseudonymiser: Pseudonymiser,
    /// The open connection, the cursor it has reached, its URL, and when it last received a
    /// message.
    connection: Option<(Socket, JetCursor, String, tokio::time::Instant)>,
}

impl std::fmt::Debug for Jetstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jetstream")
            .field("config", &self.config)
            .field("connected", &self.connection.is_some())
            .finish()
    }
}

impl Jetstream {
    /// A source reading `config`.
    pub fn new(config: JetstreamConfig, pseudonymiser: Pseudonymiser) -> Self {
        Jetstream {
            config,
            pseudonymiser,
            connection: None,
        }
    }

    fn error(&self, url: &str, message: impl std::fmt::Display) -> IngestError {
        IngestError::Stream {
            source_name: self.config.name.clone(),
            url: url.to_string(),
            message: message.to_string(),
        }
    }

    fn subscribe_url(&self, cursor: &JetCursor) -> String {
        let sep = if self.config.url.contains('?') {
            '&'
        } else {
            '?'
        };
        let mut url = format!("{}{sep}wantedCollections={POSTS}", self.config.url);
        if cursor.time_us > 0 {
            url.push_str(&format!("&cursor={}", cursor.time_us));
        }
        url
    }

    /// The item of one event, `None` for events that are not about posts.
    fn item(&self, event: &Event, raw: &str, fetch: &FetchInfo) -> Result<Option<Item>, String> {
        let Some(commit) = event.commit.as_ref().filter(|_| event.kind == "commit") else {
            return Ok(None);
        };
        if commit.collection != POSTS {
            return Ok(None);
        }
        let author = self.pseudonymiser.pseudonym(SOURCE, &event.did);
        let native_id = format!("at://{author}/{POSTS}/{}", commit.rkey);
        let id = VigieId::derive(SOURCE, &native_id);
        let event_time = DateTime::<Utc>::from_timestamp_micros(event.time_us)
            .ok_or_else(|| format!("time_us {} is out of range", event.time_us))?;
        match commit.operation.as_str() {
            "delete" => Ok(Some(Item::Delete(Box::new(Tombstone {
                id,
                source: SOURCE.into(),
                native_id,
                deleted_at: event_time,
                provenance: fetch.provenance(raw.as_bytes()),
            })))),
            "create" | "update" => {
                let record = commit
                    .record
                    .as_ref()
                    .ok_or("a create commit without a record")?;
                let record: PostRecord =
                    serde_json::from_str(record.get()).map_err(|e| format!("record: {e}"))?;
                let mut ctx = HandleContext::new(SOURCE);
                for facet in &record.facets {
                    for feature in &facet.features {
                        let is_mention = feature.kind == "app.bsky.richtext.facet#mention";
                        let span = record
                            .text
                            .get(facet.index.byte_start..facet.index.byte_end);
                        if let (true, Some(did), Some(span)) = (is_mention, &feature.did, span) {
                            ctx.known
                                .insert(span.trim_start_matches('@').to_lowercase(), did.clone());
                        }
                    }
                }
                let text = self.pseudonymiser.scrub(&record.text, &ctx);
                let created_at = record
                    .created_at
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map_or(event_time, |t| t.with_timezone(&Utc));
                Ok(Some(Item::Post(Box::new(Envelope {
                    post: Post {
                        id,
                        source: SOURCE.into(),
                        url: Some(format!(
                            "https://bsky.app/profile/{author}/post/{}",
                            commit.rkey
                        )),
                        native_id,
                        author,
                        lang: lang::resolve(record.langs.first().map(String::as_str), &text),
                        text,
                        created_at,
                        coordinates: None,
                    },
                    provenance: fetch.provenance(raw.as_bytes()),
                    kafka: None,
                    scoring: None,
                    places: None,
                }))))
            }
            other => Err(format!("unknown commit operation {other:?}")),
        }
    }
}

/// The key of an event within its microsecond.
fn event_key(event: &Event) -> String {
    match &event.commit {
        Some(c) => format!("{}/{}/{}/{}", event.did, c.collection, c.rkey, c.operation),
        None => format!("{}/{}", event.did, event.kind),
    }
}

#[async_trait::async_trait]
impl Source for Jetstream {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    async fn poll(&mut self, cursor: Option<&Cursor>) -> Result<Batch, IngestError> {
        let committed: JetCursor = self.resume(cursor)?;
        let reusable =
            matches!(&self.connection, Some((_, reached, _, _)) if *reached == committed);
        if !reusable {
            self.connection = None;
            let url = self.subscribe_url(&committed);
            let limits = WebSocketConfig::default()
                .max_message_size(Some(self.config.max_message_bytes))
                .max_frame_size(Some(self.config.max_message_bytes));
            let connect =
                tokio_tungstenite::connect_async_with_config(url.as_str(), Some(limits), false);
            let (socket, _) = tokio::time::timeout(self.config.connect_timeout, connect)
                .await
                .map_err(|_| {
                    self.error(
                        &url,
                        format!(
                            "cannot connect: timed out after {:?} (connect_timeout)",
                            self.config.connect_timeout
                        ),
                    )
                })?
                .map_err(|e| self.error(&url, format!("cannot connect: {e}")))?;
            tracing::info!(source = %self.config.name, url = %url, "connected");
            self.connection = Some((socket, committed.clone(), url, tokio::time::Instant::now()));
        }
        let Some((mut socket, mut position, url, mut heard_at)) = self.connection.take() else {
            return Err(self.error(&self.config.url, "no connection"));
        };
        let fetch = FetchInfo::new(
            &url,
            None,
            KIND,
            &format!("{}: jetstream {POSTS}", self.config.name),
            &self.pseudonymiser,
        );
        let mut batch = Batch::default();
        let deadline = tokio::time::Instant::now() + self.config.batch_wait;
        let mut closed: Option<String> = None;
        let mut events = 0usize;
        while events < self.config.batch_size {
            let silent_until = heard_at + self.config.idle_timeout;
            let message = match next_before(&mut socket, deadline.min(silent_until)).await {
                Ok(Some(message)) => message,
                Ok(None) if tokio::time::Instant::now() >= silent_until => {
                    closed = Some(format!(
                        "no message for {:?} (idle_timeout): the stream is taken for dead",
                        self.config.idle_timeout
                    ));
                    break;
                }
                Ok(None) => break,
                Err(why) => {
                    closed = Some(why);
                    break;
                }
            };
            heard_at = tokio::time::Instant::now();
            let text = match message {
                Message::Text(text) => text,
                Message::Close(frame) => {
                    closed = Some(format!("the server closed the stream ({frame:?})"));
                    break;
                }
                Message::Binary(_) => {
                    batch.skipped.push(Skipped {
                        location: url.clone(),
                        reason: "binary (compressed) frame; Vigie asks for JSON".into(),
                    });
                    continue;
                }
                _ => continue,
            };
            events += 1;
            let event: Event = match serde_json::from_str(text.as_str()) {
                Ok(e) => e,
                Err(e) => {
                    batch.skipped.push(Skipped {
                        location: url.clone(),
                        reason: format!("event: {e}"),
                    });
                    continue;
                }
            };
            let key = event_key(&event);
            if position.already_delivered(event.time_us, &key) {
                continue;
            }
            position.advance(event.time_us, key);
            match self.item(&event, text.as_str(), &fetch) {
                Ok(Some(item)) => batch.items.push(item),
                Ok(None) => {}
                Err(reason) => batch.skipped.push(Skipped {
                    location: format!("{url} (time_us {})", event.time_us),
                    reason,
                }),
            }
        }
        batch.more = events >= self.config.batch_size;
        if position != committed {
            batch.cursor = Some(Cursor::encode(&position));
        }
        match closed {
            None => self.connection = Some((socket, position, url, heard_at)),
            Some(why) if batch.items.is_empty() && batch.cursor.is_none() => {
                return Err(self.error(&url, why));
            }
            Some(why) => {
                tracing::warn!(source = %self.config.name, "{why}; will reconnect");
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_skips_what_was_delivered_at_its_microsecond() {
        let mut c = JetCursor::default();
        c.advance(10, "a".into());
        c.advance(10, "b".into());
        assert!(c.already_delivered(9, "z"));
        assert!(c.already_delivered(10, "a"));
        assert!(!c.already_delivered(10, "c"));
        c.advance(11, "c".into());
        assert_eq!(c.at_time, vec!["c".to_string()]);
        assert!(c.already_delivered(10, "c"));
    }

    const EVENT: &str = r#"{"did":"did:plc:eygmaihciaxprqvxpfvl6flk","time_us":1795766400000001,"kind":"commit","commit":{"rev":"3l3","operation":"create","collection":"app.bsky.feed.post","rkey":"3n3a","record":{"$type":"app.bsky.feed.post","createdAt":"2026-11-27T07:59:58.120Z","langs":["en"],"text":"Smoke, stay inside @bob.bsky.social","facets":[{"index":{"byteStart":19,"byteEnd":35},"features":[{"$type":"app.bsky.richtext.facet#mention","did":"did:plc:3ypijopijnzoc7kia4u7oncu"}]}]}}}"#;
    const DELETE: &str = r#"{"did":"did:plc:eygmaihciaxprqvxpfvl6flk","time_us":1795766400000002,"kind":"commit","commit":{"rev":"3l4","operation":"delete","collection":"app.bsky.feed.post","rkey":"3n3a"}}"#;

    fn source() -> Jetstream {
        Jetstream::new(
            JetstreamConfig::new("fuzz", "wss://jetstream.example/subscribe"),
            Pseudonymiser::new(b"k"),
        )
    }

    /// A frame decoded as `poll` does it: the event, its key, and its item.
    fn read(j: &Jetstream, text: &str) -> Option<Result<Option<Item>, String>> {
        let event: Event = serde_json::from_str(text).ok()?;
        let mut cursor = JetCursor::default();
        let key = event_key(&event);
        if !cursor.already_delivered(event.time_us, &key) {
            cursor.advance(event.time_us, key);
        }
        let fetch = FetchInfo::new(&j.config.url, None, KIND, "fuzz", &j.pseudonymiser);
        Some(j.item(&event, text, &fetch))
    }

    #[test]
    fn the_valid_samples_parse() {
        let j = source();
        assert!(matches!(read(&j, EVENT), Some(Ok(Some(Item::Post(_))))));
        assert!(matches!(read(&j, DELETE), Some(Ok(Some(Item::Delete(_))))));
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        #[test]
        fn fuzzed_jetstream_frames_never_panic_and_leak_no_did(
            frame in crate::fuzz::json_like(vec![EVENT.into(), DELETE.into()])
        ) {
            if let Some(Ok(Some(item))) = read(&source(), &frame) {
                let json = match &item {
                    Item::Post(e) => String::from_utf8(e.to_json()).unwrap(),
                    Item::Delete(t) => serde_json::to_string(t).unwrap(),
                };
                proptest::prop_assert!(!json.contains("eygmaihciaxprqvxpfvl6flk"), "{}", json);
            }
        }

        #[test]
        fn fuzzed_jetstream_frame_bytes_never_panic(
            frame in crate::fuzz::bytes_like(vec![EVENT.into(), DELETE.into()])
        ) {
            read(&source(), &String::from_utf8_lossy(&frame));
        }
    }
}
