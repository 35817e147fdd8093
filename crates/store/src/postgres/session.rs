//! Read and write sessions over one tenant.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use deadpool_postgres::{ClientWrapper, Object};
use futures_util::future::try_join;
use futures_util::pin_mut;
use serde_json::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::index_rows::{COPY_MIN_ROWS, Rows};
use super::read::{self, CurrentRow};
use super::schema::{FEED_LOCK, partition};
use super::search::{self, PgDb};
use super::{PostgresStore, in_snapshot};
use crate::api::*;
use crate::codec;
use crate::error::StoreError;
use crate::index::datetime::format_instant_us;
use crate::index::keys::hash;
use crate::index::{IndexEntry, extract_entries};
use crate::search::{SearchPage, SearchQuery};
use crate::sql_search;
use crate::stamp::stamp;

/// Buffered index rows (about 100 bytes each) flushed early in very large sessions.
const MAX_BUFFERED_ROWS: usize = 500_000;
/// Buffered compressed bodies flushed early in very large sessions.
const MAX_BUFFERED_BYTES: usize = 64 << 20;

pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub struct PostgresReadSession<'s> {
    store: &'s PostgresStore,
    conn: Object,
    tenant: i32,
}

impl<'s> PostgresReadSession<'s> {
    pub(crate) fn new(store: &'s PostgresStore, conn: Object, tenant: i32) -> Self {
        PostgresReadSession {
            store,
            conn,
            tenant,
        }
    }
}

impl ReadSession for PostgresReadSession<'_> {
    fn read(
        &mut self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<ResourceVersion>, StoreError> {
        let store = self.store;
        store.block_on(read::read(
            store,
            &self.conn,
            self.tenant,
            resource_type,
            id,
        ))
    }

    fn vread(
        &mut self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<ResourceVersion>, StoreError> {
        let store = self.store;
        store.block_on(read::vread(
            store,
            &self.conn,
            self.tenant,
            resource_type,
            id,
            version,
        ))
    }

    fn history(
        &mut self,
        scope: HistoryScope<'_>,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, StoreError> {
        let (store, conn, tenant) = (self.store, &self.conn, self.tenant);
        store.block_on(in_snapshot(conn, || {
            read::history(store, conn, tenant, scope, query)
        }))
    }

    fn search(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
    ) -> Result<SearchPage, StoreError> {
        self.in_snapshot(|db, tenant| sql_search::search(db, tenant, resource_type, query))
    }

    fn search_raw(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
    ) -> Result<RawPage, StoreError> {
        self.in_snapshot(|db, tenant| sql_search::search_raw(db, tenant, resource_type, query))
    }

    fn scan_raw(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
        each: &mut dyn FnMut(RawResource) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.in_snapshot(|db, tenant| sql_search::scan_raw(db, tenant, resource_type, query, each))
    }
}

impl PostgresReadSession<'_> {
    /// Runs `f` on this session's connection in a read-only snapshot, with the tenant's id.
    fn in_snapshot<T>(
        &self,
        f: impl FnOnce(&PgDb<'_>, i64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = PgDb {
            store: self.store,
            conn: &self.conn,
        };
        search::in_snapshot(&db, |db| f(db, i64::from(self.tenant)))
    }
}

/// A version waiting to be written.
struct VersionRow {
    rtype: i32,
    rid: i64,
    version: i64,
    /// The session's time, or what `set_timestamp_us` set before this write.
    updated_us: i64,
    body: Option<Vec<u8>>,
}

/// A write transaction on one pooled connection, from `begin` until commit or drop.
pub struct PostgresWriteSession<'s> {
    store: &'s PostgresStore,
    /// `None` once committed or rolled back.
    conn: Option<Object>,
    tenant: i32,
    tx: TxId,
    timestamp_us: i64,
    /// `timestamp_us` as the `meta.lastUpdated` text, formatted once for all writes.
    last_updated: String,
    versions: Vec<VersionRow>,
    version_bytes: usize,
    index: Rows,
    /// Resources with buffered versions or index rows.
    buffered: HashSet<i64>,
    /// A statement failed: PostgreSQL has aborted the transaction, and `COMMIT` would quietly
    /// roll it back, so `commit` must refuse.
    failed: bool,
    /// A version was written: the commit takes a change-feed position.
    changed: bool,
}

/// Ends the session's transaction once `commit` did not: rolls back, and keeps a connection
/// whose state is unknown out of the pool.
impl Drop for PostgresWriteSession<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let rolled_back = self.store.block_on(conn.batch_execute("ROLLBACK")).is_ok();
            if !rolled_back {
                drop(Object::take(conn));
            }
        }
    }
}

fn gone() -> StoreError {
    StoreError::Database("the write session has ended".into())
}

impl<'s> PostgresWriteSession<'s> {
    pub(crate) fn begin(store: &'s PostgresStore, tenant: i32) -> Result<Self, StoreError> {
        let conn = store.block_on(store.connection())?;
        let mut session = PostgresWriteSession {
            store,
            conn: Some(conn),
            tenant,
            tx: 0,
            timestamp_us: 0,
            last_updated: String::new(),
            versions: Vec::new(),
            version_bytes: 0,
            index: Rows::new(),
            buffered: HashSet::new(),
            failed: false,
            changed: false,
        };
        // On error the session is dropped here, which rolls back.
        let (tx, at) = store.block_on(async {
            let conn = session.conn.as_ref().ok_or_else(gone)?;
            // Versions carry this transaction's id; lastUpdated does not go backwards even if
            // the wall clock does.
            let stmt = conn
                .prepare_cached(
                    "INSERT INTO tx_log (tx, tenant, at_us)
                     SELECT pg_current_xact_id()::text::bigint, $1,
                            greatest($2::bigint,
                                     coalesce((SELECT at_us + 1 FROM tx_log ORDER BY tx DESC LIMIT 1), 0))
                     RETURNING tx, at_us",
                )
                .await?;
            let now = now_us();
            let ((), row) = try_join(
                async { conn.batch_execute("BEGIN").await.map_err(StoreError::from) },
                async {
                    conn.query_one(&stmt, &[&tenant, &now])
                        .await
                        .map_err(StoreError::from)
                },
            )
            .await?;
            Ok::<_, StoreError>((row.get::<_, i64>(0), row.get::<_, i64>(1)))
        })?;
        session.tx = tx;
        session.timestamp_us = at;
        session.last_updated = format_instant_us(at);
        Ok(session)
    }

    fn type_code(&self, resource_type: &str) -> Result<i32, StoreError> {
        self.store.type_code(resource_type).ok_or_else(|| {
            StoreError::Corrupt(format!("'{resource_type}' is not a known resource type"))
        })
    }

    /// Runs one operation of the session; an error of the database poisons the session.
    fn run<T>(
        &mut self,
        op: impl AsyncFnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.failed {
            return Err(StoreError::Database(
                "an earlier statement of this write session failed; it can only be rolled back"
                    .into(),
            ));
        }
        let store = self.store;
        let result = store.block_on(op(self));
        if let Err(StoreError::Database(_) | StoreError::Unavailable(_)) = &result {
            self.failed = true;
        }
        result
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

    /// The current row, locked until the end of the transaction, with its current body.
    async fn lock_current(
        &self,
        rtype: i32,
        id: &str,
    ) -> Result<Option<(CurrentRow, Option<Vec<u8>>)>, StoreError> {
        let conn = self.conn.as_ref().ok_or_else(gone)?;
        let stmt = conn
            .prepare_cached(
                "SELECT r.rid, r.version, r.deleted, v.body FROM resource r
                 LEFT JOIN version v ON v.tenant = r.tenant AND v.rid = r.rid AND v.version = r.version
                 WHERE r.tenant = $1 AND r.rtype = $2 AND r.idh = $3 AND r.id = $4
                 FOR UPDATE OF r",
            )
            .await?;
        let row = conn
            .query_opt(&stmt, &[&self.tenant, &rtype, &hash(id), &id])
            .await?;
        Ok(row.map(|r| {
            (
                CurrentRow {
                    rid: r.get(0),
                    version: r.get(1),
                    deleted: r.get(2),
                },
                r.get(3),
            )
        }))
    }

    /// Inserts a new resource row at version 1; `None` when the row exists already (committed
    /// by anyone, or inserted by a transaction this one waited for).
    async fn insert_new(&self, rtype: i32, id: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.conn.as_ref().ok_or_else(gone)?;
        let stmt = conn
            .prepare_cached(
                "INSERT INTO resource (tenant, rtype, idh, id, version, tx, updated_us, deleted)
                 VALUES ($1, $2, $3, $4, 1, $5, $6, false)
                 ON CONFLICT (tenant, rtype, idh, id) DO NOTHING RETURNING rid",
            )
            .await?;
        let row = conn
            .query_opt(
                &stmt,
                &[
                    &self.tenant,
                    &rtype,
                    &hash(id),
                    &id,
                    &self.tx,
                    &self.timestamp_us,
                ],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set_current(&self, rid: i64, version: i64, deleted: bool) -> Result<(), StoreError> {
        let conn = self.conn.as_ref().ok_or_else(gone)?;
        let stmt = conn
            .prepare_cached(
                "UPDATE resource SET version = $3, tx = $4, updated_us = $5, deleted = $6
                 WHERE tenant = $1 AND rid = $2",
            )
            .await?;
        conn.execute(
            &stmt,
            &[
                &self.tenant,
                &rid,
                &version,
                &self.tx,
                &self.timestamp_us,
                &deleted,
            ],
        )
        .await?;
        Ok(())
    }

    /// Removes the index rows of the current (live) version, recomputed from its body.
    async fn unindex(
        &mut self,
        rt: &str,
        row: &CurrentRow,
        body: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        if row.deleted {
            return Ok(());
        }
        let body = if self.buffered.contains(&row.rid) {
            // Written earlier in this session: its version and rows may still be buffered.
            self.flush().await?;
            let conn = self.conn.as_ref().ok_or_else(gone)?;
            let stmt = conn
                .prepare_cached(
                    "SELECT body FROM version WHERE tenant = $1 AND rid = $2 AND version = $3",
                )
                .await?;
            conn.query_opt(&stmt, &[&self.tenant, &row.rid, &row.version])
                .await?
                .and_then(|r| r.get::<_, Option<Vec<u8>>>(0))
        } else {
            body
        };
        let Some(body) = body else {
            return Ok(());
        };
        let old = codec::decode(&body)?;
        let mut rows = Rows::new();
        for e in extract_entries(medicus_fhir::r4(), rt, &old) {
            rows.push(row.rid, e)?;
        }
        let conn = self.conn.as_ref().ok_or_else(gone)?;
        rows.delete(conn, self.tenant).await
    }

    /// Writes the buffered versions and index rows.
    async fn flush(&mut self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let (versions, rows) = (self.versions.len(), self.index.len());
        let conn = self.conn.as_ref().ok_or_else(gone)?;
        if !self.versions.is_empty() {
            let versions = std::mem::take(&mut self.versions);
            write_versions(conn, self.tenant, self.tx, &versions).await?;
        }
        if !self.index.is_empty() {
            self.index.write(conn, self.tenant).await?;
        }
        self.version_bytes = 0;
        self.buffered.clear();
        if versions + rows > 0 {
            tracing::debug!(
                versions,
                rows,
                ms = started.elapsed().as_millis() as u64,
                "flushed a write session's buffers"
            );
        }
        Ok(())
    }

    async fn put_inner(
        &mut self,
        resource_type: &str,
        id: &str,
        body: Value,
        entries: Vec<IndexEntry>,
        precondition: Precondition,
    ) -> Result<WriteOutcome, StoreError> {
        let rtype = self.type_code(resource_type)?;
        // Most puts create: try that first, one round trip. An existing row (or an If-Match,
        // which needs one) goes the locking way.
        let inserted = match precondition {
            Precondition::None => self.insert_new(rtype, id).await?,
            Precondition::VersionIs(_) => None,
        };
        let (rid, version, created) = match inserted {
            Some(rid) => (rid, 1, true),
            None => {
                let current = self.lock_current(rtype, id).await?;
                Self::check(
                    precondition,
                    resource_type,
                    id,
                    current.as_ref().map(|c| &c.0),
                )?;
                let Some((row, body)) = current else {
                    // The insert found a conflicting row, so one exists: rows are never removed.
                    return Err(StoreError::Database(format!(
                        "{resource_type}/{id}: the resource row vanished during the write"
                    )));
                };
                self.unindex(resource_type, &row, body).await?;
                self.set_current(row.rid, row.version + 1, false).await?;
                (row.rid, row.version + 1, row.deleted)
            }
        };
        self.buffer_version(
            rtype,
            rid,
            version,
            created,
            resource_type,
            id,
            body,
            entries,
        )
        .await
    }

    /// Creates as many of `items` as are new with one statement; the others (existing
    /// resources, or a later occurrence of an id earlier in `items`) go the way of `put`, in
    /// their order.
    async fn put_many_inner(
        &mut self,
        items: Vec<ExtractedPut>,
    ) -> Result<Vec<Result<WriteOutcome, StoreError>>, StoreError> {
        let mut keys: Vec<(i32, i64, &str)> = items
            .iter()
            .filter_map(|p| {
                let rtype = self.type_code(&p.resource_type).ok()?;
                Some((rtype, hash(&p.id), p.id.as_str()))
            })
            .collect();
        // Key order, as every writer inserts: concurrent imports cannot deadlock on the
        // unique index.
        keys.sort_unstable();
        keys.dedup();
        let mut created: HashMap<(i32, String), i64> = HashMap::with_capacity(keys.len());
        if !keys.is_empty() {
            let rtypes: Vec<i32> = keys.iter().map(|k| k.0).collect();
            let idhs: Vec<i64> = keys.iter().map(|k| k.1).collect();
            let ids: Vec<&str> = keys.iter().map(|k| k.2).collect();
            let conn = self.conn.as_ref().ok_or_else(gone)?;
            let stmt = conn
                .prepare_cached(
                    "INSERT INTO resource (tenant, rtype, idh, id, version, tx, updated_us, deleted)
                     SELECT $1, k.rtype, k.idh, k.id, 1, $2, $3, false
                     FROM unnest($4::int4[], $5::int8[], $6::text[]) AS k(rtype, idh, id)
                     ON CONFLICT (tenant, rtype, idh, id) DO NOTHING RETURNING rid, rtype, id",
                )
                .await?;
            let rows = conn
                .query(
                    &stmt,
                    &[
                        &self.tenant,
                        &self.tx,
                        &self.timestamp_us,
                        &rtypes,
                        &idhs,
                        &ids,
                    ],
                )
                .await?;
            for r in rows {
                created.insert((r.get(1), r.get(2)), r.get(0));
            }
        }
        let mut out = Vec::with_capacity(items.len());
        for p in items {
            let rid = match self.type_code(&p.resource_type) {
                Ok(rtype) => created
                    .remove(&(rtype, p.id.clone()))
                    .map(|rid| (rtype, rid)),
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            out.push(match rid {
                Some((rtype, rid)) => {
                    self.buffer_version(
                        rtype,
                        rid,
                        1,
                        true,
                        &p.resource_type,
                        &p.id,
                        p.body,
                        p.entries,
                    )
                    .await
                }
                None => {
                    self.put_inner(
                        &p.resource_type,
                        &p.id,
                        p.body,
                        p.entries,
                        Precondition::None,
                    )
                    .await
                }
            });
        }
        Ok(out)
    }

    /// Buffers a new version (stamped, compressed) and its index rows; flushes when the
    /// buffers are full.
    #[allow(clippy::too_many_arguments)]
    async fn buffer_version(
        &mut self,
        rtype: i32,
        rid: i64,
        version: i64,
        created: bool,
        resource_type: &str,
        id: &str,
        body: Value,
        entries: Vec<IndexEntry>,
    ) -> Result<WriteOutcome, StoreError> {
        let body = stamp(resource_type, id, version, &self.last_updated, body);
        let blob = codec::encode(&body)?;
        self.version_bytes += blob.len();
        self.versions.push(VersionRow {
            rtype,
            rid,
            version,
            updated_us: self.timestamp_us,
            body: Some(blob),
        });
        for e in entries {
            self.index.push(rid, e)?;
        }
        self.buffered.insert(rid);
        self.changed = true;
        if self.index.len() >= MAX_BUFFERED_ROWS || self.version_bytes >= MAX_BUFFERED_BYTES {
            self.flush().await?;
        }
        Ok(WriteOutcome {
            created,
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

    async fn delete_inner(
        &mut self,
        resource_type: &str,
        id: &str,
        precondition: Precondition,
    ) -> Result<Option<ResourceVersion>, StoreError> {
        let rtype = self.type_code(resource_type)?;
        let current = self.lock_current(rtype, id).await?;
        Self::check(
            precondition,
            resource_type,
            id,
            current.as_ref().map(|c| &c.0),
        )?;
        let Some((row, body)) = current.filter(|(c, _)| !c.deleted) else {
            return Ok(None);
        };
        self.unindex(resource_type, &row, body).await?;
        let version = row.version + 1;
        self.set_current(row.rid, version, true).await?;
        self.versions.push(VersionRow {
            rtype,
            rid: row.rid,
            version,
            updated_us: self.timestamp_us,
            body: None,
        });
        self.buffered.insert(row.rid);
        self.changed = true;
        Ok(Some(ResourceVersion {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            version,
            tx: self.tx,
            last_updated_us: self.timestamp_us,
            body: None,
        }))
    }
}

/// Versions of one session: binary `COPY` into the tenant's partition when there are many, one
/// `INSERT … SELECT FROM unnest(…)` when there are a few.
async fn write_versions(
    conn: &ClientWrapper,
    tenant: i32,
    tx: i64,
    versions: &[VersionRow],
) -> Result<(), StoreError> {
    if versions.len() < COPY_MIN_ROWS {
        let stmt = conn
            .prepare_cached(
                "INSERT INTO version (tenant, rtype, rid, version, tx, updated_us, body)
                 SELECT $1, u.rtype, u.rid, u.version, $2, u.updated_us, u.body
                 FROM unnest($3::int[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bytea[])
                   AS u(rtype, rid, version, updated_us, body)",
            )
            .await?;
        let rtypes: Vec<i32> = versions.iter().map(|v| v.rtype).collect();
        let rids: Vec<i64> = versions.iter().map(|v| v.rid).collect();
        let numbers: Vec<i64> = versions.iter().map(|v| v.version).collect();
        let times: Vec<i64> = versions.iter().map(|v| v.updated_us).collect();
        let bodies: Vec<Option<&[u8]>> = versions.iter().map(|v| v.body.as_deref()).collect();
        conn.execute(
            &stmt,
            &[&tenant, &tx, &rtypes, &rids, &numbers, &times, &bodies],
        )
        .await?;
        return Ok(());
    }
    let sql = format!(
        "COPY {} (tenant, rtype, rid, version, tx, updated_us, body) FROM STDIN (FORMAT binary)",
        partition("version", tenant)
    );
    let sink = conn.copy_in(&sql).await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::INT4,
            Type::INT4,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::BYTEA,
        ],
    );
    pin_mut!(writer);
    for v in versions {
        let body = v.body.as_deref();
        let row: [&(dyn ToSql + Sync); 7] = [
            &tenant,
            &v.rtype,
            &v.rid,
            &v.version,
            &tx,
            &v.updated_us,
            &body,
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    Ok(())
}

impl ReadSession for PostgresWriteSession<'_> {
    fn read(
        &mut self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<ResourceVersion>, StoreError> {
        self.run(async |s| {
            s.flush().await?;
            let conn = s.conn.as_ref().ok_or_else(gone)?;
            read::read(s.store, conn, s.tenant, resource_type, id).await
        })
    }

    fn vread(
        &mut self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<ResourceVersion>, StoreError> {
        self.run(async |s| {
            s.flush().await?;
            let conn = s.conn.as_ref().ok_or_else(gone)?;
            read::vread(s.store, conn, s.tenant, resource_type, id, version).await
        })
    }

    fn history(
        &mut self,
        scope: HistoryScope<'_>,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, StoreError> {
        self.run(async |s| {
            s.flush().await?;
            let conn = s.conn.as_ref().ok_or_else(gone)?;
            read::history(s.store, conn, s.tenant, scope, query).await
        })
    }

    fn search(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
    ) -> Result<SearchPage, StoreError> {
        let tenant = i64::from(self.tenant);
        let db = self.searchable()?;
        sql_search::search(&db, tenant, resource_type, query)
    }

    fn search_raw(
        &mut self,
        resource_type: Option<&str>,
        query: &SearchQuery,
    ) -> Result<RawPage, StoreError> {
        let tenant = i64::from(self.tenant);
        let db = self.searchable()?;
        sql_search::search_raw(&db, tenant, resource_type, query)
    }
}

impl PostgresWriteSession<'_> {
    /// The session's connection for a search, after its buffered rows are written (a session
    /// sees its own writes). The search runs in the session's transaction.
    fn searchable(&mut self) -> Result<PgDb<'_>, StoreError> {
        self.run(async |s| s.flush().await)?;
        let conn = self.conn.as_ref().ok_or_else(gone)?;
        Ok(PgDb {
            store: self.store,
            conn,
        })
    }
}

impl WriteSession for PostgresWriteSession<'_> {
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
        self.run(async |s| {
            s.put_inner(resource_type, id, body, entries, precondition)
                .await
        })
    }

    fn put_extracted_many(
        &mut self,
        items: Vec<ExtractedPut>,
    ) -> Result<Vec<Result<WriteOutcome, StoreError>>, StoreError> {
        self.run(async |s| s.put_many_inner(items).await)
    }

    fn delete(
        &mut self,
        resource_type: &str,
        id: &str,
        precondition: Precondition,
    ) -> Result<Option<ResourceVersion>, StoreError> {
        self.run(async |s| s.delete_inner(resource_type, id, precondition).await)
    }

    fn set_checkpoint(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.run(async |s| {
            let conn = s.conn.as_ref().ok_or_else(gone)?;
            let stmt = conn
                .prepare_cached(
                    "INSERT INTO checkpoint (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .await?;
            conn.execute(&stmt, &[&key, &value]).await?;
            Ok(())
        })
    }

    fn commit(mut self: Box<Self>) -> Result<TxId, StoreError> {
        self.run(async |s| {
            s.flush().await?;
            let conn = s.conn.as_ref().ok_or_else(gone)?;
            if !s.changed {
                conn.batch_execute("COMMIT").await?;
                return Ok(());
            }
            // The feed position, in commit order (module documentation): lock, draw, commit,
            // sent together; the lock is released once the commit is visible.
            let lock = conn
                .prepare_cached("SELECT pg_advisory_xact_lock($1)")
                .await?;
            let position = conn
                .prepare_cached("UPDATE tx_log SET pos = nextval('feed_seq') WHERE tx = $1")
                .await?;
            let (_, _, ()) = futures_util::future::try_join3(
                conn.execute(&lock, &[&FEED_LOCK]),
                conn.execute(&position, &[&s.tx]),
                conn.batch_execute("COMMIT"),
            )
            .await?;
            Ok(())
        })?;
        // Committed: nothing left for `drop` to roll back.
        self.conn = None;
        Ok(self.tx)
    }
}
