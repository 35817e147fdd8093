//! OAuth clients (SMART apps and services): exact redirect URIs, allowed scopes, and how they
//! authenticate: public with PKCE, `private_key_jwt` (RS384/ES384 client assertions), or a
//! secret stored as an argon2id hash.

use medicus_store::platform::DocExpect;
use serde::{Deserialize, Serialize};

use crate::crypto::{random_id, random_token};
use crate::docs;
use crate::error::{AuthError, OAuthErrorCode, oauth};
use crate::jws::{self, Alg, Jwks, PublicKey};
use crate::password::{hash_password, verify_dummy, verify_password};
use crate::scope::ScopeSet;
use crate::service::Auth;
use crate::tokens::Audience;

const NS_CLIENT: &str = "client";
const NS_ASSERTION: &str = "assertion-jti";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest client assertion lifetime accepted (SMART Backend Services: ≤ 5 minutes).
const MAX_ASSERTION_LIFETIME_S: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientKind {
    /// A public app (browser, mobile): no secret, PKCE mandatory.
    Public,
    /// Confidential with asymmetric keys.
    PrivateKeyJwt {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jwks: Option<Jwks>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jwks_uri: Option<String>,
    },
    /// Confidential with a shared secret (argon2id hash).
    Secret { hash: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub tenant: String,
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    /// The scopes the client may ask for (space-separated, v2 form).
    pub scopes: String,
    #[serde(default)]
    pub disabled: bool,
    pub created_s: i64,
}

impl Client {
    pub fn allowed_scopes(&self) -> ScopeSet {
        // Validated at registration; a stored value that no longer parses grants nothing.
        ScopeSet::parse(&self.scopes).unwrap_or_default()
    }
    pub fn is_confidential(&self) -> bool {
        !matches!(self.kind, ClientKind::Public)
    }
    pub fn auth_method(&self) -> &'static str {
        match self.kind {
            ClientKind::Public => "none",
            ClientKind::PrivateKeyJwt { .. } => "private_key_jwt",
            ClientKind::Secret { .. } => "client_secret_basic",
        }
    }
}

#[derive(Debug, Clone)]
pub enum NewClientKind {
    Public,
    PrivateKeyJwt {
        jwks: Option<Jwks>,
        jwks_uri: Option<String>,
    },
    /// A secret is generated and returned once.
    Secret,
}

#[derive(Debug, Clone)]
pub struct NewClient {
    /// Generated when `None`.
    pub client_id: Option<String>,
    pub tenant: String,
    pub name: String,
    pub kind: NewClientKind,
    pub redirect_uris: Vec<String>,
    pub scopes: String,
}

/// How a client authenticates at the token, introspection and revocation endpoints (the HTTP
/// layer fills this from the form and the `Authorization: Basic` header).
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

impl ClientCredentials {
    /// Adds the client authentication of an `Authorization` header: `Basic` with the
    /// form-urlencoded client id and secret (RFC 6749 §2.3.1). A request may authenticate one
    /// way only; a header and form credentials together are `invalid_request`.
    pub fn with_authorization(mut self, authorization: Option<&str>) -> Result<Self, AuthError> {
        let Some(header) = authorization else {
            return Ok(self);
        };
        let bad = || oauth(OAuthErrorCode::InvalidClient, "malformed Basic credentials");
        let (scheme, value) = header.trim().split_once(' ').ok_or_else(bad)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(bad());
        }
        let decoded = crate::crypto::b64_decode(value.trim()).map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = text.split_once(':').ok_or_else(bad)?;
        let form_decode = |v: &str| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad())
        };
        let (id, secret) = (form_decode(id)?, form_decode(secret)?);
        if self.client_secret.is_some() || self.client_assertion.is_some() {
            return Err(oauth(
                OAuthErrorCode::InvalidRequest,
                "more than one client authentication",
            ));
        }
        if self
            .client_id
            .as_deref()
            .is_some_and(|form_id| form_id != id)
        {
            return Err(oauth(
                OAuthErrorCode::InvalidRequest,
                "client_id differs from the Basic credentials",
            ));
        }
        self.client_id = Some(id);
        self.client_secret = Some(secret);
        Ok(self)
    }
}

/// Redirect URIs are absolute https URLs without fragment; plain http only for loopback hosts
/// (native apps, RFC 8252 §7.3).
pub fn validate_redirect_uri(uri: &str) -> Result<(), AuthError> {
    let bad = |why: &str| Err(AuthError::Invalid(format!("redirect URI '{uri}': {why}")));
    if uri.contains('#') {
        return bad("no fragment allowed");
    }
    if uri.len() > 2000 || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("malformed");
    }
    if let Some(rest) = uri.strip_prefix("https://") {
        if rest.is_empty() || rest.starts_with('/') {
            return bad("no host");
        }
        return Ok(());
    }
    if let Some(rest) = uri.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            return Ok(());
        }
        return bad("http only for loopback");
    }
    // Private-use schemes of native apps (com.example.app:/callback).
    if let Some((scheme, _)) = uri.split_once(':')
        && scheme.contains('.')
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+')
    {
        return Ok(());
    }
    bad("must be https")
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
    jti: String,
    #[serde(default)]
    iat: Option<i64>,
}

impl Auth {
    /// Registers a client; returns it and, for a secret client, the secret (shown once).
    pub fn register_client(&self, new: NewClient) -> Result<(Client, Option<String>), AuthError> {
        medicus_store::tenant::validate_tenant_id(&new.tenant)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let client_id = match new.client_id {
            Some(id) => {
                if id.is_empty()
                    || id.len() > 128
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                {
                    return Err(AuthError::Invalid(
                        "client ids are 1-128 of A-Z a-z 0-9 - . _".into(),
                    ));
                }
                id
            }
            None => random_id()?,
        };
        for uri in &new.redirect_uris {
            validate_redirect_uri(uri)?;
        }
        let scopes = ScopeSet::parse(&new.scopes)?;
        let mut secret = None;
        let kind = match new.kind {
            NewClientKind::Public => {
                if new.redirect_uris.is_empty() {
                    return Err(AuthError::Invalid(
                        "a public client needs a redirect URI".into(),
                    ));
                }
                ClientKind::Public
            }
            NewClientKind::PrivateKeyJwt { jwks, jwks_uri } => {
                match (&jwks, &jwks_uri) {
                    (Some(set), None) => {
                        if set.keys.is_empty() {
                            return Err(AuthError::Invalid("empty JWKS".into()));
                        }
                        for key in &set.keys {
                            PublicKey::from_jwk(key)?;
                        }
                    }
                    (None, Some(uri)) => {
                        if !uri.starts_with("https://")
                            && !uri.starts_with("http://localhost")
                            && !uri.starts_with("http://127.0.0.1")
                        {
                            return Err(AuthError::Invalid("jwks_uri must be https".into()));
                        }
                    }
                    _ => {
                        return Err(AuthError::Invalid(
                            "give either a JWKS or a jwks_uri".into(),
                        ));
                    }
                }
                ClientKind::PrivateKeyJwt { jwks, jwks_uri }
            }
            NewClientKind::Secret => {
                let s = random_token()?;
                let hash = hash_password(&s, self.config.password_cost)?;
                secret = Some(s);
                ClientKind::Secret { hash }
            }
        };
        let client = Client {
            client_id: client_id.clone(),
            tenant: new.tenant,
            name: new.name,
            kind,
            redirect_uris: new.redirect_uris,
            scopes: scopes.to_string(),
            disabled: false,
            created_s: self.now(),
        };
        docs::put(
            &*self.records,
            NS_CLIENT,
            &client_id,
            &client,
            None,
            DocExpect::Absent,
        )?
        .ok_or_else(|| AuthError::Exists(format!("client {client_id}")))?;
        Ok((client, secret))
    }

    pub fn client(&self, client_id: &str) -> Result<Option<Client>, AuthError> {
        Ok(docs::get::<Client>(&*self.records, NS_CLIENT, client_id)?.map(|(c, _)| c))
    }

    pub fn list_clients(&self, tenant: Option<&str>) -> Result<Vec<Client>, AuthError> {
        Ok(docs::list::<Client>(&*self.records, NS_CLIENT, "")?
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| tenant.is_none_or(|t| c.tenant == t))
            .collect())
    }

    pub fn set_client_disabled(
        &self,
        client_id: &str,
        disabled: bool,
    ) -> Result<Client, AuthError> {
        docs::update::<Client>(&*self.records, NS_CLIENT, client_id, None, |c| {
            c.disabled = disabled;
            Ok(())
        })
    }

    /// Authenticates a client at the token endpoint. Every failure is `invalid_client`.
    pub fn authenticate_client(&self, creds: &ClientCredentials) -> Result<Client, AuthError> {
        let fail = |why: &str| oauth(OAuthErrorCode::InvalidClient, why);
        if let Some(assertion) = &creds.client_assertion {
            if creds.client_assertion_type.as_deref() != Some(JWT_BEARER) {
                return Err(fail("unsupported client_assertion_type"));
            }
            return self.verify_client_assertion(assertion, creds.client_id.as_deref());
        }
        let client_id = creds
            .client_id
            .as_deref()
            .ok_or_else(|| fail("client authentication required"))?;
        let Some(client) = self.client(client_id)? else {
            if let Some(secret) = &creds.client_secret {
                verify_dummy(secret, self.config.password_cost);
            }
            return Err(fail("unknown client"));
        };
        if client.disabled {
            return Err(fail("client disabled"));
        }
        match (&client.kind, &creds.client_secret) {
            (ClientKind::Public, None) => Ok(client),
            (ClientKind::Secret { hash }, Some(secret)) if verify_password(secret, hash) => {
                Ok(client)
            }
            (ClientKind::PrivateKeyJwt { .. }, _) => {
                Err(fail("client must authenticate with private_key_jwt"))
            }
            _ => Err(fail("client authentication failed")),
        }
    }

    fn client_keys(&self, client: &Client) -> Result<Jwks, AuthError> {
        match &client.kind {
            ClientKind::PrivateKeyJwt {
                jwks: Some(jwks), ..
            } => Ok(jwks.clone()),
            ClientKind::PrivateKeyJwt {
                jwks_uri: Some(uri),
                ..
            } => {
                let fetch = self.jwks_fetcher.as_ref().ok_or_else(|| {
                    oauth(
                        OAuthErrorCode::InvalidClient,
                        "jwks_uri cannot be fetched here",
                    )
                })?;
                fetch(uri)
                    .map_err(|_| oauth(OAuthErrorCode::InvalidClient, "client JWKS unavailable"))
            }
            _ => Err(oauth(OAuthErrorCode::InvalidClient, "client has no keys")),
        }
    }

    /// Verifies a `private_key_jwt` client assertion (RFC 7523, SMART Backend Services):
    /// RS384 or ES384 by a key of the client's JWKS, `iss` = `sub` = client id, `aud` = the
    /// token endpoint, `exp` at most 5 minutes ahead, `jti` used once.
    pub fn verify_client_assertion(
        &self,
        assertion: &str,
        client_id: Option<&str>,
    ) -> Result<Client, AuthError> {
        let fail = |why: &str| oauth(OAuthErrorCode::InvalidClient, why);
        let now = self.now();
        let leeway = self.config.leeway_s;
        let parsed = jws::parse(assertion).map_err(|_| fail("malformed client assertion"))?;
        if !matches!(parsed.alg, Alg::RS384 | Alg::ES384) {
            return Err(fail("client assertions must be RS384 or ES384"));
        }
        // The claims are read before the signature is checked only to find the client.
        let claims: AssertionClaims = serde_json::from_slice(&parsed.payload)
            .map_err(|_| fail("malformed assertion claims"))?;
        if claims.iss != claims.sub || client_id.is_some_and(|id| id != claims.iss) {
            return Err(fail("assertion iss/sub do not name the client"));
        }
        let client = self
            .client(&claims.iss)?
            .ok_or_else(|| fail("unknown client"))?;
        if client.disabled || !matches!(client.kind, ClientKind::PrivateKeyJwt { .. }) {
            return Err(fail("client cannot use private_key_jwt"));
        }
        let jwks = self.client_keys(&client)?;
        let candidates: Vec<_> = jwks
            .keys
            .iter()
            .filter(|k| parsed.header.kid.is_none() || k.kid == parsed.header.kid)
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == parsed.alg.as_str()))
            .collect();
        let verified = candidates.iter().any(|jwk| {
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
            return Err(fail("client assertion signature does not verify"));
        }
        if !claims.aud.contains(&self.config.token_endpoint()) {
            return Err(fail("assertion aud must be the token endpoint"));
        }
        if claims.exp + leeway <= now {
            return Err(fail("client assertion expired"));
        }
        if claims.exp > now + MAX_ASSERTION_LIFETIME_S + leeway
            || claims.iat.is_some_and(|iat| iat > now + leeway)
        {
            return Err(fail("client assertion lifetime too long"));
        }
        if claims.jti.is_empty() || claims.jti.len() > 256 {
            return Err(fail("assertion jti missing"));
        }
        let key = format!("{}:{}", client.client_id, claims.jti);
        if docs::put(
            &*self.records,
            NS_ASSERTION,
            &key,
            &serde_json::json!({}),
            Some(claims.exp + leeway),
            DocExpect::Absent,
        )?
        .is_none()
        {
            return Err(fail("client assertion replayed"));
        }
        Ok(client)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::jws::SigningKey;
    use crate::service::tests::{T0, auth};
    use serde_json::json;

    pub(crate) fn service_client(auth: &Auth, alg: Alg) -> SigningKey {
        let key = match alg {
            Alg::ES384 => SigningKey::generate_ec("svc-key", Alg::ES384).unwrap().0,
            _ => crate::jws::tests::rsa_key("svc-key", Alg::RS384),
        };
        auth.register_client(NewClient {
            client_id: Some("svc".into()),
            tenant: "t1".into(),
            name: "Service".into(),
            kind: NewClientKind::PrivateKeyJwt {
                jwks: Some(Jwks {
                    keys: vec![key.public_jwk().clone()],
                }),
                jwks_uri: None,
            },
            redirect_uris: vec![],
            scopes: "system/*.rs".into(),
        })
        .unwrap();
        key
    }

    pub(crate) fn assertion(key: &SigningKey, claims: serde_json::Value) -> String {
        key.sign(Some("JWT"), &claims).unwrap()
    }

    pub(crate) fn good_claims(jti: &str) -> serde_json::Value {
        json!({"iss": "svc", "sub": "svc", "aud": "https://m.example/auth/token", "exp": T0 + 240, "jti": jti})
    }

    #[test]
    fn basic_credentials() {
        use base64::Engine;
        let basic = |text: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(text)
            )
        };
        let c = ClientCredentials::default()
            .with_authorization(Some(&basic("my%20app:s%3Acret+x")))
            .unwrap();
        assert_eq!(
            (c.client_id.as_deref(), c.client_secret.as_deref()),
            (Some("my app"), Some("s:cret x"))
        );
        let c = ClientCredentials::default()
            .with_authorization(None)
            .unwrap();
        assert!(c.client_id.is_none());
        assert!(
            ClientCredentials::default()
                .with_authorization(Some("Bearer abc"))
                .is_err()
        );
        assert!(
            ClientCredentials::default()
                .with_authorization(Some("Basic !!!"))
                .is_err()
        );
        let twice = ClientCredentials {
            client_secret: Some("x".into()),
            ..Default::default()
        };
        assert!(twice.with_authorization(Some(&basic("a:b"))).is_err());
        let other_id = ClientCredentials {
            client_id: Some("other".into()),
            ..Default::default()
        };
        assert!(other_id.with_authorization(Some(&basic("a:b"))).is_err());
    }

    #[test]
    fn redirect_uris() {
        for ok in [
            "https://app.example/cb",
            "http://localhost:8080/cb",
            "http://127.0.0.1/cb",
            "com.example.app:/cb",
        ] {
            assert!(validate_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#x",
            "javascript:alert(1)",
            "https://",
            "ftp://x",
            "/cb",
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_clients() {
        let (auth, _, records) = auth();
        let (client, secret) = auth
            .register_client(NewClient {
                client_id: Some("conf".into()),
                tenant: "t1".into(),
                name: "Conf".into(),
                kind: NewClientKind::Secret,
                redirect_uris: vec!["https://app.example/cb".into()],
                scopes: "user/*.rs openid".into(),
            })
            .unwrap();
        let secret = secret.unwrap();
        assert!(
            !String::from_utf8(records.raw("client")[0].value.clone())
                .unwrap()
                .contains(&secret)
        );
        let creds = |s: Option<&str>| ClientCredentials {
            client_id: Some("conf".into()),
            client_secret: s.map(Into::into),
            ..Default::default()
        };
        assert_eq!(
            auth.authenticate_client(&creds(Some(&secret))).unwrap(),
            client
        );
        assert!(auth.authenticate_client(&creds(Some("wrong"))).is_err());
        assert!(auth.authenticate_client(&creds(None)).is_err());
        assert!(
            auth.register_client(NewClient {
                client_id: Some("conf".into()),
                tenant: "t1".into(),
                name: "x".into(),
                kind: NewClientKind::Public,
                redirect_uris: vec!["https://a.example/cb".into()],
                scopes: String::new(),
            })
            .is_err(),
            "duplicate id"
        );
    }

    #[test]
    fn client_assertions_rs384_and_es384() {
        for alg in [Alg::RS384, Alg::ES384] {
            let (auth, _, _) = auth();
            let key = service_client(&auth, alg);
            let a = assertion(&key, good_claims("j1"));
            assert_eq!(
                auth.verify_client_assertion(&a, None).unwrap().client_id,
                "svc"
            );
            assert!(
                auth.verify_client_assertion(&a, None).is_err(),
                "replayed jti"
            );
            let mut bad = good_claims("j2");
            bad["aud"] = json!("https://m.example/auth/other");
            assert!(
                auth.verify_client_assertion(&assertion(&key, bad), None)
                    .is_err(),
                "aud"
            );
            let mut bad = good_claims("j3");
            bad["exp"] = json!(T0 + 3600);
            assert!(
                auth.verify_client_assertion(&assertion(&key, bad), None)
                    .is_err(),
                "lifetime"
            );
            let mut bad = good_claims("j4");
            bad["exp"] = json!(T0 - 60);
            assert!(
                auth.verify_client_assertion(&assertion(&key, bad), None)
                    .is_err(),
                "expired"
            );
            let mut bad = good_claims("j5");
            bad["sub"] = json!("other");
            assert!(
                auth.verify_client_assertion(&assertion(&key, bad), None)
                    .is_err(),
                "sub"
            );
            // Signed by a key the client never registered.
            let stranger = SigningKey::generate_ec("svc-key", Alg::ES384).unwrap().0;
            assert!(
                auth.verify_client_assertion(&assertion(&stranger, good_claims("j6")), None)
                    .is_err()
            );
            // RS256/ES256 are not accepted for assertions.
            let rs256 = crate::jws::tests::rsa_key("svc-key", Alg::RS256);
            assert!(
                auth.verify_client_assertion(&assertion(&rs256, good_claims("j7")), None)
                    .is_err()
            );
            assert!(
                auth.verify_client_assertion(&assertion(&key, good_claims("j8")), Some("other"))
                    .is_err()
            );
        }
    }

    #[test]
    fn jwks_uri_goes_through_the_fetcher() {
        let (auth, _, _) = auth();
        let key = SigningKey::generate_ec("k", Alg::ES384).unwrap().0;
        let jwk = key.public_jwk().clone();
        let auth = auth.with_jwks_fetcher(std::sync::Arc::new(move |uri: &str| {
            if uri == "https://svc.example/jwks" {
                Ok(Jwks {
                    keys: vec![jwk.clone()],
                })
            } else {
                Err("unknown".into())
            }
        }));
        auth.register_client(NewClient {
            client_id: Some("svc".into()),
            tenant: "t1".into(),
            name: "S".into(),
            kind: NewClientKind::PrivateKeyJwt {
                jwks: None,
                jwks_uri: Some("https://svc.example/jwks".into()),
            },
            redirect_uris: vec![],
            scopes: "system/*.rs".into(),
        })
        .unwrap();
        assert!(
            auth.verify_client_assertion(&assertion(&key, good_claims("x")), None)
                .is_ok()
        );
    }
}
