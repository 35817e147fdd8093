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
}

impl FhirResponse {
    pub fn new(status: StatusCode, body: Option<Value>) -> Self {
        FhirResponse {
            status,
            headers: HeaderMap::new(),
            body,
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
        FhirResponse::new(status, body)
            .version_headers(v)
            .location(fhir_base, v)
    }
}

impl IntoResponse for FhirResponse {
    fn into_response(self) -> Response {
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
        FhirResponse::new(status, Some(self.to_operation_outcome())).into_response()
    }
}
