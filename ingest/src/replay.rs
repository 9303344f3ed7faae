//! Replay of recorded streams: labelled JSONL, capture files and CrisisLex CSV.
//!
//! ## Formats
//! - **Labelled JSONL** (the format of `vigie eval`, and of the bundled sample stream), read by
//!   [`read_jsonl`]: one JSON object a line: `id` and `text` required; `source` (default
//!   `replay`), `author`, `lang`, `created_at` (RFC 3339; default: the time the file is read)
//!   and `url` optional; `labels` and any other field are ignored here. Blank lines are skipped.
//!   Handles are pseudonymised as a live source does it: the author, the mentions and profile
//!   links of the text (a Mastodon post's bare `@user` is on its author's instance), the
//!   profile part of the URL (`https://bsky.app/profile/HANDLE/post/…`) and of the id
//!   (`at://DID/…`, so a replayed Bluesky post gets the Vigie id Jetstream gives it).
//! - **Captures** (`vigie capture`, [`capture`]): envelopes and tombstones,
//!   `.zst` when compressed.
//! - **CrisisLex CSV** ([`crisislex`]).
//!
//! [`Format::detect`] tells them apart: by extension (`.csv`, `.zst`), else by the first
//! line (an envelope has `post` and `provenance`, a tombstone line `tombstone`).
//!
//! ## Order and pace
//! [`load`] returns the items sorted by their time at the source (publication, or deletion)
//! then by Vigie id, a deterministic order whatever the file order. [`Speed`] maps each item
//! to its offset from the start of the replay: the original inter-arrival times divided by the
//! speed, or no waiting at all (`max`).

use crate::source::Item;
use crate::{capture, crisislex, HandleContext, IngestError, Pseudonymiser, INGESTOR_VERSION};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::io::BufRead;
use std::path::Path;
use std::time::Duration;
use vigie_record::{content_sha256, Envelope, Ingestor, Post, Provenance, VigieId};

/// The kinds of file [`load`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Labelled JSONL ([`read_jsonl`]).
    Labelled,
    /// A capture file ([`capture::read`]).
    Capture,
    /// A CrisisLex CSV file ([`crisislex::read_csv`]).
    CrisisLex,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "labelled" | "labeled" | "jsonl" => Ok(Format::Labelled),
            "capture" => Ok(Format::Capture),
            "crisislex" | "csv" => Ok(Format::CrisisLex),
            other => Err(format!(
                "unknown format {other:?}: expected labelled, capture or crisislex"
            )),
        }
    }
}

impl Format {
    /// The format of `path`: `.csv` is CrisisLex, `.zst` a capture; otherwise the first
    /// non-blank line decides (an envelope or a tombstone: capture; else labelled JSONL).
    pub fn detect(path: &Path) -> Result<Format, IngestError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => return Ok(Format::CrisisLex),
            Some("zst") => return Ok(Format::Capture),
            _ => {}
        }
        let file = std::fs::File::open(path).map_err(|error| IngestError::Io {
            source_name: SOURCE.into(),
            location: path.display().to_string(),
            error,
        })?;
        for line in std::io::BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            let keys = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line)
                .unwrap_or_default();
            let capture = keys.contains_key("tombstone")
                || (keys.contains_key("post") && keys.contains_key("provenance"));
            return Ok(if capture {
                Format::Capture
            } else {
                Format::Labelled
            });
        }
        Ok(Format::Labelled)
    }
}

/// A file's items in replay order, and the lines that could not be read.
#[derive(Debug, Default)]
pub struct Replay {
    /// Items sorted by time at the source, then Vigie id.
    pub items: Vec<Item>,
    /// The unreadable lines, each naming file, line and field.
    pub rejected: Vec<IngestError>,
}

/// Reads `path` (in `format`, or the detected one) and sorts its items for replay.
pub fn load(
    path: &Path,
    format: Option<Format>,
    pseudonymiser: &Pseudonymiser,
) -> Result<Replay, IngestError> {
    let format = match format {
        Some(f) => f,
        None => Format::detect(path)?,
    };
    let results: Vec<Result<Item, IngestError>> = match format {
        Format::Capture => capture::read(path)?,
        Format::Labelled => read_jsonl(path, pseudonymiser)?
            .into_iter()
            .map(|r| r.map(|e| Item::Post(Box::new(e))))
            .collect(),
        Format::CrisisLex => crisislex::read_csv(path, pseudonymiser)?
            .into_iter()
            .map(|r| r.map(|e| Item::Post(Box::new(e))))
            .collect(),
    };
    let mut replay = Replay::default();
    for r in results {
        match r {
            Ok(item) => replay.items.push(item),
            Err(e) => replay.rejected.push(e),
        }
    }
    replay
        .items
        .sort_by(|a, b| (a.at(), a.id()).cmp(&(b.at(), b.id())));
    pseudonymiser.sync()?;
    Ok(replay)
}

/// How fast to replay: a factor of the original pace, or as fast as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Original inter-arrival times divided by this factor (1 = real time).
    Factor(f64),
    /// No waiting.
    Max,
}

impl std::str::FromStr for Speed {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match s.trim_end_matches('x').parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
            _ => Err(format!(
                "invalid speed {s:?}: a positive factor (1, 10...) or `max`"
            )),
        }
    }
}

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::Max => f.write_str("max speed"),
            Speed::Factor(x) => write!(f, "{x}x speed"),
        }
    }
}

impl Speed {
    /// When the item at `at` is due, counted from the start of a replay whose first item is at
    /// `first`; `None` at `max` speed (due at once).
    pub fn offset(&self, first: DateTime<Utc>, at: DateTime<Utc>) -> Option<Duration> {
        match self {
            Speed::Max => None,
            Speed::Factor(f) => {
                let span = (at - first).to_std().unwrap_or(Duration::ZERO);
                Some(span.div_f64(*f))
            }
        }
    }
}

/// One line of a labelled JSONL file, as far as replay needs it.
#[derive(Debug, Deserialize)]
struct Line {
    id: String,
    text: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    url: Option<String>,
}

const SOURCE: &str = "replay";

/// Reads `path` and yields one envelope (or the error of that line) per non-blank line, in
/// file order.
pub fn read_jsonl(
    path: &Path,
    pseudonymiser: &Pseudonymiser,
) -> Result<Vec<Result<Envelope, IngestError>>, IngestError> {
    let io_err = |error| IngestError::Io {
        source_name: SOURCE.into(),
        location: path.display().to_string(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let absolute = std::fs::canonicalize(path).map_err(io_err)?;
    let fetched_at = Utc::now();
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err)?;
        if line.trim().is_empty() {
            continue;
        }
        let location = format!("{}:{}", path.display(), n + 1);
        let fetch_url = format!("file://{}#L{}", absolute.display(), n + 1);
        out.push(
            parse_line(&line, &fetch_url, fetched_at, pseudonymiser).map_err(|message| {
                IngestError::Malformed {
                    source_name: SOURCE.into(),
                    location,
                    message,
                }
            }),
        );
    }
    pseudonymiser.sync()?;
    Ok(out)
}

fn parse_line(
    line: &str,
    fetch_url: &str,
    fetched_at: DateTime<Utc>,
    pseudonymiser: &Pseudonymiser,
) -> Result<Envelope, String> {
    let item: Line = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let source = item.source.unwrap_or_else(|| SOURCE.to_string());
    let handle = item.author.as_deref().unwrap_or("");
    let author = pseudonymiser.pseudonym(&source, handle);
    // Bare `@user` mentions of a Mastodon post are on its author's instance.
    let mut ctx = HandleContext::new(&source);
    ctx.default_domain = handle
        .trim_start_matches('@')
        .split_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
        .filter(|_| source == crate::source::mastodon::KIND);
    let native_id = pseudonymiser.scrub_urls(&item.id);
    Ok(Envelope {
        post: Post {
            id: VigieId::derive(&source, &native_id),
            native_id,
            author,
            text: pseudonymiser.scrub(&item.text, &ctx),
            lang: item.lang,
            created_at: item.created_at.unwrap_or(fetched_at),
            url: item.url.map(|u| pseudonymiser.scrub_urls(&u)),
            source,
            coordinates: None,
        },
        provenance: Provenance {
            fetched_at,
            fetch_url: fetch_url.to_string(),
            http_status: None,
            ingestor: Ingestor {
                name: SOURCE.into(),
                version: INGESTOR_VERSION.into(),
            },
            content_sha256: content_sha256(line.as_bytes()),
            matched: None,
        },
        kafka: None,
        scoring: None,
        places: None,
    })
}

/// What [`play`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Played {
    /// Items delivered.
    pub items: usize,
    /// Batches delivered.
    pub batches: usize,
}

/// [`play`] on the real clock, from now.
pub fn play_now<E>(
    items: Vec<Item>,
    speed: Speed,
    batch_size: usize,
    deliver: impl FnMut(Vec<Item>) -> Result<(), E>,
) -> Result<Played, E> {
    let start = std::time::Instant::now();
    play(
        items,
        speed,
        batch_size,
        || start.elapsed(),
        std::thread::sleep,
        deliver,
    )
}

/// Delivers `items` (in replay order) to `deliver` in batches of at most `batch_size`, each item
/// no earlier than its [`Speed::offset`] after the start. `elapsed` says how long the replay has
/// been running and `sleep` waits: the real clock in `vigie replay`, a fake one in tests.
///
/// A batch is handed over when it is full, and before any wait for a later item, so an item
/// is never held back behind one that is not due yet.
pub fn play<E>(
    items: Vec<Item>,
    speed: Speed,
    batch_size: usize,
    elapsed: impl Fn() -> Duration,
    mut sleep: impl FnMut(Duration),
    mut deliver: impl FnMut(Vec<Item>) -> Result<(), E>,
) -> Result<Played, E> {
    let mut played = Played::default();
    let Some(first) = items.first().map(Item::at) else {
        return Ok(played);
    };
    let batch_size = batch_size.max(1);
    let mut batch = Vec::with_capacity(batch_size);
    for item in items {
        if let Some(due) = speed.offset(first, item.at()) {
            let now = elapsed();
            if due > now {
                if !batch.is_empty() {
                    played.items += batch.len();
                    played.batches += 1;
                    deliver(std::mem::take(&mut batch))?;
                }
                let now = elapsed();
                if due > now {
                    sleep(due - now);
                }
            }
        }
        batch.push(item);
        if batch.len() >= batch_size {
            played.items += batch.len();
            played.batches += 1;
            deliver(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        played.items += batch.len();
        played.batches += 1;
        deliver(batch)?;
    }
    Ok(played)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_good_lines_and_names_the_bad_ones() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            r#"{{"id":"1","source":"mastodon","author":"@bob@x.social","text":"Fire!","lang":"en","created_at":"2026-11-27T10:00:00Z","labels":{{"danger":1}}}}"#
        )
        .unwrap();
        writeln!(f, r#"{{"id":"2","txt":"typo"}}"#).unwrap();
        writeln!(f).unwrap();
        writeln!(f, "not json").unwrap();
        writeln!(f, r#"{{"id":"3","text":"calm"}}"#).unwrap();
        let p = Pseudonymiser::new(b"k");
        let items = read_jsonl(f.path(), &p).unwrap();
        assert_eq!(items.len(), 4);

        let first = items[0].as_ref().unwrap();
        assert_eq!(first.post.id, VigieId::derive("mastodon", "1"));
        assert_eq!(first.post.author, p.pseudonym("mastodon", "@bob@x.social"));
        assert_eq!(
            first.post.created_at.to_rfc3339(),
            "2026-11-27T10:00:00+00:00"
        );
        assert!(first.provenance.fetch_url.ends_with("#L1"));
        assert_eq!(first.provenance.ingestor.name, "replay");
        assert_eq!(first.provenance.content_sha256.len(), 64);

        let missing = items[1].as_ref().unwrap_err().to_string();
        assert!(
            missing.contains(":2:") && missing.contains("missing field `text`"),
            "{missing}"
        );
        let garbage = items[2].as_ref().unwrap_err().to_string();
        assert!(garbage.contains(":4:"), "{garbage}");
        assert_eq!(items[3].as_ref().unwrap().post.source, "replay");
    }

    #[test]
    fn a_replayed_labelled_post_keeps_no_handle_in_its_url_text_or_id() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            r#"{{"id":"at://did:plc:3ypijopijnzoc7kia4u7oncu/app.bsky.feed.post/3n3a","source":"bluesky","author":"dana.bsky.social","text":"cc @hollis.bsky.social and .@hollis.bsky.social","url":"https://bsky.app/profile/dana.bsky.social/post/3n3a"}}"#
        )
        .unwrap();
        writeln!(
            f,
            r#"{{"id":"117","source":"mastodon","author":"pkowalski@fosstodon.org","text":"@bob see HTTPS://fosstodon.org/@pkowalski","url":"https://fosstodon.org/@pkowalski/117"}}"#
        )
        .unwrap();
        let p = Pseudonymiser::new(b"k");
        let items = read_jsonl(f.path(), &p).unwrap();
        let bsky = items[0].as_ref().unwrap();
        let dana = p.pseudonym("bluesky", "dana.bsky.social");
        let did = p.pseudonym("bluesky", "did:plc:3ypijopijnzoc7kia4u7oncu");
        let hollis = p.pseudonym("bluesky", "hollis.bsky.social");
        assert_eq!(
            bsky.post.url.as_deref(),
            Some(format!("https://bsky.app/profile/{dana}/post/3n3a").as_str())
        );
        assert_eq!(bsky.post.author, dana, "the same pseudonym as in the URL");
        assert_eq!(
            bsky.post.native_id,
            format!("at://{did}/app.bsky.feed.post/3n3a")
        );
        assert_eq!(
            bsky.post.id,
            VigieId::derive("bluesky", &bsky.post.native_id)
        );
        assert_eq!(bsky.post.text, format!("cc @{hollis} and .@{hollis}"));
        let masto = items[1].as_ref().unwrap();
        let pk = p.pseudonym("mastodon", "pkowalski@fosstodon.org");
        assert_eq!(masto.post.author, pk);
        assert_eq!(
            masto.post.text,
            format!(
                "@{} see HTTPS://fosstodon.org/@{pk}",
                p.pseudonym("mastodon", "bob@fosstodon.org")
            )
        );
        assert_eq!(
            masto.post.url.as_deref(),
            Some(format!("https://fosstodon.org/@{pk}/117").as_str())
        );
        for e in [bsky, masto] {
            let json = String::from_utf8(e.to_json()).unwrap();
            for handle in ["dana", "hollis", "did:plc", "pkowalski", "bob"] {
                assert!(!json.contains(handle), "{handle} in {json}");
            }
        }
    }

    #[test]
    fn speeds_scale_inter_arrival_times() {
        let t0: DateTime<Utc> = "2013-04-19T11:00:00Z".parse().unwrap();
        let t1: DateTime<Utc> = "2013-04-19T11:00:30Z".parse().unwrap();
        let one: Speed = "1".parse().unwrap();
        let ten: Speed = "10".parse().unwrap();
        let max: Speed = "max".parse().unwrap();
        assert_eq!(one.offset(t0, t1), Some(Duration::from_secs(30)));
        assert_eq!(ten.offset(t0, t1), Some(Duration::from_secs(3)));
        assert_eq!(max.offset(t0, t1), None);
        assert_eq!(one.offset(t1, t0), Some(Duration::ZERO));
        assert!("0".parse::<Speed>().is_err() && "fast".parse::<Speed>().is_err());
    }

    fn post_at(n: u32, at: &str) -> Item {
        let mut e = vigie_record::fixtures::envelope(&n.to_string(), "text");
        e.post.created_at = at.parse().unwrap();
        Item::Post(Box::new(e))
    }

    #[test]
    fn play_keeps_scaled_inter_arrival_times_and_never_holds_items_back() {
        use std::cell::Cell;
        let items = vec![
            post_at(1, "2013-04-15T18:50:00Z"),
            post_at(2, "2013-04-15T18:50:00Z"),
            post_at(3, "2013-04-15T18:50:20Z"),
            post_at(4, "2013-04-15T18:51:00Z"),
            post_at(5, "2013-04-15T18:51:00Z"),
            post_at(6, "2013-04-15T18:51:00Z"),
        ];
        let clock = Cell::new(Duration::ZERO);
        let mut log = Vec::new();
        let played = play(
            items.clone(),
            Speed::Factor(10.0),
            2,
            || clock.get(),
            |d| clock.set(clock.get() + d),
            |batch: Vec<Item>| {
                let ids: Vec<String> = batch
                    .iter()
                    .map(|i| match i {
                        Item::Post(e) => e.post.native_id.clone(),
                        Item::Delete(_) => unreachable!(),
                    })
                    .collect();
                log.push((clock.get(), ids));
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        let s = Duration::from_secs;
        assert_eq!(
            log,
            vec![
                (s(0), vec!["1".to_string(), "2".to_string()]),
                // 20 s later at speed 10: 2 s; handed over alone before the wait for item 4.
                (s(2), vec!["3".to_string()]),
                (s(6), vec!["4".to_string(), "5".to_string()]),
                (s(6), vec!["6".to_string()]),
            ]
        );
        assert_eq!(
            played,
            Played {
                items: 6,
                batches: 4
            }
        );

        // At max speed nothing waits: full batches only.
        let clock = Cell::new(Duration::ZERO);
        let mut sizes = Vec::new();
        play(
            items,
            Speed::Max,
            4,
            || clock.get(),
            |_| panic!("no waiting at max speed"),
            |batch: Vec<Item>| {
                sizes.push(batch.len());
                Ok::<_, ()>(())
            },
        )
        .unwrap();
        assert_eq!(sizes, vec![4, 2]);
    }

    #[test]
    fn formats_are_detected_by_name_then_content() {
        let dir = tempfile::tempdir().unwrap();
        let labelled = dir.path().join("l.jsonl");
        std::fs::write(&labelled, "\n{\"id\":\"1\",\"text\":\"x\"}\n").unwrap();
        assert_eq!(Format::detect(&labelled).unwrap(), Format::Labelled);
        let capture = dir.path().join("c.jsonl");
        std::fs::write(&capture, "{\"post\":{},\"provenance\":{}}\n").unwrap();
        assert_eq!(Format::detect(&capture).unwrap(), Format::Capture);
        assert_eq!(
            Format::detect(Path::new("x/y.csv")).unwrap(),
            Format::CrisisLex
        );
        assert_eq!(
            Format::detect(Path::new("x/y.jsonl.zst")).unwrap(),
            Format::Capture
        );
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let e = read_jsonl(Path::new("/no/such/file.jsonl"), &Pseudonymiser::new(b"k"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/such/file.jsonl"), "{e}");
    }
}
