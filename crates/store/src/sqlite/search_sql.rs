//! Criteria to SQL. Every criterion becomes `r.rid [NOT] IN (SELECT rid FROM idx_… WHERE …)`,
//! which SQLite drives from the clustered index of the criterion; values of one criterion are
//! OR-ed with `UNION`.

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;

use super::SqliteStore;
use super::codec;
use crate::api::{RawPage, RawResource, ResourceVersion};
use crate::error::StoreError;
use crate::index::keys::{self, normalize_string};
use crate::search::{
    CompartmentFilter, Criterion, CriterionValue as V, DateBound, DatePrefix, NumberBound,
    SearchPage, SearchQuery, StringMatch,
};
use medicus_fhir::SearchParamType;

/// The highest code point: `prefix || MAX_CHAR` bounds every string that starts with `prefix`.
const MAX_CHAR: char = '\u{10FFFF}';

struct Sql {
    text: String,
    args: Vec<SqlValue>,
}

impl Sql {
    fn arg(&mut self, v: impl Into<SqlValue>) -> String {
        self.args.push(v.into());
        format!("?{}", self.args.len())
    }
}

fn table_of(kind: SearchParamType) -> Option<&'static str> {
    Some(match kind {
        SearchParamType::Token => "idx_token",
        SearchParamType::String => "idx_string",
        SearchParamType::Date => "idx_date",
        SearchParamType::Number => "idx_number",
        SearchParamType::Quantity => "idx_quantity",
        SearchParamType::Reference => "idx_reference",
        SearchParamType::Uri => "idx_uri",
        SearchParamType::Composite => "idx_composite",
        SearchParamType::Special => return None,
    })
}

/// Interval comparison of a stored range [lo, hi] with a search range, by prefix (FHIR R4 §3.1.1.4.5).
/// Binds only the bounds the prefix uses: SQLite refuses unused trailing arguments.
fn date_condition(sql: &mut Sql, b: &DateBound, lo: &str, hi: &str) -> String {
    let contained = |sql: &mut Sql| {
        let (slo, shi) = (sql.arg(b.lo), sql.arg(b.hi));
        format!("({lo} >= {slo} AND {hi} <= {shi})")
    };
    match b.prefix {
        DatePrefix::Eq => contained(sql),
        DatePrefix::Ne => format!("NOT {}", contained(sql)),
        DatePrefix::Gt => format!("{hi} > {}", sql.arg(b.hi)),
        DatePrefix::Lt => format!("{lo} < {}", sql.arg(b.lo)),
        DatePrefix::Ge => {
            let c = contained(sql);
            format!("({hi} > {} OR {c})", sql.arg(b.hi))
        }
        DatePrefix::Le => {
            let c = contained(sql);
            format!("({lo} < {} OR {c})", sql.arg(b.lo))
        }
        DatePrefix::Sa => format!("{lo} > {}", sql.arg(b.hi)),
        DatePrefix::Eb => format!("{hi} < {}", sql.arg(b.lo)),
        DatePrefix::Ap => {
            let (slo, shi) = (sql.arg(b.lo), sql.arg(b.hi));
            format!("{lo} <= {shi} AND {hi} >= {slo}")
        }
    }
}

/// Comparison of a stored number with a search number whose precision gives [slo, shi).
fn number_condition(sql: &mut Sql, b: &NumberBound) -> String {
    let within = |sql: &mut Sql| {
        let (lo, hi) = (sql.arg(b.lo), sql.arg(b.hi));
        format!("(value >= {lo} AND value < {hi})")
    };
    match b.prefix {
        DatePrefix::Eq => within(sql),
        DatePrefix::Ne => format!("NOT {}", within(sql)),
        DatePrefix::Gt | DatePrefix::Sa => format!("value > {}", sql.arg(b.value)),
        DatePrefix::Lt | DatePrefix::Eb => format!("value < {}", sql.arg(b.value)),
        DatePrefix::Ge => format!("value >= {}", sql.arg(b.lo)),
        DatePrefix::Le => format!("value < {}", sql.arg(b.hi)),
        DatePrefix::Ap => {
            let (v, tol) = (sql.arg(b.value), sql.arg((b.value * 0.1).abs()));
            format!("abs(value - {v}) <= {tol}")
        }
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The `SELECT rid …` of one value, or a condition on the resource row itself.
enum Piece {
    Subquery(String),
    RowCondition(String),
}

fn value_piece(sql: &mut Sql, tenant: &str, c: &Criterion, v: &V) -> Piece {
    // Only index-table pieces bind the parameter key: every bound argument must be used.
    let sub = |sql: &mut Sql, table: &str, cond: String| {
        let param = sql.arg(c.param);
        Piece::Subquery(format!(
            "SELECT rid FROM {table} WHERE tenant = {tenant} AND param = {param} AND {cond}"
        ))
    };
    match v {
        V::Id(id) => Piece::RowCondition(format!("r.id = {}", sql.arg(id.clone()))),
        V::LastUpdated(b) => {
            Piece::RowCondition(date_condition(sql, b, "r.updated_us", "r.updated_us"))
        }
        V::Token(t) => {
            let mut cond = Vec::new();
            if let Some(code) = t.code {
                cond.push(format!("code = {}", sql.arg(code)));
            }
            match t.system {
                // A `code` element's system is implicit in its binding: `system|code` matches it too.
                Some(system) if system != keys::NONE && t.code.is_some() => {
                    cond.push(format!(
                        "system IN ({}, {})",
                        sql.arg(system),
                        keys::IMPLICIT_SYSTEM
                    ));
                }
                Some(system) => cond.push(format!("system = {}", sql.arg(system))),
                None => {}
            }
            if cond.is_empty() {
                cond.push("1".into());
            }
            sub(sql, "idx_token", cond.join(" AND "))
        }
        V::String { text, mode } => match mode {
            StringMatch::StartsWith => {
                let lo = sql.arg(text.clone());
                let hi = sql.arg(format!("{text}{MAX_CHAR}"));
                sub(sql, "idx_string", format!("value >= {lo} AND value < {hi}"))
            }
            StringMatch::Exact => {
                let norm = sql.arg(normalize_string(text));
                let exact = sql.arg(text.clone());
                sub(
                    sql,
                    "idx_string",
                    format!("value = {norm} AND coalesce(exact, value) = {exact}"),
                )
            }
            StringMatch::Contains => {
                let pattern = sql.arg(format!("%{}%", escape_like(text)));
                sub(
                    sql,
                    "idx_string",
                    format!("value LIKE {pattern} ESCAPE '\\'"),
                )
            }
        },
        V::Date(b) => {
            let cond = date_condition(sql, b, "lo", "hi");
            sub(sql, "idx_date", cond)
        }
        V::Number(b) => {
            let cond = number_condition(sql, b);
            sub(sql, "idx_number", cond)
        }
        V::Quantity(q) => {
            let mut cond = vec![number_condition(sql, &q.number)];
            if let Some(code) = q.code {
                cond.push(format!("code = {}", sql.arg(code)));
            }
            if let Some(system) = q.system {
                cond.push(format!("system = {}", sql.arg(system)));
            }
            sub(sql, "idx_quantity", cond.join(" AND "))
        }
        V::Reference(r) => {
            let mut cond = format!("target = {}", sql.arg(r.target));
            if let Some(t) = r.target_type {
                cond.push_str(&format!(" AND target_type = {}", sql.arg(t)));
            }
            sub(sql, "idx_reference", cond)
        }
        V::Uri { value } => {
            let v = sql.arg(*value);
            sub(sql, "idx_uri", format!("value = {v}"))
        }
        V::Composite { key } => {
            let k = sql.arg(*key);
            sub(sql, "idx_composite", format!("key = {k}"))
        }
    }
}

fn criterion_condition(sql: &mut Sql, tenant: &str, c: &Criterion) -> Result<String, StoreError> {
    if let Some(missing) = c.missing {
        let table = c.kind.and_then(table_of).ok_or_else(|| {
            StoreError::InvalidSearch(format!(":missing is not supported on '{}'", c.code))
        })?;
        let param = sql.arg(c.param);
        let op = if missing { "NOT IN" } else { "IN" };
        return Ok(format!(
            "r.rid {op} (SELECT rid FROM {table} WHERE tenant = {tenant} AND param = {param})"
        ));
    }
    let mut subqueries = Vec::new();
    let mut row_conditions = Vec::new();
    for v in &c.values {
        match value_piece(sql, tenant, c, v) {
            Piece::Subquery(s) => subqueries.push(s),
            Piece::RowCondition(s) => row_conditions.push(format!("({s})")),
        }
    }
    let mut alternatives = row_conditions;
    if !subqueries.is_empty() {
        let op = if c.negated { "NOT IN" } else { "IN" };
        alternatives.push(format!("r.rid {op} ({})", subqueries.join(" UNION ")));
    }
    if alternatives.is_empty() {
        return Ok("1".into());
    }
    Ok(format!("({})", alternatives.join(" OR ")))
}

/// Resources of `resource_type` that reference one of the patients through a Patient-compartment
/// parameter of that type; Patients by their own id.
fn compartment_condition(
    sql: &mut Sql,
    tenant: &str,
    resource_type: Option<&str>,
    f: &CompartmentFilter,
) -> String {
    let Some(rt) = resource_type else {
        return "0".into();
    };
    if rt == "Patient" {
        return match &f.patients {
            None => "1".into(),
            Some(ids) if ids.is_empty() => "0".into(),
            Some(ids) => {
                let list: Vec<String> = ids.iter().map(|id| sql.arg(id.clone())).collect();
                format!("r.id IN ({})", list.join(", "))
            }
        };
    }
    let params = medicus_fhir::r4().patient_compartment_params(rt);
    if params.is_empty() || f.patients.as_ref().is_some_and(Vec::is_empty) {
        return "0".into();
    }
    let keys: Vec<String> = params
        .iter()
        .map(|code| sql.arg(keys::param_key(rt, code)))
        .collect();
    let patient = sql.arg(keys::type_key("Patient"));
    let mut cond = format!(
        "SELECT rid FROM idx_reference WHERE tenant = {tenant} AND param IN ({}) AND target_type = {patient}",
        keys.join(", ")
    );
    if let Some(ids) = &f.patients {
        let targets: Vec<String> = ids.iter().map(|id| sql.arg(keys::hash(id))).collect();
        cond.push_str(&format!(" AND target IN ({})", targets.join(", ")));
    }
    format!("r.rid IN ({cond})")
}

/// The `WHERE` clause (and its arguments) of a search; `None` when the type is unknown, which
/// matches nothing.
fn filter(
    store: &SqliteStore,
    tenant: i64,
    resource_type: Option<&str>,
    q: &SearchQuery,
) -> Result<Option<(String, Sql)>, StoreError> {
    let mut sql = Sql {
        text: String::new(),
        args: Vec::new(),
    };
    let t = sql.arg(tenant);
    let mut conditions = vec![format!("r.tenant = {t}"), "r.deleted = 0".to_owned()];
    if let Some(rt) = resource_type {
        match store.type_code(rt) {
            Some(code) => conditions.push(format!("r.rtype = {}", sql.arg(code))),
            None => return Ok(None),
        }
    }
    for c in &q.criteria {
        conditions.push(criterion_condition(&mut sql, &t, c)?);
    }
    if let Some(filter) = &q.compartment {
        conditions.push(compartment_condition(&mut sql, &t, resource_type, filter));
    }
    Ok(Some((conditions.join(" AND "), sql)))
}

/// Turns `sql` (holding the filter's arguments) into the page query: current versions in
/// surrogate-key order after the cursor, one row more than the page to know whether another
/// page follows.
fn page_sql(filter: &str, sql: &mut Sql, q: &SearchQuery) {
    let cursor = q
        .cursor
        .map_or(String::new(), |c| format!(" AND r.rid > {}", sql.arg(c)));
    let limit = sql.arg(i64::try_from(q.count).unwrap_or(i64::MAX).saturating_add(1));
    sql.text = format!(
        "SELECT r.rid, r.rtype, r.id, r.version, r.tx, r.updated_us, v.body
         FROM resource r JOIN version v ON v.rid = r.rid AND v.version = r.version
         WHERE {filter}{cursor} ORDER BY r.rid LIMIT {limit}"
    );
}

pub(crate) fn search(
    store: &SqliteStore,
    conn: &Connection,
    tenant: i64,
    resource_type: Option<&str>,
    q: &SearchQuery,
) -> Result<SearchPage, StoreError> {
    let Some((filter, mut sql)) = filter(store, tenant, resource_type, q)? else {
        return Ok(SearchPage {
            resources: Vec::new(),
            total: q.total.then_some(0),
            next_cursor: None,
        });
    };
    let total = if q.total {
        let count_sql = format!("SELECT count(*) FROM resource r WHERE {filter}");
        let n: i64 = conn
            .prepare_cached(&count_sql)?
            .query_row(rusqlite::params_from_iter(&sql.args), |r| r.get(0))?;
        Some(u64::try_from(n).unwrap_or(0))
    } else {
        None
    };
    if q.count == 0 {
        return Ok(SearchPage {
            resources: Vec::new(),
            total,
            next_cursor: None,
        });
    }
    page_sql(&filter, &mut sql, q);
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&sql.args))?;
    let mut resources = Vec::new();
    let mut rids = Vec::new();
    while let Some(r) = rows.next()? {
        let blob: Option<Vec<u8>> = r.get(6)?;
        rids.push(r.get::<_, i64>(0)?);
        resources.push(ResourceVersion {
            resource_type: store.type_name(r.get(1)?)?.to_owned(),
            id: r.get(2)?,
            version: r.get(3)?,
            tx: r.get(4)?,
            last_updated_us: r.get(5)?,
            body: blob.map(|b| codec::decode(&b)).transpose()?,
        });
    }
    let next_cursor = if resources.len() > q.count {
        resources.truncate(q.count);
        rids.get(q.count - 1).copied()
    } else {
        None
    };
    Ok(SearchPage {
        resources,
        total,
        next_cursor,
    })
}

/// `search` with the stored JSON bytes: only zstd decompression per row, no JSON parse.
pub(crate) fn search_raw(
    store: &SqliteStore,
    conn: &Connection,
    tenant: i64,
    resource_type: Option<&str>,
    q: &SearchQuery,
) -> Result<RawPage, StoreError> {
    let Some((filter, mut sql)) = filter(store, tenant, resource_type, q)? else {
        return Ok(RawPage::default());
    };
    if q.count == 0 {
        return Ok(RawPage::default());
    }
    page_sql(&filter, &mut sql, q);
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&sql.args))?;
    let mut resources = Vec::with_capacity(q.count.min(1024));
    let mut more = false;
    while let Some(r) = rows.next()? {
        if resources.len() == q.count {
            more = true;
            break;
        }
        // Borrow the blob from SQLite's row buffer: no copy before decompression.
        let json = match r.get_ref(6)? {
            rusqlite::types::ValueRef::Blob(b) => codec::decode_raw(b)?,
            // Current versions of live resources always have a body.
            _ => continue,
        };
        resources.push(RawResource {
            resource_type: store.type_name(r.get(1)?)?.to_owned(),
            id: r.get(2)?,
            key: r.get(0)?,
            json,
        });
    }
    let next_cursor = if more {
        resources.last().map(|r| r.key)
    } else {
        None
    };
    Ok(RawPage {
        resources,
        next_cursor,
    })
}

/// `search_raw` over all matches as one statement: the query (including a compartment's
/// resource list) is evaluated once, and rows are handed over as SQLite produces them.
pub(crate) fn scan_raw(
    store: &SqliteStore,
    conn: &Connection,
    tenant: i64,
    resource_type: Option<&str>,
    q: &SearchQuery,
    each: &mut dyn FnMut(RawResource) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let Some((filter, mut sql)) = filter(store, tenant, resource_type, q)? else {
        return Ok(());
    };
    let cursor = q
        .cursor
        .map_or(String::new(), |c| format!(" AND r.rid > {}", sql.arg(c)));
    sql.text = format!(
        "SELECT r.rid, r.rtype, r.id, v.body
         FROM resource r JOIN version v ON v.rid = r.rid AND v.version = r.version
         WHERE {filter}{cursor} ORDER BY r.rid"
    );
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&sql.args))?;
    while let Some(r) = rows.next()? {
        let json = match r.get_ref(3)? {
            rusqlite::types::ValueRef::Blob(b) => codec::decode_raw(b)?,
            _ => continue,
        };
        let resource = RawResource {
            resource_type: store.type_name(r.get(1)?)?.to_owned(),
            id: r.get(2)?,
            key: r.get(0)?,
            json,
        };
        if !each(resource)? {
            break;
        }
    }
    Ok(())
}
