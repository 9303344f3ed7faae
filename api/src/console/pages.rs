//! The console's pages: sign-in and out, the purpose, the alert queue and its reviews.
//!
//! Pages are written with `maud`, which escapes every value it prints: a post's text can hold
//! no markup. Each handler says what it showed to the guard (the [`Outcome`]: the posts whose
//! text the page holds), so the access log records it like an API answer.

use super::i18n::{preferred, t};
use super::{cookie_header, Session, SignedIn};
use crate::guard::Outcome;
use crate::reviews::{Review, Verdict};
use crate::users::{Caller, Permission, Role};
use crate::AppState;
use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use vigie_index::Hit;

/// The console's style sheet, embedded in the binary.
pub const CSS: &str = include_str!("console.css");
/// The console's script (the live queue), embedded in the binary.
pub const JS: &str = include_str!("console.js");
/// Most alerts the queue shows.
pub const QUEUE_LIMIT: usize = 50;

/// A short hash of an asset: its URL carries it and changes when it does, so the asset can be
/// cached for ever.
pub fn version(asset: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(asset.as_bytes())[..6])
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

/// `GET /console/assets/console.css` (outside the guard: no data).
pub(crate) async fn get_css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

/// `GET /console/assets/console.js` (outside the guard: no data).
pub(crate) async fn get_js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

pub(crate) fn page(lang: &str, title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Vigie" }
                link rel="stylesheet" href={ "/console/assets/console.css?v=" (version(CSS)) };
                script src={ "/console/assets/console.js?v=" (version(JS)) } defer {}
            }
            body {
                a.skip href="#main" { (t(lang, "skip")) }
                header {
                    strong { "Vigie" }
                    @if let Some(s) = session {
                        @if s.caller.role == Role::Analyst {
                            nav aria-label="Vigie" {
                                a href="/console/" { (t(lang, "alerts")) }
                                " "
                                a href="/console/search" { (t(lang, "search")) }
                            }
                        }
                        span.who { (t(lang, "signed_in_as")) " " (s.caller.name) " (" (s.caller.role.as_str()) ")" }
                        form.purpose method="post" action="/console/purpose" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            label for="purpose-field" { (t(lang, "purpose")) }
                            input #purpose-field type="text" name="purpose" value=(s.purpose) required maxlength="500";
                            button type="submit" { (t(lang, "change")) }
                        }
                        form.lang method="post" action="/console/lang" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            input type="hidden" name="lang" value=(if lang == "en" { "fr" } else { "en" });
                            button type="submit" { (t(lang, "other_lang")) }
                        }
                        form.out method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { (t(lang, "sign_out")) }
                        }
                    }
                }
                main #main { (body) }
                footer { p { (t(lang, "machine_suggests")) } }
            }
        }
    }
}

pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// The largest problem body turned into a page (the API's are a few hundred bytes).
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

/// `response` as a person's browser should see it: a refusal or an error the API answers as
/// problem JSON (RFC 9457) becomes a console page with the same status and headers, its title
/// and detail, and a way back; any other response is left as it is.
pub(crate) async fn problem_page(session: Option<&Session>, response: Response) -> Response {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/problem+json"));
    if !is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let problem: serde_json::Value = match axum::body::to_bytes(body, MAX_PROBLEM_BYTES).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    };
    let text = |k: &str| problem[k].as_str().unwrap_or("").to_string();
    let lang = session.map_or("en", |s| s.lang.as_str());
    let body = html! {
        h1 { (t(lang, "cannot_show")) }
        p.problem {
            strong { (parts.status.as_u16()) " — " (text("title")) } br;
            (text("detail"))
        }
        p { a href="/console/" { (t(lang, "back")) } }
    };
    let html = page(lang, t(lang, "cannot_show"), session, body).into_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    parts.headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Response::from_parts(parts, axum::body::Body::from(html))
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

fn login_form(lang: &str, error: Option<&str>) -> Markup {
    page(
        lang,
        t(lang, "sign_in"),
        None,
        html! {
            h1 { (t(lang, "sign_in")) }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/console/login" {
                input type="hidden" name="lang" value=(lang);
                p {
                    label for="token" { (t(lang, "token")) }
                    input #token type="password" name="token" required autocomplete="off";
                }
                p {
                    label for="purpose" { (t(lang, "purpose")) }
                    input #purpose type="text" name="purpose" required maxlength="500";
                    small { (t(lang, "purpose_help")) }
                }
                button type="submit" { (t(lang, "sign_in")) }
            }
        },
    )
}

/// `GET /console/login`: the sign-in form, in the browser's language.
pub(crate) async fn get_login(headers: HeaderMap, session: Option<Extension<Session>>) -> Response {
    if session.is_some() {
        return see_other("/console/");
    }
    let lang = preferred(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    html_response(StatusCode::OK, login_form(lang, None))
}

/// The sign-in form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginForm {
    token: String,
    purpose: String,
    #[serde(default)]
    lang: Option<String>,
}

/// `POST /console/login`: a token and a purpose make a session.
pub(crate) async fn post_login(
    State(state): State<AppState>,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = match form.lang.as_deref() {
        Some("en") => "en",
        _ => "fr",
    };
    let purpose = form.purpose.trim().to_string();
    let Some(caller) = state.users.authenticate(form.token.trim()) else {
        return html_response(
            StatusCode::UNAUTHORIZED,
            login_form(lang, Some(t(lang, "bad_token"))),
        );
    };
    if purpose.is_empty() || purpose.chars().count() > 500 {
        return html_response(
            StatusCode::BAD_REQUEST,
            login_form(lang, Some(t(lang, "need_purpose"))),
        );
    }
    if !caller.role.allows(Permission::Console) {
        return html_response(
            StatusCode::FORBIDDEN,
            login_form(
                lang,
                Some(&format!(
                    "`{}` ({}) may not use the console.",
                    caller.name, caller.role
                )),
            ),
        );
    }
    let Some(session) =
        state
            .console
            .sessions
            .open(caller.clone(), purpose.clone(), lang.to_string())
    else {
        return html_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            login_form(lang, Some("no randomness for a session id")),
        );
    };
    let mut response = see_other("/console/");
    if let Ok(v) = cookie_header(Some(&session.id), state.console.secure_cookie).parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
        .extensions_mut()
        .insert(SignedIn { caller, purpose });
    response
}

/// `POST /console/logout`.
pub(crate) async fn post_logout(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    state.console.sessions.close(&session.id);
    let mut response = see_other("/console/login");
    if let Ok(v) = cookie_header(None, state.console.secure_cookie).parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// A purpose or language change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingForm {
    #[allow(dead_code)]
    csrf: String,
    #[serde(default)]
    purpose: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

/// `POST /console/purpose` and `POST /console/lang`.
pub(crate) async fn post_setting(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(form): Form<SettingForm>,
) -> Response {
    let purpose = form
        .purpose
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty() && p.chars().count() <= 500);
    let lang = form
        .lang
        .filter(|l| super::i18n::LANGS.contains(&l.as_str()));
    state.console.sessions.update(&session.id, purpose, lang);
    see_other("/console/")
}

fn bar(lang: &str, label: &str, score: f32) -> Markup {
    let pct = (score.clamp(0.0, 1.0) * 100.0).round();
    let _ = lang;
    html! {
        div.bar {
            span.label { (label) }
            // High is bad: the browser draws it red, not the green of a good meter.
            meter min="0" max="1" low="0.3" high="0.5" optimum="0" value=(format!("{score:.2}")) aria-label=(label) { (format!("{pct}%")) }
            span.value { (format!("{score:.2}")) }
        }
    }
}

/// `text` with the words of `explanation` that pushed the score up in `<mark>` (escaped: maud
/// escapes each piece).
fn highlighted(text: &str, explanation: &[vigie_record::Contribution]) -> Markup {
    let words: Vec<String> = explanation
        .iter()
        .filter(|c| c.weight > 0.0)
        .map(|c| c.word.to_lowercase())
        .collect();
    let mut pieces: Vec<(bool, &str)> = Vec::new();
    let mut last = 0;
    let mut i = 0;
    let bytes: Vec<(usize, char)> = text.char_indices().collect();
    while i < bytes.len() {
        let (start, c) = bytes[i];
        if c.is_alphanumeric() {
            let mut j = i;
            while j < bytes.len() && bytes[j].1.is_alphanumeric() {
                j += 1;
            }
            let end = bytes.get(j).map_or(text.len(), |b| b.0);
            let word = &text[start..end];
            if words.iter().any(|w| *w == word.to_lowercase()) {
                if last < start {
                    pieces.push((false, &text[last..start]));
                }
                pieces.push((true, word));
                last = end;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    if last < text.len() {
        pieces.push((false, &text[last..]));
    }
    html! {
        @for (marked, piece) in pieces {
            @if marked { mark { (piece) } } @else { (piece) }
        }
    }
}

fn review_form(lang: &str, s: &Session, id: &str, back: Option<&str>) -> Markup {
    html! {
    form.review method="post" action={ "/console/posts/" (id) "/review" } {
        input type="hidden" name="csrf" value=(s.csrf);
        @if let Some(b) = back { input type="hidden" name="back" value=(b); }
        fieldset {
            legend { (t(lang, "review")) }
            @for (value, key) in [("confirmed", "confirmed"), ("false_alarm", "false_alarm"), ("unclear", "unclear")] {
                label {
                    input type="radio" name="verdict" value=(value) required;
                    " " (t(lang, key))
                }
            }
            label { (t(lang, "note")) " " input type="text" name="note" maxlength="2000"; }
            button type="submit" { (t(lang, "send")) }
        }
    }
    }
}

pub(crate) fn alert_card(lang: &str, s: &Session, hit: &Hit) -> Markup {
    let mut categories: Vec<(&String, &f32)> = hit
        .scores
        .iter()
        .filter(|(k, _)| k.as_str() != "danger")
        .collect();
    categories.sort_by(|a, b| b.1.total_cmp(a.1));
    html! {
        article.alert id={ "post-" (hit.id) } {
            p.text lang=[hit.lang.as_deref()] { (highlighted(&hit.text, &hit.explanation)) }
            p { a href={ "/console/posts/" (hit.id) } { (t(lang, "lineage")) } }
            dl.meta {
                dt { (t(lang, "posted")) } dd { time datetime=(hit.created_at.to_rfc3339()) { (hit.created_at.format("%Y-%m-%d %H:%M UTC")) } }
                dt { (t(lang, "source")) } dd { (hit.source) }
                dt { (t(lang, "language")) } dd { (hit.lang.as_deref().unwrap_or("?")) }
                @if let Some(p) = hit.places.first() {
                    dt { (t(lang, "place")) } dd { (p.name) " (" (p.country) ")" }
                }
                @if hit.copies > 1 {
                    dt { (t(lang, "copies")) } dd { (hit.copies) }
                }
            }
            div.scores {
                (bar(lang, t(lang, "danger"), hit.score))
                @for (label, score) in categories.iter().take(4) {
                    (bar(lang, label, **score))
                }
            }
            @if !hit.explanation.is_empty() {
                p.why { (t(lang, "why")) " : "
                    @for (i, c) in hit.explanation.iter().take(5).enumerate() {
                        @if i > 0 { ", " }
                        (c.word)
                    }
                }
            }
            (review_form(lang, s, &hit.id, None))
        }
    }
}

/// `GET /console/`: analysts see the alert queue (unreviewed alert posts, most dangerous
/// first, and the open incidents); auditors their page.
/// The queue's order: `?order=newest` (else most dangerous first).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueParams {
    #[serde(default)]
    order: Option<String>,
}

pub(crate) async fn get_home(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    params: Result<axum::extract::Query<QueueParams>, axum::extract::rejection::QueryRejection>,
) -> Result<(Extension<Outcome>, Response), crate::Problem> {
    let axum::extract::Query(params) = params?;
    let newest = params.order.as_deref() == Some("newest");
    let lang = session.lang.clone();
    let lang = lang.as_str();
    if session.caller.role == Role::Auditor {
        let body = html! {
            h1 { (t(lang, "audit")) }
            p { (t(lang, "auditor_home")) }
            (super::audit::audit_form(lang, &session, &Default::default()))
        };
        let page = page(lang, t(lang, "audit"), Some(&session), body);
        return Ok((
            Extension(Outcome::default()),
            html_response(StatusCode::OK, page),
        ));
    }
    let mut alerts = crate::posts::unreviewed_alerts(&state, None, QUEUE_LIMIT).await?;
    if newest {
        alerts.sort_by_key(|a| std::cmp::Reverse(a.created_at));
    }
    let index = state.index.clone();
    let (incidents, _) = state
        .work
        .run(move || {
            index.incidents(&vigie_index::IncidentFilter {
                status: Some(vigie_situation::incidents::Status::Open),
                limit: 20,
                ..Default::default()
            })
        })
        .await
        .map_err(|e| crate::Problem::internal("incidents failed", e))?
        .map_err(|e| crate::Problem::internal("incidents failed", e))?;
    // The queue holds what nobody has reviewed yet.
    let reviewed = state.reviews.reviewed();
    let incidents: Vec<_> = incidents
        .into_iter()
        .filter(|i| !reviewed.contains(&i.id))
        .collect();
    let body = html! {
        h1 { (t(lang, "alerts")) }
        p.order {
            (t(lang, "sort")) " : "
            @if newest {
                a href="/console/" { (t(lang, "most_dangerous")) } " · " strong { (t(lang, "newest")) }
            } @else {
                strong { (t(lang, "most_dangerous")) } " · " a href="/console/?order=newest" { (t(lang, "newest")) }
            }
        }
        @if alerts.is_empty() { p { (t(lang, "no_alerts")) } }
        section.queue aria-label=(t(lang, "alerts")) {
            @for hit in &alerts { (alert_card(lang, &session, hit)) }
        }
        h2 { (t(lang, "incidents")) }
        ul.incidents {
            @for i in &incidents {
                li {
                    a href={ "/console/incidents/" (i.id) } { strong { (i.title) } }
                    " — " (i.category)
                    @if let Some(p) = &i.place { " — " (p.name) " (" (p.country) ")" }
                    " — " (i.members.len()) " " (t(lang, "posts"))
                    " — " (t(lang, "last_seen")) " " (i.last_seen.format("%Y-%m-%d %H:%M UTC"))
                }
            }
        }
    };
    let mut posts: Vec<String> = alerts.iter().map(|h| h.id.clone()).collect();
    for best in incidents.iter().map(|i| &i.best) {
        if !best.is_empty() && !posts.contains(best) {
            posts.push(best.clone());
        }
    }
    let mut params = serde_json::Map::new();
    params.insert(
        "incidents".into(),
        incidents
            .iter()
            .map(|i| i.id.clone())
            .collect::<Vec<_>>()
            .into(),
    );
    let outcome = Outcome {
        purpose: Some(session.purpose.clone()),
        count: posts.len() as u64,
        posts,
        params,
    };
    let page = page(lang, t(lang, "alerts"), Some(&session), body);
    Ok((Extension(outcome), html_response(StatusCode::OK, page)))
}

/// A review from the queue.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewForm {
    #[allow(dead_code)]
    csrf: String,
    verdict: Verdict,
    #[serde(default)]
    note: String,
    /// `post`: back to the post's page (else the queue).
    #[serde(default)]
    back: Option<String>,
}

/// `POST /console/posts/{id}/review`: a person's verdict, logged before it is stored, then
/// back to the queue.
pub(crate) async fn post_review(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Form(form): Form<ReviewForm>,
) -> Result<(Extension<Outcome>, Response), crate::Problem> {
    if form.verdict == Verdict::Duplicate {
        return Err(crate::Problem::bad_request(
            "invalid review",
            "`duplicate` is for incidents",
        ));
    }
    crate::posts::check_note(&form.note)?;
    let index = state.index.clone();
    let key = id.clone();
    let exists = state
        .work
        .run(move || index.get(&key))
        .await
        .map_err(|e| crate::Problem::internal("review failed", e))?
        .map_err(|e| crate::Problem::internal("review failed", e))?
        .is_some();
    if !exists {
        return Err(crate::Problem::new(
            StatusCode::NOT_FOUND,
            "no such post",
            format!("there is no post `{id}`"),
        ));
    }
    let time = chrono::Utc::now();
    let review = Review {
        post: id.clone(),
        verdict: form.verdict,
        note: form.note,
        user: caller.name.clone(),
        time,
        incident: None,
        duplicate_of: None,
    };
    let mut logged = serde_json::Map::new();
    logged.insert(
        "verdict".into(),
        serde_json::to_value(form.verdict).unwrap_or_default(),
    );
    logged.insert("note".into(), review.note.clone().into());
    crate::posts::log_before_storing(
        &state,
        &caller,
        time,
        format!("/console/posts/{id}/review"),
        logged.clone(),
        vec![id.clone()],
        Some(session.purpose.clone()),
    )
    .await?;
    let store = state.reviews.clone();
    tokio::task::spawn_blocking(move || store.add(review))
        .await
        .map_err(|e| crate::Problem::internal("review failed", e))?
        .map_err(|e| crate::Problem::internal("review failed", e))?;
    let outcome = Outcome {
        purpose: Some(session.purpose.clone()),
        count: 1,
        posts: vec![id],
        params: logged,
    };
    let back = if form.back.as_deref() == Some("post") {
        format!("/console/posts/{}", outcome.posts[0])
    } else {
        "/console/".to_string()
    };
    Ok((Extension(outcome), see_other(&back)))
}

/// `GET /console/posts/{id}`: one post, its scores and its lineage — fetched, Kafka, scored,
/// reviews, every access before this one — and the review form (analysts).
pub(crate) async fn get_post(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<(Extension<Outcome>, Response), crate::Problem> {
    let lang = session.lang.clone();
    let lang = lang.as_str();
    let (outcome, answer) =
        crate::posts::post_answer(&state, id.clone(), session.purpose.clone()).await?;
    let (title, status, body) = match answer {
        crate::posts::PostAnswer::Found(view) => {
            let scores: Vec<(String, f32)> = view
                .scoring
                .as_ref()
                .map(|s| s.scores.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .unwrap_or_default();
            let explanation = view
                .scoring
                .as_ref()
                .map(|s| s.explanation.clone())
                .unwrap_or_default();
            let l = &view.lineage;
            let body = html! {
                h1 { (t(lang, "post")) }
                article.alert {
                    p.text lang=[view.post.lang.as_deref()] { (highlighted(&view.post.text, &explanation)) }
                    div.scores {
                        @for (label, score) in &scores {
                            (bar(lang, if label == "danger" { t(lang, "danger") } else { label }, *score))
                        }
                    }
                }
                h2 { (t(lang, "lineage")) }
                ol.lineage {
                    li {
                        strong { (t(lang, "fetched")) } " "
                        time datetime=(l.fetched.fetched_at.to_rfc3339()) { (l.fetched.fetched_at.format("%Y-%m-%d %H:%M:%S UTC")) }
                        " — " (l.fetched.source) " — " code { (l.fetched.fetch_url) }
                        " — " (l.fetched.ingestor.name) " " (l.fetched.ingestor.version)
                        " — SHA-256 " code { (l.fetched.content_sha256.get(..16).unwrap_or("")) "…" }
                    }
                    @if let Some(k) = &l.kafka {
                        li { strong { "Kafka" } " " (k.topic) " / " (k.partition) " / " (k.offset) }
                    }
                    @if let Some(sc) = &l.scored {
                        li {
                            strong { (t(lang, "scored")) } " "
                            time datetime=(sc.scored_at.to_rfc3339()) { (sc.scored_at.format("%Y-%m-%d %H:%M:%S UTC")) }
                            " — " code { (sc.model) }
                            @if let Some(r) = &sc.runtime { " (" (r) ")" }
                        }
                    }
                    @for r in &l.reviews {
                        li.review-step {
                            strong { (t(lang, "review")) } " "
                            time datetime=(r.time.to_rfc3339()) { (r.time.format("%Y-%m-%d %H:%M:%S UTC")) }
                            " — " (r.user) " — " (verdict_word(lang, r.verdict))
                            @if !r.note.is_empty() { " — « " (r.note) " »" }
                        }
                    }
                }
                h2 { (t(lang, "accesses")) }
                table.accesses {
                    thead { tr {
                        th scope="col" { (t(lang, "when")) }
                        th scope="col" { (t(lang, "who")) }
                        th scope="col" { (t(lang, "purpose")) }
                        th scope="col" { (t(lang, "how")) }
                    } }
                    tbody {
                        @for a in &l.accesses {
                            tr {
                                td { (a.time.format("%Y-%m-%d %H:%M:%S UTC")) }
                                td { (a.user.as_deref().unwrap_or("—")) " (" (a.role.as_deref().unwrap_or("—")) ")" }
                                td { (a.purpose.as_deref().unwrap_or("—")) }
                                td { code { (a.endpoint) } }
                            }
                        }
                    }
                }
                (review_form(lang, &session, &id, Some("post")))
            };
            (t(lang, "post"), StatusCode::OK, body)
        }
        crate::posts::PostAnswer::Gone(gone) => {
            let body = html! {
                h1 { (t(lang, "deleted")) }
                p { (gone.detail) }
                h2 { (t(lang, "accesses")) }
                ul { @for a in &gone.lineage.accesses {
                    li { (a.time.format("%Y-%m-%d %H:%M:%S UTC")) " — " (a.user.as_deref().unwrap_or("—")) " — " (a.purpose.as_deref().unwrap_or("—")) }
                } }
            };
            (t(lang, "deleted"), StatusCode::GONE, body)
        }
    };
    let page = page(lang, title, Some(&session), body);
    Ok((outcome, html_response(status, page)))
}

pub(crate) fn verdict_word(lang: &str, v: Verdict) -> &'static str {
    match v {
        Verdict::Confirmed => t(lang, "confirmed"),
        Verdict::FalseAlarm => t(lang, "false_alarm"),
        Verdict::Unclear => t(lang, "unclear"),
        Verdict::Duplicate => t(lang, "duplicate"),
    }
}
