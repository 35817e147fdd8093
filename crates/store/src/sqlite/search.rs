//! The shared SQL search engine (`crate::sql_search`) on a SQLite connection.

use rusqlite::Connection;
use rusqlite::types::{Value as SqlValue, ValueRef};

use super::SqliteStore;
use crate::api::{RawPage, RawResource};
use crate::error::StoreError;
use crate::index::fulltext::fts5_query;
use crate::search::{SearchPage, SearchQuery, SortValue};
use crate::sql_search::{self, Arg, Db, Dialect, FullTextQuery, Row};

pub(crate) static DIALECT: Dialect = Dialect {
    placeholder: |n, _| format!("?{n}"),
    live: |alias| format!("{alias}.deleted = 0"),
    ordered_join: "CROSS JOIN",
    tenant_on_rid_lookups: false,
    order_after_join: false,
    check_fence: "",
    checked_count_limit: u64::MAX,
    batch_probes: false,
    total_in_page: false,
    version_by_type: " INDEXED BY version_by_type",
    fulltext_rows,
    fulltext_check,
};

/// The FTS5 query: words, all required, restricted to the narrative column for `_text`.
fn match_text(q: &FullTextQuery<'_>) -> String {
    let column = q.narrative_only.then_some("narrative");
    // Parsing guarantees at least one word; an empty phrase would match nothing anyway.
    fts5_query(q.words, column).unwrap_or_else(|| "\"\"".to_owned())
}

fn fulltext_rows(
    sql: &mut sql_search::Sql,
    tenant: i64,
    rtype: Option<i64>,
    q: &FullTextQuery<'_>,
) -> String {
    // The full-text table knows no tenant or type: the join to the resource adds both.
    let m = sql.arg(match_text(q));
    let ty = rtype.map_or(String::new(), |code| format!(" AND fr.rtype = {code}"));
    format!(
        "SELECT fts.rowid AS rid FROM fts JOIN resource fr ON fr.rid = fts.rowid
         WHERE fts MATCH {m} AND fr.tenant = {tenant}{ty} AND fr.deleted = 0"
    )
}

fn fulltext_check(
    sql: &mut sql_search::Sql,
    _tenant: i64,
    alias: &str,
    q: &FullTextQuery<'_>,
) -> String {
    let m = sql.arg(match_text(q));
    format!("EXISTS (SELECT 1 FROM fts WHERE fts MATCH {m} AND rowid = {alias}.rid)")
}

/// A connection seen through the store's type codes.
struct SqliteDb<'a> {
    store: &'a SqliteStore,
    conn: &'a Connection,
}

fn to_sqlite(a: &Arg) -> SqlValue {
    match a {
        Arg::Int(i) => SqlValue::Integer(*i),
        Arg::Real(f) => SqlValue::Real(*f),
        Arg::Text(t) => SqlValue::Text(t.clone()),
        Arg::Null => SqlValue::Null,
    }
}

impl Row for rusqlite::Row<'_> {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.get(i)?)
    }

    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.get(i)?)
    }

    fn blob(&self, i: usize) -> Result<Option<&[u8]>, StoreError> {
        Ok(match self.get_ref(i)? {
            ValueRef::Blob(b) => Some(b),
            _ => None,
        })
    }

    fn sort_value(&self, i: usize) -> Result<SortValue, StoreError> {
        Ok(match self.get_ref(i)? {
            ValueRef::Integer(n) => SortValue::Int(n),
            ValueRef::Real(f) => SortValue::Real(f),
            ValueRef::Text(t) => SortValue::Text(String::from_utf8_lossy(t).into_owned()),
            _ => SortValue::Missing,
        })
    }
}

impl Db for SqliteDb<'_> {
    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    fn type_code(&self, resource_type: &str) -> Option<i64> {
        self.store.type_code(resource_type)
    }

    fn type_name(&self, code: i64) -> Result<&'static str, StoreError> {
        self.store.type_name(code)
    }

    fn query(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&dyn Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args.iter().map(to_sqlite)))?;
        while let Some(r) = rows.next()? {
            if !each(r)? {
                break;
            }
        }
        Ok(())
    }
}

pub(crate) fn search(
    store: &SqliteStore,
    conn: &Connection,
    tenant: i64,
    rt: Option<&str>,
    q: &SearchQuery,
) -> Result<SearchPage, StoreError> {
    sql_search::search(&SqliteDb { store, conn }, tenant, rt, q)
}

pub(crate) fn search_raw(
    store: &SqliteStore,
    conn: &Connection,
    tenant: i64,
    rt: Option<&str>,
    q: &SearchQuery,
) -> Result<RawPage, StoreError> {
    sql_search::search_raw(&SqliteDb { store, conn }, tenant, rt, q)
}

pub(crate) fn scan_raw(
    store: &SqliteStore,
    conn: &Connection,
    tenant: i64,
    rt: Option<&str>,
    q: &SearchQuery,
    each: &mut dyn FnMut(RawResource) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    sql_search::scan_raw(&SqliteDb { store, conn }, tenant, rt, q, each)
}
