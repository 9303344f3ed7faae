//! Counting posts over time: the histogram of `GET /v1/stats/histogram`.
//!
//! Posts matching the filters are counted per time bucket (`interval` seconds, aligned on the
//! Unix epoch, by `created_at`), in total and per category (a post counts once in each category
//! it was classified in). Counting reads fast fields only, never the stored posts.

use crate::search::Filters;
use crate::{IndexError, PostIndex};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use tantivy::collector::DocSetCollector;
use tantivy::query::Query;

/// One time bucket of a histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Start of the bucket (inclusive); it ends `interval` later.
    pub start: DateTime<Utc>,
    /// Posts in the bucket.
    pub count: u64,
    /// Posts in the bucket per category.
    pub categories: BTreeMap<String, u64>,
}

impl PostIndex {
    /// The posts matching `query` (tantivy syntax, `*` for all) and `filters`, counted per
    /// `interval_secs` bucket and per category, oldest bucket first; empty buckets are left out.
    pub fn histogram(
        &self,
        query: &str,
        filters: &Filters,
        interval_secs: i64,
    ) -> Result<Vec<Bucket>, IndexError> {
        let interval = interval_secs.max(1);
        let query: Box<dyn Query> = self.build_query(query, filters)?;
        let searcher = self.reader.searcher();
        let docs = searcher.search(&query, &DocSetCollector)?;
        let mut by_segment: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for a in docs {
            by_segment.entry(a.segment_ord).or_default().push(a.doc_id);
        }
        let mut buckets: BTreeMap<i64, Bucket> = BTreeMap::new();
        let mut name = String::new();
        for (segment, docs) in by_segment {
            let fast = searcher.segment_reader(segment).fast_fields();
            let created = fast.date("created_at")?;
            let category = fast.str("category")?;
            for doc in docs {
                let Some(t) = created.first(doc) else {
                    continue;
                };
                let secs = t.into_timestamp_secs();
                let start = secs.div_euclid(interval) * interval;
                let bucket = buckets.entry(start).or_insert_with(|| Bucket {
                    start: DateTime::from_timestamp(start, 0).unwrap_or_default(),
                    count: 0,
                    categories: BTreeMap::new(),
                });
                bucket.count += 1;
                if let Some(category) = &category {
                    for ord in category.term_ords(doc) {
                        if category
                            .ord_to_str(ord, &mut name)
                            .map_err(|e| IndexError::Corrupt(e.to_string()))?
                        {
                            *bucket.categories.entry(name.clone()).or_default() += 1;
                        }
                    }
                }
            }
        }
        Ok(buckets.into_values().collect())
    }

    /// The ids of the posts `query` matches in the last visible commit.
    pub(crate) fn ids_matching(&self, query: &dyn Query) -> Result<Vec<String>, IndexError> {
        let searcher = self.reader.searcher();
        let docs = searcher.search(query, &DocSetCollector)?;
        let mut ids = Vec::with_capacity(docs.len());
        let mut name = String::new();
        for a in docs {
            let column = searcher
                .segment_reader(a.segment_ord)
                .fast_fields()
                .str("id")?
                .ok_or_else(|| IndexError::Corrupt("no id column".into()))?;
            let first = column.term_ords(a.doc_id).next();
            if let Some(ord) = first {
                if column
                    .ord_to_str(ord, &mut name)
                    .map_err(|e| IndexError::Corrupt(e.to_string()))?
                {
                    ids.push(name.clone());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use crate::search::Filters;
    use crate::PostIndex;
    use chrono::{DateTime, Duration, Utc};
    use vigie_record::fixtures::scored;

    #[test]
    fn danger_posts_are_counted_per_hour_and_category_and_old_posts_leave() {
        let t0: DateTime<Utc> = "2026-11-27T10:00:00Z".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(dir.path()).unwrap();
        let mut w = index.writer().unwrap();
        for (n, minutes, danger, category) in [
            (1, 5, 0.9, "fire"),
            (2, 50, 0.8, "flood"),
            (3, 70, 0.7, "fire"),
            (4, 80, 0.1, "fire"),
        ] {
            let mut e = scored(&n.to_string(), "some post", danger);
            e.post.created_at = t0 + Duration::minutes(minutes);
            e.provenance.fetched_at = t0 + Duration::minutes(minutes);
            let s = e.scoring.as_mut().unwrap();
            s.scores.insert(category.into(), danger);
            w.upsert(&e).unwrap();
        }
        w.commit(None).unwrap();
        let filters = Filters {
            min_scores: vec![("danger".into(), 0.5)],
            ..Filters::default()
        };
        let h = index.histogram("*", &filters, 3600).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].start, h[0].count), (t0, 2));
        assert_eq!(h[0].categories["fire"], 1);
        assert_eq!(h[0].categories["flood"], 1);
        assert_eq!((h[1].start, h[1].count), (t0 + Duration::hours(1), 1));
        assert_eq!(h[1].categories.get("flood"), None);

        // Retention: the posts collected before the cutoff leave at the commit, and are named.
        let gone = w
            .delete_collected_before(t0 + Duration::minutes(60))
            .unwrap();
        assert_eq!(gone.len(), 2);
        assert_eq!(index.num_docs(), 4, "not before the commit");
        w.commit(None).unwrap();
        assert_eq!(index.num_docs(), 2);
        assert!(w
            .delete_collected_before(t0 + Duration::minutes(60))
            .unwrap()
            .is_empty());
    }
}
