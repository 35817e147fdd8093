//! The bearer-token check in front of every FHIR request.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use medicus_auth::Principal;

use super::{Access, AccessControl};
use crate::auth::BearerError;
use crate::fhir::FhirError;
use crate::state::AppState;

/// Who acted, for the audit layer (which runs outside this one and reads it from the
/// response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActor {
    pub user: String,
    pub client: String,
    pub roles: Vec<String>,
}

impl AuditActor {
    fn of(p: &Principal) -> Self {
        AuditActor {
            user: p.subject.clone(),
            client: p.client_id.clone(),
            roles: p.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        }
    }
}

/// `(tenant, rest)` of a `/fhir/{tenant}/…` path.
fn fhir_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/fhir/")?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// The capability statement and the SMART configuration are public: a client reads them
/// before it has a token.
fn is_public(rest: &str) -> bool {
    let rest = rest.trim_end_matches('/');
    rest == "metadata" || rest == ".well-known/smart-configuration"
}

/// Puts the caller's [`Access`] into every `/fhir/…` request, or answers 401 (no or a bad
/// token) or 403 (a token of another tenant) with an OperationOutcome.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some((tenant, rest)) = fhir_path(req.uri().path()) else {
        return next.run(req).await;
    };
    if state.access_control == AccessControl::Open {
        req.extensions_mut().insert(Access::Open);
        return next.run(req).await;
    }
    if is_public(rest) {
        req.extensions_mut().insert(Access::Anonymous);
        return next.run(req).await;
    }
    let tenant = tenant.to_owned();
    let Some(auth) = state.auth.clone() else {
        return unauthorized(
            "this server has no authorisation server configured; no token can be accepted",
            None,
        );
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal: Arc<Principal> = match auth.verify_bearer(header).await {
        Ok(p) => p,
        Err(BearerError::Missing) => {
            return unauthorized(
                "an access token is required (Authorization: Bearer …)",
                None,
            );
        }
        Err(BearerError::Invalid) => {
            return unauthorized(
                "the access token is invalid, expired or revoked",
                Some("invalid_token"),
            );
        }
        Err(BearerError::Unavailable) => {
            return FhirError::Unavailable("token check could not read the store".into())
                .into_response();
        }
    };
    let actor = AuditActor::of(&principal);
    if principal.tenant != tenant {
        // An unknown tenant is a 404 as everywhere (tenant ids are not secret; the caller is
        // authenticated), a known one of someone else a 403.
        let store = state.store.clone();
        let url_tenant = tenant.clone();
        let exists = tokio::task::spawn_blocking(move || store.tenant_exists(&url_tenant)).await;
        let error = match exists {
            Ok(Ok(false)) => FhirError::UnknownTenant,
            Ok(Err(e)) => FhirError::from(e),
            Err(_) => FhirError::Internal("tenant check failed".into()),
            Ok(Ok(true)) => {
                FhirError::Forbidden("the access token was issued for another tenant".into())
            }
        };
        let mut response = error.into_response();
        response.extensions_mut().insert(actor);
        return response;
    }
    req.extensions_mut().insert(Access::Token(principal));
    let mut response = next.run(req).await;
    response.extensions_mut().insert(actor);
    response
}

/// 401 with the RFC 6750 challenge.
fn unauthorized(message: &str, error: Option<&str>) -> Response {
    let mut response = FhirError::Unauthorized(message.to_owned()).into_response();
    let challenge = match error {
        Some(code) => format!("Bearer realm=\"medicus\", error=\"{code}\""),
        None => "Bearer realm=\"medicus\"".to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_paths() {
        assert_eq!(fhir_path("/fhir/t/metadata"), Some(("t", "metadata")));
        assert_eq!(fhir_path("/fhir/t"), Some(("t", "")));
        assert!(is_public("metadata"));
        assert!(is_public(".well-known/smart-configuration"));
        assert!(!is_public(""));
        assert!(!is_public("Patient"));
        assert!(!is_public("metadata/x"));
        assert_eq!(fhir_path("/auth/token"), None);
    }
}
