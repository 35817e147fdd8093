//! `toX()` / `convertsToX()` conversions.

use crate::datetime::{Kind, Temporal};
use crate::decimal::Decimal;
use crate::eval::Coll;
use crate::eval::value::{Val, temporal_item, val};
use crate::{EvalError, Item};

use super::{FnName, boolean, single};

/// Runs a `toX()` conversion, or the matching `convertsToX()` check.
pub(super) fn convert<'a>(
    f: FnName,
    to: FnName,
    input: &[Item<'a>],
    conv: impl Fn(&Item<'a>) -> Option<Item<'a>>,
) -> Result<Coll<'a>, EvalError> {
    let Some(item) = single(input, f)? else {
        return Ok(Vec::new());
    };
    let r = conv(item);
    Ok(if f == to {
        r.into_iter().collect()
    } else {
        boolean(r.is_some())
    })
}

pub(super) fn to_boolean<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    let b = match val(item)? {
        Val::Bool(b) => b,
        Val::Int(1) => true,
        Val::Int(0) => false,
        Val::Dec(d)
            if d == Decimal::from_i64(1)
                || d.partial_cmp(&Decimal::from_i64(1)) == Some(std::cmp::Ordering::Equal) =>
        {
            true
        }
        Val::Dec(d) if d.is_zero() => false,
        Val::Str(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "1.0" => true,
            "false" | "f" | "no" | "n" | "0" | "0.0" => false,
            _ => return None,
        },
        _ => return None,
    };
    Some(Item::Boolean(b))
}

fn is_integer_text(s: &str) -> bool {
    let d = s.strip_prefix(['+', '-']).unwrap_or(s);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn to_integer<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match val(item)? {
        Val::Int(i) => Some(Item::Integer(i)),
        Val::Bool(b) => Some(Item::Integer(i64::from(b))),
        Val::Str(s) if is_integer_text(&s) => s.parse().ok().map(Item::Integer),
        _ => None,
    }
}

pub(super) fn to_decimal<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match val(item)? {
        Val::Int(i) => Some(Item::Decimal(i.to_string())),
        Val::Dec(d) => Some(Item::Decimal(d.to_string())),
        Val::Bool(b) => Some(Item::Decimal(if b { "1.0" } else { "0.0" }.to_string())),
        Val::Str(s) => {
            let body = s.strip_prefix(['+', '-']).unwrap_or(&s);
            let ok = match body.split_once('.') {
                Some((i, f)) => {
                    is_integer_text(i) && is_integer_text(f) && !f.starts_with(['+', '-'])
                }
                None => is_integer_text(body),
            } && !body.starts_with(['+', '-']);
            if ok {
                Decimal::parse(&s).map(|d| Item::Decimal(d.to_string()))
            } else {
                None
            }
        }
        _ => None,
    }
}

pub(super) fn to_temporal<'a>(item: &Item<'a>, kind: Kind) -> Option<Item<'a>> {
    let t = match val(item)? {
        Val::Temporal(t) => t,
        Val::Str(s) => match kind {
            Kind::Time => Temporal::parse_time(s.strip_prefix('T').unwrap_or(&s))?,
            _ => Temporal::parse_datetime(&s)?,
        },
        _ => return None,
    };
    let t = match (kind, t.kind) {
        (Kind::Time, Kind::Time) => t,
        (Kind::Time, _) | (_, Kind::Time) => return None,
        (Kind::Date, _) => t.to_date(),
        (Kind::DateTime, _) => t.as_datetime(),
    };
    Some(temporal_item(t))
}

/// `toQuantity()`: numbers get unit `'1'`, strings are parsed as `value ['unit' | keyword]`.
pub(super) fn to_quantity<'a>(item: &Item<'a>) -> Option<Item<'a>> {
    match val(item)? {
        Val::Int(i) => Some(Item::Quantity {
            value: i.to_string(),
            unit: "1".into(),
        }),
        Val::Dec(d) => Some(Item::Quantity {
            value: d.to_string(),
            unit: "1".into(),
        }),
        Val::Bool(b) => Some(Item::Quantity {
            value: if b { "1.0" } else { "0.0" }.into(),
            unit: "1".into(),
        }),
        Val::Quantity(v, u) => Some(Item::Quantity {
            value: v.to_string(),
            unit: u.into_owned(),
        }),
        Val::Str(s) => {
            let s = s.trim();
            let (num, rest) = match s.find(' ') {
                Some(i) => (&s[..i], s[i..].trim()),
                None => (s, ""),
            };
            to_decimal(&Item::String(num.to_string()))?;
            let unit = if rest.is_empty() {
                "1".to_string()
            } else if let Some(u) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                u.to_string()
            } else if crate::parser::is_calendar_keyword(rest) {
                rest.to_string()
            } else {
                return None;
            };
            Some(Item::Quantity {
                value: num.to_string(),
                unit,
            })
        }
        _ => None,
    }
}
