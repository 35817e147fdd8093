//! SQL text with bound arguments, and the comparisons every parameter type shares.
//!
//! Integers the store computes itself (tenant, parameter and value hashes, surrogate keys) are
//! written into the text; everything that comes from the query as text or a decimal is bound.

use super::db::{Arg, Dialect};
use crate::search::{DateBound, DatePrefix, NumberBound};

/// Always true and always false, in both dialects (PostgreSQL has no integer truth values).
pub(crate) const TRUE: &str = "(1 = 1)";
pub(crate) const FALSE: &str = "(1 = 0)";

pub(crate) struct Sql {
    pub args: Vec<Arg>,
    dialect: &'static Dialect,
}

impl Sql {
    pub fn new(dialect: &'static Dialect) -> Sql {
        Sql {
            args: Vec::new(),
            dialect,
        }
    }

    pub fn arg(&mut self, v: impl Into<Arg>) -> String {
        let v = v.into();
        let p = (self.dialect.placeholder)(self.args.len() + 1, &v);
        self.args.push(v);
        p
    }
}

/// Interval comparison of a stored range [lo, hi] with a search range, by prefix (FHIR R4 §3.1.1.4.5).
pub(crate) fn date_condition(b: &DateBound, lo: &str, hi: &str) -> String {
    let (slo, shi) = (b.lo, b.hi);
    let contained = format!("({lo} >= {slo} AND {hi} <= {shi})");
    match b.prefix {
        DatePrefix::Eq => contained,
        DatePrefix::Ne => format!("NOT {contained}"),
        DatePrefix::Gt => format!("{hi} > {shi}"),
        DatePrefix::Lt => format!("{lo} < {slo}"),
        DatePrefix::Ge => format!("({hi} > {shi} OR {contained})"),
        DatePrefix::Le => format!("({lo} < {slo} OR {contained})"),
        DatePrefix::Sa => format!("{lo} > {shi}"),
        DatePrefix::Eb => format!("{hi} < {slo}"),
        DatePrefix::Ap => format!("({lo} <= {shi} AND {hi} >= {slo})"),
    }
}

/// Comparison of a stored number with a search number whose precision gives [lo, hi).
pub(crate) fn number_condition(sql: &mut Sql, b: &NumberBound, col: &str) -> String {
    match b.prefix {
        DatePrefix::Eq => {
            let (lo, hi) = (sql.arg(b.lo), sql.arg(b.hi));
            format!("({col} >= {lo} AND {col} < {hi})")
        }
        DatePrefix::Ne => {
            let (lo, hi) = (sql.arg(b.lo), sql.arg(b.hi));
            format!("NOT ({col} >= {lo} AND {col} < {hi})")
        }
        DatePrefix::Gt | DatePrefix::Sa => format!("{col} > {}", sql.arg(b.value)),
        DatePrefix::Lt | DatePrefix::Eb => format!("{col} < {}", sql.arg(b.value)),
        DatePrefix::Ge => format!("{col} >= {}", sql.arg(b.lo)),
        DatePrefix::Le => format!("{col} < {}", sql.arg(b.hi)),
        DatePrefix::Ap => {
            let (v, tol) = (sql.arg(b.value), sql.arg((b.value * 0.1).abs()));
            format!("abs({col} - {v}) <= {tol}")
        }
    }
}

pub(crate) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
