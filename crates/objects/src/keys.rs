//! The key hierarchy: a master key (from a file, the environment, or a KMS behind
//! [`KeyProvider`]) wraps one key per tenant; a tenant key wraps the data key of each data
//! file. Rotating the master key re-wraps the tenant keys; rotating a tenant key adds a new
//! version for new data and re-wraps nothing else: old data keys name the version that wraps
//! them. No data file is ever rewritten for a rotation.
//!
//! Tenant keys live in the store's platform documents (namespace `objects.tenant-key`), wrapped
//! by the master key; the store never holds a usable key.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use medicus_store::StoreError;
use medicus_store::platform::{DocExpect, PlatformRecords};
use serde::{Deserialize, Serialize};

use crate::crypto::{self, SecretKey};
use crate::error::ObjectError;

/// Wraps and unwraps keys under a key the provider holds (the master key). Implementations for
/// Vault/OpenBao transit or a cloud KMS slot in here: they send the small key, never data.
pub trait KeyProvider: Send + Sync {
    /// Names the key that wraps now (recorded with every wrapped key, so a rotation knows what
    /// to re-wrap).
    fn key_id(&self) -> String;
    fn wrap(&self, context: &[u8], secret: &[u8]) -> Result<Vec<u8>, ObjectError>;
    fn unwrap(&self, context: &[u8], wrapped: &[u8]) -> Result<Vec<u8>, ObjectError>;
}

/// The variable holding the master key itself (base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "MEDICUS_MASTER_KEY";
/// The variable naming the master key file.
pub const MASTER_KEY_FILE_ENV: &str = "MEDICUS_MASTER_KEY_FILE";

/// A master key held locally (file or environment).
pub struct LocalMasterKey {
    key: SecretKey,
    id: String,
}

impl LocalMasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<LocalMasterKey, ObjectError> {
        let key = SecretKey::from_bytes(bytes)?;
        // The id is a fingerprint, not the key: the first bytes of SHA-256 over a label and it.
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &[b"medicus master key id\0".as_slice(), key.bytes()].concat(),
        );
        let id = format!("local:{}", crypto::hex(&digest.as_ref()[..8]));
        Ok(LocalMasterKey { key, id })
    }

    /// Parses the text of a key file or variable: base64 of 32 bytes (whitespace ignored).
    pub fn from_text(text: &str) -> Result<LocalMasterKey, ObjectError> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|_| ObjectError::Crypto("the master key is not base64".into()))?;
        LocalMasterKey::from_bytes(&bytes)
    }

    /// Reads the key file, creating it (mode 0600, a new random key) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<LocalMasterKey, ObjectError> {
        match std::fs::read_to_string(path) {
            Ok(text) => LocalMasterKey::from_text(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SecretKey::random()?;
                let text = format!("{}\n", B64.encode(key.bytes()));
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                match opts.open(path) {
                    Ok(mut f) => {
                        f.write_all(text.as_bytes())?;
                        f.sync_all()?;
                        crate::blob::sync_dir(path.parent().unwrap_or(Path::new(".")))?;
                        LocalMasterKey::from_bytes(key.bytes())
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        LocalMasterKey::from_text(&std::fs::read_to_string(path)?)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The master key as configured: `MEDICUS_MASTER_KEY`, else the file `file` (from a flag)
    /// or `MEDICUS_MASTER_KEY_FILE`, else `DATA/master.key` (created on first start).
    pub fn from_env_or_file(
        file: Option<&Path>,
        data_dir: &Path,
    ) -> Result<LocalMasterKey, ObjectError> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            return LocalMasterKey::from_text(&text);
        }
        let path: PathBuf = match (file, std::env::var_os(MASTER_KEY_FILE_ENV)) {
            (Some(f), _) => f.to_path_buf(),
            (None, Some(f)) => PathBuf::from(f),
            (None, None) => data_dir.join("master.key"),
        };
        LocalMasterKey::load_or_create(&path)
    }
}

impl KeyProvider for LocalMasterKey {
    fn key_id(&self) -> String {
        self.id.clone()
    }
    fn wrap(&self, context: &[u8], secret: &[u8]) -> Result<Vec<u8>, ObjectError> {
        crypto::wrap(&self.key, context, secret)
    }
    fn unwrap(&self, context: &[u8], wrapped: &[u8]) -> Result<Vec<u8>, ObjectError> {
        crypto::unwrap(&self.key, context, wrapped)
    }
}

const TENANT_KEY_NS: &str = "objects.tenant-key";
const SSE_C_CONTEXT: &[u8] = b"medicus sse-c data key";

/// The stored tenant key document: every version, wrapped by the master key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TenantKeyDoc {
    versions: Vec<TenantKeyVersion>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TenantKeyVersion {
    version: u32,
    /// Which master key wrapped it.
    master: String,
    /// base64 of the wrapped key.
    wrapped: String,
}

/// A data key as recorded with an object: which tenant key version wraps it, and the wrapped
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedDataKey {
    pub kv: u32,
    /// base64
    pub key: String,
}

type TenantKeys = HashMap<String, (u32, HashMap<u32, Arc<SecretKey>>)>;

/// Tenant keys, loaded from the store on first use and cached.
pub struct Keyring {
    master: Arc<dyn KeyProvider>,
    records: Arc<dyn PlatformRecords + Send + Sync>,
    cache: RwLock<TenantKeys>,
}

fn tenant_context(tenant: &str, version: u32) -> Vec<u8> {
    format!("medicus tenant key\0{tenant}\0{version}").into_bytes()
}

fn data_context(tenant: &str) -> Vec<u8> {
    format!("medicus data key\0{tenant}").into_bytes()
}

impl Keyring {
    pub fn new(
        master: Arc<dyn KeyProvider>,
        records: Arc<dyn PlatformRecords + Send + Sync>,
    ) -> Keyring {
        Keyring {
            master,
            records,
            cache: RwLock::new(HashMap::new()),
        }
    }

    pub fn master(&self) -> &dyn KeyProvider {
        self.master.as_ref()
    }

    fn load(&self, tenant: &str) -> Result<Option<(TenantKeyDoc, i64)>, ObjectError> {
        let Some(doc) = self.records.doc_get(TENANT_KEY_NS, tenant)? else {
            return Ok(None);
        };
        let parsed = serde_json::from_slice(&doc.value)
            .map_err(|e| ObjectError::Corrupt(format!("tenant key document: {e}")))?;
        Ok(Some((parsed, doc.version)))
    }

    fn unwrap_version(&self, tenant: &str, v: &TenantKeyVersion) -> Result<SecretKey, ObjectError> {
        let wrapped = B64
            .decode(&v.wrapped)
            .map_err(|_| ObjectError::Corrupt("tenant key is not base64".into()))?;
        let key = self
            .master
            .unwrap(&tenant_context(tenant, v.version), &wrapped)
            .map_err(|_| {
                ObjectError::Crypto(format!(
                    "the tenant key of {tenant} does not open under the master key {} (it was wrapped by {})",
                    self.master.key_id(),
                    v.master
                ))
            })?;
        SecretKey::from_bytes(&key)
    }

    /// Loads the tenant's keys into the cache, creating the first one if it has none.
    fn ensure(&self, tenant: &str) -> Result<(), ObjectError> {
        if self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(tenant)
        {
            return Ok(());
        }
        let doc = match self.load(tenant)? {
            Some((doc, _)) => doc,
            None => {
                let key = SecretKey::random()?;
                let doc = TenantKeyDoc {
                    versions: vec![TenantKeyVersion {
                        version: 1,
                        master: self.master.key_id(),
                        wrapped: B64
                            .encode(self.master.wrap(&tenant_context(tenant, 1), key.bytes())?),
                    }],
                };
                let bytes =
                    serde_json::to_vec(&doc).map_err(|e| ObjectError::Corrupt(e.to_string()))?;
                match self
                    .records
                    .doc_put(TENANT_KEY_NS, tenant, &bytes, None, DocExpect::Absent)
                {
                    Ok(_) => doc,
                    // Another process created it first: use theirs.
                    Err(StoreError::DocConflict { .. }) => {
                        self.load(tenant)?
                            .ok_or_else(|| ObjectError::Corrupt("tenant key vanished".into()))?
                            .0
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let mut keys = HashMap::new();
        let mut current = 0;
        for v in &doc.versions {
            keys.insert(v.version, Arc::new(self.unwrap_version(tenant, v)?));
            current = current.max(v.version);
        }
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_owned(), (current, keys));
        Ok(())
    }

    fn tenant_key(
        &self,
        tenant: &str,
        version: Option<u32>,
    ) -> Result<(u32, Arc<SecretKey>), ObjectError> {
        self.ensure(tenant)?;
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let (current, keys) = cache
            .get(tenant)
            .ok_or_else(|| ObjectError::Crypto("tenant key missing".into()))?;
        let v = version.unwrap_or(*current);
        let key = keys
            .get(&v)
            .ok_or_else(|| ObjectError::Crypto(format!("tenant key version {v} is unknown")))?;
        Ok((v, key.clone()))
    }

    /// Wraps a new data key under the tenant's current key; with a customer key (SSE-C) the
    /// data key is first sealed under it, so neither key alone opens the data.
    pub fn wrap_data_key(
        &self,
        tenant: &str,
        key: &SecretKey,
        customer: Option<&SecretKey>,
    ) -> Result<WrappedDataKey, ObjectError> {
        let inner = match customer {
            Some(c) => crypto::wrap(c, SSE_C_CONTEXT, key.bytes())?,
            None => key.bytes().to_vec(),
        };
        let (kv, tk) = self.tenant_key(tenant, None)?;
        let wrapped = crypto::wrap(&tk, &data_context(tenant), &inner)?;
        Ok(WrappedDataKey {
            kv,
            key: B64.encode(wrapped),
        })
    }

    pub fn unwrap_data_key(
        &self,
        tenant: &str,
        w: &WrappedDataKey,
        customer: Option<&SecretKey>,
    ) -> Result<SecretKey, ObjectError> {
        let (_, tk) = self.tenant_key(tenant, Some(w.kv))?;
        let wrapped = B64
            .decode(&w.key)
            .map_err(|_| ObjectError::Corrupt("data key is not base64".into()))?;
        let inner = crypto::unwrap(&tk, &data_context(tenant), &wrapped)?;
        match customer {
            Some(c) => SecretKey::from_bytes(&crypto::unwrap(c, SSE_C_CONTEXT, &inner)?),
            None => SecretKey::from_bytes(&inner),
        }
    }

    /// Adds a new tenant key version; new data is wrapped by it, old data keys keep theirs.
    pub fn rotate_tenant_key(&self, tenant: &str) -> Result<u32, ObjectError> {
        self.ensure(tenant)?;
        let (mut doc, version) = self
            .load(tenant)?
            .ok_or_else(|| ObjectError::Corrupt("tenant key vanished".into()))?;
        let next = doc.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        let key = SecretKey::random()?;
        doc.versions.push(TenantKeyVersion {
            version: next,
            master: self.master.key_id(),
            wrapped: B64.encode(
                self.master
                    .wrap(&tenant_context(tenant, next), key.bytes())?,
            ),
        });
        let bytes = serde_json::to_vec(&doc).map_err(|e| ObjectError::Corrupt(e.to_string()))?;
        match self.records.doc_put(
            TENANT_KEY_NS,
            tenant,
            &bytes,
            None,
            DocExpect::Version(version),
        ) {
            Ok(_) => {}
            Err(StoreError::DocConflict { .. }) => return Err(ObjectError::Conflict),
            Err(e) => return Err(e.into()),
        }
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
        Ok(next)
    }

    /// Re-wraps every tenant key under `new_master` (master key rotation). Returns how many
    /// tenants were re-wrapped. Data files and data keys stay as they are.
    pub fn rewrap_all(&self, new_master: &dyn KeyProvider) -> Result<usize, ObjectError> {
        let mut done = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .records
                .doc_list(TENANT_KEY_NS, "", after.as_deref(), 100)?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            for stored in &page {
                let tenant = &stored.key;
                let mut doc: TenantKeyDoc = serde_json::from_slice(&stored.value)
                    .map_err(|e| ObjectError::Corrupt(format!("tenant key document: {e}")))?;
                for v in &mut doc.versions {
                    let key = self.unwrap_version(tenant, v)?;
                    v.wrapped = B64
                        .encode(new_master.wrap(&tenant_context(tenant, v.version), key.bytes())?);
                    v.master = new_master.key_id();
                }
                let bytes =
                    serde_json::to_vec(&doc).map_err(|e| ObjectError::Corrupt(e.to_string()))?;
                self.records.doc_put(
                    TENANT_KEY_NS,
                    tenant,
                    &bytes,
                    None,
                    DocExpect::Version(stored.version),
                )?;
                done += 1;
            }
        }
        Ok(done)
    }
}
