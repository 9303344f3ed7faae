//! Looking a post up by its Vigie id (an exact term of the `id` field).

use crate::{IndexError, PostIndex};
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{TantivyDocument, Term};
use vigie_record::Envelope;

impl PostIndex {
    /// The whole envelope of post `id` (post, provenance, Kafka coordinates, scoring), if the
    /// index holds it in its last visible commit.
    pub fn get(&self, id: &str) -> Result<Option<Envelope>, IndexError> {
        let Some(json) = self.stored_json(self.fields.id, id, self.fields.envelope)? else {
            return Ok(None);
        };
        Envelope::from_json(json.as_bytes())
            .map(Some)
            .map_err(|e| IndexError::Corrupt(e.to_string()))
    }

    /// The stored JSON field `json` of the document whose exact term `key` is `value`, in the
    /// last visible commit.
    pub(crate) fn stored_json(
        &self,
        key: Field,
        value: &str,
        json: Field,
    ) -> Result<Option<String>, IndexError> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(Term::from_field_text(key, value), IndexRecordOption::Basic);
        let top = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
        let Some((_, address)) = top.into_iter().next() else {
            return Ok(None);
        };
        let doc: TantivyDocument = searcher.doc(address)?;
        doc.get_first(json)
            .and_then(|v| v.as_str())
            .map(|s| Some(s.to_string()))
            .ok_or_else(|| IndexError::Corrupt("a document without its stored JSON".into()))
    }
}

#[cfg(test)]
mod tests {
    use crate::PostIndex;
    use vigie_record::fixtures::scored;

    #[test]
    fn a_post_is_found_by_its_id_only() {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(dir.path()).unwrap();
        let fire = scored("1", "warehouse fire in Lyon", 0.9);
        let mut w = index.writer().unwrap();
        w.upsert(&fire).unwrap();
        w.upsert(&scored("2", "lovely weather", 0.1)).unwrap();
        w.commit(None).unwrap();
        assert_eq!(index.get(fire.post.id.as_str()).unwrap(), Some(fire));
        assert_eq!(index.get("no-such-id").unwrap(), None);
    }
}
