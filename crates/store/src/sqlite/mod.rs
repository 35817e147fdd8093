//! The embedded backend: SQLite in WAL mode, one writer, a pool of readers.

mod index_rows;
mod maintenance;
mod objects;
mod platform;
mod read;
mod schema;
mod search;
mod session;

// The body codec is shared with the PostgreSQL backend.
use crate::codec;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::api::{Change, ReadSession, Store, TxId, WriteSession};
use crate::error::StoreError;
use crate::tenant::validate_tenant_id;

pub use session::{SqliteReadSession, SqliteWriteSession};

/// Readers kept open for reuse; more are opened on demand under load.
const MAX_IDLE_READERS: usize = 8;

/// The SQLite store: a data directory holding `medicus.db` (+ WAL).
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    tenants: RwLock<HashMap<String, i64>>,
    /// Resource type name ↔ small integer code, fixed at open (all R4 types are registered then).
    type_codes: HashMap<&'static str, i64>,
    type_names: HashMap<i64, &'static str>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll back),
    // so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Database(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join("medicus.db");
        let writer = open_connection(&path)?;
        // The writer walks every index on every write: a larger page cache keeps big imports from
        // re-reading index pages from disk (readers keep the default from PRAGMAS).
        writer.execute_batch("PRAGMA cache_size = -262144;")?;
        let stale_index = maintenance::migrate(&writer)?;
        let (type_codes, type_names) = register_types(&writer)?;
        let tenants = load_tenants(&writer)?;
        let store = SqliteStore {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            tenants: RwLock::new(tenants),
            type_codes,
            type_names,
        };
        if stale_index {
            tracing::info!("the search index was built by another release: rebuilding it");
            let mut last_log = std::time::Instant::now();
            store.reindex(&mut |done, total| {
                if last_log.elapsed().as_secs() >= 5 {
                    tracing::info!(done, total, "reindexing");
                    last_log = std::time::Instant::now();
                }
            })?;
        }
        Ok(store)
    }

    /// Rebuilds the search index of every tenant from the stored resources (after a release
    /// changed what is indexed); `progress(done, total)` is called after each batch.
    pub fn reindex(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<u64, StoreError> {
        let conn = lock(&self.writer);
        let names = &self.type_names;
        maintenance::reindex(&conn, &|code| names.get(&code).copied(), progress)
    }

    fn tenant_id(&self, tenant: &str) -> Result<i64, StoreError> {
        let cached = self
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .copied();
        if let Some(tid) = cached {
            return Ok(tid);
        }
        // Another process (`medicus admin tenant create`) may have added it since we loaded.
        let reader = self.reader()?;
        let tid: Option<i64> = reader
            .conn()
            .query_row(
                "SELECT tid FROM tenant WHERE name = ?1",
                params![tenant],
                |r| r.get(0),
            )
            .optional()?;
        let tid = tid.ok_or_else(|| StoreError::UnknownTenant(tenant.to_owned()))?;
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_owned(), tid);
        Ok(tid)
    }

    pub(crate) fn type_code(&self, name: &str) -> Option<i64> {
        self.type_codes.get(name).copied()
    }

    pub(crate) fn type_name(&self, code: i64) -> Result<&'static str, StoreError> {
        self.type_names
            .get(&code)
            .copied()
            .ok_or_else(|| StoreError::Corrupt(format!("unknown type code {code}")))
    }

    fn reader(&self) -> Result<PooledReader<'_>, StoreError> {
        let conn = match lock(&self.readers).pop() {
            Some(c) => c,
            None => open_connection(&self.path)?,
        };
        Ok(PooledReader {
            store: self,
            conn: Some(conn),
        })
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch(schema::PRAGMAS)?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

type TypeMaps = (HashMap<&'static str, i64>, HashMap<i64, &'static str>);

fn register_types(conn: &Connection) -> Result<TypeMaps, StoreError> {
    let defs = medicus_fhir::r4();
    let mut insert = conn.prepare("INSERT OR IGNORE INTO rtype (name) VALUES (?1)")?;
    for name in defs.resource_types() {
        insert.execute(params![name])?;
    }
    let mut codes = HashMap::new();
    let mut names = HashMap::new();
    let mut stmt = conn.prepare("SELECT code, name FROM rtype")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (code, name) = row?;
        // Types of the loaded definitions are `'static`; names from an older release are kept readable.
        let name: &'static str = match defs.resource_types().iter().find(|t| **t == name) {
            Some(t) => t,
            None => continue,
        };
        codes.insert(name, code);
        names.insert(code, name);
    }
    Ok((codes, names))
}

fn load_tenants(conn: &Connection) -> Result<HashMap<String, i64>, StoreError> {
    let mut stmt = conn.prepare("SELECT name, tid FROM tenant")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    rows.collect::<Result<_, _>>().map_err(Into::into)
}

/// A reader connection that returns to the pool when dropped.
pub(crate) struct PooledReader<'s> {
    store: &'s SqliteStore,
    conn: Option<Connection>,
}

impl PooledReader<'_> {
    pub(crate) fn conn(&self) -> &Connection {
        // Always Some until drop.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("reader used after drop"))
    }
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Never hand an open transaction to the next user.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            let mut pool = lock(&self.store.readers);
            if pool.len() < MAX_IDLE_READERS {
                pool.push(conn);
            }
        }
    }
}

impl Store for SqliteStore {
    fn create_tenant(&self, tenant: &str) -> Result<bool, StoreError> {
        validate_tenant_id(tenant)?;
        let conn = lock(&self.writer);
        let now = session::now_us();
        let inserted = conn.execute(
            "INSERT OR IGNORE INTO tenant (name, created_us) VALUES (?1, ?2)",
            params![tenant, now],
        )?;
        let tid: i64 = conn.query_row(
            "SELECT tid FROM tenant WHERE name = ?1",
            params![tenant],
            |r| r.get(0),
        )?;
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_owned(), tid);
        Ok(inserted == 1)
    }

    fn tenant_exists(&self, tenant: &str) -> Result<bool, StoreError> {
        match self.tenant_id(tenant) {
            Ok(_) => Ok(true),
            Err(StoreError::UnknownTenant(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        let reader = self.reader()?;
        let mut stmt = reader
            .conn()
            .prepare_cached("SELECT name FROM tenant ORDER BY name")?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(names)
    }

    fn read_session(&self, tenant: &str) -> Result<Box<dyn ReadSession + '_>, StoreError> {
        let tenant_id = self.tenant_id(tenant)?;
        Ok(Box::new(SqliteReadSession::new(
            self,
            self.reader()?,
            tenant_id,
        )))
    }

    fn write_session(&self, tenant: &str) -> Result<Box<dyn WriteSession + '_>, StoreError> {
        let tenant_id = self.tenant_id(tenant)?;
        Ok(Box::new(SqliteWriteSession::begin(
            self,
            lock(&self.writer),
            tenant_id,
        )?))
    }

    fn checkpoint(&self, key: &str) -> Result<Option<String>, StoreError> {
        let reader = self.reader()?;
        let mut stmt = reader
            .conn()
            .prepare_cached("SELECT value FROM checkpoint WHERE key = ?1")?;
        stmt.query_row(params![key], |r| r.get(0))
            .optional()
            .map_err(Into::into)
    }

    fn changes(&self, after: TxId, limit: usize) -> Result<Vec<Change>, StoreError> {
        let reader = self.reader()?;
        read::changes(self, reader.conn(), after, limit)
    }
}
