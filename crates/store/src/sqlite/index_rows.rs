//! Writing and removing index rows.

use std::cmp::Ordering;

use rusqlite::{Connection, params};

use crate::error::StoreError;
use crate::index::IndexEntry;

/// Inserts one row; a duplicate of a row of the same resource collapses on the primary key.
pub(crate) fn insert_one(
    conn: &Connection,
    tenant: i64,
    rid: i64,
    e: &IndexEntry,
) -> Result<(), StoreError> {
    {
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
            IndexEntry::CompositeRange { param, key, lo, hi } => conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO idx_composite_range (tenant, param, key, lo, hi, rid) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![tenant, param, key, lo, hi, rid])?,
            IndexEntry::UriPrefix { param, prefix, value } => conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO uri_below (tenant, param, prefix, value) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![tenant, param, prefix, value])?,
            IndexEntry::CodeDate { param, code, lo, hi } => conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO idx_code_date (tenant, param, code, lo, hi, rid) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![tenant, param, code, lo, hi, rid])?,
            // The full-text row's rowid is the resource: tenant isolation comes from the resource row.
            IndexEntry::FullText { narrative, content } => conn
                .prepare_cached("INSERT INTO fts (rowid, narrative, content) VALUES (?1, ?2, ?3)")?
                .execute(params![rid, narrative, content])?,
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
                    "DELETE FROM idx_token WHERE tenant = ?1 AND param = ?2 AND code = ?3 AND rid = ?5 AND system = ?4",
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
            IndexEntry::CompositeRange { param, key, lo, hi } => conn
                .prepare_cached(
                    "DELETE FROM idx_composite_range
                     WHERE tenant = ?1 AND param = ?2 AND key = ?3 AND lo = ?4 AND hi = ?5 AND rid = ?6",
                )?
                .execute(params![tenant, param, key, lo, hi, rid])?,
            IndexEntry::CodeDate { param, code, lo, hi } => conn
                .prepare_cached(
                    "DELETE FROM idx_code_date
                     WHERE tenant = ?1 AND param = ?2 AND code = ?3 AND lo = ?4 AND hi = ?5 AND rid = ?6",
                )?
                .execute(params![tenant, param, code, lo, hi, rid])?,
            // A dictionary row may be shared with other resources; it stays.
            IndexEntry::UriPrefix { .. } => 0,
            IndexEntry::FullText { .. } => conn
                .prepare_cached("DELETE FROM fts WHERE rowid = ?1")?
                .execute(params![rid])?,
        };
    }
    Ok(())
}

/// Orders pending rows by table and then by each table's primary key, so a batch inserts into
/// each B-tree in key order (neighbouring pages, fewer page-cache misses) instead of at random.
pub(crate) fn primary_key_order(a: &(i64, IndexEntry), b: &(i64, IndexEntry)) -> Ordering {
    use IndexEntry as E;
    let (ra, ea) = a;
    let (rb, eb) = b;
    match (ea, eb) {
        (
            E::Token {
                param: p1,
                system: s1,
                code: c1,
            },
            E::Token {
                param: p2,
                system: s2,
                code: c2,
            },
        ) => (p1, c1, ra, s1).cmp(&(p2, c2, rb, s2)),
        (
            E::String {
                param: p1,
                normalized: n1,
                ..
            },
            E::String {
                param: p2,
                normalized: n2,
                ..
            },
        ) => (p1, n1, ra).cmp(&(p2, n2, rb)),
        (
            E::Date {
                param: p1,
                lo: l1,
                hi: h1,
            },
            E::Date {
                param: p2,
                lo: l2,
                hi: h2,
            },
        ) => (p1, l1, h1, ra).cmp(&(p2, l2, h2, rb)),
        (
            E::Number {
                param: p1,
                value: v1,
                ..
            },
            E::Number {
                param: p2,
                value: v2,
                ..
            },
        ) => p1.cmp(p2).then(v1.total_cmp(v2)).then(ra.cmp(rb)),
        (
            E::Quantity {
                param: p1,
                code: c1,
                system: s1,
                value: v1,
                ..
            },
            E::Quantity {
                param: p2,
                code: c2,
                system: s2,
                value: v2,
                ..
            },
        ) => (p1, c1, s1)
            .cmp(&(p2, c2, s2))
            .then(v1.total_cmp(v2))
            .then(ra.cmp(rb)),
        (
            E::Reference {
                param: p1,
                target_type: t1,
                target: g1,
            },
            E::Reference {
                param: p2,
                target_type: t2,
                target: g2,
            },
        ) => (p1, g1, ra, t1).cmp(&(p2, g2, rb, t2)),
        (
            E::Uri {
                param: p1,
                value: v1,
            },
            E::Uri {
                param: p2,
                value: v2,
            },
        ) => (p1, v1, ra).cmp(&(p2, v2, rb)),
        (E::Composite { param: p1, key: k1 }, E::Composite { param: p2, key: k2 }) => {
            (p1, k1, ra).cmp(&(p2, k2, rb))
        }
        (E::FullText { .. }, E::FullText { .. }) => ra.cmp(rb),
        (
            E::CompositeRange {
                param: p1,
                key: k1,
                lo: l1,
                hi: h1,
            },
            E::CompositeRange {
                param: p2,
                key: k2,
                lo: l2,
                hi: h2,
            },
        ) => (p1, k1)
            .cmp(&(p2, k2))
            .then(l1.total_cmp(l2))
            .then(h1.total_cmp(h2))
            .then(ra.cmp(rb)),
        (
            E::CodeDate {
                param: p1,
                code: c1,
                lo: l1,
                hi: h1,
            },
            E::CodeDate {
                param: p2,
                code: c2,
                lo: l2,
                hi: h2,
            },
        ) => (p1, c1, l1, h1, ra).cmp(&(p2, c2, l2, h2, rb)),
        (
            E::UriPrefix {
                param: p1,
                prefix: x1,
                value: v1,
            },
            E::UriPrefix {
                param: p2,
                prefix: x2,
                value: v2,
            },
        ) => (p1, x1, v1).cmp(&(p2, x2, v2)),
        _ => table_rank(ea).cmp(&table_rank(eb)),
    }
}

fn table_rank(e: &IndexEntry) -> u8 {
    match e {
        IndexEntry::Token { .. } => 0,
        IndexEntry::String { .. } => 1,
        IndexEntry::Date { .. } => 2,
        IndexEntry::Number { .. } => 3,
        IndexEntry::Quantity { .. } => 4,
        IndexEntry::Reference { .. } => 5,
        IndexEntry::Uri { .. } => 6,
        IndexEntry::Composite { .. } => 7,
        IndexEntry::FullText { .. } => 8,
        IndexEntry::CompositeRange { .. } => 9,
        IndexEntry::CodeDate { .. } => 10,
        IndexEntry::UriPrefix { .. } => 11,
    }
}
