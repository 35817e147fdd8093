//! What the search engine needs from a SQL backend: a way to run a statement over rows, the
//! resource-type codes, and the few places where SQLite and PostgreSQL spell SQL differently.

use crate::error::StoreError;
use crate::search::SortValue;

/// A bound argument: values that come from the query as text or decimals.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Int(i64),
    Real(f64),
    Text(String),
    Null,
}

impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(v)
    }
}

impl From<f64> for Arg {
    fn from(v: f64) -> Arg {
        Arg::Real(v)
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}

/// One result row. Columns are read by position; a backend converts its own column types.
pub(crate) trait Row {
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn text(&self, i: usize) -> Result<String, StoreError>;
    /// A nullable binary column, borrowed from the row (no copy before decompression).
    fn blob(&self, i: usize) -> Result<Option<&[u8]>, StoreError>;
    /// An index column as a sort value (integer, real or text; NULL is `Missing`).
    fn sort_value(&self, i: usize) -> Result<SortValue, StoreError>;
}

/// A connection (or transaction) within which a search runs, seeing one snapshot.
pub(crate) trait Db {
    fn dialect(&self) -> &'static Dialect;
    /// The code of a resource type in `resource.rtype`; `None` for a type the store never saw.
    fn type_code(&self, resource_type: &str) -> Option<i64>;
    fn type_name(&self, code: i64) -> Result<&'static str, StoreError>;
    /// Runs `sql` with `args`, handing each row to `each` until it returns `Ok(false)`.
    fn query(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&dyn Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;

    /// Runs independent statements in order, handing each row to `each` with the index of its
    /// statement (until `each` returns `Ok(false)` for that statement). A backend with a
    /// network between it and the data sends them together: one round trip for all.
    fn query_all(
        &self,
        statements: &[(&str, &[Arg])],
        each: &mut dyn FnMut(usize, &dyn Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for (i, (sql, args)) in statements.iter().enumerate() {
            self.query(sql, args, &mut |r| each(i, r))?;
        }
        Ok(())
    }

    /// The first column of the first row, as an integer (a `count(*)`).
    fn count(&self, sql: &str, args: &[Arg]) -> Result<i64, StoreError> {
        let mut n = 0;
        self.query(sql, args, &mut |r| {
            n = r.int(0)?;
            Ok(false)
        })?;
        Ok(n)
    }
}

/// How the two SQL dialects differ where the engine writes SQL.
pub(crate) struct Dialect {
    /// The placeholder of the `n`-th (1-based) argument.
    pub placeholder: fn(usize, &Arg) -> String,
    /// `alias` is a live resource (`deleted` is an integer in SQLite, a boolean in PostgreSQL).
    pub live: fn(&str) -> String,
    /// A join whose order the engine chose (SQLite: `CROSS JOIN` keeps the order; PostgreSQL
    /// plans joins itself and has no such hint).
    pub ordered_join: &'static str,
    /// Whether lookups by surrogate key also name the tenant. Surrogate keys are unique across
    /// tenants in both backends; PostgreSQL needs the tenant to pick the partition, while in
    /// SQLite the extra term could steer the planner away from the `(rid, param)` indexes.
    pub tenant_on_rid_lookups: bool,
    /// Whether a query driven by an ordered subquery repeats `ORDER BY` after its joins.
    /// PostgreSQL needs it to guarantee the order (and knows the rows come sorted); SQLite keeps
    /// the driver's order through `CROSS JOIN` but would sort every row again, losing the early
    /// stop of a page.
    pub order_after_join: bool,
    /// Appended inside a per-candidate `EXISTS` check when the driving set is small and exactly
    /// counted, so that the check stays a seek per candidate. PostgreSQL otherwise flattens
    /// the check into a semi-join planned for the estimated (often far larger) driver and reads
    /// the check's whole index range (`OFFSET 0` keeps a subquery from being pulled up).
    pub check_fence: &'static str,
    /// A total over a driver with other clauses to check is counted by default (without
    /// `_total=accurate`) only up to this many driving rows: the checks cost a seek per
    /// candidate, which SQLite does in-process and PostgreSQL through its executor at several
    /// times the cost.
    pub checked_count_limit: u64,
    /// Whether the planner's first probes of the ordered clauses go out as one statement
    /// (a round trip and a plan per statement cost more than counting a few thousand index
    /// rows that a sequence of probes with shrinking bounds would skip).
    pub batch_probes: bool,
    /// Whether the first page of a search whose total is counted exactly over a small driver
    /// gets the total as a window count in its own rows (one statement to plan instead of two).
    pub total_in_page: bool,
    /// The hint to read `version` by its `(tenant, rtype, tx)` index.
    pub version_by_type: &'static str,
    /// Rows of the full-text table matching the words in `column` (`None`: every string) as
    /// `SELECT <rid>`, restricted to `tenant`; `rtype` restricts the type when given.
    pub fulltext_rows: fn(&mut super::sql::Sql, i64, Option<i64>, &FullTextQuery) -> String,
    /// A condition: resource `alias` has the words.
    pub fulltext_check: fn(&mut super::sql::Sql, i64, &str, &FullTextQuery) -> String,
}

/// `_text` / `_content`: words, all required, in the narrative or in every string.
pub(crate) struct FullTextQuery<'a> {
    pub narrative_only: bool,
    pub words: &'a [String],
}
