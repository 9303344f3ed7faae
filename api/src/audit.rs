//! `GET /v1/audit/export` (auditors): the access log for oversight, verifiable offline with
//! `vigie audit verify FILE --pubkey access-log.pub`.
//!
//! The export is streamed: its stretch and the number of entries selected are found first (that
//! count is what the access log records for the request), then its lines are read from the log
//! and sent in chunks of [`CHUNK`] bytes through a queue of [`CHUNKS`] chunks, so a long log
//! costs the server no more memory than that.

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
use vigie_logs::ExportFilter;

/// The media type of an export: one JSON object per line.
pub const JSONL: &str = "application/jsonl";

/// Bytes of an export sent at a time.
pub const CHUNK: usize = 64 * 1024;

/// Chunks of an export that may wait for the client.
pub const CHUNKS: usize = 4;

/// Sends what is written to it in chunks of [`CHUNK`] bytes, waiting while [`CHUNKS`] wait.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the client went away"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

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

pub(crate) fn parse_time(
    name: &str,
    value: Option<String>,
) -> Result<Option<DateTime<Utc>>, Problem> {
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
    let plan = tokio::task::spawn_blocking(move || log.plan_export(&filter))
        .await
        .map_err(|e| Problem::internal("export failed", e))?
        .map_err(|e| Problem::internal("export failed", e))?;
    let outcome = Outcome {
        count: plan.selected(),
        ..Outcome::default()
    };
    let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS);
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        if let Err(e) = plan.write_to(&mut out) {
            tracing::warn!("audit export cut: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    Ok((Extension(outcome), [(header::CONTENT_TYPE, JSONL)], body).into_response())
}
