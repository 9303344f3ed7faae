//! Searching posts.

use crate::{IndexError, PostIndex};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::Value;
use tantivy::TantivyDocument;
use vigie_record::{Contribution, Envelope, KafkaCoords, Provenance};

/// A search: query text in tantivy syntax over the post text, and how many hits to return.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// tantivy query syntax, e.g. `fire AND warehouse`.
    pub query: String,
    /// Maximum number of hits (1 or more).
    pub limit: usize,
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
    /// BM25 relevance of the hit to the query.
    pub relevance: f32,
}

impl Hit {
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
            relevance,
        }
    }
}

impl PostIndex {
    /// Runs `request` and returns its hits, most relevant first.
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<Hit>, IndexError> {
        let searcher = self.reader.searcher();
        let parser = QueryParser::for_index(&self.index, vec![self.fields.text]);
        let query = parser.parse_query(&request.query)?;
        let top = searcher.search(
            &query,
            &TopDocs::with_limit(request.limit.max(1)).order_by_score(),
        )?;
        top.into_iter()
            .map(|(relevance, address)| {
                let doc: TantivyDocument = searcher.doc(address)?;
                let json = doc
                    .get_first(self.fields.envelope)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| IndexError::Corrupt("document without envelope".into()))?;
                let envelope = Envelope::from_json(json.as_bytes())
                    .map_err(|e| IndexError::Corrupt(e.to_string()))?;
                Ok(Hit::from_envelope(envelope, relevance))
            })
            .collect()
    }
}
