//! Schema migrations (forward only) and rebuilding the search index from stored bodies.

use rusqlite::{Connection, OptionalExtension, params};

use super::{codec, index_rows, schema};
use crate::error::StoreError;
use crate::index::keys::hash;
use crate::index::{IndexEntry, extract_entries};

/// An index row with its tenant and resource.
type TenantRow = (i64, (i64, IndexEntry));

/// Resources re-extracted per reindex transaction.
const REINDEX_BATCH: i64 = 5_000;

fn meta(conn: &Connection, key: &str) -> Result<Option<i64>, StoreError> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(None);
    }
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
        .optional()?;
    v.map(|v| {
        v.parse()
            .map_err(|_| StoreError::Corrupt(format!("meta {key} is not a number: {v}")))
    })
    .transpose()
}

fn set_meta(conn: &Connection, key: &str, value: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        params![key, value.to_string()],
    )?;
    Ok(())
}

/// Brings the schema to `SCHEMA_VERSION` (refusing a newer one) and says whether the search
/// index must be rebuilt.
pub(crate) fn migrate(conn: &Connection) -> Result<bool, StoreError> {
    let found = meta(conn, "schema_version")?;
    match found {
        Some(v) if v > schema::SCHEMA_VERSION => {
            return Err(StoreError::Database(format!(
                "data directory has schema version {v}, newer than this medicus ({}); upgrade medicus",
                schema::SCHEMA_VERSION
            )));
        }
        Some(1) => migrate_v1_to_v2(conn)?,
        // 2 → 3 and 3 → 4 add tables only: `SCHEMA` below creates them.
        _ => {}
    }
    conn.execute_batch(schema::SCHEMA)?;
    if found.is_none() {
        // A new store: its (empty) index is current.
        set_meta(conn, "index_version", schema::INDEX_VERSION)?;
    }
    set_meta(conn, "schema_version", schema::SCHEMA_VERSION)?;
    Ok(meta(conn, "index_version")? != Some(schema::INDEX_VERSION))
}

/// Version 1 had no id hash on resources and other clustering of two index tables: add the
/// hash, and drop the index tables (the reindex that follows recreates and fills them).
fn migrate_v1_to_v2(conn: &Connection) -> Result<(), StoreError> {
    tracing::info!("migrating the store schema from version 1 to 2");
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        conn.execute_batch(
            "ALTER TABLE resource ADD COLUMN idh INTEGER NOT NULL DEFAULT 0;
             DROP INDEX IF EXISTS resource_by_id;",
        )?;
        {
            let mut select = conn.prepare("SELECT rid, id FROM resource")?;
            let mut update = conn.prepare("UPDATE resource SET idh = ?2 WHERE rid = ?1")?;
            let mut rows = select.query([])?;
            while let Some(r) = rows.next()? {
                let (rid, id): (i64, String) = (r.get(0)?, r.get(1)?);
                update.execute(params![rid, hash(&id)])?;
            }
        }
        for table in schema::INDEX_TABLES.iter().chain(&["fts"]) {
            conn.execute_batch(&format!("DROP TABLE IF EXISTS {table}"))?;
        }
        set_meta(conn, "index_version", 0)?;
        set_meta(conn, "schema_version", 2)?;
        Ok::<_, StoreError>(())
    })();
    match result {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Rebuilds every index row from the current version of each live resource, in batches; a
/// crash part-way leaves `index_version` stale, so the next open starts over.
pub(crate) fn reindex(
    conn: &Connection,
    type_name: &dyn Fn(i64) -> Option<&'static str>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, StoreError> {
    set_meta(conn, "index_version", 0)?;
    for table in schema::INDEX_TABLES {
        conn.execute_batch(&format!("DELETE FROM {table}"))?;
    }
    conn.execute_batch("INSERT INTO fts (fts) VALUES ('delete-all')")?;
    let total: i64 =
        conn.query_row("SELECT count(*) FROM resource WHERE deleted = 0", [], |r| {
            r.get(0)
        })?;
    let total = u64::try_from(total).unwrap_or(0);
    let defs = medicus_fhir::r4();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut after, mut done) = (0i64, 0u64);
    loop {
        let mut batch: Vec<(i64, i64, &'static str, Vec<u8>)> = Vec::new();
        {
            let mut stmt = conn.prepare_cached(
                "SELECT r.rid, r.tenant, r.rtype, v.body FROM resource r
                 JOIN version v ON v.rid = r.rid AND v.version = r.version
                 WHERE r.rid > ?1 AND r.deleted = 0 ORDER BY r.rid LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after, REINDEX_BATCH])?;
            while let Some(r) = rows.next()? {
                let rid: i64 = r.get(0)?;
                after = rid;
                let Some(rt) = type_name(r.get(2)?) else {
                    continue;
                };
                if let Some(body) = r.get::<_, Option<Vec<u8>>>(3)? {
                    batch.push((rid, r.get(1)?, rt, body));
                }
            }
        }
        if batch.is_empty() {
            break;
        }
        // Decompression and FHIRPath extraction dominate: spread them over the cores.
        let chunk = batch.len().div_ceil(threads);
        let extracted: Vec<Result<Vec<TenantRow>, StoreError>> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        let mut rows = Vec::new();
                        for (rid, tenant, rt, blob) in part {
                            let body = codec::decode(blob)?;
                            for e in extract_entries(defs, rt, &body) {
                                rows.push((*tenant, (*rid, e)));
                            }
                        }
                        Ok(rows)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(StoreError::Corrupt("index extraction panicked".into()))
                    })
                })
                .collect()
        });
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let written = (|| {
            for part in extracted {
                let mut rows = part?;
                rows.sort_unstable_by(|a, b| {
                    a.0.cmp(&b.0)
                        .then_with(|| index_rows::primary_key_order(&a.1, &b.1))
                });
                for (tenant, (rid, e)) in &rows {
                    index_rows::insert_one(conn, *tenant, *rid, e)?;
                }
            }
            Ok::<_, StoreError>(())
        })();
        match written {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        done += batch.len() as u64;
        progress(done, total);
    }
    set_meta(conn, "index_version", schema::INDEX_VERSION)?;
    Ok(done)
}
