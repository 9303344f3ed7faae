//! The guard around every `/v1/` request: who is calling, may they, and the access-log entry.
//!
//! For each request, in this order: the bearer token is looked up (none or unknown: 401); the
//! route's [`Permission`] is checked against the caller's role (not granted: 403); the handler
//! runs; then the entry — allowed or refused — is appended to the access log and made durable,
//! and only then is the response released. If the append fails the caller gets a 500 problem
//! instead of the response: no access goes unlogged.
//!
//! ## Deny by default
//! A request whose (method, route) has no row in the permission table is refused (405), whoever
//! sends it; `HEAD` needs what `GET` needs (its `Content-Length` would otherwise tell a role
//! that may not search how large an answer is). Requests that match no route reach the 404
//! fallback, which touches no data.
//!
//! ## Bounds
//! - A query string longer than [`ServeLimits::max_query_bytes`] is refused (414) without being
//!   parsed; the request is answered [`ServeLimits::request_timeout`] at the latest (503); a
//!   handler that panics is answered 500 ([`crate::router_with`]); all three are logged.
//! - The entries of **anonymous** requests — no valid token, or no such endpoint — are logged in a
//!   capped form (at most [`ANONYMOUS_PARAMS`] parameters, each name, value and the path cut to
//!   [`ANONYMOUS_FIELD_CHARS`] characters, `"_capped": true` when something was cut), and
//!   rate-limited ([`ServeLimits::anonymous_per_second`], bursts of
//!   [`ServeLimits::anonymous_burst`]): past the limit such a request is answered 429 and not
//!   logged one by one; the next anonymous entry logged says how many were refused so
//!   (`"_refused_unlogged": N`). So no client without a token can fill the log or its disk, and
//!   the log still accounts for every request. Authenticated requests are never rate-limited
//!   nor capped.

use crate::users::{Caller, Permission};
use crate::{AppState, Problem, ServeLimits};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultDirectRateLimiter, Quota};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use vigie_logs::Access;

/// What a handler tells the access log about its answer (a response extension).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The purpose the request stated (when it is not the `purpose` query parameter).
    pub purpose: Option<String>,
    /// Number of results returned.
    pub count: u64,
    /// Ids of the posts returned.
    pub posts: Vec<String>,
    /// Parameters to log besides the query string (e.g. from a JSON body).
    pub params: Map<String, Value>,
}

/// The guard's state: the app's, and the permission each route requires.
#[derive(Clone)]
pub(crate) struct Guard {
    pub app: AppState,
    /// By method and route path.
    pub permissions: Arc<HashMap<(Method, &'static str), Permission>>,
    /// Whether accesses are logged: always, except in the router of
    /// [`crate::router_without_access_log`] (load tests only).
    pub log_accesses: bool,
    /// Request time and query-string bounds.
    pub limits: ServeLimits,
    /// The rate limit of anonymous entries.
    pub anonymous: Arc<AnonymousLimit>,
}

/// Most parameters kept in the entry of an anonymous request.
pub const ANONYMOUS_PARAMS: usize = 8;

/// Longest parameter name or value, and path, kept in the entry of an anonymous request.
pub const ANONYMOUS_FIELD_CHARS: usize = 128;

/// The rate limit of anonymous requests' entries, and how many were refused unlogged.
pub(crate) struct AnonymousLimit {
    limiter: DefaultDirectRateLimiter,
    refused: AtomicU64,
}

impl AnonymousLimit {
    /// `per_second` entries a second on average, in bursts of at most `burst`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        AnonymousLimit {
            limiter: governor::RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            refused: AtomicU64::new(0),
        }
    }

    /// Whether one more anonymous entry may be logged now; counts it as refused if not.
    fn admit(&self) -> bool {
        let admitted = self.limiter.check().is_ok();
        if !admitted {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }
}

/// `text` cut to [`ANONYMOUS_FIELD_CHARS`] characters; whether it was cut.
fn cap(text: &str) -> (String, bool) {
    match text.char_indices().nth(ANONYMOUS_FIELD_CHARS) {
        Some((end, _)) => (text[..end].to_string(), true),
        None => (text.to_string(), false),
    }
}

/// The capped form of an anonymous request's path and parameters (see the module doc).
fn capped(endpoint: &str, params: Map<String, Value>) -> (String, Map<String, Value>) {
    let (endpoint, mut cut) = cap(endpoint);
    let total = params.len();
    let mut kept = Map::new();
    for (name, value) in params.into_iter().take(ANONYMOUS_PARAMS) {
        let (name, name_cut) = cap(&name);
        let text = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let (text, value_cut) = cap(&text);
        cut |= name_cut || value_cut;
        kept.insert(name, Value::String(text));
    }
    if cut || total > ANONYMOUS_PARAMS {
        kept.insert("_capped".into(), Value::Bool(true));
    }
    (endpoint, kept)
}

/// The query string as a JSON object; a repeated name keeps all its values, in an array.
fn query_params(query: Option<&str>) -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let v = Value::String(v.into_owned());
        match map.get_mut(k.as_ref()) {
            Some(Value::Array(values)) => values.push(v),
            Some(first) => *first = Value::Array(vec![first.take(), v]),
            None => {
                map.insert(k.into_owned(), v);
            }
        }
    }
    map
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn unauthorized(sent_token: bool) -> Response {
    let detail = if sent_token {
        "the bearer token is not valid (unknown, or its user was removed): ask an admin for a \
         token (`vigie users add NAME --role ROLE`)"
    } else {
        "send `Authorization: Bearer <token>`; an admin makes tokens with `vigie users add NAME \
         --role ROLE`"
    };
    let mut response =
        Problem::new(StatusCode::UNAUTHORIZED, "authentication required", detail).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn forbidden(caller: &Caller, permission: Permission) -> Response {
    let roles: Vec<&str> = permission.roles().iter().map(|r| r.as_str()).collect();
    Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "user `{}` has role `{}`, which may not {}; that takes the role {}",
            caller.name,
            caller.role,
            permission.describe(),
            if roles.is_empty() {
                "(none)".to_string()
            } else {
                roles.join(" or ")
            }
        ),
    )
    .into_response()
}

fn refused(status: StatusCode, title: &str, detail: String) -> Response {
    Problem::new(status, title, detail).into_response()
}

pub(crate) async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let mut endpoint = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let query_too_long = query.len() > guard.limits.max_query_bytes;
    // A person's browser on a console page: a refusal or an error is shown as a page.
    let wants_page = endpoint.starts_with("/console")
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    let mut params = if query_too_long {
        let mut only = Map::new();
        only.insert("_query_bytes".into(), query.len().into());
        only
    } else {
        query_params(Some(&query))
    };
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    // HEAD is a GET without its body: it takes GET's permission (deny by default otherwise).
    let as_method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    let required = matched
        .as_deref()
        .and_then(|path| guard.permissions.get(&(as_method, path)).copied());
    let token = bearer(request.headers()).map(str::to_string);
    // No bearer token: the console's session cookie, when it names a live session whose user
    // still has that role (see `crate::console`).
    let session = match &token {
        Some(_) => None,
        None => crate::console::session_of(&guard.app, request.headers()),
    };
    let caller = match (token.as_deref(), &session) {
        (Some(t), _) => guard.app.users.authenticate(t),
        (None, Some(s)) => Some(s.caller.clone()),
        (None, None) => None,
    };
    let anonymous = caller.is_none() || matched.is_none();
    if anonymous && guard.log_accesses && !guard.anonymous.admit() {
        let mut response = refused(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests",
            "too many requests without a valid token or to no endpoint; wait a second".into(),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    // A session's unsafe request carries its CSRF token (a header, or the form's `csrf`).
    let mut request = request;
    let mut csrf_refused = None;
    if let Some(s) = &session {
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            match crate::console::check_csrf(request, &s.csrf, guard.limits.max_body_bytes).await {
                Ok(checked) => request = checked,
                Err(refusal) => {
                    csrf_refused = Some(refusal);
                    request = Request::default();
                }
            }
        }
    }
    let timeout = guard.limits.request_timeout;
    let run = |mut request: Request, caller: Option<Caller>| async move {
        if let Some(c) = caller {
            request.extensions_mut().insert(c);
        }
        match tokio::time::timeout(timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "request timed out",
                format!(
                    "no answer within {timeout:?}: narrow the query (fewer terms, a shorter \
                     period) or try again later"
                ),
            ),
        }
    };
    if let Some(s) = &session {
        request.extensions_mut().insert(s.clone());
    }
    let response = match (&caller, &matched, required) {
        _ if csrf_refused.is_some() => csrf_refused.take().unwrap_or_default(),
        (_, Some(_), Some(Permission::Open)) if !query_too_long => {
            run(request, caller.clone()).await
        }
        (None, _, _) if endpoint.starts_with("/console") => crate::console::to_sign_in(),
        (None, _, _) => unauthorized(token.is_some()),
        (Some(_), _, _) if query_too_long => refused(
            StatusCode::URI_TOO_LONG,
            "query string too long",
            format!(
                "the query string is {} bytes; at most {} are accepted",
                query.len(),
                guard.limits.max_query_bytes
            ),
        ),
        (Some(_), Some(path), None) => {
            let allowed: Vec<String> = guard
                .permissions
                .keys()
                .filter(|(_, p)| p == path)
                .map(|(m, _)| m.to_string())
                .collect();
            let mut response = refused(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
                format!(
                    "{method} is not served at {path}; use {}",
                    allowed.join(" or ")
                ),
            );
            if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
        (Some(c), _, Some(p)) if !c.role.allows(p) => forbidden(c, p),
        (Some(c), _, _) => run(request, Some(c.clone())).await,
    };
    // A sign-in names who signed in: its entry is theirs, not an anonymous one.
    let signed_in = response
        .extensions()
        .get::<crate::console::SignedIn>()
        .cloned();
    let caller = signed_in.as_ref().map(|s| s.caller.clone()).or(caller);
    let anonymous = anonymous && signed_in.is_none();
    if anonymous {
        let (cut_endpoint, cut_params) = capped(&endpoint, std::mem::take(&mut params));
        endpoint = cut_endpoint;
        params = cut_params;
        let refused_before = guard.anonymous.refused.swap(0, Ordering::Relaxed);
        if refused_before > 0 {
            params.insert("_refused_unlogged".into(), refused_before.into());
        }
    }
    let outcome = response
        .extensions()
        .get::<Outcome>()
        .cloned()
        .unwrap_or_default();
    // Only a refusal shown as a page needs the session after its purpose is taken.
    let page_session = if wants_page { session.clone() } else { None };
    let purpose = outcome
        .purpose
        .or_else(|| {
            params
                .get("purpose")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
        })
        .or_else(|| signed_in.map(|s| s.purpose))
        // A console request states its session's purpose.
        .or_else(|| session.map(|s| s.purpose));
    params.extend(outcome.params);
    let access = Access {
        time: chrono::Utc::now(),
        user: caller.as_ref().map(|c| c.name.clone()),
        role: caller.as_ref().map(|c| c.role.to_string()),
        purpose,
        method,
        endpoint,
        params,
        status: response.status().as_u16(),
        count: outcome.count,
        posts: outcome.posts,
    };
    let response = if guard.log_accesses {
        logged(&guard, access, response).await
    } else {
        response
    };
    if wants_page {
        crate::console::pages::problem_page(page_session.as_ref(), response).await
    } else {
        response
    }
}

/// `response` once `access` is in the log; else the refusal that says why it was withheld.
async fn logged(guard: &Guard, access: Access, response: Response) -> Response {
    match guard.app.log.append(access).await {
        Ok(_) => response,
        Err(e @ vigie_logs::LogError::Busy { .. }) => {
            tracing::warn!("request refused, the access log is busy: {e}");
            let mut response = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "access log busy",
                format!(
                    "the answer was withheld because its access could not be queued for the log \
                     ({e}); try again in a second"
                ),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Err(e) => {
            tracing::error!("request refused, its access could not be logged: {e}");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "access log unavailable",
                format!(
                    "the answer was withheld because its access could not be logged ({e}); \
                     tell the administrator"
                ),
            )
            .into_response()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_and_bearer_headers_are_read_exactly() {
        let p = query_params(Some("q=fire%20AND%20lyon&purpose=case+7&tag=a&tag=b&tag=c"));
        assert_eq!(p["q"], "fire AND lyon");
        assert_eq!(p["purpose"], "case 7");
        assert_eq!(p["tag"], serde_json::json!(["a", "b", "c"]));
        assert!(query_params(None).is_empty());

        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "bearer  vigie_x ".parse().unwrap());
        assert_eq!(bearer(&h), Some("vigie_x"));
        h.insert(header::AUTHORIZATION, "Basic dXNlcjpwdw==".parse().unwrap());
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
