//! What the benchmarks ask a PostgreSQL server directly, beside the store: how many resources a
//! tenant holds (to decide whether a kept store can be reused), how large the tenant's tables
//! are, `VACUUM (ANALYZE)` after a bulk load, and the server's version and settings for the
//! report. It reads the store's documented schema (ARCHITECTURE.md, "Storage layout
//! (PostgreSQL)"): `tenant (tid, name)`, `resource (tenant, deleted, …)` and one partition
//! `{table}_t{tid}` of every partitioned table per tenant.

use tokio_postgres::Client;

use crate::BenchError;

/// Settings that decide what a figure means (durability, memory, checkpoints, planner).
const SETTINGS: &[&str] = &[
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_level",
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "max_wal_size",
    "checkpoint_timeout",
    "random_page_cost",
    "jit",
    "max_connections",
];

/// Runs `f` on a connection of its own, on a thread and current-thread runtime of its own:
/// callers may be on a thread that drives async code, where blocking on a runtime panics.
fn with_client<T: Send>(
    url: &str,
    f: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error> + Send,
) -> Result<T, BenchError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (url, tls) = medicus_store::postgres::tls::split_url(url)?;
            let tls = medicus_store::postgres::tls::connector(&tls)?;
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, tls)
                    .await
                    .map_err(store_error)?;
                let driver = tokio::spawn(conn);
                let result = f(&client).await.map_err(store_error);
                drop(client);
                let _ = driver.await;
                result
            })
        })
        .join()
        .map_err(|_| BenchError::Postgres("the PostgreSQL helper thread panicked".into()))?
    })
}

/// The store's own mapping of PostgreSQL errors (server message and SQLSTATE, unavailable vs.
/// other).
fn store_error(e: tokio_postgres::Error) -> BenchError {
    BenchError::Store(medicus_store::StoreError::from(e))
}

/// The tenant's id, `None` when the database has no medicus schema yet or no such tenant.
async fn tenant_id(client: &Client, tenant: &str) -> Result<Option<i32>, tokio_postgres::Error> {
    let has_schema: bool = client
        .query_one("SELECT to_regclass('tenant') IS NOT NULL", &[])
        .await?
        .get(0);
    if !has_schema {
        return Ok(None);
    }
    Ok(client
        .query_opt("SELECT tid FROM tenant WHERE name = $1", &[&tenant])
        .await?
        .map(|r| r.get(0)))
}

/// The tenant's partitions (tables, not their indexes).
async fn partitions(client: &Client, tid: i32) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i
               JOIN pg_class c ON c.oid = i.inhrelid
               JOIN pg_class p ON p.oid = i.inhparent
             WHERE c.relkind = 'r' AND p.relkind = 'p' AND c.relname = p.relname || '_t' || $1
             ORDER BY 1",
            &[&tid.to_string()],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Current (not deleted) resources of `tenant`; 0 when the database or tenant is new.
pub fn tenant_resources(url: &str, tenant: &str) -> Result<u64, BenchError> {
    with_client(url, async |client| {
        let Some(tid) = tenant_id(client, tenant).await? else {
            return Ok(0);
        };
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM resource WHERE tenant = $1 AND NOT deleted",
                &[&tid],
            )
            .await?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    })
}

/// Bytes of the tenant's tables with their indexes and TOAST (`pg_total_relation_size` of
/// every partition); the WAL and the shared tables (tenants, change feed) are not counted.
pub fn tenant_bytes(url: &str, tenant: &str) -> Result<u64, BenchError> {
    with_client(url, async |client| {
        let Some(tid) = tenant_id(client, tenant).await? else {
            return Ok(0);
        };
        let mut bytes = 0u64;
        for table in partitions(client, tid).await? {
            let n: i64 = client
                .query_one(
                    "SELECT pg_total_relation_size(to_regclass(quote_ident($1)))",
                    &[&table],
                )
                .await?
                .get(0);
            bytes += u64::try_from(n).unwrap_or(0);
        }
        Ok(bytes)
    })
}

/// `VACUUM (ANALYZE)` of each of the tenant's partitions: after a bulk load this sets the
/// visibility map (index-only scans) and gives the planner statistics, as autovacuum would
/// some time later.
pub fn vacuum_analyze(url: &str, tenant: &str) -> Result<(), BenchError> {
    with_client(url, async |client| {
        let Some(tid) = tenant_id(client, tenant).await? else {
            return Ok(());
        };
        for table in partitions(client, tid).await? {
            // One statement per call: VACUUM cannot run in the implicit transaction of a
            // multi-statement string. Names come from the catalog; quoted anyway.
            client
                .batch_execute(&format!(
                    "VACUUM (ANALYZE) \"{}\"",
                    table.replace('"', "\"\"")
                ))
                .await?;
        }
        Ok(())
    })
}

/// `PostgreSQL 15.14; fsync=on, …` and the database size, for the report's notes.
pub fn describe_server(url: &str) -> Result<String, BenchError> {
    with_client(url, async |client| {
        let version: String = client.query_one("SHOW server_version", &[]).await?.get(0);
        let names: Vec<&str> = SETTINGS.to_vec();
        let rows = client
            .query(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY($1)",
                &[&names],
            )
            .await?;
        let mut settings = Vec::with_capacity(SETTINGS.len());
        for name in SETTINGS {
            if let Some(row) = rows.iter().find(|r| r.get::<_, &str>(0) == *name) {
                settings.push(format!("{name}={}", row.get::<_, String>(1)));
            }
        }
        let db_bytes: i64 = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?
            .get(0);
        Ok(format!(
            "PostgreSQL {version}; {}; database size {:.1} MB",
            settings.join(", "),
            db_bytes as f64 / 1e6
        ))
    })
}

/// A database URL for messages: `postgres://user:***@host/db`, never the password.
pub fn describe_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_url;

    #[test]
    fn urls_in_messages_hide_the_password() {
        assert_eq!(
            describe_url("postgres://alice:secret@db:5432/medicus?x=1"),
            "postgres://alice:***@db:5432/medicus?x=1"
        );
        assert_eq!(
            describe_url("postgres://alice@db/m"),
            "postgres://alice@db/m"
        );
        assert_eq!(describe_url("/var/lib/medicus"), "/var/lib/medicus");
    }
}
