//! The post and the envelope that carries its provenance.

use crate::{RecordError, VigieId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One public post, as Vigie keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Post {
    /// Vigie's stable id, derived from `source` and `native_id`.
    pub id: VigieId,
    /// The source kind the post came from: `mastodon`, `rss`, `reddit`, `bluesky`, `replay`...
    pub source: String,
    /// The id the source itself gives the post (status id, GUID, `at://` URI...).
    pub native_id: String,
    /// The author's pseudonym (keyed HMAC of the handle), never the handle itself.
    pub author: String,
    /// The post's plain text (HTML already turned into text).
    pub text: String,
    /// ISO 639-1 language code, when the source gave one or it was detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// When the author published the post (RFC 3339).
    pub created_at: DateTime<Utc>,
    /// The post's public URL, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where the source says the post was made, when it says (a geotag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<crate::GeoPoint>,
}

/// The program that fetched a post, and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingestor {
    /// Ingestor name, e.g. `replay` or `mastodon`.
    pub name: String,
    /// Version of the ingestor (Vigie's crate version).
    pub version: String,
}

/// Where, when and how a post was fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// When Vigie fetched the post.
    pub fetched_at: DateTime<Utc>,
    /// The URL (or `file://` path) it was fetched from.
    pub fetch_url: String,
    /// The HTTP status of the fetch, for web sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The ingestor that fetched it.
    pub ingestor: Ingestor,
    /// SHA-256 (hex) of the item's bytes exactly as fetched, before any transformation.
    pub content_sha256: String,
    /// The source configuration and query (feed, hashtag, subreddit...) that matched the post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
}

/// Where a message sat in Kafka: set by the stage that consumed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaCoords {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Offset of the message in its partition.
    pub offset: i64,
}

/// Whether a post could be scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreState {
    /// The model scored the post.
    Scored,
    /// The post was not scored; [`Scoring::reason`] says why.
    NotScored,
}

/// One word's part in a score: how much the score dropped when the word was left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contribution {
    /// The word as it appears in the text.
    pub word: String,
    /// The score's drop when the word is removed (positive: the word pushed the score up).
    pub weight: f32,
}

/// What the analyse stage adds: scores per label, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    /// Id of the model card of the model that scored the post.
    pub model: String,
    /// What ran its encoder (`int8`, `rust-bert`...), when a transformer scored the post: the
    /// runtimes give slightly different scores (docs/classifier.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// When the post was scored.
    pub scored_at: DateTime<Utc>,
    /// Whether the post was scored.
    pub state: ScoreState,
    /// Why the post was not scored (empty text, no text...), a reason a person can read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Score in [0, 1] per label (`danger` and each category).
    #[serde(default)]
    pub scores: BTreeMap<String, f32>,
    /// The words that moved the `danger` score most, strongest first.
    #[serde(default)]
    pub explanation: Vec<Contribution>,
}

impl Scoring {
    /// The `danger` score, 0 when the post was not scored.
    pub fn danger(&self) -> f32 {
        self.scores.get("danger").copied().unwrap_or(0.0)
    }
}

/// A post in transit, with everything the stages learnt about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The post.
    pub post: Post,
    /// How it was fetched.
    pub provenance: Provenance,
    /// Where the consuming stage read it from Kafka (absent in the embedded pipeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaCoords>,
    /// Its scores, once analysed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring: Option<Scoring>,
    /// The places it is about, once analysed with a gazetteer (empty: none found; absent: not
    /// looked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub places: Option<Vec<crate::Place>>,
}

impl Envelope {
    /// Decodes an envelope from JSON bytes; the error names the offending field, or says the
    /// value is empty.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.trim_ascii().is_empty() {
            return Err(RecordError::Empty);
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Encodes the envelope as compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_vec(self).expect("envelope serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        let mut e = crate::fixtures::scored("1", "Fire on the 3rd floor", 0.9);
        e.scoring.as_mut().unwrap().explanation = vec![Contribution {
            word: "Fire".into(),
            weight: 0.4,
        }];
        e
    }

    #[test]
    fn round_trips_through_json() {
        let e = sample();
        assert_eq!(Envelope::from_json(&e.to_json()).unwrap(), e);
    }

    #[test]
    fn unknown_field_is_rejected_by_name() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["post"]["colour"] = "blue".into();
        let err = Envelope::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn missing_field_is_rejected_by_name() {
        let mut v: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["provenance"]
            .as_object_mut()
            .unwrap()
            .remove("content_sha256");
        let err = Envelope::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("missing field `content_sha256`"),
            "{err}"
        );
    }

    #[test]
    fn not_scored_state_is_explicit() {
        let mut e = sample();
        let s = e.scoring.as_mut().unwrap();
        s.state = ScoreState::NotScored;
        s.reason = Some("empty text".into());
        let json = String::from_utf8(e.to_json()).unwrap();
        assert!(
            json.contains(r#""state":"not_scored","reason":"empty text""#),
            "{json}"
        );
        assert_eq!(Envelope::from_json(json.as_bytes()).unwrap(), e);
    }
}
