//! The query planner: estimates each clause by a bounded count over its index (the B-tree is
//! the statistic: exact up to the bound), drives the search from the most selective clause and
//! checks the others per candidate by seeks.

use super::clause::{self, Rows, Scope};
use super::db::Db;
use super::sql::{FALSE, Sql, TRUE};
use crate::error::StoreError;
use crate::search::{Criterion, SearchQuery};

/// Probe bound: a clause with more rows than this counts as "large".
pub(crate) const PROBE_CAP: u64 = 4_096;
/// Second probe bound, used only to pick between several large clauses.
const DEEP_PROBE_CAP: u64 = 131_072;

/// One AND-ed clause of a search: a criterion or the compartment filter.
pub(crate) enum Clause<'q> {
    Criterion(&'q Criterion),
    Compartment(&'q crate::search::CompartmentFilter),
}

impl Clause<'_> {
    pub fn label(&self) -> String {
        match self {
            Clause::Criterion(c) => {
                let mut l = c.code.clone();
                if c.negated {
                    l.push_str(":not");
                }
                if let Some(m) = c.missing {
                    l.push_str(&format!(":missing={m}"));
                }
                l
            }
            Clause::Compartment(_) => "compartment".into(),
        }
    }

    pub fn rows(&self, s: &Scope<'_>, sql: &mut Sql, rt: Option<&str>) -> Option<Rows> {
        match self {
            Clause::Criterion(c) => clause::rows(s, sql, rt, c),
            Clause::Compartment(f) => clause::compartment_rows(s, sql, rt, f),
        }
    }

    pub fn check(&self, s: &Scope<'_>, sql: &mut Sql, rt: Option<&str>, alias: &str) -> String {
        match self {
            Clause::Criterion(c) => clause::check(s, sql, rt, c, alias, "x"),
            Clause::Compartment(_) => match self.rows(s, sql, rt) {
                Some(rows) => format!("{alias}.rid IN ({})", rows.sql),
                // Every Patient is in its own compartment; a system-wide search has no type
                // whose compartment parameters could be checked.
                None if rt == Some("Patient") => TRUE.into(),
                None => FALSE.into(),
            },
        }
    }
}

/// A clause's estimated number of matching rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Estimate {
    pub rows: u64,
    /// The probe did not reach its bound: `rows` is the exact number of index rows.
    pub exact: bool,
}

pub(crate) struct Plan<'q> {
    pub clauses: Vec<Clause<'q>>,
    /// Index into `clauses` of the driving clause; `None`: scan the type.
    pub driver: Option<usize>,
    pub estimates: Vec<Option<Estimate>>,
    /// Per clause: its rows come in surrogate-key order (see `Rows::ordered`).
    pub ordered: Vec<bool>,
}

impl Plan<'_> {
    pub fn describe(&self, rt: Option<&str>) -> String {
        let mut out = String::new();
        match self.driver {
            Some(d) => {
                let mode = if self.ordered[d] {
                    "streamed in key order"
                } else {
                    "materialised"
                };
                out.push_str(&format!(
                    "drive: {} ({}, {mode})",
                    self.clauses[d].label(),
                    fmt_estimate(self.estimates[d])
                ));
            }
            None => out.push_str(&format!(
                "drive: scan of {} in key order",
                rt.unwrap_or("all types")
            )),
        }
        for (i, c) in self.clauses.iter().enumerate() {
            if Some(i) != self.driver {
                out.push_str(&format!(
                    "; check: {} ({})",
                    c.label(),
                    fmt_estimate(self.estimates[i])
                ));
            }
        }
        out
    }
}

fn fmt_estimate(e: Option<Estimate>) -> String {
    match e {
        Some(Estimate { rows, exact: true }) => format!("{rows} rows"),
        Some(Estimate { rows, exact: false }) => format!("more than {rows} rows"),
        None => "checked per candidate".into(),
    }
}

fn probe(db: &dyn Db, rows: &Rows, sql: &Sql, cap: u64) -> Result<Estimate, StoreError> {
    let text = format!(
        "SELECT count(*) FROM ({}{} LIMIT {cap}) AS probe",
        rows.sql,
        rows.probe_order.unwrap_or("")
    );
    let n = db.count(&text, &sql.args)?;
    let n = u64::try_from(n).unwrap_or(0);
    Ok(Estimate {
        rows: n,
        exact: n < cap,
    })
}

/// Static order in which clauses are probed: equality on a single key first. A small exact
/// count found early bounds the probes of the rest.
fn probe_rank(c: &Clause<'_>) -> u8 {
    use crate::search::CriterionValue as V;
    match c {
        Clause::Compartment(_) => 1,
        Clause::Criterion(c) => match c.values.first() {
            Some(V::Id(_)) => 0,
            Some(V::Reference(_) | V::Composite { .. } | V::Uri { .. }) => 1,
            Some(V::UriBelow { .. }) => 2,
            Some(V::Token(_)) => 2,
            Some(V::Chain(_) | V::Has(_) | V::FullText { .. }) => 4,
            _ => 3,
        },
    }
}

pub(crate) fn plan<'q>(
    db: &dyn Db,
    s: &Scope<'_>,
    rt: Option<&str>,
    q: &'q SearchQuery,
) -> Result<Plan<'q>, StoreError> {
    let mut clauses: Vec<Clause<'q>> = q.criteria.iter().map(Clause::Criterion).collect();
    if let Some(f) = &q.compartment {
        clauses.push(Clause::Compartment(f));
    }
    let mut order: Vec<usize> = (0..clauses.len()).collect();
    order.sort_by_key(|&i| probe_rank(&clauses[i]));
    let mut estimates = vec![None; clauses.len()];
    let mut ordered = vec![false; clauses.len()];
    let mut best: Option<(usize, Estimate)> = None;
    for &i in &order {
        let mut sql = Sql::new(s.dialect);
        let Some(rows) = clauses[i].rows(s, &mut sql, rt) else {
            continue;
        };
        ordered[i] = rows.ordered;
        // A range scan may read far more rows than it counts (`date=ge…` walks the older
        // dates first): once a clause with a known, bounded size exists, check ranges per
        // candidate instead of probing them.
        if !rows.ordered && best.is_some_and(|(_, e)| e.exact) {
            continue;
        }
        // No need to count past the smallest exact size found so far.
        let cap = match best {
            Some((_, e)) if e.exact => e.rows + 1,
            _ => PROBE_CAP,
        };
        let e = probe(db, &rows, &sql, cap.max(1))?;
        estimates[i] = Some(e);
        if best.is_none_or(|(_, b)| smaller(e, b)) {
            best = Some((i, e));
        }
    }
    // Several large clauses: look deeper to pick between them.
    if let Some((_, b)) = best
        && !b.exact
    {
        let large: Vec<usize> = (0..clauses.len())
            .filter(|&i| estimates[i].is_some_and(|e| !e.exact))
            .collect();
        if large.len() > 1 || best.is_some_and(|(i, _)| !ordered[i]) {
            best = None;
            for i in large {
                let mut sql = Sql::new(s.dialect);
                if let Some(rows) = clauses[i].rows(s, &mut sql, rt) {
                    let e = probe(db, &rows, &sql, DEEP_PROBE_CAP)?;
                    estimates[i] = Some(e);
                    if best.is_none_or(|(_, b)| smaller(e, b)) {
                        best = Some((i, e));
                    }
                }
            }
        }
    }
    // A huge unordered set costs more to materialise than a scan of the type in key order that
    // checks each resource and stops when the page is full.
    if let Some((i, e)) = best
        && rt.is_some()
        && !e.exact
        && e.rows >= DEEP_PROBE_CAP
        && !ordered[i]
    {
        best = None;
    }
    Ok(Plan {
        clauses,
        driver: best.map(|(i, _)| i),
        estimates,
        ordered,
    })
}

fn smaller(a: Estimate, b: Estimate) -> bool {
    match (a.exact, b.exact) {
        (true, false) => true,
        (false, true) => false,
        _ => a.rows < b.rows,
    }
}
