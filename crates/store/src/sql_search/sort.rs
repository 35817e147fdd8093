//! `_sort`. Two strategies:
//! - **walk**: one key on a date, number or string parameter over many matches: the parameter's
//!   index is read in sort order, each entry is kept only if it is the resource's first in that
//!   order and the resource passes every clause; then resources without the parameter follow.
//!   Pages continue after the last (sort value, surrogate key): no offsets, no drift.
//! - **in memory**: any keys, for at most `IN_MEMORY_LIMIT` matches: sort values are taken from
//!   each match's body, sorted, and paged by the same kind of position.
//!
//! Dates sort by their range (start, then end); a resource with several values sorts by its
//! smallest for ascending and its largest for descending keys; resources without a value come last.

use std::cmp::Ordering;

use medicus_fhir::SearchParamType;
use medicus_fhirpath::{Env, Item};

use super::clause::Scope;
use super::db::{Arg, Db, Row};
use super::plan::Plan;
use super::sql::Sql;
use super::{COLUMNS, CURRENT_VERSION, conditions_except, match_query, version_of};
use crate::api::ResourceVersion;
use crate::codec;
use crate::error::StoreError;
use crate::index::code_date::CODE_PARAM;
use crate::index::keys::param_key;
use crate::index::{IndexEntry, param_entries};
use crate::search::{CriterionValue, SearchPage, SearchQuery, SortKey, SortPosition, SortValue};

/// Most matches sorted in memory.
pub const IN_MEMORY_LIMIT: u64 = 10_000;

/// Below this many matches the in-memory sort beats walking a whole index.
const WALK_THRESHOLD: u64 = 2_000;

fn walk_columns(kind: SearchParamType) -> Option<(&'static str, &'static [&'static str])> {
    Some(match kind {
        SearchParamType::Date => ("idx_date", &["lo", "hi"]),
        SearchParamType::Number => ("idx_number", &["value"]),
        SearchParamType::String => ("idx_string", &["value"]),
        _ => return None,
    })
}

pub(super) fn page(
    db: &dyn Db,
    plan: &Plan<'_>,
    s: &Scope<'_>,
    rt_code: Option<i64>,
    rt: Option<&str>,
    q: &SearchQuery,
) -> Result<SearchPage, StoreError> {
    let small = plan
        .driver
        .and_then(|d| plan.estimates[d])
        .is_some_and(|e| e.exact && e.rows <= WALK_THRESHOLD);
    if let [key] = q.sort.as_slice()
        && let Some(kind) = key.kind
        && let Some((table, cols)) = walk_columns(kind)
        && let Some(rt) = rt
        && !small
    {
        let by_code = (kind == SearchParamType::Date)
            .then(|| single_code(rt, q))
            .flatten();
        return walk(db, plan, s, rt_code, Some(rt), q, key, table, cols, by_code);
    }
    if let [key] = q.sort.as_slice()
        && key.code == "_lastUpdated"
        && let Some(code) = rt_code
        && !small
    {
        return walk_last_updated(db, plan, s, code, rt, q, key);
    }
    in_memory(db, plan, s, rt_code, rt, q)
}

/// The code of a plain `code=[system|]code` criterion with one value: its dates can be walked in
/// `idx_code_date` (`index::code_date`) instead of among every date of the type.
fn single_code(rt: &str, q: &SearchQuery) -> Option<i64> {
    let key = param_key(rt, CODE_PARAM);
    q.criteria.iter().find_map(|c| match c.values.as_slice() {
        [CriterionValue::Token(t)] if c.param == key && !c.negated && c.missing.is_none() => t.code,
        _ => None,
    })
}

/// `_lastUpdated` in commit order: the change feed's `tx` grows with `lastUpdated` (which never
/// goes backwards), so versions by `(tenant, type, tx)` are in `_lastUpdated` order; a version
/// counts when it is its resource's current one.
#[allow(clippy::too_many_arguments)]
fn walk_last_updated(
    db: &dyn Db,
    plan: &Plan<'_>,
    s: &Scope<'_>,
    rt_code: i64,
    rt: Option<&str>,
    q: &SearchQuery,
    key: &SortKey,
) -> Result<SearchPage, StoreError> {
    let mut sql = Sql::new(s.dialect);
    let (cmp, dir) = if key.descending {
        ("<", " DESC")
    } else {
        (">", "")
    };
    let mut conds = vec![
        format!("v.tenant = {}", s.tenant),
        format!("v.rtype = {rt_code}"),
        "r.version = v.version".to_owned(),
    ];
    if let Some(after) = &q.sort_after {
        let [SortValue::Int(tx)] = after.values.as_slice() else {
            return Err(StoreError::InvalidSearch(
                "_cursor does not belong to this search".into(),
            ));
        };
        conds.push(format!("(v.tx, v.rid) {cmp} ({tx}, {})", after.rid));
    }
    conds.extend(conditions_except(
        plan,
        s,
        &mut sql,
        Some(rt_code),
        rt,
        None,
    ));
    let want = q.count + 1;
    let text = format!(
        "SELECT {COLUMNS} FROM version v{}
         {} resource r ON r.tenant = v.tenant AND r.rid = v.rid
         WHERE {} ORDER BY v.tx{dir}, v.rid{dir} LIMIT {want}",
        s.dialect.version_by_type,
        s.dialect.ordered_join,
        conds.join(" AND ")
    );
    let (mut resources, mut positions) = (Vec::new(), Vec::new());
    collect_sorted(db, &text, &sql.args, &mut resources, &mut positions, |r| {
        Ok(vec![SortValue::Int(r.int(4)?)])
    })?;
    Ok(sorted_page(
        resources,
        &positions,
        q.count,
        format!(
            "sort: walk of versions in commit order{}",
            if key.descending { " backwards" } else { "" }
        ),
    ))
}

/// Runs `text` (rows of `COLUMNS` first) and appends each row's resource, with its position:
/// the sort values `values` reads from the row, and its surrogate key.
fn collect_sorted(
    db: &dyn Db,
    text: &str,
    args: &[Arg],
    resources: &mut Vec<ResourceVersion>,
    positions: &mut Vec<SortPosition>,
    values: impl Fn(&dyn Row) -> Result<Vec<SortValue>, StoreError>,
) -> Result<(), StoreError> {
    db.query(text, args, &mut |r| {
        positions.push(SortPosition {
            values: values(r)?,
            rid: r.int(0)?,
        });
        resources.push(version_of(db, r)?);
        Ok(true)
    })
}

/// A sorted page from up to `count + 1` resources and their positions: the extra one only says
/// that another page follows, which continues after the last position shown.
fn sorted_page(
    mut resources: Vec<ResourceVersion>,
    positions: &[SortPosition],
    count: usize,
    plan: String,
) -> SearchPage {
    let next_sort = if resources.len() > count {
        resources.truncate(count);
        positions.get(count - 1).cloned()
    } else {
        None
    };
    SearchPage {
        resources,
        total: None,
        next_cursor: None,
        next_sort,
        plan: Some(plan),
    }
}

fn to_sql(v: &SortValue) -> Arg {
    match v {
        SortValue::Int(i) => Arg::Int(*i),
        SortValue::Real(f) => Arg::Real(*f),
        SortValue::Text(t) => Arg::Text(t.clone()),
        SortValue::Missing => Arg::Null,
    }
}

#[allow(clippy::too_many_arguments)]
fn walk(
    db: &dyn Db,
    plan: &Plan<'_>,
    s: &Scope<'_>,
    rt_code: Option<i64>,
    rt: Option<&str>,
    q: &SearchQuery,
    key: &SortKey,
    table: &str,
    cols: &[&str],
    by_code: Option<i64>,
) -> Result<SearchPage, StoreError> {
    // The rows walked: the parameter's own index, or its rows under the one code searched for.
    let walked = if by_code.is_some() {
        "idx_code_date"
    } else {
        table
    };
    let mut resources = Vec::new();
    let mut positions = Vec::new();
    let in_missing_phase = q
        .sort_after
        .as_ref()
        .is_some_and(|p| p.values.first() == Some(&SortValue::Missing));
    let want = q.count + 1;
    if !in_missing_phase {
        let mut sql = Sql::new(s.dialect);
        let (cmp, dir) = if key.descending {
            ("<", " DESC")
        } else {
            (">", "")
        };
        let s_cols: Vec<String> = cols.iter().map(|c| format!("s.{c}")).collect();
        let s2_cols: Vec<String> = cols.iter().map(|c| format!("s2.{c}")).collect();
        let mut conds = vec![
            format!("s.tenant = {}", s.tenant),
            format!("s.param = {}", key.param),
            // First entry of the resource in walk order: no entry of it sorts before this one.
            format!(
                "NOT EXISTS (SELECT 1 FROM {table} s2 WHERE {}s2.rid = s.rid AND s2.param = {} AND ({}) {cmp} ({}))",
                s.rid_tenant("s2."),
                key.param,
                s_cols.join(", "),
                s2_cols.join(", ")
            ),
        ];
        if let Some(code) = by_code {
            conds.push(format!("s.code = {code}"));
        }
        if let Some(after) = &q.sort_after {
            if after.values.len() != cols.len() {
                return Err(StoreError::InvalidSearch(
                    "_cursor does not belong to this search".into(),
                ));
            }
            let mut tuple: Vec<String> = after.values.iter().map(|v| sql.arg(to_sql(v))).collect();
            tuple.push(after.rid.to_string());
            conds.push(format!(
                "({}, s.rid) {cmp} ({})",
                s_cols.join(", "),
                tuple.join(", ")
            ));
        }
        conds.extend(conditions_except(plan, s, &mut sql, rt_code, rt, None));
        let order: Vec<String> = s_cols
            .iter()
            .chain(std::iter::once(&"s.rid".to_owned()))
            .map(|c| format!("{c}{dir}"))
            .collect();
        let text = format!(
            "SELECT {COLUMNS}, {} FROM {walked} s
             {} resource r ON r.tenant = s.tenant AND r.rid = s.rid
             JOIN version v ON {CURRENT_VERSION}
             WHERE {} ORDER BY {} LIMIT {want}",
            s_cols.join(", "),
            s.dialect.ordered_join,
            conds.join(" AND "),
            order.join(", ")
        );
        collect_sorted(db, &text, &sql.args, &mut resources, &mut positions, |r| {
            (0..cols.len()).map(|i| r.sort_value(7 + i)).collect()
        })?;
    }
    if resources.len() < want {
        // Then the resources without a value, in surrogate-key order.
        let after = q
            .sort_after
            .as_ref()
            .filter(|_| in_missing_phase)
            .map(|p| p.rid);
        let missing = format!(
            "NOT EXISTS (SELECT 1 FROM {table} WHERE {}rid = r.rid AND param = {})",
            s.rid_tenant(""),
            key.param
        );
        let (text, sql) = match_query(
            plan,
            s,
            rt_code,
            rt,
            after,
            Some(want - resources.len()),
            Some(&missing),
        );
        collect_sorted(db, &text, &sql.args, &mut resources, &mut positions, |_| {
            Ok(vec![SortValue::Missing; cols.len()])
        })?;
    }
    Ok(sorted_page(
        resources,
        &positions,
        q.count,
        format!(
            "sort: walk of the {} index{}{}",
            key.code,
            if by_code.is_some() {
                " within the searched code"
            } else {
                ""
            },
            if key.descending { " backwards" } else { "" }
        ),
    ))
}

/// The sort value an index row of `param` holds (parameter keys are per type, so the row's
/// variant is the parameter's type).
fn indexed_sort_value(e: &IndexEntry, param: i64) -> Option<Vec<SortValue>> {
    match e {
        IndexEntry::Date { param: p, lo, hi } if *p == param => {
            Some(vec![SortValue::Int(*lo), SortValue::Int(*hi)])
        }
        IndexEntry::Number {
            param: p, value, ..
        }
        | IndexEntry::Quantity {
            param: p, value, ..
        } if *p == param => Some(vec![SortValue::Real(*value)]),
        IndexEntry::String {
            param: p,
            normalized,
            ..
        } if *p == param => Some(vec![SortValue::Text(normalized.clone())]),
        _ => None,
    }
}

/// The sort values of one resource for one key (dates give two: start and end).
fn key_values(
    rt: &str,
    key: &SortKey,
    body: &serde_json::Value,
    entries: &[IndexEntry],
    id: &str,
    tx: i64,
) -> Vec<SortValue> {
    let pick = |vals: Vec<Vec<SortValue>>, width: usize| -> Vec<SortValue> {
        let best = if key.descending {
            vals.into_iter().max_by(|a, b| cmp_values(a, b))
        } else {
            vals.into_iter().min_by(|a, b| cmp_values(a, b))
        };
        best.unwrap_or_else(|| vec![SortValue::Missing; width])
    };
    match (key.code.as_str(), key.kind) {
        ("_id", _) => vec![SortValue::Text(id.to_owned())],
        // Commit order is `_lastUpdated` order (see `walk_last_updated`).
        ("_lastUpdated", _) => vec![SortValue::Int(tx)],
        (
            _,
            Some(
                kind @ (SearchParamType::Date
                | SearchParamType::Number
                | SearchParamType::Quantity
                | SearchParamType::String),
            ),
        ) => pick(
            entries
                .iter()
                .filter_map(|e| indexed_sort_value(e, key.param))
                .collect(),
            if kind == SearchParamType::Date { 2 } else { 1 },
        ),
        // Tokens, references and URIs are hashed in the index: sort by their text.
        _ => pick(
            texts_of(rt, &key.code, body)
                .into_iter()
                .map(|t| vec![SortValue::Text(t)])
                .collect(),
            1,
        ),
    }
}

fn texts_of(rt: &str, code: &str, body: &serde_json::Value) -> Vec<String> {
    let defs = medicus_fhir::r4();
    let Some(expr) = defs
        .search_param(rt, code)
        .and_then(|p| p.expression.as_ref())
    else {
        return Vec::new();
    };
    let env = Env { model: Some(defs) };
    let Ok(items) = expr.evaluate(body, &env) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in &items {
        match item {
            Item::Node(n) => {
                let v = n.value;
                if let Some(s) = v.as_str() {
                    out.push(s.to_owned());
                } else if let Some(b) = v.as_bool() {
                    out.push(b.to_string());
                } else if let Some(r) = v.get("reference").and_then(|r| r.as_str()) {
                    out.push(r.to_owned());
                } else if let Some(codings) = v.get("coding").and_then(|c| c.as_array()) {
                    out.extend(
                        codings
                            .iter()
                            .filter_map(|c| c.get("code").and_then(|c| c.as_str()))
                            .map(str::to_owned),
                    );
                } else if let Some(c) = v
                    .get("code")
                    .or_else(|| v.get("value"))
                    .and_then(|c| c.as_str())
                {
                    out.push(c.to_owned());
                }
            }
            Item::String(s) => out.push(s.to_string()),
            _ => {}
        }
    }
    out
}

/// Orders one key's values; `Missing` after every value.
fn cmp_values(a: &[SortValue], b: &[SortValue]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (SortValue::Missing, SortValue::Missing) => Ordering::Equal,
            (SortValue::Missing, _) => Ordering::Greater,
            (_, SortValue::Missing) => Ordering::Less,
            (SortValue::Int(p), SortValue::Int(q)) => p.cmp(q),
            (SortValue::Real(p), SortValue::Real(q)) => p.total_cmp(q),
            (SortValue::Text(p), SortValue::Text(q)) => p.cmp(q),
            _ => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Orders two positions by the keys (each in its direction, missing values last) and then by
/// surrogate key.
fn cmp_positions(keys: &[(SortKey, usize)], a: &SortPosition, b: &SortPosition) -> Ordering {
    let mut offset = 0;
    for (key, width) in keys {
        let (x, y) = (
            a.values.get(offset..offset + width).unwrap_or(&[]),
            b.values.get(offset..offset + width).unwrap_or(&[]),
        );
        offset += width;
        let missing = |v: &[SortValue]| v.first() == Some(&SortValue::Missing);
        let o = match (missing(x), missing(y)) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ if key.descending => cmp_values(y, x),
            _ => cmp_values(x, y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.rid.cmp(&b.rid)
}

fn in_memory(
    db: &dyn Db,
    plan: &Plan<'_>,
    s: &Scope<'_>,
    rt_code: Option<i64>,
    rt: Option<&str>,
    q: &SearchQuery,
) -> Result<SearchPage, StoreError> {
    let defs = medicus_fhir::r4();
    let keys: Vec<(SortKey, usize)> = q
        .sort
        .iter()
        .map(|k| {
            let width = if k.kind == Some(SearchParamType::Date) {
                2
            } else {
                1
            };
            (k.clone(), width)
        })
        .collect();
    // First pass: the sort values of every match (bounded), bodies dropped as we go.
    let (text, sql) = match_query(
        plan,
        s,
        rt_code,
        rt,
        None,
        Some(IN_MEMORY_LIMIT as usize + 1),
        None,
    );
    let mut positions = Vec::new();
    db.query(&text, &sql.args, &mut |r| {
        if positions.len() as u64 >= IN_MEMORY_LIMIT {
            return Err(StoreError::InvalidSearch(format!(
                "_sort: more than {IN_MEMORY_LIMIT} matches cannot be sorted by these keys; narrow the search, or sort by one date, number or string parameter"
            )));
        }
        let rid = r.int(0)?;
        let rtype = db.type_name(r.int(1)?)?;
        let id = r.text(2)?;
        let tx = r.int(4)?;
        let Some(body) = r.blob(6)?.map(codec::decode).transpose()? else {
            return Ok(true);
        };
        let needs_entries = keys.iter().any(|(k, _)| {
            matches!(
                k.kind,
                Some(
                    SearchParamType::Date
                        | SearchParamType::Number
                        | SearchParamType::Quantity
                        | SearchParamType::String
                )
            )
        });
        // Only the keys' own parameters: extracting every parameter would cost most of the sort.
        let entries: Vec<IndexEntry> = if needs_entries {
            keys.iter()
                .flat_map(|(k, _)| param_entries(defs, rtype, &k.code, &body))
                .collect()
        } else {
            Vec::new()
        };
        let mut values = Vec::new();
        for (k, _) in &keys {
            values.extend(key_values(rtype, k, &body, &entries, &id, tx));
        }
        positions.push(SortPosition { values, rid });
        Ok(true)
    })?;
    positions.sort_by(|a, b| cmp_positions(&keys, a, b));
    let start = match &q.sort_after {
        Some(after) => {
            positions.partition_point(|p| cmp_positions(&keys, p, after) != Ordering::Greater)
        }
        None => 0,
    };
    let page: Vec<SortPosition> = positions
        .into_iter()
        .skip(start)
        .take(q.count + 1)
        .collect();
    let mut resources = Vec::with_capacity(page.len());
    let text = format!(
        "SELECT {COLUMNS} FROM resource r JOIN version v ON {CURRENT_VERSION} WHERE r.tenant = {} AND r.rid = {}",
        s.tenant,
        (s.dialect.placeholder)(1, &Arg::Int(0))
    );
    for p in page.iter().take(q.count) {
        db.query(&text, &[Arg::Int(p.rid)], &mut |r| {
            resources.push(version_of(db, r)?);
            Ok(false)
        })?;
    }
    // `page` holds one position more than the page when another page follows.
    let next_sort = (page.len() > q.count)
        .then(|| page.get(q.count - 1).cloned())
        .flatten();
    Ok(SearchPage {
        resources,
        total: None,
        next_cursor: None,
        next_sort,
        plan: Some("sort: in memory".into()),
    })
}
