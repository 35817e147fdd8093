//! Access tokens: RS256-signed JWTs (`typ: at+jwt`, RFC 9068) with SMART claims, verified
//! with a cache of verified tokens keyed by the token's SHA-256 until they expire, and
//! revocation markers picked up from the store.

use std::sync::Arc;

use medicus_store::platform::DocExpect;
use serde::{Deserialize, Serialize};

use crate::crypto::{random_id, sha256};
use crate::docs;
use crate::error::AuthError;
use crate::jws::{self, Alg};
pub use crate::policy::Principal;
use crate::roles::Role;
use crate::scope::ScopeSet;
use crate::service::Auth;

pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
const NS_REVOKED: &str = "revoked";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(list) => list.iter().any(|a| a == aud),
        }
    }
}

/// The token of an `Authorization: Bearer …` header (RFC 6750 §2.1), `None` for any other
/// scheme or a malformed value.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    let token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.chars().all(token68))
        .then_some(token)
}

/// The claims of a medicus access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub tenant: String,
    pub scope: String,
    #[serde(default)]
    pub roles: Vec<Role>,
    pub client_id: String,
    #[serde(rename = "fhirUser", default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The grant family (authorization code and its refresh chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
}

/// What a token is issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub subject: String,
    pub tenant: String,
    pub roles: Vec<Role>,
    pub scopes: ScopeSet,
    pub patient: Option<String>,
    pub fhir_user: Option<String>,
    pub client_id: String,
    pub family: Option<String>,
}

impl Auth {
    pub fn issue_access_token(
        &self,
        grant: &TokenGrant,
    ) -> Result<(String, AccessClaims), AuthError> {
        let now = self.now();
        let claims = AccessClaims {
            iss: self.config.issuer.clone(),
            sub: grant.subject.clone(),
            aud: Audience::One(self.config.audience(&grant.tenant)),
            exp: now + self.config.access_token_ttl_s,
            iat: now,
            nbf: None,
            jti: random_id()?,
            tenant: grant.tenant.clone(),
            scope: grant.scopes.to_string(),
            roles: grant.roles.clone(),
            client_id: grant.client_id.clone(),
            fhir_user: grant.fhir_user.clone(),
            patient: grant.patient.clone(),
            fam: grant.family.clone(),
        };
        let token = self.signing_key()?.sign(Some(ACCESS_TOKEN_TYP), &claims)?;
        Ok((token, claims))
    }

    /// The principal of a token verified before, `None` if unseen; an expired one is an error.
    fn cached(&self, hash: &[u8; 32], now: i64) -> Result<Option<Arc<Principal>>, AuthError> {
        let cached = self
            .cache
            .read()
            .map_err(|_| AuthError::Crypto("cache lock poisoned"))?
            .get(hash)
            .cloned();
        match cached {
            Some(p) if p.expires_s + self.config.leeway_s <= now => {
                Err(AuthError::InvalidToken("expired"))
            }
            other => Ok(other),
        }
    }

    /// Verifies a bearer token: signature by a published key, `typ`, issuer, audience
    /// (`{fhir_base}/{tenant}`), time claims with leeway, and revocation. The result is cached
    /// until the token expires.
    pub fn verify_access_token(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        let now = self.now();
        let hash = sha256(token.as_bytes());
        let principal = match self.cached(&hash, now)? {
            Some(p) => p,
            None => {
                let p = Arc::new(self.verify_uncached(token, now)?);
                self.cache_insert(hash, p.clone(), now)?;
                p
            }
        };
        if self.is_revoked(&principal, now)? {
            return Err(AuthError::InvalidToken("revoked"));
        }
        Ok(principal)
    }

    fn cache_insert(
        &self,
        hash: [u8; 32],
        principal: Arc<Principal>,
        now: i64,
    ) -> Result<(), AuthError> {
        let mut cache = self
            .cache
            .write()
            .map_err(|_| AuthError::Crypto("cache lock poisoned"))?;
        if cache.len() >= self.config.token_cache_capacity {
            let leeway = self.config.leeway_s;
            cache.retain(|_, p| p.expires_s + leeway > now);
            if cache.len() >= self.config.token_cache_capacity {
                cache.clear();
            }
        }
        cache.insert(hash, principal);
        Ok(())
    }

    /// The claims of a token whose signature, issuer, audience and times check out
    /// (revocation not considered).
    pub(crate) fn verify_claims(&self, token: &str, now: i64) -> Result<AccessClaims, AuthError> {
        let parsed = jws::parse(token)?;
        // Our tokens are RS256 only: any other alg is an attack or someone else's token.
        if parsed.alg != Alg::RS256 {
            return Err(AuthError::InvalidToken("algorithm not accepted"));
        }
        if parsed.header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(AuthError::InvalidToken("not an access token"));
        }
        let kid = parsed
            .header
            .kid
            .as_deref()
            .ok_or(AuthError::InvalidToken("no kid"))?;
        let key = self
            .verification_key(kid)?
            .ok_or(AuthError::InvalidToken("unknown key"))?;
        key.verify(
            parsed.alg,
            parsed.signing_input.as_bytes(),
            &parsed.signature,
        )?;
        let claims: AccessClaims = serde_json::from_slice(&parsed.payload)
            .map_err(|_| AuthError::InvalidToken("claims malformed"))?;
        if claims.iss != self.config.issuer {
            return Err(AuthError::InvalidToken("wrong issuer"));
        }
        if !claims.aud.contains(&self.config.audience(&claims.tenant)) {
            return Err(AuthError::InvalidToken("wrong audience"));
        }
        let leeway = self.config.leeway_s;
        if claims.exp + leeway <= now {
            return Err(AuthError::InvalidToken("expired"));
        }
        if claims.iat > now + leeway || claims.nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(AuthError::InvalidToken("not yet valid"));
        }
        Ok(claims)
    }

    fn verify_uncached(&self, token: &str, now: i64) -> Result<Principal, AuthError> {
        let claims = self.verify_claims(token, now)?;
        let scopes = ScopeSet::parse(&claims.scope)
            .map_err(|_| AuthError::InvalidToken("bad scope claim"))?;
        Ok(Principal {
            subject: claims.sub,
            tenant: claims.tenant,
            roles: claims.roles,
            scopes,
            patient: claims.patient,
            fhir_user: claims.fhir_user,
            client_id: claims.client_id,
            jti: claims.jti,
            expires_s: claims.exp,
            family: claims.fam,
        })
    }

    /// Like [`Auth::verify_access_token`], but never touches the store, so an async request
    /// handler may call it on its own thread: `Ok(None)` when the answer needs the store (a
    /// signing key not loaded yet, a revocation view older than `revocation_sync_s`; with
    /// [`Auth::start_background_refresh`] running that is rare). Then call
    /// `verify_access_token` on a blocking thread.
    pub fn verify_access_token_in_memory(
        &self,
        token: &str,
    ) -> Result<Option<Arc<Principal>>, AuthError> {
        let now = self.now();
        // One second more than the blocking path allows: the clock has whole seconds and the
        // background refresh runs every half second, so a view synced in the previous second
        // is at most that old.
        if self.revocations_stale(now - 1)? {
            return Ok(None);
        }
        let hash = sha256(token.as_bytes());
        let principal = match self.cached(&hash, now)? {
            Some(p) => p,
            None => {
                let parsed = jws::parse(token)?;
                let kid = parsed
                    .header
                    .kid
                    .as_deref()
                    .ok_or(AuthError::InvalidToken("no kid"))?;
                let known = self
                    .keys
                    .read()
                    .map_err(|_| AuthError::Crypto("key lock poisoned"))?
                    .public
                    .contains_key(kid);
                if !known {
                    return Ok(None);
                }
                let p = Arc::new(self.verify_uncached(token, now)?);
                self.cache_insert(hash, p.clone(), now)?;
                p
            }
        };
        if self.revoked_in_view(&principal)? {
            return Err(AuthError::InvalidToken("revoked"));
        }
        Ok(Some(principal))
    }

    fn revocations_stale(&self, now: i64) -> Result<bool, AuthError> {
        Ok(self
            .revocations
            .read()
            .map_err(|_| AuthError::Crypto("revocation lock poisoned"))?
            .synced_s
            .saturating_add(self.config.revocation_sync_s)
            <= now)
    }

    /// Starts a thread that keeps the revocation view and the signing keys fresh (every half
    /// second, keys every `key_reload_s`), so request paths need no store access. It ends
    /// when the last `Arc<Auth>` is dropped. Store errors are left to the request path (a
    /// stale view sends it to the store, where the error surfaces).
    pub fn start_background_refresh(
        auth: &Arc<Auth>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let weak = Arc::downgrade(auth);
        std::thread::Builder::new()
            .name("auth-refresh".into())
            .spawn(move || {
                loop {
                    let Some(auth) = weak.upgrade() else {
                        return;
                    };
                    let now = auth.now();
                    let _ = auth.sync_revocations(now);
                    let keys_stale = auth.keys.read().map_or(true, |k| {
                        k.loaded_s
                            .is_none_or(|l| now - l >= auth.config.key_reload_s)
                    });
                    if keys_stale {
                        let _ = auth.reload_keys();
                    }
                    drop(auth);
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
            })
    }

    fn is_revoked(&self, principal: &Principal, now: i64) -> Result<bool, AuthError> {
        if self.revocations_stale(now)? {
            self.sync_revocations(now)?;
        }
        self.revoked_in_view(principal)
    }

    fn revoked_in_view(&self, principal: &Principal) -> Result<bool, AuthError> {
        let view = self
            .revocations
            .read()
            .map_err(|_| AuthError::Crypto("revocation lock poisoned"))?;
        Ok(view.revoked.contains(&format!("jti:{}", principal.jti))
            || view.revoked.contains(&format!("sub:{}", principal.subject))
            || principal
                .family
                .as_ref()
                .is_some_and(|f| view.revoked.contains(&format!("fam:{f}"))))
    }

    fn sync_revocations(&self, now: i64) -> Result<(), AuthError> {
        let mut set = std::collections::HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .records
                .doc_list(NS_REVOKED, "", after.as_deref(), 1000)?;
            let done = page.len() < 1000;
            for doc in page {
                after = Some(doc.key.clone());
                set.insert(doc.key);
            }
            if done {
                break;
            }
        }
        let mut view = self
            .revocations
            .write()
            .map_err(|_| AuthError::Crypto("revocation lock poisoned"))?;
        view.revoked = set;
        view.synced_s = now;
        Ok(())
    }

    /// Records a revocation marker (`jti:…` or `fam:…`) that lives until `until_s`, and
    /// applies it in this process at once.
    pub(crate) fn revoke_marker(&self, marker: String, until_s: i64) -> Result<(), AuthError> {
        docs::put(
            &*self.records,
            NS_REVOKED,
            &marker,
            &serde_json::json!({}),
            Some(until_s),
            DocExpect::Any,
        )?;
        self.revocations
            .write()
            .map_err(|_| AuthError::Crypto("revocation lock poisoned"))?
            .revoked
            .insert(marker);
        Ok(())
    }

    pub(crate) fn unrevoke_marker(&self, marker: &str) -> Result<(), AuthError> {
        self.records
            .doc_delete(NS_REVOKED, marker, DocExpect::Any)?;
        self.revocations
            .write()
            .map_err(|_| AuthError::Crypto("revocation lock poisoned"))?
            .revoked
            .remove(marker);
        Ok(())
    }

    /// Revokes one access token by its `jti` until it would have expired anyway.
    pub fn revoke_jti(&self, jti: &str, exp_s: i64) -> Result<(), AuthError> {
        self.revoke_marker(format!("jti:{jti}"), exp_s + self.config.leeway_s)
    }

    /// Revokes every access token of a grant family (refresh tokens are refused through the
    /// family record, see grants).
    pub(crate) fn revoke_family_tokens(&self, family: &str) -> Result<(), AuthError> {
        let until = self.now() + self.config.access_token_ttl_s + self.config.leeway_s;
        self.revoke_marker(format!("fam:{family}"), until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::b64url;
    use crate::jws::SigningKey;
    use crate::service::tests::auth;

    fn grant() -> TokenGrant {
        TokenGrant {
            subject: "u1".into(),
            tenant: "t1".into(),
            roles: vec![Role::Clinician],
            scopes: ScopeSet::parse("user/*.rs openid").unwrap(),
            patient: Some("p1".into()),
            fhir_user: Some("Practitioner/d1".into()),
            client_id: "app".into(),
            family: Some("f1".into()),
        }
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer_token("Bearer abc.def-_"), Some("abc.def-_"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer a b"), None);
    }

    #[test]
    fn issue_and_verify() {
        let (auth, _, _) = auth();
        let (token, claims) = auth.issue_access_token(&grant()).unwrap();
        assert_eq!(claims.exp - claims.iat, 300);
        assert_eq!(
            claims.aud,
            Audience::One("https://m.example/fhir/t1".into())
        );
        let p = auth.verify_access_token(&token).unwrap();
        assert_eq!(p.tenant, "t1");
        assert_eq!(p.patient.as_deref(), Some("p1"));
        assert_eq!(p.scopes.to_string(), "user/*.rs openid");
        // Cached path gives the same.
        assert_eq!(*auth.verify_access_token(&token).unwrap(), *p);
    }

    /// Re-signs `claims` with a header of our choosing and `key`.
    fn forge(key: &SigningKey, header: serde_json::Value, claims: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = key.sign_bytes(input.as_bytes()).unwrap();
        format!("{input}.{}", b64url(&sig))
    }

    #[test]
    fn token_attacks_are_rejected() {
        let (auth, clock, _) = auth();
        let (token, claims) = auth.issue_access_token(&grant()).unwrap();
        let claims = serde_json::to_value(&claims).unwrap();
        let kid = auth.signing_key().unwrap().kid.clone();
        let key = auth.signing_key().unwrap();
        let header = serde_json::json!({"alg": "RS256", "kid": kid, "typ": "at+jwt"});
        // Control: our forge helper produces valid tokens.
        assert!(
            auth.verify_access_token(&forge(&key, header.clone(), &claims))
                .is_ok()
        );

        // alg=none with the real claims.
        let none = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none","typ":"at+jwt"}"#),
            token.split('.').nth(1).unwrap()
        );
        assert!(auth.verify_access_token(&none).is_err());
        // A wrong key with our kid.
        let other = crate::jws::SigningKey::generate_ec("x", Alg::ES256)
            .unwrap()
            .0;
        let wrong = forge(
            &other,
            serde_json::json!({"alg": "ES256", "kid": kid, "typ": "at+jwt"}),
            &claims,
        );
        assert!(auth.verify_access_token(&wrong).is_err());
        // Unknown kid.
        let unknown = forge(
            &key,
            serde_json::json!({"alg": "RS256", "kid": "nope", "typ": "at+jwt"}),
            &claims,
        );
        assert!(matches!(
            auth.verify_access_token(&unknown),
            Err(AuthError::InvalidToken("unknown key"))
        ));
        // Wrong typ (an id_token presented as access token).
        let jwt = forge(
            &key,
            serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT"}),
            &claims,
        );
        assert!(auth.verify_access_token(&jwt).is_err());
        // Wrong issuer, wrong audience, other tenant's audience.
        for (field, value) in [
            ("iss", serde_json::json!("https://evil.example/auth")),
            ("aud", serde_json::json!("https://m.example/fhir/t2")),
            ("aud", serde_json::json!("https://evil.example/fhir/t1")),
            ("tenant", serde_json::json!("t2")),
            (
                "exp",
                serde_json::json!(super::super::service::tests::T0 - 31),
            ),
            (
                "iat",
                serde_json::json!(super::super::service::tests::T0 + 120),
            ),
            (
                "nbf",
                serde_json::json!(super::super::service::tests::T0 + 120),
            ),
            ("scope", serde_json::json!("user/*.everything")),
        ] {
            let mut c = claims.clone();
            c[field] = value;
            let t = forge(&key, header.clone(), &c);
            assert!(auth.verify_access_token(&t).is_err(), "{field} accepted");
        }
        // Tampered payload under a real signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut c = claims.clone();
        c["tenant"] = serde_json::json!("t2");
        let tampered_payload = b64url(c.to_string().as_bytes());
        parts[1] = &tampered_payload;
        assert!(auth.verify_access_token(&parts.join(".")).is_err());
        // Expired: the cached entry does not outlive the token.
        assert!(auth.verify_access_token(&token).is_ok());
        clock.advance(300 + 30);
        assert!(matches!(
            auth.verify_access_token(&token),
            Err(AuthError::InvalidToken("expired"))
        ));
    }

    #[test]
    fn in_memory_path_never_needs_the_store_when_fresh() {
        let (auth, clock, _) = auth();
        let (token, claims) = auth.issue_access_token(&grant()).unwrap();
        // Revocation view never synced: the store is needed.
        assert!(
            auth.verify_access_token_in_memory(&token)
                .unwrap()
                .is_none()
        );
        assert!(auth.verify_access_token(&token).is_ok());
        let p = auth.verify_access_token_in_memory(&token).unwrap().unwrap();
        assert_eq!(p.jti, claims.jti);
        // A cold token signed by a loaded key verifies in memory too.
        let (cold, _) = auth.issue_access_token(&grant()).unwrap();
        assert!(auth.verify_access_token_in_memory(&cold).unwrap().is_some());
        // Forged and revoked tokens are refused in memory.
        let mut forged = cold.clone();
        forged.pop();
        forged.push(if cold.ends_with('A') { 'B' } else { 'A' });
        assert!(auth.verify_access_token_in_memory(&forged).is_err());
        auth.revoke_jti(&claims.jti, claims.exp).unwrap();
        assert!(auth.verify_access_token_in_memory(&token).is_err());
        // Unknown kid: the store is needed (a key rotated elsewhere).
        let key = auth.signing_key().unwrap();
        let unknown = forge(
            &key,
            serde_json::json!({"alg": "RS256", "kid": "rotated-elsewhere", "typ": "at+jwt"}),
            &serde_json::to_value(&claims).unwrap(),
        );
        assert!(
            auth.verify_access_token_in_memory(&unknown)
                .unwrap()
                .is_none()
        );
        clock.advance(2);
        assert!(
            auth.verify_access_token_in_memory(&cold).unwrap().is_none(),
            "stale view"
        );
    }

    #[test]
    fn background_refresh_keeps_the_view_fresh() {
        let records = Arc::new(crate::testing::MemRecords::new(crate::clock::SystemClock));
        let mut config = crate::AuthConfig::new("https://m.example/auth", "https://m.example/fhir");
        config.password_cost = crate::password::PasswordCost::TEST;
        let auth = Arc::new(Auth::new(
            records,
            crate::ServerKey::generate().unwrap(),
            config,
            Arc::new(crate::clock::SystemClock),
        ));
        auth.install_test_key();
        let handle = Auth::start_background_refresh(&auth).unwrap();
        let (token, _) = auth.issue_access_token(&grant()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while auth
            .verify_access_token_in_memory(&token)
            .unwrap()
            .is_none()
        {
            assert!(std::time::Instant::now() < deadline, "view never refreshed");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // For three seconds every check stays in memory.
        for _ in 0..30 {
            assert!(
                auth.verify_access_token_in_memory(&token)
                    .unwrap()
                    .is_some()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        drop(auth);
        handle.join().unwrap();
    }

    #[test]
    fn revocation_applies_to_cached_tokens_and_other_processes() {
        let (auth, clock, records) = auth();
        let (token, claims) = auth.issue_access_token(&grant()).unwrap();
        assert!(auth.verify_access_token(&token).is_ok());
        // A second process on the same records, with the same server key, sees the revocation.
        let other = Auth::new(
            records.clone(),
            auth.server_key.clone(),
            auth.config.clone(),
            Arc::new(clock.clone()),
        );
        other.reload_keys().unwrap();
        assert!(other.verify_access_token(&token).is_ok());
        auth.revoke_jti(&claims.jti, claims.exp).unwrap();
        assert!(auth.verify_access_token(&token).is_err());
        clock.advance(1);
        assert!(other.verify_access_token(&token).is_err());
        // Family revocation.
        let (token2, _) = auth.issue_access_token(&grant()).unwrap();
        assert!(auth.verify_access_token(&token2).is_ok());
        auth.revoke_family_tokens("f1").unwrap();
        assert!(auth.verify_access_token(&token2).is_err());
    }
}
