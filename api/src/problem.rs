//! Errors as `application/problem+json` (RFC 9457).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer: a status and a message a person can act on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the title says what happened.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short summary.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong and how to fix the request.
    pub detail: String,
}

/// The answers, besides its own, of every endpoint that identifies its caller and logs the
/// access: named once here for the OpenAPI description (`responses(..., AccessProblems)`).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only described, never built: each handler answers with a `Problem`.
pub enum AccessProblems {
    /// No or unknown bearer token
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The caller's role may not do this
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// Failure, or the access could not be logged
    #[response(status = 500, content_type = "application/problem+json")]
    Failed(Problem),
}

impl Problem {
    /// A problem with `status`, `title` and `detail`.
    pub fn new(status: StatusCode, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank",
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(title: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, title, detail)
    }

    /// A JSON body that could not be read: 413 when it is over the body limit, 400 otherwise;
    /// `hint` says what to send.
    pub fn json_body(
        title: impl Into<String>,
        rejection: &axum::extract::rejection::JsonRejection,
        hint: &str,
    ) -> Self {
        let status = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, title, format!("{}; {hint}", rejection.body_text()))
    }

    /// 500 Internal Server Error: `title`, with the error as detail.
    pub fn internal(title: impl Into<String>, error: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, title, error.to_string())
    }
}

/// A query string that does not parse (unknown parameter, bad value) is a 400 naming the fault.
impl From<axum::extract::rejection::QueryRejection> for Problem {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        Problem::bad_request("invalid query parameters", e.body_text())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}
