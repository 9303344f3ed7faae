//! Writing envelopes: upsert by Vigie id, atomic commits with a payload.

use crate::{IndexError, PostIndex};
use tantivy::{DateTime, TantivyDocument, Term};
use vigie_record::Envelope;

/// The memory tantivy may use for buffering documents before it writes a segment.
const WRITER_MEMORY: usize = 50_000_000;

/// The single writer of a [`PostIndex`].
pub struct IndexWriter {
    index: PostIndex,
    inner: tantivy::IndexWriter,
}

impl IndexWriter {
    pub(crate) fn new(index: PostIndex) -> Result<Self, IndexError> {
        let inner = index.index.writer(WRITER_MEMORY)?;
        Ok(IndexWriter { index, inner })
    }

    /// Adds `envelope`, replacing any document with the same Vigie id once committed.
    pub fn upsert(&mut self, envelope: &Envelope) -> Result<(), IndexError> {
        let f = &self.index.fields;
        let post = &envelope.post;
        self.inner
            .delete_term(Term::from_field_text(f.id, post.id.as_str()));
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, post.id.as_str());
        doc.add_text(f.text, &post.text);
        doc.add_text(f.source, &post.source);
        if let Some(lang) = &post.lang {
            doc.add_text(f.lang, lang);
        }
        doc.add_date(
            f.created_at,
            DateTime::from_timestamp_secs(post.created_at.timestamp()),
        );
        let danger = envelope.scoring.as_ref().map_or(0.0, |s| s.danger());
        doc.add_f64(f.danger, f64::from(danger));
        doc.add_text(
            f.envelope,
            String::from_utf8(envelope.to_json()).expect("JSON is UTF-8"),
        );
        self.inner.add_document(doc)?;
        Ok(())
    }

    /// Commits everything added since the last commit, atomically with `payload`, and makes it
    /// visible to searchers.
    pub fn commit(&mut self, payload: Option<&str>) -> Result<(), IndexError> {
        let mut prepared = self.inner.prepare_commit()?;
        if let Some(payload) = payload {
            prepared.set_payload(payload);
        }
        prepared.commit()?;
        self.index.refresh()
    }
}
