//! Reddit: the newest posts of a subreddit, `/r/{sub}/new.json`.
//!
//! ## Paging and cursor
//! The cursor is the fullname (`t3_…`) of the newest post delivered. A listing is sorted
//! newest first; `before=FULLNAME` returns the page of posts *immediately newer* than
//! FULLNAME, so each poll asks for `new.json?before=CURSOR&limit=N` and moves forward one
//! adjacent page at a time (a full page: poll again at once). A source never committed
//! starts from the newest page.
//!
//! Reddit answers `before=` with an empty page when the anchor post was deleted. So when that
//! page is empty, the newest page is fetched too: if it holds posts newer than the cursor
//! (compared by their base-36 ids), the anchor is gone and the source walks back with
//! `after=` until it reaches the cursor, at most `max_pages` pages; posts beyond are recorded
//! as skipped pages (a coverage gap).
//!
//! ## Posts and deletions
//! The text is the title, a blank line, then the self text (Markdown, as written). Authors,
//! `u/` mentions and profile links are pseudonymised; the language is detected. A listed post
//! that was removed or deleted (`removed_by_category`, or a `[removed]`/`[deleted]` body)
//! yields a [`Tombstone`].

use crate::coverage::{Gap, GapKind};
use crate::http::HttpClient;
use crate::source::{Batch, Cursor, FetchInfo, Item, Skipped, Source, Tombstone};
use crate::{lang, HandleContext, IngestError, Pseudonymiser};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::time::Duration;
use vigie_record::{Envelope, Post, VigieId};

/// The source kind, and the `source` of its posts.
pub const KIND: &str = "reddit";

/// A `kind = "reddit"` entry of the sources file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedditConfig {
    /// The configuration's name (unique; names its cursor file).
    pub name: String,
    /// The subreddit, without `r/`.
    pub subreddit: String,
    /// Where the API is (tests point it elsewhere).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Posts per page (Reddit serves up to 100; larger values are lowered to 100).
    #[serde(default = "default_limit")]
    pub limit: u32,
    /// Most pages walked back when the cursor's post is gone.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// Wait between polls once caught up.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
}

fn default_base_url() -> String {
    "https://www.reddit.com".into()
}
fn default_limit() -> u32 {
    100
}
fn default_max_pages() -> u32 {
    10
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(120)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct RedditCursor {
    newest: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Listing {
    data: ListingData,
}

#[derive(Debug, Deserialize)]
struct ListingData {
    #[serde(default)]
    after: Option<String>,
    children: Vec<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
struct Child {
    kind: String,
    data: Link,
}

#[derive(Debug, Deserialize)]
struct Link {
    name: String,
    author: String,
    title: String,
    #[serde(default)]
    selftext: String,
    created_utc: f64,
    permalink: String,
    #[serde(default)]
    removed_by_category: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NameOnly {
    data: NameData,
}

#[derive(Debug, Deserialize)]
struct NameData {
    name: String,
}

/// The numeric value of a fullname's base-36 id (`t3_1p4k2nl`), for ordering.
fn id_value(fullname: &str) -> Option<u64> {
    let id = fullname.split_once('_').map_or(fullname, |(_, id)| id);
    u64::from_str_radix(id, 36).ok()
}

/// One listing page, read.
struct Page {
    url: String,
    status: u16,
    after: Option<String>,
    /// (fullname, raw child) in listing order (newest first).
    children: Vec<(Option<String>, Box<RawValue>)>,
    waits: Vec<Gap>,
}

/// A subreddit's `/new` listing.
#[derive(Debug)]
pub struct Reddit {
    config: RedditConfig,
    http: HttpClient,
    pseudonymiser: Pseudonymiser,
}

impl Reddit {
    /// A source reading `config` through `http`.
    pub fn new(mut config: RedditConfig, http: HttpClient, pseudonymiser: Pseudonymiser) -> Self {
        // Reddit serves at most 100 a page; asking more would make every page look partial.
        config.limit = config.limit.clamp(1, 100);
        Reddit {
            config,
            http,
            pseudonymiser,
        }
    }

    async fn page(&self, param: Option<(&str, &str)>) -> Result<Page, IngestError> {
        let mut url = format!(
            "{}/r/{}/new.json?limit={}&raw_json=1",
            self.config.base_url.trim_end_matches('/'),
            self.config.subreddit,
            self.config.limit
        );
        if let Some((key, value)) = param {
            url.push_str(&format!("&{key}={value}"));
        }
        let fetched = self.http.get(&self.config.name, &url, &[]).await?;
        let listing: Listing = fetched.json()?;
        let children = listing
            .data
            .children
            .into_iter()
            .map(|raw| {
                let name = serde_json::from_str::<NameOnly>(raw.get())
                    .ok()
                    .map(|n| n.data.name);
                (name, raw)
            })
            .collect();
        Ok(Page {
            url,
            status: fetched.status,
            after: listing.data.after,
            children,
            waits: fetched.waits,
        })
    }

    fn item(&self, raw: &str, fetch: &FetchInfo) -> Result<Item, String> {
        let child: Child = serde_json::from_str(raw).map_err(|e| e.to_string())?;
        if child.kind != "t3" {
            return Err(format!("kind {:?} is not a post (t3)", child.kind));
        }
        let link = child.data;
        let secs = link.created_utc.trunc() as i64;
        let created_at = DateTime::<Utc>::from_timestamp(secs, 0)
            .ok_or_else(|| format!("created_utc {} is out of range", link.created_utc))?;
        let id = VigieId::derive(KIND, &link.name);
        let gone = link.removed_by_category.is_some()
            || matches!(link.selftext.trim(), "[removed]" | "[deleted]");
        if gone {
            return Ok(Item::Delete(Box::new(Tombstone {
                id,
                source: KIND.into(),
                native_id: link.name,
                deleted_at: fetch.fetched_at,
                provenance: fetch.provenance(raw.as_bytes()),
            })));
        }
        let ctx = HandleContext::new(KIND);
        let text = if link.selftext.trim().is_empty() {
            link.title.trim().to_string()
        } else {
            format!("{}\n\n{}", link.title.trim(), link.selftext.trim())
        };
        let text = self.pseudonymiser.scrub(&text, &ctx);
        Ok(Item::Post(Box::new(Envelope {
            post: Post {
                id,
                source: KIND.into(),
                native_id: link.name,
                author: self.pseudonymiser.pseudonym(KIND, &link.author),
                lang: lang::detect(&text),
                text,
                created_at,
                url: Some(
                    self.pseudonymiser
                        .scrub_urls(&format!("https://www.reddit.com{}", link.permalink)),
                ),
                coordinates: None,
            },
            provenance: fetch.provenance(raw.as_bytes()),
            kafka: None,
            scoring: None,
            places: None,
        })))
    }

    fn fetch_info(&self, page: &Page) -> FetchInfo {
        FetchInfo::new(
            &page.url,
            Some(page.status),
            KIND,
            &format!("{}: r/{}/new", self.config.name, self.config.subreddit),
            &self.pseudonymiser,
        )
    }
}

#[async_trait::async_trait]
impl Source for Reddit {
    polled_source!(KIND);

    async fn poll(&mut self, cursor: Option<&Cursor>) -> Result<Batch, IngestError> {
        let cursor: RedditCursor = self.resume(cursor)?;
        let mut batch = Batch::default();
        let mut pages = Vec::new();
        match &cursor.newest {
            None => pages.push(self.page(None).await?),
            Some(anchor) => {
                let forward = self.page(Some(("before", anchor))).await?;
                if !forward.children.is_empty() {
                    batch.more = forward.children.len() as u32 >= self.config.limit;
                    pages.push(forward);
                } else {
                    batch.gaps.extend(forward.waits);
                    // Empty: caught up, or the anchor is gone. The newest page tells which.
                    let anchor_value = id_value(anchor).unwrap_or(0);
                    let newer = |p: &Page| {
                        p.children
                            .iter()
                            .filter_map(|(n, _)| n.as_deref().and_then(id_value))
                            .any(|v| v > anchor_value)
                    };
                    let reached = |p: &Page| {
                        p.children
                            .iter()
                            .filter_map(|(n, _)| n.as_deref().and_then(id_value))
                            .any(|v| v <= anchor_value)
                    };
                    let mut page = self.page(None).await?;
                    if newer(&page) {
                        tracing::info!(
                            source = %self.config.name,
                            anchor = %anchor,
                            "the cursor's post is gone from the listing; walking back with after="
                        );
                        let mut walked = 1;
                        loop {
                            let done = reached(&page) || page.after.is_none();
                            let after = page.after.clone();
                            pages.push(page);
                            if done {
                                break;
                            }
                            if walked >= self.config.max_pages {
                                let oldest = pages
                                    .last()
                                    .and_then(|p| p.children.last())
                                    .and_then(|(n, _)| n.clone())
                                    .unwrap_or_default();
                                let now = Utc::now();
                                batch.gaps.push(Gap {
                                    kind: GapKind::SkippedPages,
                                    from: now,
                                    to: Some(now),
                                    detail: format!(
                                        "r/{}: posts between {anchor} and {oldest} not fetched \
                                         (more than {} pages behind)",
                                        self.config.subreddit, self.config.max_pages
                                    ),
                                });
                                break;
                            }
                            let Some(after) = after else { break };
                            page = self.page(Some(("after", &after))).await?;
                            walked += 1;
                        }
                    }
                }
            }
        }
        let anchor_value = cursor.newest.as_deref().and_then(id_value);
        let mut items: Vec<(u64, Item)> = Vec::new();
        let mut newest: Option<(u64, String)> = None;
        for page in pages {
            batch.gaps.extend(page.waits.iter().cloned());
            let fetch = self.fetch_info(&page);
            for (n, (name, raw)) in page.children.iter().enumerate() {
                let value = name.as_deref().and_then(id_value);
                if let (Some(v), Some(a)) = (value, anchor_value) {
                    if v <= a {
                        continue;
                    }
                }
                if let (Some(v), Some(name)) = (value, name) {
                    if newest.as_ref().is_none_or(|(nv, _)| v > *nv) {
                        newest = Some((v, name.clone()));
                    }
                }
                match self.item(raw.get(), &fetch) {
                    Ok(item) => items.push((value.unwrap_or(0), item)),
                    Err(reason) => batch.skipped.push(Skipped {
                        location: format!(
                            "{} (child {} of {})",
                            page.url,
                            n + 1,
                            page.children.len()
                        ),
                        reason,
                    }),
                }
            }
        }
        items.sort_by_key(|(v, _)| *v);
        // Pages walked while new posts arrive overlap: keep each post once.
        let mut seen = std::collections::HashSet::new();
        items.retain(|(_, item)| seen.insert(item.id().clone()));
        batch.items = items.into_iter().map(|(_, i)| i).collect();
        if let Some((_, name)) = newest {
            batch.cursor = Some(Cursor::encode(&RedditCursor { newest: Some(name) }));
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fullnames_order_by_their_base36_id() {
        assert!(id_value("t3_1p4k2nl") < id_value("t3_1p4k2nm"));
        assert!(id_value("t3_zzzzz") < id_value("t3_100000"));
        assert_eq!(id_value("t3_10"), Some(36));
        assert_eq!(id_value("t3_!"), None);
    }

    const LINK: &str = r#"{"kind":"t3","data":{"name":"t3_1p4k2nl","author":"brinebrother","title":"Fire on Main St, cc u/dave","selftext":"see https://www.reddit.com/user/dave/","created_utc":1795766400.0,"permalink":"/r/Cooking/comments/1p4k2nl/fire/","removed_by_category":null}}"#;

    fn source() -> Reddit {
        Reddit::new(
            RedditConfig {
                name: "fuzz".into(),
                subreddit: "Cooking".into(),
                base_url: default_base_url(),
                limit: 100,
                max_pages: 10,
                poll_interval: Duration::from_secs(60),
            },
            HttpClient::new(crate::http::HttpConfig::default()).unwrap(),
            Pseudonymiser::new(b"k"),
        )
    }

    /// A listing decoded as `poll` does it: each child an item or a reason.
    fn read(r: &Reddit, listing: &str) -> Vec<Result<Item, String>> {
        let Ok(listing) = serde_json::from_str::<Listing>(listing) else {
            return Vec::new();
        };
        let fetch = FetchInfo::new(
            "https://www.reddit.com/r/Cooking/new.json",
            Some(200),
            KIND,
            "fuzz",
            &r.pseudonymiser,
        );
        listing
            .data
            .children
            .iter()
            .map(|raw| {
                if let Ok(n) = serde_json::from_str::<NameOnly>(raw.get()) {
                    id_value(&n.data.name);
                }
                r.item(raw.get(), &fetch)
            })
            .collect()
    }

    #[test]
    fn the_valid_sample_parses() {
        let got = read(
            &source(),
            &format!(r#"{{"data":{{"after":null,"children":[{LINK}]}}}}"#),
        );
        assert!(matches!(got.as_slice(), [Ok(Item::Post(_))]), "{got:?}");
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        #[test]
        fn fuzzed_reddit_listings_never_panic_and_leak_no_handle(
            listing in crate::fuzz::json_like(vec![
                format!(r#"{{"data":{{"after":"t3_x","children":[{LINK},{LINK}]}}}}"#),
            ])
        ) {
            for item in read(&source(), &listing).into_iter().flatten() {
                if let Item::Post(e) = item {
                    proptest::prop_assert!(e.post.author.starts_with("ps:"));
                    let json = String::from_utf8(e.to_json()).unwrap();
                    proptest::prop_assert!(!json.contains("user/dave") && !json.contains("u/dave"), "{}", json);
                }
            }
        }

        #[test]
        fn fuzzed_reddit_listing_bytes_never_panic(
            listing in crate::fuzz::bytes_like(vec![
                format!(r#"{{"data":{{"after":"t3_x","children":[{LINK}]}}}}"#),
            ])
        ) {
            read(&source(), &String::from_utf8_lossy(&listing));
        }
    }
}
