//! Rendering FHIR responses: the single place where a [`FhirError`] becomes an HTTP response.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medicus_store::api::ResourceVersion;
use serde_json::Value;

use crate::fhir::FhirError;
use crate::fhir::headers::{ResponseMediaType, ReturnPreference, etag};
use crate::fhir::outcome::information;
use crate::fhir::time_fmt::http_date;

/// A FHIR JSON response under construction.
#[derive(Debug)]
pub struct FhirResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Option<Value>,
    /// Patients the response concerns beyond those in `body` (e.g. of a write answered
    /// without a body), for the audit trail.
    pub subjects: Vec<String>,
}

impl FhirResponse {
    pub fn new(status: StatusCode, body: Option<Value>) -> Self {
        FhirResponse {
            status,
            headers: HeaderMap::new(),
            body,
            subjects: Vec::new(),
        }
    }

    pub fn ok(body: Value) -> Self {
        FhirResponse::new(StatusCode::OK, Some(body))
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    /// `ETag` and `Last-Modified` of a version.
    pub fn version_headers(self, v: &ResourceVersion) -> Self {
        self.header(header::ETAG, &etag(v.version))
            .header(header::LAST_MODIFIED, &http_date(v.last_updated_us))
    }

    /// `Location: {base}/{Type}/{id}/_history/{n}`.
    pub fn location(self, fhir_base: &str, v: &ResourceVersion) -> Self {
        let url = format!(
            "{fhir_base}/{}/{}/_history/{}",
            v.resource_type, v.id, v.version
        );
        self.header(header::LOCATION, &url)
            .header(header::CONTENT_LOCATION, &url)
    }

    /// The response to a write, with the body chosen by `Prefer: return=`.
    pub fn written(
        status: StatusCode,
        v: &ResourceVersion,
        fhir_base: &str,
        preference: ReturnPreference,
    ) -> Self {
        let body = match preference {
            ReturnPreference::Representation => v.body.clone(),
            ReturnPreference::OperationOutcome => Some(information(format!(
                "{} {}/{} version {}",
                if status == StatusCode::CREATED {
                    "created"
                } else {
                    "updated"
                },
                v.resource_type,
                v.id,
                v.version
            ))),
            ReturnPreference::Minimal => None,
        };
        let mut response = FhirResponse::new(status, body);
        if let Some(b) = &v.body {
            response.subjects = crate::audit::patients_of_body(b);
        }
        response.version_headers(v).location(fhir_base, v)
    }
}

impl IntoResponse for FhirResponse {
    fn into_response(self) -> Response {
        // The audit middleware reads the patients from here rather than re-parsing the body.
        let mut subjects = self.subjects;
        let mut bundle_type = None;
        if let Some(body) = &self.body {
            subjects.extend(crate::audit::patients_of_body(body));
            if body.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
                bundle_type = body.get("type").and_then(Value::as_str).map(str::to_string);
            }
        }
        let mut response = match self.body {
            Some(body) => match serde_json::to_vec(&body) {
                Ok(bytes) => {
                    let mut r = (self.status, bytes).into_response();
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(ResponseMediaType::FhirJson.content_type()),
                    );
                    r
                }
                Err(e) => {
                    return FhirError::Internal(format!("serialising response: {e}"))
                        .into_response();
                }
            },
            None => self.status.into_response(),
        };
        response.headers_mut().extend(self.headers);
        if !subjects.is_empty() {
            subjects.sort();
            subjects.dedup();
            response
                .extensions_mut()
                .insert(crate::audit::AuditSubjects(subjects));
        }
        if let Some(t) = bundle_type {
            response
                .extensions_mut()
                .insert(crate::audit::ResponseBundleType(t));
        }
        response
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let FhirError::Internal(detail) = &self {
            // Internal details are for the operator, not the client; they never contain bodies.
            tracing::error!(error = %detail, "internal error");
        }
        if let FhirError::Unavailable(detail) = &self {
            tracing::warn!(error = %detail, "database unavailable");
            let mut response =
                FhirResponse::new(status, Some(self.to_operation_outcome())).into_response();
            // Pooled connections are re-established on the next request once the database is back.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
            return response;
        }
        let mut response =
            FhirResponse::new(status, Some(self.to_operation_outcome())).into_response();
        if matches!(self, FhirError::UnknownTenant) {
            response
                .extensions_mut()
                .insert(crate::audit::UnknownTenantMarker);
        }
        response
    }
}
