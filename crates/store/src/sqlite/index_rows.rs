//! Writing and removing index rows of one resource.

use rusqlite::{Connection, params};

use crate::error::StoreError;
use crate::index::IndexEntry;

/// Inserts the rows; duplicates of one resource collapse on the primary key.
pub(crate) fn insert(
    conn: &Connection,
    tenant: i64,
    rid: i64,
    entries: &[IndexEntry],
) -> Result<(), StoreError> {
    for e in entries {
        match e {
            IndexEntry::Token { param, system, code } => conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO idx_token (tenant, param, code, system, rid) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![tenant, param, code, system, rid])?,
            IndexEntry::String { param, normalized, exact } => conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO idx_string (tenant, param, value, rid, exact) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![tenant, param, normalized, rid, exact])?,
            IndexEntry::Date { param, lo, hi } => conn
                .prepare_cached("INSERT OR IGNORE INTO idx_date (tenant, param, lo, hi, rid) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![tenant, param, lo, hi, rid])?,
            IndexEntry::Number { param, value, lo, hi } => conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO idx_number (tenant, param, value, rid, lo, hi) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![tenant, param, value, rid, lo, hi])?,
            IndexEntry::Quantity { param, system, code, value, lo, hi } => conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO idx_quantity (tenant, param, code, system, value, rid, lo, hi)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![tenant, param, code, system, value, rid, lo, hi])?,
            IndexEntry::Reference { param, target_type, target } => conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO idx_reference (tenant, param, target, target_type, rid) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![tenant, param, target, target_type, rid])?,
            IndexEntry::Uri { param, value } => conn
                .prepare_cached("INSERT OR IGNORE INTO idx_uri (tenant, param, value, rid) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![tenant, param, value, rid])?,
            IndexEntry::Composite { param, key } => conn
                .prepare_cached("INSERT OR IGNORE INTO idx_composite (tenant, param, key, rid) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![tenant, param, key, rid])?,
        };
    }
    Ok(())
}

/// Removes the rows of a previous version, recomputed from its body (so no per-resource
/// secondary index is needed).
pub(crate) fn remove(
    conn: &Connection,
    tenant: i64,
    rid: i64,
    entries: &[IndexEntry],
) -> Result<(), StoreError> {
    for e in entries {
        match e {
            IndexEntry::Token { param, system, code } => conn
                .prepare_cached(
                    "DELETE FROM idx_token WHERE tenant = ?1 AND param = ?2 AND code = ?3 AND system = ?4 AND rid = ?5",
                )?
                .execute(params![tenant, param, code, system, rid])?,
            IndexEntry::String { param, normalized, .. } => conn
                .prepare_cached("DELETE FROM idx_string WHERE tenant = ?1 AND param = ?2 AND value = ?3 AND rid = ?4")?
                .execute(params![tenant, param, normalized, rid])?,
            IndexEntry::Date { param, lo, hi } => conn
                .prepare_cached(
                    "DELETE FROM idx_date WHERE tenant = ?1 AND param = ?2 AND lo = ?3 AND hi = ?4 AND rid = ?5",
                )?
                .execute(params![tenant, param, lo, hi, rid])?,
            IndexEntry::Number { param, value, .. } => conn
                .prepare_cached("DELETE FROM idx_number WHERE tenant = ?1 AND param = ?2 AND value = ?3 AND rid = ?4")?
                .execute(params![tenant, param, value, rid])?,
            IndexEntry::Quantity { param, system, code, value, .. } => conn
                .prepare_cached(
                    "DELETE FROM idx_quantity
                     WHERE tenant = ?1 AND param = ?2 AND code = ?3 AND system = ?4 AND value = ?5 AND rid = ?6",
                )?
                .execute(params![tenant, param, code, system, value, rid])?,
            IndexEntry::Reference { param, target_type, target } => conn
                .prepare_cached(
                    "DELETE FROM idx_reference
                     WHERE tenant = ?1 AND param = ?2 AND target = ?3 AND target_type = ?4 AND rid = ?5",
                )?
                .execute(params![tenant, param, target, target_type, rid])?,
            IndexEntry::Uri { param, value } => conn
                .prepare_cached("DELETE FROM idx_uri WHERE tenant = ?1 AND param = ?2 AND value = ?3 AND rid = ?4")?
                .execute(params![tenant, param, value, rid])?,
            IndexEntry::Composite { param, key } => conn
                .prepare_cached("DELETE FROM idx_composite WHERE tenant = ?1 AND param = ?2 AND key = ?3 AND rid = ?4")?
                .execute(params![tenant, param, key, rid])?,
        };
    }
    Ok(())
}
