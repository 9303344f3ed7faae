//! The index: posts, their scores and provenance in a tantivy index on disk.
//!
//! ## The index commit
//! Documents written through [`IndexWriter`] become visible to searchers only when
//! [`IndexWriter::commit`] returns. A commit is atomic: either all documents added since the
//! previous commit are durable and visible, or none are. A commit carries a payload (a string
//! stored in tantivy's `meta.json` in the same atomic write), read back by
//! [`PostIndex::commit_payload`]; the Kafka indexer keeps its consumed offsets there so that the
//! documents and the position they were read up to can never disagree.
//!
//! ## Upserts
//! Each post is stored once per [`VigieId`](vigie_record::VigieId): writing an envelope deletes
//! any document with the same id and adds the new one, in the same commit. Replaying a stream,
//! or a message redelivered by Kafka, never makes a second document.
//!
//! ## Deletions
//! A post deleted at its source leaves the index, and a deletion record takes its place in the
//! same commit, so that it never comes back: see [`deletion`].
//!
//! Each document keeps the whole envelope (post, provenance, Kafka coordinates, scores and
//! explanation), so a hit shows where the post came from and why it scored as it did.

pub mod deletion;
pub mod incidents;
mod lookup;
pub mod near_dup;
mod schema;
mod search;
mod stats;
mod writer;

pub use deletion::DeletionRecord;
pub use incidents::{ChangedIncident, IncidentFilter};
pub use schema::CATEGORY_THRESHOLD;
pub use search::{
    check_query_limits, Cursor, Filters, Group, Hit, Member, SearchPage, SearchRequest, Sort,
    MAX_QUERY_BYTES, MAX_QUERY_DEPTH, PINNED,
};
pub use stats::Bucket;
pub use writer::{IndexWriter, Upsert};

use schema::Fields;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tantivy::{Index, IndexReader, ReloadPolicy, Searcher};
use vigie_situation::incidents::IncidentConfig;

/// What can go wrong with the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// tantivy failed (I/O, lock held by another writer, corrupt files...).
    #[error("index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The index directory could not be created or opened.
    #[error("index directory {path}: {source}")]
    Dir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The index on disk was made by another version of Vigie, with other fields (the
    /// collection time that retention counts from was added after 0.1's first indexes).
    #[error(
        "index {path}: made by another version of Vigie ({why}); move it aside and rebuild it \
         (`vigie replay`, or `vigie index` from the topic's start)"
    )]
    Schema {
        /// The index directory.
        path: std::path::PathBuf,
        /// tantivy's words.
        why: String,
    },
    /// The query text is invalid; the message says where.
    #[error("invalid query: {0}")]
    Query(#[from] tantivy::query::QueryParserError),
    /// A stored document could not be decoded.
    #[error("stored document is corrupt: {0}")]
    Corrupt(String),
    /// The query text is too long or nested too deep to be parsed safely; the message says
    /// which limit.
    #[error("query refused: {0}")]
    QueryLimit(String),
    /// A paging cursor is malformed, expired, or belongs to another search; the message says
    /// which and what to do.
    #[error("invalid cursor: {0}")]
    Cursor(String),
}

impl IndexError {
    /// True when the index's single writer is held elsewhere (another process, such as a Kafka
    /// indexer, or another handle of this one).
    pub fn is_writer_busy(&self) -> bool {
        matches!(
            self,
            IndexError::Tantivy(tantivy::TantivyError::LockFailure(
                tantivy::directory::error::LockError::LockBusy,
                _
            ))
        )
    }
}

/// A post index on disk: open it once, then write with [`PostIndex::writer`] and search with
/// [`PostIndex::search`].
#[derive(Clone)]
pub struct PostIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// Snapshots kept for paging cursors (see [`search`]).
    pinned: Arc<Mutex<VecDeque<Searcher>>>,
    /// The random key of the cursors' tags (see [`search`]), drawn at open.
    cursor_key: std::collections::hash_map::RandomState,
}

impl PostIndex {
    /// Opens the index in `dir`, creating it (and the directory) if missing.
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let (schema, fields) = schema::build();
        let mmap = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| IndexError::Tantivy(e.into()))?;
        let index = Index::open_or_create(mmap, schema).map_err(|e| match e {
            tantivy::TantivyError::SchemaError(why) => IndexError::Schema {
                path: dir.to_path_buf(),
                why,
            },
            other => other.into(),
        })?;
        schema::register_analysers(&index);
        // Commits made by another process (`vigie index`, `vigie replay --index`) are picked up
        // when tantivy's watcher sees `meta.json` change (it polls about twice a second); this
        // handle's own commits are made visible at once by [`PostIndex::refresh`].
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        Ok(PostIndex {
            index,
            reader,
            fields,
            pinned: Arc::default(),
            cursor_key: std::collections::hash_map::RandomState::new(),
        })
    }

    /// The index's single writer (tantivy allows one per index; a second call fails while the
    /// first is alive).
    pub fn writer(&self) -> Result<IndexWriter, IndexError> {
        IndexWriter::new(self.clone(), IncidentConfig::default())
    }

    /// The same, grouping alerts into incidents by `incidents` (its threshold: the alert
    /// threshold of the analyse stage).
    pub fn writer_with(&self, incidents: IncidentConfig) -> Result<IndexWriter, IndexError> {
        IndexWriter::new(self.clone(), incidents)
    }

    /// Number of posts visible to searchers (deletion records and incidents not counted).
    pub fn num_docs(&self) -> u64 {
        let searcher = self.reader.searcher();
        // Deletion records are never deleted, so the term's document frequency is exact.
        let term = tantivy::Term::from_field_text(self.fields.kind, schema::DELETION);
        let deletions = searcher.doc_freq(&term).unwrap_or(0);
        let incidents = self.num_incidents().unwrap_or(0);
        searcher
            .num_docs()
            .saturating_sub(deletions)
            .saturating_sub(incidents)
    }

    /// The payload of the last commit, if any.
    pub fn commit_payload(&self) -> Result<Option<String>, IndexError> {
        Ok(self.index.load_metas()?.payload)
    }

    /// A number that changes whenever searchers see a new commit (of this handle or another
    /// process's): what a page that must stay current watches.
    pub fn generation(&self) -> u64 {
        self.reader.searcher().generation().generation_id()
    }

    /// Makes the last commit visible to searchers of this handle.
    pub fn refresh(&self) -> Result<(), IndexError> {
        Ok(self.reader.reload()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_record::fixtures::scored as envelope;

    #[test]
    fn a_second_writer_is_told_the_writer_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(dir.path()).unwrap();
        let first = index.writer().unwrap();
        let Err(second) = PostIndex::open(dir.path()).unwrap().writer() else {
            panic!("two writers at once");
        };
        assert!(second.is_writer_busy(), "{second}");
        drop(first);
        assert!(index.writer().is_ok());
    }

    fn search(index: &PostIndex, q: &str) -> Vec<Hit> {
        index
            .search(&SearchRequest {
                query: q.into(),
                limit: 10,
                ..SearchRequest::default()
            })
            .unwrap()
    }

    #[test]
    fn upserts_collapse_on_id_and_commit_carries_its_payload() {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(dir.path()).unwrap();
        let mut w = index.writer().unwrap();
        w.upsert(&envelope("1", "warehouse fire in Lyon", 0.9))
            .unwrap();
        w.upsert(&envelope("2", "lovely weather", 0.1)).unwrap();
        w.commit(Some("p1")).unwrap();
        // The same post again, rescored: still one document, with the new score.
        w.upsert(&envelope("1", "warehouse fire in Lyon", 0.7))
            .unwrap();
        w.commit(Some("p2")).unwrap();
        assert_eq!(index.num_docs(), 2);
        let hits = search(&index, "fire");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].score, 0.7);
        assert_eq!(hits[0].provenance.ingestor.name, "mastodon");
        drop(w);

        // Reopened from disk: the documents and the payload of the last commit are there.
        let reopened = PostIndex::open(dir.path()).unwrap();
        assert_eq!(reopened.num_docs(), 2);
        assert_eq!(reopened.commit_payload().unwrap().as_deref(), Some("p2"));
    }

    #[test]
    fn uncommitted_documents_are_invisible_and_bad_queries_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(dir.path()).unwrap();
        let mut w = index.writer().unwrap();
        w.upsert(&envelope("1", "flood", 0.9)).unwrap();
        assert_eq!(index.num_docs(), 0);
        assert!(index.writer().is_err(), "a second writer must be refused");
        let e = index
            .search(&SearchRequest {
                query: "text_en:(unclosed".into(),
                limit: 5,
                ..SearchRequest::default()
            })
            .unwrap_err();
        assert!(matches!(e, IndexError::Query(_)), "{e}");
    }
}
