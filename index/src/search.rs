//! Searching posts: a query, filters, an order, and pages reached by an opaque cursor.
//!
//! ## Paging guarantee
//! A [`Cursor`] names the index snapshot (tantivy searcher generation) its first page was read
//! from, the position reached, and a fingerprint of the request. The snapshot is kept pinned
//! (the last [`PINNED`] snapshots searched are), so paging through a result with successive
//! cursors returns every hit exactly once, in a stable order, even while new commits land. A
//! cursor whose snapshot is no longer pinned, or used with another query, filter or order, is
//! refused ([`IndexError::Cursor`]) rather than silently skipping or repeating hits.
//!
//! ## Cursors cannot be forged
//! A cursor carries a tag: SipHash, keyed with a random key drawn when the index is opened, of
//! its snapshot, position and fingerprint. A cursor whose tag does not match (a caller raised the
//! position, or made one up) is refused before the index is touched, and a position past the end
//! of its snapshot is refused too, so no request can make the collector allocate more than the
//! index holds (tantivy allocates a page's top-k buffer up front: a position of 10^13 aborted the
//! process). Cursors therefore do not survive a restart, like the pinned snapshots they name.
//!
//! ## Query limits
//! The query text is parsed by a recursive parser: a query longer than [`MAX_QUERY_BYTES`] or
//! nested deeper than [`MAX_QUERY_DEPTH`] is refused ([`IndexError::QueryLimit`]) before it is
//! parsed, so that no query can overflow the stack of the thread that runs it.
//!
//! Within one order, ties are broken by document address, which is fixed within a snapshot.
//!
//! ## Collapsing near-duplicates
//! With [`SearchRequest::collapse`], a page holds the first hit (in the order asked) of each
//! near-duplicate group ([`crate::near_dup`]) not shown on an earlier page; the cursor then
//! marks a position in the uncollapsed order, so paging still shows each group exactly once.
//! Every hit carries its group's id, copy count, first-seen time and sources.

use crate::{IndexError, PostIndex};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{
    BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, DocSet, Order, Searcher, TantivyDocument, Term};
use vigie_record::{Contribution, Envelope, KafkaCoords, Near, Place, Provenance};

/// Documents in order, with their relevance.
type Ranked = Vec<(f32, DocAddress)>;

/// How many index snapshots stay pinned for cursors.
pub const PINNED: usize = 8;

/// The longest query text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;

/// The deepest nesting of parentheses accepted in a query, and the most `NOT` operators.
pub const MAX_QUERY_DEPTH: usize = 32;

/// Refuses a query text the parser could not safely handle: too long, or nested too deep.
/// Every `(` counts, even quoted or escaped: the lenient parser that names a syntax error's
/// position may read a broken phrase as parentheses.
pub fn check_query_limits(text: &str) -> Result<(), IndexError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(IndexError::QueryLimit(format!(
            "the query is {} bytes long; at most {MAX_QUERY_BYTES} are accepted",
            text.len()
        )));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_QUERY_DEPTH {
        return Err(IndexError::QueryLimit(format!(
            "the query nests parentheses {deepest} deep; at most {MAX_QUERY_DEPTH} are accepted"
        )));
    }
    // Each `NOT` is one more level of the parser's recursion (a thousand overflow its stack).
    let nots = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|word| *word == "NOT")
        .count();
    if nots > MAX_QUERY_DEPTH {
        return Err(IndexError::QueryLimit(format!(
            "the query has {nots} `NOT` operators; at most {MAX_QUERY_DEPTH} are accepted"
        )));
    }
    Ok(())
}

/// The order of hits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Sort {
    /// BM25 relevance to the query, best first (the default).
    #[default]
    Relevance,
    /// `danger` score, highest first.
    Score,
    /// Creation time, newest first.
    Time,
}

/// Conditions every hit must meet besides the query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created strictly before.
    pub to: Option<DateTime<Utc>>,
    /// `(label, minimum)`: the post's score for `label` is at least `minimum`.
    pub min_scores: Vec<(String, f32)>,
    /// A category the post was classified in (its score reaches
    /// [`CATEGORY_THRESHOLD`](crate::CATEGORY_THRESHOLD)).
    pub category: Option<String>,
    /// Source kind (`mastodon`, `rss`...).
    pub source: Option<String>,
    /// Language code, as the ingestor recorded it (`en`, `fr`).
    pub lang: Option<String>,
    /// One of the post's places is in this disc (to within the covering's edge cells: see
    /// `vigie_record::geo`).
    pub near: Option<Near>,
}

/// A search: query text in tantivy syntax over the post text, filters, order, page size and
/// where to continue.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// tantivy query syntax, e.g. `fire AND warehouse`; `*` for every post.
    pub query: String,
    /// Maximum number of hits (1 or more).
    pub limit: usize,
    /// Conditions on the hits.
    pub filters: Filters,
    /// Order of the hits.
    pub sort: Sort,
    /// Where the previous page ended (absent for the first page).
    pub cursor: Option<Cursor>,
    /// One hit per near-duplicate group (its first in the order), with the group's copy
    /// count, first-seen time and sources.
    pub collapse: bool,
}

impl SearchRequest {
    fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.query.hash(&mut h);
        self.limit.hash(&mut h);
        self.sort.hash(&mut h);
        self.collapse.hash(&mut h);
        let f = &self.filters;
        (f.from, f.to, &f.category, &f.source, &f.lang).hash(&mut h);
        f.near.map(|n| n.to_string()).hash(&mut h);
        for (label, min) in &f.min_scores {
            (label, min.to_bits()).hash(&mut h);
        }
        h.finish()
    }
}

/// Where a page ended: opaque to callers (`c2.<snapshot>.<position>.<fingerprint>.<tag>`,
/// hex); the tag makes it unforgeable (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    generation: u64,
    offset: usize,
    fingerprint: u64,
    tag: u64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "c2.{:x}.{:x}.{:016x}.{:016x}",
            self.generation, self.offset, self.fingerprint, self.tag
        )
    }
}

impl std::str::FromStr for Cursor {
    type Err = IndexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            IndexError::Cursor(format!(
                "`{s}` is not a cursor of this server: pass back the `next` value of the previous \
                 page unchanged"
            ))
        };
        let mut parts = s.split('.');
        if parts.next() != Some("c2") {
            return Err(bad());
        }
        let mut next = || parts.next().and_then(|p| u64::from_str_radix(p, 16).ok());
        let (generation, offset, fingerprint, tag) = (
            next().ok_or_else(bad)?,
            next().ok_or_else(bad)?,
            next().ok_or_else(bad)?,
            next().ok_or_else(bad)?,
        );
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Cursor {
            generation,
            offset: usize::try_from(offset).map_err(|_| bad())?,
            fingerprint,
            tag,
        })
    }
}

/// One page of hits.
#[derive(Debug, Clone)]
pub struct SearchPage {
    /// The hits, in the requested order.
    pub hits: Vec<Hit>,
    /// How many posts match in all.
    pub total: usize,
    /// The cursor of the next page; absent on the last page.
    pub next: Option<Cursor>,
}

/// One post found, with its scores, explanation and provenance.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// Vigie id.
    pub id: String,
    /// Post text.
    pub text: String,
    /// The `danger` score (0 when not scored).
    pub score: f32,
    /// Scores per label.
    pub scores: BTreeMap<String, f32>,
    /// The words that moved the `danger` score most.
    pub explanation: Vec<Contribution>,
    /// Model card id of the scorer (absent when not analysed).
    pub model: Option<String>,
    /// When the author posted it.
    pub created_at: DateTime<Utc>,
    /// Source kind.
    pub source: String,
    /// Language.
    pub lang: Option<String>,
    /// Public URL.
    pub url: Option<String>,
    /// Author pseudonym.
    pub author: String,
    /// How it was fetched.
    pub provenance: Provenance,
    /// Where it was read from Kafka, if it came through Kafka.
    pub kafka: Option<KafkaCoords>,
    /// The places it is about, most confident first (empty: none found or not looked for).
    pub places: Vec<Place>,
    /// BM25 relevance of the hit to the query (0 when sorted otherwise).
    pub relevance: f32,
    /// Its near-duplicate group (the id of the group's first post).
    pub group: String,
    /// How many posts of the index are in the group (1: no known copy).
    pub copies: u64,
    /// When the group's earliest post was created.
    pub first_seen: DateTime<Utc>,
    /// The sources the group's posts came from.
    pub sources: Vec<String>,
}

/// A near-duplicate group and its members.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The group's id (the id of its first post).
    pub id: String,
    /// Its posts, earliest first.
    pub members: Vec<Member>,
}

/// One post of a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    /// Vigie id.
    pub id: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Source kind.
    pub source: String,
}

impl Hit {
    /// The hit of envelope `e` with `relevance` (alone: a copy count of 1, its own group).
    pub fn of(e: Envelope, relevance: f32) -> Self {
        let mut hit = Hit::from_envelope(e, relevance);
        if hit.group.is_empty() {
            hit.group = hit.id.clone();
        }
        hit
    }

    fn from_envelope(e: Envelope, relevance: f32) -> Self {
        let (score, scores, explanation, model) = match e.scoring {
            Some(s) => (s.danger(), s.scores, s.explanation, Some(s.model)),
            None => (0.0, BTreeMap::new(), Vec::new(), None),
        };
        Hit {
            id: e.post.id.to_string(),
            text: e.post.text,
            score,
            scores,
            explanation,
            model,
            created_at: e.post.created_at,
            source: e.post.source,
            lang: e.post.lang,
            url: e.post.url,
            author: e.post.author,
            provenance: e.provenance,
            kafka: e.kafka,
            places: e.places.unwrap_or_default(),
            relevance,
            group: String::new(),
            copies: 1,
            first_seen: e.post.created_at,
            sources: Vec::new(),
        }
    }
}

/// Reads a string fast field of documents, keeping one column per segment.
struct StrReader<'a> {
    searcher: &'a Searcher,
    field: &'static str,
    columns: HashMap<u32, Option<StrColumn>>,
    buf: String,
}

impl<'a> StrReader<'a> {
    fn new(searcher: &'a Searcher, field: &'static str) -> Self {
        StrReader {
            searcher,
            field,
            columns: HashMap::new(),
            buf: String::new(),
        }
    }

    /// The first value of the field in the document at `a` (empty when none).
    fn get(&mut self, a: DocAddress) -> Result<String, IndexError> {
        if !self.columns.contains_key(&a.segment_ord) {
            let column = self
                .searcher
                .segment_reader(a.segment_ord)
                .fast_fields()
                .str(self.field)?;
            self.columns.insert(a.segment_ord, column);
        }
        let Some(Some(column)) = self.columns.get(&a.segment_ord) else {
            return Ok(String::new());
        };
        let first = column.term_ords(a.doc_id).next();
        self.buf.clear();
        if let Some(ord) = first {
            column
                .ord_to_str(ord, &mut self.buf)
                .map_err(|e| IndexError::Corrupt(e.to_string()))?;
        }
        Ok(self.buf.clone())
    }
}

fn date_term(field: tantivy::schema::Field, t: DateTime<Utc>) -> Term {
    Term::from_field_date(field, tantivy::DateTime::from_timestamp_secs(t.timestamp()))
}

impl PostIndex {
    /// The query text parsed against both analysed text fields; a syntax error names its
    /// position.
    pub(crate) fn parse(&self, text: &str) -> Result<Box<dyn Query>, IndexError> {
        check_query_limits(text)?;
        let parser =
            QueryParser::for_index(&self.index, vec![self.fields.text_en, self.fields.text_fr]);
        parser.parse_query(text).map_err(|e| {
            let (_, errors) = parser.parse_query_lenient(text);
            IndexError::Query(errors.into_iter().next().unwrap_or(e))
        })
    }

    /// The query of `request`: its text, and every filter, all required.
    pub(crate) fn build_query(
        &self,
        query: &str,
        filters: &Filters,
    ) -> Result<Box<dyn Query>, IndexError> {
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, self.parse(query)?)];
        // Issue #5 (deletions): deletion records are never search hits (see `crate::deletion`).
        // Nor are incidents (see `crate::incidents`).
        for kind in [crate::schema::DELETION, crate::schema::INCIDENT] {
            clauses.push((
                Occur::MustNot,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.kind, kind),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if filters.from.is_some() || filters.to.is_some() {
            let lower = filters.from.map_or(Bound::Unbounded, |t| {
                Bound::Included(date_term(f.created_at, t))
            });
            let upper = filters.to.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(date_term(f.created_at, t))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        for (label, min) in &filters.min_scores {
            let mut term = Term::from_field_json_path(f.scores, label, false);
            term.append_type_and_fast_value(f64::from(*min));
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(Bound::Included(term), Bound::Unbounded)),
            ));
        }
        for (field, value) in [
            (f.category, &filters.category),
            (f.source, &filters.source),
            (f.lang, &filters.lang),
        ] {
            if let Some(value) = value {
                clauses.push((
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, value),
                        IndexRecordOption::Basic,
                    )),
                ));
            }
        }
        if let Some(near) = &filters.near {
            let cells = near
                .covering()
                .into_iter()
                .map(|k| Term::from_field_u64(f.geo_cell, k));
            clauses.push((Occur::Must, Box::new(TermSetQuery::new(cells))));
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    /// The searcher a page is read from: the current one for a first page (pinned for the
    /// pages after it), the pinned one a cursor names otherwise.
    fn searcher_for(&self, cursor: Option<&Cursor>) -> Result<Searcher, IndexError> {
        let mut pinned = self
            .pinned
            .lock()
            .map_err(|_| IndexError::Corrupt("pinned searchers poisoned".into()))?;
        match cursor {
            None => {
                let searcher = self.reader.searcher();
                let id = searcher.generation().generation_id();
                if !pinned.iter().any(|s| s.generation().generation_id() == id) {
                    pinned.push_back(searcher.clone());
                    while pinned.len() > PINNED {
                        pinned.pop_front();
                    }
                }
                Ok(searcher)
            }
            Some(c) => pinned
                .iter()
                .find(|s| s.generation().generation_id() == c.generation)
                .cloned()
                .ok_or_else(|| {
                    IndexError::Cursor(
                        "this cursor has expired (the index changed too often since its first \
                         page): search again without `cursor`"
                            .into(),
                    )
                }),
        }
    }

    /// The tag of a cursor: keyed SipHash of what it names (see the module doc).
    fn cursor_tag(&self, generation: u64, offset: usize, fingerprint: u64) -> u64 {
        use std::hash::BuildHasher;
        self.cursor_key
            .hash_one((generation, offset as u64, fingerprint))
    }

    /// Runs `request` and returns one page of hits.
    pub fn search_page(&self, request: &SearchRequest) -> Result<SearchPage, IndexError> {
        let fingerprint = request.fingerprint();
        if let Some(c) = &request.cursor {
            if c.tag != self.cursor_tag(c.generation, c.offset, c.fingerprint) {
                return Err(IndexError::Cursor(
                    "this cursor was not made by this server (altered, or from before a \
                     restart): search again without `cursor`"
                        .into(),
                ));
            }
            if c.fingerprint != fingerprint {
                return Err(IndexError::Cursor(
                    "this cursor belongs to another search (query, filters, order or limit \
                     differ): send the same request with it"
                        .into(),
                ));
            }
        }
        let searcher = self.searcher_for(request.cursor.as_ref())?;
        let query = self.build_query(&request.query, &request.filters)?;
        let offset = request.cursor.map_or(0, |c| c.offset);
        let size = usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX);
        if offset > size {
            return Err(IndexError::Cursor(
                "this cursor points past the end of its results: search again without `cursor`"
                    .into(),
            ));
        }
        // No page is larger than the snapshot: the collector's buffer is bounded by the index.
        let limit = request.limit.clamp(1, size.max(1));
        let (total, addresses, next) = if request.collapse {
            self.collapsed(&searcher, query.as_ref(), request.sort, offset, limit)?
        } else {
            let (total, addresses) =
                self.ordered(&searcher, query.as_ref(), request.sort, offset, limit)?;
            let end = offset + addresses.len();
            (total, addresses, (end < total).then_some(end))
        };
        let generation = searcher.generation().generation_id();
        let next = next.map(|offset| Cursor {
            generation,
            offset,
            fingerprint,
            tag: self.cursor_tag(generation, offset, fingerprint),
        });
        let mut hits: Vec<Hit> = addresses
            .into_iter()
            .map(|(relevance, address)| self.hit(&searcher, address, relevance))
            .collect::<Result<_, _>>()?;
        self.fill_groups(&searcher, &mut hits)?;
        Ok(SearchPage { hits, total, next })
    }

    /// One page of hits in the order asked: `limit` from position `offset`, and how many match.
    fn ordered(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        sort: Sort,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<(f32, DocAddress)>), IndexError> {
        let top = TopDocs::with_limit(limit).and_offset(offset);
        Ok(match sort {
            Sort::Relevance => searcher.search(query, &(Count, top.order_by_score()))?,
            Sort::Score => {
                let (n, docs) = searcher.search(
                    query,
                    &(Count, top.order_by_fast_field::<f64>("danger", Order::Desc)),
                )?;
                (n, docs.into_iter().map(|(_, a)| (0.0, a)).collect())
            }
            Sort::Time => {
                let (n, docs) = searcher.search(
                    query,
                    &(
                        Count,
                        top.order_by_fast_field::<tantivy::DateTime>("created_at", Order::Desc),
                    ),
                )?;
                (n, docs.into_iter().map(|(_, a)| (0.0, a)).collect())
            }
        })
    }

    /// A page of the first hit of each group not shown before `offset` (a position in the
    /// uncollapsed order, where the previous page stopped); returns also where the next page
    /// starts, if any. Reads the order from the top each time, so deep pages cost more.
    fn collapsed(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        sort: Sort,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Ranked, Option<usize>), IndexError> {
        let size = usize::try_from(searcher.num_docs())
            .unwrap_or(usize::MAX)
            .max(1);
        let mut want = offset
            .saturating_add(limit.saturating_mul(4))
            .saturating_add(16)
            .min(size);
        loop {
            let (total, docs) = self.ordered(searcher, query, sort, 0, want)?;
            let mut keys: HashMap<u32, Column<u64>> = HashMap::new();
            let mut seen = HashSet::new();
            let mut page = Vec::new();
            for (i, (relevance, address)) in docs.iter().enumerate() {
                let column = match keys.entry(address.segment_ord) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => e.insert(
                        searcher
                            .segment_reader(address.segment_ord)
                            .fast_fields()
                            .u64("group_key")?,
                    ),
                };
                let key = column.first(address.doc_id).unwrap_or(u64::MAX);
                let new = seen.insert(key);
                if i < offset || !new {
                    continue;
                }
                if page.len() == limit {
                    return Ok((total, page, Some(i)));
                }
                page.push((*relevance, *address));
            }
            if docs.len() >= total {
                return Ok((total, page, None));
            }
            want = want.saturating_mul(4).min(size);
        }
    }

    /// The members of group `group`, earliest first.
    fn members(&self, searcher: &Searcher, group: &str) -> Result<Vec<Member>, IndexError> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.group, group),
            IndexRecordOption::Basic,
        );
        let docs = searcher.search(&query, &DocSetCollector)?;
        let mut ids = StrReader::new(searcher, "id");
        let mut sources = StrReader::new(searcher, "source");
        let mut members = Vec::with_capacity(docs.len());
        for a in docs {
            let created = searcher
                .segment_reader(a.segment_ord)
                .fast_fields()
                .date("created_at")?
                .first(a.doc_id)
                .map(|t| DateTime::from_timestamp(t.into_timestamp_secs(), 0).unwrap_or_default())
                .unwrap_or_default();
            members.push(Member {
                id: ids.get(a)?,
                created_at: created,
                source: sources.get(a)?,
            });
        }
        members.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(members)
    }

    /// Sets the group statistics of every hit (whose `group` is set): copies, first seen,
    /// sources. Reads each group's postings segment by segment and fast fields only, opening
    /// each segment's columns once for the whole page, and each distinct source string once.
    fn fill_groups(&self, searcher: &Searcher, hits: &mut [Hit]) -> Result<(), IndexError> {
        struct SegmentColumns {
            created: Column<tantivy::DateTime>,
            source: Option<StrColumn>,
        }
        let mut columns: Vec<Option<SegmentColumns>> = (0..searcher.segment_readers().len())
            .map(|_| None)
            .collect();
        let mut name = String::new();
        for hit in hits {
            if hit.group.is_empty() {
                hit.group = hit.id.clone();
            }
            let term = Term::from_field_text(self.fields.group, &hit.group);
            let mut copies = 0u64;
            let mut first = hit.created_at.timestamp();
            let mut sources = BTreeSet::from([hit.source.clone()]);
            for (ord, segment) in searcher.segment_readers().iter().enumerate() {
                let Some(mut postings) = segment
                    .inverted_index(self.fields.group)?
                    .read_postings(&term, IndexRecordOption::Basic)
                    .map_err(|e| IndexError::Tantivy(e.into()))?
                else {
                    continue;
                };
                let cols = match &mut columns[ord] {
                    Some(c) => c,
                    slot => {
                        let fast = segment.fast_fields();
                        slot.insert(SegmentColumns {
                            created: fast.date("created_at")?,
                            source: fast.str("source")?,
                        })
                    }
                };
                let alive = segment.alive_bitset();
                let mut ords = BTreeSet::new();
                let mut doc = postings.doc();
                while doc != tantivy::TERMINATED {
                    if alive.is_none_or(|a| a.is_alive(doc)) {
                        copies += 1;
                        if let Some(t) = cols.created.first(doc) {
                            first = first.min(t.into_timestamp_secs());
                        }
                        if let Some(source) = &cols.source {
                            ords.extend(source.term_ords(doc));
                        }
                    }
                    doc = postings.advance();
                }
                if let Some(source) = &cols.source {
                    for o in ords {
                        if source
                            .ord_to_str(o, &mut name)
                            .map_err(|e| IndexError::Corrupt(e.to_string()))?
                        {
                            sources.insert(name.clone());
                        }
                    }
                }
            }
            hit.copies = copies.max(1);
            hit.first_seen = DateTime::from_timestamp(first, 0).unwrap_or(hit.created_at);
            hit.sources = sources.into_iter().collect();
        }
        Ok(())
    }

    fn address_of(&self, searcher: &Searcher, id: &str) -> Result<Option<DocAddress>, IndexError> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.id, id),
            IndexRecordOption::Basic,
        );
        Ok(searcher
            .search(&query, &TopDocs::with_limit(1).order_by_score())?
            .into_iter()
            .next()
            .map(|(_, a)| a))
    }

    /// The near-duplicate group of post `id` with all its members, if the index holds it.
    pub fn group_of(&self, id: &str) -> Result<Option<Group>, IndexError> {
        let searcher = self.reader.searcher();
        let Some(address) = self.address_of(&searcher, id)? else {
            return Ok(None);
        };
        let group = StrReader::new(&searcher, "group").get(address)?;
        let members = self.members(&searcher, &group)?;
        Ok(Some(Group { id: group, members }))
    }

    /// Runs `request` and returns its first page of hits.
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<Hit>, IndexError> {
        Ok(self.search_page(request)?.hits)
    }

    fn envelope_of(&self, doc: &TantivyDocument) -> Result<Envelope, IndexError> {
        let json = doc
            .get_first(self.fields.envelope)
            .and_then(|v| v.as_str())
            .ok_or_else(|| IndexError::Corrupt("document without envelope".into()))?;
        Envelope::from_json(json.as_bytes()).map_err(|e| IndexError::Corrupt(e.to_string()))
    }

    fn hit(
        &self,
        searcher: &Searcher,
        address: DocAddress,
        relevance: f32,
    ) -> Result<Hit, IndexError> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let mut hit = Hit::from_envelope(self.envelope_of(&doc)?, relevance);
        if let Some(group) = doc.get_first(self.fields.group).and_then(|v| v.as_str()) {
            hit.group = group.to_string();
        }
        Ok(hit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PostIndex;
    use vigie_record::fixtures::scored;
    use vigie_record::Envelope;

    /// A post `n` in `lang`, from `source`, `hours` after 2026-11-27T00:00Z, scored.
    fn post(n: u32, text: &str, lang: &str, source: &str, hours: i64, danger: f32) -> Envelope {
        let mut e = scored(&n.to_string(), text, danger);
        e.post.lang = Some(lang.into());
        e.post.source = source.into();
        e.post.created_at = "2026-11-27T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
            + chrono::Duration::hours(hours);
        if let Some(s) = e.scoring.as_mut() {
            s.scores.insert(
                "fire".into(),
                if text.contains("fire") || text.contains("incendie") {
                    0.8
                } else {
                    0.1
                },
            );
        }
        e
    }

    fn index_of(posts: &[Envelope]) -> (tempfile::TempDir, PostIndex) {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(dir.path()).unwrap();
        let mut w = index.writer().unwrap();
        for p in posts {
            w.upsert(p).unwrap();
        }
        w.commit(None).unwrap();
        (dir, index)
    }

    fn ids(index: &PostIndex, request: SearchRequest) -> Vec<String> {
        let mut texts: Vec<String> = index
            .search(&request)
            .unwrap()
            .into_iter()
            .map(|h| h.text)
            .collect();
        texts.sort();
        texts
    }

    fn q(query: &str) -> SearchRequest {
        SearchRequest {
            query: query.into(),
            limit: 50,
            ..SearchRequest::default()
        }
    }

    #[test]
    fn english_and_french_posts_are_stemmed_in_their_language() {
        let (_d, index) = index_of(&[
            post(1, "Two fires burning near the station", "en", "rss", 0, 0.9),
            post(
                2,
                "Incendies en cours à Vénissieux",
                "fr",
                "mastodon",
                1,
                0.9,
            ),
            post(3, "Nothing happening", "en", "rss", 2, 0.1),
        ]);
        assert_eq!(
            ids(&index, q("fire")),
            ["Two fires burning near the station"]
        );
        assert_eq!(
            ids(&index, q("burn")),
            ["Two fires burning near the station"]
        );
        // French plural and accent-free spelling find the French post.
        assert_eq!(
            ids(&index, q("incendie")),
            ["Incendies en cours à Vénissieux"]
        );
        assert_eq!(
            ids(&index, q("venissieux")),
            ["Incendies en cours à Vénissieux"]
        );
        // A syntax error names its position.
        let e = index.search(&q("fire AND (smoke")).unwrap_err();
        assert!(e.to_string().contains("position"), "{e}");
    }

    fn placed(n: u32, text: &str, places: &[(&str, f64, f64)]) -> Envelope {
        let mut e = post(n, text, "fr", "rss", i64::from(n), 0.9);
        e.places = Some(
            places
                .iter()
                .map(|&(name, lat, lon)| vigie_record::fixtures::place(name, lat, lon))
                .collect(),
        );
        e
    }

    #[test]
    fn near_keeps_the_posts_with_a_place_in_the_disc() {
        let (_d, index) = index_of(&[
            placed(
                1,
                "incendie à Saint-Denis",
                &[("Saint-Denis", 48.93564, 2.35387)],
            ),
            placed(2, "incendie à Lyon", &[("Lyon", 45.74846, 4.84671)]),
            placed(
                3,
                "de Lyon à Paris",
                &[("Lyon", 45.74846, 4.84671), ("Paris", 48.85341, 2.3488)],
            ),
            placed(4, "incendie quelque part", &[]),
            post(5, "incendie sans lieu", "fr", "rss", 5, 0.9),
        ]);
        let near = |s: &str| {
            let mut r = q("*");
            r.filters.near = Some(s.parse().unwrap());
            r.sort = Sort::Time;
            let mut got = ids(&index, r);
            got.sort();
            got
        };
        // 20 km around Paris: Saint-Denis (9 km) and the post naming Paris too.
        assert_eq!(
            near("48.8534,2.3488,20"),
            ["de Lyon à Paris", "incendie à Saint-Denis"]
        );
        // 5 km around Paris: not Saint-Denis.
        assert_eq!(near("48.8534,2.3488,5"), ["de Lyon à Paris"]);
        assert_eq!(
            near("45.75,4.85,10"),
            ["de Lyon à Paris", "incendie à Lyon"]
        );
        assert!(near("43.70,7.27,30").is_empty());
        // The filter is part of the search: it goes with the other filters and into cursors.
        let mut r = q("lyon");
        r.filters.near = Some("48.8534,2.3488,20".parse().unwrap());
        assert_eq!(ids(&index, r), ["de Lyon à Paris"]);
    }

    #[test]
    fn filters_restrict_and_sorts_order() {
        let (_d, index) = index_of(&[
            post(1, "warehouse fire", "en", "rss", 0, 0.6),
            post(2, "incendie entrepôt", "fr", "mastodon", 5, 0.95),
            post(3, "quiet day", "en", "mastodon", 10, 0.05),
        ]);
        let with = |f: Filters, sort| {
            let mut r = q("*");
            r.filters = f;
            r.sort = sort;
            index
                .search(&r)
                .unwrap()
                .into_iter()
                .map(|h| h.text)
                .collect::<Vec<_>>()
        };
        let at = |h: i64| {
            Some(
                "2026-11-27T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
                    + chrono::Duration::hours(h),
            )
        };
        assert_eq!(
            with(
                Filters {
                    from: at(1),
                    to: at(10),
                    ..Filters::default()
                },
                Sort::Time
            ),
            ["incendie entrepôt"]
        );
        assert_eq!(
            with(
                Filters {
                    min_scores: vec![("danger".into(), 0.5)],
                    ..Filters::default()
                },
                Sort::Score
            ),
            ["incendie entrepôt", "warehouse fire"]
        );
        assert_eq!(
            with(
                Filters {
                    min_scores: vec![("fire".into(), 0.7), ("danger".into(), 0.9)],
                    ..Filters::default()
                },
                Sort::Score
            ),
            ["incendie entrepôt"]
        );
        assert_eq!(
            with(
                Filters {
                    category: Some("fire".into()),
                    ..Filters::default()
                },
                Sort::Time
            ),
            ["incendie entrepôt", "warehouse fire"]
        );
        assert_eq!(
            with(
                Filters {
                    source: Some("mastodon".into()),
                    lang: Some("en".into()),
                    ..Filters::default()
                },
                Sort::Time
            ),
            ["quiet day"]
        );
        assert_eq!(
            with(Filters::default(), Sort::Time),
            ["quiet day", "incendie entrepôt", "warehouse fire"]
        );
        assert_eq!(
            with(Filters::default(), Sort::Score),
            ["incendie entrepôt", "warehouse fire", "quiet day"]
        );
    }

    #[test]
    fn paging_with_cursors_returns_every_hit_once_even_across_commits() {
        let posts: Vec<_> = (0..23)
            .map(|n| {
                post(
                    n,
                    &format!("flood report {n}"),
                    "en",
                    "rss",
                    i64::from(n % 4),
                    0.5,
                )
            })
            .collect();
        let (_d, index) = index_of(&posts);
        for sort in [Sort::Relevance, Sort::Score, Sort::Time] {
            let mut request = SearchRequest {
                query: "flood".into(),
                limit: 5,
                sort,
                ..SearchRequest::default()
            };
            let mut seen = Vec::new();
            let mut pages = 0;
            loop {
                let page = index.search_page(&request).unwrap();
                assert_eq!(page.total, 23);
                seen.extend(page.hits.into_iter().map(|h| h.id));
                pages += 1;
                if pages == 2 && sort == Sort::Time {
                    // A commit between pages does not disturb the pages of a pinned snapshot.
                    let mut w = index.writer().unwrap();
                    w.upsert(&post(99, "flood again", "en", "rss", 9, 0.9))
                        .unwrap();
                    w.commit(None).unwrap();
                }
                match page.next {
                    Some(c) => request.cursor = Some(c.to_string().parse().unwrap()),
                    None => break,
                }
            }
            assert_eq!(pages, 5);
            let unique: std::collections::BTreeSet<_> = seen.iter().collect();
            assert_eq!((seen.len(), unique.len()), (23, 23), "{sort:?}");
        }
        // A cursor used with another search, or garbled, is refused.
        let first = index
            .search_page(&SearchRequest {
                query: "flood".into(),
                limit: 5,
                ..SearchRequest::default()
            })
            .unwrap();
        let other = SearchRequest {
            query: "report".into(),
            limit: 5,
            cursor: first.next,
            ..SearchRequest::default()
        };
        assert!(matches!(
            index.search_page(&other),
            Err(IndexError::Cursor(_))
        ));
        assert!("c1.zz".parse::<Cursor>().is_err());
    }

    #[test]
    fn a_forged_cursor_with_a_raised_offset_is_refused_not_an_abort() {
        let posts: Vec<_> = (0..12)
            .map(|n| post(n, &format!("fire {n}"), "en", "rss", 1, 0.5))
            .collect();
        let (_d, index) = index_of(&posts);
        let request = SearchRequest {
            query: "fire".into(),
            limit: 5,
            ..SearchRequest::default()
        };
        let next = index.search_page(&request).unwrap().next.unwrap();
        // Raise the position to 10^13, keeping snapshot, fingerprint and tag as they were.
        let text = next.to_string();
        let parts: Vec<&str> = text.split('.').collect();
        for forged in [
            format!(
                "c2.{}.{:x}.{}.{}",
                parts[1],
                10u64.pow(13),
                parts[3],
                parts[4]
            ),
            format!("c2.{}.{:x}.{}.{}", parts[1], 6, parts[3], parts[4]),
        ] {
            for collapse in [false, true] {
                let forged_request = SearchRequest {
                    cursor: Some(forged.parse().unwrap()),
                    collapse,
                    ..request.clone()
                };
                let e = index.search_page(&forged_request).unwrap_err();
                assert!(
                    matches!(&e, IndexError::Cursor(m) if m.contains("not made by this server")),
                    "{e}"
                );
            }
        }
        // A cursor of another index handle (another process, or before a restart) is refused.
        let reopened = PostIndex::open(_d.path()).unwrap();
        let e = reopened
            .search_page(&SearchRequest {
                cursor: Some(next),
                ..request.clone()
            })
            .unwrap_err();
        assert!(matches!(e, IndexError::Cursor(_)), "{e}");
        // The genuine cursor still works.
        let page = index
            .search_page(&SearchRequest {
                cursor: Some(next),
                ..request
            })
            .unwrap();
        assert_eq!(page.hits.len(), 5);
    }

    #[test]
    fn a_huge_limit_allocates_no_more_than_the_index_holds() {
        let (_d, index) = index_of(&[post(1, "fire", "en", "rss", 1, 0.5)]);
        for collapse in [false, true] {
            let page = index
                .search_page(&SearchRequest {
                    query: "fire".into(),
                    limit: usize::MAX / 2,
                    collapse,
                    ..SearchRequest::default()
                })
                .unwrap();
            assert_eq!((page.hits.len(), page.total), (1, 1));
        }
    }

    #[test]
    fn five_thousand_nested_parentheses_are_refused_not_a_stack_overflow() {
        let (_d, index) = index_of(&[post(1, "fire", "en", "rss", 1, 0.5)]);
        let deep = format!("{}fire{}", "(".repeat(2000), ")".repeat(2000));
        for query in [
            deep,
            format!("\"{}fire", "(".repeat(100)),
            "x".repeat(MAX_QUERY_BYTES + 1),
        ] {
            let e = index.search(&q(&query)).unwrap_err();
            assert!(matches!(e, IndexError::QueryLimit(_)), "{e}");
        }
        let nested = format!(
            "{}fire{}",
            "(".repeat(MAX_QUERY_DEPTH),
            ")".repeat(MAX_QUERY_DEPTH)
        );
        assert_eq!(index.search(&q(&nested)).unwrap().len(), 1);
    }

    #[test]
    fn commits_of_another_writer_become_visible_without_a_refresh() {
        let (dir, serving) = index_of(&[post(1, "fire one", "en", "rss", 1, 0.5)]);
        assert_eq!(serving.search(&q("fire")).unwrap().len(), 1);
        // Another handle on the same directory, as `vigie index` in another process.
        let other = PostIndex::open(dir.path()).unwrap();
        let mut w = other.writer().unwrap();
        w.upsert(&post(2, "fire two", "en", "rss", 1, 0.5)).unwrap();
        w.commit(None).unwrap();
        drop(w);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while serving.search(&q("fire")).unwrap().len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the serving handle never saw the other writer's commit"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        /// Pieces of tantivy's query syntax, so that random queries reach deep into the parser.
        fn token() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("(".to_string()),
                Just(")".to_string()),
                Just("\"".to_string()),
                Just("-".to_string()),
                Just("+".to_string()),
                Just("NOT ".to_string()),
                Just(" AND ".to_string()),
                Just(" OR ".to_string()),
                Just("text_en:".to_string()),
                Just("[a TO z]".to_string()),
                Just("{1 TO *}".to_string()),
                Just("*".to_string()),
                Just("~2".to_string()),
                Just("^3".to_string()),
                Just("\\".to_string()),
                Just(" ".to_string()),
                "[a-zé]{1,8}",
                any::<char>().prop_map(String::from),
            ]
        }

        fn query() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::collection::vec(token(), 0..64).prop_map(|t| t.concat()),
                // Long runs of one token, up to the length limit.
                (token(), 1..(MAX_QUERY_BYTES / 2)).prop_map(|(t, n)| {
                    let mut q = t.repeat(n);
                    q.truncate(q.floor_char_boundary(MAX_QUERY_BYTES));
                    q
                }),
                ".{0,300}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(vigie_record::fixtures::fuzz_cases(256)))]

            /// Any query text is answered (hits or an error), never a panic or a stack overflow,
            /// on a thread with tokio's blocking-thread stack (2 MiB), where searches run.
            #[test]
            fn any_query_text_is_answered_never_a_crash(q in query()) {
                let (_d, index) = index_of(&[post(1, "fire in lyon", "en", "rss", 1, 0.5)]);
                let outcome = std::thread::Builder::new()
                    .stack_size(2 << 20)
                    .spawn(move || index.search(&SearchRequest { query: q, limit: 5, ..SearchRequest::default() }).map(|h| h.len()))
                    .unwrap()
                    .join();
                prop_assert!(outcome.is_ok(), "the search thread died");
            }

            /// Any cursor text either fails to parse or is refused: none is ever honoured
            /// unless this index made it.
            #[test]
            fn any_cursor_text_is_refused(text in prop_oneof![
                ".{0,80}",
                (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>())
                    .prop_map(|(a, b, c, d)| format!("c2.{a:x}.{b:x}.{c:016x}.{d:016x}")),
            ]) {
                let (_d, index) = index_of(&[post(1, "fire in lyon", "en", "rss", 1, 0.5)]);
                if let Ok(cursor) = text.parse::<Cursor>() {
                    let refused = index.search_page(&SearchRequest {
                        query: "fire".into(),
                        limit: 5,
                        cursor: Some(cursor),
                        ..SearchRequest::default()
                    });
                    prop_assert!(matches!(refused, Err(IndexError::Cursor(_))));
                }
            }
        }
    }
}
