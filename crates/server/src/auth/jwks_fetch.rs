//! Fetching the `jwks_uri` of `private_key_jwt` clients for the core (`Auth::with_jwks_fetcher`).
//! The core calls the fetcher while authenticating a client, on the token endpoint's blocking
//! thread, so a blocking HTTP client is right here. Bounded in time and size, no redirects
//! (a JWKS URL that bounces elsewhere is refused), and cached briefly: a client rotating its
//! key publishes the new one before signing with it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use medicus_auth::JwksFetcher;
use medicus_auth::jws::Jwks;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksFetchConfig {
    /// Connect and total time of one fetch.
    pub timeout: Duration,
    /// Largest accepted document.
    pub max_bytes: usize,
    /// How long a fetched key set is used before fetching again.
    pub cache_ttl: Duration,
}

impl Default for JwksFetchConfig {
    fn default() -> Self {
        JwksFetchConfig {
            timeout: Duration::from_secs(5),
            max_bytes: 64 * 1024,
            cache_ttl: Duration::from_secs(60),
        }
    }
}

/// Key sets remembered at most (a client has one `jwks_uri`).
const MAX_CACHED: usize = 1024;

struct Fetcher {
    config: JwksFetchConfig,
    /// Built on first use, on the blocking thread that needs it.
    client: OnceLock<Result<reqwest::blocking::Client, String>>,
    cache: Mutex<HashMap<String, (Instant, Jwks)>>,
}

/// A [`JwksFetcher`] over HTTP(S) with `config`'s limits.
pub fn http_jwks_fetcher(config: JwksFetchConfig) -> JwksFetcher {
    let fetcher = Arc::new(Fetcher {
        config,
        client: OnceLock::new(),
        cache: Mutex::new(HashMap::new()),
    });
    Arc::new(move |uri: &str| fetcher.fetch(uri))
}

impl Fetcher {
    fn fetch(&self, uri: &str) -> Result<Jwks, String> {
        if !(uri.starts_with("https://") || uri.starts_with("http://")) {
            return Err("jwks_uri must be http(s)".into());
        }
        if let Some((at, jwks)) = self.lock_cache().get(uri)
            && at.elapsed() < self.config.cache_ttl
        {
            return Ok(jwks.clone());
        }
        let jwks = self.download(uri)?;
        let mut cache = self.lock_cache();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(uri.to_owned(), (Instant::now(), jwks.clone()));
        Ok(jwks)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Jwks)>> {
        // The cache holds no invariant a panic could break.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn download(&self, uri: &str) -> Result<Jwks, String> {
        let client = self
            .client
            .get_or_init(|| {
                reqwest::blocking::Client::builder()
                    .timeout(self.config.timeout)
                    .connect_timeout(self.config.timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("HTTP client: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)?;
        let response = client
            .get(uri)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .map_err(|e| format!("fetching the JWKS: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("JWKS answered {}", response.status()));
        }
        let max = self.config.max_bytes;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err("JWKS too large".into());
        }
        let mut body = Vec::new();
        response
            .take(max as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("reading the JWKS: {e}"))?;
        if body.len() > max {
            return Err("JWKS too large".into());
        }
        let text = std::str::from_utf8(&body).map_err(|_| "JWKS is not UTF-8".to_string())?;
        Jwks::from_json(text).map_err(|e| format!("JWKS: {e}"))
    }
}
