//! Mastodon: the public timeline, or a hashtag timeline, of any instance (REST).
//!
//! ## Paging and cursor
//! The cursor is the id of the newest status delivered (`min_id`). Each poll asks for
//! `GET /api/v1/timelines/public?min_id=ID&limit=N` (or `/timelines/tag/{hashtag}`): with
//! `min_id`, Mastodon returns the N statuses *immediately after* ID, so consecutive polls
//! cover the timeline with no hole even after a long outage, one page per batch (`since_id`
//! would return the newest N and silently leave a hole). The next cursor is the `min_id` of the
//! `Link: <…>; rel="prev"` header, as the API documents, else the newest id of the page. A full
//! page means more is waiting: the driver polls again at once. A source never committed starts
//! from the newest page (no backfill).
//!
//! ## Posts
//! - Boosts are ingested as the boosted status. Only `public` and `unlisted` statuses are kept.
//! - The HTML `content` becomes plain text ([`html_to_text`]); a content warning comes first.
//! - The language is the status's own `language`, else detected.
//! - The author (`acct`, made `user@instance`), mentions (resolved with the status's
//!   `mentions`), profile links, the status URL and its ActivityPub URI (the post's native id,
//!   the same on every instance) are pseudonymised.
//! - A status that does not decode is skipped with the reason; the cursor still moves past it.

use crate::http::{parse_link_header, HttpClient};
use crate::source::{Batch, Cursor, FetchInfo, Item, Skipped, Source};
use crate::text::html_to_text;
use crate::{lang, HandleContext, IngestError, Pseudonymiser};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::cmp::Ordering;
use std::time::Duration;
use vigie_record::{Envelope, Post, VigieId};

/// The source kind, and the `source` of its posts.
pub const KIND: &str = "mastodon";

/// A `kind = "mastodon"` entry of the sources file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MastodonConfig {
    /// The configuration's name (unique; names its cursor file).
    pub name: String,
    /// The instance's base URL, e.g. `https://mamot.fr`.
    pub instance: String,
    /// A hashtag (without `#`): read its timeline instead of the public one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashtag: Option<String>,
    /// Only statuses from the instance's own users.
    #[serde(default)]
    pub local: bool,
    /// Statuses per page (Mastodon serves up to 40; larger values are lowered to 40).
    #[serde(default = "default_limit")]
    pub limit: u32,
    /// Wait between polls once caught up.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
}

fn default_limit() -> u32 {
    40
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(60)
}

/// The resume position: the newest status id delivered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct MastodonCursor {
    min_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Status {
    pub(crate) id: String,
    created_at: DateTime<Utc>,
    uri: String,
    #[serde(default)]
    url: Option<String>,
    content: String,
    #[serde(default)]
    spoiler_text: String,
    #[serde(default)]
    language: Option<String>,
    visibility: String,
    account: Account,
    #[serde(default)]
    mentions: Vec<Mention>,
    #[serde(default)]
    pub(crate) reblog: Option<Box<Status>>,
}

#[derive(Debug, Deserialize)]
struct Account {
    acct: String,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Mention {
    username: String,
    acct: String,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IdOnly {
    id: String,
}

/// A Mastodon timeline source.
#[derive(Debug)]
pub struct Mastodon {
    config: MastodonConfig,
    host: String,
    http: HttpClient,
    pseudonymiser: Pseudonymiser,
}

/// Orders status ids (decimal snowflakes of any length) numerically.
pub(crate) fn cmp_ids(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Mastodon {
    /// A source reading `config` through `http`.
    pub fn new(
        mut config: MastodonConfig,
        http: HttpClient,
        pseudonymiser: Pseudonymiser,
    ) -> Result<Self, IngestError> {
        // Mastodon serves at most 40 a page; asking more would make every page look partial.
        config.limit = config.limit.clamp(1, 40);
        let url = url::Url::parse(&config.instance).map_err(|e| IngestError::Config {
            location: format!("source {}: instance", config.name),
            message: format!("{:?} is not a URL: {e}", config.instance),
        })?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        Ok(Mastodon {
            config,
            host,
            http,
            pseudonymiser,
        })
    }

    pub(crate) fn query(&self) -> String {
        let scope = if self.config.local { " (local)" } else { "" };
        match &self.config.hashtag {
            Some(tag) => format!(
                "{}: hashtag #{tag} on {}{scope}",
                self.config.name, self.host
            ),
            None => format!(
                "{}: public timeline of {}{scope}",
                self.config.name, self.host
            ),
        }
    }

    /// How statuses fetched from `url` now were fetched (handles pseudonymised).
    pub(crate) fn fetch_info(&self, url: &str, status: Option<u16>) -> FetchInfo {
        FetchInfo::new(url, status, KIND, &self.query(), &self.pseudonymiser)
    }

    fn url(&self, min_id: Option<&str>) -> String {
        let base = self.config.instance.trim_end_matches('/');
        let path = match &self.config.hashtag {
            Some(tag) => format!(
                "/api/v1/timelines/tag/{}",
                url::form_urlencoded::byte_serialize(tag.trim_start_matches('#').as_bytes())
                    .collect::<String>()
            ),
            None => "/api/v1/timelines/public".to_string(),
        };
        let mut url = format!("{base}{path}?limit={}", self.config.limit);
        if self.config.local {
            url.push_str("&local=true");
        }
        if let Some(id) = min_id {
            url.push_str("&min_id=");
            url.extend(url::form_urlencoded::byte_serialize(id.as_bytes()));
        }
        url
    }

    /// `user@domain` for an account's `acct`. Local accounts have no domain in `acct`: it is
    /// the host of their profile `url` (an instance may serve a domain other than its own
    /// host), else the instance's host.
    fn canonical(&self, acct: &str, profile_url: Option<&str>) -> String {
        let acct = acct.trim_start_matches('@');
        if acct.contains('@') {
            return acct.to_string();
        }
        let domain = profile_url
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_else(|| self.host.clone());
        format!("{acct}@{domain}")
    }

    pub(crate) fn post(
        &self,
        status: Status,
        raw: &str,
        fetch: &FetchInfo,
    ) -> Result<Envelope, String> {
        let status = match status.reblog {
            Some(inner) => *inner,
            None => status,
        };
        if !matches!(status.visibility.as_str(), "public" | "unlisted") {
            return Err(format!("visibility is {:?}, not public", status.visibility));
        }
        let author = self.canonical(&status.account.acct, status.account.url.as_deref());
        let mut ctx = HandleContext::new(KIND);
        ctx.default_domain = Some(self.host.clone());
        for m in &status.mentions {
            ctx.known.insert(
                m.username.to_lowercase(),
                self.canonical(&m.acct, m.url.as_deref()),
            );
        }
        let body = html_to_text(&status.content);
        let text = if status.spoiler_text.trim().is_empty() {
            body
        } else {
            format!("{}\n\n{body}", status.spoiler_text.trim())
        };
        let text = self.pseudonymiser.scrub(&text, &ctx);
        let native_id = self.pseudonymiser.scrub_urls(&status.uri);
        Ok(Envelope {
            post: Post {
                id: VigieId::derive(KIND, &native_id),
                source: KIND.into(),
                author: self.pseudonymiser.pseudonym(KIND, &author),
                lang: lang::resolve(status.language.as_deref(), &text),
                text,
                created_at: status.created_at,
                url: status.url.map(|u| self.pseudonymiser.scrub_urls(&u)),
                native_id,
                coordinates: None,
            },
            provenance: fetch.provenance(raw.as_bytes()),
            kafka: None,
            scoring: None,
            places: None,
        })
    }

    /// Fetches the page of statuses immediately after `min_id` (the newest page without it):
    /// the posts oldest first with their local status ids, and the `min_id` of the next page.
    pub(crate) async fn page(&self, min_id: Option<&str>) -> Result<Page, IngestError> {
        let url = self.url(min_id);
        let fetched = self.http.get(&self.config.name, &url, &[]).await?;
        let raw_page: Vec<Box<RawValue>> = fetched.json()?;
        let fetch = self.fetch_info(&url, Some(fetched.status));
        let mut page = Page {
            gaps: fetched.waits.clone(),
            full: raw_page.len() as u32 >= self.config.limit,
            ..Default::default()
        };
        let mut newest: Option<String> = None;
        for (n, raw) in raw_page.iter().enumerate() {
            if let Ok(IdOnly { id }) = serde_json::from_str(raw.get()) {
                if newest
                    .as_deref()
                    .is_none_or(|n| cmp_ids(&id, n) == Ordering::Greater)
                {
                    newest = Some(id);
                }
            }
            let result = serde_json::from_str::<Status>(raw.get())
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    let id = s.id.clone();
                    self.post(s, raw.get(), &fetch).map(|e| (id, e))
                });
            match result {
                Ok(post) => page.posts.push(post),
                Err(reason) => page.skipped.push(Skipped {
                    location: format!("{url} (status {} of {})", n + 1, raw_page.len()),
                    reason,
                }),
            }
        }
        page.posts.sort_by(|a, b| cmp_ids(&a.0, &b.0));
        let prev = fetched
            .header("link")
            .map(parse_link_header)
            .unwrap_or_default()
            .into_iter()
            .find(|(_, rel)| rel == "prev")
            .and_then(|(link, _)| {
                url::Url::parse(&link).ok().and_then(|u| {
                    u.query_pairs()
                        .find(|(k, _)| k == "min_id")
                        .map(|(_, v)| v.into_owned())
                })
            });
        page.next_min_id = prev.or(newest);
        Ok(page)
    }
}

/// One page of a timeline, decoded.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// The posts, oldest first, with their local status ids.
    pub posts: Vec<(String, Envelope)>,
    /// Statuses that could not be read.
    pub skipped: Vec<Skipped>,
    /// Rate-limit waits the fetch took.
    pub gaps: Vec<crate::coverage::Gap>,
    /// The `min_id` of the page after this one.
    pub next_min_id: Option<String>,
    /// The page was full: more statuses are waiting.
    pub full: bool,
}

#[async_trait::async_trait]
impl Source for Mastodon {
    polled_source!(KIND);

    async fn poll(&mut self, cursor: Option<&Cursor>) -> Result<Batch, IngestError> {
        let cursor: MastodonCursor = self.resume(cursor)?;
        let page = self.page(cursor.min_id.as_deref()).await?;
        let mut batch = Batch {
            items: page
                .posts
                .into_iter()
                .map(|(_, e)| Item::Post(Box::new(e)))
                .collect(),
            skipped: page.skipped,
            gaps: page.gaps,
            ..Default::default()
        };
        if let Some(min_id) = page.next_min_id {
            batch.cursor = Some(Cursor::encode(&MastodonCursor {
                min_id: Some(min_id),
            }));
        }
        batch.more = cursor.min_id.is_some() && page.full;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    const STATUS: &str = r#"{"id":"113","created_at":"2026-11-27T08:00:00.000Z","uri":"https://mamot.fr/users/alice/statuses/113","url":"https://mamot.fr/@alice/113","content":"<p>Feu <a href=\"https://piaille.fr/@bob\">@<span>bob</span></a> &amp; fumée</p>","spoiler_text":"","language":"fr","visibility":"public","account":{"acct":"alice","url":"https://mamot.fr/@alice"},"mentions":[{"username":"bob","acct":"bob@piaille.fr","url":"https://piaille.fr/@bob"}],"reblog":null}"#;

    fn source() -> Mastodon {
        Mastodon::new(
            MastodonConfig {
                name: "fuzz".into(),
                instance: "https://mamot.fr".into(),
                hashtag: None,
                local: false,
                limit: 40,
                poll_interval: Duration::from_secs(60),
            },
            HttpClient::new(crate::http::HttpConfig::default()).unwrap(),
            Pseudonymiser::new(b"k"),
        )
        .unwrap()
    }

    /// A timeline page decoded as `page` does it: each status a post or a reason.
    fn read(m: &Mastodon, page: &str) -> Vec<Result<Envelope, String>> {
        let Ok(raw) = serde_json::from_str::<Vec<Box<RawValue>>>(page) else {
            return Vec::new();
        };
        let fetch = m.fetch_info("https://mamot.fr/api/v1/timelines/public", Some(200));
        raw.iter()
            .map(|r| {
                let _ = serde_json::from_str::<IdOnly>(r.get());
                serde_json::from_str::<Status>(r.get())
                    .map_err(|e| e.to_string())
                    .and_then(|s| m.post(s, r.get(), &fetch))
            })
            .collect()
    }

    #[test]
    fn the_valid_sample_parses() {
        let got = read(&source(), &format!("[{STATUS}]"));
        assert!(matches!(got.as_slice(), [Ok(_)]), "{got:?}");
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn fuzzed_status_json_never_panics_and_leaks_no_handle(
            status in fuzz::json_like(vec![
                STATUS.into(),
                format!(r#"{{"id":"114","reblog":{STATUS},"visibility":"public","created_at":"2026-11-27T08:00:00Z","uri":"u","content":"","account":{{"acct":"carol"}}}}"#),
            ])
        ) {
            let m = source();
            for post in read(&m, &format!("[{status}]")).into_iter().flatten() {
                prop_assert!(post.post.author.starts_with("ps:"));
                let json = String::from_utf8(post.to_json()).unwrap();
                prop_assert!(!json.contains("/@alice") && !json.contains("/users/alice"), "{}", json);
            }
        }

        #[test]
        fn fuzzed_timeline_pages_never_panic(page in fuzz::bytes_like(vec![format!("[{STATUS},{STATUS}]")])) {
            read(&source(), &String::from_utf8_lossy(&page));
        }
    }
}
