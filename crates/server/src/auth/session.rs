//! The browser's login session between `GET /auth/authorize` and `POST /auth/consent`: a
//! platform-records document (namespace `web-login`, key = SHA-256 of the session id, expiring
//! with the session) so any node behind a load balancer can continue it. The browser holds
//! only the random id, in an HttpOnly, SameSite=Lax cookie (Secure and `__Host-` under
//! https); every form carries the session's CSRF token.

use axum::http::{HeaderMap, HeaderValue, header};
use medicus_auth::crypto::{ct_eq, random_token, secret_key};
use medicus_auth::grants::AuthorizeRequest;
use medicus_auth::{AuthError, PlatformRecords};
use medicus_store::platform::DocExpect;
use serde::{Deserialize, Serialize};

const NS: &str = "web-login";
const COOKIE: &str = "medicus-login";
const SECURE_COOKIE: &str = "__Host-medicus-login";

/// The parameters of an authorization request, kept in the session and validated again at
/// every step (a client may have been disabled in between).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub aud: Option<String>,
    pub launch: Option<String>,
    pub nonce: Option<String>,
}

impl AuthorizeParams {
    /// From query or form pairs. A parameter given twice is an error (RFC 6749 §3.1).
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, String> {
        let mut p = AuthorizeParams::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "response_type" => &mut p.response_type,
                "client_id" => &mut p.client_id,
                "redirect_uri" => &mut p.redirect_uri,
                "scope" => &mut p.scope,
                "state" => &mut p.state,
                "code_challenge" => &mut p.code_challenge,
                "code_challenge_method" => &mut p.code_challenge_method,
                "aud" => &mut p.aud,
                "launch" => &mut p.launch,
                "nonce" => &mut p.nonce,
                _ => continue,
            };
            if slot.is_some() {
                return Err(format!("parameter {name} given more than once"));
            }
            *slot = Some(value.clone());
        }
        Ok(p)
    }

    pub fn to_request(&self) -> AuthorizeRequest {
        AuthorizeRequest {
            response_type: self.response_type.clone(),
            client_id: self.client_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            scope: self.scope.clone(),
            state: self.state.clone(),
            code_challenge: self.code_challenge.clone(),
            code_challenge_method: self.code_challenge_method.clone(),
            aud: self.aud.clone(),
            launch: self.launch.clone(),
            nonce: self.nonce.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LoginSession {
    pub csrf: String,
    pub request: AuthorizeParams,
    /// Set once the user has logged in.
    #[serde(default)]
    pub user_id: Option<String>,
    /// An admin whose password was right but who has no second factor yet: the session
    /// only continues on the TOTP enrolment page until a first code confirms one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrol_user_id: Option<String>,
    /// Wrong codes on the enrolment page so far.
    #[serde(default)]
    pub enrol_attempts: u32,
    /// Seconds since the epoch; the document expires then too.
    pub expires_s: i64,
}

impl LoginSession {
    pub fn new(request: AuthorizeParams, ttl_s: i64) -> Result<Self, AuthError> {
        Ok(LoginSession {
            csrf: random_token()?,
            request,
            user_id: None,
            enrol_user_id: None,
            enrol_attempts: 0,
            expires_s: now_s().saturating_add(ttl_s),
        })
    }

    /// Constant-time comparison with the token a form sent.
    pub fn csrf_ok(&self, sent: Option<&str>) -> bool {
        sent.is_some_and(|s| ct_eq(s.as_bytes(), self.csrf.as_bytes()))
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Stores a new session and returns its id (the cookie value).
pub(crate) fn create(
    records: &dyn PlatformRecords,
    session: &LoginSession,
) -> Result<String, AuthError> {
    let id = random_token()?;
    let bytes = serde_json::to_vec(session).map_err(|e| AuthError::Invalid(e.to_string()))?;
    records.doc_put(
        NS,
        &secret_key(&id),
        &bytes,
        Some(session.expires_s.saturating_mul(1_000_000)),
        DocExpect::Absent,
    )?;
    Ok(id)
}

fn decode(bytes: &[u8]) -> Result<LoginSession, AuthError> {
    serde_json::from_slice(bytes).map_err(|e| AuthError::Corrupt(format!("login session: {e}")))
}

pub(crate) fn load(
    records: &dyn PlatformRecords,
    id: &str,
) -> Result<Option<LoginSession>, AuthError> {
    records
        .doc_get(NS, &secret_key(id))?
        .map(|d| decode(&d.value))
        .transpose()
}

/// Reads and ends the session: of two concurrent submissions one gets it.
pub(crate) fn take(
    records: &dyn PlatformRecords,
    id: &str,
) -> Result<Option<LoginSession>, AuthError> {
    records
        .doc_take(NS, &secret_key(id))?
        .map(|d| decode(&d.value))
        .transpose()
}

/// Ends the session `old_id` and stores `session` under a new id (after login, so an id
/// planted before login is worthless afterwards). `None` when `old_id` was already gone.
pub(crate) fn rotate(
    records: &dyn PlatformRecords,
    old_id: &str,
    session: &LoginSession,
) -> Result<Option<String>, AuthError> {
    if records.doc_take(NS, &secret_key(old_id))?.is_none() {
        return Ok(None);
    }
    create(records, session).map(Some)
}

pub(crate) fn cookie_name(secure: bool) -> &'static str {
    if secure { SECURE_COOKIE } else { COOKIE }
}

/// The session id from the request's cookies.
pub(crate) fn session_id(headers: &HeaderMap, secure: bool) -> Option<String> {
    let name = cookie_name(secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// `Set-Cookie` for a session id (`None`: delete the cookie).
pub(crate) fn set_cookie(id: Option<&str>, secure: bool, max_age_s: i64) -> HeaderValue {
    let (value, age) = match id {
        Some(id) => (id, max_age_s.max(0)),
        None => ("", 0),
    };
    let secure_attr = if secure { "; Secure" } else { "" };
    let text = format!(
        "{}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Lax{secure_attr}",
        cookie_name(secure)
    );
    // Ids are base64url and the rest is ASCII, so this never fails; an empty value is the
    // harmless fallback.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trip_and_attributes() {
        let v = set_cookie(Some("abc-_1"), true, 600);
        let text = v.to_str().unwrap();
        assert!(text.starts_with("__Host-medicus-login=abc-_1;"));
        for attr in [
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=600",
        ] {
            assert!(text.contains(attr), "{text}");
        }
        assert!(
            !set_cookie(Some("x"), false, 1)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; medicus-login=s1; b=2".parse().unwrap(),
        );
        assert_eq!(session_id(&headers, false).as_deref(), Some("s1"));
        assert_eq!(session_id(&headers, true), None);
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let pairs = vec![
            ("client_id".to_string(), "a".to_string()),
            ("client_id".to_string(), "b".to_string()),
        ];
        assert!(AuthorizeParams::from_pairs(&pairs).is_err());
    }
}
