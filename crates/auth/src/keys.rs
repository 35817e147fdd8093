//! Token signing keys: stored as documents (private part sealed under the server key),
//! one current key, rotation that keeps retired keys in the JWKS until their tokens expire.

use std::collections::HashMap;
use std::sync::Arc;

use medicus_store::platform::DocExpect;
use serde::{Deserialize, Serialize};

use crate::crypto::{b64, b64_decode, b64url, b64url_decode, random_id};
use crate::docs;
use crate::error::AuthError;
use crate::jws::{Alg, Jwks, PublicKey, SigningKey};
use crate::service::Auth;

const NS_KEY: &str = "key";
const NS_KEYSET: &str = "keyset";
const CURRENT: &str = "current";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyDoc {
    kid: String,
    alg: String,
    n: String,
    e: String,
    /// PKCS#8 DER sealed with the server key, context `key:<kid>`.
    sealed: String,
    created_s: i64,
    #[serde(default)]
    retired_s: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CurrentDoc {
    kid: String,
}

#[derive(Default)]
pub(crate) struct KeyState {
    pub(crate) current: Option<Arc<SigningKey>>,
    pub(crate) public: HashMap<String, Arc<PublicKey>>,
    pub(crate) jwks: Jwks,
    pub(crate) loaded_s: Option<i64>,
}

impl Auth {
    fn store_key(&self, kid: &str, pkcs8: &[u8], n: &[u8], e: &[u8]) -> Result<(), AuthError> {
        let doc = KeyDoc {
            kid: kid.to_owned(),
            alg: Alg::RS256.as_str().into(),
            n: b64url(n),
            e: b64url(e),
            sealed: b64(&self.server_key.seal(&format!("key:{kid}"), pkcs8)?),
            created_s: self.now(),
            retired_s: None,
        };
        docs::put(&*self.records, NS_KEY, kid, &doc, None, DocExpect::Absent)?
            .ok_or_else(|| AuthError::Exists(format!("key {kid}")))?;
        Ok(())
    }

    /// Makes sure a current signing key exists (creates one on first start). Several
    /// processes starting together agree on one through compare-and-set.
    pub fn ensure_signing_key(&self) -> Result<(), AuthError> {
        if docs::get::<CurrentDoc>(&*self.records, NS_KEYSET, CURRENT)?.is_none() {
            let kid = random_id()?;
            let (_, pkcs8, n, e) = SigningKey::generate_rsa(&kid, Alg::RS256)?;
            self.store_key(&kid, &pkcs8, &n, &e)?;
            // Lost the race: another process's key is current, ours is never used.
            if docs::put(
                &*self.records,
                NS_KEYSET,
                CURRENT,
                &CurrentDoc { kid: kid.clone() },
                None,
                DocExpect::Absent,
            )?
            .is_none()
            {
                self.records.doc_delete(NS_KEY, &kid, DocExpect::Any)?;
            }
        }
        self.reload_keys()
    }

    /// A new current key; the previous one stays published for `key_grace_s`.
    pub fn rotate_signing_key(&self) -> Result<String, AuthError> {
        let kid = random_id()?;
        let (_, pkcs8, n, e) = SigningKey::generate_rsa(&kid, Alg::RS256)?;
        self.install_key(&kid, &pkcs8, &n, &e)?;
        Ok(kid)
    }

    /// Stores a key and makes it current, retiring the previous one.
    pub(crate) fn install_key(
        &self,
        kid: &str,
        pkcs8: &[u8],
        n: &[u8],
        e: &[u8],
    ) -> Result<(), AuthError> {
        self.store_key(kid, pkcs8, n, e)?;
        let now = self.now();
        let previous = docs::get::<CurrentDoc>(&*self.records, NS_KEYSET, CURRENT)?;
        let new = CurrentDoc {
            kid: kid.to_owned(),
        };
        let written = match &previous {
            Some((_, version)) => docs::put(
                &*self.records,
                NS_KEYSET,
                CURRENT,
                &new,
                None,
                DocExpect::Version(*version),
            )?,
            None => docs::put(
                &*self.records,
                NS_KEYSET,
                CURRENT,
                &new,
                None,
                DocExpect::Absent,
            )?,
        };
        if written.is_none() {
            self.records.doc_delete(NS_KEY, kid, DocExpect::Any)?;
            return Err(AuthError::Contention("signing key rotation".into()));
        }
        if let Some((old, _)) = previous {
            docs::update::<KeyDoc>(&*self.records, NS_KEY, &old.kid, None, |k| {
                k.retired_s.get_or_insert(now);
                Ok(())
            })?;
        }
        self.reload_keys()
    }

    /// Reads the keys from the store: the current one unsealed, the published ones parsed;
    /// keys retired longer than the grace period are deleted.
    pub fn reload_keys(&self) -> Result<(), AuthError> {
        let _guard = self
            .key_load
            .lock()
            .map_err(|_| AuthError::Crypto("key lock poisoned"))?;
        let now = self.now();
        let current =
            docs::get::<CurrentDoc>(&*self.records, NS_KEYSET, CURRENT)?.map(|(c, _)| c.kid);
        let mut state = KeyState {
            loaded_s: Some(now),
            ..KeyState::default()
        };
        for (kid, doc) in docs::list::<KeyDoc>(&*self.records, NS_KEY, "")? {
            if let Some(retired) = doc.retired_s
                && retired + self.config.key_grace_s() < now
                && current.as_deref() != Some(kid.as_str())
            {
                self.records.doc_delete(NS_KEY, &kid, DocExpect::Any)?;
                continue;
            }
            let n = b64url_decode(&doc.n).map_err(|_| AuthError::Corrupt("key n".into()))?;
            let e = b64url_decode(&doc.e).map_err(|_| AuthError::Corrupt("key e".into()))?;
            if current.as_deref() == Some(kid.as_str()) {
                let pkcs8 = self
                    .server_key
                    .open(&format!("key:{kid}"), &b64_decode(&doc.sealed)?)?;
                let key = SigningKey::rsa(&kid, Alg::RS256, &pkcs8, &n, &e)?;
                state.jwks.keys.push(key.public_jwk().clone());
                state.current = Some(Arc::new(key));
            } else {
                let key = SigningKey::rsa_public_jwk(&kid, Alg::RS256, &n, &e);
                state.jwks.keys.push(key);
            }
            state.public.insert(kid, Arc::new(PublicKey::Rsa { n, e }));
        }
        *self
            .keys
            .write()
            .map_err(|_| AuthError::Crypto("key lock poisoned"))? = state;
        Ok(())
    }

    pub(crate) fn signing_key(&self) -> Result<Arc<SigningKey>, AuthError> {
        let now = self.now();
        {
            let state = self
                .keys
                .read()
                .map_err(|_| AuthError::Crypto("key lock poisoned"))?;
            if let (Some(key), Some(loaded)) = (&state.current, state.loaded_s)
                && now - loaded < self.config.key_reload_s
            {
                return Ok(key.clone());
            }
        }
        self.reload_keys()?;
        let state = self
            .keys
            .read()
            .map_err(|_| AuthError::Crypto("key lock poisoned"))?;
        state
            .current
            .clone()
            .ok_or(AuthError::Crypto("no signing key: call ensure_signing_key"))
    }

    /// The verification key for `kid`; an unknown kid triggers at most one reload per second
    /// (a key rotated by another process), never more (a flood of random kids).
    pub(crate) fn verification_key(&self, kid: &str) -> Result<Option<Arc<PublicKey>>, AuthError> {
        let now = self.now();
        {
            let state = self
                .keys
                .read()
                .map_err(|_| AuthError::Crypto("key lock poisoned"))?;
            if let Some(key) = state.public.get(kid) {
                return Ok(Some(key.clone()));
            }
            if state.loaded_s.is_some_and(|l| now - l < 1) {
                return Ok(None);
            }
        }
        self.reload_keys()?;
        let state = self
            .keys
            .read()
            .map_err(|_| AuthError::Crypto("key lock poisoned"))?;
        Ok(state.public.get(kid).cloned())
    }

    /// The published keys (`/auth/jwks`).
    pub fn jwks(&self) -> Result<Jwks, AuthError> {
        let stale = {
            let state = self
                .keys
                .read()
                .map_err(|_| AuthError::Crypto("key lock poisoned"))?;
            state
                .loaded_s
                .is_none_or(|l| self.now() - l >= self.config.key_reload_s)
        };
        if stale {
            self.reload_keys()?;
        }
        let state = self
            .keys
            .read()
            .map_err(|_| AuthError::Crypto("key lock poisoned"))?;
        Ok(state.jwks.clone())
    }

    #[cfg(test)]
    pub(crate) fn install_test_key(&self) {
        let (pkcs8, n, e) = crate::jws::tests::rsa_pkcs8();
        self.install_key("test-key-1", pkcs8, n, e).unwrap();
    }
}

impl SigningKey {
    pub(crate) fn rsa_public_jwk(kid: &str, alg: Alg, n: &[u8], e: &[u8]) -> crate::jws::Jwk {
        crate::jws::Jwk {
            kty: "RSA".into(),
            kid: Some(kid.to_owned()),
            alg: Some(alg.as_str().into()),
            use_: Some("sig".into()),
            n: Some(b64url(n)),
            e: Some(b64url(e)),
            ..crate::jws::Jwk::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::service::tests::auth;

    #[test]
    fn keys_are_sealed_at_rest() {
        let (auth, _, records) = auth();
        let raw = records.raw("key");
        assert_eq!(raw.len(), 1);
        let text = String::from_utf8(raw[0].value.clone()).unwrap();
        let (der, _, _) = crate::jws::tests::rsa_pkcs8();
        let der_b64 = crate::crypto::b64(der);
        assert!(!text.contains(&der_b64[..40]), "private key in plain text");
        assert_eq!(auth.jwks().unwrap().keys.len(), 1);
    }

    #[test]
    fn rotation_keeps_old_key_until_grace_ends() {
        let (auth, clock, _) = auth();
        let old = auth.signing_key().unwrap().kid.clone();
        let new = auth.rotate_signing_key().unwrap();
        assert_eq!(auth.signing_key().unwrap().kid, new);
        let kids: Vec<_> = auth
            .jwks()
            .unwrap()
            .keys
            .into_iter()
            .filter_map(|k| k.kid)
            .collect();
        assert!(kids.contains(&old) && kids.contains(&new));
        assert!(auth.verification_key(&old).unwrap().is_some());
        clock.advance(auth.config.key_grace_s() + 1);
        auth.reload_keys().unwrap();
        let kids: Vec<_> = auth
            .jwks()
            .unwrap()
            .keys
            .into_iter()
            .filter_map(|k| k.kid)
            .collect();
        assert_eq!(kids, vec![new]);
        assert!(auth.verification_key(&old).unwrap().is_none());
    }
}
