//! JSON documents over `PlatformRecords`: typed get/put and compare-and-set updates.

use medicus_store::StoreError;
use medicus_store::platform::{DocExpect, PlatformRecords};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AuthError;

pub(crate) fn expires_us(expires_s: Option<i64>) -> Option<i64> {
    expires_s.map(|s| s.saturating_mul(1_000_000))
}

pub(crate) fn get<T: DeserializeOwned>(
    records: &dyn PlatformRecords,
    ns: &str,
    key: &str,
) -> Result<Option<(T, i64)>, AuthError> {
    let Some(doc) = records.doc_get(ns, key)? else {
        return Ok(None);
    };
    let value = serde_json::from_slice(&doc.value)
        .map_err(|e| AuthError::Corrupt(format!("{ns} record: {e}")))?;
    Ok(Some((value, doc.version)))
}

pub(crate) fn take<T: DeserializeOwned>(
    records: &dyn PlatformRecords,
    ns: &str,
    key: &str,
) -> Result<Option<T>, AuthError> {
    let Some(doc) = records.doc_take(ns, key)? else {
        return Ok(None);
    };
    serde_json::from_slice(&doc.value)
        .map(Some)
        .map_err(|e| AuthError::Corrupt(format!("{ns} record: {e}")))
}

/// Writes; `Ok(None)` when `expect` did not hold.
pub(crate) fn put<T: Serialize>(
    records: &dyn PlatformRecords,
    ns: &str,
    key: &str,
    value: &T,
    expires_s: Option<i64>,
    expect: DocExpect,
) -> Result<Option<i64>, AuthError> {
    let bytes = serde_json::to_vec(value).map_err(|e| AuthError::Invalid(e.to_string()))?;
    match records.doc_put(ns, key, &bytes, expires_us(expires_s), expect) {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::DocConflict { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn list<T: DeserializeOwned>(
    records: &dyn PlatformRecords,
    ns: &str,
    prefix: &str,
) -> Result<Vec<(String, T)>, AuthError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = records.doc_list(ns, prefix, after.as_deref(), 500)?;
        let done = page.len() < 500;
        for doc in page {
            let value = serde_json::from_slice(&doc.value)
                .map_err(|e| AuthError::Corrupt(format!("{ns} record: {e}")))?;
            after = Some(doc.key.clone());
            out.push((doc.key, value));
        }
        if done {
            return Ok(out);
        }
    }
}

/// Read-modify-write under compare-and-set, retried when another writer got in between.
/// `change` may refuse (its error is returned, nothing written).
pub(crate) fn update<T: Serialize + DeserializeOwned>(
    records: &dyn PlatformRecords,
    ns: &str,
    key: &str,
    expires_s: Option<i64>,
    mut change: impl FnMut(&mut T) -> Result<(), AuthError>,
) -> Result<T, AuthError> {
    for _ in 0..16 {
        let Some((mut value, version)) = get::<T>(records, ns, key)? else {
            return Err(AuthError::NotFound(format!("{ns} {key}")));
        };
        change(&mut value)?;
        if put(
            records,
            ns,
            key,
            &value,
            expires_s,
            DocExpect::Version(version),
        )?
        .is_some()
        {
            return Ok(value);
        }
    }
    Err(AuthError::Contention(format!("{ns} {key}")))
}
