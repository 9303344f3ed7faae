//! `GET /v1/search`, `POST /v1/search` and `GET /v1/stats/histogram`.
//!
//! A search takes a query (`q`, tantivy syntax over the post text, analysed in English and
//! French; absent or `*` for every post), filters, an order and a page size, and answers one
//! page of hits with the opaque `next` cursor of the following page (absent on the last).
//! `POST /v1/search` takes the same fields as a JSON object. Guarantees: a search states its
//! purpose (else 400, before the index is touched); unknown parameters and fields are refused;
//! a bad value is answered 400 naming the parameter (and, for a query, the position of the
//! error); the ids returned are in the access log before the answer leaves (the guard).
//!
//! Filter syntax:
//! - `from`, `to`: RFC 3339 times; posts created at or after `from`, strictly before `to`.
//! - `min_score`: `LABEL:MIN[,LABEL:MIN...]`, e.g. `danger:0.7,fire:0.5` (each label's score at
//!   least MIN, in [0, 1]); a bare number is the `danger` minimum (`min_score=0.7`). In JSON,
//!   the same string or an object `{"danger": 0.7, "fire": 0.5}`.
//! - `category`: a category the post was classified in (score at least 0.5), e.g. `fire`.
//! - `source` (`mastodon`, `rss`, `reddit`, `jetstream`...), `lang` (`en`, `fr`...): exact.
//! - `near`: `LAT,LON,RADIUS_KM`, e.g. `48.8534,2.3488,20`: posts with a place in that disc
//!   (radius above 0, at most 5,000 km; see `vigie_record::geo` for the edge's precision).
//! - `sort`: `relevance` (default), `score` (`danger`, highest first), `time` (newest first).
//! - `cursor`: the `next` of the previous page, with the same other parameters.
//! - `collapse`: `true` (default) answers one hit per near-duplicate group (reposts, copies;
//!   see `vigie_index::near_dup`) with the group's `copies`, `first_seen` and `sources`;
//!   `false` lists every post.

use crate::guard::Outcome;
use crate::problem::AccessProblems;
use crate::{AppState, Problem};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vigie_index::{Bucket, Cursor, Filters, Hit, IndexError, SearchRequest, Sort};
use vigie_record::Near;

/// Most hits one request may ask for.
pub const MAX_LIMIT: usize = 500;

/// The query string of `GET /v1/search`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// tantivy query syntax over the post text (`fire AND lyon`, `"gas leak"`); absent or `*`
    /// for every post.
    pub q: Option<String>,
    /// Why the analyst searches: free text or a case reference. Required.
    pub purpose: Option<String>,
    /// Maximum number of hits (default 20, at most 500).
    pub limit: Option<usize>,
    /// Posts created at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Posts created strictly before this time (RFC 3339).
    pub to: Option<String>,
    /// Minimum scores: `LABEL:MIN[,LABEL:MIN...]` (e.g. `danger:0.7,fire:0.5`), or a bare
    /// number for `danger`.
    pub min_score: Option<String>,
    /// A category the post was classified in (score at least 0.5), e.g. `fire`.
    pub category: Option<String>,
    /// Source kind, e.g. `mastodon`.
    pub source: Option<String>,
    /// Language code, e.g. `fr`.
    pub lang: Option<String>,
    /// Posts with a place within a disc: `LAT,LON,RADIUS_KM` (e.g. `48.8534,2.3488,20`).
    pub near: Option<String>,
    /// `relevance` (default), `score` (danger, highest first) or `time` (newest first).
    pub sort: Option<String>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
    /// One hit per group of near-duplicates (reposts, copies), with the group's `copies`,
    /// `first_seen` and `sources` (default `true`); `false` lists every post.
    pub collapse: Option<bool>,
}

/// `min_score` in a JSON body: the query-string syntax, or an object of label to minimum.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MinScore {
    /// `LABEL:MIN[,LABEL:MIN...]` or a bare `danger` minimum.
    Text(String),
    /// `{"danger": 0.7, "fire": 0.5}`.
    Labels(BTreeMap<String, f32>),
}

/// The body of `POST /v1/search`: the fields of the query string, as JSON.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    /// tantivy query syntax over the post text; absent or `*` for every post.
    pub q: Option<String>,
    /// Why the analyst searches. Required.
    pub purpose: Option<String>,
    /// Maximum number of hits (default 20, at most 500).
    pub limit: Option<usize>,
    /// Posts created at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Posts created strictly before this time (RFC 3339).
    pub to: Option<String>,
    /// Minimum scores: `"danger:0.7,fire:0.5"` or `{"danger": 0.7, "fire": 0.5}`.
    #[schema(value_type = Option<Object>)]
    pub min_score: Option<MinScore>,
    /// A category the post was classified in.
    pub category: Option<String>,
    /// Source kind.
    pub source: Option<String>,
    /// Language code.
    pub lang: Option<String>,
    /// Posts with a place within a disc: `LAT,LON,RADIUS_KM` (e.g. `48.8534,2.3488,20`).
    pub near: Option<String>,
    /// `relevance` (default), `score` or `time`.
    pub sort: Option<String>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
    /// One hit per group of near-duplicates (reposts, copies), with the group's `copies`,
    /// `first_seen` and `sources` (default `true`); `false` lists every post.
    pub collapse: Option<bool>,
}

impl From<SearchParams> for SearchBody {
    fn from(p: SearchParams) -> Self {
        SearchBody {
            q: p.q,
            purpose: p.purpose,
            limit: p.limit,
            from: p.from,
            to: p.to,
            min_score: p.min_score.map(MinScore::Text),
            category: p.category,
            source: p.source,
            lang: p.lang,
            near: p.near,
            sort: p.sort,
            cursor: p.cursor,
            collapse: p.collapse,
        }
    }
}

/// The answer to a search.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResponse {
    /// The purpose the request stated.
    pub purpose: String,
    /// Number of hits returned in this page.
    pub count: usize,
    /// Number of posts matching in all.
    pub total: usize,
    /// Cursor of the next page (pass it as `cursor` with the same other parameters); absent on
    /// the last page.
    pub next: Option<String>,
    /// The hits in the requested order: id, text, score, scores, explanation, model,
    /// provenance...
    #[schema(value_type = Vec<Object>)]
    pub hits: Vec<Hit>,
}

fn internal(title: &str, e: impl std::fmt::Display) -> Problem {
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, title, e.to_string())
}

/// The stated purpose, trimmed; 400 when there is none.
fn require_purpose(purpose: Option<String>) -> Result<String, Problem> {
    purpose
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            Problem::bad_request(
                "purpose required",
                "every search must state its purpose: add `purpose=` with a case reference or \
                 a short reason",
            )
        })
}

pub(crate) fn time(name: &str, value: Option<String>) -> Result<Option<DateTime<Utc>>, Problem> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| {
            Problem::bad_request(
                format!("invalid `{name}`"),
                format!(
                    "`{name}={value}` is not an RFC 3339 time ({e}), e.g. 2026-11-27T08:00:00Z"
                ),
            )
        })
}

fn bad_min_score(detail: String) -> Problem {
    Problem::bad_request(
        "invalid `min_score`",
        format!(
            "{detail}; write `min_score=LABEL:MIN[,LABEL:MIN...]` with MIN in [0, 1], e.g. \
             `danger:0.7,fire:0.5`, or a bare number for `danger`"
        ),
    )
}

fn check_label(label: &str, min: f32) -> Result<(String, f32), Problem> {
    let label = label.trim();
    if label.is_empty()
        || !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(bad_min_score(format!("`{label}` is not a label name")));
    }
    if !(0.0..=1.0).contains(&min) {
        return Err(bad_min_score(format!("{label}:{min} is outside [0, 1]")));
    }
    Ok((label.to_string(), min))
}

/// Parses `min_score` (see the module docs).
pub(crate) fn min_scores(value: Option<MinScore>) -> Result<Vec<(String, f32)>, Problem> {
    match value {
        None => Ok(Vec::new()),
        Some(MinScore::Labels(map)) => map.iter().map(|(l, m)| check_label(l, *m)).collect(),
        Some(MinScore::Text(text)) => {
            let text = text.trim();
            if text.is_empty() {
                return Ok(Vec::new());
            }
            if let Ok(min) = text.parse::<f32>() {
                return Ok(vec![check_label("danger", min)?]);
            }
            text.split(',')
                .map(|part| {
                    let (label, min) = part
                        .split_once(':')
                        .ok_or_else(|| bad_min_score(format!("`{part}` has no `:`")))?;
                    let min = min.trim().parse::<f32>().map_err(|_| {
                        bad_min_score(format!("`{}` in `{part}` is not a number", min.trim()))
                    })?;
                    check_label(label, min)
                })
                .collect()
        }
    }
}

fn sort(value: Option<String>) -> Result<Sort, Problem> {
    match value.as_deref().map(str::trim) {
        None | Some("") | Some("relevance") => Ok(Sort::Relevance),
        Some("score") => Ok(Sort::Score),
        Some("time") => Ok(Sort::Time),
        Some(other) => Err(Problem::bad_request(
            "invalid `sort`",
            format!("`sort={other}`: use `relevance` (default), `score` or `time`"),
        )),
    }
}

pub(crate) fn exact(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The `near` disc of a request, or a 400 that says the syntax.
pub(crate) fn near(value: Option<String>) -> Result<Option<Near>, Problem> {
    exact(value)
        .map(|v| {
            v.parse::<Near>()
                .map_err(|e| Problem::bad_request("invalid `near`", e.to_string()))
        })
        .transpose()
}

/// The filters of a request.
pub(crate) fn filters(
    from: Option<String>,
    to: Option<String>,
    min_score: Option<MinScore>,
    category: Option<String>,
    source: Option<String>,
    lang: Option<String>,
) -> Result<Filters, Problem> {
    Ok(Filters {
        from: time("from", from)?,
        to: time("to", to)?,
        min_scores: min_scores(min_score)?,
        category: exact(category),
        source: exact(source),
        lang: exact(lang),
        near: None,
    })
}

/// An index error as the problem a caller can act on.
pub(crate) fn index_problem(e: IndexError) -> Problem {
    match e {
        IndexError::Query(q) => Problem::bad_request(
            "invalid query",
            format!("`q`: {q}; see tantivy's query syntax, e.g. `fire AND lyon`, `\"gas leak\"`"),
        ),
        IndexError::QueryLimit(why) => {
            Problem::bad_request("query too complex", format!("`q`: {why}"))
        }
        IndexError::Cursor(c) => Problem::bad_request("invalid `cursor`", c),
        other => internal("search failed", other),
    }
}

pub(crate) async fn run(
    state: AppState,
    body: SearchBody,
) -> Result<(String, vigie_index::SearchPage), Problem> {
    let purpose = require_purpose(body.purpose)?;
    let limit = body.limit.unwrap_or(20);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Problem::bad_request(
            "invalid limit",
            format!("`limit` must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let cursor = match exact(body.cursor) {
        Some(c) => Some(c.parse::<Cursor>().map_err(index_problem)?),
        None => None,
    };
    let filters = Filters {
        near: near(body.near)?,
        ..filters(
            body.from,
            body.to,
            body.min_score,
            body.category,
            body.source,
            body.lang,
        )?
    };
    let request = SearchRequest {
        query: exact(body.q).unwrap_or_else(|| "*".into()),
        limit,
        filters,
        sort: sort(body.sort)?,
        cursor,
        collapse: body.collapse.unwrap_or(true),
    };
    let index = state.index.clone();
    let page = state
        .work
        .run(move || index.search_page(&request))
        .await
        .map_err(|e| internal("search failed", e))?
        .map_err(index_problem)?;
    Ok((purpose, page))
}

fn answer(
    purpose: String,
    page: vigie_index::SearchPage,
    params: serde_json::Map<String, serde_json::Value>,
) -> (Extension<Outcome>, Json<SearchResponse>) {
    let outcome = Outcome {
        purpose: Some(purpose.clone()),
        count: page.hits.len() as u64,
        posts: page.hits.iter().map(|h| h.id.clone()).collect(),
        params,
    };
    (
        Extension(outcome),
        Json(SearchResponse {
            purpose,
            count: page.hits.len(),
            total: page.total,
            next: page.next.map(|c| c.to_string()),
            hits: page.hits,
        }),
    )
}

/// Search posts (analysts).
#[utoipa::path(
    get,
    path = "/v1/search",
    params(SearchParams),
    responses(
        (status = 200, description = "One page of hits", body = SearchResponse),
        (status = 400, description = "Invalid request (missing purpose, unknown parameter, bad query, filter or cursor)", body = Problem, content_type = "application/problem+json"),
        AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<(Extension<Outcome>, Json<SearchResponse>), Problem> {
    let Query(params) = params?;
    let (purpose, page) = run(state, params.into()).await?;
    Ok(answer(purpose, page, serde_json::Map::new()))
}

/// Search posts with the fields as a JSON body (analysts).
#[utoipa::path(
    post,
    path = "/v1/search",
    request_body = SearchBody,
    responses(
        (status = 200, description = "One page of hits", body = SearchResponse),
        (status = 400, description = "Invalid request (missing purpose, unknown field, bad query, filter or cursor)", body = Problem, content_type = "application/problem+json"),
        AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn post_search(
    State(state): State<AppState>,
    body: Result<Json<SearchBody>, JsonRejection>,
) -> Result<(Extension<Outcome>, Json<SearchResponse>), Problem> {
    let Json(body) = body.map_err(|e| {
        Problem::json_body(
            "invalid search body",
            &e,
            "send a JSON object with the fields of GET /v1/search (`q`, `purpose`, `limit`, \
             `from`, `to`, `min_score`, `category`, `source`, `lang`, `sort`, `cursor`, \
             `collapse`)",
        )
    })?;
    let params = match serde_json::to_value(&body) {
        Ok(serde_json::Value::Object(map)) => {
            map.into_iter().filter(|(_, v)| !v.is_null()).collect()
        }
        _ => serde_json::Map::new(),
    };
    let (purpose, page) = run(state, body).await?;
    Ok(answer(purpose, page, params))
}

/// The query string of `GET /v1/stats/histogram`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistogramParams {
    /// Why. Required.
    pub purpose: Option<String>,
    /// Bucket width: a number and a unit, `s`, `m`, `h` or `d` (default `1h`).
    pub interval: Option<String>,
    /// Minimum scores, as in search (default: `danger` at the alert threshold).
    pub min_score: Option<String>,
    /// Optional query restricting the posts counted (tantivy syntax).
    pub q: Option<String>,
    /// Posts created at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Posts created strictly before this time (RFC 3339).
    pub to: Option<String>,
    /// Only this category.
    pub category: Option<String>,
    /// Only this source kind.
    pub source: Option<String>,
    /// Only this language.
    pub lang: Option<String>,
    /// Posts with a place within a disc: `LAT,LON,RADIUS_KM` (e.g. `48.8534,2.3488,20`).
    pub near: Option<String>,
}

/// The answer of `GET /v1/stats/histogram`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Histogram {
    /// The purpose the request stated.
    pub purpose: String,
    /// Bucket width in seconds.
    pub interval_secs: i64,
    /// The minimum scores applied.
    pub min_score: BTreeMap<String, f32>,
    /// Non-empty buckets, oldest first: start, count, count per category.
    #[schema(value_type = Vec<Object>)]
    pub buckets: Vec<Bucket>,
}

/// The narrowest bucket (one minute), to keep answers bounded.
const MIN_INTERVAL_SECS: i64 = 60;

pub(crate) fn interval(value: Option<String>) -> Result<i64, Problem> {
    let text = value.unwrap_or_else(|| "1h".into());
    let text = text.trim();
    let bad = || {
        Problem::bad_request(
            "invalid `interval`",
            format!(
                "`interval={text}`: write a number and a unit, `s`, `m`, `h` or `d` (e.g. `15m`, \
                 `1h`, `1d`), at least 1m"
            ),
        )
    };
    // The unit is the last character, which need not be one byte (`1é`).
    let split = text.char_indices().last().map_or(0, |(i, _)| i);
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(unit).ok_or_else(bad)?;
    if secs < MIN_INTERVAL_SECS {
        return Err(bad());
    }
    Ok(secs)
}

/// Danger posts over time, per category (analysts).
#[utoipa::path(
    get,
    path = "/v1/stats/histogram",
    params(HistogramParams),
    responses(
        (status = 200, description = "Counts per time bucket and category", body = Histogram),
        (status = 400, description = "Invalid request (missing purpose, unknown parameter, bad interval or filter)", body = Problem, content_type = "application/problem+json"),
        AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_histogram(
    State(state): State<AppState>,
    params: Result<Query<HistogramParams>, QueryRejection>,
) -> Result<(Extension<Outcome>, Json<Histogram>), Problem> {
    let Query(p) = params?;
    let purpose = require_purpose(p.purpose)?;
    let interval_secs = interval(p.interval)?;
    let min_score = p
        .min_score
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| format!("danger:{}", state.alert_threshold));
    let filters = Filters {
        near: near(p.near)?,
        ..filters(
            p.from,
            p.to,
            Some(MinScore::Text(min_score)),
            p.category,
            p.source,
            p.lang,
        )?
    };
    let applied = filters.min_scores.iter().cloned().collect();
    let query = exact(p.q).unwrap_or_else(|| "*".into());
    let index = state.index.clone();
    let buckets = state
        .work
        .run(move || index.histogram(&query, &filters, interval_secs))
        .await
        .map_err(|e| internal("histogram failed", e))?
        .map_err(index_problem)?;
    let outcome = Outcome {
        purpose: Some(purpose.clone()),
        count: buckets.iter().map(|b| b.count).sum(),
        ..Outcome::default()
    };
    Ok((
        Extension(outcome),
        Json(Histogram {
            purpose,
            interval_secs,
            min_score: applied,
            buckets,
        }),
    ))
}
