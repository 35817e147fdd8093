//! Read and write sessions over one tenant.

use std::sync::MutexGuard;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};
use serde_json::Value;

use super::read::{self, CurrentRow};
use super::{PooledReader, SqliteStore, codec, index_rows, search};
use crate::api::*;
use crate::error::StoreError;
use crate::index::datetime::format_instant_us;
use crate::index::keys::hash;
use crate::index::{IndexEntry, extract_entries};
use crate::search::{SearchPage, SearchQuery};
use crate::stamp::stamp;

/// Bounds the memory of pending index rows (about 100 bytes each) in very large sessions.
const MAX_PENDING_INDEX_ROWS: usize = 500_000;

pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub struct SqliteReadSession<'s> {
    store: &'s SqliteStore,
    reader: PooledReader<'s>,
    tenant: i64,
}

impl<'s> SqliteReadSession<'s> {
    pub(crate) fn new(store: &'s SqliteStore, reader: PooledReader<'s>, tenant: i64) -> Self {
        SqliteReadSession {
            store,
            reader,
            tenant,
        }
    }

    /// Runs `f` in one read transaction, so the total and the page it computes come from the
    /// same snapshot.
    fn in_snapshot<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.reader.conn();
        conn.execute_batch("BEGIN")?;
        let result = f(conn);
        conn.execute_batch("COMMIT")?;
        result
    }
}

impl ReadSession for SqliteReadSession<'_> {
    fn read(
        &mut self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<ResourceVersion>, StoreError> {
        read::read(
            self.store,
            self.reader.conn(),
            self.tenant,
            resource_type,
            id,
        )
    }

    fn vread(
        &mut self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<ResourceVersion>, StoreError> {
        read::vread(
            self.store,
            self.reader.conn(),
            self.tenant,
            resource_type,
            id,
            version,
        )
    }

    fn history(
        &mut self,
        scope: HistoryScope<'_>,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, StoreError> {
        let (store, tenant) = (self.store, self.tenant);
        self.in_snapshot(|conn| read::history(store, conn, tenant, scope, query))
    }

    fn search(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
    ) -> Result<SearchPage, StoreError> {
        let (store, tenant) = (self.store, self.tenant);
        self.in_snapshot(|conn| search::search(store, conn, tenant, resource_type, query))
    }

    fn search_raw(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
    ) -> Result<RawPage, StoreError> {
        search::search_raw(
            self.store,
            self.reader.conn(),
            self.tenant,
            resource_type,
            query,
        )
    }

    fn scan_raw(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
        each: &mut dyn FnMut(RawResource) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        search::scan_raw(
            self.store,
            self.reader.conn(),
            self.tenant,
            resource_type,
            query,
            each,
        )
    }
}

/// A write transaction. Holds the single writer connection from `begin` until commit or drop.
pub struct SqliteWriteSession<'s> {
    store: &'s SqliteStore,
    conn: MutexGuard<'s, Connection>,
    tenant: i64,
    tx: TxId,
    timestamp_us: i64,
    /// `timestamp_us` as the `meta.lastUpdated` text, formatted once for all writes of the session.
    last_updated: String,
    /// Index rows not yet inserted: they go in sorted by key at commit (or before anything in
    /// the session reads the indexes), which keeps big batches from hitting B-tree pages at random.
    pending_index: Vec<(i64, IndexEntry)>,
    open: bool,
}

impl<'s> SqliteWriteSession<'s> {
    pub(crate) fn begin(
        store: &'s SqliteStore,
        conn: MutexGuard<'s, Connection>,
        tenant: i64,
    ) -> Result<Self, StoreError> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut session = SqliteWriteSession {
            store,
            conn,
            tenant,
            tx: 0,
            timestamp_us: 0,
            last_updated: String::new(),
            pending_index: Vec::new(),
            open: true,
        };
        // lastUpdated must not go backwards even if the wall clock does.
        let last: Option<i64> = session
            .conn
            .prepare_cached("SELECT at_us FROM tx_log ORDER BY tx DESC LIMIT 1")?
            .query_row([], |r| r.get(0))
            .ok();
        session.timestamp_us = now_us().max(last.map_or(0, |l| l + 1));
        session.last_updated = format_instant_us(session.timestamp_us);
        session
            .conn
            .prepare_cached("INSERT INTO tx_log (tenant, at_us) VALUES (?1, ?2)")?
            .execute(params![tenant, session.timestamp_us])?;
        session.tx = session.conn.last_insert_rowid();
        Ok(session)
    }

    fn type_code(&self, resource_type: &str) -> Result<i64, StoreError> {
        self.store.type_code(resource_type).ok_or_else(|| {
            StoreError::Corrupt(format!("'{resource_type}' is not a known resource type"))
        })
    }

    fn check(
        precondition: Precondition,
        rt: &str,
        id: &str,
        current: Option<&CurrentRow>,
    ) -> Result<(), StoreError> {
        let Precondition::VersionIs(expected) = precondition else {
            return Ok(());
        };
        let live = current.filter(|c| !c.deleted).map(|c| c.version);
        if live == Some(expected) {
            return Ok(());
        }
        Err(StoreError::VersionConflict {
            resource_type: rt.to_owned(),
            id: id.to_owned(),
            expected,
            current: live,
        })
    }

    /// Inserts the pending index rows in primary-key order.
    fn flush_index(&mut self) -> Result<(), StoreError> {
        if self.pending_index.is_empty() {
            return Ok(());
        }
        let mut rows = std::mem::take(&mut self.pending_index);
        rows.sort_unstable_by(index_rows::primary_key_order);
        for (rid, entry) in &rows {
            index_rows::insert_one(&self.conn, self.tenant, *rid, entry)?;
        }
        Ok(())
    }

    /// Removes the index rows of the current (live) version.
    fn unindex(&mut self, rt: &str, row: &CurrentRow) -> Result<(), StoreError> {
        if row.deleted {
            return Ok(());
        }
        // The rows to remove may still be pending (the resource was written earlier in this session).
        self.flush_index()?;
        if let Some(old) = read::body_of(&self.conn, row.rid, row.version)? {
            let entries = extract_entries(medicus_fhir::r4(), rt, &old);
            index_rows::remove(&self.conn, self.tenant, row.rid, &entries)?;
        }
        Ok(())
    }

    fn insert_version(
        &self,
        rid: i64,
        version: i64,
        rtype: i64,
        body: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO version (rid, version, tenant, rtype, tx, updated_us, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![rid, version, self.tenant, rtype, self.tx, self.timestamp_us, body])?;
        Ok(())
    }

    fn set_current(&self, rid: i64, version: i64, deleted: bool) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE resource SET version = ?2, tx = ?3, updated_us = ?4, deleted = ?5 WHERE rid = ?1")?
            .execute(params![rid, version, self.tx, self.timestamp_us, deleted])?;
        Ok(())
    }
}

impl ReadSession for SqliteWriteSession<'_> {
    fn read(
        &mut self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<ResourceVersion>, StoreError> {
        read::read(self.store, &self.conn, self.tenant, resource_type, id)
    }

    fn vread(
        &mut self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<ResourceVersion>, StoreError> {
        read::vread(
            self.store,
            &self.conn,
            self.tenant,
            resource_type,
            id,
            version,
        )
    }

    fn history(
        &mut self,
        scope: HistoryScope<'_>,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, StoreError> {
        read::history(self.store, &self.conn, self.tenant, scope, query)
    }

    fn search(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
    ) -> Result<SearchPage, StoreError> {
        self.flush_index()?;
        search::search(self.store, &self.conn, self.tenant, resource_type, query)
    }

    fn search_raw(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
    ) -> Result<RawPage, StoreError> {
        self.flush_index()?;
        search::search_raw(self.store, &self.conn, self.tenant, resource_type, query)
    }
}

impl WriteSession for SqliteWriteSession<'_> {
    fn tx(&self) -> TxId {
        self.tx
    }

    fn timestamp_us(&self) -> i64 {
        self.timestamp_us
    }

    fn set_timestamp_us(&mut self, us: i64) -> Result<(), StoreError> {
        self.timestamp_us = us;
        self.last_updated = format_instant_us(us);
        Ok(())
    }

    fn put_extracted(
        &mut self,
        resource_type: &str,
        id: &str,
        body: Value,
        entries: Vec<IndexEntry>,
        precondition: Precondition,
    ) -> Result<WriteOutcome, StoreError> {
        let rtype = self.type_code(resource_type)?;
        let current = read::current_row(&self.conn, self.tenant, rtype, id)?;
        Self::check(precondition, resource_type, id, current.as_ref())?;
        if let Some(row) = &current {
            self.unindex(resource_type, row)?;
        }
        let version = current.map_or(1, |c| c.version + 1);
        let body = stamp(resource_type, id, version, &self.last_updated, body);
        let blob = codec::encode(&body)?;
        let rid = match current {
            Some(row) => {
                self.set_current(row.rid, version, false)?;
                row.rid
            }
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO resource (tenant, rtype, id, idh, version, tx, updated_us, deleted)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                    )?
                    .execute(params![self.tenant, rtype, id, hash(id), version, self.tx, self.timestamp_us])?;
                self.conn.last_insert_rowid()
            }
        };
        self.insert_version(rid, version, rtype, Some(&blob))?;
        self.pending_index
            .extend(entries.into_iter().map(|e| (rid, e)));
        if self.pending_index.len() >= MAX_PENDING_INDEX_ROWS {
            self.flush_index()?;
        }
        Ok(WriteOutcome {
            created: current.is_none_or(|c| c.deleted),
            version: ResourceVersion {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                version,
                tx: self.tx,
                last_updated_us: self.timestamp_us,
                body: Some(body),
            },
        })
    }

    fn delete(
        &mut self,
        resource_type: &str,
        id: &str,
        precondition: Precondition,
    ) -> Result<Option<ResourceVersion>, StoreError> {
        let rtype = self.type_code(resource_type)?;
        let current = read::current_row(&self.conn, self.tenant, rtype, id)?;
        Self::check(precondition, resource_type, id, current.as_ref())?;
        let Some(row) = current.filter(|c| !c.deleted) else {
            return Ok(None);
        };
        self.unindex(resource_type, &row)?;
        let version = row.version + 1;
        self.insert_version(row.rid, version, rtype, None)?;
        self.set_current(row.rid, version, true)?;
        Ok(Some(ResourceVersion {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            version,
            tx: self.tx,
            last_updated_us: self.timestamp_us,
            body: None,
        }))
    }

    fn set_checkpoint(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO checkpoint (key, value) VALUES (?1, ?2)")?
            .execute(params![key, value])?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<TxId, StoreError> {
        self.flush_index()?;
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(self.tx)
    }
}

impl Drop for SqliteWriteSession<'_> {
    fn drop(&mut self) {
        if self.open {
            // Uncommitted: nothing of this session becomes visible, including its tx_log row.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}
