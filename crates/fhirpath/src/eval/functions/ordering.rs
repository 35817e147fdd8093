//! `sort()`.

use crate::EvalError;
use crate::ast::Expr;
use crate::eval::value;
use crate::eval::{Coll, Frame};

use super::Call;

/// `sort(key, ...)`: stable sort by each key in turn; a key written `-expr` sorts descending.
pub(super) fn sort<'a>(c: &Call<'_, 'a, '_>, input: Coll<'a>) -> Result<Coll<'a>, EvalError> {
    let mut keyed = Vec::with_capacity(input.len());
    for (i, item) in input.into_iter().enumerate() {
        let mut keys = Vec::with_capacity(c.args.len().max(1));
        if c.args.is_empty() {
            keys.push((vec![item.clone()], false));
        }
        for arg in c.args {
            let (expr, desc) = match arg {
                Expr::Neg(inner) => (inner.as_ref(), true),
                other => (other, false),
            };
            let fr = Frame {
                this: Some(item.clone()),
                index: Some(i),
                total: None,
            };
            keys.push((c.ctx.eval(expr, std::slice::from_ref(&item), &fr)?, desc));
        }
        keyed.push((keys, item));
    }
    keyed.sort_by(|(ka, _), (kb, _)| {
        for ((a, desc), (b, _)) in ka.iter().zip(kb) {
            let ord = match (a.first(), b.first()) {
                (None, None) => std::cmp::Ordering::Equal,
                // Items without a key sort after all others (before them when descending).
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (Some(x), Some(y)) => value::compare(x, y)
                    .ok()
                    .flatten()
                    .unwrap_or(std::cmp::Ordering::Equal),
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        std::cmp::Ordering::Equal
    });
    Ok(keyed.into_iter().map(|(_, item)| item).collect())
}
