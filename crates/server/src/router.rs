//! The application router: FHIR routes, probes, fallbacks and layers.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;

use crate::access::authenticate;
use crate::audit::record_interaction;
use crate::fhir::FhirError;
use crate::fhir::http::fhir_routes;
use crate::health::{healthz, readyz};
use crate::middleware::{access_log, fhir_format, panic_response, request_id};
use crate::state::AppState;

/// Builds the HTTP application. Layers, outermost first: panic → 500 OperationOutcome, request
/// id, access log, audit, authentication (inside the audit layer, so that refused requests
/// are audited too), panic → 500 again (so the audit layer sees a handler's panic as a
/// 500 and records it), FHIR format handling, body limit.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(crate::research_ops::routes(state.research.clone()))
        .merge(crate::research::routes())
        .merge(fhir_routes());
    if state.auth.is_some() {
        app = app.merge(crate::auth::routes());
    }
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(from_fn(fhir_format))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn_with_state(state.clone(), authenticate))
        .layer(from_fn_with_state(state.clone(), record_interaction))
        .layer(from_fn(access_log))
        .layer(from_fn(request_id))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

async fn not_found() -> FhirError {
    FhirError::NotFoundOther("no such endpoint; the FHIR API is at /fhir/{tenant}".into())
}

async fn method_not_allowed() -> FhirError {
    FhirError::MethodNotAllowed("this method is not allowed on this endpoint".into())
}
