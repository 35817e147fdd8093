//! An in-memory [`PlatformRecords`] for unit tests here and in the HTTP layer: same
//! compare-and-set, single-use take and expiry semantics as the store backends.

use std::collections::BTreeMap;
use std::sync::Mutex;

use medicus_store::StoreError;
use medicus_store::platform::{
    AuditBuilder, AuditEntry, AuditLink, AuditQuery, Doc, DocExpect, PlatformRecords,
};

use crate::clock::Clock;

type Docs = BTreeMap<(String, String), Doc>;

/// Documents in a map; expiry is judged against the given clock (seconds, as the auth crate
/// writes `expires_us` from it).
pub struct MemRecords {
    docs: Mutex<Docs>,
    clock: Box<dyn Clock>,
}

impl MemRecords {
    pub fn new(clock: impl Clock + 'static) -> Self {
        Self {
            docs: Mutex::new(BTreeMap::new()),
            clock: Box::new(clock),
        }
    }

    fn now_us(&self) -> i64 {
        self.clock.now_s().saturating_mul(1_000_000)
    }

    fn live(&self, doc: &Doc) -> bool {
        doc.expires_us.is_none_or(|e| e > self.now_us())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Docs>, StoreError> {
        self.docs
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))
    }

    /// Every stored document of `ns` (expired ones too), for tests that look at what is at rest.
    pub fn raw(&self, ns: &str) -> Vec<Doc> {
        self.lock()
            .map(|docs| {
                docs.iter()
                    .filter(|((n, _), _)| n == ns)
                    .map(|(_, d)| d.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn conflict(ns: &str, key: &str) -> StoreError {
    StoreError::DocConflict {
        ns: ns.into(),
        key: key.into(),
    }
}

impl PlatformRecords for MemRecords {
    fn doc_get(&self, ns: &str, key: &str) -> Result<Option<Doc>, StoreError> {
        let docs = self.lock()?;
        Ok(docs
            .get(&(ns.to_owned(), key.to_owned()))
            .filter(|d| self.live(d))
            .cloned())
    }

    fn doc_put(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires_us: Option<i64>,
        expect: DocExpect,
    ) -> Result<i64, StoreError> {
        let mut docs = self.lock()?;
        let k = (ns.to_owned(), key.to_owned());
        let current = docs.get(&k).filter(|d| self.live(d));
        let ok = match expect {
            DocExpect::Any => true,
            DocExpect::Absent => current.is_none(),
            DocExpect::Version(v) => current.is_some_and(|d| d.version == v),
        };
        if !ok {
            return Err(conflict(ns, key));
        }
        let version = current.map_or(1, |d| d.version + 1);
        docs.insert(
            k,
            Doc {
                key: key.to_owned(),
                version,
                value: value.to_vec(),
                expires_us,
            },
        );
        Ok(version)
    }

    fn doc_delete(&self, ns: &str, key: &str, expect: DocExpect) -> Result<bool, StoreError> {
        let mut docs = self.lock()?;
        let k = (ns.to_owned(), key.to_owned());
        let current = docs.get(&k).filter(|d| self.live(d)).cloned();
        match (expect, current) {
            (_, None) => Ok(false),
            (DocExpect::Absent, Some(_)) => Err(conflict(ns, key)),
            (DocExpect::Version(v), Some(d)) if d.version != v => Err(conflict(ns, key)),
            _ => Ok(docs.remove(&k).is_some()),
        }
    }

    fn doc_take(&self, ns: &str, key: &str) -> Result<Option<Doc>, StoreError> {
        let mut docs = self.lock()?;
        let doc = docs.remove(&(ns.to_owned(), key.to_owned()));
        Ok(doc.filter(|d| self.live(d)))
    }

    fn doc_list(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError> {
        let docs = self.lock()?;
        Ok(docs
            .iter()
            .filter(|((n, k), d)| {
                n == ns
                    && k.starts_with(prefix)
                    && after.is_none_or(|a| k.as_str() > a)
                    && self.live(d)
            })
            .take(limit)
            .map(|(_, d)| d.clone())
            .collect())
    }

    fn doc_purge_expired(&self, now_us: i64) -> Result<u64, StoreError> {
        let mut docs = self.lock()?;
        let before = docs.len();
        docs.retain(|_, d| d.expires_us.is_none_or(|e| e >= now_us));
        Ok((before - docs.len()) as u64)
    }

    fn doc_scan(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<(String, Doc)>, StoreError> {
        let docs = self.lock()?;
        Ok(docs
            .iter()
            .filter(|((n, k), d)| {
                after.is_none_or(|(an, ak)| (n.as_str(), k.as_str()) > (an, ak)) && self.live(d)
            })
            .take(limit)
            .map(|((n, _), d)| (n.clone(), d.clone()))
            .collect())
    }

    fn audit_append(&self, _chain: &str, _build: &mut AuditBuilder<'_>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("no audit in MemRecords".into()))
    }
    fn audit_head(&self, _chain: &str) -> Result<Option<AuditLink>, StoreError> {
        Ok(None)
    }
    fn audit_query(&self, _chain: &str, _q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(Vec::new())
    }
    fn audit_chains(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}
