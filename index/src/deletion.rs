//! Posts deleted at their source: removed from the index, and remembered.
//!
//! [`IndexWriter::delete`](crate::IndexWriter::delete) takes a [`Deletion`](vigie_record::Deletion) (a tombstone, and
//! where it entered Kafka). At the next commit, in the same atomic write:
//! - every document of the post's Vigie id leaves the index (all its versions), and
//! - a **deletion record** ([`DeletionRecord`]) is added in its place: the id, source and
//!   native id, when the source deleted it, how that was learnt (the tombstone's provenance and
//!   Kafka coordinates) and when the commit was made. It holds no text and no author, and is
//!   never returned by a search, a histogram or [`PostIndex::get`]; [`PostIndex::num_docs`]
//!   does not count it.
//!
//! ## Guarantees
//! - **A deletion is final.** [`IndexWriter::upsert`](crate::IndexWriter::upsert) refuses a post
//!   whose id has a deletion record, committed or pending in the same writer: a post
//!   re-delivered after its tombstone (a replay of an older capture, a Kafka message read
//!   again) does not come back. Sources never reuse a deleted post's id.
//! - **One record per post**: a tombstone delivered twice keeps the first record (the deletion
//!   as first learnt); deletion records are never deleted, retention included.
//! - **Order.** Within one writer, operations apply in the order they are made. On Kafka a
//!   post and its tombstone are keyed by the same Vigie id, so they share a partition and
//!   arrive in order; and since a deletion is final, a tombstone that overtakes its post (two
//!   partitions after a repartitioning, a replay of an older file) still wins.

use crate::schema::DELETION;
use crate::{IndexError, PostIndex};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tantivy::{TantivyDocument, Term};
use vigie_record::{KafkaCoords, Tombstone};

/// What the index keeps of a post deleted at its source (no text, no author).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionRecord {
    /// The deleted post's id, source, native id, deletion time, and how it was learnt.
    pub tombstone: Tombstone,
    /// Where the deletion entered Kafka (absent in the embedded pipeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaCoords>,
    /// When the commit that removed the post was made.
    pub committed_at: DateTime<Utc>,
}

impl PostIndex {
    /// The deletion record of post `id`, if the last visible commit has one.
    pub fn deletion(&self, id: &str) -> Result<Option<DeletionRecord>, IndexError> {
        let Some(json) = self.stored_json(self.fields.deleted_id, id, self.fields.deletion)? else {
            return Ok(None);
        };
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| IndexError::Corrupt(format!("deletion record: {e}")))
    }

    /// Number of deletion records in the last visible commit.
    pub fn num_deletions(&self) -> Result<u64, IndexError> {
        // Deletion records are never deleted, so the term's document frequency is exact.
        let term = Term::from_field_text(self.fields.kind, DELETION);
        Ok(self.reader.searcher().doc_freq(&term)?)
    }

    /// Whether the last visible commit has a deletion record for `id`.
    pub(crate) fn has_deletion(&self, id: &str) -> Result<bool, IndexError> {
        let term = Term::from_field_text(self.fields.deleted_id, id);
        Ok(self.reader.searcher().doc_freq(&term)? > 0)
    }

    /// The document of a deletion record.
    pub(crate) fn deletion_document(
        &self,
        record: &DeletionRecord,
    ) -> Result<TantivyDocument, IndexError> {
        let f = &self.fields;
        let json = serde_json::to_string(record)
            .map_err(|e| IndexError::Corrupt(format!("deletion record: {e}")))?;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.kind, DELETION);
        doc.add_text(f.deleted_id, record.tombstone.id.as_str());
        doc.add_text(f.deletion, json);
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use crate::{PostIndex, SearchRequest, Upsert};
    use vigie_record::fixtures::{scored, tombstone};
    use vigie_record::{Deletion, KafkaCoords};

    fn all(index: &PostIndex) -> Vec<String> {
        let mut ids: Vec<String> = index
            .search(&SearchRequest {
                query: "*".into(),
                limit: 100,
                collapse: false,
                ..SearchRequest::default()
            })
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_deleted_post_leaves_with_its_record_in_the_same_commit_and_never_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(dir.path()).unwrap();
        let (fire, calm) = (scored("1", "fire", 0.9), scored("2", "calm", 0.1));
        let (fire_id, calm_id) = (fire.post.id.to_string(), calm.post.id.to_string());
        let mut w = index.writer().unwrap();
        assert_eq!(w.upsert(&fire).unwrap(), Upsert::Indexed);
        w.upsert(&calm).unwrap();
        w.commit(None).unwrap();

        let mut deletion: Deletion = tombstone("1", "2026-11-27T09:00:00Z").into();
        deletion.kafka = Some(KafkaCoords {
            topic: "vigie.posts.raw".into(),
            partition: 1,
            offset: 4,
        });
        w.delete(&deletion).unwrap();
        // Re-delivered in the same batch, before the commit: refused already.
        assert_eq!(w.upsert(&fire).unwrap(), Upsert::Deleted);
        assert!(
            index.get(&fire_id).unwrap().is_some(),
            "not before the commit"
        );
        assert_eq!(index.deletion(&fire_id).unwrap(), None);
        let before = chrono::Utc::now();
        w.commit(Some("p")).unwrap();

        assert_eq!(index.get(&fire_id).unwrap(), None);
        let record = index.deletion(&fire_id).unwrap().expect("deletion record");
        assert_eq!(record.tombstone, deletion.tombstone);
        assert_eq!(record.kafka, deletion.kafka);
        assert!(record.committed_at >= before);
        assert_eq!((index.num_docs(), index.num_deletions().unwrap()), (1, 1));
        assert_eq!(
            all(&index),
            std::slice::from_ref(&calm_id),
            "search never shows the record"
        );
        assert_eq!(index.deletion(&calm_id).unwrap(), None);

        // Re-delivered later (an older message replayed): still gone. A second tombstone keeps
        // the first record.
        assert_eq!(w.upsert(&fire).unwrap(), Upsert::Deleted);
        w.delete(&tombstone("1", "2026-11-28T00:00:00Z").into())
            .unwrap();
        w.commit(None).unwrap();
        drop(w);
        let reopened = PostIndex::open(dir.path()).unwrap();
        assert_eq!(reopened.get(&fire_id).unwrap(), None);
        assert_eq!(reopened.deletion(&fire_id).unwrap(), Some(record));
        assert_eq!(
            (reopened.num_docs(), reopened.num_deletions().unwrap()),
            (1, 1)
        );
        // Retention does not remove deletion records.
        let mut w = reopened.writer().unwrap();
        let gone = w
            .delete_collected_before("2030-01-01T00:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(gone, [calm_id]);
        w.commit(None).unwrap();
        assert_eq!(
            (reopened.num_docs(), reopened.num_deletions().unwrap()),
            (0, 1)
        );
    }

    #[test]
    fn a_deletion_before_its_post_wins() {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(dir.path()).unwrap();
        let mut w = index.writer().unwrap();
        w.delete(&tombstone("7", "2026-11-27T09:00:00Z").into())
            .unwrap();
        w.commit(None).unwrap();
        assert_eq!(
            w.upsert(&scored("7", "late", 0.5)).unwrap(),
            Upsert::Deleted
        );
        w.commit(None).unwrap();
        assert_eq!(index.num_docs(), 0);
        assert!(all(&index).is_empty());
    }
}
