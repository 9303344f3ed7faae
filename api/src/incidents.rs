//! Incidents: `GET /v1/incidents`, `GET /v1/incidents/{id}` and
//! `POST /v1/incidents/{id}/review` (analysts).
//!
//! An incident groups the alert posts that tell of one situation (see
//! `vigie_situation::incidents` for the rule, `vigie_index::incidents` for how it is stored).
//! The list answers the newest activity first, with each incident's title (the text of its
//! best post), category, place and box, first and last post times, post count, sources, peak
//! `danger` and review state. One incident adds its timeline, its posts with their scores, its
//! first, best and most-confirmed posts (most copies) and its reviews.
//!
//! Guarantees, as for posts: a purpose is required; the ids of every post whose text or scores
//! an answer shows are in the access log entry of the request, and the incident ids in its
//! parameters; a review is logged before it is stored, and reaches the lineage of each of the
//! incident's posts. The machine groups; a person decides (`confirmed`, `false_alarm`,
//! `duplicate_of` another incident).

use crate::guard::Outcome;
use crate::posts::require_purpose;
use crate::problem::AccessProblems;
use crate::reviews::{Review, Verdict};
use crate::users::Caller;
use crate::{AppState, Problem};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use vigie_index::{Hit, IncidentFilter};
use vigie_record::Place;
use vigie_situation::incidents::{BoundingBox, Incident, Status};

/// Most incidents one list answers.
pub const MAX_INCIDENTS: usize = 200;
/// Most posts one incident view lists (the newest; `post_count` says how many there are).
pub const MAX_MEMBERS: usize = 500;

fn internal(title: &str, e: impl std::fmt::Display) -> Problem {
    Problem::internal(title, e)
}

/// The query string of `GET /v1/incidents`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentParams {
    /// Why. Required.
    pub purpose: Option<String>,
    /// Incidents active (a post) at or after this time (RFC 3339).
    pub since: Option<String>,
    /// A category (`fire`) or family (`fire_explosion`).
    pub category: Option<String>,
    /// A post of the incident has a place in this disc: `LAT,LON,RADIUS_KM`.
    pub near: Option<String>,
    /// `open` or `closed`.
    pub status: Option<String>,
    /// Most incidents (default 50, at most 200).
    pub limit: Option<usize>,
}

/// The latest review of an incident.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewState {
    /// `confirmed`, `false_alarm` or `duplicate`.
    pub verdict: Verdict,
    /// The incident it duplicates, for `duplicate`.
    pub duplicate_of: Option<String>,
    /// Who.
    pub user: String,
    /// When.
    pub time: DateTime<Utc>,
}

/// An incident in a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentSummary {
    /// Its id (`inc-` and its first post's id).
    pub id: String,
    /// The text of its best post, cut to 140 characters.
    pub title: String,
    /// The category most of its posts are in.
    pub category: String,
    /// Its category family.
    pub family: String,
    /// `open` or `closed`.
    #[schema(value_type = String)]
    pub status: Status,
    /// The incident it was merged into.
    pub merged_into: Option<String>,
    /// Its place.
    #[schema(value_type = Option<Object>)]
    pub place: Option<Place>,
    /// The box around its posts' places.
    #[schema(value_type = Option<Object>)]
    pub bbox: Option<BoundingBox>,
    /// When its first post was made.
    pub first_seen: DateTime<Utc>,
    /// When its last post was made.
    pub last_seen: DateTime<Utc>,
    /// How many posts it has.
    pub post_count: usize,
    /// Their source kinds.
    pub sources: BTreeSet<String>,
    /// The highest `danger` of its posts.
    pub peak_danger: f32,
    /// Its latest review; none: not reviewed.
    pub review: Option<ReviewState>,
}

fn summary(state: &AppState, i: &Incident) -> IncidentSummary {
    let review = state
        .reviews
        .for_post(&i.id)
        .into_iter()
        .last()
        .map(|r| ReviewState {
            verdict: r.verdict,
            duplicate_of: r.duplicate_of,
            user: r.user,
            time: r.time,
        });
    IncidentSummary {
        id: i.id.clone(),
        title: i.title.clone(),
        category: i.category.clone(),
        family: i.family.clone(),
        status: i.status,
        merged_into: i.merged_into.clone(),
        place: i.place.clone(),
        bbox: i.bbox,
        first_seen: i.first_seen,
        last_seen: i.last_seen,
        post_count: i.members.len(),
        sources: i.sources.clone(),
        peak_danger: i.peak_danger,
        review,
    }
}

/// The answer of `GET /v1/incidents`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentList {
    /// The purpose the request stated.
    pub purpose: String,
    /// How many incidents match in all.
    pub total: usize,
    /// Incidents, newest activity first.
    pub incidents: Vec<IncidentSummary>,
}

fn parse_status(status: Option<String>) -> Result<Option<Status>, Problem> {
    match status.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some("open") => Ok(Some(Status::Open)),
        Some("closed") => Ok(Some(Status::Closed)),
        Some(other) => Err(Problem::bad_request(
            "invalid `status`",
            format!("`status={other}`: use `open` or `closed`"),
        )),
    }
}

/// The incidents, newest activity first (analysts).
#[utoipa::path(
    get,
    path = "/v1/incidents",
    params(IncidentParams),
    responses(
        (status = 200, description = "The incidents", body = IncidentList),
        (status = 400, description = "Invalid request (missing purpose, unknown parameter, bad value)", body = Problem, content_type = "application/problem+json"),
        AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_incidents(
    State(state): State<AppState>,
    params: Result<Query<IncidentParams>, QueryRejection>,
) -> Result<(Extension<Outcome>, Json<IncidentList>), Problem> {
    let Query(p) = params?;
    let purpose = require_purpose(p.purpose)?;
    let limit = p.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_INCIDENTS {
        return Err(Problem::bad_request(
            "invalid limit",
            format!("`limit` must be between 1 and {MAX_INCIDENTS}"),
        ));
    }
    let filter = IncidentFilter {
        since: crate::search::time("since", p.since)?,
        category: p
            .category
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
        near: crate::search::near(p.near)?,
        status: parse_status(p.status)?,
        limit,
    };
    let index = state.index.clone();
    let (found, total) = state
        .work
        .run(move || index.incidents(&filter))
        .await
        .map_err(|e| internal("incidents failed", e))?
        .map_err(|e| internal("incidents failed", e))?;
    let incidents: Vec<IncidentSummary> = found.iter().map(|i| summary(&state, i)).collect();
    let mut params = serde_json::Map::new();
    params.insert(
        "incidents".into(),
        incidents
            .iter()
            .map(|i| i.id.clone())
            .collect::<Vec<_>>()
            .into(),
    );
    // The titles are the texts of the best posts: those posts were shown.
    let outcome = Outcome {
        purpose: Some(purpose.clone()),
        count: incidents.len() as u64,
        posts: found
            .iter()
            .map(|i| i.best.clone())
            .filter(|b| !b.is_empty())
            .collect(),
        params,
    };
    Ok((
        Extension(outcome),
        Json(IncidentList {
            purpose,
            total,
            incidents,
        }),
    ))
}

/// The query string of `GET /v1/incidents/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentViewParams {
    /// Why. Required.
    pub purpose: Option<String>,
    /// Timeline interval: a number and `m`, `h` or `d` (default `1h`).
    pub interval: Option<String>,
}

/// One interval of an incident's timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineBucket {
    /// Its start.
    pub start: DateTime<Utc>,
    /// Posts made in it.
    pub count: usize,
}

/// A post of an incident, with its scores (no text: open it for that).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    /// Vigie id.
    pub id: String,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// Its source kind.
    pub source: String,
    /// Its strongest category.
    pub category: String,
    /// Its `danger` score.
    pub danger: f32,
    /// Every label's score (absent when the post left the index).
    pub scores: Option<std::collections::BTreeMap<String, f32>>,
    /// Its most confident place.
    #[schema(value_type = Option<Object>)]
    pub place: Option<Place>,
}

/// The answer of `GET /v1/incidents/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentView {
    /// The purpose the request stated.
    pub purpose: String,
    /// The incident.
    pub incident: IncidentSummary,
    /// Its posts per interval, from its first post to its last.
    pub timeline: Vec<TimelineBucket>,
    /// Its posts (the newest [`MAX_MEMBERS`]), earliest first.
    pub members: Vec<MemberView>,
    /// Its first post.
    #[schema(value_type = Option<Object>)]
    pub first_post: Option<Hit>,
    /// Its best post (highest `danger`).
    #[schema(value_type = Option<Object>)]
    pub best_post: Option<Hit>,
    /// Its most confirmed posts: the most copied (reposts, other sources), at most three.
    #[schema(value_type = Vec<Object>)]
    pub most_confirmed: Vec<Hit>,
    /// Its reviews, oldest first.
    pub reviews: Vec<Review>,
}

fn no_incident(id: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no such incident",
        format!("there is no incident `{id}` (GET /v1/incidents lists them)"),
    )
}

/// The incident's posts as the view shows them, its first, best and most-confirmed posts.
type Detail = (Vec<MemberView>, Option<Hit>, Option<Hit>, Vec<Hit>);

fn detail(
    index: &vigie_index::PostIndex,
    incident: &Incident,
) -> Result<Detail, vigie_index::IndexError> {
    let skip = incident.members.len().saturating_sub(MAX_MEMBERS);
    let mut members = Vec::new();
    for m in &incident.members[skip..] {
        let scores = index.get(&m.id)?.and_then(|e| e.scoring).map(|s| s.scores);
        members.push(MemberView {
            id: m.id.clone(),
            created_at: m.created_at,
            source: m.source.clone(),
            category: m.category.clone(),
            danger: m.danger,
            scores,
            place: m.place.clone(),
        });
    }
    let hit = |id: &str| -> Result<Option<Hit>, vigie_index::IndexError> {
        Ok(index.get(id)?.map(|e| Hit::of(e, 0.0)))
    };
    let first = hit(&incident.first_post)?;
    let best = hit(&incident.best)?;
    // Most confirmed: the posts with the most copies (groups), among the first 200.
    let mut confirmed: Vec<(u64, f32, Hit)> = Vec::new();
    for m in incident.members.iter().take(200) {
        let copies = index.group_of(&m.id)?.map_or(1, |g| g.members.len() as u64);
        if let Some(h) = hit(&m.id)? {
            confirmed.push((copies, m.danger, h));
        }
    }
    confirmed.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
    let mut seen_groups = BTreeSet::new();
    let most: Vec<Hit> = confirmed
        .into_iter()
        .filter(|(_, _, h)| seen_groups.insert(h.group.clone()))
        .take(3)
        .map(|(copies, _, mut h)| {
            h.copies = copies;
            h
        })
        .collect();
    Ok((members, first, best, most))
}

/// One incident: its timeline, posts, first, best and most-confirmed posts (analysts).
#[utoipa::path(
    get,
    path = "/v1/incidents/{id}",
    params(("id" = String, Path, description = "Incident id"), IncidentViewParams),
    responses(
        (status = 200, description = "The incident", body = IncidentView),
        (status = 404, description = "No such incident", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Invalid request (missing purpose, unknown parameter, bad value)", body = Problem, content_type = "application/problem+json"),
        AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_incident(
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<IncidentViewParams>, QueryRejection>,
) -> Result<(Extension<Outcome>, Json<IncidentView>), Problem> {
    let Query(p) = params?;
    let purpose = require_purpose(p.purpose)?;
    let interval = crate::search::interval(p.interval)?;
    let (outcome, view) = incident_view(&state, id, purpose, interval).await?;
    Ok((Extension(outcome), Json(view)))
}

/// Incident `id`, its timeline per `interval` seconds, posts and reviews, and what the view
/// shows: the `GET /v1/incidents/{id}` answer, and the console's incident page.
pub(crate) async fn incident_view(
    state: &AppState,
    id: String,
    purpose: String,
    interval: i64,
) -> Result<(Outcome, IncidentView), Problem> {
    let (index, key) = (state.index.clone(), id.clone());
    let found = state
        .work
        .run(move || -> Result<_, vigie_index::IndexError> {
            let Some(incident) = index.incident(&key)? else {
                return Ok(None);
            };
            let detail = detail(&index, &incident)?;
            Ok(Some((incident, detail)))
        })
        .await
        .map_err(|e| internal("incident failed", e))?
        .map_err(|e| internal("incident failed", e))?;
    let (incident, (members, first_post, best_post, most_confirmed)) =
        found.ok_or_else(|| no_incident(&id))?;
    let timeline = incident
        .timeline(interval)
        .into_iter()
        .map(|(start, count)| TimelineBucket { start, count })
        .collect();
    let mut posts: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
    for h in first_post.iter().chain(&best_post).chain(&most_confirmed) {
        if !posts.contains(&h.id) {
            posts.push(h.id.clone());
        }
    }
    let mut params = serde_json::Map::new();
    params.insert("incidents".into(), vec![incident.id.clone()].into());
    let outcome = Outcome {
        purpose: Some(purpose.clone()),
        count: 1,
        posts,
        params,
    };
    Ok((
        outcome,
        IncidentView {
            purpose,
            incident: summary(state, &incident),
            timeline,
            members,
            first_post,
            best_post,
            most_confirmed,
            reviews: state.reviews.for_post(&incident.id),
        },
    ))
}

/// A person's verdict on an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentVerdict {
    /// A real danger situation.
    Confirmed,
    /// Not one.
    FalseAlarm,
    /// The same situation as the incident `duplicate_of` names.
    DuplicateOf,
}

/// The body of `POST /v1/incidents/{id}/review`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentReviewRequest {
    /// `confirmed`, `false_alarm` or `duplicate_of`.
    pub verdict: IncidentVerdict,
    /// For `duplicate_of`: the incident this one duplicates.
    #[serde(default)]
    pub duplicate_of: Option<String>,
    /// Why.
    #[serde(default)]
    pub note: String,
}

/// The answer of an incident review.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentReviewed {
    /// The review of the incident.
    pub review: Review,
    /// The posts it reached (each has it in its lineage).
    pub posts: Vec<String>,
}

/// Record a person's verdict on an incident; it reaches each of its posts (analysts).
#[utoipa::path(
    post,
    path = "/v1/incidents/{id}/review",
    params(("id" = String, Path, description = "Incident id")),
    request_body = IncidentReviewRequest,
    responses(
        (status = 201, description = "The review, stored for the incident and its posts", body = IncidentReviewed),
        (status = 404, description = "No such incident", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Invalid review", body = Problem, content_type = "application/problem+json"),
        AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn post_incident_review(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Json<IncidentReviewRequest>, JsonRejection>,
) -> Result<(StatusCode, Extension<Outcome>, Json<IncidentReviewed>), Problem> {
    let Json(body) = body.map_err(|e| {
        Problem::json_body(
            "invalid review",
            &e,
            "send JSON like {\"verdict\": \"confirmed\" | \"false_alarm\" | \"duplicate_of\", \
             \"duplicate_of\": \"inc-...\", \"note\": \"...\"}",
        )
    })?;
    let (outcome, reviewed) = review_incident(&state, &caller, id, body, None).await?;
    Ok((StatusCode::CREATED, Extension(outcome), Json(reviewed)))
}

/// Records `caller`'s verdict `body` on incident `id` (logged first, with `purpose` when the
/// request stated one elsewhere than its query string: the console's session), for the incident
/// and each of its posts: `POST /v1/incidents/{id}/review`, and the console's incident page.
pub(crate) async fn review_incident(
    state: &AppState,
    caller: &Caller,
    id: String,
    body: IncidentReviewRequest,
    purpose: Option<String>,
) -> Result<(Outcome, IncidentReviewed), Problem> {
    let state = state.clone();
    crate::posts::check_note(&body.note)?;
    let (index, key) = (state.index.clone(), id.clone());
    let other = body.duplicate_of.clone();
    let (incident, other_exists) = state
        .work
        .run(move || -> Result<_, vigie_index::IndexError> {
            let incident = index.incident(&key)?;
            let other_exists = match &other {
                Some(o) => index.incident(o)?.is_some(),
                None => false,
            };
            Ok((incident, other_exists))
        })
        .await
        .map_err(|e| internal("incident failed", e))?
        .map_err(|e| internal("incident failed", e))?;
    let incident = incident.ok_or_else(|| no_incident(&id))?;
    let (verdict, duplicate_of) = match (body.verdict, body.duplicate_of) {
        (IncidentVerdict::DuplicateOf, Some(o)) if o != id && other_exists => {
            (Verdict::Duplicate, Some(o))
        }
        (IncidentVerdict::DuplicateOf, Some(o)) => {
            return Err(Problem::bad_request(
                "invalid review",
                format!("`duplicate_of`: `{o}` is not another incident of the index"),
            ))
        }
        (IncidentVerdict::DuplicateOf, None) => {
            return Err(Problem::bad_request(
                "invalid review",
                "`duplicate_of` needs the id of the incident this one duplicates",
            ))
        }
        (_, Some(_)) => {
            return Err(Problem::bad_request(
                "invalid review",
                "`duplicate_of` goes only with the verdict `duplicate_of`",
            ))
        }
        (IncidentVerdict::Confirmed, None) => (Verdict::Confirmed, None),
        (IncidentVerdict::FalseAlarm, None) => (Verdict::FalseAlarm, None),
    };
    let time = Utc::now();
    let posts: Vec<String> = incident.members.iter().map(|m| m.id.clone()).collect();
    let review = Review {
        post: id.clone(),
        verdict,
        note: body.note,
        user: caller.name.clone(),
        time,
        incident: Some(id.clone()),
        duplicate_of,
    };
    let mut params = serde_json::Map::new();
    params.insert(
        "verdict".into(),
        serde_json::to_value(verdict).unwrap_or_default(),
    );
    params.insert("incidents".into(), vec![id.clone()].into());
    if let Some(o) = &review.duplicate_of {
        params.insert("duplicate_of".into(), o.clone().into());
    }
    // Logged before it is stored, as a post review is.
    let mut logged = params.clone();
    logged.insert("note".into(), review.note.clone().into());
    crate::posts::log_before_storing(
        &state,
        caller,
        time,
        format!("/v1/incidents/{id}/review"),
        logged,
        posts.clone(),
        purpose.clone(),
    )
    .await?;
    let store = state.reviews.clone();
    let stored = review.clone();
    let members = posts.clone();
    tokio::task::spawn_blocking(move || -> Result<(), crate::reviews::ReviewError> {
        store.add(stored.clone())?;
        for post in members {
            store.add(Review {
                post,
                ..stored.clone()
            })?;
        }
        Ok(())
    })
    .await
    .map_err(|e| internal("review not stored", e))?
    .map_err(|e| internal("review not stored", e))?;
    let outcome = Outcome {
        purpose,
        count: posts.len() as u64,
        posts: posts.clone(),
        params,
    };
    Ok((outcome, IncidentReviewed { review, posts }))
}
