//! Index rows on PostgreSQL: buffered per table in columns, written with binary `COPY` (many
//! rows) or one `INSERT … SELECT FROM unnest(…)` per table (a few rows), removed by primary key.

use std::cmp::Ordering;

use deadpool_postgres::ClientWrapper;
use futures_util::future::try_join_all;
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::schema::partition;
use crate::error::StoreError;
use crate::index::IndexEntry;

/// From this many rows of one table on, a flush uses `COPY` instead of an `INSERT`.
pub(crate) const COPY_MIN_ROWS: usize = 256;

/// Full-text rows per `INSERT` (their text can be long).
const FTS_CHUNK: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    I32,
    I64,
    F64,
    Text,
    OptText,
}

/// An index table: its columns after `tenant`, their kinds, and the primary key after `tenant`
/// as column positions in key order.
struct Spec {
    table: &'static str,
    columns: &'static [&'static str],
    kinds: &'static [Kind],
    key: &'static [usize],
    /// Rows belong to one resource: they are removed with it, and a new resource's rows cannot
    /// exist yet, so `COPY` may write them. Dictionary rows (shared by resources) are never
    /// removed and always inserted with `ON CONFLICT DO NOTHING`.
    per_resource: bool,
}

use Kind::{F64, I32, I64, OptText, Text};

const TOKEN: usize = 0;
const STRING: usize = 1;
const DATE: usize = 2;
const NUMBER: usize = 3;
const QUANTITY: usize = 4;
const REFERENCE: usize = 5;
const URI: usize = 6;
const COMPOSITE: usize = 7;
const COMPOSITE_RANGE: usize = 8;
const CODE_DATE: usize = 9;
const URI_BELOW: usize = 10;
const FTS: usize = 11;

/// Same columns and primary keys as `schema::V1` (a test writes every table both ways).
const SPECS: [Spec; 12] = [
    Spec {
        table: "idx_token",
        columns: &["param", "code", "system", "rid"],
        kinds: &[I32, I64, I64, I64],
        per_resource: true,
        key: &[0, 1, 3, 2],
    },
    Spec {
        table: "idx_string",
        columns: &["param", "value", "rid", "exact"],
        kinds: &[I32, Text, I64, OptText],
        per_resource: true,
        key: &[0, 1, 2],
    },
    Spec {
        table: "idx_date",
        columns: &["param", "lo", "hi", "rid"],
        kinds: &[I32, I64, I64, I64],
        per_resource: true,
        key: &[0, 1, 2, 3],
    },
    Spec {
        table: "idx_number",
        columns: &["param", "value", "rid", "lo", "hi"],
        kinds: &[I32, F64, I64, F64, F64],
        per_resource: true,
        key: &[0, 1, 2],
    },
    Spec {
        table: "idx_quantity",
        columns: &["param", "code", "system", "value", "rid", "lo", "hi"],
        kinds: &[I32, I64, I64, F64, I64, F64, F64],
        per_resource: true,
        key: &[0, 1, 2, 3, 4],
    },
    Spec {
        table: "idx_reference",
        columns: &["param", "target", "target_type", "rid"],
        kinds: &[I32, I64, I64, I64],
        per_resource: true,
        key: &[0, 1, 3, 2],
    },
    Spec {
        table: "idx_uri",
        columns: &["param", "value", "rid"],
        kinds: &[I32, I64, I64],
        per_resource: true,
        key: &[0, 1, 2],
    },
    Spec {
        table: "idx_composite",
        columns: &["param", "key", "rid"],
        kinds: &[I32, I64, I64],
        per_resource: true,
        key: &[0, 1, 2],
    },
    Spec {
        table: "idx_composite_range",
        columns: &["param", "key", "lo", "hi", "rid"],
        kinds: &[I32, I64, F64, F64, I64],
        per_resource: true,
        key: &[0, 1, 2, 3, 4],
    },
    Spec {
        table: "idx_code_date",
        columns: &["param", "code", "lo", "hi", "rid"],
        kinds: &[I32, I64, I64, I64, I64],
        per_resource: true,
        key: &[0, 1, 2, 3, 4],
    },
    Spec {
        table: "uri_below",
        columns: &["param", "prefix", "value"],
        kinds: &[I32, I64, I64],
        per_resource: false,
        key: &[0, 1, 2],
    },
    Spec {
        // Written by `insert_fts` (the text becomes a tsvector on the server), never by COPY.
        table: "fts",
        columns: &["rid", "narrative", "content"],
        kinds: &[I64, Text, Text],
        per_resource: true,
        key: &[0],
    },
];

/// One column of buffered rows.
#[derive(Debug, Clone)]
enum Col {
    I32(Vec<i32>),
    I64(Vec<i64>),
    F64(Vec<f64>),
    Text(Vec<String>),
    OptText(Vec<Option<String>>),
}

/// A value pushed into a column.
enum Val {
    I32(i32),
    I64(i64),
    F64(f64),
    Text(String),
    OptText(Option<String>),
}

/// Floats as the database compares them: `-0.0 = 0.0`, and every NaN is one value.
fn canonical(f: f64) -> f64 {
    if f == 0.0 {
        0.0
    } else if f.is_nan() {
        f64::NAN
    } else {
        f
    }
}

/// PostgreSQL text cannot hold NUL characters; a JSON string can (`\u0000`).
fn without_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s
    }
}

/// Text for the full-text index: accents removed (as SQLite's `remove_diacritics`), no NULs;
/// `to_tsvector('simple', …)` lowercases and splits it on the server.
pub(crate) fn fold_text(s: &str) -> String {
    s.nfd()
        .filter(|c| !is_combining_mark(*c) && *c != '\0')
        .collect()
}

impl Col {
    fn new(kind: Kind) -> Col {
        match kind {
            I32 => Col::I32(Vec::new()),
            I64 => Col::I64(Vec::new()),
            F64 => Col::F64(Vec::new()),
            Text => Col::Text(Vec::new()),
            OptText => Col::OptText(Vec::new()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Col::I32(v) => v.len(),
            Col::I64(v) => v.len(),
            Col::F64(v) => v.len(),
            Col::Text(v) => v.len(),
            Col::OptText(v) => v.len(),
        }
    }

    fn push(&mut self, value: Val) -> Result<(), StoreError> {
        match (self, value) {
            (Col::I32(v), Val::I32(x)) => v.push(x),
            (Col::I64(v), Val::I64(x)) => v.push(x),
            (Col::F64(v), Val::F64(x)) => v.push(x),
            (Col::Text(v), Val::Text(x)) => v.push(without_nul(x)),
            (Col::OptText(v), Val::OptText(x)) => v.push(x.map(without_nul)),
            _ => {
                return Err(StoreError::Database(
                    "index row does not match its table".into(),
                ));
            }
        }
        Ok(())
    }

    fn pg_type(&self) -> Type {
        match self {
            Col::I32(_) => Type::INT4,
            Col::I64(_) => Type::INT8,
            Col::F64(_) => Type::FLOAT8,
            Col::Text(_) | Col::OptText(_) => Type::TEXT,
        }
    }

    fn array_cast(&self) -> &'static str {
        match self {
            Col::I32(_) => "int[]",
            Col::I64(_) => "bigint[]",
            Col::F64(_) => "float8[]",
            Col::Text(_) | Col::OptText(_) => "text[]",
        }
    }

    /// Row `i` as a statement parameter. `i` is always below `len()` (positions come from
    /// `0..len()`); an out-of-range position would be a bug, answered with NULL, not a panic.
    fn value(&self, i: usize) -> &(dyn ToSql + Sync) {
        const NULL: Option<i64> = None;
        fn or_null<T: ToSql + Sync>(x: Option<&T>) -> &(dyn ToSql + Sync) {
            match x {
                Some(x) => x,
                None => &NULL,
            }
        }
        match self {
            Col::I32(v) => or_null(v.get(i)),
            Col::I64(v) => or_null(v.get(i)),
            Col::F64(v) => or_null(v.get(i)),
            Col::Text(v) => or_null(v.get(i)),
            Col::OptText(v) => or_null(v.get(i)),
        }
    }

    /// The whole column as an array parameter.
    fn array(&self) -> &(dyn ToSql + Sync) {
        match self {
            Col::I32(v) => v,
            Col::I64(v) => v,
            Col::F64(v) => v,
            Col::Text(v) => v,
            Col::OptText(v) => v,
        }
    }

    fn cmp_at(&self, a: usize, b: usize) -> Ordering {
        match self {
            Col::I32(v) => v.get(a).cmp(&v.get(b)),
            Col::I64(v) => v.get(a).cmp(&v.get(b)),
            Col::F64(v) => match (v.get(a), v.get(b)) {
                (Some(x), Some(y)) => canonical(*x).total_cmp(&canonical(*y)),
                (x, y) => x.is_some().cmp(&y.is_some()),
            },
            // Bytes, like COLLATE "C".
            Col::Text(v) => v
                .get(a)
                .map(String::as_bytes)
                .cmp(&v.get(b).map(String::as_bytes)),
            Col::OptText(v) => v.get(a).cmp(&v.get(b)),
        }
    }
}

/// Buffered rows of one index table.
#[derive(Debug, Clone)]
struct Table {
    spec: usize,
    cols: Vec<Col>,
}

impl Table {
    fn new(spec: usize) -> Table {
        Table {
            spec,
            cols: SPECS[spec].kinds.iter().map(|k| Col::new(*k)).collect(),
        }
    }

    fn spec(&self) -> &'static Spec {
        &SPECS[self.spec]
    }

    fn len(&self) -> usize {
        self.cols.first().map_or(0, Col::len)
    }

    fn push(&mut self, row: Vec<Val>) -> Result<(), StoreError> {
        if row.len() != self.cols.len() {
            return Err(StoreError::Database(
                "index row does not match its table".into(),
            ));
        }
        for (col, value) in self.cols.iter_mut().zip(row) {
            col.push(value)?;
        }
        Ok(())
    }

    /// Row positions in primary-key order without duplicate keys (the first of equal rows
    /// stays, as with SQLite's `INSERT OR IGNORE`): `COPY` has no `ON CONFLICT`, and rows in key
    /// order touch the B-tree pages in order.
    fn key_order(&self) -> Vec<usize> {
        let key = self.spec().key;
        let cmp = |a: usize, b: usize| {
            key.iter()
                .map(|c| self.cols[*c].cmp_at(a, b))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        };
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by(|a, b| cmp(*a, *b));
        order.dedup_by(|later, earlier| cmp(*later, *earlier).is_eq());
        order
    }
}

/// Index rows of any number of resources, per table.
#[derive(Debug, Clone)]
pub(crate) struct Rows {
    tables: Vec<Table>,
}

fn param(p: i64) -> Result<Val, StoreError> {
    i32::try_from(p)
        .map(Val::I32)
        .map_err(|_| StoreError::Database(format!("parameter key {p} exceeds 31 bits")))
}

impl Rows {
    pub(crate) fn new() -> Rows {
        Rows {
            tables: (0..SPECS.len()).map(Table::new).collect(),
        }
    }

    /// Rows buffered over all tables.
    pub(crate) fn len(&self) -> usize {
        self.tables.iter().map(Table::len).sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tables.iter().all(|t| t.len() == 0)
    }

    pub(crate) fn push(&mut self, rid: i64, entry: IndexEntry) -> Result<(), StoreError> {
        use Val::{F64 as F, I64 as L};
        let (table, row) = match entry {
            IndexEntry::Token {
                param: p,
                system,
                code,
            } => (TOKEN, vec![param(p)?, L(code), L(system), L(rid)]),
            IndexEntry::String {
                param: p,
                normalized,
                exact,
            } => (
                STRING,
                vec![
                    param(p)?,
                    Val::Text(normalized),
                    L(rid),
                    Val::OptText(exact),
                ],
            ),
            IndexEntry::Date { param: p, lo, hi } => (DATE, vec![param(p)?, L(lo), L(hi), L(rid)]),
            IndexEntry::Number {
                param: p,
                value,
                lo,
                hi,
            } => (NUMBER, vec![param(p)?, F(value), L(rid), F(lo), F(hi)]),
            IndexEntry::Quantity {
                param: p,
                system,
                code,
                value,
                lo,
                hi,
            } => (
                QUANTITY,
                vec![
                    param(p)?,
                    L(code),
                    L(system),
                    F(value),
                    L(rid),
                    F(lo),
                    F(hi),
                ],
            ),
            IndexEntry::Reference {
                param: p,
                target_type,
                target,
            } => (
                REFERENCE,
                vec![param(p)?, L(target), L(target_type), L(rid)],
            ),
            IndexEntry::Uri { param: p, value } => (URI, vec![param(p)?, L(value), L(rid)]),
            IndexEntry::Composite { param: p, key } => (COMPOSITE, vec![param(p)?, L(key), L(rid)]),
            IndexEntry::CompositeRange {
                param: p,
                key,
                lo,
                hi,
            } => (
                COMPOSITE_RANGE,
                vec![param(p)?, L(key), F(lo), F(hi), L(rid)],
            ),
            IndexEntry::CodeDate {
                param: p,
                code,
                lo,
                hi,
            } => (CODE_DATE, vec![param(p)?, L(code), L(lo), L(hi), L(rid)]),
            IndexEntry::UriPrefix {
                param: p,
                prefix,
                value,
            } => (URI_BELOW, vec![param(p)?, L(prefix), L(value)]),
            IndexEntry::FullText { narrative, content } => (
                FTS,
                vec![
                    L(rid),
                    Val::Text(fold_text(&narrative)),
                    Val::Text(fold_text(&content)),
                ],
            ),
        };
        self.tables[table].push(row)
    }

    /// Writes every buffered row of tenant `tenant` and empties the buffer.
    pub(crate) async fn write(
        &mut self,
        conn: &ClientWrapper,
        tenant: i32,
    ) -> Result<(), StoreError> {
        let tables = std::mem::replace(self, Rows::new()).tables;
        // Small tables first, as pipelined statements; then the large ones by COPY (one COPY at
        // a time per connection).
        let mut small = Vec::new();
        for t in tables
            .iter()
            .filter(|t| t.len() > 0 && t.len() < COPY_MIN_ROWS)
        {
            small.push(insert_rows(conn, tenant, t));
        }
        try_join_all(small).await?;
        for t in tables.iter().filter(|t| t.len() >= COPY_MIN_ROWS) {
            if t.spec == FTS || !t.spec().per_resource {
                insert_rows(conn, tenant, t).await?;
            } else {
                copy_rows(conn, tenant, t).await?;
            }
        }
        Ok(())
    }

    /// Deletes these rows (the index rows of a version being replaced) by primary key, as
    /// pipelined statements. Dictionary rows stay: other resources may share them, and a stale
    /// one names a value no resource has, which matches nothing.
    pub(crate) async fn delete(&self, conn: &ClientWrapper, tenant: i32) -> Result<(), StoreError> {
        let mut statements = Vec::new();
        for t in self
            .tables
            .iter()
            .filter(|t| t.len() > 0 && t.spec().per_resource)
        {
            let spec = t.spec();
            let mut sql = format!("DELETE FROM {} WHERE tenant = $1", spec.table);
            for (n, c) in spec.key.iter().enumerate() {
                sql.push_str(&format!(" AND {} = ${}", spec.columns[*c], n + 2));
            }
            statements.push((t, conn.prepare_cached(&sql).await?));
        }
        let mut params: Vec<Vec<&(dyn ToSql + Sync)>> = Vec::new();
        let mut which = Vec::new();
        for (t, stmt) in &statements {
            for i in 0..t.len() {
                let mut p: Vec<&(dyn ToSql + Sync)> = vec![&tenant];
                p.extend(t.spec().key.iter().map(|c| t.cols[*c].value(i)));
                params.push(p);
                which.push(stmt);
            }
        }
        try_join_all(
            params
                .iter()
                .zip(which)
                .map(|(p, stmt)| conn.execute(stmt, p)),
        )
        .await?;
        Ok(())
    }
}

/// `INSERT … SELECT FROM unnest(…)`: all rows of a table in one statement; duplicates collapse
/// on the primary key as in SQLite.
async fn insert_rows(conn: &ClientWrapper, tenant: i32, t: &Table) -> Result<(), StoreError> {
    let spec = t.spec();
    if t.spec == FTS {
        return insert_fts(conn, tenant, t).await;
    }
    let arrays: Vec<String> = t
        .cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}", i + 2, c.array_cast()))
        .collect();
    let sql = format!(
        "INSERT INTO {} (tenant, {}) SELECT $1, * FROM unnest({}) ON CONFLICT DO NOTHING",
        spec.table,
        spec.columns.join(", "),
        arrays.join(", ")
    );
    let stmt = conn.prepare_cached(&sql).await?;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant];
    params.extend(t.cols.iter().map(Col::array));
    conn.execute(&stmt, &params).await?;
    Ok(())
}

/// Full-text rows: the folded text becomes `to_tsvector('simple', …)` on the server.
async fn insert_fts(conn: &ClientWrapper, tenant: i32, t: &Table) -> Result<(), StoreError> {
    let (Some(Col::I64(rids)), Some(Col::Text(narrative)), Some(Col::Text(content))) =
        (t.cols.first(), t.cols.get(1), t.cols.get(2))
    else {
        return Err(StoreError::Database(
            "full-text rows do not match their table".into(),
        ));
    };
    let stmt = conn
        .prepare_cached(
            "INSERT INTO fts (tenant, rid, narrative, content)
             SELECT $1, u.rid, to_tsvector('simple', u.n), to_tsvector('simple', u.c)
             FROM unnest($2::bigint[], $3::text[], $4::text[]) AS u(rid, n, c)
             ON CONFLICT DO NOTHING",
        )
        .await?;
    let mut start = 0;
    while start < rids.len() {
        let end = (start + FTS_CHUNK).min(rids.len());
        let n: Vec<&str> = narrative[start..end].iter().map(String::as_str).collect();
        let c: Vec<&str> = content[start..end].iter().map(String::as_str).collect();
        conn.execute(&stmt, &[&tenant, &&rids[start..end], &n, &c])
            .await?;
        start = end;
    }
    Ok(())
}

/// Binary `COPY` into the tenant's partition, in key order, without duplicate keys.
async fn copy_rows(conn: &ClientWrapper, tenant: i32, t: &Table) -> Result<(), StoreError> {
    let spec = t.spec();
    let sql = format!(
        "COPY {} (tenant, {}) FROM STDIN (FORMAT binary)",
        partition(spec.table, tenant),
        spec.columns.join(", ")
    );
    let mut types = vec![Type::INT4];
    types.extend(t.cols.iter().map(Col::pg_type));
    let sink = conn.copy_in(&sql).await?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    let mut row: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(types.len());
    for i in t.key_order() {
        row.clear();
        row.push(&tenant);
        row.extend(t.cols.iter().map(|c| c.value(i)));
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_sorts_and_drops_duplicate_keys() {
        let mut rows = Rows::new();
        for (rid, value) in [(3, 1.0), (1, 2.0), (3, 1.0), (2, -0.0), (2, 0.0)] {
            rows.push(
                rid,
                IndexEntry::Number {
                    param: 7,
                    value,
                    lo: value - 0.5,
                    hi: value + 0.5,
                },
            )
            .unwrap();
        }
        let t = &rows.tables[NUMBER];
        let order = t.key_order();
        let Col::I64(rids) = &t.cols[2] else { panic!() };
        let Col::F64(values) = &t.cols[1] else {
            panic!()
        };
        let keys: Vec<(f64, i64)> = order.iter().map(|i| (values[*i], rids[*i])).collect();
        // -0.0 and 0.0 of the same resource are one key in PostgreSQL: the first one stays.
        assert_eq!(keys, vec![(-0.0, 2), (1.0, 3), (2.0, 1)]);
        assert_eq!(rows.len(), 5);
    }

    #[test]
    fn token_key_follows_the_primary_key() {
        let mut rows = Rows::new();
        // (param, code, rid, system): the rid orders before the system.
        rows.push(
            2,
            IndexEntry::Token {
                param: 1,
                system: 5,
                code: 9,
            },
        )
        .unwrap();
        rows.push(
            1,
            IndexEntry::Token {
                param: 1,
                system: 6,
                code: 9,
            },
        )
        .unwrap();
        let t = &rows.tables[TOKEN];
        assert_eq!(t.key_order(), vec![1, 0]);
    }

    #[test]
    fn text_without_accents_and_nul() {
        assert_eq!(fold_text("Müller\0 Ærø café"), "Muller Ærø cafe");
        assert_eq!(without_nul("a\0b".into()), "ab");
    }

    #[test]
    fn parameter_keys_must_fit_31_bits() {
        let mut rows = Rows::new();
        assert!(
            rows.push(
                1,
                IndexEntry::Uri {
                    param: i64::from(i32::MAX) + 1,
                    value: 1
                }
            )
            .is_err()
        );
    }
}
