//! `sum()`, `avg()`, `min()`, `max()` (FHIRPath 2.0 aggregates).

use crate::eval::operators;
use crate::eval::value::{self, val};
use crate::eval::{Coll, err};
use crate::{EvalError, Item};

use super::FnName;

pub(super) fn aggregate<'a>(f: FnName, input: Coll<'a>) -> Result<Coll<'a>, EvalError> {
    use FnName as F;
    Ok(match f {
        F::Sum | F::Avg => {
            if input.is_empty() {
                return Ok(Vec::new());
            }
            let mut acc = input[0].clone();
            for item in &input[1..] {
                acc = match operators::add(&acc, item)? {
                    Some(v) => v,
                    None => return Ok(Vec::new()),
                };
            }
            if f == F::Avg {
                let n = Item::Integer(i64::try_from(input.len()).map_err(|_| err("avg overflow"))?);
                match operators::divide(&acc, &n)? {
                    Some(v) => vec![v],
                    None => Vec::new(),
                }
            } else {
                vec![acc]
            }
        }
        F::Min | F::Max => {
            let mut best: Option<&Item<'a>> = None;
            for item in &input {
                if val(item).is_none() {
                    // Value-less primitives make the extreme unknowable.
                    return Ok(Vec::new());
                }
                best = Some(match best {
                    None => item,
                    Some(b) => match value::compare(item, b)? {
                        Some(std::cmp::Ordering::Less) if f == F::Min => item,
                        Some(std::cmp::Ordering::Greater) if f == F::Max => item,
                        Some(_) => b,
                        None => return Ok(Vec::new()),
                    },
                });
            }
            best.cloned().into_iter().collect()
        }
        _ => Vec::new(),
    })
}
