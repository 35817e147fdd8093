//! S3 access keys: each belongs to a tenant and grants read, write or admin per bucket (or on
//! every bucket of the tenant with `*`). SigV4 needs the plain secret to check a signature, so
//! the secret is stored sealed under the master key (never in plain text) in the platform
//! documents (namespace `s3.access-key`).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use medicus_store::platform::{DocExpect, PlatformRecords};
use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::error::ObjectError;
use crate::keys::KeyProvider;

const NS: &str = "s3.access-key";

/// What a key may do on a bucket; each level includes the ones below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// List and read objects.
    Read,
    /// Also put, copy, delete objects, multipart.
    Write,
    /// Also create and delete the bucket and change its configuration (versioning, tagging).
    Admin,
}

impl Permission {
    pub fn parse(s: &str) -> Result<Permission, ObjectError> {
        match s {
            "r" | "read" | "ro" => Ok(Permission::Read),
            "rw" | "w" | "write" => Ok(Permission::Write),
            "admin" | "a" => Ok(Permission::Admin),
            _ => Err(ObjectError::InvalidArgument(format!(
                "unknown permission {s:?}: use read, rw or admin"
            ))),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Permission::Read => "read",
            Permission::Write => "rw",
            Permission::Admin => "admin",
        })
    }
}

/// Parses `BUCKET:PERM` (`*` for every bucket of the tenant).
pub fn parse_grant(s: &str) -> Result<(String, Permission), ObjectError> {
    let (bucket, perm) = s.rsplit_once(':').ok_or_else(|| {
        ObjectError::InvalidArgument(format!("grant {s:?}: use BUCKET:read|rw|admin"))
    })?;
    if bucket != "*" {
        crate::names::validate_bucket_name(bucket)?;
    }
    Ok((bucket.to_owned(), Permission::parse(perm)?))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    tenant: String,
    /// base64 of the secret sealed under the master key.
    secret: String,
    master: String,
    grants: BTreeMap<String, Permission>,
    created_us: i64,
}

/// A key as the listener uses it.
#[derive(Clone)]
pub struct AccessKey {
    pub id: String,
    pub tenant: String,
    pub secret: String,
    pub grants: BTreeMap<String, Permission>,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

impl AccessKey {
    /// The permission on `bucket`: its own grant or the `*` grant, whichever is higher.
    pub fn permission(&self, bucket: &str) -> Option<Permission> {
        let own = self.grants.get(bucket).copied();
        let all = self.grants.get("*").copied();
        own.max(all)
    }

    pub fn allows(&self, bucket: &str, needed: Permission) -> bool {
        self.permission(bucket).is_some_and(|p| p >= needed)
    }
}

fn context(id: &str, tenant: &str) -> Vec<u8> {
    format!("medicus s3 secret\0{id}\0{tenant}").into_bytes()
}

fn random_text(len: usize, alphabet: &[u8]) -> Result<String, ObjectError> {
    let mut bytes = vec![0u8; len];
    crypto::random_bytes(&mut bytes)?;
    // 256 is a multiple of neither alphabet's size; the slight bias is irrelevant at this length
    // of randomness (40 × ~5.9 bits).
    Ok(bytes
        .iter()
        .map(|b| alphabet[usize::from(*b) % alphabet.len()] as char)
        .collect())
}

/// Creates a key for `tenant` with `grants`; returns `(key id, secret)`. The secret is shown
/// to the caller once and stored sealed.
pub fn create_key(
    records: &dyn PlatformRecords,
    master: &dyn KeyProvider,
    tenant: &str,
    grants: BTreeMap<String, Permission>,
    now_us: i64,
) -> Result<(String, String), ObjectError> {
    let id = format!(
        "MK{}",
        random_text(18, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")?
    );
    let secret = random_text(
        40,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    )?;
    let sealed = master.wrap(&context(&id, tenant), secret.as_bytes())?;
    let stored = StoredKey {
        tenant: tenant.to_owned(),
        secret: B64.encode(sealed),
        master: master.key_id(),
        grants,
        created_us: now_us,
    };
    let bytes = serde_json::to_vec(&stored).map_err(|e| ObjectError::Corrupt(e.to_string()))?;
    records.doc_put(NS, &id, &bytes, None, DocExpect::Absent)?;
    Ok((id, secret))
}

/// The key `id`, with its secret opened; `None` for an unknown id.
pub fn lookup(
    records: &dyn PlatformRecords,
    master: &dyn KeyProvider,
    id: &str,
) -> Result<Option<AccessKey>, ObjectError> {
    let Some(doc) = records.doc_get(NS, id)? else {
        return Ok(None);
    };
    let stored: StoredKey = serde_json::from_slice(&doc.value)
        .map_err(|e| ObjectError::Corrupt(format!("access key document: {e}")))?;
    let sealed = B64
        .decode(&stored.secret)
        .map_err(|_| ObjectError::Corrupt("access key secret is not base64".into()))?;
    let secret = master.unwrap(&context(id, &stored.tenant), &sealed)?;
    let secret = String::from_utf8(secret)
        .map_err(|_| ObjectError::Corrupt("access key secret is not text".into()))?;
    Ok(Some(AccessKey {
        id: id.to_owned(),
        tenant: stored.tenant,
        secret,
        grants: stored.grants,
    }))
}

/// Deletes a key; `false` if there was none.
pub fn delete_key(records: &dyn PlatformRecords, id: &str) -> Result<bool, ObjectError> {
    Ok(records.doc_delete(NS, id, DocExpect::Any)?)
}

/// Re-seals every key's secret under `new_master` (master key rotation).
pub fn rewrap_all(
    records: &dyn PlatformRecords,
    old: &dyn KeyProvider,
    new_master: &dyn KeyProvider,
) -> Result<usize, ObjectError> {
    let mut done = 0;
    let mut after: Option<String> = None;
    loop {
        let page = records.doc_list(NS, "", after.as_deref(), 100)?;
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for doc in &page {
            let mut stored: StoredKey = serde_json::from_slice(&doc.value)
                .map_err(|e| ObjectError::Corrupt(format!("access key document: {e}")))?;
            let sealed = B64
                .decode(&stored.secret)
                .map_err(|_| ObjectError::Corrupt("access key secret is not base64".into()))?;
            let secret = old.unwrap(&context(&doc.key, &stored.tenant), &sealed)?;
            stored.secret =
                B64.encode(new_master.wrap(&context(&doc.key, &stored.tenant), &secret)?);
            stored.master = new_master.key_id();
            let bytes =
                serde_json::to_vec(&stored).map_err(|e| ObjectError::Corrupt(e.to_string()))?;
            records.doc_put(NS, &doc.key, &bytes, None, DocExpect::Version(doc.version))?;
            done += 1;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_and_combine() {
        assert_eq!(
            parse_grant("photos:rw").unwrap(),
            ("photos".into(), Permission::Write)
        );
        assert_eq!(
            parse_grant("*:read").unwrap(),
            ("*".into(), Permission::Read)
        );
        assert!(parse_grant("photos").is_err());
        assert!(parse_grant("Bad_Name:rw").is_err());
        assert!(parse_grant("photos:root").is_err());
        let key = AccessKey {
            id: "x".into(),
            tenant: "t".into(),
            secret: "s".into(),
            grants: [
                ("a".to_owned(), Permission::Admin),
                ("*".to_owned(), Permission::Read),
            ]
            .into_iter()
            .collect(),
        };
        assert!(key.allows("a", Permission::Admin));
        assert!(key.allows("b", Permission::Read));
        assert!(!key.allows("b", Permission::Write));
        assert!(!format!("{key:?}").contains("secret: "));
    }
}
