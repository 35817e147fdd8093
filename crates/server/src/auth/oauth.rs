//! The machine endpoints: token (RFC 6749 §3.2), introspection (RFC 7662), revocation
//! (RFC 7009), JWKS, userinfo (OIDC Core §5.3), OIDC discovery and the SMART configuration.
//! Answers are JSON; token-bearing ones carry `Cache-Control: no-store`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medicus_audit::{AuditEvent, Kind};
use medicus_auth::clients::{Client, ClientCredentials};
use medicus_auth::grants::TokenRequest;
use medicus_auth::{Auth, AuthError, OAuthError, OAuthErrorCode, Principal, Scope};
use serde_json::{Value, json};

use super::login::read_form;
use super::{Authz, BearerError, blocking};
use crate::fhir::FhirError;
use crate::state::AppState;

/// A JSON answer that must not be cached (RFC 6749 §5.1).
fn no_store(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn oauth_error(code: OAuthErrorCode, description: &str) -> Response {
    error_response(&OAuthError::new(code, description), false)
}

/// RFC 6749 §5.2; a client that tried `Basic` gets the challenge with its 401.
fn error_response(e: &OAuthError, basic: bool) -> Response {
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = no_store(status, e.to_json());
    if status == StatusCode::UNAUTHORIZED {
        let challenge = if basic {
            "Basic realm=\"medicus\""
        } else {
            "Bearer realm=\"medicus\""
        };
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

/// Any core error as an RFC 6749 error. Internal details stay in the log.
fn auth_error(e: AuthError, basic: bool) -> Response {
    let (code, description) = match e {
        AuthError::OAuth(o) => return error_response(&o, basic),
        AuthError::Invalid(_) => (OAuthErrorCode::InvalidRequest, "invalid request"),
        AuthError::InvalidScope { .. } => (OAuthErrorCode::InvalidScope, "invalid scope"),
        AuthError::InvalidToken(_) | AuthError::NotFound(_) => {
            (OAuthErrorCode::InvalidGrant, "invalid grant")
        }
        AuthError::Store(_) | AuthError::Contention(_) => {
            tracing::warn!(error = %e, "auth endpoint: store unavailable");
            let mut r = error_response(
                &OAuthError::new(OAuthErrorCode::ServerError, "temporarily unavailable"),
                basic,
            );
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return r;
        }
        AuthError::Exists(_) | AuthError::Corrupt(_) | AuthError::Crypto(_) => {
            tracing::error!(error = %e, "auth endpoint failed");
            (OAuthErrorCode::ServerError, "internal error")
        }
    };
    error_response(&OAuthError::new(code, description), basic)
}

/// The form of a client-authenticated endpoint: each parameter at most once (RFC 6749 §3.2).
struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    fn get(&self, name: &str) -> Result<Option<String>, OAuthError> {
        let mut values = self.pairs.iter().filter(|(n, _)| n == name);
        let first = values.next().map(|(_, v)| v.clone());
        if values.next().is_some() {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidRequest,
                format!("parameter {name} given more than once"),
            ));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }

    /// The client's credentials from the form and an `Authorization: Basic` header.
    fn credentials(&self, headers: &HeaderMap) -> Result<ClientCredentials, AuthError> {
        let creds = ClientCredentials {
            client_id: self.get("client_id")?,
            client_secret: self.get("client_secret")?,
            client_assertion_type: self.get("client_assertion_type")?,
            client_assertion: self.get("client_assertion")?,
        };
        creds.with_authorization(authorization(headers))
    }
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn uses_basic(headers: &HeaderMap) -> bool {
    authorization(headers).is_some_and(|a| {
        a.trim_start()
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("basic "))
    })
}

async fn form(req: Request) -> Result<(HeaderMap, Form), Response> {
    let (parts, form) = form_parts(req).await?;
    Ok((parts.headers, form))
}

async fn form_parts(req: Request) -> Result<(Parts, Form), Response> {
    let (parts, body) = req.into_parts();
    match read_form(&parts.headers, body).await {
        Ok(pairs) => Ok((parts, Form { pairs })),
        Err(message) => Err(oauth_error(OAuthErrorCode::InvalidRequest, message)),
    }
}

/// `token-issued`: who got a token for which tenant and patient, by which grant.
fn token_event(grant_type: &str, p: &Principal) -> AuditEvent {
    let mut event = AuditEvent::new(Some(p.tenant.clone()), Kind::TokenIssued);
    event.status = 200;
    event.outcome_desc = Some(grant_type.to_owned());
    event.agent.user = Some(p.subject.clone());
    event.agent.client = Some(p.client_id.clone());
    event.agent.roles = p.roles.iter().map(|r| r.as_str().to_owned()).collect();
    event.subjects = p.patient.iter().map(|id| format!("Patient/{id}")).collect();
    event
}

/// `POST /auth/token`.
pub(crate) async fn token(
    Authz(auth): Authz,
    State(state): State<AppState>,
    req: Request,
) -> Response {
    let (parts, form) = match form_parts(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let headers = &parts.headers;
    let basic = uses_basic(headers);
    let request = (|| -> Result<TokenRequest, AuthError> {
        Ok(TokenRequest {
            grant_type: form.get("grant_type")?.ok_or_else(|| {
                OAuthError::new(OAuthErrorCode::InvalidRequest, "grant_type missing")
            })?,
            code: form.get("code")?,
            redirect_uri: form.get("redirect_uri")?,
            code_verifier: form.get("code_verifier")?,
            refresh_token: form.get("refresh_token")?,
            scope: form.get("scope")?,
            credentials: form.credentials(headers)?,
        })
    })();
    let request = match request {
        Ok(r) => r,
        Err(e) => return auth_error(e, basic),
    };
    let core = auth.core.clone();
    let issued = blocking(move || {
        let answer = core.token(&request)?;
        // Only for the audit event; a token just issued verifies.
        let principal = core.verify_access_token(&answer.access_token).ok();
        Ok((answer, principal, request.grant_type))
    })
    .await;
    match issued {
        Ok((answer, principal, grant_type)) => {
            if let Some(p) = principal {
                super::audit(&state, &parts, token_event(&grant_type, &p)).await;
            }
            match serde_json::to_value(&answer) {
                Ok(body) => no_store(StatusCode::OK, body),
                Err(_) => oauth_error(OAuthErrorCode::ServerError, "internal error"),
            }
        }
        Err(e) => auth_error(e, basic),
    }
}

/// The `token` parameter and the caller's credentials of introspection and revocation.
fn token_and_client(
    headers: &HeaderMap,
    form: &Form,
) -> Result<(String, ClientCredentials), AuthError> {
    let token = form
        .get("token")?
        .ok_or_else(|| OAuthError::new(OAuthErrorCode::InvalidRequest, "token missing"))?;
    Ok((token, form.credentials(headers)?))
}

/// `POST /auth/introspect` (RFC 7662). Only confidential clients (resource servers, backend
/// services) may introspect, and only tokens of their tenant are reported active.
pub(crate) async fn introspect(Authz(auth): Authz, req: Request) -> Response {
    with_token_and_client(auth.core.clone(), req, |core, client, token| {
        if !client.is_confidential() {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidClient,
                "introspection needs a confidential client",
            )
            .into());
        }
        core.introspect(&client, &token)
    })
    .await
}

/// `POST /auth/revoke` (RFC 7009): 200 whether or not the token was known.
pub(crate) async fn revoke(Authz(auth): Authz, req: Request) -> Response {
    with_token_and_client(auth.core.clone(), req, |core, client, token| {
        core.revoke(&client, &token).map(|()| json!({}))
    })
    .await
}

/// Introspection and revocation alike: the form's token, the client authenticated from the
/// form or `Authorization: Basic`, then `work` on a blocking thread; a `no-store` JSON answer,
/// or the OAuth error (401 with a challenge when the client used Basic).
async fn with_token_and_client(
    core: Arc<Auth>,
    req: Request,
    work: impl FnOnce(&Auth, Client, String) -> Result<Value, AuthError> + Send + 'static,
) -> Response {
    let (headers, form) = match form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let basic = uses_basic(&headers);
    let (token, creds) = match token_and_client(&headers, &form) {
        Ok(t) => t,
        Err(e) => return auth_error(e, basic),
    };
    let result = blocking(move || {
        let client = core.authenticate_client(&creds)?;
        work(&core, client, token)
    })
    .await;
    match result {
        Ok(body) => no_store(StatusCode::OK, body),
        Err(e) => auth_error(e, basic),
    }
}

/// `GET /auth/jwks`: the public signing keys (cacheable for a minute: a rotated key is
/// published before it signs, so a short cache is safe).
pub(crate) async fn jwks(Authz(auth): Authz) -> Response {
    let core = auth.core.clone();
    match blocking(move || core.jwks_json()).await {
        Ok(body) => {
            let mut response = Json(body).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            response
        }
        Err(e) => auth_error(e, false),
    }
}

/// RFC 6750 §3: the challenge of a refused bearer token.
fn bearer_refused(status: StatusCode, error: Option<&str>) -> Response {
    let challenge = match error {
        Some(e) => format!("Bearer realm=\"medicus\", error=\"{e}\""),
        None => "Bearer realm=\"medicus\"".to_owned(),
    };
    let body = match error {
        Some(e) => json!({ "error": e }),
        None => json!({ "error": "invalid_request", "error_description": "bearer token required" }),
    };
    let mut response = no_store(status, body);
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// `GET|POST /auth/userinfo` with a bearer access token that has `openid`.
pub(crate) async fn userinfo(Authz(auth): Authz, headers: HeaderMap) -> Response {
    let principal = match auth.verify_bearer(authorization(&headers)).await {
        Ok(p) => p,
        Err(BearerError::Missing) => return bearer_refused(StatusCode::UNAUTHORIZED, None),
        Err(BearerError::Invalid) => {
            return bearer_refused(StatusCode::UNAUTHORIZED, Some("invalid_token"));
        }
        Err(BearerError::Unavailable) => {
            return oauth_error(OAuthErrorCode::ServerError, "temporarily unavailable");
        }
    };
    if !principal.scopes.has(&Scope::OpenId) {
        return bearer_refused(StatusCode::FORBIDDEN, Some("insufficient_scope"));
    }
    let core = auth.core.clone();
    match blocking(move || core.userinfo(&principal)).await {
        Ok(body) => no_store(StatusCode::OK, body),
        Err(AuthError::InvalidToken(_)) => {
            bearer_refused(StatusCode::UNAUTHORIZED, Some("invalid_token"))
        }
        Err(e) => auth_error(e, false),
    }
}

/// `GET /auth/.well-known/openid-configuration` (the issuer is `{base}/auth`, so OIDC
/// Discovery puts the document under it).
pub(crate) async fn openid_configuration(Authz(auth): Authz) -> Response {
    Json(auth.core.openid_configuration()).into_response()
}

/// `GET /fhir/{tenant}/.well-known/smart-configuration` (public).
pub(crate) async fn smart_configuration(
    Authz(auth): Authz,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Response {
    let store = state.store.clone();
    let name = tenant.clone();
    let exists = tokio::task::spawn_blocking(move || store.tenant_exists(&name)).await;
    match exists {
        Ok(Ok(true)) => Json(auth.core.smart_configuration(&tenant)).into_response(),
        Ok(Ok(false)) => FhirError::UnknownTenant.into_response(),
        Ok(Err(e)) => FhirError::from(e).into_response(),
        Err(_) => FhirError::Internal("store task failed".into()).into_response(),
    }
}
