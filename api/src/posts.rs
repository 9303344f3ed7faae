//! One post and its lineage (`GET /v1/posts/{id}`), the alerts still to review
//! (`GET /v1/alerts`), and reviews (`POST /v1/posts/{id}/review`).
//!
//! A post's lineage answers "where does this come from, and who has seen it": fetched (source,
//! URL, time, ingestor and its version, SHA-256 of the bytes fetched) -> Kafka (topic, partition,
//! offset, when it came through Kafka) -> scored (model card id, time) -> reviewed (each human
//! verdict) -> accessed (every access-log entry whose answer included the post).
//!
//! A post deleted at its source is answered `410 Gone` (problem+json) that still carries its
//! lineage: a `deleted` step (when the source deleted it, how that was learnt, where the
//! deletion entered Kafka, which index commit removed the post), its reviews, and every
//! recorded access, the earlier views of the post included. The post itself is not shown.

use crate::guard::Outcome;
use crate::problem::AccessProblems;
use crate::reviews::{Review, Verdict};
use crate::users::Caller;
use crate::{AppState, Problem};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigie_index::{DeletionRecord, Filters, Group, Hit, SearchRequest, Sort};
use vigie_logs::Access;
use vigie_record::{Ingestor, KafkaCoords, Post, ScoreState, Scoring};

fn internal(title: &str, e: impl std::fmt::Display) -> Problem {
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, title, e.to_string())
}

/// The stated purpose, trimmed; 400 when there is none.
pub(crate) fn require_purpose(purpose: Option<String>) -> Result<String, Problem> {
    purpose
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            Problem::bad_request(
                "purpose required",
                "every access to posts must state its purpose: add `purpose=` with a case \
                 reference or a short reason",
            )
        })
}

/// The query string of a post view.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PostParams {
    /// Why the analyst looks at the post. Required.
    pub purpose: Option<String>,
}

/// Where and how the post was fetched.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Fetched {
    /// Source kind.
    pub source: String,
    /// The post's public URL.
    pub url: Option<String>,
    /// What was fetched.
    pub fetch_url: String,
    /// When.
    pub fetched_at: DateTime<Utc>,
    /// HTTP status of the fetch.
    pub http_status: Option<u16>,
    /// The ingestor and its version.
    #[schema(value_type = Object)]
    pub ingestor: Ingestor,
    /// SHA-256 (hex) of the bytes fetched.
    pub content_sha256: String,
    /// The source query that matched it.
    pub matched: Option<String>,
}

/// How the post was scored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Scored {
    /// Model card id of the scorer.
    pub model: String,
    /// What ran its encoder (`int8`, `rust-bert`...), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// When.
    pub scored_at: DateTime<Utc>,
    /// `scored` or `not_scored` (with the reason).
    #[schema(value_type = String)]
    pub state: ScoreState,
    /// Why it was not scored.
    pub reason: Option<String>,
}

/// One recorded access to the post.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Accessed {
    /// The access-log entry.
    pub seq: u64,
    /// When.
    pub time: DateTime<Utc>,
    /// Who.
    pub user: Option<String>,
    /// With which role.
    pub role: Option<String>,
    /// Why.
    pub purpose: Option<String>,
    /// Through which endpoint.
    pub endpoint: String,
}

/// The post's path through Vigie.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Lineage {
    /// Fetched.
    pub fetched: Fetched,
    /// Through Kafka: topic, partition, offset (absent for the embedded pipeline).
    #[schema(value_type = Option<Object>)]
    pub kafka: Option<KafkaCoords>,
    /// Scored (absent when not analysed).
    pub scored: Option<Scored>,
    /// Human reviews, oldest first.
    pub reviews: Vec<Review>,
    /// Recorded accesses before this one, oldest first.
    pub accesses: Vec<Accessed>,
}

/// The answer of `GET /v1/posts/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PostView {
    /// The purpose the request stated.
    pub purpose: String,
    /// The post: id, source, native id, author pseudonym, text, language, time, URL.
    #[schema(value_type = Object)]
    pub post: Post,
    /// Its scores and explanation.
    #[schema(value_type = Option<Object>)]
    pub scoring: Option<Scoring>,
    /// Its lineage.
    pub lineage: Lineage,
    /// Its near-duplicate group (reposts and copies of the same text): id, and every member's
    /// id, time and source, earliest first.
    #[schema(value_type = Option<Object>)]
    pub group: Option<Group>,
}

/// The `deleted` step of a lineage: the post was deleted at its source.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    /// When the source deleted the post.
    pub deleted_at: DateTime<Utc>,
    /// The source kind.
    pub source: String,
    /// The source's own id of the post.
    pub native_id: String,
    /// How the deletion was learnt: the event fetched, when, by which ingestor, its SHA-256.
    pub learnt: Fetched,
    /// Where the deletion entered Kafka (absent for the embedded pipeline).
    #[schema(value_type = Option<Object>)]
    pub kafka: Option<KafkaCoords>,
    /// When the index commit that removed the post (and recorded its deletion) was made.
    pub committed_at: DateTime<Utc>,
}

/// The lineage of a deleted post.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeletedLineage {
    /// The deletion.
    pub deleted: Deleted,
    /// Human reviews made while it was there, oldest first.
    pub reviews: Vec<Review>,
    /// Recorded accesses before this one, oldest first.
    pub accesses: Vec<Accessed>,
}

/// The answer of `GET /v1/posts/{id}` for a post deleted at its source: a problem document
/// (RFC 9457) with the post's id and lineage as extension members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GonePost {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `post deleted at its source`.
    pub title: String,
    /// 410.
    pub status: u16,
    /// When and by which source it was deleted.
    pub detail: String,
    /// The purpose the request stated.
    pub purpose: String,
    /// The Vigie id of the deleted post.
    pub id: String,
    /// Its lineage, ending with its deletion.
    pub lineage: DeletedLineage,
}

impl IntoResponse for GonePost {
    fn into_response(self) -> Response {
        (
            StatusCode::GONE,
            [(header::CONTENT_TYPE, "application/problem+json")],
            Json(self),
        )
            .into_response()
    }
}

/// A post, or the record of its deletion.
pub(crate) enum PostAnswer {
    /// The post.
    Found(Box<PostView>),
    /// Its deletion.
    Gone(Box<GonePost>),
}

impl IntoResponse for PostAnswer {
    fn into_response(self) -> Response {
        match self {
            PostAnswer::Found(view) => Json(view).into_response(),
            PostAnswer::Gone(gone) => gone.into_response(),
        }
    }
}

fn gone(record: &DeletionRecord) -> Problem {
    Problem::new(
        StatusCode::GONE,
        "post deleted at its source",
        format!(
            "{} deleted post `{}` at {}; Vigie removed it (GET /v1/posts/{} shows its lineage)",
            record.tombstone.source,
            record.tombstone.native_id,
            record.tombstone.deleted_at.to_rfc3339(),
            record.tombstone.id
        ),
    )
}

fn not_found(id: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no such post",
        format!("the index has no post with id `{id}` (it may have been removed by retention)"),
    )
}

/// Post `id`, or its deletion record, from the index.
async fn find(
    state: &AppState,
    id: &str,
) -> Result<Result<vigie_record::Envelope, DeletionRecord>, Problem> {
    let (index, key) = (state.index.clone(), id.to_string());
    let found = state
        .work
        .run(move || match index.get(&key)? {
            Some(envelope) => Ok(Some(Ok(envelope))),
            None => Ok(index.deletion(&key)?.map(Err)),
        })
        .await
        .map_err(|e| internal("lookup failed", e))?
        .map_err(|e: vigie_index::IndexError| internal("lookup failed", e))?;
    found.ok_or_else(|| not_found(id))
}

/// Post `id`; 410 when it was deleted at its source, 404 when the index has no such post (never
/// indexed, or removed by retention).
async fn lookup(state: &AppState, id: &str) -> Result<vigie_record::Envelope, Problem> {
    find(state, id).await?.map_err(|record| gone(&record))
}

/// One post, its scores and its lineage (analysts).
#[utoipa::path(
    get,
    path = "/v1/posts/{id}",
    params(("id" = String, Path, description = "Vigie id of the post"), PostParams),
    responses(
        (status = 200, description = "The post and its lineage", body = PostView),
        (status = 404, description = "No such post", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The post was deleted at its source: its lineage, ending with the deletion, without the post", body = GonePost, content_type = "application/problem+json"),
        (status = 400, description = "Invalid request (missing purpose, unknown parameter, bad query)", body = Problem, content_type = "application/problem+json"),
        AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_post(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<PostParams>, QueryRejection>,
) -> Result<(Extension<Outcome>, PostAnswer), Problem> {
    let Query(params) = params?;
    let purpose = require_purpose(params.purpose)?;
    post_answer(&state, id, purpose).await
}

/// Post `id` and its lineage (or the lineage of its deletion), and what the answer shows: the
/// `GET /v1/posts/{id}` answer, and the console's post page.
pub(crate) async fn post_answer(
    state: &AppState,
    id: String,
    purpose: String,
) -> Result<(Extension<Outcome>, PostAnswer), Problem> {
    let state = state.clone();
    let found = find(&state, &id).await?;
    let (log, key) = (state.log.clone(), id.clone());
    let accesses = tokio::task::spawn_blocking(move || log.accesses_to(&key))
        .await
        .map_err(|e| internal("lineage failed", e))?
        .map_err(|e| internal("lineage failed", e))?
        .into_iter()
        .map(|(seq, a): (u64, Access)| Accessed {
            seq,
            time: a.time,
            user: a.user,
            role: a.role,
            purpose: a.purpose,
            endpoint: a.endpoint,
        })
        .collect();
    let envelope = match found {
        Ok(envelope) => envelope,
        Err(record) => return Ok(deleted_answer(&state, id, purpose, record, accesses)),
    };
    let (index, key) = (state.index.clone(), id.clone());
    let group = state
        .work
        .run(move || index.group_of(&key))
        .await
        .map_err(|e| internal("group lookup failed", e))?
        .map_err(|e| internal("group lookup failed", e))?;
    let p = &envelope.provenance;
    let lineage = Lineage {
        fetched: Fetched {
            source: envelope.post.source.clone(),
            url: envelope.post.url.clone(),
            fetch_url: p.fetch_url.clone(),
            fetched_at: p.fetched_at,
            http_status: p.http_status,
            ingestor: p.ingestor.clone(),
            content_sha256: p.content_sha256.clone(),
            matched: p.matched.clone(),
        },
        kafka: envelope.kafka.clone(),
        scored: envelope.scoring.as_ref().map(|s| Scored {
            model: s.model.clone(),
            runtime: s.runtime.clone(),
            scored_at: s.scored_at,
            state: s.state,
            reason: s.reason.clone(),
        }),
        reviews: state.reviews.for_post(&id),
        accesses,
    };
    let outcome = Outcome {
        purpose: Some(purpose.clone()),
        count: 1,
        posts: vec![id],
        ..Outcome::default()
    };
    Ok((
        Extension(outcome),
        PostAnswer::Found(Box::new(PostView {
            purpose,
            post: envelope.post,
            scoring: envelope.scoring,
            lineage,
            group,
        })),
    ))
}

/// The 410 answer for a deleted post; the access is logged against its id, like a view.
fn deleted_answer(
    state: &AppState,
    id: String,
    purpose: String,
    record: DeletionRecord,
    accesses: Vec<Accessed>,
) -> (Extension<Outcome>, PostAnswer) {
    let problem = gone(&record);
    let t = record.tombstone;
    let p = t.provenance;
    let lineage = DeletedLineage {
        deleted: Deleted {
            deleted_at: t.deleted_at,
            source: t.source.clone(),
            native_id: t.native_id,
            learnt: Fetched {
                source: t.source,
                url: None,
                fetch_url: p.fetch_url,
                fetched_at: p.fetched_at,
                http_status: p.http_status,
                ingestor: p.ingestor,
                content_sha256: p.content_sha256,
                matched: p.matched,
            },
            kafka: record.kafka,
            committed_at: record.committed_at,
        },
        reviews: state.reviews.for_post(&id),
        accesses,
    };
    let outcome = Outcome {
        purpose: Some(purpose.clone()),
        count: 0,
        posts: vec![id.clone()],
        ..Outcome::default()
    };
    (
        Extension(outcome),
        PostAnswer::Gone(Box::new(GonePost {
            kind: problem.kind,
            title: problem.title,
            status: problem.status,
            detail: problem.detail,
            purpose,
            id,
            lineage,
        })),
    )
}

/// The longest review note kept, in characters.
pub const MAX_NOTE_CHARS: usize = 4000;

/// Logs a review before it is stored (stage `before storing`, status 202): a review whose
/// entry cannot be made durable is not kept, and the caller is told so.
pub(crate) async fn log_before_storing(
    state: &AppState,
    caller: &Caller,
    time: DateTime<Utc>,
    endpoint: String,
    mut params: serde_json::Map<String, serde_json::Value>,
    posts: Vec<String>,
    purpose: Option<String>,
) -> Result<(), Problem> {
    params.insert("stage".into(), "before storing".into());
    let intent = Access {
        time,
        user: Some(caller.name.clone()),
        role: Some(caller.role.to_string()),
        purpose,
        method: "POST".into(),
        endpoint,
        params,
        status: StatusCode::ACCEPTED.as_u16(),
        count: posts.len() as u64,
        posts,
    };
    state.log.append(intent).await.map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "access log unavailable",
            format!("the review was not stored because it could not be logged ({e})"),
        )
    })?;
    Ok(())
}

/// 400 when a review note is longer than [`MAX_NOTE_CHARS`].
pub(crate) fn check_note(note: &str) -> Result<(), Problem> {
    let n = note.chars().count();
    if n > MAX_NOTE_CHARS {
        return Err(Problem::bad_request(
            "invalid review",
            format!("the note has {n} characters; at most {MAX_NOTE_CHARS} are kept: shorten it"),
        ));
    }
    Ok(())
}

/// The body of a review.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `confirmed`, `false_alarm` or `unclear`.
    pub verdict: Verdict,
    /// Why.
    #[serde(default)]
    pub note: String,
}

/// Record a person's verdict on a post (analysts).
#[utoipa::path(
    post,
    path = "/v1/posts/{id}/review",
    params(("id" = String, Path, description = "Vigie id of the post")),
    request_body = ReviewRequest,
    responses(
        (status = 201, description = "The review, stored", body = Review),
        (status = 404, description = "No such post", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The post was deleted at its source", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Invalid request (missing purpose, unknown parameter, bad query)", body = Problem, content_type = "application/problem+json"),
        AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn post_review(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<ReviewRequest>, JsonRejection>,
) -> Result<(StatusCode, Extension<Outcome>, Json<Review>), Problem> {
    let Json(body) = body.map_err(|e| {
        Problem::json_body(
            "invalid review",
            &e,
            "send JSON like {\"verdict\": \"confirmed\" | \"false_alarm\" | \"unclear\", \
             \"note\": \"...\"}",
        )
    })?;
    check_note(&body.note)?;
    if body.verdict == Verdict::Duplicate {
        return Err(Problem::bad_request(
            "invalid review",
            "`duplicate` is a verdict on incidents (POST /v1/incidents/{id}/review); a post is              `confirmed`, `false_alarm` or `unclear`",
        ));
    }
    lookup(&state, &id).await?;
    let review = Review {
        post: id.clone(),
        verdict: body.verdict,
        note: body.note,
        user: caller.name.clone(),
        time: Utc::now(),
        incident: None,
        duplicate_of: None,
    };
    let mut params = serde_json::Map::new();
    params.insert(
        "verdict".into(),
        serde_json::to_value(review.verdict).unwrap_or_default(),
    );
    params.insert("note".into(), review.note.clone().into());
    // The guard then logs the request's answer (201, or 500 if storing failed) as for any
    // request.
    log_before_storing(
        &state,
        &caller,
        review.time,
        format!("/v1/posts/{id}/review"),
        params,
        vec![id.clone()],
        None,
    )
    .await?;
    let (store, stored) = (state.reviews.clone(), review.clone());
    tokio::task::spawn_blocking(move || store.add(stored))
        .await
        .map_err(|e| internal("review not stored", e))?
        .map_err(|e| internal("review not stored", e))?;
    let mut params = serde_json::Map::new();
    params.insert(
        "verdict".into(),
        serde_json::to_value(review.verdict).unwrap_or_default(),
    );
    let outcome = Outcome {
        purpose: None,
        count: 1,
        posts: vec![id],
        params,
    };
    Ok((StatusCode::CREATED, Extension(outcome), Json(review)))
}

/// The query string of `GET /v1/alerts`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertParams {
    /// Posts created at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Most alerts returned (default 50, at most 500).
    pub limit: Option<usize>,
    /// Why. Required.
    pub purpose: Option<String>,
}

/// The answer of `GET /v1/alerts`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Alerts {
    /// The purpose the request stated.
    pub purpose: String,
    /// The alert threshold on `danger`.
    pub threshold: f32,
    /// Number of alerts returned.
    pub count: usize,
    /// Unreviewed posts at or above the threshold, highest `danger` first.
    #[schema(value_type = Vec<Object>)]
    pub alerts: Vec<Hit>,
}

/// The posts at or above the alert threshold (created at or after `from`) that nobody has
/// reviewed, highest `danger` first, at most `limit`.
pub(crate) async fn unreviewed_alerts(
    state: &AppState,
    from: Option<DateTime<Utc>>,
    limit: usize,
) -> Result<Vec<Hit>, Problem> {
    let reviewed = state.reviews.reviewed();
    let request = SearchRequest {
        query: "*".into(),
        limit: (limit + reviewed.len()).min(crate::search::MAX_LIMIT + reviewed.len()),
        filters: Filters {
            from,
            min_scores: vec![("danger".into(), state.alert_threshold)],
            ..Filters::default()
        },
        sort: Sort::Score,
        cursor: None,
        collapse: false,
    };
    let index = state.index.clone();
    let mut alerts: Vec<Hit> = state
        .work
        .run(move || index.search(&request))
        .await
        .map_err(|e| internal("alerts failed", e))?
        .map_err(|e| internal("alerts failed", e))?
        .into_iter()
        .filter(|h| !reviewed.contains(&h.id))
        .collect();
    alerts.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.created_at.cmp(&a.created_at))
    });
    alerts.truncate(limit);
    Ok(alerts)
}

/// Posts at or above the alert threshold that nobody has reviewed (analysts).
#[utoipa::path(
    get,
    path = "/v1/alerts",
    params(AlertParams),
    responses(
        (status = 200, description = "The alerts", body = Alerts),
        (status = 400, description = "Invalid request (missing purpose, unknown parameter, bad query)", body = Problem, content_type = "application/problem+json"),
        AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_alerts(
    State(state): State<AppState>,
    params: Result<Query<AlertParams>, QueryRejection>,
) -> Result<(Extension<Outcome>, Json<Alerts>), Problem> {
    let Query(params) = params?;
    let purpose = require_purpose(params.purpose)?;
    let limit = params.limit.unwrap_or(50);
    if limit == 0 || limit > crate::search::MAX_LIMIT {
        return Err(Problem::bad_request(
            "invalid limit",
            format!("`limit` must be between 1 and {}", crate::search::MAX_LIMIT),
        ));
    }
    let threshold = state.alert_threshold;
    let from = crate::search::time("since", params.since)?;
    let alerts = unreviewed_alerts(&state, from, limit).await?;
    let outcome = Outcome {
        purpose: Some(purpose.clone()),
        count: alerts.len() as u64,
        posts: alerts.iter().map(|h| h.id.clone()).collect(),
        ..Outcome::default()
    };
    Ok((
        Extension(outcome),
        Json(Alerts {
            purpose,
            threshold,
            count: alerts.len(),
            alerts,
        }),
    ))
}
