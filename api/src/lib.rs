//! The analysts' HTTP API (axum).
//!
//! `GET /v1/search?q=...&purpose=...&limit=...` searches the index and returns hits with their
//! scores, explanation and provenance.
//!
//! Guarantees: every search states its purpose — a request without one is refused with 400
//! before the index is touched; unknown parameters are refused, not ignored; every error is an
//! `application/problem+json` document (RFC 9457) with a message a person can act on.

mod problem;
mod search;

pub use problem::Problem;

use axum::routing::get;
use axum::Router;
use vigie_index::PostIndex;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The index searched.
    pub index: PostIndex,
}

/// The API's routes over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/search", get(search::get_search))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    use vigie_record::fixtures::scored;

    fn app(dir: &std::path::Path) -> Router {
        let index = PostIndex::open(dir).unwrap();
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
        router(AppState { index })
    }

    async fn get(app: Router, uri: &str) -> (StatusCode, String, serde_json::Value) {
        let res = app
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, ctype, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn search_returns_scored_hits_with_provenance() {
        let dir = tempfile::tempdir().unwrap();
        let (status, _, body) = get(app(dir.path()), "/v1/search?q=fire&purpose=case%207").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["purpose"], "case 7");
        assert_eq!(body["count"], 1);
        let hit = &body["hits"][0];
        assert_eq!(hit["text"], "Warehouse fire in Vénissieux, thick smoke");
        assert!((hit["score"].as_f64().unwrap() - 0.92).abs() < 1e-6);
        assert_eq!(hit["provenance"]["ingestor"]["name"], "mastodon");
        assert_eq!(hit["model"], "test-model");
    }

    #[tokio::test]
    async fn a_search_without_purpose_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for uri in ["/v1/search?q=fire", "/v1/search?q=fire&purpose=%20%20"] {
            let (status, ctype, body) = get(app(dir.path()), uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(ctype, "application/problem+json");
            assert_eq!(body["title"], "purpose required");
            assert_eq!(body["status"], 400);
        }
    }

    #[tokio::test]
    async fn unknown_parameters_bad_queries_and_limits_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let (status, _, body) =
            get(app(dir.path()), "/v1/search?q=fire&purpose=x&colour=red").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["detail"].as_str().unwrap().contains("colour"),
            "{body}"
        );

        let (status, _, body) = get(app(dir.path()), "/v1/search?q=text:(fire&purpose=x").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["title"], "invalid query");

        let (status, _, body) = get(app(dir.path()), "/v1/search?q=fire&purpose=x&limit=0").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["title"], "invalid limit");
    }
}
