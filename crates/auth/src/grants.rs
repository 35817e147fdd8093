//! The OAuth2 / SMART grant logic the HTTP layer calls: authorization requests, codes,
//! the token endpoint (authorization_code with PKCE, refresh_token with rotation,
//! client_credentials), id_token, introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Grant families: every token issued from one authorization code, and from the refresh
//! tokens that follow it, carries the code's family id. A reused code or a reused (rotated)
//! refresh token revokes the whole family: its refresh tokens are refused and its access
//! tokens are revoked through a `fam:` marker.

use medicus_store::platform::DocExpect;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clients::{Client, ClientCredentials};
use crate::crypto::{b64url, ct_eq, random_id, random_token, secret_key, sha256};
use crate::docs;
use crate::error::{AuthError, OAuthError, OAuthErrorCode, oauth};
use crate::roles::Role;
use crate::scope::{Context, Scope, ScopeSet};
use crate::service::Auth;
use crate::tokens::{AccessClaims, TokenGrant};
use crate::users::User;

const NS_CODE: &str = "code";
const NS_CODE_FAMILY: &str = "code-family";
const NS_REFRESH: &str = "refresh";
const NS_FAMILY: &str = "family";
const NS_LAUNCH: &str = "launch";
/// How long a redeemed code's family stays known, so a late reuse still revokes its tokens.
const CODE_FAMILY_TTL_S: i64 = 3600;

/// The query (or form) parameters of `GET|POST /auth/authorize`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeRequest {
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

/// Why an authorization request failed, and where the answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Unknown client or a redirect URI that is not registered: show an error page, never
    /// redirect (an open redirector otherwise).
    NoRedirect(OAuthError),
    /// Send the error back to the client's redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
    },
}

impl AuthorizeError {
    /// The URL to redirect the browser to, when redirecting is safe.
    pub fn redirect_url(&self) -> Option<String> {
        match self {
            AuthorizeError::NoRedirect(_) => None,
            AuthorizeError::Redirect {
                redirect_uri,
                state,
                error,
            } => {
                let mut params = vec![
                    ("error", error.code.as_str()),
                    ("error_description", error.description.as_str()),
                ];
                if let Some(s) = state {
                    params.push(("state", s));
                }
                Some(append_query(redirect_uri, &params))
            }
        }
    }
}

/// Everything but RFC 3986 unreserved characters.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_owned();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&utf8_percent_encode(v, QUERY).to_string());
        sep = '&';
    }
    out
}

/// A validated authorization request, waiting for login, patient selection and consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAuthorize {
    pub client: Client,
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    pub state: Option<String>,
    pub code_challenge: String,
    pub nonce: Option<String>,
    /// The client's tenant: the one the tokens will be for.
    pub tenant: String,
    /// From an EHR launch context.
    pub launch_patient: Option<String>,
    /// `launch/patient` without a launch context: show the patient picker (unless the user
    /// is a patient, who is their own context).
    pub needs_patient_picker: bool,
}

/// What the user agreed to on the consent page.
#[derive(Debug, Clone, Default)]
pub struct Consent {
    /// The scopes granted (⊆ the requested ones); `None` = all requested.
    pub scopes: Option<ScopeSet>,
    /// The patient picked for a standalone `launch/patient`.
    pub patient: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CodeDoc {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scopes: String,
    user_id: String,
    tenant: String,
    patient: Option<String>,
    nonce: Option<String>,
    family: String,
    auth_time: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshDoc {
    family: String,
    client_id: String,
    user_id: String,
    tenant: String,
    scopes: String,
    patient: Option<String>,
    offline: bool,
    rotated: bool,
    expires_s: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FamilyDoc {
    client_id: String,
    user_id: String,
    revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LaunchDoc {
    tenant: String,
    patient: Option<String>,
}

/// The form of `POST /auth/token`.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub grant_type: String,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub credentials: ClientCredentials,
}

/// A successful token response (RFC 6749 §5.1 plus SMART's launch context).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

fn grant_err(description: &str) -> AuthError {
    oauth(OAuthErrorCode::InvalidGrant, description)
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Za-z0-9-._~]`.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// `BASE64URL(SHA256(verifier))` (S256; `plain` is never accepted).
pub fn pkce_challenge(verifier: &str) -> String {
    b64url(&sha256(verifier.as_bytes()))
}

impl Auth {
    /// Creates an EHR launch context (the `launch` parameter an EHR hands to an app).
    pub fn create_launch(&self, tenant: &str, patient: Option<&str>) -> Result<String, AuthError> {
        let id = random_token()?;
        let doc = LaunchDoc {
            tenant: tenant.to_owned(),
            patient: patient.map(Into::into),
        };
        docs::put(
            &*self.records,
            NS_LAUNCH,
            &secret_key(&id),
            &doc,
            Some(self.now() + self.config.launch_ttl_s),
            DocExpect::Absent,
        )?;
        Ok(id)
    }

    /// Validates an authorization request (before login and consent).
    pub fn authorize(&self, req: &AuthorizeRequest) -> Result<ValidAuthorize, AuthorizeError> {
        let no_redirect = |code, d: &str| AuthorizeError::NoRedirect(OAuthError::new(code, d));
        let store_err = |_| no_redirect(OAuthErrorCode::ServerError, "temporarily unavailable");
        let client_id = req
            .client_id
            .as_deref()
            .ok_or_else(|| no_redirect(OAuthErrorCode::InvalidRequest, "client_id missing"))?;
        let client = self
            .client(client_id)
            .map_err(store_err)?
            .filter(|c| !c.disabled)
            .ok_or_else(|| no_redirect(OAuthErrorCode::InvalidClient, "unknown client"))?;
        let redirect_uri = req
            .redirect_uri
            .as_deref()
            .ok_or_else(|| no_redirect(OAuthErrorCode::InvalidRequest, "redirect_uri missing"))?;
        // Exact string match, no normalisation, no prefix.
        if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
            return Err(no_redirect(
                OAuthErrorCode::InvalidRequest,
                "redirect_uri is not registered for this client",
            ));
        }
        let state = req.state.clone();
        let redirect = |code, d: &str| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.to_owned(),
            state: state.clone(),
            error: OAuthError::new(code, d),
        };
        if req.response_type.as_deref() != Some("code") {
            return Err(redirect(
                OAuthErrorCode::UnsupportedResponseType,
                "response_type must be code",
            ));
        }
        match req.state.as_deref() {
            Some(s) if !s.is_empty() && s.len() <= 1024 => {}
            _ => {
                return Err(redirect(
                    OAuthErrorCode::InvalidRequest,
                    "state is required",
                ));
            }
        }
        match req.code_challenge_method.as_deref() {
            Some("S256") => {}
            Some("plain") => {
                return Err(redirect(
                    OAuthErrorCode::InvalidRequest,
                    "PKCE method plain is not allowed, use S256",
                ));
            }
            Some(_) => {
                return Err(redirect(
                    OAuthErrorCode::InvalidRequest,
                    "unsupported code_challenge_method",
                ));
            }
            None => {
                return Err(redirect(
                    OAuthErrorCode::InvalidRequest,
                    "PKCE (S256) is required",
                ));
            }
        }
        let challenge = req.code_challenge.clone().unwrap_or_default();
        if challenge.len() != 43
            || !challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(redirect(
                OAuthErrorCode::InvalidRequest,
                "code_challenge must be a base64url SHA-256",
            ));
        }
        let scopes = ScopeSet::parse(req.scope.as_deref().unwrap_or(""))
            .map_err(|_| redirect(OAuthErrorCode::InvalidScope, "malformed or unknown scope"))?;
        if scopes.is_empty() {
            return Err(redirect(OAuthErrorCode::InvalidScope, "no scope requested"));
        }
        if let Some(outside) = scopes.first_outside(&client.allowed_scopes()) {
            return Err(redirect(
                OAuthErrorCode::InvalidScope,
                &format!("scope {outside} is not allowed for this client"),
            ));
        }
        if scopes
            .resource_scopes()
            .any(|s| s.context == Context::System)
        {
            return Err(redirect(
                OAuthErrorCode::InvalidScope,
                "system scopes need client_credentials",
            ));
        }
        let tenant = client.tenant.clone();
        let needs_fhir = scopes.resource_scopes().next().is_some()
            || scopes.has(&Scope::Launch)
            || scopes.has(&Scope::LaunchPatient);
        match req.aud.as_deref() {
            Some(aud) if aud.trim_end_matches('/') == self.config.audience(&tenant) => {}
            Some(_) => {
                return Err(redirect(
                    OAuthErrorCode::InvalidRequest,
                    "aud is not this tenant's FHIR base",
                ));
            }
            None if needs_fhir => {
                return Err(redirect(
                    OAuthErrorCode::InvalidRequest,
                    "aud (the FHIR base) is required",
                ));
            }
            None => {}
        }
        let mut launch_patient = None;
        if let Some(launch) = req.launch.as_deref() {
            if !scopes.has(&Scope::Launch) {
                return Err(redirect(
                    OAuthErrorCode::InvalidScope,
                    "launch parameter without launch scope",
                ));
            }
            let doc = docs::get::<LaunchDoc>(&*self.records, NS_LAUNCH, &secret_key(launch))
                .map_err(|_| redirect(OAuthErrorCode::ServerError, "temporarily unavailable"))?
                .map(|(d, _)| d)
                .filter(|d| d.tenant == tenant)
                .ok_or_else(|| {
                    redirect(OAuthErrorCode::InvalidRequest, "unknown or expired launch")
                })?;
            launch_patient = doc.patient;
        } else if scopes.has(&Scope::Launch) {
            return Err(redirect(
                OAuthErrorCode::InvalidRequest,
                "launch scope without launch parameter",
            ));
        }
        let needs_patient_picker = launch_patient.is_none() && scopes.has(&Scope::LaunchPatient);
        Ok(ValidAuthorize {
            client,
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            state,
            code_challenge: challenge,
            nonce: req.nonce.clone(),
            tenant,
            launch_patient,
            needs_patient_picker,
        })
    }

    /// After login and consent: stores a single-use code (60 s) and returns the redirect URL
    /// with `code` and `state`.
    pub fn issue_code(
        &self,
        valid: &ValidAuthorize,
        user: &User,
        consent: &Consent,
    ) -> Result<String, AuthError> {
        if user.disabled {
            return Err(oauth(OAuthErrorCode::AccessDenied, "user disabled"));
        }
        let membership = user
            .membership(&valid.tenant)
            .filter(|m| !m.roles.is_empty())
            .ok_or_else(|| {
                oauth(
                    OAuthErrorCode::AccessDenied,
                    "the user has no role in this tenant",
                )
            })?;
        let scopes = match &consent.scopes {
            Some(granted) => {
                if !granted.is_within(&valid.scopes) {
                    return Err(oauth(
                        OAuthErrorCode::InvalidScope,
                        "consent grants more than requested",
                    ));
                }
                granted.clone()
            }
            None => valid.scopes.clone(),
        };
        let own_patient = membership
            .fhir_user
            .as_deref()
            .and_then(|r| r.strip_prefix("Patient/"))
            .map(str::to_owned);
        let is_patient_user = membership.roles.contains(&Role::Patient);
        let patient = valid
            .launch_patient
            .clone()
            .or_else(|| consent.patient.clone())
            .or_else(|| {
                (scopes.has(&Scope::LaunchPatient) && is_patient_user)
                    .then(|| own_patient.clone())
                    .flatten()
            });
        if is_patient_user
            && patient.is_some()
            && patient != own_patient
            && !membership.roles.iter().any(|r| *r != Role::Patient)
        {
            return Err(oauth(
                OAuthErrorCode::AccessDenied,
                "a patient may only launch with their own record",
            ));
        }
        if scopes.has(&Scope::LaunchPatient) && patient.is_none() {
            return Err(AuthError::Invalid(
                "launch/patient needs a patient to be selected".into(),
            ));
        }
        if let Some(p) = &patient
            && (p.is_empty()
                || p.len() > 64
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        {
            return Err(AuthError::Invalid("bad patient id".into()));
        }
        let now = self.now();
        let code = random_token()?;
        let key = secret_key(&code);
        let family = random_id()?;
        let doc = CodeDoc {
            client_id: valid.client.client_id.clone(),
            redirect_uri: valid.redirect_uri.clone(),
            challenge: valid.code_challenge.clone(),
            scopes: scopes.to_string(),
            user_id: user.id.clone(),
            tenant: valid.tenant.clone(),
            patient,
            nonce: valid.nonce.clone(),
            family: family.clone(),
            auth_time: now,
        };
        docs::put(
            &*self.records,
            NS_CODE_FAMILY,
            &key,
            &json!({ "family": family }),
            Some(now + CODE_FAMILY_TTL_S),
            DocExpect::Absent,
        )?;
        docs::put(
            &*self.records,
            NS_CODE,
            &key,
            &doc,
            Some(now + self.config.code_ttl_s),
            DocExpect::Absent,
        )?;
        let mut params = vec![("code", code.as_str())];
        if let Some(s) = &valid.state {
            params.push(("state", s));
        }
        Ok(append_query(&valid.redirect_uri, &params))
    }

    /// `POST /auth/token`.
    pub fn token(&self, req: &TokenRequest) -> Result<TokenResponse, AuthError> {
        match req.grant_type.as_str() {
            "authorization_code" => self.grant_code(req),
            "refresh_token" => self.grant_refresh(req),
            "client_credentials" => self.grant_client_credentials(req),
            _ => Err(oauth(
                OAuthErrorCode::UnsupportedGrantType,
                "unsupported grant_type",
            )),
        }
    }

    fn grant_code(&self, req: &TokenRequest) -> Result<TokenResponse, AuthError> {
        let client = self.authenticate_client(&req.credentials)?;
        let code = req
            .code
            .as_deref()
            .ok_or_else(|| oauth(OAuthErrorCode::InvalidRequest, "code missing"))?;
        let key = secret_key(code);
        let Some(doc) = docs::take::<CodeDoc>(&*self.records, NS_CODE, &key)? else {
            // Used before (or expired): whatever was issued from it is revoked.
            if let Some((marker, _)) = docs::get::<Value>(&*self.records, NS_CODE_FAMILY, &key)?
                && let Some(family) = marker.get("family").and_then(Value::as_str)
            {
                self.revoke_family(family)?;
            }
            return Err(grant_err(
                "authorization code invalid, expired or already used",
            ));
        };
        if doc.client_id != client.client_id {
            self.revoke_family(&doc.family)?;
            return Err(grant_err("code was issued to another client"));
        }
        if req.redirect_uri.as_deref() != Some(doc.redirect_uri.as_str()) {
            return Err(grant_err(
                "redirect_uri does not match the authorization request",
            ));
        }
        let verifier = req.code_verifier.as_deref().unwrap_or("");
        if !valid_verifier(verifier)
            || !ct_eq(
                pkce_challenge(verifier).as_bytes(),
                doc.challenge.as_bytes(),
            )
        {
            return Err(grant_err("PKCE verification failed"));
        }
        let user = self.active_user(&doc.user_id, &doc.tenant)?;
        let scopes =
            ScopeSet::parse(&doc.scopes).map_err(|_| AuthError::Corrupt("code scopes".into()))?;
        let family = FamilyDoc {
            client_id: client.client_id.clone(),
            user_id: user.id.clone(),
            revoked: false,
        };
        docs::put(
            &*self.records,
            NS_FAMILY,
            &doc.family,
            &family,
            Some(self.now() + self.config.refresh_token_ttl_s),
            DocExpect::Any,
        )?;
        let refresh = self.new_refresh(
            &doc.family,
            &client.client_id,
            &user.id,
            &doc.tenant,
            &scopes,
            doc.patient.as_deref(),
        )?;
        let id_token = if scopes.has(&Scope::OpenId) {
            Some(self.id_token(
                &user,
                &doc.tenant,
                &client.client_id,
                &scopes,
                doc.nonce.clone(),
                doc.auth_time,
            )?)
        } else {
            None
        };
        self.respond(
            &user,
            &doc.tenant,
            &client,
            scopes,
            doc.patient,
            Some(doc.family),
            refresh,
            id_token,
        )
    }

    fn active_user(&self, user_id: &str, tenant: &str) -> Result<User, AuthError> {
        let user = self
            .user(user_id)?
            .ok_or_else(|| grant_err("user no longer exists"))?;
        if user.disabled || user.roles_in(tenant).is_empty() {
            return Err(grant_err("user disabled or without role in the tenant"));
        }
        Ok(user)
    }

    #[allow(clippy::too_many_arguments)]
    fn respond(
        &self,
        user: &User,
        tenant: &str,
        client: &Client,
        scopes: ScopeSet,
        patient: Option<String>,
        family: Option<String>,
        refresh_token: Option<String>,
        id_token: Option<String>,
    ) -> Result<TokenResponse, AuthError> {
        let grant = TokenGrant {
            subject: user.id.clone(),
            tenant: tenant.to_owned(),
            roles: user.roles_in(tenant),
            scopes: scopes.clone(),
            patient: patient.clone(),
            fhir_user: user.membership(tenant).and_then(|m| m.fhir_user.clone()),
            client_id: client.client_id.clone(),
            family,
        };
        let (access_token, _) = self.issue_access_token(&grant)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.config.access_token_ttl_s,
            scope: scopes.to_string(),
            refresh_token,
            id_token,
            patient,
        })
    }

    fn new_refresh(
        &self,
        family: &str,
        client_id: &str,
        user_id: &str,
        tenant: &str,
        scopes: &ScopeSet,
        patient: Option<&str>,
    ) -> Result<Option<String>, AuthError> {
        let offline = scopes.has(&Scope::OfflineAccess);
        if !offline && !scopes.has(&Scope::OnlineAccess) {
            return Ok(None);
        }
        let ttl = if offline {
            self.config.refresh_token_ttl_s
        } else {
            self.config.online_refresh_token_ttl_s
        };
        let expires_s = self.now() + ttl;
        let token = random_token()?;
        let doc = RefreshDoc {
            family: family.to_owned(),
            client_id: client_id.to_owned(),
            user_id: user_id.to_owned(),
            tenant: tenant.to_owned(),
            scopes: scopes.to_string(),
            patient: patient.map(Into::into),
            offline,
            rotated: false,
            expires_s,
        };
        docs::put(
            &*self.records,
            NS_REFRESH,
            &secret_key(&token),
            &doc,
            Some(expires_s),
            DocExpect::Absent,
        )?;
        Ok(Some(token))
    }

    fn family_revoked(&self, family: &str) -> Result<bool, AuthError> {
        Ok(docs::get::<FamilyDoc>(&*self.records, NS_FAMILY, family)?
            .is_none_or(|(f, _)| f.revoked))
    }

    /// Revokes a grant family: its refresh tokens are refused from now on and its access
    /// tokens are rejected by every process within `revocation_sync_s`.
    pub fn revoke_family(&self, family: &str) -> Result<(), AuthError> {
        let until = self.now() + self.config.refresh_token_ttl_s;
        match docs::update::<FamilyDoc>(&*self.records, NS_FAMILY, family, Some(until), |f| {
            f.revoked = true;
            Ok(())
        }) {
            Ok(_) | Err(AuthError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        self.revoke_family_tokens(family)
    }

    fn grant_refresh(&self, req: &TokenRequest) -> Result<TokenResponse, AuthError> {
        let client = self.authenticate_client(&req.credentials)?;
        let token = req
            .refresh_token
            .as_deref()
            .ok_or_else(|| oauth(OAuthErrorCode::InvalidRequest, "refresh_token missing"))?;
        let key = secret_key(token);
        let Some((doc, version)) = docs::get::<RefreshDoc>(&*self.records, NS_REFRESH, &key)?
        else {
            return Err(grant_err("refresh token invalid or expired"));
        };
        if doc.client_id != client.client_id {
            return Err(grant_err("refresh token was issued to another client"));
        }
        if doc.rotated {
            // A rotated token came back: stolen or replayed. End the whole family.
            self.revoke_family(&doc.family)?;
            return Err(grant_err(
                "refresh token reused after rotation; grant revoked",
            ));
        }
        if self.family_revoked(&doc.family)? {
            return Err(grant_err("grant revoked"));
        }
        // Scope is checked before rotation: a refused request leaves the token usable.
        let granted = ScopeSet::parse(&doc.scopes)
            .map_err(|_| AuthError::Corrupt("refresh scopes".into()))?;
        let scopes = match req.scope.as_deref() {
            Some(text) => {
                let asked = ScopeSet::parse(text)
                    .map_err(|_| oauth(OAuthErrorCode::InvalidScope, "malformed scope"))?;
                if !asked.is_within(&granted) {
                    return Err(oauth(
                        OAuthErrorCode::InvalidScope,
                        "scope exceeds the original grant",
                    ));
                }
                asked
            }
            None => granted.clone(),
        };
        let mut rotated = doc.clone();
        rotated.rotated = true;
        if docs::put(
            &*self.records,
            NS_REFRESH,
            &key,
            &rotated,
            Some(doc.expires_s),
            DocExpect::Version(version),
        )?
        .is_none()
        {
            // Two requests raced with the same token: one of them is a replay.
            self.revoke_family(&doc.family)?;
            return Err(grant_err(
                "refresh token reused concurrently; grant revoked",
            ));
        }
        let user = self.active_user(&doc.user_id, &doc.tenant)?;
        let refresh = self.new_refresh(
            &doc.family,
            &client.client_id,
            &user.id,
            &doc.tenant,
            &granted,
            doc.patient.as_deref(),
        )?;
        self.respond(
            &user,
            &doc.tenant,
            &client,
            scopes,
            doc.patient,
            Some(doc.family),
            refresh,
            None,
        )
    }

    fn grant_client_credentials(&self, req: &TokenRequest) -> Result<TokenResponse, AuthError> {
        let client = self.authenticate_client(&req.credentials)?;
        if !client.is_confidential() {
            return Err(oauth(
                OAuthErrorCode::UnauthorizedClient,
                "client_credentials needs a confidential client",
            ));
        }
        let allowed = client.allowed_scopes();
        let scopes = match req.scope.as_deref() {
            Some(text) => ScopeSet::parse(text)
                .map_err(|_| oauth(OAuthErrorCode::InvalidScope, "malformed scope"))?,
            None => allowed.clone(),
        };
        let mut only_system = scopes.clone();
        only_system.retain(|s| matches!(s, Scope::Resource(r) if r.context == Context::System));
        if only_system.len() != scopes.len() || scopes.is_empty() {
            return Err(oauth(
                OAuthErrorCode::InvalidScope,
                "client_credentials grants system/ scopes only",
            ));
        }
        if let Some(outside) = scopes.first_outside(&allowed) {
            return Err(oauth(
                OAuthErrorCode::InvalidScope,
                format!("scope {outside} is not allowed for this client"),
            ));
        }
        let grant = TokenGrant {
            subject: client.client_id.clone(),
            tenant: client.tenant.clone(),
            roles: vec![Role::Service],
            scopes: scopes.clone(),
            patient: None,
            fhir_user: None,
            client_id: client.client_id.clone(),
            family: None,
        };
        let (access_token, _) = self.issue_access_token(&grant)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.config.access_token_ttl_s,
            scope: scopes.to_string(),
            refresh_token: None,
            id_token: None,
            patient: None,
        })
    }

    fn id_token(
        &self,
        user: &User,
        tenant: &str,
        client_id: &str,
        scopes: &ScopeSet,
        nonce: Option<String>,
        auth_time: i64,
    ) -> Result<String, AuthError> {
        let now = self.now();
        let profile = scopes.has(&Scope::Profile);
        let claims = IdTokenClaims {
            iss: self.config.issuer.clone(),
            sub: user.id.clone(),
            aud: client_id.to_owned(),
            exp: now + self.config.id_token_ttl_s,
            iat: now,
            auth_time,
            nonce,
            fhir_user: if scopes.has(&Scope::FhirUser) {
                user.membership(tenant)
                    .and_then(|m| m.fhir_user.as_ref())
                    .map(|r| format!("{}/{r}", self.config.audience(tenant)))
            } else {
                None
            },
            name: profile.then(|| user.display_name.clone()),
            preferred_username: profile.then(|| user.login.clone()),
        };
        self.signing_key()?.sign(Some("JWT"), &claims)
    }

    /// RFC 7662 introspection. The caller (a resource server or client) must have been
    /// authenticated by the HTTP layer with [`Auth::authenticate_client`]; tokens of other
    /// tenants than the caller's read as inactive.
    pub fn introspect(&self, caller: &Client, token: &str) -> Result<Value, AuthError> {
        let inactive = json!({ "active": false });
        if let Ok(p) = self.verify_access_token(token) {
            if p.tenant != caller.tenant {
                return Ok(inactive);
            }
            let claims = self.verify_claims(token, self.now()).ok();
            let mut out = json!({
                "active": true,
                "token_type": "Bearer",
                "scope": p.scopes.to_string(),
                "client_id": p.client_id,
                "sub": p.subject,
                "exp": p.expires_s,
                "iss": self.config.issuer,
                "aud": self.config.audience(&p.tenant),
                "jti": p.jti,
                "tenant": p.tenant,
            });
            if let Some(c) = claims {
                out["iat"] = json!(c.iat);
            }
            if let Some(pt) = &p.patient {
                out["patient"] = json!(pt);
            }
            if let Some(fu) = &p.fhir_user {
                out["fhirUser"] = json!(fu);
            }
            return Ok(out);
        }
        if let Some((doc, _)) =
            docs::get::<RefreshDoc>(&*self.records, NS_REFRESH, &secret_key(token))?
            && !doc.rotated
            && doc.tenant == caller.tenant
            && !self.family_revoked(&doc.family)?
        {
            return Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": doc.scopes,
                "client_id": doc.client_id,
                "sub": doc.user_id,
                "exp": doc.expires_s,
                "iss": self.config.issuer,
            }));
        }
        Ok(inactive)
    }

    /// RFC 7009 revocation by the client the token was issued to. Unknown tokens and tokens
    /// of other clients are ignored (the endpoint answers 200 either way).
    pub fn revoke(&self, caller: &Client, token: &str) -> Result<(), AuthError> {
        if let Some((doc, _)) =
            docs::get::<RefreshDoc>(&*self.records, NS_REFRESH, &secret_key(token))?
        {
            if doc.client_id == caller.client_id {
                self.revoke_family(&doc.family)?;
            }
            return Ok(());
        }
        // Expired tokens need no revocation; a valid one is revoked by jti.
        if let Ok(claims) = self.verify_claims(token, self.now())
            && claims.client_id == caller.client_id
        {
            self.revoke_jti(&claims.jti, claims.exp)?;
        }
        Ok(())
    }

    /// The claims of a verified access token (for the userinfo endpoint and tools).
    pub fn access_claims(&self, token: &str) -> Result<AccessClaims, AuthError> {
        self.verify_access_token(token)?;
        self.verify_claims(token, self.now())
    }
}

#[cfg(test)]
#[path = "grants_tests.rs"]
mod tests;
