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
    /// The driver was not probed (a single ordered clause).
    pub fn unprobed(&self) -> bool {
        self.driver.is_some_and(|d| self.estimates[d].is_none())
    }

    /// The driver's size is known exactly.
    pub fn exact_driver(&self) -> Option<Estimate> {
        self.driver
            .and_then(|d| self.estimates[d])
            .filter(|e| e.exact)
    }

    /// The bounded count that gives the total of an unprobed single clause when it has fewer
    /// than `PROBE_CAP` rows (then every row was seen and the distinct count is exact).
    pub fn unprobed_total(&self, s: &Scope<'_>, rt: Option<&str>) -> Option<(String, Sql)> {
        let mut sql = Sql::new(s.dialect);
        let rows = self.clauses.first()?.rows(s, &mut sql, rt)?;
        let text = format!(
            "SELECT count(*), count(DISTINCT rid) FROM ({}{} LIMIT {PROBE_CAP}) AS probe",
            rows.sql,
            rows.probe_order.unwrap_or("")
        );
        Some((text, sql))
    }

    /// Records what the bounded count of `unprobed_total` found (`rows` index rows), for the
    /// plan's description.
    pub fn set_unprobed_estimate(&mut self, rows: u64) {
        if let Some(d) = self.driver {
            self.estimates[d] = Some(Estimate {
                rows,
                exact: rows < PROBE_CAP,
            });
        }
    }

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

/// The first probe of every clause whose rows come in key order, as one statement: one round
/// trip and one plan where each probe would cost its own (`Dialect::batch_probes`). Every probe
/// counts up to `PROBE_CAP`; the smallest exact count still wins.
fn batch_probe(
    db: &dyn Db,
    s: &Scope<'_>,
    rt: Option<&str>,
    clauses: &[Clause<'_>],
) -> Result<Vec<Option<Estimate>>, StoreError> {
    let mut sql = Sql::new(s.dialect);
    let mut probed = Vec::new();
    let mut columns = Vec::new();
    for (i, c) in clauses.iter().enumerate() {
        let mut own = Sql::new(s.dialect);
        if !c.rows(s, &mut own, rt).is_some_and(|r| r.ordered) {
            continue;
        }
        // Written again into the shared argument list, so placeholders number on.
        if let Some(rows) = c.rows(s, &mut sql, rt) {
            columns.push(format!(
                "(SELECT count(*) FROM ({}{} LIMIT {PROBE_CAP}) AS p)",
                rows.sql,
                rows.probe_order.unwrap_or("")
            ));
            probed.push(i);
        }
    }
    let mut out = vec![None; clauses.len()];
    if probed.len() < 2 {
        return Ok(out);
    }
    db.query(
        &format!("SELECT {}", columns.join(", ")),
        &sql.args,
        &mut |r| {
            for (col, &i) in probed.iter().enumerate() {
                let n = u64::try_from(r.int(col)?).unwrap_or(0);
                out[i] = Some(Estimate {
                    rows: n,
                    exact: n < PROBE_CAP,
                });
            }
            Ok(false)
        },
    )?;
    Ok(out)
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
    // One clause whose rows come in key order drives whatever its size: a probe would only
    // tell whether a total is cheap, which a bounded count beside the page answers as well
    // (`unprobed_total`). Sorting and `_total=estimate` still take the estimate.
    if let [only] = &clauses[..]
        && q.sort.is_empty()
        && !q.total_estimate
        && only
            .rows(s, &mut Sql::new(s.dialect), rt)
            .is_some_and(|r| r.ordered)
    {
        return Ok(Plan {
            clauses,
            driver: Some(0),
            estimates: vec![None],
            ordered: vec![true],
        });
    }
    let mut order: Vec<usize> = (0..clauses.len()).collect();
    order.sort_by_key(|&i| probe_rank(&clauses[i]));
    let mut estimates = vec![None; clauses.len()];
    let mut ordered = vec![false; clauses.len()];
    let mut best: Option<(usize, Estimate)> = None;
    let batched = if s.dialect.batch_probes {
        batch_probe(db, s, rt, &clauses)?
    } else {
        vec![None; clauses.len()]
    };
    for &i in &order {
        if let Some(e) = batched[i] {
            ordered[i] = true;
            estimates[i] = Some(e);
            if best.is_none_or(|(_, b)| smaller(e, b)) {
                best = Some((i, e));
            }
            continue;
        }
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
        let mut large: Vec<usize> = (0..clauses.len())
            .filter(|&i| estimates[i].is_some_and(|e| !e.exact))
            .collect();
        if large.len() > 1 || best.is_some_and(|(i, _)| !ordered[i]) {
            best = None;
            // Ordered clauses first: once one is counted exactly, a range needs counting only
            // up to that size (a `date=ge…` range can hold far more rows than a code).
            large.sort_by_key(|&i| !ordered[i]);
            for i in large {
                let mut sql = Sql::new(s.dialect);
                if let Some(rows) = clauses[i].rows(s, &mut sql, rt) {
                    let cap = match best {
                        Some((_, b)) if b.exact && !ordered[i] => (b.rows + 1).min(DEEP_PROBE_CAP),
                        _ => DEEP_PROBE_CAP,
                    };
                    let e = probe(db, &rows, &sql, cap)?;
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
