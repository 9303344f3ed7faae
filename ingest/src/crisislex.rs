//! CrisisLex CSV files (Olteanu et al., ICWSM 2014): tweets from crises, to replay.
//!
//! The CrisisLexT6 files have a header line (`tweet id, tweet, label`) then one tweet a line:
//! the tweet id quoted with `'` (`'325208201740029952'`), the text (CSV-quoted), and a label
//! (`on-topic` / `off-topic`, not kept). The files carry no author and no time, so:
//! - `created_at` comes from the tweet id, a Twitter snowflake: the first 41 bits above the
//!   low 22 are milliseconds since 2010-11-04T01:42:54.657Z (`(id >> 22) + 1288834974657`);
//! - the author is the pseudonym of an empty handle (unknown), as in labelled JSONL replay;
//! - handles in the text (`@user`, profile links) are pseudonymised, the language detected;
//! - the post's `source` is `twitter`, its native id the tweet id, its URL the handle-free
//!   `https://twitter.com/i/web/status/ID`;
//! - provenance names the file and line, and the content hash is that of the CSV record's bytes.
//!
//! Lines come back in file order; [`replay`](crate::replay) sorts them by time.

use crate::{lang, HandleContext, IngestError, Pseudonymiser, INGESTOR_VERSION};
use chrono::{DateTime, Utc};
use std::path::Path;
use vigie_record::{content_sha256, Envelope, Ingestor, Post, Provenance, VigieId};

/// The ingestor name.
pub const INGESTOR: &str = "crisislex";
/// The `source` of its posts.
pub const SOURCE: &str = "twitter";
/// Twitter's snowflake epoch, in milliseconds since the Unix epoch.
pub const TWITTER_EPOCH_MS: i64 = 1_288_834_974_657;

/// The creation time encoded in a tweet id.
pub fn snowflake_time(id: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis((id >> 22) as i64 + TWITTER_EPOCH_MS)
}

/// Reads a CrisisLex CSV file: one envelope (or the error of that line) per record, in file
/// order.
pub fn read_csv(
    path: &Path,
    pseudonymiser: &Pseudonymiser,
) -> Result<Vec<Result<Envelope, IngestError>>, IngestError> {
    let io_err = |error| IngestError::Io {
        source_name: INGESTOR.into(),
        location: path.display().to_string(),
        error,
    };
    let bytes = std::fs::read(path).map_err(io_err)?;
    let absolute = std::fs::canonicalize(path).map_err(io_err)?;
    let collection = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let matched = format!(
        "crisislex: {}",
        path.file_stem()
            .map_or(collection, |s| s.to_string_lossy().into_owned())
    );
    let fetched_at = Utc::now();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes.as_slice());
    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let start = reader.position().clone();
        let read = reader.read_byte_record(&mut record);
        let line = start.line();
        let location = format!("{}:{line}", path.display());
        let malformed = |message: String| IngestError::Malformed {
            source_name: INGESTOR.into(),
            location: location.clone(),
            message,
        };
        match read {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                out.push(Err(malformed(e.to_string())));
                // The csv reader cannot resume after an I/O-level error; a record-level one
                // (bad UTF-8 is checked below, not here) leaves it at the next record.
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
                continue;
            }
        }
        let end = reader.position().byte() as usize;
        let raw = bytes
            .get(start.byte() as usize..end)
            .unwrap_or_default()
            .trim_ascii_end();
        let fetch_url = format!("file://{}#L{line}", absolute.display());
        out.push(
            parse_record(
                &record,
                raw,
                &fetch_url,
                fetched_at,
                &matched,
                pseudonymiser,
            )
            .map_err(malformed),
        );
    }
    pseudonymiser.sync()?;
    Ok(out)
}

fn parse_record(
    record: &csv::ByteRecord,
    raw: &[u8],
    fetch_url: &str,
    fetched_at: DateTime<Utc>,
    matched: &str,
    pseudonymiser: &Pseudonymiser,
) -> Result<Envelope, String> {
    let field = |n: usize, name: &str| {
        let bytes = record
            .get(n)
            .ok_or_else(|| format!("no `{name}` column (column {})", n + 1))?;
        std::str::from_utf8(bytes).map_err(|e| format!("`{name}` is not UTF-8: {e}"))
    };
    let raw_id = field(0, "tweet id")?;
    let id_text = raw_id.trim().trim_matches('\'');
    let id: u64 = id_text
        .parse()
        .map_err(|_| format!("`tweet id` {raw_id:?} is not a number"))?;
    let created_at =
        snowflake_time(id).ok_or_else(|| format!("`tweet id` {id} is out of range"))?;
    let text = pseudonymiser.scrub(field(1, "tweet")?.trim(), &HandleContext::new(SOURCE));
    Ok(Envelope {
        post: Post {
            id: VigieId::derive(SOURCE, id_text),
            source: SOURCE.into(),
            native_id: id_text.to_string(),
            author: pseudonymiser.pseudonym(SOURCE, ""),
            lang: lang::detect(&text),
            text,
            created_at,
            url: Some(format!("https://twitter.com/i/web/status/{id_text}")),
            coordinates: None,
        },
        provenance: Provenance {
            fetched_at,
            fetch_url: fetch_url.to_string(),
            http_status: None,
            ingestor: Ingestor {
                name: INGESTOR.into(),
                version: INGESTOR_VERSION.into(),
            },
            content_sha256: content_sha256(raw),
            matched: Some(matched.to_string()),
        },
        kafka: None,
        scoring: None,
        places: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_times_match_twitter() {
        // The first tweet of the Boston Bombings file: the morning of the manhunt, 2013-04-19.
        assert_eq!(
            snowflake_time(325_208_201_740_029_952)
                .unwrap()
                .to_rfc3339(),
            "2013-04-19T11:24:12.028+00:00"
        );
        assert_eq!(
            snowflake_time(0).unwrap().timestamp_millis(),
            TWITTER_EPOCH_MS
        );
    }
}
