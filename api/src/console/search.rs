//! `GET /console/search`: the API's search as a form — words, time range, category, minimum
//! score, source, language, near a place, order — with its results paged by the cursor and a
//! histogram of the dangerous matches per hour. The session's purpose is the search's; the page
//! view is logged with every post it shows, like `GET /v1/search`.

use super::i18n::t;
use super::pages::{alert_card, html_response, page};
use super::Session;
use crate::guard::Outcome;
use crate::search::{exact, MinScore, SearchBody};
use crate::{AppState, Problem};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::html;
use serde::{Deserialize, Serialize};

/// The form's fields (the query string of the page).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchForm {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    min_score: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    near: Option<String>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

/// The results shown per page.
pub const PAGE: usize = 20;

fn field(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// `GET /console/search` (analysts).
pub(crate) async fn get_search(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    form: Result<Query<SearchForm>, QueryRejection>,
) -> Result<(Extension<Outcome>, Response), Problem> {
    let Query(form) = form?;
    let lang = session.lang.clone();
    let lang = lang.as_str();
    let asked = form.q.is_some() || form.cursor.is_some();
    let mut results = None;
    let mut histogram = Vec::new();
    if asked {
        let body = SearchBody {
            q: exact(form.q.clone()),
            purpose: Some(session.purpose.clone()),
            limit: Some(PAGE),
            from: exact(form.from.clone()),
            to: exact(form.to.clone()),
            min_score: exact(form.min_score.clone()).map(MinScore::Text),
            category: exact(form.category.clone()),
            source: exact(form.source.clone()),
            lang: exact(form.lang.clone()),
            near: exact(form.near.clone()),
            sort: exact(form.sort.clone()),
            cursor: exact(form.cursor.clone()),
            collapse: Some(true),
        };
        let (_, found) = crate::search::run(state.clone(), body).await?;
        // The histogram: the same words and filters, at the alert threshold, per hour.
        let filters = vigie_index::Filters {
            near: crate::search::near(exact(form.near.clone()))?,
            ..crate::search::filters(
                exact(form.from.clone()),
                exact(form.to.clone()),
                Some(MinScore::Text(format!("danger:{}", state.alert_threshold))),
                exact(form.category.clone()),
                exact(form.source.clone()),
                exact(form.lang.clone()),
            )?
        };
        let query = exact(form.q.clone()).unwrap_or_else(|| "*".into());
        let index = state.index.clone();
        histogram = state
            .work
            .run(move || index.histogram(&query, &filters, 3600))
            .await
            .map_err(|e| Problem::internal("histogram failed", e))?
            .map_err(crate::search::index_problem)?;
        results = Some(found);
    }
    let peak = histogram.iter().map(|b| b.count).max().unwrap_or(1).max(1);
    let next_link = results.as_ref().and_then(|r| r.next.as_ref()).map(|c| {
        let mut next = form.clone();
        next.cursor = Some(c.to_string());
        format!("/console/search?{}", query_string(&next))
    });
    let body = html! {
        h1 { (t(lang, "search")) }
        form.search method="get" action="/console/search" role="search" {
            p { label for="q" { (t(lang, "query")) } input #q type="search" name="q" value=(field(&form.q)); }
            p { label for="from" { (t(lang, "from")) } input #from type="text" name="from" value=(field(&form.from)) placeholder="2026-11-27T00:00:00Z"; }
            p { label for="to" { (t(lang, "to")) } input #to type="text" name="to" value=(field(&form.to)); }
            p {
                label for="category" { (t(lang, "category")) }
                select #category name="category" {
                    option value="" { (t(lang, "any")) }
                    @for c in vigie_situation::incidents::CATEGORIES {
                        option value=(c) selected[form.category.as_deref() == Some(c)] { (c) }
                    }
                }
            }
            p { label for="min_score" { (t(lang, "min_score")) } input #min_score type="text" name="min_score" value=(field(&form.min_score)) placeholder="danger:0.5"; }
            p { label for="source" { (t(lang, "source")) } input #source type="text" name="source" value=(field(&form.source)); }
            p { label for="lang" { (t(lang, "language")) } input #lang type="text" name="lang" value=(field(&form.lang)) placeholder="fr"; }
            p { label for="near" { (t(lang, "near")) } input #near type="text" name="near" value=(field(&form.near)) placeholder="45.76,4.84,20"; }
            p {
                label for="sort" { (t(lang, "sort")) }
                select #sort name="sort" {
                    @for o in ["relevance", "score", "time"] {
                        option value=(o) selected[form.sort.as_deref() == Some(o)] { (o) }
                    }
                }
            }
            p { button type="submit" { (t(lang, "search")) } }
        }
        @if let Some(r) = &results {
            p.total { strong { (r.total) } " " (t(lang, "found")) }
            @if !histogram.is_empty() {
                figure {
                    figcaption { (t(lang, "per_hour")) }
                    div.histogram role="img" aria-label=(t(lang, "per_hour")) {
                        @for b in &histogram {
                            span style={ "height:" (b.count * 100 / peak) "%" } title={ (b.start.format("%Y-%m-%d %H:00")) " : " (b.count) } {}
                        }
                    }
                }
            }
            section.results {
                @for hit in &r.hits { (alert_card(lang, &session, hit)) }
            }
            @if let Some(link) = &next_link {
                p { a.next href=(link) { (t(lang, "next")) } }
            }
        }
    };
    let shown: Vec<String> = results
        .as_ref()
        .map(|r| r.hits.iter().map(|h| h.id.clone()).collect())
        .unwrap_or_default();
    let outcome = Outcome {
        purpose: Some(session.purpose.clone()),
        count: shown.len() as u64,
        posts: shown,
        ..Outcome::default()
    };
    let page = page(lang, t(lang, "search"), Some(&session), body);
    Ok((Extension(outcome), html_response(StatusCode::OK, page)))
}

/// `form` as a query string (the next page's link).
fn query_string(form: &SearchForm) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("q", &form.q),
        ("from", &form.from),
        ("to", &form.to),
        ("category", &form.category),
        ("min_score", &form.min_score),
        ("source", &form.source),
        ("lang", &form.lang),
        ("near", &form.near),
        ("sort", &form.sort),
        ("cursor", &form.cursor),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            out.append_pair(k, v);
        }
    }
    out.finish()
}
