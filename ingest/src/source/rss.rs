//! RSS and Atom feeds (feed-rs): news and public-safety feeds.
//!
//! ## Conditional GET and cursor
//! A feed is a window of its latest items, so the cursor holds what it takes to ask "anything
//! new?" cheaply and to know which items are new: the `ETag` and `Last-Modified` of the last
//! accepted response, sent back as `If-None-Match` and `If-Modified-Since` (a `304 Not
//! Modified` yields an empty batch), and the ids (GUIDs) of the items already delivered, the
//! most recent [`MAX_SEEN`] kept. A source never committed delivers every item of the feed.
//!
//! ## Posts
//! - The native id is the item's GUID; the Vigie id is made of the feed's URL and the GUID
//!   ([`post_id`]), since GUIDs are only unique within a feed: two feeds whose items share a
//!   GUID yield two posts.
//! - The feed's URL in the provenance (`fetch_url`, `matched`) is pseudonymised like any URL:
//!   a feed may be a user's (`https://mastodon.social/@alice.rss`).
//! - The text is the item's title, ` — `, then its summary (or content), HTML made plain.
//! - `created_at` is the item's publication date, else its update date, else the fetch time.
//! - The author is the item's author, else the feed's title, pseudonymised like any author.
//! - The language is the item's, else the feed's, else detected.
//! - An item with neither title nor summary is skipped with the reason.
//! - feed-rs does not keep each item's bytes, so the content hash is that of the whole feed
//!   document as fetched (which contains the item).

use crate::http::{FetchError, FetchErrorKind, HttpClient};
use crate::source::{Batch, Cursor, FetchInfo, Item, Skipped, Source};
use crate::text::html_to_text;
use crate::{lang, HandleContext, IngestError, Pseudonymiser};
use reqwest::header::{HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use vigie_record::{Envelope, Post, VigieId};

/// The source kind, and the `source` of its posts.
pub const KIND: &str = "rss";

/// How many delivered item ids a cursor remembers.
pub const MAX_SEEN: usize = 2000;

/// A `kind = "rss"` entry of the sources file (RSS 0.9x, 1.0, 2.0, Atom and JSON Feed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// The configuration's name (unique; names its cursor file).
    pub name: String,
    /// The feed's URL.
    pub url: String,
    /// Wait between polls.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct FeedCursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    #[serde(default)]
    seen: Vec<String>,
}

/// An RSS or Atom feed.
#[derive(Debug)]
pub struct Feed {
    config: FeedConfig,
    http: HttpClient,
    pseudonymiser: Pseudonymiser,
}

impl Feed {
    /// A source reading `config` through `http`.
    pub fn new(config: FeedConfig, http: HttpClient, pseudonymiser: Pseudonymiser) -> Self {
        Feed {
            config,
            http,
            pseudonymiser,
        }
    }

    /// The feed document `body` (RSS, Atom or JSON Feed), its links resolved against the feed's
    /// URL.
    fn parse(&self, body: &[u8]) -> Result<feed_rs::model::Feed, feed_rs::parser::ParseFeedError> {
        feed_rs::parser::Builder::new()
            .base_uri(Some(&self.config.url))
            .build()
            .parse(body)
    }

    fn post(
        &self,
        entry: &feed_rs::model::Entry,
        feed: &feed_rs::model::Feed,
        fetch: &FetchInfo,
        raw: &[u8],
    ) -> Result<Envelope, String> {
        let title = entry
            .title
            .as_ref()
            .map(|t| html_to_text(&t.content))
            .unwrap_or_default();
        let summary = entry
            .summary
            .as_ref()
            .map(|s| html_to_text(&s.content))
            .filter(|s| !s.is_empty())
            .or_else(|| {
                entry
                    .content
                    .as_ref()
                    .and_then(|c| c.body.as_deref())
                    .map(html_to_text)
            })
            .unwrap_or_default();
        let text = match (title.is_empty(), summary.is_empty()) {
            (true, true) => return Err("item has neither a title nor a description".into()),
            (false, true) => title,
            (true, false) => summary,
            (false, false) => format!("{title} — {summary}"),
        };
        let text = self.pseudonymiser.scrub(&text, &HandleContext::new(KIND));
        let author = entry
            .authors
            .iter()
            .find_map(|p| p.name.clone().filter(|n| !n.trim().is_empty()))
            .or_else(|| feed.title.as_ref().map(|t| t.content.clone()))
            .unwrap_or_else(|| self.config.url.clone());
        let native_id = self.pseudonymiser.scrub_urls(&entry.id);
        let url = entry
            .links
            .iter()
            .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
            .map(|l| self.pseudonymiser.scrub_urls(&l.href));
        let given = entry.language.as_deref().or(feed.language.as_deref());
        Ok(Envelope {
            post: Post {
                id: post_id(&fetch.url, &native_id),
                source: KIND.into(),
                native_id,
                author: self.pseudonymiser.pseudonym(KIND, &author),
                lang: lang::resolve(given, &text),
                text,
                created_at: entry
                    .published
                    .or(entry.updated)
                    .unwrap_or(fetch.fetched_at),
                url,
                coordinates: None,
            },
            provenance: fetch.provenance(raw),
            kafka: None,
            scoring: None,
            places: None,
        })
    }
}

/// The Vigie id of the item `native_id` (its GUID) of the feed at `feed_url`: GUIDs are only
/// unique within their feed (`1`, `item-42`), so the feed's URL is part of the id.
pub fn post_id(feed_url: &str, native_id: &str) -> VigieId {
    // A URL has no spaces: no two (feed, GUID) pairs give the same string.
    VigieId::derive(KIND, &format!("{feed_url} {native_id}"))
}

#[async_trait::async_trait]
impl Source for Feed {
    polled_source!(KIND);

    async fn poll(&mut self, cursor: Option<&Cursor>) -> Result<Batch, IngestError> {
        let cursor: FeedCursor = self.resume(cursor)?;
        let mut headers = Vec::new();
        if let Some(v) = cursor
            .etag
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.push((IF_NONE_MATCH, v));
        }
        if let Some(v) = cursor
            .last_modified
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.push((IF_MODIFIED_SINCE, v));
        }
        let fetched = self
            .http
            .get(&self.config.name, &self.config.url, &headers)
            .await?;
        let mut batch = Batch {
            gaps: fetched.waits.clone(),
            ..Default::default()
        };
        if fetched.status == 304 {
            return Ok(batch);
        }
        let feed = self.parse(&fetched.body).map_err(|e| {
            let content_type = fetched.header("content-type").unwrap_or("no Content-Type");
            FetchError::new(
                &self.config.name,
                &self.config.url,
                FetchErrorKind::BadFeed(format!("{e} (Content-Type {content_type})")),
            )
        })?;
        let fetch = FetchInfo::new(
            &self.config.url,
            Some(fetched.status),
            KIND,
            &format!("{}: feed {}", self.config.name, self.config.url),
            &self.pseudonymiser,
        );
        let mut seen = cursor.seen.clone();
        let mut posts = Vec::new();
        for (n, entry) in feed.entries.iter().enumerate() {
            if cursor.seen.contains(&entry.id) {
                continue;
            }
            seen.push(entry.id.clone());
            match self.post(entry, &feed, &fetch, &fetched.body) {
                Ok(e) => posts.push(e),
                Err(reason) => batch.skipped.push(Skipped {
                    location: format!(
                        "{} (item {} of {}, id {:?})",
                        self.config.url,
                        n + 1,
                        feed.entries.len(),
                        entry.id
                    ),
                    reason,
                }),
            }
        }
        posts.sort_by(|a, b| (a.post.created_at, &a.post.id).cmp(&(b.post.created_at, &b.post.id)));
        batch.items = posts.into_iter().map(|e| Item::Post(Box::new(e))).collect();
        if seen.len() > MAX_SEEN {
            let extra = seen.len() - MAX_SEEN;
            seen.drain(..extra);
        }
        batch.cursor = Some(Cursor::encode(&FeedCursor {
            etag: fetched.header("etag").map(str::to_string),
            last_modified: fetched.header("last-modified").map(str::to_string),
            seen,
        }));
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Préfecture</title><language>fr</language>
<item><title>Incendie</title><link>https://mastodon.social/@alice/1</link><description><![CDATA[<p>Suivez @bob</p>]]></description>
<pubDate>Fri, 27 Nov 2026 09:05:00 +0100</pubDate><guid>urn:1</guid><author>x@y.fr (Alice)</author></item></channel></rss>"#;
    const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Fire</title>
<id>urn:f</id><updated>2026-11-27T10:00:00Z</updated><entry><title type="html">Smoke &lt;b&gt;north&lt;/b&gt;</title>
<link href="/plume"/><id>tag:f,2026:/plume</id><published>2026-11-27T09:40:00Z</published><author><name>J</name></author>
<summary type="html">&lt;p&gt;Keep windows closed&lt;/p&gt;</summary></entry></feed>"#;
    const JSON_FEED: &str = r#"{"version":"https://jsonfeed.org/version/1.1","title":"Alerts","items":[{"id":"1","content_html":"<p>Flood</p>","url":"https://x.org/1","date_published":"2026-11-27T10:00:00Z","authors":[{"name":"@carol"}]}]}"#;

    fn feed() -> Feed {
        Feed::new(
            FeedConfig {
                name: "fuzz".into(),
                url: "https://mastodon.social/@alice.rss".into(),
                poll_interval: Duration::from_secs(60),
            },
            HttpClient::new(crate::http::HttpConfig::default()).unwrap(),
            Pseudonymiser::new(b"k"),
        )
    }

    /// Every entry of whatever parses becomes a post or a skipped item; nothing panics.
    fn read(feed: &Feed, body: &[u8]) -> Vec<Result<Envelope, String>> {
        let Ok(parsed) = feed.parse(body) else {
            return Vec::new();
        };
        let fetch = FetchInfo::new(
            &feed.config.url,
            Some(200),
            KIND,
            "fuzz",
            &feed.pseudonymiser,
        );
        parsed
            .entries
            .iter()
            .map(|e| feed.post(e, &parsed, &fetch, body))
            .collect()
    }

    #[test]
    fn the_valid_samples_parse() {
        let feed = feed();
        for sample in [RSS, ATOM, JSON_FEED] {
            let posts = read(&feed, sample.as_bytes());
            assert_eq!(posts.len(), 1, "{sample}");
            assert!(posts[0].is_ok(), "{posts:?}");
        }
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn fuzzed_feeds_never_panic_and_leak_no_feed_handle(
            body in fuzz::bytes_like(vec![RSS.into(), ATOM.into(), JSON_FEED.into()])
        ) {
            let feed = feed();
            for post in read(&feed, &body).into_iter().flatten() {
                prop_assert!(post.post.author.starts_with("ps:"));
                prop_assert!(!post.provenance.fetch_url.contains("alice"));
            }
        }
    }
}
