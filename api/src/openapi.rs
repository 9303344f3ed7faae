//! The OpenAPI document of the API, served at `GET /openapi.json` (no token needed; it holds no
//! data). It is generated from the handlers' annotations, and a test checks it against the
//! router's own route table both ways, so it cannot drift from what the server answers.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vigie analyst API",
        description = "Search public posts reporting danger, with accountable access: every \
                       /v1/ request needs a bearer token, states its purpose where it reaches \
                       posts, and is recorded in a tamper-evident access log before it is \
                       answered."
    ),
    paths(
        crate::search::get_search,
        crate::search::post_search,
        crate::search::get_histogram,
        crate::posts::get_post,
        crate::posts::post_review,
        crate::posts::get_alerts,
        crate::incidents::get_incidents,
        crate::incidents::get_incident,
        crate::incidents::post_incident_review,
        crate::watches::get_watches,
        crate::watches::post_watch,
        crate::watches::delete_watch,
        crate::watches::get_alert_stream,
        crate::audit::get_export
    ),
    modifiers(&BearerToken)
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the paths refer to.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `GET /openapi.json`.
pub(crate) async fn get_openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_describes_the_problems_of_an_accountable_access() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut operations = 0;
        for (path, item) in paths {
            for (method, operation) in item.as_object().unwrap() {
                operations += 1;
                for status in ["401", "403", "500"] {
                    let response = &operation["responses"][status];
                    assert!(
                        response["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty()),
                        "{method} {path}: no {status} described"
                    );
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{method} {path}: {status} is not a problem+json"
                    );
                }
            }
        }
        assert_eq!(operations, 14, "every annotated handler is in the document");
    }
}
