//! Access keys for SigV4: `s3s` asks for the secret of an access key id to check a signature;
//! the operations then ask what that key may do. Keys are read from the store and opened under
//! the master key on a blocking thread, and kept for a short while so that a burst of requests
//! costs one lookup (a deleted key stops working within `TTL`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use medicus_objects::access::{self, AccessKey};
use medicus_objects::{KeyProvider, Objects};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

const TTL: Duration = Duration::from_secs(10);
/// Bounds the cache under a flood of made-up key ids (unknown ids are not cached).
const MAX_CACHED: usize = 10_000;

pub struct KeyCache {
    objects: Arc<Objects>,
    master: Arc<dyn KeyProvider>,
    cache: Mutex<HashMap<String, (Instant, Arc<AccessKey>)>>,
}

impl KeyCache {
    pub fn new(objects: Arc<Objects>, master: Arc<dyn KeyProvider>) -> KeyCache {
        KeyCache {
            objects,
            master,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The key `id`; `InvalidAccessKeyId` when there is none.
    pub async fn get(&self, id: &str) -> S3Result<Arc<AccessKey>> {
        if let Some((at, key)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(id)
            && at.elapsed() < TTL
        {
            return Ok(key.clone());
        }
        let (objects, master, owned) = (self.objects.clone(), self.master.clone(), id.to_owned());
        let found = tokio::task::spawn_blocking(move || {
            access::lookup(objects.store().as_ref(), master.as_ref(), &owned)
        })
        .await
        .map_err(|_| s3_error!(InternalError, "key lookup failed"))?
        .map_err(super::errors::to_s3)?;
        let key = Arc::new(found.ok_or_else(|| s3_error!(InvalidAccessKeyId))?);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (at, _)| at.elapsed() < TTL);
        }
        if cache.len() < MAX_CACHED {
            cache.insert(id.to_owned(), (Instant::now(), key.clone()));
        }
        Ok(key)
    }
}

pub struct KeyAuth(pub Arc<KeyCache>);

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let key = self.0.get(access_key).await?;
        Ok(SecretKey::from(key.secret.as_str()))
    }
}
