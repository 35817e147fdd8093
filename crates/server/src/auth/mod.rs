//! The OAuth2 / OpenID Connect / SMART authorisation server over HTTP, at `/auth`, and the
//! server-rendered login and consent pages. The logic lives in `medicus-auth`; this module
//! parses requests, keeps the browser's login session, renders pages and maps errors to the
//! wire formats (RFC 6749 §5.2, RFC 6750 §3).
//!
//! Every call into [`Auth`] that may touch the store runs on a blocking thread (the store
//! blocks; see [`crate::fhir::http`]): only `verify_access_token_in_memory`, the discovery
//! documents and the HTML rendering run on the async worker.
//!
//! [`AuthState`] is the handle the router holds in [`crate::AppState::auth`]; a FHIR
//! enforcement layer uses [`AuthState::verify_bearer`] and `medicus_auth::decide` with it.

mod federation;
mod forwarded;
mod jwks_fetch;
mod login;
mod oauth;
mod pages;
mod rate_limit;
mod session;
mod totp_enrol;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use medicus_audit::{AuditEvent, TryRecord};
use medicus_auth::{Auth, AuthError, Principal};

pub use federation::{
    CALLBACK_PATH, ProviderError, ProviderHttpConfig, ProviderMetadata, callback_url, discover,
};
pub use forwarded::{BadIpNet, IpNet, parse_trusted};
pub use jwks_fetch::{JwksFetchConfig, http_jwks_fetcher};
use rate_limit::RateLimiter;

use crate::context::RequestId;
use crate::state::AppState;

/// Settings of the HTTP side of the authorisation server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAuthConfig {
    /// Login attempts (`POST /auth/login`) one client IP may make per minute on this node,
    /// beyond which it gets 429; the per-account lockout of the core applies in addition.
    pub login_attempts_per_minute: u32,
    /// How long a login session (authorize → login → consent) lives, in seconds.
    pub login_session_ttl_s: i64,
    /// Reverse proxies whose `X-Forwarded-For` is believed (for the per-IP login limit and
    /// the audit's address); empty: the peer address is the client's.
    pub trusted_proxies: Vec<IpNet>,
    /// Limits of the calls to external identity providers.
    pub providers: ProviderHttpConfig,
}

impl Default for WebAuthConfig {
    fn default() -> Self {
        WebAuthConfig {
            login_attempts_per_minute: 10,
            login_session_ttl_s: 600,
            trusted_proxies: Vec::new(),
            providers: ProviderHttpConfig::default(),
        }
    }
}

/// The authorisation server a router serves: the core [`Auth`] (one per process) plus what
/// the HTTP side keeps per node (the login rate limiter). Cheap to clone.
#[derive(Clone)]
pub struct AuthState {
    pub core: Arc<Auth>,
    pub(crate) web: Arc<WebAuthConfig>,
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) providers: Arc<federation::ProviderHttp>,
}

impl AuthState {
    pub fn new(core: Arc<Auth>, web: WebAuthConfig) -> Self {
        AuthState {
            limiter: Arc::new(RateLimiter::new(web.login_attempts_per_minute, 60)),
            providers: Arc::new(federation::ProviderHttp::new(web.providers.clone())),
            web: Arc::new(web),
            core,
        }
    }

    /// The client's address: the peer, or what trusted proxies forwarded (see
    /// [`forwarded::client_ip`]).
    pub fn client_address(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        forwarded::client_ip(peer, headers, &self.web.trusted_proxies)
    }

    pub(crate) fn client_ip(&self, parts: &Parts) -> Option<IpAddr> {
        self.client_address(peer_ip(&parts.extensions), &parts.headers)
    }

    /// Cookies get `Secure` (and the `__Host-` prefix) when the issuer is served over https.
    pub(crate) fn secure_cookies(&self) -> bool {
        self.core.config().issuer.starts_with("https://")
    }

    /// Verifies the bearer token of an `Authorization` header value: in memory when the core
    /// can, else on a blocking thread (a revocation sync or key reload reads the store).
    pub async fn verify_bearer(
        &self,
        authorization: Option<&str>,
    ) -> Result<Arc<Principal>, BearerError> {
        let token = authorization
            .and_then(medicus_auth::tokens::bearer_token)
            .ok_or(BearerError::Missing)?
            .to_owned();
        match self.core.verify_access_token_in_memory(&token) {
            Ok(Some(p)) => return Ok(p),
            Ok(None) => {}
            Err(e) => return Err(BearerError::from_auth(e)),
        }
        let core = self.core.clone();
        tokio::task::spawn_blocking(move || core.verify_access_token(&token))
            .await
            .map_err(|_| BearerError::Unavailable)?
            .map_err(BearerError::from_auth)
    }
}

/// Why a bearer token was not accepted (RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// No `Authorization: Bearer` header: 401 without an error code.
    Missing,
    /// Malformed, expired, revoked, wrongly signed: 401 `invalid_token`.
    Invalid,
    /// The store could not be asked: 503.
    Unavailable,
}

impl BearerError {
    fn from_auth(e: AuthError) -> Self {
        match e {
            AuthError::Store(_) | AuthError::Contention(_) => BearerError::Unavailable,
            _ => BearerError::Invalid,
        }
    }
}

/// The routes under `/auth` and the SMART configuration under each FHIR base. Only mounted
/// when the state has an [`AuthState`].
pub(crate) fn routes() -> Router<AppState> {
    use axum::routing::post;
    Router::new()
        .route(
            "/auth/authorize",
            get(login::authorize_get).post(login::authorize_post),
        )
        .route("/auth/login", post(login::login))
        .route("/auth/consent", post(login::consent))
        .route("/auth/totp", post(totp_enrol::enrol))
        .route("/auth/federation/start", post(federation::start))
        .route("/auth/federation/callback", get(federation::callback))
        .route("/auth/token", post(oauth::token))
        .route("/auth/introspect", post(oauth::introspect))
        .route("/auth/revoke", post(oauth::revoke))
        .route("/auth/jwks", get(oauth::jwks))
        .route("/auth/userinfo", get(oauth::userinfo).post(oauth::userinfo))
        .route(
            "/auth/.well-known/openid-configuration",
            get(oauth::openid_configuration),
        )
        // Forms and token requests are small; nothing here needs the FHIR body limit.
        .layer(DefaultBodyLimit::max(64 * 1024))
        .route(
            "/fhir/{tenant}/.well-known/smart-configuration",
            get(oauth::smart_configuration),
        )
}

/// Extracts the [`AuthState`] of the router (404 when the server runs without one).
pub(crate) struct Authz(pub AuthState);

impl FromRequestParts<AppState> for Authz {
    type Rejection = Response;

    async fn from_request_parts(
        _parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        state
            .auth
            .clone()
            .map(Authz)
            .ok_or_else(|| axum::http::StatusCode::NOT_FOUND.into_response())
    }
}

/// The peer address when the server was started with connect info.
pub(crate) fn peer_ip(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip())
}

/// The client's address for the audit of any request: the peer, or what a trusted proxy
/// forwarded when the server has an [`AuthState`] configured with trusted proxies.
/// `X-Forwarded-For` from anyone else is ignored (anyone could send it).
pub fn request_ip(
    state: &AppState,
    extensions: &Extensions,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer_ip(extensions);
    match &state.auth {
        Some(auth) => auth.client_address(peer, headers),
        None => peer,
    }
}

/// Runs store-touching work on a blocking thread; a panic or cancellation is an internal
/// error (its message may quote data, so it is not passed on).
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, AuthError>
where
    F: FnOnce() -> Result<T, AuthError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| AuthError::Crypto("auth task failed"))?
}

/// Records a login or token event with the request's address and id. Handed to the batching
/// trail; when its channel is full, waits on a blocking thread (never on the worker).
pub(crate) async fn audit(state: &AppState, parts: &Parts, mut event: AuditEvent) {
    let Some(trail) = state.audit.clone() else {
        return;
    };
    event.address = request_ip(state, &parts.extensions, &parts.headers).map(|ip| ip.to_string());
    event.request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
    match trail.try_record(event) {
        Ok(()) => {}
        Err(TryRecord::Full(event)) => {
            let done = tokio::task::spawn_blocking(move || trail.record(*event)).await;
            if !matches!(done, Ok(Ok(()))) {
                tracing::error!("auth audit event could not be handed to the writer");
            }
        }
        Err(TryRecord::Failed(e)) => tracing::error!(error = %e, "auth audit event not recorded"),
    }
}
