//! Login delegated to a tenant's own OpenID provider (e.g. a hospital's Keycloak), over HTTP:
//!
//! - `POST /auth/federation/start` (form `csrf`, `idp`, from the login page's "Sign in with …"
//!   button): a single-use state with nonce and PKCE verifier (`Auth::begin_federated_login`),
//!   bound to the browser's login session, then 303 to the provider's authorization endpoint;
//! - `GET /auth/federation/callback?code=…&state=…`: the state is taken once and must belong to
//!   the login session of this browser; the code is exchanged at the provider's token endpoint
//!   (with the PKCE verifier and medicus's client secret, unsealed for this one request); the
//!   id_token is verified against the provider's JWKS (`Auth::complete_federated_login`:
//!   signature, `iss`, `aud`/`azp`, times, `nonce`), its claims mapped to roles and the user
//!   linked or provisioned; then the ordinary consent page continues the SMART app's
//!   `/auth/authorize` request.
//!
//! Every callback that finds a login state is an audit event (success or failure, with a
//! data-free reason); a callback without a valid state is recorded on the platform chain.
//! The provider is reached with a blocking HTTP client on the handler's blocking thread:
//! bounded in time and size, no redirects.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use medicus_audit::{AuditEvent, Kind, OutcomeCode};
use medicus_auth::crypto::secret_key;
use medicus_auth::federation::{FederatedLogin, IdentityProvider};
use medicus_auth::jws::{self, Jwk, Jwks, PublicKey};
use medicus_auth::{Auth, AuthError};
use medicus_store::Store;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::login::{ConsentData, consent_data, consent_response, read_form};
use super::pages;
use super::session::{self, LoginSession};
use super::{Authz, blocking};
use crate::fhir::query::parse_pairs;
use crate::state::AppState;

/// The path of the callback under the issuer (`{issuer}/federation/callback`), which the
/// provider must have registered as medicus's redirect URI.
pub const CALLBACK_PATH: &str = "/federation/callback";

/// The callback URL of an issuer (`https://host/auth` → `https://host/auth/federation/callback`).
pub fn callback_url(issuer: &str) -> String {
    format!("{}{CALLBACK_PATH}", issuer.trim_end_matches('/'))
}

/// Why talking to a provider failed. The text names the step, never a secret or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("provider unreachable ({step}): {reason}")]
    Unreachable { step: &'static str, reason: String },
    #[error("provider answered {status} ({step})")]
    Status { step: &'static str, status: u16 },
    #[error("provider's answer is unusable ({step}): {reason}")]
    Malformed { step: &'static str, reason: String },
}

/// Limits of the HTTP exchanges with providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderHttpConfig {
    pub timeout: Duration,
    pub max_bytes: usize,
    /// How long a provider's key set is used before it is fetched again (an id_token with an
    /// unknown `kid` fetches it at once).
    pub jwks_ttl: Duration,
}

impl Default for ProviderHttpConfig {
    fn default() -> Self {
        ProviderHttpConfig {
            timeout: Duration::from_secs(10),
            max_bytes: 256 * 1024,
            jwks_ttl: Duration::from_secs(300),
        }
    }
}

/// What `application/x-www-form-urlencoded` leaves as it is.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'*');

/// Key sets remembered at most.
const MAX_CACHED: usize = 256;

/// The provider-facing HTTP client of one process: built on first use, with a small JWKS cache.
pub(crate) struct ProviderHttp {
    config: ProviderHttpConfig,
    client: OnceLock<Result<reqwest::blocking::Client, String>>,
    jwks: Mutex<HashMap<String, (Instant, Jwks)>>,
}

/// The parts of a provider's discovery document medicus needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
}

fn build_client(config: &ProviderHttpConfig) -> Result<reqwest::blocking::Client, String> {
    reqwest::blocking::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

fn read_limited(
    response: reqwest::blocking::Response,
    max: usize,
    step: &'static str,
) -> Result<Vec<u8>, ProviderError> {
    let status = response.status();
    if !status.is_success() {
        return Err(ProviderError::Status {
            step,
            status: status.as_u16(),
        });
    }
    let too_large = || ProviderError::Malformed {
        step,
        reason: "answer too large".into(),
    };
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    response
        .take(max as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| ProviderError::Unreachable {
            step,
            reason: e.to_string(),
        })?;
    if body.len() > max {
        return Err(too_large());
    }
    Ok(body)
}

/// A key set as providers publish it: keys medicus cannot verify with (encryption keys,
/// unsupported curves) are left out rather than refusing the whole set.
fn usable_keys(body: &[u8]) -> Result<Jwks, ProviderError> {
    #[derive(Deserialize)]
    struct Raw {
        keys: Vec<serde_json::Value>,
    }
    let raw: Raw = serde_json::from_slice(body).map_err(|e| ProviderError::Malformed {
        step: "jwks",
        reason: e.to_string(),
    })?;
    let keys = raw
        .keys
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
        .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
        .filter(|k| PublicKey::from_jwk(k).is_ok())
        .collect();
    Ok(Jwks { keys })
}

/// Reads a provider's discovery document (`{issuer}/.well-known/openid-configuration`); its
/// `issuer` must be the one asked for (OpenID Connect Discovery §4.3).
pub fn discover(
    issuer: &str,
    config: &ProviderHttpConfig,
) -> Result<ProviderMetadata, ProviderError> {
    let step = "discovery";
    let client =
        build_client(config).map_err(|reason| ProviderError::Unreachable { step, reason })?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let response = client
        .get(&url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .map_err(|e| ProviderError::Unreachable {
            step,
            reason: e.to_string(),
        })?;
    let body = read_limited(response, config.max_bytes, step)?;
    let meta: ProviderMetadata =
        serde_json::from_slice(&body).map_err(|e| ProviderError::Malformed {
            step,
            reason: e.to_string(),
        })?;
    if meta.issuer != issuer {
        return Err(ProviderError::Malformed {
            step,
            reason: format!("the document names issuer {}", meta.issuer),
        });
    }
    Ok(meta)
}

impl ProviderHttp {
    pub(crate) fn new(config: ProviderHttpConfig) -> Self {
        ProviderHttp {
            config,
            client: OnceLock::new(),
            jwks: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, step: &'static str) -> Result<&reqwest::blocking::Client, ProviderError> {
        self.client
            .get_or_init(|| build_client(&self.config))
            .as_ref()
            .map_err(|reason| ProviderError::Unreachable {
                step,
                reason: reason.clone(),
            })
    }

    /// Exchanges the code for the provider's tokens and returns the id_token. The client
    /// authenticates with `client_secret_basic` when it has a secret (RFC 6749 §2.3.1: id and
    /// secret form-encoded first), else as a public client with its id in the form.
    fn exchange_code(
        &self,
        idp: &IdentityProvider,
        secret: Option<&str>,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<String, ProviderError> {
        let step = "token";
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut request = self
            .client(step)?
            .post(&idp.token_endpoint)
            .header(reqwest::header::ACCEPT, "application/json");
        match secret {
            Some(secret) => {
                let enc = |s: &str| utf8_percent_encode(s, FORM).to_string();
                request = request.basic_auth(enc(&idp.client_id), Some(enc(secret)));
            }
            None => form.push(("client_id", idp.client_id.as_str())),
        }
        let response = request
            .form(&form)
            .send()
            .map_err(|e| ProviderError::Unreachable {
                step,
                reason: e.to_string(),
            })?;
        let body = read_limited(response, self.config.max_bytes, step)?;
        let tokens: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| ProviderError::Malformed {
                step,
                reason: e.to_string(),
            })?;
        tokens.id_token.ok_or(ProviderError::Malformed {
            step,
            reason: "no id_token".into(),
        })
    }

    /// The provider's key set: cached, fetched again when stale or when `kid` is not in it
    /// (the provider rotated its keys).
    fn jwks(&self, uri: &str, kid: Option<&str>) -> Result<Jwks, ProviderError> {
        let step = "jwks";
        {
            // The cache holds no invariant a panic could break.
            let cache = self.jwks.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, jwks)) = cache.get(uri)
                && at.elapsed() < self.config.jwks_ttl
                && kid.is_none_or(|kid| jwks.keys.iter().any(|k| k.kid.as_deref() == Some(kid)))
            {
                return Ok(jwks.clone());
            }
        }
        let response = self
            .client(step)?
            .get(uri)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .map_err(|e| ProviderError::Unreachable {
                step,
                reason: e.to_string(),
            })?;
        let jwks = usable_keys(&read_limited(response, self.config.max_bytes, step)?)?;
        let mut cache = self.jwks.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(uri.to_owned(), (Instant::now(), jwks.clone()));
        Ok(jwks)
    }
}

/// `POST /auth/federation/start`.
pub(crate) async fn start(Authz(auth): Authz, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let pairs = match read_form(&parts.headers, body).await {
        Ok(p) => p,
        Err(message) => return pages::error_page(StatusCode::BAD_REQUEST, message),
    };
    let Some(session_id) = session::session_id(&parts.headers, auth.secure_cookies()) else {
        return super::login::session_lost();
    };
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let (csrf, idp) = (field("csrf"), field("idp").unwrap_or_default());
    let core = auth.core.clone();
    let step = blocking(move || {
        let Some(s) = session::load(core.records(), &session_id)? else {
            return Ok(Err(super::login::session_lost()));
        };
        if !s.csrf_ok(csrf.as_deref()) {
            return Ok(Err(super::login::csrf_failed()));
        }
        let valid = match core.authorize(&s.request.to_request()) {
            Ok(v) => v,
            Err(e) => return Ok(Err(super::login::refused(&e))),
        };
        if core.idp(&valid.tenant, &idp)?.is_none() {
            return Ok(Err(pages::error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in option is not available for this application.",
            )));
        }
        // The state remembers which login session started it (by its hash: the bearer id
        // itself never goes into another record), so a callback only continues that session.
        let login = core.begin_federated_login(
            &valid.tenant,
            &idp,
            &callback_url(&core.config().issuer),
            Some(&secret_key(&session_id)),
        )?;
        Ok(Ok(login.authorize_url))
    })
    .await;
    match step {
        Ok(Ok(url)) => Redirect::to(&url).into_response(),
        Ok(Err(page)) => page,
        Err(e) => super::login::unavailable(&e),
    }
}

/// What a callback came to.
enum Callback {
    Consent {
        data: ConsentData,
        csrf: String,
        session_id: String,
    },
    Page(StatusCode, &'static str),
}

/// `GET /auth/federation/callback`.
pub(crate) async fn callback(
    Authz(auth): Authz,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let (parts, _) = req.into_parts();
    let pairs = query.as_deref().map(parse_pairs).unwrap_or_default();
    let session_id = session::session_id(&parts.headers, auth.secure_cookies());
    let core = auth.core.clone();
    let store = state.store.clone();
    let http = auth.providers.clone();
    let ttl = auth.web.login_session_ttl_s;
    let outcome =
        blocking(move || callback_step(&core, &*store, &http, session_id.as_deref(), &pairs, ttl))
            .await;
    match outcome {
        Ok((step, event)) => {
            super::audit(&state, &parts, event).await;
            match step {
                Callback::Consent {
                    data,
                    csrf,
                    session_id,
                } => {
                    let mut response = consent_response(StatusCode::OK, &data, &csrf, None);
                    super::login::set_session_cookie(&mut response, &auth, Some(&session_id));
                    response
                }
                Callback::Page(status, message) => pages::error_page(status, message),
            }
        }
        Err(e) => super::login::unavailable(&e),
    }
}

/// A failed federated login: the page the browser gets and the event the trail gets.
fn failure(
    tenant: Option<&str>,
    client: Option<&str>,
    idp: Option<&str>,
    status: StatusCode,
    why: &str,
    page: &'static str,
) -> (Callback, AuditEvent) {
    let mut event = AuditEvent::new(tenant.map(str::to_owned), Kind::LoginFailure);
    event.status = status.as_u16();
    event.outcome = OutcomeCode::Minor;
    event.outcome_desc = Some(match idp {
        Some(idp) => format!("identity provider {idp}: {why}"),
        None => format!("identity provider: {why}"),
    });
    event.agent.client = client.map(str::to_owned);
    (Callback::Page(status, page), event)
}

/// Error codes a provider may send back (RFC 6749 §4.1.2.1 and OIDC); anything else is
/// recorded as `other`, so the trail never holds text chosen by whoever crafted the URL.
fn provider_error_code(code: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    ];
    KNOWN
        .iter()
        .find(|k| **k == code)
        .copied()
        .unwrap_or("other")
}

const FAILED: &str = "Sign-in through your organisation's identity provider failed.";

fn callback_step(
    core: &Auth,
    store: &dyn Store,
    http: &ProviderHttp,
    session_id: Option<&str>,
    pairs: &[(String, String)],
    ttl_s: i64,
) -> Result<(Callback, AuditEvent), AuthError> {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(state) = field("state").filter(|s| !s.is_empty() && s.len() <= 256) else {
        return Ok(failure(
            None,
            None,
            None,
            StatusCode::BAD_REQUEST,
            "callback without state",
            FAILED,
        ));
    };
    let login: FederatedLogin = match core.take_federated_login(state) {
        Ok(l) => l,
        Err(AuthError::OAuth(_)) => {
            return Ok(failure(
                None,
                None,
                None,
                StatusCode::BAD_REQUEST,
                "unknown or expired login state",
                FAILED,
            ));
        }
        Err(e) => return Err(e),
    };
    let tenant = Some(login.tenant.as_str());
    let idp_id = Some(login.idp.as_str());
    let fail = |client: Option<&str>, status, why: &str, page| {
        Ok(failure(tenant, client, idp_id, status, why, page))
    };
    // The state must come back to the browser that started it: another browser's session
    // (a login CSRF, a stolen callback URL) is refused.
    let bound = session_id
        .zip(login.return_to.as_deref())
        .is_some_and(|(id, bound)| {
            medicus_auth::crypto::ct_eq(secret_key(id).as_bytes(), bound.as_bytes())
        });
    let (Some(session_id), true) = (session_id, bound) else {
        return fail(
            None,
            StatusCode::BAD_REQUEST,
            "login state of another browser session",
            FAILED,
        );
    };
    let Some(s) = session::load(core.records(), session_id)? else {
        return fail(
            None,
            StatusCode::BAD_REQUEST,
            "login session expired",
            "Your sign-in session has expired.",
        );
    };
    let valid = match core.authorize(&s.request.to_request()) {
        Ok(v) if v.tenant == login.tenant => v,
        _ => {
            return fail(
                s.request.client_id.as_deref(),
                StatusCode::BAD_REQUEST,
                "authorization request no longer valid",
                FAILED,
            );
        }
    };
    let client = Some(valid.client.client_id.as_str());
    let Some(idp) = core.idp(&login.tenant, &login.idp)? else {
        return fail(client, StatusCode::FORBIDDEN, "provider removed", FAILED);
    };
    // RFC 9207: a provider that names itself in the response must be the one asked (a
    // mix-up attack sends the browser back with another provider's code).
    if field("iss").is_some_and(|iss| iss != idp.issuer) {
        return fail(
            client,
            StatusCode::FORBIDDEN,
            "authorization response from another issuer",
            FAILED,
        );
    }
    if let Some(error) = field("error") {
        let why = format!("provider answered {}", provider_error_code(error));
        return fail(client, StatusCode::FORBIDDEN, &why, FAILED);
    }
    let Some(code) = field("code").filter(|c| !c.is_empty() && c.len() <= 4096) else {
        return fail(
            client,
            StatusCode::BAD_REQUEST,
            "callback without code",
            FAILED,
        );
    };
    let secret = core.idp_client_secret(&idp)?;
    let redirect_uri = callback_url(&core.config().issuer);
    let id_token = match http.exchange_code(
        &idp,
        secret.as_deref(),
        code,
        &login.code_verifier,
        &redirect_uri,
    ) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "federated login: code exchange failed");
            return fail(
                client,
                StatusCode::BAD_GATEWAY,
                "code exchange failed",
                FAILED,
            );
        }
    };
    let kid = jws::parse(&id_token).ok().and_then(|p| p.header.kid);
    let jwks = match http.jwks(&idp.jwks_uri, kid.as_deref()) {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(error = %e, "federated login: provider keys unavailable");
            return fail(
                client,
                StatusCode::BAD_GATEWAY,
                "provider keys unavailable",
                FAILED,
            );
        }
    };
    let user = match core.complete_federated_login(&login, &id_token, &jwks) {
        Ok(u) => u,
        Err(AuthError::OAuth(e)) => {
            return fail(
                client,
                StatusCode::FORBIDDEN,
                &e.description,
                "Your identity provider signed you in, but medicus cannot accept it \
                 (no role for this organisation, or the provider's answer did not verify).",
            );
        }
        Err(AuthError::Invalid(_)) => {
            return fail(
                client,
                StatusCode::FORBIDDEN,
                "provider's user cannot be provisioned",
                FAILED,
            );
        }
        Err(e) => return Err(e),
    };
    let mut next = LoginSession::new(s.request.clone(), ttl_s.min(s.expires_s - now_s()).max(1))?;
    next.user_id = Some(user.id.clone());
    let Some(new_id) = session::rotate(core.records(), session_id, &next)? else {
        return fail(
            client,
            StatusCode::BAD_REQUEST,
            "login session expired",
            "Your sign-in session has expired.",
        );
    };
    let data = consent_data(&valid, &user, store, "")?;
    let mut event =
        super::login::login_event(&valid, Kind::Login, StatusCode::OK, Some(&user), None);
    event.outcome_desc = Some(format!("identity provider {}", login.idp));
    Ok((
        Callback::Consent {
            data,
            csrf: next.csrf,
            session_id: new_id,
        },
        event,
    ))
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The providers the login page offers for a tenant: (id, label).
pub(crate) fn offered(core: &Auth, tenant: &str) -> Result<Vec<(String, String)>, AuthError> {
    Ok(core
        .list_idps(tenant)?
        .into_iter()
        .map(|p| (p.id.clone(), p.label().to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_urls_and_error_codes() {
        assert_eq!(
            callback_url("https://m.example/auth/"),
            "https://m.example/auth/federation/callback"
        );
        assert_eq!(provider_error_code("access_denied"), "access_denied");
        assert_eq!(provider_error_code("<script>"), "other");
    }

    /// Serves the JSON `body(own origin)` to every request until the test ends.
    fn serve_json(body: impl Fn(&str) -> String) -> String {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let body = body(&origin);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        origin
    }

    fn discovery_doc(issuer: &str) -> String {
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
        })
        .to_string()
    }

    #[test]
    fn discovery_checks_the_issuer() {
        let config = ProviderHttpConfig::default();
        let good = serve_json(discovery_doc);
        let meta = discover(&good, &config).unwrap();
        assert_eq!(meta.token_endpoint, format!("{good}/token"));
        // A document naming another issuer is refused (OpenID Connect Discovery §4.3).
        let evil = serve_json(|_| discovery_doc("https://evil.example"));
        assert!(matches!(
            discover(&evil, &config),
            Err(ProviderError::Malformed { .. })
        ));
        assert!(matches!(
            discover("http://127.0.0.1:1", &config),
            Err(ProviderError::Unreachable { .. })
        ));
    }

    #[test]
    fn key_sets_keep_only_signature_keys() {
        let body = br#"{"keys":[
            {"kty":"RSA","use":"enc","kid":"e","n":"AQAB","e":"AQAB"},
            {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"AAAA"},
            {"kty":"EC","crv":"P-256","kid":"ec","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}"#;
        let jwks = usable_keys(body).unwrap();
        let kids: Vec<_> = jwks.keys.iter().filter_map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, vec!["ec"]);
        assert!(usable_keys(b"{}").is_err());
    }
}
