//! Deletions: a post removed at its source, and the records that carry posts and deletions.
//!
//! When a source reports a post deleted (a Jetstream `delete` commit, a Reddit post removed, a
//! Mastodon `delete` event), its ingestor yields a [`Tombstone`]: the deleted post's Vigie id,
//! its source and native id, when it was deleted, and how the deletion was learnt (its own
//! [`Provenance`]). It holds no text and no author.
//!
//! ## Wire format
//! A deletion travels the same paths as posts, as one JSON object [`Deletion`]:
//! `{"tombstone": {…}}`, plus `"kafka": {topic, partition, offset}` once a stage has read it
//! from Kafka (where it entered Kafka). It is a capture-file line as it is, and on Kafka a
//! message **keyed by the deleted post's Vigie id**, like the post itself: the raw topic is
//! partitioned by key, so a post and its deletion share a partition and the deletion is read
//! after the post. [`Record::from_json`] tells a post from a deletion.
//!
//! Why a JSON record and not a Kafka tombstone (a null value): the deletion carries its own
//! provenance, which a null value could hold only as headers, and Vigie's topics are not
//! compacted, so a null value would buy nothing. A message with an empty value is refused with
//! a reason that says so (the stages send it to the dead-letter topic).

use crate::{Envelope, KafkaCoords, Provenance, RecordError, VigieId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A post removed at its source: its id leaves the index, and the removal is recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tombstone {
    /// The Vigie id of the deleted post.
    pub id: VigieId,
    /// The source kind (as in [`Post::source`](crate::Post::source)).
    pub source: String,
    /// The source's own id of the deleted post.
    pub native_id: String,
    /// When the source reported the deletion.
    pub deleted_at: DateTime<Utc>,
    /// How the deletion was learnt (the event's URL, hash and ingestor).
    pub provenance: Provenance,
}

/// A deletion in transit: `{"tombstone": …, "kafka": …}` (see [`Tombstone`] for the wire format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deletion {
    /// What was deleted, when, and how it was learnt.
    pub tombstone: Tombstone,
    /// Where the consuming stage read it from Kafka (absent before Kafka).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaCoords>,
}

impl Deletion {
    /// Encodes the deletion as compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, numbers and a timestamp: serialising cannot fail.
        serde_json::to_vec(self).expect("deletion serialises")
    }
}

impl From<Tombstone> for Deletion {
    fn from(tombstone: Tombstone) -> Self {
        Deletion {
            tombstone,
            kafka: None,
        }
    }
}

/// One message of a Vigie topic or line of a capture: a post, or the deletion of one.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A post, in its envelope.
    Post(Box<Envelope>),
    /// A post deleted at its source.
    Delete(Box<Deletion>),
}

impl Record {
    /// Decodes a post (an envelope) or a deletion (`{"tombstone": …}`); the error names the
    /// field at fault, or says the value is empty.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RecordError> {
        if Self::is_deletion(bytes) {
            return serde_json::from_slice(bytes)
                .map(|d| Record::Delete(Box::new(d)))
                .map_err(RecordError::Tombstone);
        }
        Envelope::from_json(bytes).map(|e| Record::Post(Box::new(e)))
    }

    /// Whether `bytes` are a deletion (their first key is `tombstone`), valid or not, without
    /// parsing them.
    pub fn is_deletion(bytes: &[u8]) -> bool {
        let first_key = bytes
            .trim_ascii_start()
            .strip_prefix(b"{")
            .map(<[u8]>::trim_ascii_start);
        first_key.is_some_and(|k| k.starts_with(b"\"tombstone\""))
    }

    /// Encodes the record as compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        match self {
            Record::Post(e) => e.to_json(),
            Record::Delete(d) => d.to_json(),
        }
    }

    /// The Vigie id of the post the record is about (its Kafka key).
    pub fn id(&self) -> &VigieId {
        match self {
            Record::Post(e) => &e.post.id,
            Record::Delete(d) => &d.tombstone.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn posts_and_deletions_round_trip_and_are_told_apart() {
        let post = Record::Post(Box::new(fixtures::envelope("1", "Fire")));
        let mut deletion: Deletion = fixtures::tombstone("1", "2026-11-27T09:00:00Z").into();
        let line = String::from_utf8(deletion.to_json()).unwrap();
        assert!(line.starts_with(r#"{"tombstone":{"id":""#), "{line}");
        deletion.kafka = Some(KafkaCoords {
            topic: "vigie.posts.raw".into(),
            partition: 2,
            offset: 7,
        });
        let deletion = Record::Delete(Box::new(deletion));
        for r in [post, deletion] {
            assert_eq!(Record::from_json(&r.to_json()).unwrap(), r);
            assert_eq!(r.id(), &VigieId::derive("mastodon", "1"));
        }
        // Leading white space does not hide a deletion.
        let spaced = format!(" {{ {}", &line[1..]);
        assert!(matches!(
            Record::from_json(spaced.as_bytes()).unwrap(),
            Record::Delete(_)
        ));
    }

    #[test]
    fn malformed_and_empty_records_are_explained() {
        let e = Record::from_json(br#"{"tombstone": {"id": "x"}}"#).unwrap_err();
        assert!(e.to_string().starts_with("invalid tombstone"), "{e}");
        assert!(e.to_string().contains("missing field"), "{e}");
        let e = Record::from_json(b"  ").unwrap_err();
        assert!(matches!(e, RecordError::Empty), "{e}");
        let e = Record::from_json(b"not json {").unwrap_err();
        assert!(e.to_string().starts_with("invalid envelope"), "{e}");
    }
}
