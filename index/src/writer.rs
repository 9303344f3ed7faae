//! Writing envelopes: upsert by Vigie id, deletions (see [`crate::deletion`]), atomic commits
//! with a payload.

use crate::deletion::DeletionRecord;
use crate::near_dup::{self, MAX_CANDIDATES, SIMILARITY};
use crate::{schema, IndexError, PostIndex};
use chrono::{DateTime as ChronoTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, OwnedValue, Value};
use tantivy::{DateTime, TantivyDocument, Term};
use vigie_record::{Deletion, Envelope};
use vigie_situation::incidents::{Incident, IncidentConfig, Incidents};

/// The memory tantivy may use for buffering documents before it writes a segment.
const WRITER_MEMORY: usize = 50_000_000;

impl PostIndex {
    /// The ids of the posts Vigie collected (provenance `fetched_at`) strictly before `cutoff`
    /// in the last visible commit: what [`IndexWriter::delete_collected_before`] would delete
    /// (deletion records have no collection time: retention never removes them). Retention
    /// counts from collection, not from the date the source claims: a replayed archive is kept
    /// its full period, and a post claiming a date in the future is not kept for ever.
    pub fn collected_before(&self, cutoff: ChronoTime<Utc>) -> Result<Vec<String>, IndexError> {
        self.ids_matching(&self.collected_before_query(cutoff))
    }

    fn collected_before_query(&self, cutoff: ChronoTime<Utc>) -> RangeQuery {
        let upper = Term::from_field_date(
            self.fields.fetched_at,
            DateTime::from_timestamp_secs(cutoff.timestamp()),
        );
        RangeQuery::new(Bound::Unbounded, Bound::Excluded(upper))
    }
}

/// The single writer of a [`PostIndex`].
pub struct IndexWriter {
    index: PostIndex,
    inner: tantivy::IndexWriter,
    /// Posts added since the last commit (not yet searchable), for near-duplicate lookup.
    pending: Vec<Pending>,
    /// Their band keys: band -> indices into `pending` (at most [`BUCKET`] each).
    pending_bands: HashMap<u64, Vec<usize>>,
    /// Deletions since the last commit, by Vigie id: their records are added at the commit.
    pending_deletions: BTreeMap<String, Deletion>,
    /// The open incidents, fed every post (see [`crate::incidents`]).
    incidents: Incidents,
    /// Closed incidents changed since the last commit (a post of theirs left), by id.
    closed_edits: BTreeMap<String, Incident>,
}

/// What [`IndexWriter::upsert`] did with a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// The post is written (replacing any document with its id) at the next commit.
    Indexed,
    /// Refused: the post was deleted at its source (a deletion record, or one pending).
    Deleted,
}

/// A post added since the last commit.
struct Pending {
    words: BTreeSet<String>,
    group: String,
}

/// Most uncommitted posts remembered per band key.
const BUCKET: usize = 8;

impl IndexWriter {
    pub(crate) fn new(index: PostIndex, incidents: IncidentConfig) -> Result<Self, IndexError> {
        let inner = index.index.writer(WRITER_MEMORY)?;
        let open = index.open_incidents()?;
        Ok(IndexWriter {
            index,
            inner,
            pending: Vec::new(),
            pending_bands: HashMap::new(),
            pending_deletions: BTreeMap::new(),
            incidents: Incidents::resume(incidents, open),
            closed_edits: BTreeMap::new(),
        })
    }

    /// The open incidents, as of the posts given so far (committed or not).
    pub fn incidents(&self) -> &Incidents {
        &self.incidents
    }

    /// Takes post `id` out of the incident it is in, open or closed.
    fn leave_incident(&mut self, id: &str) -> Result<(), IndexError> {
        if self.incidents.incident_of(id).is_some() {
            self.incidents.remove_post(id);
            return Ok(());
        }
        let edited = self
            .closed_edits
            .values()
            .find(|i| i.members.iter().any(|m| m.id == id))
            .cloned();
        if let Some(mut incident) = edited.or(self.index.incident_with_member(id)?) {
            incident.remove_post(id);
            self.closed_edits.insert(incident.id.clone(), incident);
        }
        Ok(())
    }

    /// Whether post `id` was deleted at its source: a committed or pending deletion record.
    pub fn is_deleted(&self, id: &str) -> Result<bool, IndexError> {
        Ok(self.pending_deletions.contains_key(id) || self.index.has_deletion(id)?)
    }

    /// Removes, once committed, every document of the deleted post, and records the deletion
    /// in the same commit (unless a record exists already: the first is kept).
    pub fn delete(&mut self, deletion: &Deletion) -> Result<(), IndexError> {
        let id = deletion.tombstone.id.as_str();
        let f = &self.index.fields;
        self.inner.delete_term(Term::from_field_text(f.id, id));
        self.leave_incident(id)?;
        if !self.is_deleted(id)? {
            self.pending_deletions
                .insert(id.to_string(), deletion.clone());
        }
        Ok(())
    }

    /// Adds `envelope`, replacing any document with the same Vigie id once committed; refuses
    /// it when the post was deleted at its source.
    pub fn upsert(&mut self, envelope: &Envelope) -> Result<Upsert, IndexError> {
        let f = &self.index.fields;
        let post = &envelope.post;
        if self.is_deleted(post.id.as_str())? {
            return Ok(Upsert::Deleted);
        }
        self.inner
            .delete_term(Term::from_field_text(f.id, post.id.as_str()));
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, post.id.as_str());
        let text_field = if schema::is_french(post.lang.as_deref()) {
            f.text_fr
        } else {
            f.text_en
        };
        doc.add_text(text_field, &post.text);
        doc.add_text(f.source, &post.source);
        if let Some(lang) = &post.lang {
            doc.add_text(f.lang, lang);
        }
        doc.add_date(
            f.created_at,
            DateTime::from_timestamp_secs(post.created_at.timestamp()),
        );
        doc.add_date(
            f.fetched_at,
            DateTime::from_timestamp_secs(envelope.provenance.fetched_at.timestamp()),
        );
        let danger = envelope.scoring.as_ref().map_or(0.0, |s| s.danger());
        doc.add_f64(f.danger, f64::from(danger));
        if let Some(scoring) = &envelope.scoring {
            let mut scores = BTreeMap::new();
            for (label, score) in &scoring.scores {
                scores.insert(label.clone(), OwnedValue::F64(f64::from(*score)));
                if label != "danger" && *score >= schema::CATEGORY_THRESHOLD {
                    doc.add_text(f.category, label);
                }
            }
            doc.add_object(f.scores, scores);
        }
        for place in envelope.places.iter().flatten() {
            for key in vigie_record::geo::cell_keys(&place.point()) {
                doc.add_u64(f.geo_cell, key);
            }
        }
        let words = near_dup::words(&post.text);
        let bands = near_dup::bands(&words);
        let group = self.group_for(post.id.as_str(), &words, &bands)?;
        doc.add_text(f.group, &group);
        doc.add_u64(f.group_key, near_dup::fnv1a(group.as_bytes()));
        for band in &bands {
            doc.add_u64(f.dup_band, *band);
        }
        doc.add_text(
            f.dup_words,
            words
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        );
        let slot = self.pending.len();
        self.pending.push(Pending { words, group });
        for band in bands {
            let bucket = self.pending_bands.entry(band).or_default();
            if bucket.len() < BUCKET {
                bucket.push(slot);
            }
        }
        doc.add_text(
            f.envelope,
            String::from_utf8(envelope.to_json()).expect("JSON is UTF-8"),
        );
        self.inner.add_document(doc)?;
        self.incidents.observe(envelope);
        Ok(Upsert::Indexed)
    }

    /// Deletes, once committed, every post collected strictly before `cutoff` (see
    /// [`PostIndex::collected_before`]), and returns their ids as the last visible commit holds
    /// them (the retention of `vigie retention enforce`).
    pub fn delete_collected_before(
        &mut self,
        cutoff: ChronoTime<Utc>,
    ) -> Result<Vec<String>, IndexError> {
        let query = self.index.collected_before_query(cutoff);
        let ids = self.index.ids_matching(&query)?;
        if !ids.is_empty() {
            self.inner.delete_query(Box::new(query))?;
        }
        for id in &ids {
            self.leave_incident(id)?;
        }
        Ok(ids)
    }

    /// The near-duplicate group of a post with `words` (see [`near_dup`]): that of its most
    /// similar earlier post, committed or pending, when similar enough; else its own `id`.
    fn group_for(
        &self,
        id: &str,
        words: &BTreeSet<String>,
        bands: &[u64],
    ) -> Result<String, IndexError> {
        if bands.is_empty() {
            return Ok(id.to_string());
        }
        let mut best: Option<(f64, String)> = None;
        let mut consider = |similarity: f64, group: &str| {
            if similarity >= SIMILARITY && best.as_ref().is_none_or(|(s, _)| similarity > *s) {
                best = Some((similarity, group.to_string()));
            }
        };
        let mut seen = BTreeSet::new();
        for band in bands {
            for slot in self.pending_bands.get(band).into_iter().flatten() {
                if seen.len() < MAX_CANDIDATES && seen.insert(*slot) {
                    let p = &self.pending[*slot];
                    consider(near_dup::jaccard(words, &p.words), &p.group);
                }
            }
        }
        let f = &self.index.fields;
        let clauses: Vec<(Occur, Box<dyn Query>)> = bands
            .iter()
            .map(|b| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_u64(f.dup_band, *b),
                    IndexRecordOption::Basic,
                ));
                (Occur::Should, q)
            })
            .collect();
        let searcher = self.index.reader.searcher();
        let top = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(MAX_CANDIDATES).order_by_score(),
        )?;
        for (_, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let text = |field| doc.get_first(field).and_then(|v| v.as_str()).unwrap_or("");
            let other: BTreeSet<String> = text(f.dup_words)
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect();
            let group = match text(f.group) {
                "" => text(f.id),
                g => g,
            };
            consider(near_dup::jaccard(words, &other), group);
        }
        Ok(best.map_or_else(|| id.to_string(), |(_, g)| g))
    }

    /// Commits everything added since the last commit, atomically with `payload`, and makes it
    /// visible to searchers.
    pub fn commit(&mut self, payload: Option<&str>) -> Result<(), IndexError> {
        let committed_at = Utc::now();
        for deletion in std::mem::take(&mut self.pending_deletions).into_values() {
            let doc = self.index.deletion_document(&DeletionRecord {
                tombstone: deletion.tombstone,
                kafka: deletion.kafka,
                committed_at,
            })?;
            self.inner.add_document(doc)?;
        }
        let mut changed: BTreeMap<String, Incident> = std::mem::take(&mut self.closed_edits);
        changed.extend(
            self.incidents
                .take_changed()
                .into_iter()
                .map(|i| (i.id.clone(), i)),
        );
        for incident in changed.values() {
            let f = &self.index.fields;
            self.inner
                .delete_term(Term::from_field_text(f.incident_id, &incident.id));
            let doc = self.index.incident_document(incident, committed_at)?;
            self.inner.add_document(doc)?;
        }
        let mut prepared = self.inner.prepare_commit()?;
        if let Some(payload) = payload {
            prepared.set_payload(payload);
        }
        prepared.commit()?;
        self.pending.clear();
        self.pending_bands.clear();
        self.index.refresh()
    }

    /// Closes the writer once the merges it started are done, so that the index is left with
    /// the few large segments the merge policy aims at (searches cost less per segment). Work
    /// not committed is dropped.
    pub fn wait_merges(self) -> Result<(), IndexError> {
        self.inner.wait_merging_threads()?;
        self.index.refresh()
    }
}
