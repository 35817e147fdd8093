//! Operators: boolean logic (three-valued), equality, comparison, membership, arithmetic, union.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::ast::{BinOp, Expr};
use crate::datetime::Kind;
use crate::decimal::Decimal;
use crate::eval::value::{self, Val, item_of, temporal_item, val};
use crate::eval::{Coll, Ctx, Frame, err};
use crate::{EvalError, Item};

/// Singleton evaluation of a collection as a boolean: empty → `None`; one Boolean → its value;
/// one other item → true; several items → error.
pub(crate) fn to_bool(c: &[Item<'_>]) -> Result<Option<bool>, EvalError> {
    match c {
        [] => Ok(None),
        [Item::Boolean(b)] => Ok(Some(*b)),
        [item @ Item::Node(_)] => match val(item) {
            Some(Val::Bool(b)) => Ok(Some(b)),
            _ => Ok(Some(true)),
        },
        [_] => Ok(Some(true)),
        _ => Err(err("expected a single boolean, got a collection")),
    }
}

fn boolean(b: Option<bool>) -> Coll<'static> {
    b.map(Item::Boolean).into_iter().collect()
}

/// `a | b`: the union without duplicates.
pub(crate) fn union<'a>(a: Coll<'a>, b: Coll<'a>) -> Coll<'a> {
    let mut out: Coll<'a> = Vec::with_capacity(a.len() + b.len());
    for item in a.into_iter().chain(b) {
        if !out.iter().any(|o| value::equals(o, &item) == Some(true)) {
            out.push(item);
        }
    }
    out
}

/// Collection `=`: `None` when either side is empty or an item comparison is undecidable.
pub(crate) fn coll_equals(a: &[Item<'_>], b: &[Item<'_>]) -> Option<bool> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    if a.len() != b.len() {
        return Some(false);
    }
    let mut undecided = false;
    for (x, y) in a.iter().zip(b) {
        match value::equals(x, y) {
            Some(false) => return Some(false),
            None => undecided = true,
            Some(true) => {}
        }
    }
    if undecided { None } else { Some(true) }
}

/// Collection `~`: order-independent, empty ~ empty is true.
pub(crate) fn coll_equivalent(a: &[Item<'_>], b: &[Item<'_>]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    a.iter().all(|x| {
        let found = b
            .iter()
            .enumerate()
            .position(|(j, y)| !used[j] && value::equivalent(x, y));
        if let Some(j) = found {
            used[j] = true;
        }
        found.is_some()
    })
}

fn single<'c, 'a>(c: &'c [Item<'a>], op: BinOp) -> Result<Option<&'c Item<'a>>, EvalError> {
    match c {
        [] => Ok(None),
        [x] => Ok(Some(x)),
        _ => Err(err(format!(
            "operator '{}' expects single items",
            op.symbol()
        ))),
    }
}

pub(crate) fn binary<'a>(
    ctx: &Ctx<'a, '_>,
    op: BinOp,
    l: &Expr,
    r: &Expr,
    focus: &[Item<'a>],
    fr: &Frame<'a>,
) -> Result<Coll<'a>, EvalError> {
    // Boolean operators short-circuit where the left side decides.
    match op {
        BinOp::And | BinOp::Or | BinOp::Xor | BinOp::Implies => {
            let a = to_bool(&ctx.eval(l, focus, fr)?)?;
            match (op, a) {
                (BinOp::And, Some(false)) => return Ok(boolean(Some(false))),
                (BinOp::Or, Some(true)) => return Ok(boolean(Some(true))),
                (BinOp::Implies, Some(false)) => return Ok(boolean(Some(true))),
                _ => {}
            }
            let b = to_bool(&ctx.eval(r, focus, fr)?)?;
            let res = match op {
                BinOp::And => match (a, b) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                },
                BinOp::Or => match (a, b) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                },
                BinOp::Xor => match (a, b) {
                    (Some(x), Some(y)) => Some(x != y),
                    _ => None,
                },
                _ => match (a, b) {
                    (_, Some(true)) => Some(true),
                    (Some(true), Some(false)) => Some(false),
                    _ => None,
                },
            };
            return Ok(boolean(res));
        }
        _ => {}
    }
    let a = ctx.eval(l, focus, fr)?;
    let b = ctx.eval(r, focus, fr)?;
    Ok(match op {
        BinOp::Union => union(a, b),
        BinOp::Eq => boolean(coll_equals(&a, &b)),
        BinOp::Ne => boolean(coll_equals(&a, &b).map(|x| !x)),
        BinOp::Equiv => boolean(Some(coll_equivalent(&a, &b))),
        BinOp::NotEquiv => boolean(Some(!coll_equivalent(&a, &b))),
        BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
            let (Some(x), Some(y)) = (single(&a, op)?, single(&b, op)?) else {
                return Ok(Vec::new());
            };
            let ord = value::compare(x, y)?;
            boolean(ord.map(|o| match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Gt => o == Ordering::Greater,
                BinOp::Le => o != Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }
        BinOp::In | BinOp::Contains => {
            let (needle, hay) = if op == BinOp::In { (&a, &b) } else { (&b, &a) };
            let Some(x) = single(needle, op)? else {
                return Ok(Vec::new());
            };
            boolean(Some(hay.iter().any(|y| value::equals(x, y) == Some(true))))
        }
        BinOp::Concat => {
            let s = |c: &[Item<'_>]| -> Result<String, EvalError> {
                Ok(match single(c, op)? {
                    None => String::new(),
                    // A primitive without a value (extensions only) concatenates as ''.
                    Some(Item::Node(n)) if n.value.is_null() => String::new(),
                    Some(i) => value::to_string(i).ok_or_else(|| err("'&' expects strings"))?,
                })
            };
            vec![Item::String(s(&a)? + &s(&b)?)]
        }
        _ => {
            let (Some(x), Some(y)) = (single(&a, op)?, single(&b, op)?) else {
                return Ok(Vec::new());
            };
            arithmetic(op, x, y)?.into_iter().collect()
        }
    })
}

fn dec_item(d: Option<Decimal>) -> Option<Item<'static>> {
    d.map(|d| Item::Decimal(d.to_string()))
}

/// `+ - * / div mod` on two single items. `Ok(None)` is empty (overflow, division by zero).
fn arithmetic(op: BinOp, x: &Item<'_>, y: &Item<'_>) -> Result<Option<Item<'static>>, EvalError> {
    let (Some(vx), Some(vy)) = (val(x), val(y)) else {
        return Ok(None);
    };
    let type_err = || {
        err(format!(
            "operator '{}' cannot apply to these operands",
            op.symbol()
        ))
    };
    Ok(match (&vx, &vy) {
        (Val::Int(a), Val::Int(b)) => match op {
            BinOp::Add => a.checked_add(*b).map(Item::Integer),
            BinOp::Sub => a.checked_sub(*b).map(Item::Integer),
            BinOp::Mul => a.checked_mul(*b).map(Item::Integer),
            BinOp::Div => dec_item(Decimal::from_i64(*a).checked_div(Decimal::from_i64(*b))),
            BinOp::IntDiv => a.checked_div(*b).map(Item::Integer),
            BinOp::Mod => a.checked_rem(*b).map(Item::Integer),
            _ => return Err(type_err()),
        },
        (Val::Int(_) | Val::Dec(_), Val::Int(_) | Val::Dec(_)) => {
            let (a, b) = (num(&vx), num(&vy));
            match op {
                BinOp::Add => dec_item(a.checked_add(b)),
                BinOp::Sub => dec_item(a.checked_sub(b)),
                BinOp::Mul => dec_item(a.checked_mul(b)),
                BinOp::Div => dec_item(a.checked_div(b)),
                BinOp::IntDiv => a
                    .div_trunc(b)
                    .and_then(|d| d.to_i64_exact())
                    .map(Item::Integer),
                BinOp::Mod => dec_item(a.checked_rem(b)),
                _ => return Err(type_err()),
            }
        }
        (Val::Str(a), Val::Str(b)) if op == BinOp::Add => Some(Item::String(format!("{a}{b}"))),
        (Val::Temporal(t), Val::Quantity(q, unit)) if matches!(op, BinOp::Add | BinOp::Sub) => {
            // Definite-duration years and months have no calendar meaning.
            if matches!(unit.as_ref(), "a" | "mo") {
                return Err(err(format!(
                    "cannot add '{unit}' to a date; use a calendar duration"
                )));
            }
            if t.kind == Kind::Date && !is_date_unit(unit) {
                return Err(type_err());
            }
            let q = if op == BinOp::Sub { q.neg() } else { *q };
            match t.add(q, unit) {
                Some(r) => Some(temporal_item(r)),
                None if crate::datetime::CalendarUnit::parse(unit).is_none() => {
                    return Err(type_err());
                }
                None => None,
            }
        }
        (Val::Quantity(a, ua), Val::Quantity(b, ub)) if matches!(op, BinOp::Add | BinOp::Sub) => {
            // The result is in the left operand's unit.
            let Some(b2) = crate::quantity::convert(*b, ub, ua) else {
                return Ok(None);
            };
            let r = if op == BinOp::Add {
                a.checked_add(b2)
            } else {
                a.checked_sub(b2)
            };
            r.map(|v| item_of(Val::Quantity(v, ua.clone())))
        }
        (Val::Quantity(a, ua), Val::Quantity(b, ub)) if matches!(op, BinOp::Mul | BinOp::Div) => {
            crate::quantity::multiply((*a, ua), (*b, ub), op == BinOp::Div)
                .map(|(v, unit)| item_of(Val::Quantity(v, Cow::Owned(unit))))
        }
        (Val::Quantity(a, u), Val::Int(_) | Val::Dec(_))
            if matches!(op, BinOp::Mul | BinOp::Div) =>
        {
            let b = num(&vy);
            let r = if op == BinOp::Mul {
                a.checked_mul(b)
            } else {
                a.checked_div(b)
            };
            r.map(|v| item_of(Val::Quantity(v, Cow::Owned(u.to_string()))))
        }
        (Val::Int(_) | Val::Dec(_), Val::Quantity(b, u)) if op == BinOp::Mul => num(&vx)
            .checked_mul(*b)
            .map(|v| item_of(Val::Quantity(v, Cow::Owned(u.to_string())))),
        _ => return Err(type_err()),
    })
}

/// Date values only take calendar units of a day or more.
fn is_date_unit(unit: &str) -> bool {
    matches!(
        crate::datetime::CalendarUnit::parse(unit),
        Some(
            crate::datetime::CalendarUnit::Year
                | crate::datetime::CalendarUnit::Month
                | crate::datetime::CalendarUnit::Week
                | crate::datetime::CalendarUnit::Day
        )
    )
}

fn num(v: &Val<'_>) -> Decimal {
    match v {
        Val::Int(i) => Decimal::from_i64(*i),
        Val::Dec(d) => *d,
        _ => Decimal::from_i64(0),
    }
}

/// Unary minus on a single number or quantity.
pub(crate) fn negate(c: Coll<'_>) -> Result<Coll<'_>, EvalError> {
    let item = match c.as_slice() {
        [] => return Ok(c),
        [x] => x,
        _ => return Err(err("unary '-' expects a single item")),
    };
    let out = match val(item) {
        Some(Val::Int(i)) => i.checked_neg().map(Item::Integer),
        Some(Val::Dec(d)) => Some(Item::Decimal(d.neg().to_string())),
        Some(Val::Quantity(v, u)) => Some(Item::Quantity {
            value: v.neg().to_string(),
            unit: u.into_owned(),
        }),
        _ => return Err(err("unary '-' expects a number or quantity")),
    };
    Ok(out.into_iter().collect())
}

/// `a + b` on single items (used by `sum()`); `Ok(None)` is empty.
pub(crate) fn add(a: &Item<'_>, b: &Item<'_>) -> Result<Option<Item<'static>>, EvalError> {
    arithmetic(BinOp::Add, a, b)
}

/// `a / b` on single items (used by `avg()`); `Ok(None)` is empty.
pub(crate) fn divide(a: &Item<'_>, b: &Item<'_>) -> Result<Option<Item<'static>>, EvalError> {
    arithmetic(BinOp::Div, a, b)
}
