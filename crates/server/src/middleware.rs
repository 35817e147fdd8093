//! Cross-cutting layers: request ids, access logging, FHIR format negotiation and the
//! guarantee that FHIR errors are always OperationOutcomes.

use std::any::Any;
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::context::RequestId;
use crate::fhir::FhirError;
use crate::fhir::headers::{ResponseMediaType, negotiate_format};
use crate::fhir::outcome::{Issue, operation_outcome};
use crate::fhir::query::{first, parse_pairs};

const REQUEST_ID: &str = "x-request-id";

/// Takes a sane incoming `X-Request-Id` or makes one, exposes it to handlers and echoes it.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(req).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// One access-log line per request. Only the route *template*, the tenant, status and latency
/// are logged: never bodies, resource ids or query values (they may identify patients).
pub async fn access_log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "<unmatched>".to_string());
    let tenant = tenant_of(req.uri().path()).map(str::to_string);
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let response = next.run(req).await;
    tracing::info!(
        %method,
        route = %route,
        tenant = tenant.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id = %request_id,
        "request"
    );
    response
}

/// The tenant segment of a `/fhir/{tenant}/…` path.
fn tenant_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/fhir/")?;
    rest.split('/').next().filter(|t| !t.is_empty())
}

/// For `/fhir/…`: answers 406 for formats we do not speak, applies `_pretty` and the negotiated
/// media type, and turns any non-JSON error response (axum's own rejections, 404/405 fallbacks,
/// body-limit errors) into an OperationOutcome.
pub async fn fhir_format(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/fhir/") && req.uri().path() != "/fhir" {
        return next.run(req).await;
    }
    // Bulk output files are NDJSON, asked for with `Accept: application/fhir+ndjson`: no JSON
    // negotiation or rewriting applies to them.
    if req.uri().path().contains("/$export-file/") {
        return next.run(req).await;
    }
    let pairs = req.uri().query().map(parse_pairs).unwrap_or_default();
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let media = match negotiate_format(first(&pairs, "_format"), accept) {
        Ok(media) => media,
        Err(e) => return e.into_response(),
    };
    let pretty = first(&pairs, "_pretty") == Some("true");
    let response = next.run(req).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if (response.status().is_client_error() || response.status().is_server_error()) && !is_json {
        return into_operation_outcome(response).await;
    }
    if !is_json || (!pretty && media == ResponseMediaType::FhirJson) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    if media == ResponseMediaType::Json {
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(media.content_type()),
        );
    }
    if !pretty {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return FhirError::Internal("reading response body".into()).into_response();
    };
    let pretty_bytes = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| serde_json::to_vec_pretty(&v).ok())
        .unwrap_or_else(|| bytes.to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(pretty_bytes))
}

/// Replaces a plain-text error response by an OperationOutcome with the same status.
async fn into_operation_outcome(response: Response) -> Response {
    let status = response.status();
    let (parts, body) = response.into_parts();
    // Error texts of axum's rejections are short; cap what we read anyway.
    let text = to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED
        | StatusCode::NOT_ACCEPTABLE
        | StatusCode::UNSUPPORTED_MEDIA_TYPE => "not-supported",
        StatusCode::PAYLOAD_TOO_LARGE => "too-costly",
        s if s.is_server_error() => "exception",
        _ => "invalid",
    };
    let message = if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.trim().to_string()
    };
    let outcome = operation_outcome(&[Issue::error(code, message)]);
    let mut new = (status, serde_json::to_vec(&outcome).unwrap_or_default()).into_response();
    for name in [header::ALLOW, header::HeaderName::from_static(REQUEST_ID)] {
        if let Some(v) = parts.headers.get(&name) {
            new.headers_mut().insert(name, v.clone());
        }
    }
    new.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ResponseMediaType::FhirJson.content_type()),
    );
    new
}

/// The last resort: a panic becomes a 500 OperationOutcome (the payload is not echoed).
pub fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    FhirError::Internal("panic".into()).into_response()
}

#[cfg(test)]
mod tests {
    use super::tenant_of;

    #[test]
    fn tenant_from_path() {
        assert_eq!(tenant_of("/fhir/acme/Patient/1"), Some("acme"));
        assert_eq!(tenant_of("/fhir/acme"), Some("acme"));
        assert_eq!(tenant_of("/fhir/"), None);
        assert_eq!(tenant_of("/healthz"), None);
    }
}

#[cfg(test)]
mod panic_tests {
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    async fn boom() -> &'static str {
        panic!("secret patient data must not leak")
    }

    #[tokio::test]
    async fn a_panic_becomes_a_500_operation_outcome_without_the_payload() {
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(CatchPanicLayer::custom(super::panic_response));
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("OperationOutcome"));
        assert!(!text.contains("secret"));
    }
}
