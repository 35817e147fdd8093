//! Typed JSON documents over the store's platform records, with compare-and-set.

use medicus_store::StoreError;
use medicus_store::platform::{DocExpect, PlatformRecords};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ResearchError, Result};

pub(crate) fn get<T: DeserializeOwned>(
    records: &dyn PlatformRecords,
    ns: &str,
    key: &str,
) -> Result<Option<(T, i64)>> {
    let Some(doc) = records.doc_get(ns, key)? else {
        return Ok(None);
    };
    let value = serde_json::from_slice(&doc.value)
        .map_err(|e| ResearchError::Corrupt(format!("{ns} record: {e}")))?;
    Ok(Some((value, doc.version)))
}

/// Writes if `expect` holds; `ResearchError::Conflict` otherwise.
pub(crate) fn put<T: Serialize>(
    records: &dyn PlatformRecords,
    ns: &str,
    key: &str,
    value: &T,
    expect: DocExpect,
) -> Result<i64> {
    let bytes = serde_json::to_vec(value).map_err(|e| ResearchError::Invalid(e.to_string()))?;
    match records.doc_put(ns, key, &bytes, None, expect) {
        Ok(v) => Ok(v),
        Err(StoreError::DocConflict { .. }) => Err(ResearchError::Conflict(format!(
            "{ns} record changed concurrently"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Read-modify-write under compare-and-set, retried when another writer got in between;
/// `change` may refuse (its error is returned, nothing written). Returns the written value.
pub(crate) fn update<T, R>(
    records: &dyn PlatformRecords,
    ns: &str,
    key: &str,
    mut change: impl FnMut(&mut T) -> Result<R>,
) -> Result<(T, R)>
where
    T: Serialize + DeserializeOwned,
{
    for _ in 0..16 {
        let Some((mut value, version)) = get::<T>(records, ns, key)? else {
            return Err(ResearchError::NotFound(format!("{ns} record")));
        };
        let out = change(&mut value)?;
        match put(records, ns, key, &value, DocExpect::Version(version)) {
            Ok(_) => return Ok((value, out)),
            Err(ResearchError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ResearchError::Conflict(format!(
        "{ns} record: too many concurrent changes"
    )))
}

pub(crate) fn list<T: DeserializeOwned>(
    records: &dyn PlatformRecords,
    ns: &str,
    prefix: &str,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = records.doc_list(ns, prefix, after.as_deref(), 500)?;
        let done = page.len() < 500;
        for doc in page {
            out.push(
                serde_json::from_slice(&doc.value)
                    .map_err(|e| ResearchError::Corrupt(format!("{ns} record: {e}")))?,
            );
            after = Some(doc.key);
        }
        if done {
            return Ok(out);
        }
    }
}
