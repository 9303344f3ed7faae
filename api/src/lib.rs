//! The analysts' HTTP API (axum), with accountable access.
//!
//! - `GET /v1/search?q=...&purpose=...&limit=...` (analysts) searches the index and returns hits
//!   with their scores, explanation and provenance; filters, orders, cursor paging and the
//!   collapse of near-duplicates are described in `search`. `POST /v1/search` takes the same
//!   fields as JSON; `GET /v1/stats/histogram` counts danger posts over time per category.
//! - `GET /v1/posts/{id}?purpose=...` (analysts): one post, its scores and its lineage;
//!   `POST /v1/posts/{id}/review` records an analyst's verdict; `GET /v1/alerts?since=...`
//!   lists the posts at or above the alert threshold that nobody has reviewed yet.
//! - `GET /v1/incidents?purpose=..` and `GET /v1/incidents/{id}?purpose=..` (analysts): the
//!   alert posts grouped into incidents, with place, timeline and members; `POST
//!   /v1/incidents/{id}/review` records a verdict that reaches each of its posts (see
//!   [`incidents`]).
//! - `GET /v1/audit/export?from=..&to=..&user=..` (auditors) exports the access log with its
//!   chain, checkpoints and a signed seal.
//! - `GET /healthz` answers `ok` and `GET /openapi.json` describes the API, to anyone; they
//!   touch no data (not logged).
//!
//! Guarantees: every `/v1/` request carries a bearer token of a user whose role allows it (else
//! 401 or 403); every `/v1/` request, allowed or refused, is in the [access log](vigie_logs::access_log)
//! (written by `vigie_logs`) before its answer leaves (see [`guard`]); every search states its
//! purpose — a request without one is refused with 400 before the index is touched; unknown
//! parameters are refused, not ignored; every error is an `application/problem+json` document
//! (RFC 9457) with a message a person can act on.

mod audit;
pub mod bench;
pub mod console;
pub mod guard;
pub mod incidents;
pub mod openapi;
mod posts;
mod problem;
pub mod reviews;
mod search;
pub mod server;
pub mod users;
pub mod watches;
pub mod work;

pub use problem::Problem;
pub use reviews::ReviewStore;
pub use server::ServeLimits;
pub use users::UserStore;
pub use vigie_logs::AccessLog;
pub use work::IndexWork;

use axum::http::{Method, StatusCode, Uri};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use std::collections::HashMap;
use std::sync::Arc;
use users::Permission;
use vigie_index::PostIndex;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The index searched.
    pub index: PostIndex,
    /// Where every access is recorded.
    pub log: AccessLog,
    /// Who may call.
    pub users: UserStore,
    /// Human reviews of alerts.
    pub reviews: ReviewStore,
    /// `danger` score from which a post is an alert.
    pub alert_threshold: f32,
    /// Where searches and lookups run: a fair pool bounded to the cores.
    pub work: IndexWork,
    /// Watch zones and their alerts.
    pub alerts: watches::Alerts,
    /// The console's sessions.
    pub console: console::Console,
}

/// One `/v1/` route: method, path, the permission it requires, and its handler.
struct Route {
    method: Method,
    path: &'static str,
    permission: Permission,
    handler: MethodRouter<AppState>,
}

/// Every `/v1/` route. The router and the guard are built from this one table, so a route cannot
/// exist without a permission; a test checks `/openapi.json` against it.
fn routes() -> Vec<Route> {
    let route = |method: Method, path, permission, handler| Route {
        method,
        path,
        permission,
        handler,
    };
    vec![
        route(
            Method::GET,
            "/v1/search",
            Permission::Search,
            get(search::get_search),
        ),
        route(
            Method::POST,
            "/v1/search",
            Permission::Search,
            post(search::post_search),
        ),
        route(
            Method::GET,
            "/v1/stats/histogram",
            Permission::Search,
            get(search::get_histogram),
        ),
        route(
            Method::GET,
            "/v1/alerts",
            Permission::Alerts,
            get(posts::get_alerts),
        ),
        route(
            Method::GET,
            "/v1/posts/{id}",
            Permission::ViewPost,
            get(posts::get_post),
        ),
        route(
            Method::POST,
            "/v1/posts/{id}/review",
            Permission::Review,
            post(posts::post_review),
        ),
        route(
            Method::GET,
            "/v1/incidents",
            Permission::Incidents,
            get(incidents::get_incidents),
        ),
        route(
            Method::GET,
            "/v1/incidents/{id}",
            Permission::Incidents,
            get(incidents::get_incident),
        ),
        route(
            Method::POST,
            "/v1/incidents/{id}/review",
            Permission::Incidents,
            post(incidents::post_incident_review),
        ),
        route(
            Method::GET,
            "/v1/watches",
            Permission::Watches,
            get(watches::get_watches),
        ),
        route(
            Method::POST,
            "/v1/watches",
            Permission::Watches,
            post(watches::post_watch),
        ),
        route(
            Method::DELETE,
            "/v1/watches/{id}",
            Permission::Watches,
            axum::routing::delete(watches::delete_watch),
        ),
        route(
            Method::GET,
            "/v1/alerts/stream",
            Permission::Watches,
            get(watches::get_alert_stream),
        ),
        route(
            Method::GET,
            "/console/login",
            Permission::Open,
            get(console::pages::get_login),
        ),
        route(
            Method::POST,
            "/console/login",
            Permission::Open,
            post(console::pages::post_login),
        ),
        route(
            Method::POST,
            "/console/logout",
            Permission::Console,
            post(console::pages::post_logout),
        ),
        route(
            Method::POST,
            "/console/purpose",
            Permission::Console,
            post(console::pages::post_setting),
        ),
        route(
            Method::POST,
            "/console/lang",
            Permission::Console,
            post(console::pages::post_setting),
        ),
        route(
            Method::GET,
            "/console/",
            Permission::Console,
            get(console::pages::get_home),
        ),
        route(
            Method::GET,
            "/console/queue/events",
            Permission::Alerts,
            get(console::live::get_queue_events),
        ),
        route(
            Method::GET,
            "/console/audit/verify",
            Permission::AuditExport,
            get(console::audit::get_verify),
        ),
        route(
            Method::GET,
            "/console/incidents/{id}",
            Permission::Incidents,
            get(console::incident::get_incident),
        ),
        route(
            Method::POST,
            "/console/incidents/{id}/review",
            Permission::Incidents,
            post(console::incident::post_review),
        ),
        route(
            Method::GET,
            "/console/search",
            Permission::Search,
            get(console::search::get_search),
        ),
        route(
            Method::GET,
            "/console/posts/{id}",
            Permission::ViewPost,
            get(console::pages::get_post),
        ),
        route(
            Method::POST,
            "/console/posts/{id}/review",
            Permission::Review,
            post(console::pages::post_review),
        ),
        route(
            Method::GET,
            "/v1/audit/export",
            Permission::AuditExport,
            get(audit::get_export),
        ),
    ]
}

async fn not_found(uri: Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not found",
        format!("there is no endpoint at {}", uri.path()),
    )
}

/// The API's routes over `state`, with the default [`ServeLimits`].
pub fn router(state: AppState) -> Router {
    router_with(state, &ServeLimits::default())
}

/// The API's routes over `state`, bounded by `limits` (request time, body and query size).
///
/// Layers, outermost first: the [`guard`] (token, role, access log, request timeout, query
/// length), the body limit, then a panic catcher, so a handler that panics is answered 500 and
/// that answer is logged like any other.
pub fn router_with(state: AppState, limits: &ServeLimits) -> Router {
    build_router(state, limits, true)
}

/// The same routes, tokens and roles, but **no access-log entries**: only for measuring what the
/// access log costs (`vigie bench search`). Never serve it to analysts.
pub fn router_without_access_log(state: AppState) -> Router {
    build_router(state, &ServeLimits::default(), false)
}

/// The answer to a handler that panicked: a 500 problem, without the panic's text.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    tracing::error!("a request handler panicked");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error",
        "the server failed while answering this request; it is logged, tell the administrator",
    )
    .into_response()
}

fn build_router(state: AppState, limits: &ServeLimits, log_accesses: bool) -> Router {
    assemble(state, limits, log_accesses, routes())
}

/// The router of the `/v1/` routes of `table`, behind the guard, and the open routes.
fn assemble(
    state: AppState,
    limits: &ServeLimits,
    log_accesses: bool,
    table: Vec<Route>,
) -> Router {
    let mut permissions = HashMap::new();
    let mut api = Router::new();
    for r in table {
        permissions.insert((r.method, r.path), r.permission);
        api = api.route(r.path, r.handler);
    }
    let guard = guard::Guard {
        app: state.clone(),
        permissions: Arc::new(permissions),
        log_accesses,
        limits: limits.clone(),
        anonymous: Arc::new(guard::AnonymousLimit::new(
            limits.anonymous_per_second,
            limits.anonymous_burst,
        )),
    };
    api.fallback(not_found)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(guard, guard::guard))
        .route("/healthz", get(|| async { "ok" }))
        .route("/console/assets/console.css", get(console::pages::get_css))
        .route("/console/assets/console.js", get(console::pages::get_js))
        .route("/openapi.json", get(openapi::get_openapi))
        .with_state(state)
}

/// Serves the API on `listener` with the default [`ServeLimits`] until `shutdown` resolves,
/// then signs the access log's final checkpoint.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, &ServeLimits::default(), shutdown).await
}

/// Serves the API on `listener` within `limits` (see [`server`]) until `shutdown` resolves,
/// then signs the access log's final checkpoint.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: &ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let log = state.log.clone();
    let hub = state.alerts.hub.clone();
    // The alert streams end when shutdown starts, so that draining does not wait for them.
    let shutdown = async move {
        shutdown.await;
        hub.close();
    };
    server::serve_router(listener, router_with(state, limits), limits, shutdown).await?;
    log.close()
        .await
        .map(|_| ())
        .map_err(|e| std::io::Error::other(format!("final access-log checkpoint: {e}")))
}

/// Like [`serve`] but over [`router_without_access_log`]: for load tests only (nothing is
/// logged, so nothing is signed at the end).
pub async fn serve_without_access_log(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ServeLimits::default();
    server::serve_router(
        listener,
        router_without_access_log(state),
        &limits,
        shutdown,
    )
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    use users::Role;
    use vigie_record::fixtures::scored;

    struct TestApp {
        router: Router,
        log: AccessLog,
        analyst: String,
        _dir: tempfile::TempDir,
    }

    fn app() -> TestApp {
        app_with(&ServeLimits::default(), Vec::new())
    }

    /// The app with `extra` routes besides the real ones.
    fn app_with(limits: &ServeLimits, extra: Vec<Route>) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(&dir.path().join("index")).unwrap();
        let mut w = index.writer().unwrap();
        w.upsert(&scored(
            "1",
            "Warehouse fire in Vénissieux, thick smoke",
            0.92,
        ))
        .unwrap();
        w.upsert(&scored("2", "Lovely sunset over the Saône", 0.03))
            .unwrap();
        w.commit(None).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let log = AccessLog::open(&dir.path().join("access-log"), key, Default::default()).unwrap();
        let users_file = dir.path().join("users.json");
        let analyst = users::add_user(&users_file, "ana", Role::Analyst).unwrap();
        let users = UserStore::open(&users_file).unwrap();
        let state = AppState {
            index,
            log: log.clone(),
            users,
            reviews: ReviewStore::open(&dir.path().join("reviews.jsonl")).unwrap(),
            alerts: watches::Alerts::open(dir.path()).unwrap(),
            console: Default::default(),
            alert_threshold: 0.5,
            work: crate::IndexWork::default(),
        };
        let mut table = routes();
        table.extend(extra);
        TestApp {
            router: assemble(state, limits, true, table),
            log,
            analyst,
            _dir: dir,
        }
    }

    async fn get(app: &TestApp, uri: &str) -> (StatusCode, String, serde_json::Value) {
        let res = app
            .router
            .clone()
            .oneshot(
                Request::get(uri)
                    .header(header::AUTHORIZATION, format!("Bearer {}", app.analyst))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = res.status();
        let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, ctype, serde_json::from_slice(&body).unwrap())
    }

    /// The bodies of the log's entries, in order.
    fn logged(app: &TestApp) -> Vec<vigie_logs::Access> {
        vigie_logs::access_log::entries(&std::fs::read_to_string(app.log.path()).unwrap())
    }

    #[tokio::test]
    async fn search_returns_scored_hits_with_provenance_and_is_logged() {
        let app = app();
        let (status, _, body) = get(&app, "/v1/search?q=fire&purpose=case%207").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["purpose"], "case 7");
        assert_eq!(body["count"], 1);
        let hit = &body["hits"][0];
        assert_eq!(hit["text"], "Warehouse fire in Vénissieux, thick smoke");
        assert!((hit["score"].as_f64().unwrap() - 0.92).abs() < 1e-6);
        assert_eq!(hit["provenance"]["ingestor"]["name"], "mastodon");
        assert_eq!(hit["model"], "test-model");

        let entries = logged(&app);
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e.user.as_deref(), Some("ana"));
        assert_eq!(e.role.as_deref(), Some("analyst"));
        assert_eq!(e.purpose.as_deref(), Some("case 7"));
        assert_eq!(
            (e.method.as_str(), e.endpoint.as_str()),
            ("GET", "/v1/search")
        );
        assert_eq!(e.params["q"], "fire");
        assert_eq!((e.status, e.count), (200, 1));
        assert_eq!(e.posts, [hit["id"].as_str().unwrap()]);
    }

    #[tokio::test]
    async fn a_search_without_purpose_is_refused_and_logged() {
        let app = app();
        for uri in ["/v1/search?q=fire", "/v1/search?q=fire&purpose=%20%20"] {
            let (status, ctype, body) = get(&app, uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(ctype, "application/problem+json");
            assert_eq!(body["title"], "purpose required");
            assert_eq!(body["status"], 400);
        }
        let entries = logged(&app);
        assert_eq!(entries.len(), 2);
        assert!(entries
            .iter()
            .all(|e| e.status == 400 && e.purpose.is_none() && e.posts.is_empty()));
    }

    #[tokio::test]
    async fn unknown_parameters_bad_queries_and_limits_are_explained() {
        let app = app();
        let (status, _, body) = get(&app, "/v1/search?q=fire&purpose=x&colour=red").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["detail"].as_str().unwrap().contains("colour"),
            "{body}"
        );

        let (status, _, body) = get(&app, "/v1/search?q=text:(fire&purpose=x").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["title"], "invalid query");

        let (status, _, body) = get(&app, "/v1/search?q=fire&purpose=x&limit=0").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["title"], "invalid limit");

        let (status, ctype, _) = get(&app, "/v1/nothing-here").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(ctype, "application/problem+json");
        assert_eq!(logged(&app).len(), 4);
    }

    #[tokio::test]
    async fn openapi_json_describes_exactly_the_routes_the_router_serves() {
        let app = app();
        let res = app
            .router
            .clone()
            .oneshot(Request::get("/openapi.json").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut documented = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        // The console's pages are HTML for people, not API operations: every `/v1/` route is
        // documented, and only those.
        let table: std::collections::BTreeSet<_> = routes()
            .iter()
            .filter(|r| r.path.starts_with("/v1/"))
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        assert!(routes()
            .iter()
            .all(|r| r.path.starts_with("/v1/") || r.path.starts_with("/console/")));
        assert_eq!(documented, table);
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

        // And the router answers each of them (not the fallback, not 405), with a token.
        for (method, path) in &table {
            let uri = path.replace("{id}", "some-id");
            let res = app
                .router
                .clone()
                .oneshot(
                    Request::builder()
                        .method(method.as_str())
                        .uri(&uri)
                        .header(header::AUTHORIZATION, format!("Bearer {}", app.analyst))
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from("{}"))
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_ne!(
                res.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {uri}"
            );
            let body = res.into_body().collect().await.unwrap().to_bytes();
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            assert_ne!(
                value["title"], "not found",
                "{method} {uri} hit the fallback"
            );
        }
    }

    #[tokio::test]
    async fn a_handler_that_panics_is_answered_500_and_logged() {
        async fn boom() -> &'static str {
            panic!("a bug in a handler")
        }
        let extra = vec![Route {
            method: Method::GET,
            path: "/v1/boom",
            permission: Permission::Search,
            handler: axum::routing::get(boom),
        }];
        let app = app_with(&ServeLimits::default(), extra);
        let (status, ctype, body) = get(&app, "/v1/boom?purpose=p").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ctype, "application/problem+json");
        assert!(!body.to_string().contains("a bug"), "{body}");
        let entries = logged(&app);
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].endpoint.as_str(), entries[0].status),
            ("/v1/boom", 500)
        );
        // The router still answers.
        let (status, _, _) = get(&app, "/v1/search?q=fire&purpose=p").await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_request_past_its_time_is_answered_503_and_logged() {
        async fn slow() -> &'static str {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            "late"
        }
        let extra = vec![Route {
            method: Method::GET,
            path: "/v1/slow",
            permission: Permission::Search,
            handler: axum::routing::get(slow),
        }];
        let limits = ServeLimits {
            request_timeout: std::time::Duration::from_millis(200),
            ..ServeLimits::default()
        };
        let app = app_with(&limits, extra);
        let started = std::time::Instant::now();
        let (status, _, body) = get(&app, "/v1/slow?purpose=p").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(logged(&app)[0].status, 503);
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;
        use serde_json::{json, Value};

        /// JSON values of any shape, with the fields the API knows among the keys.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| json!(f)),
                ".{0,40}".prop_map(Value::from),
                Just(Value::from("c2.1.ffffffffffff.0.0")),
                Just(Value::from("((((((((((((((((((((((((((((((((((fire")),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                let key = prop_oneof![
                    Just("q".to_string()),
                    Just("purpose".to_string()),
                    Just("limit".to_string()),
                    Just("min_score".to_string()),
                    Just("cursor".to_string()),
                    Just("from".to_string()),
                    Just("sort".to_string()),
                    Just("verdict".to_string()),
                    Just("note".to_string()),
                    "[a-z_]{1,8}",
                ];
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(key, inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// Query strings of any bytes, percent-encoded or not.
        fn query_string() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z_]{1,8}=[^&#]{0,30}(&[a-z_]{1,9}=[^&#]{0,30}){0,5}",
                prop::collection::vec(any::<u8>(), 0..60).prop_map(|bytes| {
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("purpose", "p")
                        .append_pair("q", &String::from_utf8_lossy(&bytes))
                        .append_pair(
                            "interval",
                            &String::from_utf8_lossy(&bytes[..bytes.len() / 2]),
                        )
                        .finish()
                }),
            ]
        }

        async fn send(app: &TestApp, request: Request<Body>) -> (StatusCode, String) {
            let res = app.router.clone().oneshot(request).await.unwrap();
            let status = res.status();
            let ctype = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (status, ctype)
        }

        fn runtime() -> tokio::runtime::Runtime {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(vigie_record::fixtures::fuzz_cases(128)))]

            /// Any JSON body to `POST /v1/search` or a review is answered 2xx or a 4xx
            /// problem, never a 500 or a crash, and every request is logged.
            #[test]
            fn any_json_body_is_answered_and_logged(body in json_value(), raw in ".{0,64}") {
                let app = app();
                let (statuses, entries) = runtime().block_on(async {
                    let mut statuses = Vec::new();
                    for (uri, bytes) in [
                        ("/v1/search", body.to_string()),
                        ("/v1/search", raw.clone()),
                        ("/v1/posts/some-id/review", body.to_string()),
                    ] {
                        let request = Request::post(uri)
                            .header(header::AUTHORIZATION, format!("Bearer {}", app.analyst))
                            .header(header::CONTENT_TYPE, "application/json")
                            .body(Body::from(bytes))
                            .unwrap();
                        statuses.push(send(&app, request).await);
                    }
                    (statuses, logged(&app).len())
                });
                for (status, ctype) in &statuses {
                    prop_assert!(status.is_success() || status.is_client_error(), "{status}");
                    if !status.is_success() {
                        prop_assert_eq!(ctype, "application/problem+json");
                    }
                }
                prop_assert_eq!(entries, 3);
            }

            /// Any query string to the search, histogram, alerts and post endpoints is answered
            /// 2xx or a 4xx problem, and logged.
            #[test]
            fn any_query_string_is_answered_and_logged(query in query_string()) {
                let app = app();
                let endpoints = ["/v1/search", "/v1/stats/histogram", "/v1/alerts", "/v1/posts/x"];
                let statuses = runtime().block_on(async {
                    let mut statuses = Vec::new();
                    for endpoint in endpoints {
                        let request = Request::get(format!("{endpoint}?{query}"))
                            .header(header::AUTHORIZATION, format!("Bearer {}", app.analyst))
                            .body(Body::empty());
                        // A query the URI parser refuses never reaches the server.
                        let Ok(request) = request else { continue };
                        statuses.push(send(&app, request).await);
                    }
                    statuses
                });
                for (status, _) in &statuses {
                    prop_assert!(status.is_success() || status.is_client_error(), "{status}");
                }
                prop_assert_eq!(logged(&app).len(), statuses.len());
            }
        }
    }
}
