//! Throwaway databases on a PostgreSQL server: every test (and benchmark) that runs against
//! PostgreSQL gets a database of its own, dropped when it ends, so runs never see each other's
//! data and need no cleanup.

use std::hash::{BuildHasher, Hasher};

use crate::error::StoreError;

/// The environment variable naming the server the test suites run against (a `postgres://` URL).
pub const TEST_SERVER_ENV: &str = "MEDICUS_TEST_DATABASE";

/// A database created on `server` and dropped (forcibly) when this value is dropped.
#[derive(Debug)]
pub struct ScratchDatabase {
    server: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates a database with a random name on the server `server_url` (whose own database is
    /// used only to run `CREATE DATABASE`).
    pub fn create(server_url: &str) -> Result<ScratchDatabase, StoreError> {
        let name = format!("medicus_scratch_{}", random_suffix());
        run(
            server_url,
            &format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"),
        )?;
        Ok(ScratchDatabase {
            url: with_database(server_url, &name),
            server: server_url.to_owned(),
            name,
        })
    }

    /// A scratch database on the server in `MEDICUS_TEST_DATABASE`, `None` when it is unset.
    pub fn from_env() -> Result<Option<ScratchDatabase>, StoreError> {
        match std::env::var(TEST_SERVER_ENV) {
            Ok(server) if !server.trim().is_empty() => ScratchDatabase::create(&server).map(Some),
            _ => Ok(None),
        }
    }

    /// The URL of the scratch database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Gathers planner statistics (`ANALYZE`) now instead of when autovacuum gets to it: a
    /// test that loads data and then searches must not depend on that timing (without
    /// statistics PostgreSQL can choose plans for nested `_has` that run for minutes).
    pub fn analyze(&self) -> Result<(), StoreError> {
        run(&self.url, "ANALYZE")
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = run(&self.server, &drop) {
            eprintln!("could not drop scratch database {}: {e}", self.name);
        }
    }
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (rest, String::new()),
    };
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    format!("{scheme}://{authority}/{name}{query}")
}

/// Runs one statement on a connection of its own, on a thread and runtime of its own: callers
/// (a test's `Drop`) may be on a thread that drives async code, where blocking on a runtime
/// panics.
fn run(url: &str, statement: &str) -> Result<(), StoreError> {
    let (url, statement) = (url.to_owned(), statement.to_owned());
    std::thread::spawn(move || run_here(&url, &statement))
        .join()
        .map_err(|_| StoreError::Database("scratch database thread panicked".into()))?
}

fn run_here(url: &str, statement: &str) -> Result<(), StoreError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Database(format!("runtime: {e}")))?;
    let (url, tls) = super::tls::split_url(url)?;
    let tls = super::tls::connector(&tls)?;
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tls).await?;
        let driver = tokio::spawn(conn);
        let result = client.batch_execute(statement).await;
        drop(client);
        let _ = driver.await;
        result.map_err(StoreError::from)
    })
}

fn random_suffix() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5", "x"), "postgres://h:5/x");
    }
}
