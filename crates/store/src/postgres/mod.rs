//! The PostgreSQL backend: the same contract as SQLite on a server that several medicus processes
//! share.
//!
//! # Runtime and pooling
//! The `Store` trait is synchronous (it is called from `spawn_blocking` threads and CLI threads),
//! the client is async (`tokio-postgres` pooled by `deadpool-postgres`). The store owns a
//! current-thread tokio runtime without threads of its own: every trait method runs its future
//! with `Runtime::block_on` on the calling thread, which then also drives the sockets and the
//! connection tasks. A query thus costs one round trip and no thread hand-over (with a
//! multi-threaded runtime every statement crossed threads twice: a bulk import was a third
//! slower). When several threads call at once, one of them drives the I/O for all and the others
//! wait on their own futures; tokio hands the driver over when it returns. Calling from plain
//! threads and from the blocking threads of any other runtime is allowed, from an async worker
//! thread it is not: callers in async code go through `spawn_blocking`, as for SQLite. A session
//! holds one pooled connection from its start to its end.
//!
//! # Change feed
//! A sequence alone does not order a feed: a session can take number 5, and commit after a
//! reader has already returned 6. So a session takes its feed position when it commits: it
//! takes a transaction-scoped advisory lock (`FEED_LOCK`), draws `nextval('feed_seq')` into its
//! `tx_log` row and commits; PostgreSQL releases the lock only after the commit is durable and
//! visible. Positions are therefore drawn in commit order, and when a reader sees position N,
//! every smaller position is visible too or belongs to a session that rolled back (a gap that
//! stays a gap). A reader that returned N never later sees a commit below N, across any number of
//! processes, and [`Store::changes`] needs no filter. The versions of one resource appear in
//! version order, since the row lock orders their commits.
//!
//! The price: commits of sessions that changed resources are serialised for the time of the
//! commit itself (its WAL flush), across tenants; everything before the commit runs in parallel.
//! Sessions that changed nothing (checkpoints only) take no position and no lock.
//!
//! Versions carry the PostgreSQL transaction id of their session (`tx`, known from its start,
//! returned by `WriteSession::tx`) for history order and cursors; `Change::tx` is the feed
//! position. Both increase, but they are different numbers.
//!
//! # Concurrency
//! Writes lock the resource row (`SELECT … FOR UPDATE`) before they compare its version, so
//! `If-Match` and read-modify-write hold across processes; a create races on the unique key
//! `(tenant, rtype, idh, id)` with `INSERT … ON CONFLICT DO NOTHING`, and the loser updates the
//! winner's row after locking it.
//!
//! # Bulk writes
//! Versions and index rows are buffered in the session and written when the session commits,
//! before anything in the session reads, or when the buffer is large: many rows with binary
//! `COPY … FROM STDIN`, a few with one `INSERT … SELECT FROM unnest(…)` per table, pipelined.

mod index_rows;
mod objects;
mod platform;
mod read;
mod reindex;
mod schema;
mod scratch;
mod search;
mod session;
pub mod tls;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::RwLock;
use std::time::Duration;

use deadpool_postgres::{
    ClientWrapper, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};

use crate::api::{Change, ReadSession, Store, TxId, WriteSession};
use crate::error::StoreError;
use crate::tenant::validate_tenant_id;

pub use schema::SCHEMA_VERSION;
pub use scratch::{ScratchDatabase, TEST_SERVER_ENV};
pub use session::{PostgresReadSession, PostgresWriteSession};

/// Settings of [`PostgresStore::connect`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Most connections this process opens.
    pub pool_size: usize,
    /// Limit for opening one connection, TCP connect and startup together.
    pub connect_timeout: Duration,
    /// How long a session waits for a free pooled connection before failing as unavailable.
    pub acquire_timeout: Duration,
    /// Longest a search may run (PostgreSQL's `statement_timeout` inside its snapshot); a
    /// search stopped by it fails as `StoreError::TooCostly`. Writes are not limited.
    pub search_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(30),
            search_timeout: Duration::from_secs(60),
        }
    }
}

/// True for a URL that names a PostgreSQL database (`postgres://…`, `postgresql://…`).
pub fn is_postgres_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// The PostgreSQL store.
pub struct PostgresStore {
    /// Driven by the threads that call the store; `None` only inside `Drop`, which shuts it
    /// down without blocking (the store may be dropped inside async code).
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// `host:port/dbname`, never the password: for error messages.
    target: String,
    tenants: RwLock<HashMap<String, i32>>,
    type_codes: HashMap<&'static str, i32>,
    type_names: HashMap<i32, &'static str>,
    /// `PostgresOptions::search_timeout` in milliseconds (at least 1: 0 would mean none).
    pub(crate) search_timeout_ms: u128,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`), migrates the schema
    /// forward (refusing a newer one) and registers the resource types.
    pub fn connect(url: &str, opts: PostgresOptions) -> Result<PostgresStore, StoreError> {
        let (url, tls_options) = tls::split_url(url)?;
        let tls = tls::connector(&tls_options)?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("invalid PostgreSQL URL: {e}")))?;
        config.connect_timeout(opts.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("medicus");
        }
        let target = describe(&config);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Database(format!("cannot start the database runtime: {e}")))?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                // A connection the server closed is noticed by its task: the cheap check suffices,
                // and a query on a connection that died unnoticed fails as `Unavailable` once.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(opts.connect_timeout))
            .wait_timeout(Some(opts.acquire_timeout))
            .recycle_timeout(Some(opts.connect_timeout))
            .build()
            .map_err(|e| StoreError::Database(format!("connection pool: {e}")))?;
        let mut store = PostgresStore {
            runtime: Some(runtime),
            pool,
            target,
            tenants: RwLock::new(HashMap::new()),
            type_codes: HashMap::new(),
            type_names: HashMap::new(),
            search_timeout_ms: opts.search_timeout.as_millis().max(1),
        };
        let setup = store.block_on(async {
            let mut conn = store.connection().await?;
            schema::migrate(&mut conn).await
        })?;
        store.type_codes = setup.type_codes;
        store.type_names = setup.type_names;
        *store.tenants.get_mut().unwrap_or_else(|p| p.into_inner()) = setup.tenants;
        Ok(store)
    }

    /// Runs `f` to completion on the store's runtime, on the calling thread.
    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        match &self.runtime {
            Some(runtime) => runtime.block_on(f),
            // Only `Drop` takes the runtime, and nothing runs after it.
            None => unreachable!("the store is used while it is dropped"),
        }
    }

    /// A pooled connection; failing to get one within the timeouts is `Unavailable`.
    pub(crate) async fn connection(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| self.pool_error(e))
    }

    fn pool_error(&self, e: PoolError) -> StoreError {
        let target = &self.target;
        match e {
            PoolError::Timeout(kind) => StoreError::Unavailable(format!(
                "no connection to PostgreSQL at {target} ({kind:?} timed out)"
            )),
            PoolError::Backend(e) => match StoreError::from(e) {
                StoreError::Unavailable(m) => StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL at {target}: {m}"
                )),
                other => other,
            },
            PoolError::Closed => StoreError::Unavailable("the connection pool is closed".into()),
            other => StoreError::Database(format!("connection pool: {other}")),
        }
    }

    fn tenant_id(&self, tenant: &str) -> Result<i32, StoreError> {
        let cached = self
            .tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .copied();
        if let Some(tid) = cached {
            return Ok(tid);
        }
        // Another process may have created it since we loaded the list.
        let tid = self.block_on(async {
            let conn = self.connection().await?;
            let stmt = conn
                .prepare_cached("SELECT tid FROM tenant WHERE name = $1")
                .await?;
            let row = conn.query_opt(&stmt, &[&tenant]).await?;
            Ok::<_, StoreError>(row.map(|r| r.get::<_, i32>(0)))
        })?;
        let tid = tid.ok_or_else(|| StoreError::UnknownTenant(tenant.to_owned()))?;
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_owned(), tid);
        Ok(tid)
    }

    pub(crate) fn type_code(&self, name: &str) -> Option<i32> {
        self.type_codes.get(name).copied()
    }

    pub(crate) fn type_name(&self, code: i32) -> Result<&'static str, StoreError> {
        self.type_names
            .get(&code)
            .copied()
            .ok_or_else(|| StoreError::Corrupt(format!("unknown type code {code}")))
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // `Runtime`'s own drop blocks until its tasks end, which panics inside async code (an
        // `Arc<dyn Store>` often dies in the server's task); the connection tasks need no wait.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `host:port/dbname` of a connection configuration.
fn describe(config: &tokio_postgres::Config) -> String {
    let mut out = String::new();
    for (i, host) in config.get_hosts().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match host {
            tokio_postgres::config::Host::Tcp(h) => out.push_str(h),
            tokio_postgres::config::Host::Unix(p) => out.push_str(&p.display().to_string()),
        }
        if let Some(port) = config.get_ports().get(i).or(config.get_ports().first()) {
            let _ = write!(out, ":{port}");
        }
    }
    if out.is_empty() {
        out.push_str("localhost");
    }
    let _ = write!(
        out,
        "/{}",
        config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
    );
    out
}

/// SQLSTATEs that mean "the server is not there (any more)": connection exceptions (class 08),
/// shutdown and startup (57P01–57P03), too many connections (53300).
/// Server states a client should retry: connection exceptions, shutdown or startup, too many
/// connections, and a transaction chosen as a deadlock victim or failed serialisation (the
/// session is rolled back; repeating the request succeeds).
fn is_unavailable_state(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "40P01" | "40001"
        )
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let mut message = format!("{} ({})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                let _ = write!(message, ": {detail}");
            }
            return if is_unavailable_state(db.code().code()) {
                StoreError::Unavailable(message)
            } else if db.code().code() == "57014" {
                // query_canceled: the statement timeout of a search (or an operator's cancel).
                StoreError::TooCostly(message)
            } else {
                StoreError::Database(message)
            };
        }
        // Without a server error: I/O, a closed connection, a timeout while connecting, or a
        // client-side problem (type mismatch) that is our bug.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        let mut io = false;
        while let Some(s) = source {
            io |= s.is::<std::io::Error>();
            let _ = write!(message, ": {s}");
            source = s.source();
        }
        if e.is_closed() || io || message.contains("timed out") || message.contains("connect") {
            StoreError::Unavailable(message)
        } else {
            StoreError::Database(message)
        }
    }
}

/// Runs `f` in one read-only snapshot (`REPEATABLE READ`), so totals and pages agree.
pub(crate) async fn in_snapshot<T, F, Fut>(conn: &ClientWrapper, f: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    match f().await {
        Ok(v) => {
            conn.batch_execute("COMMIT").await?;
            Ok(v)
        }
        Err(e) => {
            // Never hand a connection in a transaction back to the pool.
            conn.batch_execute("ROLLBACK").await?;
            Err(e)
        }
    }
}

impl Store for PostgresStore {
    fn create_tenant(&self, tenant: &str) -> Result<bool, StoreError> {
        validate_tenant_id(tenant)?;
        let (tid, created) = self.block_on(async {
            let mut conn = self.connection().await?;
            schema::create_tenant(&mut conn, tenant, session::now_us()).await
        })?;
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_owned(), tid);
        Ok(created)
    }

    fn tenant_exists(&self, tenant: &str) -> Result<bool, StoreError> {
        match self.tenant_id(tenant) {
            Ok(_) => Ok(true),
            Err(StoreError::UnknownTenant(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        self.block_on(async {
            let conn = self.connection().await?;
            let stmt = conn
                .prepare_cached("SELECT name FROM tenant ORDER BY name")
                .await?;
            let rows = conn.query(&stmt, &[]).await?;
            Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
        })
    }

    fn read_session(&self, tenant: &str) -> Result<Box<dyn ReadSession + '_>, StoreError> {
        let tenant_id = self.tenant_id(tenant)?;
        let conn = self.block_on(self.connection())?;
        Ok(Box::new(PostgresReadSession::new(self, conn, tenant_id)))
    }

    fn write_session(&self, tenant: &str) -> Result<Box<dyn WriteSession + '_>, StoreError> {
        let tenant_id = self.tenant_id(tenant)?;
        Ok(Box::new(PostgresWriteSession::begin(self, tenant_id)?))
    }

    fn checkpoint(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.block_on(async {
            let conn = self.connection().await?;
            let stmt = conn
                .prepare_cached("SELECT value FROM checkpoint WHERE key = $1")
                .await?;
            let row = conn.query_opt(&stmt, &[&key]).await?;
            Ok(row.map(|r| r.get::<_, String>(0)))
        })
    }

    fn changes(&self, after: TxId, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.block_on(async {
            let conn = self.connection().await?;
            read::changes(self, &conn, after, limit).await
        })
    }

    fn refresh_statistics(&self, tenant: &str) -> Result<(), StoreError> {
        let tid = self.tenant_id(tenant)?;
        self.block_on(async {
            let conn = self.connection().await?;
            for table in schema::PARTITIONED {
                // One statement per call: VACUUM cannot run inside a transaction block, which a
                // multi-statement string would be.
                conn.batch_execute(&format!(
                    "VACUUM (ANALYZE) {}",
                    schema::partition(table, tid)
                ))
                .await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_postgres_urls() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("postgresql://h:5433/db"));
        assert!(is_postgres_url("  POSTGRES://h/db"));
        assert!(!is_postgres_url("/var/lib/medicus"));
        assert!(!is_postgres_url("sqlite:./data"));
    }

    #[test]
    fn description_has_no_password() {
        let config: tokio_postgres::Config = "postgres://alice:secret@db.example:6543/medicus"
            .parse()
            .unwrap();
        let d = describe(&config);
        assert_eq!(d, "db.example:6543/medicus");
        assert!(!d.contains("secret"));
    }

    #[test]
    fn unavailable_states() {
        // Retryable: connection trouble, shutdown, too many connections, deadlock victims and
        // serialisation failures.
        for code in [
            "08006", "08001", "57P01", "57P03", "53300", "40P01", "40001",
        ] {
            assert!(is_unavailable_state(code), "{code}");
        }
        for code in ["23505", "42P01", "XX000"] {
            assert!(!is_unavailable_state(code), "{code}");
        }
    }
}
