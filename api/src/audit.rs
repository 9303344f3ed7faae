//! `GET /v1/audit/export` (auditors): the access log for oversight, verifiable offline with
//! `vigie audit verify FILE --pubkey access-log.pub`.

use crate::access_log::ExportFilter;
use crate::guard::Outcome;
use crate::problem::AccessProblems;
use crate::{AppState, Problem};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The media type of an export: one JSON object per line.
pub const JSONL: &str = "application/jsonl";

/// The query string of an export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Entries at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Entries before this time (RFC 3339).
    pub to: Option<String>,
    /// Entries of this user only.
    pub user: Option<String>,
    /// Why the export is made (read by the access log from the query string).
    #[allow(dead_code)]
    pub purpose: Option<String>,
}

fn parse_time(name: &str, value: Option<String>) -> Result<Option<DateTime<Utc>>, Problem> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            DateTime::parse_from_rfc3339(v.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    Problem::bad_request(
                        format!("invalid `{name}`"),
                        format!(
                            "`{name}={v}` is not an RFC 3339 time ({e}), e.g. 2026-11-27T08:00:00Z"
                        ),
                    )
                })
        })
        .transpose()
}

/// Export the access log (auditors), verifiable with `vigie audit verify`.
#[utoipa::path(
    get,
    path = "/v1/audit/export",
    params(ExportParams),
    responses(
        (status = 200, description = "Entries, omitted entries, checkpoints and the seal, one JSON object per line", body = String, content_type = "application/jsonl"),
        (status = 400, description = "Invalid request (missing purpose, unknown parameter, bad query)", body = Problem, content_type = "application/problem+json"),
        AccessProblems,
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_export(
    State(state): State<AppState>,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(params) = params?;
    let filter = ExportFilter {
        from: parse_time("from", params.from)?,
        to: parse_time("to", params.to)?,
        user: params.user.filter(|u| !u.trim().is_empty()),
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from >= to {
            return Err(Problem::bad_request(
                "empty time range",
                "`from` must be before `to`",
            ));
        }
    }
    let log = state.log.clone();
    let export = tokio::task::spawn_blocking(move || log.export(&filter))
        .await
        .map_err(|e| Problem::internal("export failed", e))?
        .map_err(|e| Problem::internal("export failed", e))?;
    let outcome = Outcome {
        count: export.selected,
        ..Outcome::default()
    };
    Ok((
        Extension(outcome),
        [(header::CONTENT_TYPE, JSONL)],
        export.bytes,
    )
        .into_response())
}
