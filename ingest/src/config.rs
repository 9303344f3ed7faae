//! The sources file: which public sources to read, and how politely.
//!
//! A TOML file (default `sources.toml`; see `config/sources.example.toml`) with an optional
//! `[http]` section ([`HttpConfig`]) and one `[[source]]` table per source configuration.
//! Each has a unique `name` (letters, digits, `-`, `_`, `.`: it names the cursor file) and a
//! `kind` (`mastodon`, `mastodon-stream`, `rss`, `reddit`, `jetstream`) that decides its other keys. Unknown keys
//! are refused, naming the key.
//!
//! ```toml
//! [http]
//! user_agent = "Vigie/0.1 (+mailto:osint@example.org)"
//!
//! [[source]]
//! name = "mamot-incendie"
//! kind = "mastodon"
//! instance = "https://mamot.fr"
//! hashtag = "incendie"
//! ```

use crate::http::{HttpClient, HttpConfig};
use crate::source::jetstream::{Jetstream, JetstreamConfig};
use crate::source::mastodon::{Mastodon, MastodonConfig};
use crate::source::mastodon_stream::{MastodonStream, MastodonStreamConfig};
use crate::source::reddit::{Reddit, RedditConfig};
use crate::source::rss::{Feed, FeedConfig};
use crate::source::{Batch, Cursor, Source};
use crate::{IngestError, Pseudonymiser};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One `[[source]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceConfig {
    /// A Mastodon timeline.
    Mastodon(MastodonConfig),
    /// A Mastodon timeline's stream (server-sent events), with deletions.
    #[serde(rename = "mastodon-stream")]
    MastodonStream(MastodonStreamConfig),
    /// An RSS or Atom feed.
    Rss(FeedConfig),
    /// A subreddit's newest posts.
    Reddit(RedditConfig),
    /// Bluesky posts from Jetstream.
    Jetstream(JetstreamConfig),
}

impl SourceConfig {
    /// The configuration's name.
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Mastodon(c) => &c.name,
            SourceConfig::MastodonStream(c) => &c.name,
            SourceConfig::Rss(c) => &c.name,
            SourceConfig::Reddit(c) => &c.name,
            SourceConfig::Jetstream(c) => &c.name,
        }
    }

    /// The source's kind, as its `kind` key says.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Mastodon(_) => crate::source::mastodon::KIND,
            SourceConfig::MastodonStream(_) => crate::source::mastodon_stream::KIND,
            SourceConfig::Rss(_) => crate::source::rss::KIND,
            SourceConfig::Reddit(_) => crate::source::reddit::KIND,
            SourceConfig::Jetstream(_) => crate::source::jetstream::KIND,
        }
    }

    /// Builds the source. Each batch it yields is held back until `pseudonymiser` has its
    /// pseudonyms durably in the identity file ([`Pseudonymiser::sync`]); if they cannot be
    /// written the poll fails, so the cursor stays and the batch is fetched again.
    pub fn build(
        &self,
        http: &HttpClient,
        pseudonymiser: &Pseudonymiser,
    ) -> Result<Box<dyn Source>, IngestError> {
        let inner: Box<dyn Source> = match self {
            SourceConfig::Mastodon(c) => Box::new(Mastodon::new(
                c.clone(),
                http.clone(),
                pseudonymiser.clone(),
            )?),
            SourceConfig::MastodonStream(c) => Box::new(MastodonStream::new(
                c.clone(),
                http.clone(),
                pseudonymiser.clone(),
            )?),
            SourceConfig::Rss(c) => {
                Box::new(Feed::new(c.clone(), http.clone(), pseudonymiser.clone()))
            }
            SourceConfig::Reddit(c) => {
                Box::new(Reddit::new(c.clone(), http.clone(), pseudonymiser.clone()))
            }
            SourceConfig::Jetstream(c) => {
                Box::new(Jetstream::new(c.clone(), pseudonymiser.clone()))
            }
        };
        Ok(Box::new(Synced {
            inner,
            pseudonymiser: pseudonymiser.clone(),
        }))
    }
}

/// A source whose batches wait for their pseudonyms to be in the identity file.
struct Synced {
    inner: Box<dyn Source>,
    pseudonymiser: Pseudonymiser,
}

#[async_trait::async_trait]
impl Source for Synced {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn poll_interval(&self) -> std::time::Duration {
        self.inner.poll_interval()
    }

    async fn poll(&mut self, cursor: Option<&Cursor>) -> Result<Batch, IngestError> {
        let batch = self.inner.poll(cursor).await?;
        self.pseudonymiser.sync()?;
        Ok(batch)
    }
}

/// The whole sources file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    /// The shared HTTP client's settings.
    #[serde(default)]
    pub http: HttpConfig,
    /// The sources, in file order.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
}

impl SourcesConfig {
    /// Reads and checks the sources file at `path`.
    pub fn load(path: &Path) -> Result<Self, IngestError> {
        let text = std::fs::read_to_string(path).map_err(|error| IngestError::Io {
            source_name: "sources".into(),
            location: path.display().to_string(),
            error,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a sources file's text; `location` names it in errors.
    pub fn parse(text: &str, location: &str) -> Result<Self, IngestError> {
        let config: SourcesConfig = toml::from_str(text).map_err(|e| IngestError::Config {
            location: location.to_string(),
            message: e.to_string(),
        })?;
        let mut names = std::collections::HashSet::new();
        for source in &config.sources {
            let name = source.name();
            let valid = !name.is_empty()
                && !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                return Err(IngestError::Config {
                    location: location.to_string(),
                    message: format!(
                        "source name {name:?}: use letters, digits, '-', '_' and '.' only"
                    ),
                });
            }
            if !names.insert(name) {
                return Err(IngestError::Config {
                    location: location.to_string(),
                    message: format!("two sources are named {name:?}"),
                });
            }
        }
        Ok(config)
    }

    /// The source named `name`.
    pub fn get(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../config/sources.example.toml");

    #[test]
    fn the_example_file_parses() {
        let c = SourcesConfig::parse(EXAMPLE, "example").unwrap();
        let kinds: Vec<_> = c.sources.iter().map(SourceConfig::kind).collect();
        for k in ["mastodon", "mastodon-stream", "rss", "reddit", "jetstream"] {
            assert!(kinds.contains(&k), "{kinds:?}");
        }
        assert!(c.get("mamot-incendie").is_some());
    }

    #[test]
    fn unknown_keys_bad_names_and_duplicates_are_refused() {
        let e = SourcesConfig::parse(
            "[[source]]\nname = \"a\"\nkind = \"rss\"\nurl = \"https://x/feed\"\npoll = \"1m\"\n",
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("s.toml") && e.contains("poll"), "{e}");
        let e = SourcesConfig::parse(
            "[[source]]\nname = \"../a\"\nkind = \"rss\"\nurl = \"https://x/feed\"\n",
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"../a\""), "{e}");
        let twice = "[[source]]\nname = \"a\"\nkind = \"rss\"\nurl = \"https://x/feed\"\n";
        let e = SourcesConfig::parse(&format!("{twice}{twice}"), "s.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("two sources"), "{e}");
        let e = SourcesConfig::parse("[[source]]\nname = \"a\"\nkind = \"gopher\"\n", "s.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("gopher"), "{e}");
    }
}
