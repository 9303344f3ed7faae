//! `GET /v1/search`.

use crate::{AppState, Problem};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use vigie_index::{Hit, IndexError, SearchRequest};

/// Most hits one request may ask for.
pub const MAX_LIMIT: usize = 500;

/// The query string of a search.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// tantivy query syntax over the post text.
    pub q: Option<String>,
    /// Why the analyst searches: free text or a case reference. Required.
    pub purpose: Option<String>,
    /// Maximum number of hits (default 20, at most 500).
    pub limit: Option<usize>,
}

/// The answer to a search.
#[derive(Debug, Serialize)]
pub struct SearchResponse {
    /// The purpose the request stated.
    pub purpose: String,
    /// Number of hits returned.
    pub count: usize,
    /// The hits, most relevant first.
    pub hits: Vec<Hit>,
}

pub(crate) async fn get_search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResponse>, Problem> {
    let Query(params) =
        params.map_err(|e| Problem::bad_request("invalid query parameters", e.body_text()))?;
    let purpose = params
        .purpose
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            Problem::bad_request(
                "purpose required",
                "every search must state its purpose: add `purpose=` with a case reference or \
                 a short reason",
            )
        })?;
    let query = params
        .q
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| Problem::bad_request("query required", "add `q=` with the words to find"))?;
    let limit = params.limit.unwrap_or(20);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Problem::bad_request(
            "invalid limit",
            format!("`limit` must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let index = state.index.clone();
    let request = SearchRequest { query, limit };
    let hits = tokio::task::spawn_blocking(move || index.search(&request))
        .await
        .map_err(|e| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "search failed",
                e.to_string(),
            )
        })?
        .map_err(|e| match e {
            IndexError::Query(q) => Problem::bad_request("invalid query", q.to_string()),
            other => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "search failed",
                other.to_string(),
            ),
        })?;
    Ok(Json(SearchResponse {
        purpose,
        count: hits.len(),
        hits,
    }))
}
