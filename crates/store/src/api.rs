//! The storage contract every backend implements (SQLite now, PostgreSQL later).
//!
//! The trait is synchronous on purpose: both embedded SQLite and a pooled PostgreSQL client are
//! driven from blocking worker threads, which keeps the trait object-safe and the backends simple.
//! The HTTP layer calls it through `tokio::task::spawn_blocking`.

use serde_json::Value;

use crate::error::StoreError;
use crate::index::{IndexEntry, extract_entries};
use crate::objects::ObjectRecords;
use crate::platform::PlatformRecords;
use crate::search::{SearchPage, SearchQuery};

/// Monotonically increasing id of a committed write transaction; the change-feed position.
pub type TxId = i64;

/// A resource for `WriteSession::put_extracted_many`: its body and its index entries.
#[derive(Debug, Clone)]
pub struct ExtractedPut {
    pub resource_type: String,
    pub id: String,
    pub body: Value,
    pub entries: Vec<IndexEntry>,
}

/// One stored version of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceVersion {
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    pub tx: TxId,
    /// Microseconds since the Unix epoch (UTC); rendered as `meta.lastUpdated`.
    pub last_updated_us: i64,
    /// `None` for a deletion marker.
    pub body: Option<Value>,
}

impl ResourceVersion {
    pub fn is_deleted(&self) -> bool {
        self.body.is_none()
    }
}

/// The scope of a history request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryScope<'a> {
    System,
    Type(&'a str),
    Instance(&'a str, &'a str),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only versions with `lastUpdated >= since` (µs).
    pub since_us: Option<i64>,
    /// Only versions with `lastUpdated <= at` (µs); `_at` semantics are not needed yet.
    pub before_us: Option<i64>,
    /// Page size.
    pub count: usize,
    /// Continue after this (tx, resource-surrogate) position, newest first.
    pub cursor: Option<HistoryCursor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCursor {
    pub tx: TxId,
    pub key: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub entries: Vec<ResourceVersion>,
    /// Total number of versions in scope (with `since`/`before` applied).
    pub total: u64,
    pub next: Option<HistoryCursor>,
}

/// A version precondition for a write (`If-Match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precondition {
    #[default]
    None,
    /// The current version must be exactly this one.
    VersionIs(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct WriteOutcome {
    /// True when this write created the resource (no prior version, or the prior one was deleted).
    pub created: bool,
    pub version: ResourceVersion,
}

/// An entry of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub tx: TxId,
    pub tenant: String,
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    pub deleted: bool,
}

/// A current resource as the stored JSON bytes (compact, one line, with `id` and `meta` set), for
/// streaming exports that copy bodies without parsing and re-serialising them.
#[derive(Debug, Clone, PartialEq)]
pub struct RawResource {
    pub resource_type: String,
    pub id: String,
    /// The paging position: results come in increasing `key` order, the same resource has the
    /// same key in every query, and `SearchQuery.cursor = Some(key)` continues after it.
    pub key: i64,
    pub json: Vec<u8>,
}

/// A page of [`ReadSession::search_raw`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawPage {
    pub resources: Vec<RawResource>,
    /// The `cursor` of the next page, when there is one.
    pub next_cursor: Option<i64>,
}

/// Read access within one tenant.
pub trait ReadSession {
    fn read(
        &mut self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<ResourceVersion>, StoreError>;
    fn vread(
        &mut self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<ResourceVersion>, StoreError>;
    fn history(
        &mut self,
        scope: HistoryScope<'_>,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, StoreError>;
    /// Search within one type (`Some`) or across all types (`None`, only `_id`/`_lastUpdated`
    /// and common parameters apply).
    fn search(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
    ) -> Result<SearchPage, StoreError>;
    /// `search` returning the stored JSON bytes of each match instead of a parsed body; `total`
    /// is not computed. Backends without a raw path answer `StoreError::Database` ("not
    /// supported"); the SQLite backend implements it.
    fn search_raw(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
    ) -> Result<RawPage, StoreError> {
        let _ = (resource_type, query);
        Err(StoreError::Database(
            "raw search is not supported by this backend".into(),
        ))
    }
    /// Every match of `query` (after `query.cursor`; `count` and `total` are ignored) in
    /// increasing key order, handed to `each` one at a time until it returns `Ok(false)`.
    /// Backends may run this as one statement, which evaluates the query once instead of once
    /// per page (e.g. a compartment's resource list); the default pages through `search_raw`.
    fn scan_raw(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
        each: &mut dyn FnMut(RawResource) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut q = query.clone();
        q.count = crate::search::MAX_COUNT;
        q.total = false;
        loop {
            let page = self.search_raw(resource_type, &q)?;
            for r in page.resources {
                if !each(r)? {
                    return Ok(());
                }
            }
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => return Ok(()),
            }
        }
    }
}

/// A write transaction within one tenant: everything is committed atomically by `commit`, or
/// rolled back when the session is dropped without commit. It sees its own writes.
pub trait WriteSession: ReadSession {
    /// The transaction id this session will commit as.
    fn tx(&self) -> TxId;
    /// The `lastUpdated` (µs) every version written by this session carries.
    fn timestamp_us(&self) -> i64;
    /// Create or update `resource_type/id` with `body`. The store sets `id`, `meta.versionId` and
    /// `meta.lastUpdated` in the body and indexes it. The body must already be validated.
    fn put(
        &mut self,
        resource_type: &str,
        id: &str,
        body: Value,
        precondition: Precondition,
    ) -> Result<WriteOutcome, StoreError> {
        let entries = extract_entries(medicus_fhir::r4(), resource_type, &body);
        self.put_extracted(resource_type, id, body, entries, precondition)
    }
    /// `put` with the index entries already extracted (`index::extract_entries` on the same
    /// body), so that bulk loaders can extract on worker threads while one thread writes.
    fn put_extracted(
        &mut self,
        resource_type: &str,
        id: &str,
        body: Value,
        entries: Vec<IndexEntry>,
        precondition: Precondition,
    ) -> Result<WriteOutcome, StoreError>;
    /// `put_extracted` without preconditions for each item, in order: one result per item (the
    /// inner error is that item's; the outer one ends the session). PostgreSQL creates all new
    /// resources of the call with one statement instead of a round trip each.
    fn put_extracted_many(
        &mut self,
        items: Vec<ExtractedPut>,
    ) -> Result<Vec<Result<WriteOutcome, StoreError>>, StoreError> {
        Ok(items
            .into_iter()
            .map(|p| {
                self.put_extracted(
                    &p.resource_type,
                    &p.id,
                    p.body,
                    p.entries,
                    Precondition::None,
                )
            })
            .collect())
    }
    /// Delete; `Ok(None)` when there was nothing to delete (absent or already deleted).
    fn delete(
        &mut self,
        resource_type: &str,
        id: &str,
        precondition: Precondition,
    ) -> Result<Option<ResourceVersion>, StoreError>;
    /// The writes that follow carry `us` (µs since the epoch) as their `lastUpdated` instead of
    /// the session's own time. For copying a store (`medicus migrate`), which keeps every
    /// version's time: it replays versions in commit order, so times still never go backwards.
    fn set_timestamp_us(&mut self, us: i64) -> Result<(), StoreError> {
        let _ = us;
        Err(StoreError::Database(
            "setting write timestamps is not supported by this backend".into(),
        ))
    }
    /// Records `value` under `key` in the same transaction as the writes (e.g. how far an import
    /// got), so progress and data become durable together.
    fn set_checkpoint(&mut self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Make everything durable. Nothing is acknowledged before this returns `Ok`.
    fn commit(self: Box<Self>) -> Result<TxId, StoreError>;
}

/// A storage backend.
pub trait Store: PlatformRecords + ObjectRecords + Send + Sync + 'static {
    /// Create a tenant; `Ok(false)` when it already existed.
    fn create_tenant(&self, tenant: &str) -> Result<bool, StoreError>;
    fn tenant_exists(&self, tenant: &str) -> Result<bool, StoreError>;
    fn list_tenants(&self) -> Result<Vec<String>, StoreError>;
    /// A read session on a tenant. Fails with `StoreError::UnknownTenant` for an unknown tenant.
    fn read_session(&self, tenant: &str) -> Result<Box<dyn ReadSession + '_>, StoreError>;
    /// A write transaction on a tenant. Writers are serialised; readers are not blocked.
    fn write_session(&self, tenant: &str) -> Result<Box<dyn WriteSession + '_>, StoreError>;
    /// The value last committed with `WriteSession::set_checkpoint` under `key`.
    fn checkpoint(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Committed changes with `tx > after`, oldest first: at most `limit`, except that a page
    /// never ends inside a transaction (its remaining changes are added), so a reader can
    /// continue after the last `tx` it saw.
    fn changes(&self, after: TxId, limit: usize) -> Result<Vec<Change>, StoreError>;
    /// After a bulk load into `tenant`: brings what the database plans with up to date, so the
    /// first searches do not run on plans made for empty tables. PostgreSQL vacuums and
    /// analyses the tenant's partitions (statistics and the visibility map that index-only
    /// scans need); SQLite's search planner uses no database statistics.
    fn refresh_statistics(&self, tenant: &str) -> Result<(), StoreError> {
        let _ = tenant;
        Ok(())
    }
}
