//! Math functions: `abs`, `ceiling`, `floor`, `truncate`, `round`, `sqrt`, `ln`, `log`, `exp`,
//! `power`.

use crate::decimal::Decimal;
use crate::eval::err;
use crate::eval::value::{Val, val};
use crate::{EvalError, Item};

use super::{Call, FnName, single};

fn dec_out(d: Option<Decimal>) -> Option<Item<'static>> {
    d.map(|d| Item::Decimal(d.to_string()))
}

pub(super) fn math<'a>(
    c: &Call<'_, 'a, '_>,
    f: FnName,
    item: &Item<'a>,
) -> Result<Option<Item<'a>>, EvalError> {
    use FnName as F;
    // A primitive node without a value (only extensions) behaves as empty.
    let Some(v) = val(item) else {
        return Ok(None);
    };
    let d = match &v {
        Val::Int(i) => Decimal::from_i64(*i),
        Val::Dec(d) => *d,
        Val::Quantity(q, u)
            if matches!(f, F::Abs | F::Ceiling | F::Floor | F::Truncate | F::Round) =>
        {
            // Rounding-like functions apply to the value and keep the unit.
            let r = math(c, f, &Item::Decimal(q.to_string()))?;
            return Ok(r
                .and_then(|r| match r {
                    Item::Integer(i) => Some(i.to_string()),
                    Item::Decimal(d) => Some(d),
                    _ => None,
                })
                .map(|value| Item::Quantity {
                    value,
                    unit: u.to_string(),
                }));
        }
        _ => return Err(err(format!("{}() expects a number", f.as_str()))),
    };
    let int = |x: Option<i128>| x.and_then(|x| i64::try_from(x).ok()).map(Item::Integer);
    let float = |x: f64| dec_out(Decimal::from_f64(x));
    Ok(match f {
        F::Abs => match v {
            Val::Int(i) => i.checked_abs().map(Item::Integer),
            _ => dec_out(Some(d.abs())),
        },
        F::Ceiling => int(d.ceil()),
        F::Floor => int(d.floor()),
        F::Truncate => int(d.trunc()),
        F::Round => {
            let p = c.int_arg(0)?.unwrap_or(0);
            let p = u32::try_from(p).map_err(|_| err("round() precision must be non-negative"))?;
            dec_out(d.round(p.min(28)))
        }
        F::Sqrt => {
            if d.is_negative() {
                None
            } else {
                float(d.to_f64().sqrt())
            }
        }
        F::Ln => {
            if d.is_negative() || d.is_zero() {
                None
            } else {
                float(d.to_f64().ln())
            }
        }
        F::Exp => float(d.to_f64().exp()),
        F::Log => {
            let base = c.arg(0)?;
            let Some(b) = single(&base, f)? else {
                return Ok(None);
            };
            let b = match val(b) {
                Some(Val::Int(i)) => i as f64,
                Some(Val::Dec(x)) => x.to_f64(),
                None => return Ok(None),
                _ => return Err(err("log() expects a numeric base")),
            };
            float(d.to_f64().ln() / b.ln())
        }
        F::Power => {
            let e = c.arg(0)?;
            let Some(e) = single(&e, f)? else {
                return Ok(None);
            };
            match (&v, val(e)) {
                (Val::Int(b), Some(Val::Int(x))) if x >= 0 => u32::try_from(x)
                    .ok()
                    .and_then(|x| b.checked_pow(x))
                    .map(Item::Integer),
                (_, Some(Val::Int(x))) => float(d.to_f64().powf(x as f64)),
                (_, Some(Val::Dec(x))) => float(d.to_f64().powf(x.to_f64())),
                (_, None) => None,
                _ => return Err(err("power() expects a numeric exponent")),
            }
        }
        _ => None,
    })
}
