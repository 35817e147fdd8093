//! The per-request context handed to FHIR handlers.
//!
//! The authentication middleware ([`crate::access::authenticate`]) puts the caller's
//! [`Access`] into the request extensions; [`RequestContext`] picks it up, so handlers never
//! look at tokens themselves.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::access::Access;
use crate::fhir::FhirError;
use crate::fhir::headers::{Prefer, parse_prefer};
use crate::state::AppState;

/// Correlates log lines and responses (`X-Request-Id`). Set by the request-id middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Everything a FHIR handler needs to know about the request besides its body and parameters.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The tenant from `/fhir/{tenant}/…`.
    pub tenant: String,
    pub request_id: RequestId,
    /// What the caller may do (from its token; see [`crate::access`]).
    pub access: Access,
    /// The tenant's FHIR base URL, e.g. `http://host/fhir/default`, for `fullUrl`, `Location`
    /// and links.
    pub fhir_base: String,
    pub prefer: Prefer,
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = FhirError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| FhirError::bad_request("invalid path"))?;
        let tenant = params
            .iter()
            .find(|(name, _)| *name == "tenant")
            .map(|(_, value)| value.to_string())
            .ok_or_else(|| FhirError::NotFoundOther("no tenant in the path".into()))?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(uuid::Uuid::new_v4().to_string()));
        let origin = origin(state.config.base_url.as_deref(), &parts.headers);
        Ok(RequestContext {
            fhir_base: format!("{origin}/fhir/{tenant}"),
            tenant,
            request_id,
            access: parts
                .extensions
                .get::<Access>()
                .cloned()
                .unwrap_or(Access::Anonymous),
            prefer: parse_prefer(
                parts
                    .headers
                    .get_all("prefer")
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            ),
        })
    }
}

/// The public origin: the configured base URL, else `X-Forwarded-Proto` (or http) + `Host`.
pub fn origin(configured: Option<&str>, headers: &HeaderMap) -> String {
    if let Some(base) = configured {
        return base.trim_end_matches('/').to_string();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let host = header("host")
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let proto = match header("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    format!("{proto}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_from_config_or_host() {
        let mut headers = HeaderMap::new();
        assert_eq!(origin(Some("https://x.org/"), &headers), "https://x.org");
        assert_eq!(origin(None, &headers), "http://localhost");
        headers.insert("host", "example.org:8080".parse().unwrap());
        assert_eq!(origin(None, &headers), "http://example.org:8080");
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(origin(None, &headers), "https://example.org:8080");
        headers.insert("host", "evil.org/<script>".parse().unwrap());
        assert_eq!(origin(None, &headers), "https://localhost");
    }
}
