//! The store a test suite runs against: SQLite in a directory, or PostgreSQL in a scratch
//! database when `MEDICUS_TEST_DATABASE` names a server (the second pass of `scripts/test`).
//! One switch for every suite, so each runs unchanged on both backends.

use std::path::Path;
use std::sync::Arc;

use crate::api::{Change, ReadSession, Store, TxId, WriteSession};
use crate::error::StoreError;
use crate::postgres::{PostgresOptions, PostgresStore, ScratchDatabase};
use crate::sqlite::SqliteStore;

/// A store for one test; for PostgreSQL its scratch database is dropped with it.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// Declared after `store`: fields drop in order, so the database goes after the store.
    _database: Option<ScratchDatabase>,
}

impl TestStore {
    /// Opens the test store: `dir` is the SQLite data directory (unused for PostgreSQL). Runs on
    /// a thread of its own, so it may be called from async tests.
    pub fn open(dir: &Path) -> Result<TestStore, StoreError> {
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            let database = ScratchDatabase::from_env()?;
            let store: Arc<dyn Store> = match &database {
                Some(db) => Arc::new(PostgresStore::connect(
                    db.url(),
                    PostgresOptions::default(),
                )?),
                None => Arc::new(SqliteStore::open(&dir)?),
            };
            Ok(TestStore {
                store,
                _database: database,
            })
        })
        .join()
        .map_err(|_| StoreError::Database("test store setup panicked".into()))?
    }

    /// After loading test data: statistics for the planner where the backend keeps them (see
    /// `ScratchDatabase::analyze`); nothing for SQLite, whose planner works without them.
    pub fn analyze(&self) -> Result<(), StoreError> {
        match &self._database {
            Some(db) => db.analyze(),
            None => Ok(()),
        }
    }

    /// The URL of the PostgreSQL scratch database (`None` on SQLite): for a test that opens a
    /// second store on the same database or works on its tables directly.
    pub fn database_url(&self) -> Option<&str> {
        self._database.as_ref().map(ScratchDatabase::url)
    }

    /// Whether this is the PostgreSQL pass.
    pub fn is_postgres(&self) -> bool {
        self._database.is_some()
    }
}

/// The test store delegates platform records to the store it wraps.
impl crate::platform::PlatformRecords for TestStore {
    fn doc_get(&self, ns: &str, key: &str) -> Result<Option<crate::platform::Doc>, StoreError> {
        self.store.doc_get(ns, key)
    }
    fn doc_put(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires_us: Option<i64>,
        expect: crate::platform::DocExpect,
    ) -> Result<i64, StoreError> {
        self.store.doc_put(ns, key, value, expires_us, expect)
    }
    fn doc_delete(
        &self,
        ns: &str,
        key: &str,
        expect: crate::platform::DocExpect,
    ) -> Result<bool, StoreError> {
        self.store.doc_delete(ns, key, expect)
    }
    fn doc_take(&self, ns: &str, key: &str) -> Result<Option<crate::platform::Doc>, StoreError> {
        self.store.doc_take(ns, key)
    }
    fn doc_list(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::platform::Doc>, StoreError> {
        self.store.doc_list(ns, prefix, after, limit)
    }
    fn doc_purge_expired(&self, now_us: i64) -> Result<u64, StoreError> {
        self.store.doc_purge_expired(now_us)
    }
    fn doc_scan(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<(String, crate::platform::Doc)>, StoreError> {
        self.store.doc_scan(after, limit)
    }
    fn audit_append(
        &self,
        chain: &str,
        build: &mut crate::platform::AuditBuilder<'_>,
    ) -> Result<(), StoreError> {
        self.store.audit_append(chain, build)
    }
    fn audit_head(&self, chain: &str) -> Result<Option<crate::platform::AuditLink>, StoreError> {
        self.store.audit_head(chain)
    }
    fn audit_query(
        &self,
        chain: &str,
        query: &crate::platform::AuditQuery,
    ) -> Result<Vec<crate::platform::AuditEntry>, StoreError> {
        self.store.audit_query(chain, query)
    }
    fn audit_chains(&self) -> Result<Vec<String>, StoreError> {
        self.store.audit_chains()
    }
}

/// The test store is used as the store it wraps.
impl Store for TestStore {
    fn create_tenant(&self, tenant: &str) -> Result<bool, StoreError> {
        self.store.create_tenant(tenant)
    }

    fn tenant_exists(&self, tenant: &str) -> Result<bool, StoreError> {
        self.store.tenant_exists(tenant)
    }

    fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        self.store.list_tenants()
    }

    fn read_session(&self, tenant: &str) -> Result<Box<dyn ReadSession + '_>, StoreError> {
        self.store.read_session(tenant)
    }

    fn write_session(&self, tenant: &str) -> Result<Box<dyn WriteSession + '_>, StoreError> {
        self.store.write_session(tenant)
    }

    fn checkpoint(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.store.checkpoint(key)
    }

    fn changes(&self, after: TxId, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.store.changes(after, limit)
    }

    fn refresh_statistics(&self, tenant: &str) -> Result<(), StoreError> {
        self.store.refresh_statistics(tenant)
    }
}
