//! Incidents in the index: documents of their own, written in the same commits as the posts.
//!
//! The index writer keeps the open incidents in memory ([`vigie_situation::Incidents`]) and
//! gives it every post it indexes (see [`crate::IndexWriter::upsert`]). At each commit the
//! incidents that changed are written as documents (`kind` = `incident`, upserted by incident
//! id), in the same atomic write as the posts that changed them and the caller's checkpoint. So:
//!
//! - **They survive restarts, and never disagree with the posts.** A new writer resumes from the
//!   open incidents of the last commit; what was not committed is read again from Kafka (or
//!   replayed) and grouped again, in the same order, to the same incidents.
//! - **Deletions and retention reach them.** A post deleted at its source or past retention
//!   leaves its incident in the same commit, open or closed (an incident left with no post is
//!   closed); its text never stays behind in a title.
//! - **They are never search hits**, histogram counts or [`crate::PostIndex::get`] answers;
//!   [`crate::PostIndex::num_docs`] does not count them.

use crate::{IndexError, PostIndex};
use chrono::{DateTime, Utc};
use std::ops::Bound;
use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{Order, TantivyDocument, Term};
use vigie_record::Near;
use vigie_situation::incidents::{Incident, Status};

/// Which incidents [`PostIndex::incidents`] lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentFilter {
    /// Last post at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Of this category (its most frequent) or family.
    pub category: Option<String>,
    /// One of its posts' places is in this disc.
    pub near: Option<Near>,
    /// Open or closed only.
    pub status: Option<Status>,
    /// At most this many (newest activity first).
    pub limit: usize,
}

/// One incident as a change feed sees it: the incident and when the writer wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedIncident {
    /// The incident, as that commit left it.
    pub incident: Incident,
    /// The time of the commit that wrote it (the writer's clock).
    pub changed: DateTime<Utc>,
}

fn micros(t: DateTime<Utc>) -> tantivy::DateTime {
    tantivy::DateTime::from_timestamp_micros(t.timestamp_micros())
}

fn term_query(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

impl PostIndex {
    /// The document of `incident`.
    pub(crate) fn incident_document(
        &self,
        incident: &Incident,
        changed: DateTime<Utc>,
    ) -> Result<TantivyDocument, IndexError> {
        let f = &self.fields;
        let json = serde_json::to_string(incident)
            .map_err(|e| IndexError::Corrupt(format!("incident: {e}")))?;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.kind, crate::schema::INCIDENT);
        doc.add_text(f.incident_id, &incident.id);
        for m in &incident.members {
            doc.add_text(f.incident_member, &m.id);
            for key in m
                .place
                .iter()
                .flat_map(|p| vigie_record::geo::cell_keys(&p.point()).collect::<Vec<_>>())
            {
                doc.add_u64(f.geo_cell, key);
            }
        }
        doc.add_text(f.incident_tag, incident.status.as_str());
        doc.add_text(f.incident_tag, &incident.category);
        doc.add_text(f.incident_tag, &incident.family);
        doc.add_date(
            f.incident_last,
            tantivy::DateTime::from_timestamp_secs(incident.last_seen.timestamp()),
        );
        doc.add_date(f.incident_changed, micros(changed));
        doc.add_text(f.incident, json);
        Ok(doc)
    }

    fn incident_of_doc(&self, doc: &TantivyDocument) -> Result<Incident, IndexError> {
        let json = doc
            .get_first(self.fields.incident)
            .and_then(|v| v.as_str())
            .ok_or_else(|| IndexError::Corrupt("an incident without its JSON".into()))?;
        serde_json::from_str(json).map_err(|e| IndexError::Corrupt(format!("incident: {e}")))
    }

    /// Incident `id`, as the last visible commit holds it.
    pub fn incident(&self, id: &str) -> Result<Option<Incident>, IndexError> {
        self.stored_json(self.fields.incident_id, id, self.fields.incident)?
            .map(|json| {
                serde_json::from_str(&json)
                    .map_err(|e| IndexError::Corrupt(format!("incident: {e}")))
            })
            .transpose()
    }

    /// The incident post `id` is in (open or closed), if any.
    pub fn incident_with_member(&self, id: &str) -> Result<Option<Incident>, IndexError> {
        self.stored_json(self.fields.incident_member, id, self.fields.incident)?
            .map(|json| {
                serde_json::from_str(&json)
                    .map_err(|e| IndexError::Corrupt(format!("incident: {e}")))
            })
            .transpose()
    }

    /// The incidents `filter` asks for, newest activity first, and how many match in all.
    pub fn incidents(&self, filter: &IncidentFilter) -> Result<(Vec<Incident>, usize), IndexError> {
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Must,
            term_query(Term::from_field_text(f.kind, crate::schema::INCIDENT)),
        )];
        if let Some(status) = filter.status {
            let tag = Term::from_field_text(f.incident_tag, status.as_str());
            clauses.push((Occur::Must, term_query(tag)));
        }
        if let Some(c) = &filter.category {
            clauses.push((
                Occur::Must,
                term_query(Term::from_field_text(f.incident_tag, c)),
            ));
        }
        if let Some(since) = filter.since {
            let t = Term::from_field_date(
                f.incident_last,
                tantivy::DateTime::from_timestamp_secs(since.timestamp()),
            );
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(Bound::Included(t), Bound::Unbounded)),
            ));
        }
        if let Some(near) = &filter.near {
            let cells = near
                .covering()
                .into_iter()
                .map(|k| Term::from_field_u64(f.geo_cell, k));
            clauses.push((Occur::Must, Box::new(TermSetQuery::new(cells))));
        }
        let searcher = self.reader.searcher();
        let limit = filter.limit.clamp(1, 10_000);
        let (total, top) = searcher.search(
            &BooleanQuery::new(clauses),
            &(
                Count,
                TopDocs::with_limit(limit)
                    .order_by_fast_field::<tantivy::DateTime>("incident_last", Order::Desc),
            ),
        )?;
        let mut out = Vec::with_capacity(top.len());
        for (_, address) in top {
            out.push(self.incident_of_doc(&searcher.doc(address)?)?);
        }
        // Equal last-post times: the most recently opened first, then by id (stable pages).
        out.sort_by(|a, b| {
            (b.last_seen, b.first_seen, &a.id).cmp(&(a.last_seen, a.first_seen, &b.id))
        });
        Ok((out, total))
    }

    /// Every incident written at or after `since` (by the writer's commit time), oldest change
    /// first, at most `limit`: the change feed of alert dispatchers (`vigie_alerts`). A commit
    /// becomes visible a little after the time it records, so a reader that polls should ask
    /// again from a little before its last poll (and tell apart what it saw by
    /// [`Incident::revision`]).
    pub fn incidents_changed_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ChangedIncident>, IndexError> {
        let f = &self.fields;
        let from = Term::from_field_date(f.incident_changed, micros(since));
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                term_query(Term::from_field_text(f.kind, crate::schema::INCIDENT)),
            ),
            (
                Occur::Must,
                Box::new(RangeQuery::new(Bound::Included(from), Bound::Unbounded)),
            ),
        ]);
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &query,
            &TopDocs::with_limit(limit.clamp(1, 100_000))
                .order_by_fast_field::<tantivy::DateTime>("incident_changed", Order::Asc),
        )?;
        let mut out = Vec::with_capacity(top.len());
        for (changed, address) in top {
            let incident = self.incident_of_doc(&searcher.doc(address)?)?;
            let changed = changed
                .and_then(|t| DateTime::from_timestamp_micros(t.into_timestamp_micros()))
                .ok_or_else(|| IndexError::Corrupt("an incident's change time".into()))?;
            out.push(ChangedIncident { incident, changed });
        }
        Ok(out)
    }

    /// Of the posts `ids`, those that query `q` matches (the query syntax of search). For
    /// standing searches: an incident matches a watch's words when one of its posts does.
    pub fn posts_matching(
        &self,
        ids: &[String],
        q: &str,
    ) -> Result<std::collections::BTreeSet<String>, IndexError> {
        let f = &self.fields;
        let id_terms = ids.iter().map(|id| Term::from_field_text(f.id, id));
        let query = BooleanQuery::new(vec![
            (Occur::Must, self.parse(q)?),
            (Occur::Must, Box::new(TermSetQuery::new(id_terms))),
        ]);
        Ok(self.ids_matching(&query)?.into_iter().collect())
    }

    /// Every open incident of the last commit (what a new writer resumes from).
    pub(crate) fn open_incidents(&self) -> Result<Vec<Incident>, IndexError> {
        let f = &self.fields;
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                term_query(Term::from_field_text(f.kind, crate::schema::INCIDENT)),
            ),
            (
                Occur::Must,
                term_query(Term::from_field_text(f.incident_tag, Status::Open.as_str())),
            ),
        ]);
        let searcher = self.reader.searcher();
        let mut open = Vec::new();
        for address in searcher.search(&query, &DocSetCollector)? {
            open.push(self.incident_of_doc(&searcher.doc(address)?)?);
        }
        open.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(open)
    }

    /// Number of incident documents in the last visible commit.
    pub fn num_incidents(&self) -> Result<u64, IndexError> {
        let q = TermQuery::new(
            Term::from_field_text(self.fields.kind, crate::schema::INCIDENT),
            IndexRecordOption::Basic,
        );
        Ok(self.reader.searcher().search(&q, &Count)? as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SearchRequest;
    use vigie_record::fixtures::{scored, tombstone};
    use vigie_record::{Deletion, Envelope, Place, PlaceFound};

    fn fire(n: u32, minutes: i64, text: &str) -> Envelope {
        let mut e = scored(&n.to_string(), text, 0.9);
        e.post.created_at = "2026-11-27T08:00:00Z".parse::<DateTime<Utc>>().unwrap()
            + chrono::Duration::minutes(minutes);
        e.scoring
            .as_mut()
            .unwrap()
            .scores
            .insert("fire".into(), 0.9);
        e.places = Some(vec![Place {
            name: "Lyon".into(),
            country: "FR".into(),
            lat: 45.748,
            lon: 4.847,
            confidence: 0.9,
            found: PlaceFound::Text,
            mention: Some("Lyon".into()),
            geonames_id: Some(2996944),
        }]);
        e
    }

    #[test]
    fn the_change_feed_lists_what_each_commit_wrote_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(dir.path()).unwrap();
        let mut w = index.writer().unwrap();
        let before = Utc::now();
        w.upsert(&fire(1, 0, "Incendie entrepôt à Lyon")).unwrap();
        w.commit(None).unwrap();
        let feed = index.incidents_changed_since(before, 100).unwrap();
        assert_eq!(feed.len(), 1);
        let first = feed[0].clone();
        assert!(first.changed >= before, "{} < {before}", first.changed);
        // Nothing new since that commit.
        let after_first = first.changed + chrono::Duration::microseconds(1);
        assert!(index
            .incidents_changed_since(after_first, 100)
            .unwrap()
            .is_empty());
        // A commit that makes it grow writes it again, with a later time and revision.
        w.upsert(&fire(2, 10, "Incendie entrepôt Lyon, fumée noire"))
            .unwrap();
        w.commit(None).unwrap();
        let feed = index.incidents_changed_since(after_first, 100).unwrap();
        assert_eq!(feed.len(), 1);
        assert_eq!(feed[0].incident.id, first.incident.id);
        assert!(feed[0].changed > first.changed);
        assert!(feed[0].incident.revision > first.incident.revision);
        // A commit that does not touch it does not list it.
        let later = feed[0].changed + chrono::Duration::microseconds(1);
        w.upsert(&scored("3", "quiet day", 0.1)).unwrap();
        w.commit(None).unwrap();
        assert!(index
            .incidents_changed_since(later, 100)
            .unwrap()
            .is_empty());
        // Standing searches: which of an incident's posts a query matches.
        let members: Vec<String> = feed[0]
            .incident
            .members
            .iter()
            .map(|m| m.id.clone())
            .collect();
        let smoke = index.posts_matching(&members, "fumée").unwrap();
        assert_eq!(smoke.len(), 1);
        assert_eq!(index.posts_matching(&members, "entrepôt").unwrap().len(), 2);
        assert!(index.posts_matching(&members, "flood").unwrap().is_empty());
        // The quiet post matches "day" but is not a member.
        assert!(index.posts_matching(&members, "day").unwrap().is_empty());
        assert!(index.posts_matching(&members, "(((").is_err());
    }

    #[test]
    fn incidents_are_committed_with_the_posts_and_resumed_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(dir.path()).unwrap();
        let mut w = index.writer().unwrap();
        w.upsert(&fire(1, 0, "Incendie entrepôt à Lyon")).unwrap();
        w.upsert(&scored("2", "quiet day", 0.1)).unwrap();
        // Not committed: not there.
        assert_eq!(index.num_incidents().unwrap(), 0);
        w.commit(Some("p1")).unwrap();
        drop(w);
        let (all, total) = index
            .incidents(&IncidentFilter {
                limit: 10,
                ..IncidentFilter::default()
            })
            .unwrap();
        assert_eq!((all.len(), total), (1, 1));
        let id = all[0].id.clone();
        // Incidents are neither posts nor hits.
        assert_eq!(index.num_docs(), 2);
        let hits = index
            .search(&SearchRequest {
                query: "*".into(),
                limit: 10,
                ..SearchRequest::default()
            })
            .unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(index.get(&id).unwrap(), None);
        // A new writer resumes the open incident: the next post joins it.
        let mut w = index.writer().unwrap();
        w.upsert(&fire(3, 30, "Incendie entrepôt Lyon, fumée"))
            .unwrap();
        w.commit(None).unwrap();
        let inc = index.incident(&id).unwrap().unwrap();
        assert_eq!(inc.members.len(), 2);
        assert_eq!(index.num_incidents().unwrap(), 1);
        // Filters.
        let some = |f: IncidentFilter| {
            index
                .incidents(&IncidentFilter { limit: 10, ..f })
                .unwrap()
                .1
        };
        assert_eq!(
            some(IncidentFilter {
                category: Some("fire".into()),
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            some(IncidentFilter {
                category: Some("fire_explosion".into()),
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            some(IncidentFilter {
                category: Some("accident".into()),
                ..Default::default()
            }),
            0
        );
        assert_eq!(
            some(IncidentFilter {
                status: Some(Status::Closed),
                ..Default::default()
            }),
            0
        );
        assert_eq!(
            some(IncidentFilter {
                near: Some("45.76,4.88,10".parse().unwrap()),
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            some(IncidentFilter {
                near: Some("43.3,5.4,10".parse().unwrap()),
                ..Default::default()
            }),
            0
        );
        let late = "2026-11-27T09:00:00Z".parse().ok();
        assert_eq!(
            some(IncidentFilter {
                since: late,
                ..Default::default()
            }),
            0
        );
    }

    #[test]
    fn a_deleted_post_leaves_its_incident_open_or_closed_with_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(dir.path()).unwrap();
        let mut w = index.writer().unwrap();
        let first = fire(1, 0, "Incendie entrepôt à Lyon, secret text");
        w.upsert(&first).unwrap();
        w.upsert(&fire(2, 10, "Incendie entrepôt Lyon")).unwrap();
        // 13 hours later: the first incident closes, a second opens.
        w.upsert(&fire(3, 13 * 60, "Incendie entrepôt Lyon encore"))
            .unwrap();
        w.commit(None).unwrap();
        let closed = index
            .incident_with_member(first.post.id.as_str())
            .unwrap()
            .unwrap();
        assert_eq!(closed.status, Status::Closed);
        assert!(closed.title.contains("secret"));
        assert!(closed.terms.is_empty(), "a closed incident keeps no words");
        w.delete(&Deletion::from(tombstone("1", "2026-11-27T10:00:00Z")))
            .unwrap();
        w.commit(None).unwrap();
        let after = index.incident(&closed.id).unwrap().unwrap();
        assert_eq!(after.members.len(), 1);
        assert!(!after.title.contains("secret"), "{}", after.title);
        assert!(index
            .incident_with_member(first.post.id.as_str())
            .unwrap()
            .is_none());
    }
}
