//! The search engine of the SQL backends (SQLite and PostgreSQL share the index tables): the
//! planner picks a driving clause ([`plan`]), the others become checks ([`clause`]); pages
//! continue by surrogate key, or by sort key for `_sort` ([`sort`]). A backend provides a
//! [`Db`] (statements over rows, type codes) and its [`Dialect`].

mod clause;
pub(crate) mod db;
mod plan;
mod sort;
mod sql;

use crate::api::{RawPage, RawResource, ResourceVersion};
use crate::codec;
use crate::error::StoreError;
use crate::search::{SearchPage, SearchQuery};
use clause::Scope;
pub(crate) use db::{Arg, Db, Dialect, FullTextQuery, Row};
use plan::Plan;
pub(crate) use sql::Sql;

/// A LIMIT that never binds.
const UNBOUNDED: i64 = i64::MAX;

const COLUMNS: &str = "r.rid, r.rtype, r.id, r.version, r.tx, r.updated_us, v.body";

/// The current version of resource `r`.
const CURRENT_VERSION: &str = "v.tenant = r.tenant AND v.rid = r.rid AND v.version = r.version";

/// The conditions every match satisfies apart from the driving clause: live, this tenant,
/// this type, and every other clause checked on `r`.
fn conditions(
    plan: &Plan<'_>,
    s: &Scope<'_>,
    sql: &mut Sql,
    rt_code: Option<i64>,
    rt: Option<&str>,
) -> Vec<String> {
    conditions_except(plan, s, sql, rt_code, rt, plan.driver)
}

fn conditions_except(
    plan: &Plan<'_>,
    s: &Scope<'_>,
    sql: &mut Sql,
    rt_code: Option<i64>,
    rt: Option<&str>,
    skip: Option<usize>,
) -> Vec<String> {
    let mut out = vec![format!("r.tenant = {}", s.tenant), s.live("r")];
    if let Some(code) = rt_code {
        out.push(format!("r.rtype = {code}"));
    }
    for (i, c) in plan.clauses.iter().enumerate() {
        if Some(i) != skip {
            out.push(c.check(s, sql, rt, "r"));
        }
    }
    out
}

/// The matches in surrogate-key order after `cursor`, at most `limit` (all when `None`).
fn match_query(
    plan: &Plan<'_>,
    s: &Scope<'_>,
    rt_code: Option<i64>,
    rt: Option<&str>,
    cursor: Option<i64>,
    limit: Option<usize>,
    extra: Option<&str>,
) -> (String, Sql) {
    let mut sql = Sql::new(s.dialect);
    let after = cursor.unwrap_or(i64::MIN);
    let limit = limit.map_or(String::new(), |n| {
        format!(" LIMIT {}", i64::try_from(n).unwrap_or(i64::MAX))
    });
    let driver = plan
        .driver
        .and_then(|d| plan.clauses[d].rows(s, &mut sql, rt));
    let mut conds = conditions(plan, s, &mut sql, rt_code, rt);
    conds.extend(extra.map(str::to_owned));
    let conds = conds.join(" AND ");
    let join = s.dialect.ordered_join;
    let text = match driver {
        // Rows in key order: SQLite walks the index and stops when the page is full; other
        // rows are collected and sorted once (the driver is the smallest clause).
        Some(rows) => format!(
            // The LIMIT keeps SQLite from dropping the subquery's ORDER BY (it omits ORDER BY in
            // FROM-clause subqueries without one), which would lose the page order.
            "SELECT {COLUMNS} FROM (SELECT DISTINCT rid FROM ({}) AS m WHERE rid > {after} ORDER BY rid LIMIT {UNBOUNDED}) d
             {join} resource r ON r.rid = d.rid
             JOIN version v ON {CURRENT_VERSION}
             WHERE {conds}{}{limit}",
            rows.sql,
            if s.dialect.order_after_join {
                " ORDER BY d.rid"
            } else {
                ""
            }
        ),
        None => format!(
            "SELECT {COLUMNS} FROM resource r JOIN version v ON {CURRENT_VERSION}
             WHERE r.rid > {after} AND {conds} ORDER BY r.rid{limit}"
        ),
    };
    (text, sql)
}

/// The statement counting the matches: distinct resources of the driving clause that pass the
/// checks.
fn count_query(
    plan: &Plan<'_>,
    s: &Scope<'_>,
    rt_code: Option<i64>,
    rt: Option<&str>,
) -> (String, Sql) {
    let mut sql = Sql::new(s.dialect);
    let driver = plan
        .driver
        .and_then(|d| plan.clauses[d].rows(s, &mut sql, rt));
    let text = match driver {
        // Index rows exist only for live resources of the parameter's type: with nothing else
        // to check, counting distinct resources of the index range is the answer.
        Some(rows) if plan.clauses.len() == 1 => {
            format!(
                "SELECT count(*) FROM (SELECT DISTINCT rid FROM ({}) AS m) AS d",
                rows.sql
            )
        }
        Some(rows) => {
            let conds = conditions(plan, s, &mut sql, rt_code, rt).join(" AND ");
            format!(
                "SELECT count(*) FROM (SELECT DISTINCT rid FROM ({}) AS m) d {} resource r ON r.rid = d.rid WHERE {conds}",
                rows.sql, s.dialect.ordered_join
            )
        }
        None => {
            let conds = conditions(plan, s, &mut sql, rt_code, rt).join(" AND ");
            format!("SELECT count(*) FROM resource r WHERE {conds}")
        }
    };
    (text, sql)
}

fn count_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The store's view for the planner and the searched type's code (`None` for a system-wide
/// search; `prepare` gives no `Prepared` for a type the store does not know: nothing matches).
struct Prepared<'a> {
    scope: Scope<'a>,
    rt_code: Option<i64>,
}

fn prepare<'a>(db: &'a dyn Db, tenant: i64, rt: Option<&str>) -> Option<Prepared<'a>> {
    let rt_code = match rt {
        Some(t) => Some(db.type_code(t)?),
        None => None,
    };
    Some(Prepared {
        scope: Scope {
            tenant,
            db,
            dialect: db.dialect(),
            fence: "",
        },
        rt_code,
    })
}

/// A row of `COLUMNS` as a resource version.
fn version_of(db: &dyn Db, r: &dyn Row) -> Result<ResourceVersion, StoreError> {
    Ok(ResourceVersion {
        resource_type: db.type_name(r.int(1)?)?.to_owned(),
        id: r.text(2)?,
        version: r.int(3)?,
        tx: r.int(4)?,
        last_updated_us: r.int(5)?,
        body: r.blob(6)?.map(codec::decode).transpose()?,
    })
}

pub(crate) fn search(
    db: &dyn Db,
    tenant: i64,
    rt: Option<&str>,
    q: &SearchQuery,
) -> Result<SearchPage, StoreError> {
    let Some(mut p) = prepare(db, tenant, rt) else {
        return Ok(SearchPage {
            resources: Vec::new(),
            total: q.total.then_some(0),
            next_cursor: None,
            next_sort: None,
            plan: q
                .explain
                .then(|| "unknown resource type: no matches".to_owned()),
        });
    };
    let mut plan = plan::plan(db, &p.scope, rt, q)?;
    p.scope = statement_scope(&plan, &p.scope);
    let exact_estimate = plan.exact_driver().filter(|_| plan.clauses.len() == 1);
    // Without `_total=accurate`, a total is given when it is cheap (few candidates) or falls
    // out of the page itself: counting a million matches must not slow down every page.
    let mut total = None;
    let counting = if !q.total {
        None
    } else if q.total_estimate
        && let Some(e) = exact_estimate
    {
        total = Some(e.rows);
        None
    } else if q.total_accurate || q.count == 0 {
        Some(Counting::Exact(count_query(&plan, &p.scope, p.rt_code, rt)))
    } else if plan.unprobed() {
        plan.unprobed_total(&p.scope, rt).map(Counting::Bounded)
    } else if cheap_to_count(db, &plan, &p)? {
        Some(Counting::Exact(count_query(&plan, &p.scope, p.rt_code, rt)))
    } else {
        None
    };
    let first_page = q.cursor.is_none() && q.sort_after.is_none();
    if q.count == 0 || !q.sort.is_empty() {
        if let Some(c) = &counting {
            let (text, sql) = c.statement();
            db.query(text, &sql.args, &mut |r| {
                total = c.total(&mut plan, r)?;
                Ok(false)
            })?;
        }
        let explain = q.explain.then(|| plan.describe(rt));
        if q.count == 0 {
            return Ok(SearchPage {
                resources: Vec::new(),
                total,
                next_cursor: None,
                next_sort: None,
                plan: explain,
            });
        }
        let mut page = sort::page(db, &plan, &p.scope, p.rt_code, rt, q)?;
        page.total = total.or_else(|| {
            (q.total && first_page && page.next_sort.is_none())
                .then_some(page.resources.len() as u64)
        });
        page.plan = match explain {
            Some(e) => Some(format!("{e}; {}", page.plan.unwrap_or_default())),
            None => None,
        };
        return Ok(page);
    }
    let (mut text, sql) = match_query(
        &plan,
        &p.scope,
        p.rt_code,
        rt,
        q.cursor,
        Some(q.count + 1),
        None,
    );
    // A first page over a small, exactly counted driver can carry the total itself: the window
    // count sees every match before the LIMIT, and one statement is planned instead of two.
    let mut total_in_page = false;
    let counting = match counting {
        Some(Counting::Exact(_))
            if p.scope.dialect.total_in_page && first_page && plan.exact_driver().is_some() =>
        {
            text = text.replacen(COLUMNS, &format!("{COLUMNS}, count(*) OVER ()"), 1);
            // No row: nothing matched.
            total = Some(0);
            total_in_page = true;
            None
        }
        other => other,
    };
    // Otherwise the count and the page need nothing from each other: one round trip for both.
    let (mut resources, mut rids) = (Vec::new(), Vec::new());
    let page: (&str, &[Arg]) = (&text, &sql.args);
    let statements = match &counting {
        Some(c) => {
            let (count_text, count_sql) = c.statement();
            vec![(count_text.as_str(), &count_sql.args[..]), page]
        }
        None => vec![page],
    };
    let page_index = statements.len() - 1;
    db.query_all(&statements, &mut |i, r| {
        if i < page_index {
            if let Some(c) = &counting {
                total = c.total(&mut plan, r)?;
            }
            return Ok(false);
        }
        if total_in_page && resources.is_empty() {
            total = Some(count_of(r.int(7)?));
        }
        rids.push(r.int(0)?);
        resources.push(version_of(db, r)?);
        Ok(true)
    })?;
    let next_cursor = if resources.len() > q.count {
        resources.truncate(q.count);
        rids.get(q.count - 1).copied()
    } else {
        None
    };
    let total = total.or_else(|| {
        (q.total && first_page && next_cursor.is_none()).then_some(resources.len() as u64)
    });
    Ok(SearchPage {
        resources,
        total,
        next_cursor,
        next_sort: None,
        plan: q.explain.then(|| plan.describe(rt)),
    })
}

/// How the total of a search is counted.
enum Counting {
    /// Every match (`count_query`).
    Exact((String, Sql)),
    /// The rows of an unprobed single clause up to a bound (`Plan::unprobed_total`): the
    /// total when below it, else unknown.
    Bounded((String, Sql)),
}

impl Counting {
    fn statement(&self) -> &(String, Sql) {
        match self {
            Counting::Exact(s) | Counting::Bounded(s) => s,
        }
    }

    /// The total from the count's row; a bounded count also tells the plan what it found.
    fn total(&self, plan: &mut Plan<'_>, r: &dyn Row) -> Result<Option<u64>, StoreError> {
        Ok(match self {
            Counting::Exact(_) => Some(count_of(r.int(0)?)),
            Counting::Bounded(_) => {
                let rows = count_of(r.int(0)?);
                plan.set_unprobed_estimate(rows);
                (rows < plan::PROBE_CAP).then_some(count_of(r.int(1)?))
            }
        })
    }
}

/// The scope for the statements of `plan`: per-candidate checks fenced (where the dialect
/// wants it) when the driver is small enough to be counted exactly.
fn statement_scope<'a>(plan: &Plan<'_>, s: &Scope<'a>) -> Scope<'a> {
    Scope {
        fence: if plan.exact_driver().is_some() {
            s.dialect.check_fence
        } else {
            ""
        },
        ..*s
    }
}

/// Whether counting costs little: the driver has few rows, or (without one) the type has few
/// resources.
fn cheap_to_count(db: &dyn Db, plan: &Plan<'_>, p: &Prepared<'_>) -> Result<bool, StoreError> {
    if let Some(d) = plan.driver {
        return Ok(plan.estimates[d].is_some_and(|e| {
            e.exact && (plan.clauses.len() == 1 || e.rows <= db.dialect().checked_count_limit)
        }));
    }
    let Some(code) = p.rt_code else {
        return Ok(false);
    };
    let n = db.count(
        &format!(
            "SELECT count(*) FROM (SELECT 1 FROM resource WHERE tenant = {} AND rtype = {code} AND {} LIMIT {}) AS probe",
            p.scope.tenant,
            p.scope.live("resource"),
            plan::PROBE_CAP
        ),
        &[],
    )?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX) < plan::PROBE_CAP)
}

/// `search` with the stored JSON bytes: only zstd decompression per row, no JSON parse.
pub(crate) fn search_raw(
    db: &dyn Db,
    tenant: i64,
    rt: Option<&str>,
    q: &SearchQuery,
) -> Result<RawPage, StoreError> {
    let Some(mut p) = prepare(db, tenant, rt) else {
        return Ok(RawPage::default());
    };
    if q.count == 0 {
        return Ok(RawPage::default());
    }
    let plan = plan::plan(db, &p.scope, rt, q)?;
    p.scope = statement_scope(&plan, &p.scope);
    let (text, sql) = match_query(
        &plan,
        &p.scope,
        p.rt_code,
        rt,
        q.cursor,
        Some(q.count + 1),
        None,
    );
    let mut resources = Vec::with_capacity(q.count.min(1024));
    let mut more = false;
    db.query(&text, &sql.args, &mut |r| {
        if resources.len() == q.count {
            more = true;
            return Ok(false);
        }
        if let Some(res) = raw_of(db, r)? {
            resources.push(res);
        }
        Ok(true)
    })?;
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

fn raw_of(db: &dyn Db, r: &dyn Row) -> Result<Option<RawResource>, StoreError> {
    let json = match r.blob(6)? {
        Some(b) => codec::decode_raw(b)?,
        // Current versions of live resources always have a body.
        None => return Ok(None),
    };
    Ok(Some(RawResource {
        resource_type: db.type_name(r.int(1)?)?.to_owned(),
        id: r.text(2)?,
        key: r.int(0)?,
        json,
    }))
}

/// `search_raw` over all matches as one statement: the query (including a compartment's
/// resource list) is evaluated once, and rows are handed over as SQLite produces them.
pub(crate) fn scan_raw(
    db: &dyn Db,
    tenant: i64,
    rt: Option<&str>,
    q: &SearchQuery,
    each: &mut dyn FnMut(RawResource) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let Some(mut p) = prepare(db, tenant, rt) else {
        return Ok(());
    };
    let plan = plan::plan(db, &p.scope, rt, q)?;
    p.scope = statement_scope(&plan, &p.scope);
    let (text, sql) = match_query(&plan, &p.scope, p.rt_code, rt, q.cursor, None, None);
    db.query(&text, &sql.args, &mut |r| match raw_of(db, r)? {
        Some(res) => each(res),
        None => Ok(true),
    })
}
