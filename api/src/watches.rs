//! Watch zones and their alerts: `GET`/`POST /v1/watches`, `DELETE /v1/watches/{id}` and
//! `GET /v1/alerts/stream` (analysts).
//!
//! An analyst keeps their own watches (a zone, and optionally a category, words and a minimum
//! score; see `vigie_alerts`); another analyst's watch does not exist for them (404, never 403:
//! no handle leaks). The alerts of the caller's watches arrive on `GET /v1/alerts/stream` as
//! server-sent events (`event: alert`, `id:` the alert's number): a client that reconnects with
//! `Last-Event-ID` is sent what it missed first.
//!
//! Guarantees:
//! - each alert sent on a stream is first an entry of the access log (the caller, the purpose
//!   the stream stated, the watch, the incident, the posts it shows); if that entry cannot be
//!   written the stream ends instead;
//! - a stream ends when its user is removed or the server stops; a user has at most
//!   [`STREAMS_PER_USER`] open at once and the server [`MAX_STREAMS`], so streams cannot hold
//!   every connection;
//! - a webhook of a watch made through the API must start with one of the receivers the
//!   administrator allowed (`webhook_allow`): an analyst cannot send post text to a server of
//!   their choosing. Its signing secret is shown once, in the answer that made it.

use crate::guard::Outcome;
use crate::posts::require_purpose;
use crate::users::{Caller, UserStore};
use crate::{AppState, Problem};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigie_alerts::dispatch::delivery_access;
use vigie_alerts::watch::WatchError;
use vigie_alerts::{Alert, AlertHub, Watch, WatchSpec};
use vigie_logs::AccessLog;
use vigie_record::Near;

/// Streams one user may hold open at once.
pub const STREAMS_PER_USER: usize = 4;
/// Streams the server holds open at once.
pub const MAX_STREAMS: usize = 64;

/// What the watch endpoints share: the alert hub, the webhook receivers allowed, the open
/// streams.
#[derive(Clone)]
pub struct Alerts {
    /// The watches, the ledger, the live alerts.
    pub hub: AlertHub,
    /// The receivers a webhook of a watch made through the API may be (empty: none): an origin
    /// and a path prefix each (`https://alerts.example.org/vigie/`; `http://127.0.0.1:` for
    /// any port of that host).
    pub webhook_allow: Arc<Vec<String>>,
    streams: Arc<Mutex<HashMap<String, usize>>>,
}

impl Alerts {
    /// Over `hub`, allowing webhooks that start with one of `webhook_allow`.
    pub fn new(hub: AlertHub, webhook_allow: Vec<String>) -> Self {
        Alerts {
            hub,
            webhook_allow: Arc::new(webhook_allow),
            streams: Arc::default(),
        }
    }

    /// The watches and ledger of `data_dir`, with no webhook allowed through the API.
    pub fn open(data_dir: &std::path::Path) -> Result<Self, vigie_alerts::AlertError> {
        Ok(Alerts::new(AlertHub::open(data_dir)?, Vec::new()))
    }

    /// Whether `url` is one of the allowed receivers: the same scheme, host and port as an
    /// entry of `webhook_allow`, and a path under its path (compared parsed, so that
    /// `https://a.example` does not allow `https://a.example.evil.net/`).
    fn allowed(&self, url: &str) -> bool {
        let Ok(url) = url::Url::parse(url) else {
            return false;
        };
        self.webhook_allow.iter().any(|entry| {
            url::Url::parse(entry).is_ok_and(|allowed| {
                allowed.scheme() == url.scheme()
                    && allowed.host_str().is_some()
                    && allowed.host_str() == url.host_str()
                    && (allowed.port_or_known_default() == url.port_or_known_default()
                        || (allowed.port().is_none() && entry_names_any_port(entry)))
                    && url.path().starts_with(allowed.path())
            })
        })
    }

    /// A stream slot for `user`, or `None` when they (or the server) hold too many.
    pub(crate) fn slot(&self, user: &str) -> Option<StreamSlot> {
        let mut open = self.streams.lock().ok()?;
        let total: usize = open.values().sum();
        let mine = open.get(user).copied().unwrap_or(0);
        if total >= MAX_STREAMS || mine >= STREAMS_PER_USER {
            return None;
        }
        open.insert(user.to_string(), mine + 1);
        Some(StreamSlot {
            streams: self.streams.clone(),
            user: user.to_string(),
        })
    }
}

/// Whether an allow-list entry ends its host with `:` and no port (`http://127.0.0.1:`): any
/// port of that host.
fn entry_names_any_port(entry: &str) -> bool {
    entry
        .split_once("://")
        .is_some_and(|(_, rest)| rest.split('/').next().is_some_and(|h| h.ends_with(':')))
}

/// One open stream, counted until it is dropped.
pub(crate) struct StreamSlot {
    streams: Arc<Mutex<HashMap<String, usize>>>,
    user: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.streams.lock() {
            if let Some(n) = open.get_mut(&self.user) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.user);
                }
            }
        }
    }
}

/// A watch as its owner sees it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WatchView {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Why the place is watched.
    pub purpose: String,
    /// The zone: `LAT,LON,RADIUS_KM`.
    pub near: String,
    /// Only this category or family.
    pub category: Option<String>,
    /// Only posts these words match.
    pub q: Option<String>,
    /// Only posts with at least this `danger`.
    pub min_score: Option<f32>,
    /// Where its alerts are POSTed.
    pub webhook: Option<String>,
    /// When it was made.
    pub created: DateTime<Utc>,
}

impl From<&Watch> for WatchView {
    fn from(w: &Watch) -> Self {
        WatchView {
            id: w.id.clone(),
            name: w.spec.name.clone(),
            purpose: w.spec.purpose.clone(),
            near: w.spec.near.to_string(),
            category: w.spec.category.clone(),
            q: w.spec.q.clone(),
            min_score: w.spec.min_score,
            webhook: w.spec.webhook.clone(),
            created: w.created,
        }
    }
}

/// The query string of `GET /v1/watches` and `DELETE /v1/watches/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WatchParams {
    /// Why. Required.
    pub purpose: Option<String>,
}

/// The answer of `GET /v1/watches`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WatchList {
    /// The purpose the request stated.
    pub purpose: String,
    /// The caller's watches.
    pub watches: Vec<WatchView>,
}

/// The body of `POST /v1/watches`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchRequest {
    /// A name, unique among the caller's watches.
    pub name: String,
    /// Why the place is watched: the purpose of the request, and of every alert it brings.
    pub purpose: String,
    /// The zone: `LAT,LON,RADIUS_KM`.
    pub near: String,
    /// Only this category (`fire`) or family (`fire_explosion`).
    #[serde(default)]
    pub category: Option<String>,
    /// Only posts these words match (search syntax).
    #[serde(default)]
    pub q: Option<String>,
    /// Only posts with at least this `danger` (0 to 1).
    #[serde(default)]
    pub min_score: Option<f32>,
    /// Where to POST its alerts; it must start with a receiver the administrator allowed.
    #[serde(default)]
    pub webhook: Option<String>,
}

/// The answer of `POST /v1/watches`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WatchMade {
    /// The watch.
    pub watch: WatchView,
    /// The key of its webhook's `Vigie-Signature` (HMAC-SHA256, hex), shown this once.
    pub secret: Option<String>,
}

fn internal(title: &str, e: impl std::fmt::Display) -> Problem {
    Problem::internal(title, e)
}

fn no_watch(id: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no such watch",
        format!("you have no watch `{id}` (GET /v1/watches lists yours)"),
    )
}

fn watch_params(watch: &Watch) -> serde_json::Map<String, serde_json::Value> {
    let mut params = serde_json::Map::new();
    params.insert("watch".into(), watch.id.clone().into());
    params.insert("watch_name".into(), watch.spec.name.clone().into());
    params
}

/// The caller's watches (analysts).
#[utoipa::path(
    get,
    path = "/v1/watches",
    params(WatchParams),
    responses(
        (status = 200, description = "The caller's watches", body = WatchList),
        (status = 400, description = "Invalid request (missing purpose, unknown parameter)", body = Problem, content_type = "application/problem+json"),
        crate::problem::AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_watches(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Result<Query<WatchParams>, QueryRejection>,
) -> Result<(Extension<Outcome>, Json<WatchList>), Problem> {
    let Query(p) = params?;
    let purpose = require_purpose(p.purpose)?;
    let mine = state
        .alerts
        .hub
        .watches()
        .of_owner(&caller.name)
        .map_err(|e| internal("watches failed", e))?;
    let outcome = Outcome {
        purpose: Some(purpose.clone()),
        count: mine.len() as u64,
        ..Outcome::default()
    };
    Ok((
        Extension(outcome),
        Json(WatchList {
            purpose,
            watches: mine.iter().map(WatchView::from).collect(),
        }),
    ))
}

/// Make a watch (analysts).
#[utoipa::path(
    post,
    path = "/v1/watches",
    request_body = WatchRequest,
    responses(
        (status = 201, description = "The watch, and its webhook's secret (shown once)", body = WatchMade),
        (status = 400, description = "Invalid watch (the detail says what to change)", body = Problem, content_type = "application/problem+json"),
        crate::problem::AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn post_watch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<WatchRequest>, JsonRejection>,
) -> Result<(StatusCode, Extension<Outcome>, Json<WatchMade>), Problem> {
    let Json(body) = body.map_err(|e| {
        Problem::json_body(
            "invalid watch",
            &e,
            "send JSON like {\"name\": \"Gare de Lyon\", \"purpose\": \"...\", \"near\": \
             \"48.844,2.374,2\", \"category\": \"fire\", \"q\": \"...\", \"min_score\": 0.7, \
             \"webhook\": \"https://...\"}",
        )
    })?;
    let purpose = require_purpose(Some(body.purpose.clone()))?;
    let near: Near = crate::search::near(Some(body.near.clone()))?
        .ok_or_else(|| Problem::bad_request("invalid watch", "`near` is required"))?;
    if let Some(url) = &body.webhook {
        if !state.alerts.allowed(url) {
            return Err(Problem::bad_request(
                "webhook not allowed",
                if state.alerts.webhook_allow.is_empty() {
                    "webhooks of watches made through the API are off: an administrator lists \
                     the allowed receivers in `webhook_allow` of vigie.toml, or makes the watch \
                     with `vigie watch add --webhook`"
                        .to_string()
                } else {
                    format!(
                        "a webhook must start with one of the receivers the administrator \
                         allowed: {}",
                        state.alerts.webhook_allow.join(", ")
                    )
                },
            ));
        }
    }
    if let Some(q) = body.q.clone() {
        let index = state.index.clone();
        state
            .work
            .run(move || index.posts_matching(&[], &q))
            .await
            .map_err(|e| internal("watch failed", e))?
            .map_err(|e| Problem::bad_request("invalid `q`", e.to_string()))?;
    }
    let spec = WatchSpec {
        name: body.name,
        purpose: purpose.clone(),
        near,
        category: body.category,
        q: body.q,
        min_score: body.min_score,
        webhook: body.webhook,
    };
    let store = state.alerts.hub.watches().clone();
    let owner = caller.name.clone();
    let made = tokio::task::spawn_blocking(move || store.add(&owner, spec))
        .await
        .map_err(|e| internal("watch failed", e))?;
    let watch = match made {
        Ok(w) => w,
        Err(WatchError::Refused(why)) => return Err(Problem::bad_request("invalid watch", why)),
        Err(e) => return Err(internal("watch failed", e)),
    };
    let outcome = Outcome {
        purpose: Some(purpose),
        count: 1,
        params: watch_params(&watch),
        ..Outcome::default()
    };
    Ok((
        StatusCode::CREATED,
        Extension(outcome),
        Json(WatchMade {
            watch: WatchView::from(&watch),
            secret: watch.secret.clone(),
        }),
    ))
}

/// Remove one of the caller's watches (analysts).
#[utoipa::path(
    delete,
    path = "/v1/watches/{id}",
    params(("id" = String, Path, description = "Watch id"), WatchParams),
    responses(
        (status = 204, description = "Removed: it alerts no more"),
        (status = 404, description = "The caller has no such watch", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Invalid request (missing purpose, unknown parameter)", body = Problem, content_type = "application/problem+json"),
        crate::problem::AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn delete_watch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    params: Result<Query<WatchParams>, QueryRejection>,
) -> Result<(StatusCode, Extension<Outcome>), Problem> {
    let Query(p) = params?;
    let purpose = require_purpose(p.purpose)?;
    let store = state.alerts.hub.watches().clone();
    let (key, name) = (id.clone(), caller.name.clone());
    let removed = tokio::task::spawn_blocking(move || store.remove(&key, Some(&name), &name))
        .await
        .map_err(|e| internal("watch failed", e))?
        .map_err(|e| internal("watch failed", e))?;
    if !removed {
        return Err(no_watch(&id));
    }
    let mut params = serde_json::Map::new();
    params.insert("watch".into(), id.into());
    let outcome = Outcome {
        purpose: Some(purpose),
        count: 1,
        params,
        ..Outcome::default()
    };
    Ok((StatusCode::NO_CONTENT, Extension(outcome)))
}

/// The query string of `GET /v1/alerts/stream`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// Why. Required; it is the purpose of each alert's access-log entry.
    pub purpose: Option<String>,
    /// Only the alerts of this watch (one of the caller's).
    pub watch: Option<String>,
}

/// What a stream carries from one event to the next.
struct Streaming {
    live: tokio::sync::broadcast::Receiver<Arc<Alert>>,
    waiting: VecDeque<Alert>,
    last: u64,
    caller: Caller,
    purpose: String,
    watch: Option<String>,
    hub: AlertHub,
    users: UserStore,
    log: AccessLog,
    closed: Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    _slot: StreamSlot,
}

impl Streaming {
    /// The next alert for this stream, logged; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            while let Some(alert) = self.waiting.pop_front() {
                if alert.seq <= self.last || !self.is_mine(&alert) {
                    continue;
                }
                // The user was removed (or lost the right) while streaming: stop.
                let role = self.users.by_name(&self.caller.name)?.role;
                if !role.allows(crate::users::Permission::Watches) {
                    return None;
                }
                let mut access = delivery_access(
                    &alert,
                    role.as_str(),
                    &self.purpose,
                    "GET",
                    "/v1/alerts/stream",
                );
                access.params.insert("delivery".into(), "stream".into());
                if let Err(e) = self.log.append(access).await {
                    tracing::error!("alert stream ended, its entry could not be logged: {e}");
                    return None;
                }
                self.last = alert.seq;
                let event = Event::default()
                    .id(alert.seq.to_string())
                    .event("alert")
                    .json_data(&alert)
                    .ok()?;
                return Some(event);
            }
            tokio::select! {
                () = &mut self.closed => return None,
                got = self.live.recv() => match got {
                    Ok(alert) => self.waiting.push_back((*alert).clone()),
                    // Too slow: catch up from the ledger.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        self.waiting.extend(self.hub.ledger().after(self.last));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }

    fn is_mine(&self, alert: &Alert) -> bool {
        alert.watch.owner == self.caller.name
            && self.watch.as_ref().is_none_or(|w| *w == alert.watch.id)
            && matches!(self.hub.watches().get(&alert.watch.id), Ok(Some(w)) if w.owner == self.caller.name)
    }
}

/// The alerts of the caller's watches, as server-sent events (analysts).
#[utoipa::path(
    get,
    path = "/v1/alerts/stream",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The last alert number received: those after it are sent first"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: `event: alert`, `id:` the alert number, `data:` the alert (JSON)", content_type = "text/event-stream"),
        (status = 400, description = "Invalid request (missing purpose, unknown parameter or watch)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many streams open (per user or in all)", body = Problem, content_type = "application/problem+json"),
        crate::problem::AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_alert_stream(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> Result<
    (
        Extension<Outcome>,
        Sse<impl Stream<Item = Result<Event, Infallible>>>,
    ),
    Problem,
> {
    let Query(p) = params?;
    let purpose = require_purpose(p.purpose)?;
    let hub = state.alerts.hub.clone();
    if let Some(w) = &p.watch {
        let theirs = hub
            .watches()
            .get(w)
            .map_err(|e| internal("alert stream failed", e))?;
        if theirs.is_none_or(|t| t.owner != caller.name) {
            return Err(no_watch(w));
        }
    }
    let last = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    Problem::bad_request(
                        "invalid `Last-Event-ID`",
                        "`Last-Event-ID` must be the number of an alert received",
                    )
                })?,
        ),
    };
    let slot = state.alerts.slot(&caller.name).ok_or_else(|| {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many streams",
            format!(
                "at most {STREAMS_PER_USER} alert streams per user and {MAX_STREAMS} in all are \
                 open at once; close one first"
            ),
        )
    })?;
    // Subscribed before reading the backlog, so that nothing falls between the two.
    let live = hub.subscribe();
    let (waiting, from) = match last {
        Some(seq) => (hub.ledger().after(seq).into(), seq),
        None => (VecDeque::new(), hub.ledger().last_seq()),
    };
    let mut params = serde_json::Map::new();
    if let Some(w) = &p.watch {
        params.insert("watch".into(), w.clone().into());
    }
    if let Some(seq) = last {
        params.insert("last_event_id".into(), seq.into());
    }
    let streaming = Streaming {
        live,
        waiting,
        last: from,
        caller,
        purpose: purpose.clone(),
        watch: p.watch,
        hub: hub.clone(),
        users: state.users.clone(),
        log: state.log.clone(),
        closed: Box::pin(hub.closed()),
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(streaming, |mut s| async move {
        let event = s.next().await?;
        Some((Ok::<_, Infallible>(event), s))
    });
    let outcome = Outcome {
        purpose: Some(purpose),
        params,
        ..Outcome::default()
    };
    Ok((
        Extension(outcome),
        Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowed_receivers_are_allowed_compared_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let alerts = Alerts::new(
            AlertHub::open(dir.path()).unwrap(),
            vec![
                "https://alerts.example.org/vigie/".into(),
                "https://hooks.example".into(),
                "http://127.0.0.1:".into(),
            ],
        );
        for ok in [
            "https://alerts.example.org/vigie/hook",
            "https://alerts.example.org:443/vigie/x",
            "https://hooks.example/anything",
            "http://127.0.0.1:9000/hook",
        ] {
            assert!(alerts.allowed(ok), "{ok}");
        }
        for refused in [
            "https://alerts.example.org/other",
            "http://alerts.example.org/vigie/hook",
            "https://alerts.example.org.evil.net/vigie/",
            "https://hooks.example.evil.net/",
            "https://hooks.example:8443/",
            "http://127.0.0.1.evil.net/",
            "https://127.0.0.1:9000/",
            "not a url",
        ] {
            assert!(!alerts.allowed(refused), "{refused}");
        }
        assert!(!Alerts::open(dir.path())
            .unwrap()
            .allowed("https://hooks.example/"));
    }
}
