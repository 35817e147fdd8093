//! [`Auth`]: the entry point the HTTP layer holds (one per process, shared by `Arc`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use medicus_store::platform::PlatformRecords;

use crate::clock::Clock;
use crate::crypto::ServerKey;
use crate::jws::Jwks;
use crate::keys::KeyState;
use crate::password::PasswordCost;
use crate::policy::Principal;

pub type Records = Arc<dyn PlatformRecords + Send + Sync>;

/// Fetches a client's `jwks_uri` (the HTTP layer's job: timeouts, caching, size limits).
pub type JwksFetcher = Arc<dyn Fn(&str) -> Result<Jwks, String> + Send + Sync>;

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The authorisation server's issuer, e.g. `https://medicus.example/auth`.
    pub issuer: String,
    /// The FHIR base without tenant, e.g. `https://medicus.example/fhir`; a token's `aud` is
    /// `{fhir_base}/{tenant}`.
    pub fhir_base: String,
    pub access_token_ttl_s: i64,
    pub id_token_ttl_s: i64,
    /// Refresh tokens of `offline_access`.
    pub refresh_token_ttl_s: i64,
    /// Refresh tokens of `online_access` (a working day).
    pub online_refresh_token_ttl_s: i64,
    pub code_ttl_s: i64,
    pub launch_ttl_s: i64,
    /// Clock skew tolerated on `exp`, `iat`, `nbf`.
    pub leeway_s: i64,
    pub max_failed_logins: u32,
    pub lockout_base_s: i64,
    pub lockout_max_s: i64,
    pub password_cost: PasswordCost,
    /// How often revocations made by other processes are picked up.
    pub revocation_sync_s: i64,
    /// How often keys rotated by other processes are picked up.
    pub key_reload_s: i64,
    pub token_cache_capacity: usize,
}

impl AuthConfig {
    pub fn new(issuer: impl Into<String>, fhir_base: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            fhir_base: fhir_base.into().trim_end_matches('/').to_owned(),
            access_token_ttl_s: 300,
            id_token_ttl_s: 300,
            refresh_token_ttl_s: 30 * 24 * 3600,
            online_refresh_token_ttl_s: 12 * 3600,
            code_ttl_s: 60,
            launch_ttl_s: 300,
            leeway_s: 30,
            max_failed_logins: 5,
            lockout_base_s: 30,
            lockout_max_s: 3600,
            password_cost: PasswordCost::default(),
            revocation_sync_s: 1,
            key_reload_s: 60,
            token_cache_capacity: 100_000,
        }
    }

    /// The `aud` of tokens for a tenant: its FHIR base.
    pub fn audience(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.fhir_base)
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// How long a retired signing key stays published: the longest-lived token it signed.
    pub fn key_grace_s(&self) -> i64 {
        self.access_token_ttl_s.max(self.id_token_ttl_s) + self.leeway_s
    }
}

pub(crate) struct RevocationView {
    pub(crate) revoked: HashSet<String>,
    pub(crate) synced_s: i64,
}

pub struct Auth {
    pub(crate) records: Records,
    pub(crate) config: AuthConfig,
    pub(crate) server_key: ServerKey,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) keys: RwLock<KeyState>,
    pub(crate) cache: RwLock<HashMap<[u8; 32], Arc<Principal>>>,
    pub(crate) revocations: RwLock<RevocationView>,
    pub(crate) jwks_fetcher: Option<JwksFetcher>,
    /// Serialises key loading so concurrent misses do one reload.
    pub(crate) key_load: Mutex<()>,
}

impl Auth {
    pub fn new(
        records: Records,
        server_key: ServerKey,
        config: AuthConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            records,
            config,
            server_key,
            clock,
            keys: RwLock::new(KeyState::default()),
            cache: RwLock::new(HashMap::new()),
            revocations: RwLock::new(RevocationView {
                revoked: HashSet::new(),
                synced_s: i64::MIN,
            }),
            jwks_fetcher: None,
            key_load: Mutex::new(()),
        }
    }

    pub fn with_jwks_fetcher(mut self, fetcher: JwksFetcher) -> Self {
        self.jwks_fetcher = Some(fetcher);
        self
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    pub fn records(&self) -> &dyn PlatformRecords {
        &*self.records
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_s()
    }

    /// Removes expired grants, codes and revocation markers (call periodically).
    pub fn purge_expired(&self) -> Result<u64, crate::AuthError> {
        Ok(self
            .records
            .doc_purge_expired(self.now().saturating_mul(1_000_000))?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::testing::MemRecords;

    pub(crate) const T0: i64 = 1_800_000_000;

    pub(crate) fn auth() -> (Auth, ManualClock, Arc<MemRecords>) {
        let clock = ManualClock::new(T0);
        let records = Arc::new(MemRecords::new(clock.clone()));
        let mut config = AuthConfig::new("https://m.example/auth", "https://m.example/fhir");
        config.password_cost = PasswordCost::TEST;
        let auth = Auth::new(
            records.clone(),
            ServerKey::generate().unwrap(),
            config,
            Arc::new(clock.clone()),
        );
        auth.install_test_key();
        (auth, clock, records)
    }
}
