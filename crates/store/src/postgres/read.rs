//! Reads shared by read and write sessions (a write session reads through its own connection,
//! after flushing its buffers, so it sees its uncommitted writes).

use deadpool_postgres::ClientWrapper;
use tokio_postgres::Row;

use super::PostgresStore;
use crate::api::{
    Change, HistoryCursor, HistoryPage, HistoryQuery, HistoryScope, ResourceVersion, TxId,
};
use crate::codec;
use crate::error::StoreError;
use crate::index::keys::hash;

/// The current row of a logical resource.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CurrentRow {
    pub rid: i64,
    pub version: i64,
    pub deleted: bool,
}

pub(crate) async fn current_row(
    conn: &ClientWrapper,
    tenant: i32,
    rtype: i32,
    id: &str,
) -> Result<Option<CurrentRow>, StoreError> {
    let stmt = conn
        .prepare_cached(
            "SELECT rid, version, deleted FROM resource
             WHERE tenant = $1 AND rtype = $2 AND idh = $3 AND id = $4",
        )
        .await?;
    let row = conn
        .query_opt(&stmt, &[&tenant, &rtype, &hash(id), &id])
        .await?;
    Ok(row.map(|r| CurrentRow {
        rid: r.get(0),
        version: r.get(1),
        deleted: r.get(2),
    }))
}

fn decode_body(blob: Option<&[u8]>) -> Result<Option<serde_json::Value>, StoreError> {
    blob.map(codec::decode).transpose()
}

pub(crate) async fn read(
    store: &PostgresStore,
    conn: &ClientWrapper,
    tenant: i32,
    rtype: &str,
    id: &str,
) -> Result<Option<ResourceVersion>, StoreError> {
    let Some(code) = store.type_code(rtype) else {
        return Ok(None);
    };
    let stmt = conn
        .prepare_cached(
            "SELECT r.version, v.tx, v.updated_us, v.body FROM resource r
             JOIN version v ON v.tenant = r.tenant AND v.rid = r.rid AND v.version = r.version
             WHERE r.tenant = $1 AND r.rtype = $2 AND r.idh = $3 AND r.id = $4",
        )
        .await?;
    let row = conn
        .query_opt(&stmt, &[&tenant, &code, &hash(id), &id])
        .await?;
    row.map(|r| {
        Ok(ResourceVersion {
            resource_type: rtype.to_owned(),
            id: id.to_owned(),
            version: r.get(0),
            tx: r.get(1),
            last_updated_us: r.get(2),
            body: decode_body(r.get(3))?,
        })
    })
    .transpose()
}

pub(crate) async fn vread(
    store: &PostgresStore,
    conn: &ClientWrapper,
    tenant: i32,
    rtype: &str,
    id: &str,
    version: i64,
) -> Result<Option<ResourceVersion>, StoreError> {
    let Some(code) = store.type_code(rtype) else {
        return Ok(None);
    };
    let stmt = conn
        .prepare_cached(
            "SELECT v.tx, v.updated_us, v.body FROM resource r
             JOIN version v ON v.tenant = r.tenant AND v.rid = r.rid AND v.version = $5
             WHERE r.tenant = $1 AND r.rtype = $2 AND r.idh = $3 AND r.id = $4",
        )
        .await?;
    let row = conn
        .query_opt(&stmt, &[&tenant, &code, &hash(id), &id, &version])
        .await?;
    row.map(|r| {
        Ok(ResourceVersion {
            resource_type: rtype.to_owned(),
            id: id.to_owned(),
            version,
            tx: r.get(0),
            last_updated_us: r.get(1),
            body: decode_body(r.get(2))?,
        })
    })
    .transpose()
}

fn empty_page() -> HistoryPage {
    HistoryPage {
        entries: Vec::new(),
        total: 0,
        next: None,
    }
}

pub(crate) async fn history(
    store: &PostgresStore,
    conn: &ClientWrapper,
    tenant: i32,
    scope: HistoryScope<'_>,
    q: &HistoryQuery,
) -> Result<HistoryPage, StoreError> {
    // Each scope narrows the version table by one of its indexes; the filters are shared.
    let (scope_sql, scope_value): (&str, i64) = match scope {
        HistoryScope::System => ("v.tenant = $1 AND $2::bigint = 0", 0),
        HistoryScope::Type(t) => match store.type_code(t) {
            Some(code) => ("v.tenant = $1 AND v.rtype = $2::bigint", i64::from(code)),
            None => return Ok(empty_page()),
        },
        HistoryScope::Instance(t, id) => {
            let row = match store.type_code(t) {
                Some(code) => current_row(conn, tenant, code, id).await?,
                None => None,
            };
            match row {
                Some(row) => ("v.tenant = $1 AND v.rid = $2::bigint", row.rid),
                None => return Ok(empty_page()),
            }
        }
    };
    let filters =
        "($3::bigint IS NULL OR v.updated_us >= $3) AND ($4::bigint IS NULL OR v.updated_us <= $4)";
    let count = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM version v WHERE {scope_sql} AND {filters}"
        ))
        .await?;
    let total: i64 = conn
        .query_one(&count, &[&tenant, &scope_value, &q.since_us, &q.before_us])
        .await?
        .get(0);
    let (cursor_tx, cursor_rid) = q.cursor.map_or((None, None), |c| (Some(c.tx), Some(c.key)));
    let page = conn
        .prepare_cached(&format!(
            "SELECT v.rtype, r.id, v.version, v.tx, v.updated_us, v.body, v.rid
             FROM version v JOIN resource r ON r.tenant = v.tenant AND r.rid = v.rid
             WHERE {scope_sql} AND {filters}
               AND ($5::bigint IS NULL OR v.tx < $5 OR (v.tx = $5 AND v.rid < $6::bigint))
             ORDER BY v.tx DESC, v.rid DESC LIMIT $7"
        ))
        .await?;
    let limit = i64::try_from(q.count).unwrap_or(i64::MAX).saturating_add(1);
    let rows = conn
        .query(
            &page,
            &[
                &tenant,
                &scope_value,
                &q.since_us,
                &q.before_us,
                &cursor_tx,
                &cursor_rid,
                &limit,
            ],
        )
        .await?;
    let mut entries = Vec::with_capacity(rows.len());
    let mut keys = Vec::with_capacity(rows.len());
    for r in &rows {
        let entry = ResourceVersion {
            resource_type: store.type_name(r.get(0))?.to_owned(),
            id: r.get(1),
            version: r.get(2),
            tx: r.get(3),
            last_updated_us: r.get(4),
            body: decode_body(r.get(5))?,
        };
        keys.push(HistoryCursor {
            tx: entry.tx,
            key: r.get(6),
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

const CHANGE_COLUMNS: &str = "SELECT t.pos, tn.name, v.rtype, r.id, v.version, v.body IS NULL
     FROM tx_log t
     JOIN version v ON v.tenant = t.tenant AND v.tx = t.tx
     JOIN resource r ON r.tenant = v.tenant AND r.rid = v.rid
     JOIN tenant tn ON tn.tid = t.tenant";

fn change(store: &PostgresStore, r: &Row) -> Result<Change, StoreError> {
    Ok(Change {
        tx: r.get(0),
        tenant: r.get(1),
        resource_type: store.type_name(r.get(2))?.to_owned(),
        id: r.get(3),
        version: r.get(4),
        deleted: r.get(5),
    })
}

/// Committed changes with a feed position after `after`, oldest first: at most `limit`, and never
/// part of a write session (resuming after the last position returned must not skip the rest of
/// its session); a single session with more than `limit` changes comes whole.
///
/// Positions are taken at commit under `FEED_LOCK`, so every position below a visible one is
/// visible too, or belongs to a session that rolled back and never will be (see the module
/// documentation of `postgres`).
pub(crate) async fn changes(
    store: &PostgresStore,
    conn: &ClientWrapper,
    after: TxId,
    limit: usize,
) -> Result<Vec<Change>, StoreError> {
    let stmt = conn
        .prepare_cached(&format!(
            "{CHANGE_COLUMNS} WHERE t.pos > $1 ORDER BY t.pos, v.rid, v.version LIMIT $2"
        ))
        .await?;
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let rows = conn.query(&stmt, &[&after, &fetch]).await?;
    let mut out = rows
        .iter()
        .map(|r| change(store, r))
        .collect::<Result<Vec<_>, _>>()?;
    if out.len() <= limit {
        return Ok(out);
    }
    let cut = out[limit].tx;
    out.truncate(limit);
    let Some(first_of_cut) = out.iter().position(|c| c.tx == cut) else {
        return Ok(out);
    };
    if first_of_cut > 0 {
        out.truncate(first_of_cut);
        return Ok(out);
    }
    // The first session alone has more than `limit` changes.
    let stmt = conn
        .prepare_cached(&format!(
            "{CHANGE_COLUMNS} WHERE t.pos = $1 ORDER BY v.rid, v.version"
        ))
        .await?;
    conn.query(&stmt, &[&cut])
        .await?
        .iter()
        .map(|r| change(store, r))
        .collect()
}
