//! The auditors' pages: the access-log export form, and a verification result page.
//!
//! `GET /console/audit/verify?from=..&to=..&user=..` makes the export those fields select —
//! the one `GET /v1/audit/export` would hand out — and checks it with the log's public key
//! (`vigie_logs::access_log::verify_export`): the chain, every checkpoint's signature, the seal.
//! It shows counts, sequence numbers and the verdict; never a post's text (an export holds ids
//! and counts only). At most [`MAX_VERIFIED`] entries are checked here; past that the page says
//! to narrow the period or to verify offline with `vigie audit verify`.

use super::i18n::t;
use super::pages::{html_response, page};
use super::Session;
use crate::guard::Outcome;
use crate::{AppState, Problem};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;
use vigie_logs::access_log::{verify_export, ExportFilter};

/// Most entries the page verifies.
pub const MAX_VERIFIED: u64 = 200_000;

/// The form's fields.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditForm {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    user: Option<String>,
    /// The export form's purpose field (the API reads it from the query string).
    #[serde(default)]
    #[allow(dead_code)]
    purpose: Option<String>,
}

/// The export and verification form, filled with `form`.
pub(crate) fn audit_form(lang: &str, session: &Session, form: &AuditForm) -> Markup {
    let v = |f: &Option<String>| f.clone().unwrap_or_default();
    html! {
        form.search method="get" action="/console/audit/verify" {
            input type="hidden" name="purpose" value=(session.purpose);
            p { label for="from" { (t(lang, "from")) } input #from type="text" name="from" value=(v(&form.from)) placeholder="2026-11-01T00:00:00Z"; }
            p { label for="to" { (t(lang, "to")) } input #to type="text" name="to" value=(v(&form.to)); }
            p { label for="user" { (t(lang, "user")) } input #user type="text" name="user" value=(v(&form.user)); }
            p {
                button #verify type="submit" { (t(lang, "verify")) }
                " "
                button #export type="submit" formaction="/v1/audit/export" { (t(lang, "export")) }
            }
        }
    }
}

/// `GET /console/audit/verify` (auditors).
pub(crate) async fn get_verify(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    form: Result<Query<AuditForm>, QueryRejection>,
) -> Result<(Extension<Outcome>, Response), Problem> {
    let Query(form) = form?;
    let lang = session.lang.clone();
    let lang = lang.as_str();
    let filter = ExportFilter {
        from: crate::audit::parse_time("from", form.from.clone())?,
        to: crate::audit::parse_time("to", form.to.clone())?,
        user: form.user.clone().filter(|u| !u.trim().is_empty()),
    };
    let log = state.log.clone();
    let key = log.verifying_key();
    let checked = tokio::task::spawn_blocking(move || {
        let plan = log.plan_export(&filter)?;
        if plan.selected() > MAX_VERIFIED {
            return Ok::<_, vigie_logs::LogError>(None);
        }
        let mut bytes = Vec::new();
        plan.write_to(&mut bytes)?;
        Ok(Some(verify_export(&bytes, &key)))
    })
    .await
    .map_err(|e| Problem::internal("verification failed", e))?
    .map_err(|e| Problem::internal("verification failed", e))?;
    let result = match &checked {
        None => html! { p.error role="alert" { (t(lang, "too_many")) } },
        Some(Ok(report)) => html! {
            p.intact role="status" { strong { (t(lang, "intact")) } }
            dl.meta {
                dt { (t(lang, "entries")) } dd { (report.entries) }
                dt { (t(lang, "omitted")) } dd { (report.omitted) }
                dt { (t(lang, "seq_range")) } dd { (report.first) " – " (report.last) }
                dt { (t(lang, "checkpoints")) } dd { (report.checkpoints) }
            }
        },
        Some(Err(tamper)) => html! {
            p.error role="alert" { strong { (t(lang, "tampered")) } " : " (tamper.to_string()) }
        },
    };
    let body = html! {
        h1 { (t(lang, "audit")) }
        p { (t(lang, "auditor_home")) }
        (audit_form(lang, &session, &form))
        section.verdict { (result) }
    };
    let count = match &checked {
        Some(Ok(r)) => r.entries,
        _ => 0,
    };
    let outcome = Outcome {
        purpose: Some(session.purpose.clone()),
        count,
        ..Outcome::default()
    };
    let page = page(lang, t(lang, "audit"), Some(&session), body);
    Ok((Extension(outcome), html_response(StatusCode::OK, page)))
}
