//! Rebuilding the search index from the stored bodies, when a release changed what is indexed
//! (`index::INDEX_VERSION`).
//!
//! It runs inside the migration transaction, under the migration lock: processes that start at
//! the same time wait for it, and a crash or error leaves the old index and its version as they
//! were (the next start tries again). `TRUNCATE` of the tenant's index partitions holds off
//! readers and writers of those partitions until the commit: a deployment upgrades all its nodes
//! together, as for any migration.

use std::collections::HashMap;

use deadpool_postgres::Object;

use super::index_rows::Rows;
use super::schema::{PARTITIONED, partition};
use crate::codec;
use crate::error::StoreError;
use crate::index::{IndexEntry, extract_entries};

/// Resources decoded and extracted per round.
const BATCH: i64 = 5_000;

/// Every table holding index rows (all partitioned tables but the resources and versions).
fn index_tables() -> impl Iterator<Item = &'static str> {
    PARTITIONED
        .iter()
        .copied()
        .filter(|t| !matches!(*t, "resource" | "version"))
}

/// Rebuilds every tenant's index; returns the number of resources indexed.
pub(crate) async fn reindex(
    conn: &Object,
    type_names: &HashMap<i32, &'static str>,
) -> Result<u64, StoreError> {
    let tenants: Vec<i32> = conn
        .query("SELECT tid FROM tenant ORDER BY tid", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let total: i64 = conn
        .query_one("SELECT count(*) FROM resource WHERE NOT deleted", &[])
        .await?
        .get(0);
    tracing::info!(resources = total, "rebuilding the PostgreSQL search index");
    let started = std::time::Instant::now();
    let mut done = 0u64;
    for tid in tenants {
        let tables: Vec<String> = index_tables().map(|t| partition(t, tid)).collect();
        conn.batch_execute(&format!("TRUNCATE {}", tables.join(", ")))
            .await?;
        let page = conn
            .prepare(
                "SELECT r.rid, r.rtype, v.body FROM resource r
                 JOIN version v ON v.tenant = r.tenant AND v.rid = r.rid AND v.version = r.version
                 WHERE r.tenant = $1 AND NOT r.deleted AND r.rid > $2 ORDER BY r.rid LIMIT $3",
            )
            .await?;
        let mut after = i64::MIN;
        loop {
            let rows = conn.query(&page, &[&tid, &after, &BATCH]).await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = last.get(0);
            let mut batch = Vec::with_capacity(rows.len());
            for r in &rows {
                let (rid, code, body): (i64, i32, Option<Vec<u8>>) = (r.get(0), r.get(1), r.get(2));
                // A type of another release has no definitions here: nothing to index.
                if let (Some(rt), Some(body)) = (type_names.get(&code), body) {
                    batch.push((rid, *rt, body));
                }
            }
            let mut index = Rows::new();
            for (rid, entries) in extract_all(&batch)? {
                for e in entries {
                    index.push(rid, e)?;
                }
            }
            index.write(conn, tid).await?;
            done += rows.len() as u64;
            tracing::info!(done, total, "reindexing");
        }
    }
    tracing::info!(
        resources = done,
        seconds = started.elapsed().as_secs_f64(),
        "search index rebuilt"
    );
    Ok(done)
}

/// Decompression and FHIRPath extraction dominate: spread over the cores.
fn extract_all(
    batch: &[(i64, &'static str, Vec<u8>)],
) -> Result<Vec<(i64, Vec<IndexEntry>)>, StoreError> {
    let defs = medicus_fhir::r4();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = batch.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(rid, rt, blob)| {
                            let body = codec::decode(blob)?;
                            Ok((*rid, extract_entries(defs, rt, &body)))
                        })
                        .collect::<Result<Vec<_>, StoreError>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(batch.len());
        for h in handles {
            let part = h
                .join()
                .map_err(|_| StoreError::Database("index extraction panicked".into()))??;
            out.extend(part);
        }
        Ok(out)
    })
}
