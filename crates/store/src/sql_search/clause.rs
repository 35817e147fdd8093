//! One criterion as SQL, in the two shapes the planner combines:
//! - **rows**: a `SELECT rid …` of the matching resources, which can drive a search;
//! - **check**: a condition on a candidate row (`alias.rid`), which SQLite answers by a seek
//!   (token, reference, uri and composite rows are clustered `(value, rid)`; range-searched
//!   tables have a `(rid, param)` index), or by a set materialised once per statement.

use medicus_fhir::SearchParamType;

use super::db::{Db, Dialect, FullTextQuery};
use super::sql::{FALSE, Sql, TRUE, date_condition, escape_like, number_condition};
use crate::index::keys::{self, hash, normalize_string};
use crate::search::{
    CompartmentFilter, CompositeBound, Criterion, CriterionValue as V, DatePrefix, StringMatch,
    TokenValue,
};

/// The highest code point: `prefix || MAX_CHAR` bounds every string that starts with `prefix`.
const MAX_CHAR: char = '\u{10FFFF}';

/// What a clause needs from the store to be written as SQL.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub tenant: i64,
    pub db: &'a dyn Db,
    pub dialect: &'static Dialect,
    /// Inside per-candidate `EXISTS` checks: the dialect's fence once the plan drives from a
    /// small exact set (see `Dialect::check_fence`), else empty.
    pub fence: &'static str,
}

impl Scope<'_> {
    /// The code of a resource type in `resource.rtype`; `None` for a type the store never saw.
    pub fn type_code(&self, resource_type: &str) -> Option<i64> {
        self.db.type_code(resource_type)
    }

    /// `alias` is a live resource.
    pub fn live(&self, alias: &str) -> String {
        (self.dialect.live)(alias)
    }

    /// `tenant = … AND ` before a lookup by surrogate key, where the dialect wants it.
    pub fn rid_tenant(&self, qualifier: &str) -> String {
        if self.dialect.tenant_on_rid_lookups {
            format!("{qualifier}tenant = {} AND ", self.tenant)
        } else {
            String::new()
        }
    }
}

/// Rows that match nothing.
const NO_ROWS: &str = "SELECT 0 AS rid WHERE 1 = 0";

/// A `SELECT rid` and whether its rows come in `rid` order (a clustered range with every key
/// column before `rid` fixed), which lets a page stop early instead of materialising the set.
pub(crate) struct Rows {
    pub sql: String,
    pub ordered: bool,
    /// For a bounded count: the index order that reaches matches soonest (newest first for
    /// `ge`/`gt`/`sa` dates, whose condition does not bound the start of the range).
    pub probe_order: Option<&'static str>,
}

pub(crate) fn table_of(kind: SearchParamType) -> Option<&'static str> {
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

/// Tables with a `(rid, param)` index.
fn has_rid_index(table: &str) -> bool {
    matches!(
        table,
        "idx_string"
            | "idx_date"
            | "idx_number"
            | "idx_quantity"
            | "idx_reference"
            | "idx_composite_range"
    )
}

fn token_condition(t: &TokenValue) -> String {
    let mut cond = Vec::new();
    if let Some(code) = t.code {
        cond.push(format!("code = {code}"));
    }
    match t.system {
        // A `code` element's system is implicit in its binding: `system|code` matches it too.
        Some(system) if system != keys::NONE && t.code.is_some() => {
            cond.push(format!("system IN ({system}, {})", keys::IMPLICIT_SYSTEM))
        }
        Some(system) => cond.push(format!("system = {system}")),
        None => {}
    }
    if cond.is_empty() {
        cond.push(TRUE.into());
    }
    cond.join(" AND ")
}

/// The table and value condition of an index-backed value, and whether the condition fixes
/// every key column before `rid` (so rows come in `rid` order and a seek by `rid` works).
fn index_condition(sql: &mut Sql, tenant: i64, v: &V) -> Option<(&'static str, String, bool)> {
    Some(match v {
        V::Token(t) => ("idx_token", token_condition(t), t.code.is_some()),
        V::String { text, mode } => match mode {
            StringMatch::StartsWith => {
                let lo = sql.arg(text.clone());
                let hi = sql.arg(format!("{text}{MAX_CHAR}"));
                (
                    "idx_string",
                    format!("value >= {lo} AND value < {hi}"),
                    false,
                )
            }
            StringMatch::Exact => {
                let norm = sql.arg(normalize_string(text));
                let exact = sql.arg(text.clone());
                (
                    "idx_string",
                    format!("value = {norm} AND coalesce(exact, value) = {exact}"),
                    true,
                )
            }
            StringMatch::Contains => {
                let pattern = sql.arg(format!("%{}%", escape_like(text)));
                (
                    "idx_string",
                    format!("value LIKE {pattern} ESCAPE '\\'"),
                    false,
                )
            }
        },
        V::Date(b) => ("idx_date", date_condition(b, "lo", "hi"), false),
        V::Number(b) => ("idx_number", number_condition(sql, b, "value"), false),
        V::Quantity(q) => {
            let mut cond = vec![number_condition(sql, &q.number, "value")];
            if let Some(code) = q.code {
                cond.push(format!("code = {code}"));
            }
            if let Some(system) = q.system {
                cond.push(format!("system = {system}"));
            }
            ("idx_quantity", cond.join(" AND "), false)
        }
        V::Reference(r) => {
            let mut cond = format!("target = {}", r.target);
            if let Some(t) = r.target_type {
                cond.push_str(&format!(" AND target_type = {t}"));
            }
            ("idx_reference", cond, true)
        }
        V::Uri { value } => ("idx_uri", format!("value = {value}"), true),
        V::UriBelow { param, prefix } => (
            "idx_uri",
            format!(
                "value IN (SELECT value FROM uri_below WHERE tenant = {tenant} AND param = {param} AND prefix = {prefix})"
            ),
            false,
        ),
        V::Composite { key } => ("idx_composite", format!("key = {key}"), true),
        V::CompositeRange { key, bound } => {
            let cond = match bound {
                CompositeBound::Number(b) => number_condition(sql, b, "lo"),
                // Stored as REAL: milliseconds stay exact far beyond any date.
                CompositeBound::Date(b) => date_condition(b, "lo", "hi"),
            };
            (
                "idx_composite_range",
                format!("key = {key} AND {cond}"),
                false,
            )
        }
        V::Id(_) | V::LastUpdated(_) | V::Chain(_) | V::Has(_) | V::FullText { .. } => return None,
    })
}

/// The rows of one value of `c`; `None` for values that are conditions on the resource row
/// only (`_lastUpdated`), or `_id` without a resource type.
fn value_rows(
    s: &Scope<'_>,
    sql: &mut Sql,
    rt: Option<&str>,
    c: &Criterion,
    v: &V,
) -> Option<Rows> {
    let t = s.tenant;
    if let Some((table, cond, ordered)) = index_condition(sql, s.tenant, v) {
        let probe_order = match v {
            V::Date(b) if matches!(b.prefix, DatePrefix::Ge | DatePrefix::Gt | DatePrefix::Sa) => {
                Some(" ORDER BY lo DESC")
            }
            _ => None,
        };
        return Some(Rows {
            sql: format!(
                "SELECT rid FROM {table} WHERE tenant = {t} AND param = {} AND {cond}",
                c.param
            ),
            ordered,
            probe_order,
        });
    }
    match v {
        V::Id(id) => {
            let code = s.type_code(rt?)?;
            let idv = sql.arg(id.clone());
            Some(Rows {
                sql: format!(
                    "SELECT rid FROM resource WHERE tenant = {t} AND rtype = {code} AND idh = {} AND id = {idv} AND {}",
                    hash(id),
                    s.live("resource")
                ),
                ordered: true,
                probe_order: None,
            })
        }
        V::Chain(chain) => {
            let target = keys::type_key(&chain.target_type);
            let Some(code) = s.type_code(&chain.target_type) else {
                return Some(Rows {
                    sql: NO_ROWS.into(),
                    ordered: true,
                    probe_order: None,
                });
            };
            let inner = filter_on(s, sql, &chain.target_type, code, &chain.criteria, "c");
            Some(Rows {
                sql: format!(
                    "SELECT rid FROM idx_reference WHERE tenant = {t} AND param = {} AND target_type = {target}
                     AND target IN (SELECT c.idh FROM resource c WHERE {inner})",
                    c.param
                ),
                ordered: false, probe_order: None,
            })
        }
        V::FullText {
            narrative_only,
            words,
        } => {
            let q = FullTextQuery {
                narrative_only: *narrative_only,
                words,
            };
            let rtype = rt.and_then(|t| s.type_code(t));
            Some(Rows {
                sql: (s.dialect.fulltext_rows)(sql, t, rtype, &q),
                ordered: false,
                probe_order: None,
            })
        }
        V::Has(has) => {
            let rt = rt?;
            let code = s.type_code(rt)?;
            Some(Rows {
                sql: format!(
                    "SELECT h.rid FROM resource h WHERE h.tenant = {t} AND h.rtype = {code} AND {}
                     AND h.idh IN ({})",
                    s.live("h"),
                    has_targets(s, sql, rt, has)?
                ),
                ordered: false,
                probe_order: None,
            })
        }
        _ => None,
    }
}

/// The id hashes that resources of the `_has` source type refer to (as `rt`) and that match.
fn has_targets(
    s: &Scope<'_>,
    sql: &mut Sql,
    rt: &str,
    has: &crate::search::HasValue,
) -> Option<String> {
    let source = s.type_code(&has.source_type)?;
    let inner = filter_on(s, sql, &has.source_type, source, &has.criteria, "hs");
    // By source resource (the `(rid, param)` index): from the matching sources to their targets.
    Some(format!(
        "SELECT target FROM idx_reference WHERE {}rid IN (SELECT hs.rid FROM resource hs WHERE {inner})
         AND param = {} AND target_type = {}",
        s.rid_tenant(""),
        has.param,
        keys::type_key(rt)
    ))
}

/// `alias` is a live resource of `rt` matching every criterion: the first criterion with rows
/// drives (SQLite materialises it), the others are checks. Used inside chains, whose inner sets
/// are small by construction or not at all (then no plan helps).
fn filter_on(
    s: &Scope<'_>,
    sql: &mut Sql,
    rt: &str,
    type_code: i64,
    criteria: &[Criterion],
    alias: &str,
) -> String {
    let nested = format!("{alias}x");
    let mut conds = vec![format!(
        "{alias}.tenant = {} AND {alias}.rtype = {type_code} AND {}",
        s.tenant,
        s.live(alias)
    )];
    let mut driven = false;
    for c in criteria {
        if !driven && let Some(r) = rows(s, sql, Some(rt), c) {
            conds.push(format!("{alias}.rid IN ({})", r.sql));
            driven = true;
        } else {
            conds.push(check(s, sql, Some(rt), c, alias, &nested));
        }
    }
    conds.join(" AND ")
}

/// The rows of a criterion (its values OR-ed); `None` when it cannot drive a search.
pub(crate) fn rows(s: &Scope<'_>, sql: &mut Sql, rt: Option<&str>, c: &Criterion) -> Option<Rows> {
    if c.negated {
        return None;
    }
    if let Some(missing) = c.missing {
        let table = c.kind.and_then(table_of)?;
        return (!missing).then(|| Rows {
            sql: format!(
                "SELECT rid FROM {table} WHERE tenant = {} AND param = {}",
                s.tenant, c.param
            ),
            ordered: false,
            probe_order: None,
        });
    }
    let mut parts = Vec::new();
    for v in &c.values {
        parts.push(value_rows(s, sql, rt, c, v)?);
    }
    match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(Rows {
            sql: parts
                .into_iter()
                .map(|p| p.sql)
                .collect::<Vec<_>>()
                .join(" UNION "),
            ordered: false,
            probe_order: None,
        }),
    }
}

/// A condition on the resource row `alias` (with `alias.rid`, `alias.id`, …) that holds when it
/// matches the criterion; `scratch` names nested aliases.
pub(crate) fn check(
    s: &Scope<'_>,
    sql: &mut Sql,
    rt: Option<&str>,
    c: &Criterion,
    alias: &str,
    scratch: &str,
) -> String {
    let t = s.tenant;
    if let Some(missing) = c.missing {
        let Some(table) = c.kind.and_then(table_of) else {
            return TRUE.into();
        };
        let present = if has_rid_index(table) {
            format!(
                "EXISTS (SELECT 1 FROM {table} WHERE {}rid = {alias}.rid AND param = {})",
                s.rid_tenant(""),
                c.param
            )
        } else {
            format!(
                "{alias}.rid IN (SELECT rid FROM {table} WHERE tenant = {t} AND param = {})",
                c.param
            )
        };
        return if missing {
            format!("NOT ({present})")
        } else {
            present
        };
    }
    let mut alternatives = Vec::new();
    for v in &c.values {
        alternatives.push(value_check(s, sql, rt, c, v, alias, scratch));
    }
    let any = match alternatives.len() {
        0 => TRUE.to_owned(),
        1 => alternatives.remove(0),
        _ => format!("({})", alternatives.join(" OR ")),
    };
    if c.negated {
        format!("NOT ({any})")
    } else {
        any
    }
}

fn value_check(
    s: &Scope<'_>,
    sql: &mut Sql,
    rt: Option<&str>,
    c: &Criterion,
    v: &V,
    alias: &str,
    scratch: &str,
) -> String {
    let t = s.tenant;
    match v {
        V::Id(id) => {
            let idv = sql.arg(id.clone());
            format!("({alias}.idh = {} AND {alias}.id = {idv})", hash(id))
        }
        V::LastUpdated(b) => {
            // The resource table keeps microseconds; the bound is in microseconds too.
            date_condition(
                b,
                &format!("{alias}.updated_us"),
                &format!("{alias}.updated_us"),
            )
        }
        V::Has(has) => match rt.and_then(|rt| has_targets(s, sql, rt, has)) {
            Some(targets) => format!("{alias}.idh IN ({targets})"),
            None => FALSE.into(),
        },
        V::FullText {
            narrative_only,
            words,
        } => {
            let q = FullTextQuery {
                narrative_only: *narrative_only,
                words,
            };
            (s.dialect.fulltext_check)(sql, t, alias, &q)
        }
        V::Chain(_) => match value_rows(s, sql, rt, c, v) {
            Some(rows) => format!("{alias}.rid IN ({})", rows.sql),
            None => FALSE.into(),
        },
        _ => {
            let Some((table, cond, seekable)) = index_condition(sql, s.tenant, v) else {
                return FALSE.into();
            };
            if seekable {
                format!(
                    "EXISTS (SELECT 1 FROM {table} {scratch} WHERE tenant = {t} AND param = {} AND {cond} AND {scratch}.rid = {alias}.rid{})",
                    c.param, s.fence
                )
            } else if has_rid_index(table) {
                format!(
                    "EXISTS (SELECT 1 FROM {table} {scratch} WHERE {}{scratch}.rid = {alias}.rid AND param = {} AND {cond}{})",
                    s.rid_tenant(&format!("{scratch}.")),
                    c.param,
                    s.fence
                )
            } else {
                format!(
                    "{alias}.rid IN (SELECT rid FROM {table} WHERE tenant = {t} AND param = {} AND {cond})",
                    c.param
                )
            }
        }
    }
}

/// Resources of `rt` in the Patient compartment of the given patients (or of any patient).
pub(crate) fn compartment_rows(
    s: &Scope<'_>,
    sql: &mut Sql,
    rt: Option<&str>,
    f: &CompartmentFilter,
) -> Option<Rows> {
    let rt = rt?;
    if rt == "Patient" {
        let code = s.type_code("Patient")?;
        let ids = f.patients.as_ref()?;
        if ids.is_empty() {
            return Some(Rows {
                sql: NO_ROWS.into(),
                ordered: true,
                probe_order: None,
            });
        }
        let alternatives: Vec<String> = ids
            .iter()
            .map(|id| format!("(idh = {} AND id = {})", hash(id), sql.arg(id.clone())))
            .collect();
        return Some(Rows {
            sql: format!(
                "SELECT rid FROM resource WHERE tenant = {} AND rtype = {code} AND {} AND ({})",
                s.tenant,
                s.live("resource"),
                alternatives.join(" OR ")
            ),
            ordered: ids.len() == 1,
            probe_order: None,
        });
    }
    let params = medicus_fhir::r4().patient_compartment_params(rt);
    if params.is_empty() || f.patients.as_ref().is_some_and(Vec::is_empty) {
        return Some(Rows {
            sql: NO_ROWS.into(),
            ordered: true,
            probe_order: None,
        });
    }
    let keys: Vec<String> = params
        .iter()
        .map(|code| keys::param_key(rt, code).to_string())
        .collect();
    let mut cond = format!(
        "SELECT rid FROM idx_reference WHERE tenant = {} AND param IN ({}) AND target_type = {}",
        s.tenant,
        keys.join(", "),
        keys::type_key("Patient")
    );
    let mut ordered = false;
    if let Some(ids) = &f.patients {
        let targets: Vec<String> = ids.iter().map(|id| keys::hash(id).to_string()).collect();
        cond.push_str(&format!(" AND target IN ({})", targets.join(", ")));
        ordered = ids.len() == 1 && keys.len() == 1;
    }
    Some(Rows {
        sql: cond,
        ordered,
        probe_order: None,
    })
}
