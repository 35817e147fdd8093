//! Reads shared by read and write sessions (a write session reads through its own connection so
//! that it sees its uncommitted writes).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, codec};
use crate::api::{
    Change, HistoryCursor, HistoryPage, HistoryQuery, HistoryScope, ResourceVersion, TxId,
};
use crate::error::StoreError;
use crate::index::keys::hash;

/// The current row of a logical resource.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CurrentRow {
    pub rid: i64,
    pub version: i64,
    pub deleted: bool,
}

pub(crate) fn current_row(
    conn: &Connection,
    tenant: i64,
    rtype: i64,
    id: &str,
) -> Result<Option<CurrentRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT rid, version, deleted FROM resource WHERE tenant = ?1 AND rtype = ?2 AND idh = ?4 AND id = ?3",
    )?;
    stmt.query_row(params![tenant, rtype, id, hash(id)], |r| {
        Ok(CurrentRow {
            rid: r.get(0)?,
            version: r.get(1)?,
            deleted: r.get(2)?,
        })
    })
    .optional()
    .map_err(Into::into)
}

pub(crate) fn body_of(
    conn: &Connection,
    rid: i64,
    version: i64,
) -> Result<Option<serde_json::Value>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT body FROM version WHERE rid = ?1 AND version = ?2")?;
    let blob: Option<Option<Vec<u8>>> = stmt
        .query_row(params![rid, version], |r| r.get(0))
        .optional()?;
    blob.flatten().map(|b| codec::decode(&b)).transpose()
}

fn decode_body(blob: Option<Vec<u8>>) -> Result<Option<serde_json::Value>, StoreError> {
    blob.map(|b| codec::decode(&b)).transpose()
}

pub(crate) fn read(
    store: &SqliteStore,
    conn: &Connection,
    tenant: i64,
    rtype: &str,
    id: &str,
) -> Result<Option<ResourceVersion>, StoreError> {
    let Some(code) = store.type_code(rtype) else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT r.version, v.tx, v.updated_us, v.body FROM resource r JOIN version v ON v.rid = r.rid AND v.version = r.version
         WHERE r.tenant = ?1 AND r.rtype = ?2 AND r.idh = ?4 AND r.id = ?3",
    )?;
    let row = stmt
        .query_row(params![tenant, code, id, hash(id)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<Vec<u8>>>(3)?,
            ))
        })
        .optional()?;
    row.map(|(version, tx, updated, blob)| {
        Ok(ResourceVersion {
            resource_type: rtype.to_owned(),
            id: id.to_owned(),
            version,
            tx,
            last_updated_us: updated,
            body: decode_body(blob)?,
        })
    })
    .transpose()
}

pub(crate) fn vread(
    store: &SqliteStore,
    conn: &Connection,
    tenant: i64,
    rtype: &str,
    id: &str,
    version: i64,
) -> Result<Option<ResourceVersion>, StoreError> {
    let Some(code) = store.type_code(rtype) else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT v.tx, v.updated_us, v.body FROM resource r JOIN version v ON v.rid = r.rid AND v.version = ?4
         WHERE r.tenant = ?1 AND r.rtype = ?2 AND r.idh = ?5 AND r.id = ?3",
    )?;
    let row = stmt
        .query_row(params![tenant, code, id, version, hash(id)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
            ))
        })
        .optional()?;
    row.map(|(tx, updated, blob)| {
        Ok(ResourceVersion {
            resource_type: rtype.to_owned(),
            id: id.to_owned(),
            version,
            tx,
            last_updated_us: updated,
            body: decode_body(blob)?,
        })
    })
    .transpose()
}

/// A version row selected with the columns `HISTORY_COLUMNS`.
fn history_entry(store: &SqliteStore, r: &Row<'_>) -> Result<(ResourceVersion, i64), StoreError> {
    let rtype: i64 = r.get(0)?;
    let entry = ResourceVersion {
        resource_type: store.type_name(rtype)?.to_owned(),
        id: r.get(1)?,
        version: r.get(2)?,
        tx: r.get(3)?,
        last_updated_us: r.get(4)?,
        body: decode_body(r.get(5)?)?,
    };
    Ok((entry, r.get(6)?))
}

const HISTORY_COLUMNS: &str = "v.rtype, r.id, v.version, v.tx, v.updated_us, v.body, v.rid";

pub(crate) fn history(
    store: &SqliteStore,
    conn: &Connection,
    tenant: i64,
    scope: HistoryScope<'_>,
    q: &HistoryQuery,
) -> Result<HistoryPage, StoreError> {
    // Each scope narrows the version table by one of its indexes; the filters are shared.
    let (scope_sql, scope_value): (&str, i64) = match scope {
        HistoryScope::System => ("v.tenant = ?1 AND ?2 = 0", 0),
        HistoryScope::Type(t) => match store.type_code(t) {
            Some(code) => ("v.tenant = ?1 AND v.rtype = ?2", code),
            None => {
                return Ok(HistoryPage {
                    entries: Vec::new(),
                    total: 0,
                    next: None,
                });
            }
        },
        HistoryScope::Instance(t, id) => {
            let row = store
                .type_code(t)
                .map(|code| current_row(conn, tenant, code, id))
                .transpose()?
                .flatten();
            match row {
                Some(row) => ("v.rid = ?2 AND v.tenant = ?1", row.rid),
                None => {
                    return Ok(HistoryPage {
                        entries: Vec::new(),
                        total: 0,
                        next: None,
                    });
                }
            }
        }
    };
    let filters = "(?3 IS NULL OR v.updated_us >= ?3) AND (?4 IS NULL OR v.updated_us <= ?4)";
    let total: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM version v WHERE {scope_sql} AND {filters}"
        ))?
        .query_row(params![tenant, scope_value, q.since_us, q.before_us], |r| {
            r.get(0)
        })?;
    let (cursor_tx, cursor_rid) = q.cursor.map_or((None, None), |c| (Some(c.tx), Some(c.key)));
    let sql = format!(
        "SELECT {HISTORY_COLUMNS} FROM version v JOIN resource r ON r.rid = v.rid
         WHERE {scope_sql} AND {filters}
           AND (?5 IS NULL OR v.tx < ?5 OR (v.tx = ?5 AND v.rid < ?6))
         ORDER BY v.tx DESC, v.rid DESC LIMIT ?7"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let limit = i64::try_from(q.count).unwrap_or(i64::MAX).saturating_add(1);
    let mut rows = stmt.query(params![
        tenant,
        scope_value,
        q.since_us,
        q.before_us,
        cursor_tx,
        cursor_rid,
        limit
    ])?;
    let mut entries = Vec::new();
    let mut keys = Vec::new();
    while let Some(row) = rows.next()? {
        let (entry, rid) = history_entry(store, row)?;
        keys.push(HistoryCursor {
            tx: entry.tx,
            key: rid,
        });
        entries.push(entry);
    }
    let next = if entries.len() > q.count {
        entries.truncate(q.count);
        keys.get(q.count.wrapping_sub(1)).copied()
    } else {
        None
    };
    Ok(HistoryPage {
        entries,
        total: u64::try_from(total).unwrap_or(0),
        next,
    })
}

pub(crate) fn changes(
    store: &SqliteStore,
    conn: &Connection,
    after: TxId,
    limit: usize,
) -> Result<Vec<Change>, StoreError> {
    const SELECT: &str = "SELECT t.tx, tn.name, v.rtype, r.id, v.version, v.body IS NULL, v.vid
         FROM tx_log t
         JOIN version v ON v.tenant = t.tenant AND v.tx = t.tx
         JOIN resource r ON r.rid = v.rid
         JOIN tenant tn ON tn.tid = t.tenant";
    let mut out = Vec::new();
    let mut last_vid = 0;
    let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE t.tx > ?1 ORDER BY t.tx, v.vid LIMIT ?2"
    ))?;
    collect_changes(
        store,
        &mut stmt.query(params![after, limit])?,
        &mut out,
        &mut last_vid,
    )?;
    // A page never ends inside a transaction: a reader continues after the last `tx` it saw, so
    // the rest of that transaction is added here.
    if let Some(last_tx) = out.last().map(|c| c.tx)
        && i64::try_from(out.len()).is_ok_and(|n| n == limit)
    {
        let mut rest = conn.prepare_cached(&format!(
            "{SELECT} WHERE t.tx = ?1 AND v.vid > ?2 ORDER BY v.vid"
        ))?;
        let vid = last_vid;
        collect_changes(
            store,
            &mut rest.query(params![last_tx, vid])?,
            &mut out,
            &mut last_vid,
        )?;
    }
    Ok(out)
}

fn collect_changes(
    store: &SqliteStore,
    rows: &mut rusqlite::Rows<'_>,
    out: &mut Vec<Change>,
    last_vid: &mut i64,
) -> Result<(), StoreError> {
    while let Some(r) = rows.next()? {
        out.push(Change {
            tx: r.get(0)?,
            tenant: r.get(1)?,
            resource_type: store.type_name(r.get(2)?)?.to_owned(),
            id: r.get(3)?,
            version: r.get(4)?,
            deleted: r.get(5)?,
        });
        *last_vid = r.get(6)?;
    }
    Ok(())
}
