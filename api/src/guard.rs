//! The guard around every `/v1/` request: who is calling, may they, and the access-log entry.
//!
//! For each request, in this order: the bearer token is looked up (none or unknown: 401); the
//! route's [`Permission`] is checked against the caller's role (not granted: 403); the handler
//! runs; then the entry — allowed or refused — is appended to the access log and made durable,
//! and only then is the response released. If the append fails the caller gets a 500 problem
//! instead of the response: no access goes unlogged.

use crate::access_log::Access;
use crate::users::{Caller, Permission};
use crate::{AppState, Problem};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

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

pub(crate) async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let endpoint = request.uri().path().to_string();
    let params = query_params(request.uri().query());
    let required = request.extensions().get::<MatchedPath>().and_then(|m| {
        let key = (request.method().clone(), m.as_str());
        guard.permissions.get(&key).copied()
    });
    let token = bearer(request.headers());
    let caller = token.and_then(|t| guard.app.users.authenticate(t));
    let response = match (&caller, required) {
        (None, _) => unauthorized(token.is_some()),
        (Some(c), Some(p)) if !c.role.allows(p) => forbidden(c, p),
        (Some(c), _) => {
            let mut request = request;
            request.extensions_mut().insert(c.clone());
            next.run(request).await
        }
    };
    let outcome = response
        .extensions()
        .get::<Outcome>()
        .cloned()
        .unwrap_or_default();
    let purpose = outcome.purpose.or_else(|| {
        params
            .get("purpose")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
    });
    let mut params = params;
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
    if !guard.log_accesses {
        return response;
    }
    match guard.app.log.append(access).await {
        Ok(_) => response,
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
