//! The analysts' and auditors' console: HTML pages served by `vigie serve` under `/console/`.
//!
//! ## One guard, one log
//! The console's routes are rows of the same route table as the API (`routes` in this crate):
//! each page view and each action goes through the [guard](crate::guard), which writes its
//! access-log entry before the page leaves, exactly as for `/v1/`. There is no other way in: the
//! only route that needs no session is the sign-in page
//! ([`crate::users::Permission::Open`]), and its entries are those of anonymous requests (capped
//! and rate-limited) until it signs someone in, when the entry is theirs. The static assets
//! (`/console/assets/`) hold no data and are served outside the guard, like `/healthz`.
//!
//! ## Sessions
//! A person signs in with their token and states a purpose once ([`session`]); the purpose is
//! shown on every page, can be changed, and is the purpose of every entry the session makes. The
//! cookie is `HttpOnly`, `SameSite=Strict`, and `Secure` when [`Console::secure_cookie`] is set
//! (the console served over TLS). Every unsafe request of a session (a form, a review) must
//! carry the session's CSRF token — the form field `csrf` or the header `X-CSRF-Token` — or it is
//! refused (403), logged like any refusal.
//!
//! ## Live
//! The alert queue stays current: `GET /console/queue/events` tells the page when a commit or a
//! review changed what it would show, and the page reloads — a new page view, logged like the
//! first ([`live`]).
//!
//! ## Languages
//! French and English: the browser's `Accept-Language` chooses at sign-in, and a link on every
//! page switches ([`i18n`]).

pub mod audit;
pub mod i18n;
pub mod incident;
pub mod live;
pub mod pages;
pub mod search;
pub mod session;

use crate::users::Caller;
use crate::AppState;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
pub use session::{Session, Sessions};

/// What the console shares.
#[derive(Clone, Default)]
pub struct Console {
    /// The signed-in people.
    pub sessions: Sessions,
    /// Whether the session cookie is `Secure` (set it when the console is served over TLS).
    pub secure_cookie: bool,
    /// A tile server's URL template (`https://tiles.example/{z}/{x}/{y}.png`) whose tiles the
    /// incident map draws under its places; `None` (the default, offline) draws none.
    pub map_tiles: Option<String>,
}

/// A response extension: this request signed `caller` in with `purpose` (the guard writes its
/// entry as theirs).
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Who signed in.
    pub caller: Caller,
    /// The purpose they stated.
    pub purpose: String,
}

/// The live session the request's cookie names, if its user still has the session's role.
pub(crate) fn session_of(app: &AppState, headers: &HeaderMap) -> Option<Session> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = session::cookie(cookies, session::COOKIE)?;
    let s = app.console.sessions.touch(id)?;
    match app.users.by_name(&s.caller.name) {
        Some(now) if now.role == s.caller.role => Some(s),
        // Removed, or their role changed: signed out.
        _ => {
            app.console.sessions.close(&s.id);
            None
        }
    }
}

/// `request` if it carries `csrf` (header `X-CSRF-Token`, or the field `csrf` of its form
/// body, read whole up to `max_body` bytes and handed on); else the refusal.
pub(crate) async fn check_csrf(
    request: Request,
    csrf: &str,
    max_body: usize,
) -> Result<Request, Response> {
    let refusal = || {
        (
            StatusCode::FORBIDDEN,
            "The form was refused: it does not carry this session's CSRF token. Reload the \
             page and send it again.",
        )
            .into_response()
    };
    if let Some(sent) = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
    {
        return if session::same(sent, csrf) {
            Ok(request)
        } else {
            Err(refusal())
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(refusal());
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, max_body).await.map_err(|_| {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The form is larger than {max_body} bytes."),
        )
            .into_response()
    })?;
    let carries =
        form_urlencoded::parse(&bytes).any(|(k, v)| k == "csrf" && session::same(&v, csrf));
    if !carries {
        return Err(refusal());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// To the sign-in page (a request with no live session).
pub(crate) fn to_sign_in() -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static("/console/login"))],
    )
        .into_response()
}

/// The `Set-Cookie` value of session `id` (empty and expired: signed out).
pub(crate) fn cookie_header(id: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match id {
        Some(id) => format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            session::COOKIE,
            session::LIFETIME.num_seconds()
        ),
        None => format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
            session::COOKIE
        ),
    }
}
