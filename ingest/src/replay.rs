//! Replay of labelled JSONL files (the format of `vigie eval`, and of the bundled sample stream).
//!
//! One JSON object a line: `id` and `text` required; `source` (default `replay`), `author`,
//! `lang`, `created_at` (RFC 3339; default: the time the file is read) and `url` optional;
//! `labels` and any other field are ignored here. Blank lines are skipped.

use crate::{IngestError, Pseudonymiser, INGESTOR_VERSION};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::io::BufRead;
use std::path::Path;
use vigie_record::{content_sha256, Envelope, Ingestor, Post, Provenance, VigieId};

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
    let author = pseudonymiser.pseudonym(&source, item.author.as_deref().unwrap_or(""));
    Ok(Envelope {
        post: Post {
            id: VigieId::derive(&source, &item.id),
            native_id: item.id,
            author,
            text: item.text,
            lang: item.lang,
            created_at: item.created_at.unwrap_or(fetched_at),
            url: item.url,
            source,
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
    })
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
    fn a_missing_file_is_a_clear_error() {
        let e = read_jsonl(Path::new("/no/such/file.jsonl"), &Pseudonymiser::new(b"k"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/such/file.jsonl"), "{e}");
    }
}
