//! Request extractors and helpers that turn axum inputs into interaction inputs, mapping every
//! rejection to a [`FhirError`] (so it is answered with an OperationOutcome).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use crate::fhir::FhirError;
use crate::fhir::query::parse_pairs;
use crate::state::AppState;

/// The raw request body, with the body-size rejection mapped to 413.
pub struct FhirBody(pub Bytes);

impl FromRequest<AppState> for FhirBody {
    type Rejection = FhirError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(FhirBody)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    FhirError::PayloadTooLarge(state.config.max_body_bytes)
                } else {
                    FhirError::bad_request(format!(
                        "could not read the request body: {}",
                        rejection.body_text()
                    ))
                }
            })
    }
}

/// The decoded query parameters, in order.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(QueryPairs(
            parts.uri.query().map(parse_pairs).unwrap_or_default(),
        ))
    }
}

/// A header as text (absent or not valid visible ASCII → `None`).
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    header_str(headers, header::CONTENT_TYPE.as_str())
}

/// `axum::extract::Path` with its rejection mapped to a FHIR error.
pub struct FhirPath<T>(pub T);

impl<T, S> FromRequestParts<S> for FhirPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| FhirPath(t))
            .map_err(|rejection| {
                FhirError::bad_request(format!("invalid path: {}", rejection.body_text()))
            })
    }
}
