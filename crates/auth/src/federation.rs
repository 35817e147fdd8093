//! Login delegated to a tenant's own OpenID Connect provider (e.g. a hospital's Keycloak):
//! provider registration, the state/nonce/PKCE of the outgoing authorization request, id_token
//! verification against the provider's JWKS, and claims mapped to roles. The HTTP exchanges
//! with the provider (discovery, code for tokens, fetching its JWKS) belong to the HTTP layer.

use medicus_store::platform::DocExpect;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crypto::{b64, b64_decode, random_token, secret_key};
use crate::docs;
use crate::error::{AuthError, OAuthErrorCode, oauth};
use crate::grants::pkce_challenge;
use crate::jws::{self, Jwks, PublicKey};
use crate::roles::Role;
use crate::service::Auth;
use crate::tokens::Audience;
use crate::users::{Membership, NewUser, User};

const NS_IDP: &str = "idp";
const NS_IDP_STATE: &str = "idp-state";
const NS_IDP_LINK: &str = "idp-link";
const STATE_TTL_S: i64 = 600;
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A tenant's external OpenID provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityProvider {
    /// Short name, unique per tenant (`keycloak`).
    pub id: String,
    pub tenant: String,
    /// What the login page offers: "Sign in with {display_name}" (the id when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The provider's issuer (exactly as in its id_tokens).
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    /// medicus's client id at the provider.
    pub client_id: String,
    /// medicus's client secret at the provider, sealed under the server key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_client_secret: Option<String>,
    /// Where the provider puts roles: a dot path (`realm_access.roles`, `groups`).
    pub role_claim: String,
    /// Provider role or group → medicus role. Values mapped to nothing are ignored.
    pub role_map: Vec<(String, Role)>,
    /// A claim holding the user's FHIR resource (`Practitioner/…`), if the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fhir_user_claim: Option<String>,
}

impl IdentityProvider {
    /// The name shown on the login page.
    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.id)
    }
}

/// What the HTTP layer keeps nothing of: everything is stored under `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedLogin {
    pub tenant: String,
    pub idp: String,
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
    /// What the caller binds the login to, returned with it: the HTTP layer stores the
    /// SHA-256 of the browser's login-session id, so only that browser can complete it.
    pub return_to: Option<String>,
    /// The URL to send the browser to.
    pub authorize_url: String,
}

#[derive(Debug, Deserialize)]
struct ProviderIdClaims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
}

/// `http://` to this machine only (tests, a provider beside medicus): the host must be a
/// loopback name, not merely start like one (`http://localhost.evil.example`).
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    !authority.contains('@') && matches!(host, "127.0.0.1" | "localhost" | "::1")
}

/// The value at a dot path of a JSON object (`realm_access.roles`).
fn claim_at<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(claims, |v, key| v.get(key))
}

fn claim_strings(claims: &Value, path: &str) -> Vec<String> {
    match claim_at(claims, path) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

impl Auth {
    pub fn register_idp(
        &self,
        idp: IdentityProvider,
        client_secret: Option<&str>,
    ) -> Result<IdentityProvider, AuthError> {
        medicus_store::tenant::validate_tenant_id(&idp.tenant)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        if idp.id.is_empty()
            || !idp
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(AuthError::Invalid(
                "provider ids are letters, digits, - and _".into(),
            ));
        }
        for url in [
            &idp.issuer,
            &idp.authorization_endpoint,
            &idp.token_endpoint,
            &idp.jwks_uri,
        ] {
            if !url.starts_with("https://") && !is_loopback_http(url) {
                return Err(AuthError::Invalid(format!(
                    "provider URL must be https: {url}"
                )));
            }
        }
        if idp
            .display_name
            .as_deref()
            .is_some_and(|n| n.trim().is_empty() || n.chars().count() > 80)
        {
            return Err(AuthError::Invalid(
                "a provider's display name is 1-80 characters".into(),
            ));
        }
        if idp.role_map.is_empty() {
            return Err(AuthError::Invalid(
                "a provider needs at least one role mapping".into(),
            ));
        }
        if idp.role_map.iter().any(|(_, r)| *r == Role::Service) {
            return Err(AuthError::Invalid("service is not a user role".into()));
        }
        let key = format!("{}:{}", idp.tenant, idp.id);
        let mut idp = idp;
        idp.sealed_client_secret = match client_secret {
            Some(s) => Some(b64(&self
                .server_key
                .seal(&format!("idp:{key}"), s.as_bytes())?)),
            None => None,
        };
        docs::put(&*self.records, NS_IDP, &key, &idp, None, DocExpect::Any)?;
        Ok(idp)
    }

    pub fn idp(&self, tenant: &str, id: &str) -> Result<Option<IdentityProvider>, AuthError> {
        Ok(docs::get(&*self.records, NS_IDP, &format!("{tenant}:{id}"))?.map(|(i, _)| i))
    }

    /// Removes a provider; its users stay (linked, but nobody can sign in through it).
    pub fn remove_idp(&self, tenant: &str, id: &str) -> Result<bool, AuthError> {
        Ok(
            docs::take::<IdentityProvider>(&*self.records, NS_IDP, &format!("{tenant}:{id}"))?
                .is_some(),
        )
    }

    pub fn list_idps(&self, tenant: &str) -> Result<Vec<IdentityProvider>, AuthError> {
        Ok(docs::list(&*self.records, NS_IDP, &format!("{tenant}:"))?
            .into_iter()
            .map(|(_, i)| i)
            .collect())
    }

    /// medicus's secret at the provider, for the code exchange.
    pub fn idp_client_secret(&self, idp: &IdentityProvider) -> Result<Option<String>, AuthError> {
        let Some(sealed) = &idp.sealed_client_secret else {
            return Ok(None);
        };
        let plain = self.server_key.open(
            &format!("idp:{}:{}", idp.tenant, idp.id),
            &b64_decode(sealed)?,
        )?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| AuthError::Corrupt("provider secret".into()))
    }

    /// Starts a login at the provider: a single-use state (10 min) with nonce and PKCE verifier.
    pub fn begin_federated_login(
        &self,
        tenant: &str,
        idp_id: &str,
        redirect_uri: &str,
        return_to: Option<&str>,
    ) -> Result<FederatedLogin, AuthError> {
        let idp = self
            .idp(tenant, idp_id)?
            .ok_or_else(|| AuthError::NotFound(format!("identity provider {idp_id}")))?;
        let (state, nonce, code_verifier) = (random_token()?, random_token()?, random_token()?);
        let params = [
            ("response_type", "code"),
            ("client_id", idp.client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("scope", "openid profile"),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", &pkce_challenge(&code_verifier)),
            ("code_challenge_method", "S256"),
        ];
        let mut url = idp.authorization_endpoint.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        for (k, v) in params {
            url.push(sep);
            url.push_str(k);
            url.push('=');
            url.push_str(&utf8_percent_encode(v, QUERY).to_string());
            sep = '&';
        }
        let login = FederatedLogin {
            tenant: tenant.to_owned(),
            idp: idp_id.to_owned(),
            state: state.clone(),
            nonce,
            code_verifier,
            return_to: return_to.map(Into::into),
            authorize_url: url,
        };
        docs::put(
            &*self.records,
            NS_IDP_STATE,
            &secret_key(&state),
            &login,
            Some(self.now() + STATE_TTL_S),
            DocExpect::Absent,
        )?;
        Ok(login)
    }

    /// The pending login of a callback's `state`, taken once (a replayed callback finds nothing).
    pub fn take_federated_login(&self, state: &str) -> Result<FederatedLogin, AuthError> {
        docs::take(&*self.records, NS_IDP_STATE, &secret_key(state))?.ok_or_else(|| {
            oauth(
                OAuthErrorCode::AccessDenied,
                "unknown or expired login state",
            )
        })
    }

    /// Verifies the provider's id_token (signature by its JWKS, `iss`, `aud`/`azp`, times,
    /// `nonce`), maps its claims to roles and returns the linked user, created on first login;
    /// the tenant membership follows the provider's roles at every login.
    pub fn complete_federated_login(
        &self,
        login: &FederatedLogin,
        id_token: &str,
        jwks: &Jwks,
    ) -> Result<User, AuthError> {
        let deny = |why: &str| oauth(OAuthErrorCode::AccessDenied, why);
        let idp = self
            .idp(&login.tenant, &login.idp)?
            .ok_or_else(|| deny("identity provider removed"))?;
        let parsed = jws::parse(id_token).map_err(|_| deny("malformed id_token"))?;
        let verified = jwks
            .keys
            .iter()
            .filter(|k| parsed.header.kid.is_none() || k.kid == parsed.header.kid)
            .any(|jwk| {
                PublicKey::from_jwk(jwk)
                    .and_then(|key| {
                        key.verify(
                            parsed.alg,
                            parsed.signing_input.as_bytes(),
                            &parsed.signature,
                        )
                    })
                    .is_ok()
            });
        if !verified {
            return Err(deny("id_token signature does not verify"));
        }
        let claims: Value = serde_json::from_slice(&parsed.payload)
            .map_err(|_| deny("malformed id_token claims"))?;
        let std: ProviderIdClaims = serde_json::from_value(claims.clone())
            .map_err(|_| deny("id_token lacks standard claims"))?;
        let now = self.now();
        let leeway = self.config.leeway_s;
        if std.iss != idp.issuer {
            return Err(deny("id_token from another issuer"));
        }
        if !std.aud.contains(&idp.client_id)
            || std.azp.as_deref().is_some_and(|a| a != idp.client_id)
        {
            return Err(deny("id_token for another client"));
        }
        if std.exp + leeway <= now || std.iat.is_some_and(|iat| iat > now + leeway) {
            return Err(deny("id_token expired or not yet valid"));
        }
        if std.nonce.as_deref() != Some(login.nonce.as_str()) {
            return Err(deny("id_token nonce mismatch"));
        }
        let provider_roles = claim_strings(&claims, &idp.role_claim);
        let mut roles: Vec<Role> = idp
            .role_map
            .iter()
            .filter(|(value, _)| provider_roles.contains(value))
            .map(|(_, role)| *role)
            .collect();
        roles.sort();
        roles.dedup();
        if roles.is_empty() {
            return Err(deny("no medicus role for this user"));
        }
        let fhir_user = idp
            .fhir_user_claim
            .as_deref()
            .and_then(|c| claim_at(&claims, c))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let membership = Membership {
            tenant: login.tenant.clone(),
            roles,
            fhir_user,
        };
        let link_key = format!("{}:{}:{}", login.tenant, login.idp, std.sub);
        if let Some((link, _)) = docs::get::<Value>(&*self.records, NS_IDP_LINK, &link_key)?
            && let Some(user_id) = link.get("user").and_then(Value::as_str)
        {
            let user = self
                .user(user_id)?
                .ok_or_else(|| deny("linked user removed"))?;
            if user.disabled {
                return Err(deny("user disabled"));
            }
            return self.set_membership(&user.id, membership);
        }
        let name = claims
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&std.sub)
            .to_owned();
        let username: String = claims
            .get("preferred_username")
            .and_then(Value::as_str)
            .unwrap_or(&std.sub)
            .chars()
            .filter(|c| c.is_alphanumeric() || "._-".contains(*c))
            .take(64)
            .collect();
        // The provider's user name is only a readable default: when it is empty or taken
        // (a name reused for another subject), a name derived from the subject stands in.
        let by_subject = crate::crypto::b64url(&crate::crypto::sha256(std.sub.as_bytes()))
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect::<String>();
        let mut candidates = vec![format!("{username}@{}.{}", login.idp, login.tenant)];
        if username.is_empty() {
            candidates.clear();
        }
        candidates.push(format!(
            "{username}-{by_subject}@{}.{}",
            login.idp, login.tenant
        ));
        let mut created = None;
        for candidate in candidates {
            match self.create_user(NewUser {
                login: candidate,
                display_name: name.clone(),
                password: None,
                memberships: vec![membership.clone()],
            }) {
                Ok(user) => {
                    created = Some(user);
                    break;
                }
                Err(AuthError::Exists(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        let user = created.ok_or_else(|| deny("login name of this user is taken"))?;
        if docs::put(
            &*self.records,
            NS_IDP_LINK,
            &link_key,
            &serde_json::json!({ "user": user.id }),
            None,
            DocExpect::Absent,
        )?
        .is_none()
        {
            return Err(AuthError::Contention("federated user link".into()));
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::{Alg, SigningKey};
    use crate::service::tests::{T0, auth};
    use serde_json::json;

    fn provider() -> IdentityProvider {
        IdentityProvider {
            id: "keycloak".into(),
            tenant: "t1".into(),
            display_name: Some("Hospital Keycloak".into()),
            issuer: "https://kc.example/realms/h".into(),
            authorization_endpoint: "https://kc.example/realms/h/auth".into(),
            token_endpoint: "https://kc.example/realms/h/token".into(),
            jwks_uri: "https://kc.example/realms/h/certs".into(),
            client_id: "medicus".into(),
            sealed_client_secret: None,
            role_claim: "realm_access.roles".into(),
            role_map: vec![
                ("doctor".into(), Role::Clinician),
                ("it-admin".into(), Role::TenantAdmin),
            ],
            fhir_user_claim: Some("fhir_user".into()),
        }
    }

    fn id_token(key: &SigningKey, login: &FederatedLogin, patch: Value) -> String {
        let mut claims = json!({
            "iss": "https://kc.example/realms/h", "sub": "kc-123", "aud": "medicus", "exp": T0 + 300, "iat": T0,
            "nonce": login.nonce, "preferred_username": "anna", "name": "Dr Anna",
            "realm_access": {"roles": ["doctor", "offline_access"]}, "fhir_user": "Practitioner/a9",
        });
        for (k, v) in patch.as_object().unwrap() {
            claims[k] = v.clone();
        }
        key.sign(Some("JWT"), &claims).unwrap()
    }

    #[test]
    fn federated_login() {
        let (auth, _, records) = auth();
        auth.register_idp(provider(), Some("kc-secret")).unwrap();
        let idp = auth.idp("t1", "keycloak").unwrap().unwrap();
        assert!(
            !String::from_utf8(records.raw("idp")[0].value.clone())
                .unwrap()
                .contains("kc-secret")
        );
        assert_eq!(
            auth.idp_client_secret(&idp).unwrap().as_deref(),
            Some("kc-secret")
        );
        let key = crate::jws::tests::rsa_key("kc-key", Alg::RS256);
        let jwks = Jwks {
            keys: vec![key.public_jwk().clone()],
        };

        let start = auth
            .begin_federated_login(
                "t1",
                "keycloak",
                "https://m.example/auth/callback",
                Some("/auth/authorize?x"),
            )
            .unwrap();
        assert!(start.authorize_url.starts_with("https://kc.example/realms/h/auth?response_type=code&client_id=medicus&redirect_uri=https%3A%2F%2Fm.example%2Fauth%2Fcallback"));
        assert!(start.authorize_url.contains("code_challenge_method=S256"));
        let login = auth.take_federated_login(&start.state).unwrap();
        assert!(
            auth.take_federated_login(&start.state).is_err(),
            "state is single-use"
        );

        // Attacks on the id_token.
        let stranger = SigningKey::generate_ec("kc-key", Alg::ES256).unwrap().0;
        assert!(
            auth.complete_federated_login(&login, &id_token(&stranger, &login, json!({})), &jwks)
                .is_err(),
            "wrong key"
        );
        for patch in [
            json!({"iss": "https://evil.example"}),
            json!({"aud": "other"}),
            json!({"azp": "other", "aud": ["medicus", "other"]}),
            json!({"exp": T0 - 60}),
            json!({"nonce": "replayed"}),
            json!({"realm_access": {"roles": ["visitor"]}}),
        ] {
            assert!(
                auth.complete_federated_login(
                    &login,
                    &id_token(&key, &login, patch.clone()),
                    &jwks
                )
                .is_err(),
                "{patch}"
            );
        }

        let user = auth
            .complete_federated_login(&login, &id_token(&key, &login, json!({})), &jwks)
            .unwrap();
        assert_eq!(user.login, "anna@keycloak.t1");
        assert_eq!(user.roles_in("t1"), vec![Role::Clinician]);
        assert_eq!(
            user.membership("t1").unwrap().fhir_user.as_deref(),
            Some("Practitioner/a9")
        );
        assert!(!user.has_password());
        // The next login follows the provider's roles and finds the same user.
        let again = auth
            .complete_federated_login(
                &login,
                &id_token(
                    &key,
                    &login,
                    json!({"realm_access": {"roles": ["doctor", "it-admin"]}}),
                ),
                &jwks,
            )
            .unwrap();
        assert_eq!(again.id, user.id);
        assert_eq!(
            again.roles_in("t1"),
            vec![Role::TenantAdmin, Role::Clinician]
        );
        // Another subject with the same user name gets a name of its own.
        let other = auth
            .complete_federated_login(
                &login,
                &id_token(&key, &login, json!({"sub": "kc-456"})),
                &jwks,
            )
            .unwrap();
        assert_ne!(other.id, user.id);
        assert!(
            other.login.starts_with("anna-") && other.login.ends_with("@keycloak.t1"),
            "{}",
            other.login
        );
        auth.set_disabled(&user.id, true).unwrap();
        assert!(
            auth.complete_federated_login(&login, &id_token(&key, &login, json!({})), &jwks)
                .is_err()
        );
    }

    #[test]
    fn registration_checks() {
        let (auth, _, _) = auth();
        let mut p = provider();
        p.issuer = "http://kc.example".into();
        assert!(auth.register_idp(p, None).is_err());
        let mut p = provider();
        p.role_map = vec![("svc".into(), Role::Service)];
        assert!(auth.register_idp(p, None).is_err());
        let mut p = provider();
        p.role_map.clear();
        assert!(auth.register_idp(p, None).is_err());
        assert!(
            auth.begin_federated_login("t1", "nope", "https://m.example/cb", None)
                .is_err()
        );
    }

    #[test]
    fn only_loopback_may_use_http() {
        for ok in [
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://[::1]:9/x",
        ] {
            assert!(is_loopback_http(ok), "{ok}");
        }
        for bad in [
            "http://localhost.evil.example/x",
            "http://127.0.0.1.nip.io/x",
            "http://localhost@evil.example/x",
            "http://evil.example/127.0.0.1",
            "https://localhost/x",
        ] {
            assert!(!is_loopback_http(bad), "{bad}");
        }
    }

    #[test]
    fn claim_paths() {
        let c = json!({"a": {"b": ["x", "y", 3]}, "g": "one"});
        assert_eq!(claim_strings(&c, "a.b"), vec!["x", "y"]);
        assert_eq!(claim_strings(&c, "g"), vec!["one"]);
        assert!(claim_strings(&c, "a.c").is_empty());
    }
}
