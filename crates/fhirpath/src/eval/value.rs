//! Viewing items as FHIRPath system values, and the equality, equivalence and ordering rules.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use crate::datetime::{Kind, Temporal};
use crate::decimal::Decimal;
use crate::{EvalError, Item, Node, quantity};

/// An item seen as a system value. Complex nodes other than quantities are `Complex`.
#[derive(Debug, Clone)]
pub(crate) enum Val<'x> {
    Bool(bool),
    Int(i64),
    Dec(Decimal),
    Str(Cow<'x, str>),
    Temporal(Temporal),
    Quantity(Decimal, Cow<'x, str>),
    Complex(&'x Value),
}

const UCUM: &str = "http://unitsofmeasure.org";

fn number_val<'x>(n: &serde_json::Number, ty: Option<&str>) -> Option<Val<'x>> {
    let text = n.as_str();
    let integral = !text.contains(['.', 'e', 'E']);
    match ty {
        Some("decimal") => Decimal::parse(text).map(Val::Dec),
        _ if integral => match text.parse::<i64>() {
            Ok(i) => Some(Val::Int(i)),
            Err(_) => Decimal::parse(text).map(Val::Dec),
        },
        _ => Decimal::parse(text).map(Val::Dec),
    }
}

/// True for FHIR types that are Quantity or derived from it.
pub(crate) fn is_quantity_type(ty: &str) -> bool {
    matches!(
        ty,
        "Quantity" | "Age" | "Duration" | "Distance" | "Count" | "SimpleQuantity" | "MoneyQuantity"
    )
}

/// Quantity view of a FHIR Quantity object: the UCUM code when coded in UCUM, else the unit text.
pub(crate) fn quantity_of_json(v: &Value) -> Option<(Decimal, Cow<'_, str>)> {
    let obj = v.as_object()?;
    let value = match obj.get("value")? {
        Value::Number(n) => Decimal::parse(n.as_str())?,
        _ => return None,
    };
    let code = obj.get("code").and_then(Value::as_str);
    let ucum = obj.get("system").and_then(Value::as_str) == Some(UCUM);
    let unit = match (code, ucum) {
        (Some(c), true) => c,
        _ => obj
            .get("unit")
            .and_then(Value::as_str)
            .or(code)
            .unwrap_or("1"),
    };
    Some((value, Cow::Borrowed(unit)))
}

pub(crate) fn node_val<'x>(n: &Node<'x>) -> Option<Val<'x>> {
    let ty = n.type_name;
    match n.value {
        Value::Bool(b) => Some(Val::Bool(*b)),
        Value::Number(num) => number_val(num, ty),
        Value::String(s) => {
            let t = match ty {
                Some("date") => Temporal::parse_date(s).or_else(|| Temporal::parse_datetime(s)),
                Some("dateTime" | "instant") => Temporal::parse_datetime(s),
                Some("time") => Temporal::parse_time(s),
                _ => None,
            };
            Some(t.map_or(Val::Str(Cow::Borrowed(s.as_str())), Val::Temporal))
        }
        Value::Object(_) => {
            let quantity = match ty {
                Some(t) => is_quantity_type(t),
                None => n.value.get("value").is_some_and(Value::is_number),
            };
            if quantity && let Some((v, u)) = quantity_of_json(n.value) {
                return Some(Val::Quantity(v, u));
            }
            Some(Val::Complex(n.value))
        }
        Value::Null | Value::Array(_) => None,
    }
}

/// The system value of an item (`None` for a primitive node without a value).
pub(crate) fn val<'x>(item: &'x Item<'_>) -> Option<Val<'x>> {
    match item {
        Item::Node(n) => node_val(n),
        Item::Boolean(b) => Some(Val::Bool(*b)),
        Item::Integer(i) => Some(Val::Int(*i)),
        Item::Decimal(d) => Decimal::parse(d).map(Val::Dec),
        Item::String(s) => Some(Val::Str(Cow::Borrowed(s))),
        Item::Date(s) => Temporal::parse_date(s).map(Val::Temporal),
        Item::DateTime(s) => Temporal::parse_datetime(s).map(Val::Temporal),
        Item::Time(s) => Temporal::parse_time(s).map(Val::Temporal),
        Item::Quantity { value, unit } => {
            Decimal::parse(value).map(|v| Val::Quantity(v, Cow::Borrowed(unit)))
        }
    }
}

/// Converts a computed value back into an item.
pub(crate) fn item_of(v: Val<'_>) -> Item<'static> {
    match v {
        Val::Bool(b) => Item::Boolean(b),
        Val::Int(i) => Item::Integer(i),
        Val::Dec(d) => Item::Decimal(d.to_string()),
        Val::Str(s) => Item::String(s.into_owned()),
        Val::Temporal(t) => temporal_item(t),
        Val::Quantity(v, u) => Item::Quantity {
            value: v.to_string(),
            unit: u.into_owned(),
        },
        // Complex values are never built from scratch; callers keep the node instead.
        Val::Complex(_) => Item::Boolean(true),
    }
}

pub(crate) fn temporal_item(t: Temporal) -> Item<'static> {
    match t.kind {
        Kind::Date => Item::Date(t.to_string()),
        Kind::DateTime => Item::DateTime(t.to_string()),
        Kind::Time => Item::Time(t.to_string()),
    }
}

fn num(v: &Val<'_>) -> Option<Decimal> {
    match v {
        Val::Int(i) => Some(Decimal::from_i64(*i)),
        Val::Dec(d) => Some(*d),
        _ => None,
    }
}

/// A string compared with a date/time is read as one (untyped JSON nodes carry dates as text).
fn as_temporal(s: &str, like: &Temporal) -> Option<Temporal> {
    match like.kind {
        Kind::Time => Temporal::parse_time(s),
        _ => Temporal::parse_datetime(s),
    }
}

/// `=` on two single items: `None` when the result is empty (undecidable precision).
pub(crate) fn equals(a: &Item<'_>, b: &Item<'_>) -> Option<bool> {
    // Primitives with only extensions compare by their `_element` content.
    if let (Item::Node(x), Item::Node(y)) = (a, b)
        && (x.value.is_null() || y.value.is_null())
    {
        return Some(x.value == y.value && x.extension == y.extension);
    }
    if let (Item::Node(x), Item::Node(y)) = (a, b)
        && x.value.is_object()
        && y.value.is_object()
        && !x.type_name.is_some_and(is_quantity_type)
    {
        return Some(x.value == y.value);
    }
    let (va, vb) = (val(a)?, val(b)?);
    equals_val(&va, &vb)
}

fn equals_val(a: &Val<'_>, b: &Val<'_>) -> Option<bool> {
    match (a, b) {
        (Val::Bool(x), Val::Bool(y)) => Some(x == y),
        (Val::Int(x), Val::Int(y)) => Some(x == y),
        (Val::Str(x), Val::Str(y)) => Some(x == y),
        (Val::Temporal(x), Val::Temporal(y)) => {
            if (x.kind == Kind::Time) != (y.kind == Kind::Time) {
                return Some(false);
            }
            x.compare(y).map(|o| o == Ordering::Equal)
        }
        (Val::Str(s), Val::Temporal(t)) | (Val::Temporal(t), Val::Str(s)) => {
            match as_temporal(s, t) {
                Some(parsed) => parsed.compare(t).map(|o| o == Ordering::Equal),
                None => Some(false),
            }
        }
        (Val::Quantity(x, ux), Val::Quantity(y, uy)) => {
            let (x, y) = quantity::comparable((*x, ux), (*y, uy))?;
            Some(x.partial_cmp(&y) == Some(Ordering::Equal))
        }
        (Val::Complex(x), Val::Complex(y)) => Some(x == y),
        // A number equals a dimensionless quantity (`9 = 9 '1'`).
        (Val::Quantity(q, u), n @ (Val::Int(_) | Val::Dec(_)))
        | (n @ (Val::Int(_) | Val::Dec(_)), Val::Quantity(q, u))
            if u == "1" =>
        {
            num(n).map(|n| n.partial_cmp(q) == Some(Ordering::Equal))
        }
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => Some(x.partial_cmp(&y) == Some(Ordering::Equal)),
            _ => Some(false),
        },
    }
}

/// Whitespace-normalised, case-insensitive string form used by `~`.
/// Case-folded, with every whitespace character (tab, newline, ...) read as a space. Runs of
/// whitespace are not collapsed and nothing is trimmed.
fn fold(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect::<String>()
        .to_lowercase()
}

/// `~` on two single items.
pub(crate) fn equivalent(a: &Item<'_>, b: &Item<'_>) -> bool {
    if let (Item::Node(x), Item::Node(y)) = (a, b)
        && (x.value.is_null() || y.value.is_null())
    {
        return x.value == y.value && x.extension == y.extension;
    }
    if let (Item::Node(x), Item::Node(y)) = (a, b)
        && x.value.is_object()
        && y.value.is_object()
        && !x.type_name.is_some_and(is_quantity_type)
    {
        return json_equivalent(x.value, y.value);
    }
    let (Some(va), Some(vb)) = (val(a), val(b)) else {
        return false;
    };
    match (&va, &vb) {
        (Val::Str(x), Val::Str(y)) => fold(x) == fold(y),
        (Val::Temporal(x), Val::Temporal(y)) => x.compare(y) == Some(Ordering::Equal),
        (Val::Quantity(x, ux), Val::Quantity(y, uy)) => {
            if quantity::equivalent_units(ux, uy) {
                return x.equivalent(*y);
            }
            match quantity::comparable((*x, ux), (*y, uy)) {
                Some((x, y)) => x.equivalent(y),
                None => false,
            }
        }
        _ => match (num(&va), num(&vb)) {
            (Some(x), Some(y)) => x.equivalent(y),
            _ => equals_val(&va, &vb) == Some(true),
        },
    }
}

fn json_equivalent(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => fold(x) == fold(y),
        (Value::Object(x), Value::Object(y)) => {
            // `id` and extensions do not take part in equivalence of complex values.
            let keys = |m: &'_ serde_json::Map<String, Value>| {
                m.keys().filter(|k| *k != "id" && *k != "extension").count()
            };
            keys(x) == keys(y)
                && x.iter()
                    .filter(|(k, _)| *k != "id" && *k != "extension")
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equivalent(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_equivalent(v, w))
        }
        _ => a == b,
    }
}

/// Ordering for `< > <= >=`: `Ok(None)` when undecidable, an error for incomparable types.
pub(crate) fn compare(a: &Item<'_>, b: &Item<'_>) -> Result<Option<Ordering>, EvalError> {
    let (Some(va), Some(vb)) = (val(a), val(b)) else {
        return Ok(None);
    };
    let mismatch = || {
        EvalError::Message(format!(
            "cannot compare {} with {}",
            kind_name(&va),
            kind_name(&vb)
        ))
    };
    match (&va, &vb) {
        (Val::Str(x), Val::Str(y)) => Ok(Some(x.cmp(y))),
        (Val::Temporal(x), Val::Temporal(y)) => {
            if (x.kind == Kind::Time) != (y.kind == Kind::Time) {
                return Err(mismatch());
            }
            Ok(x.compare(y))
        }
        (Val::Str(s), Val::Temporal(t)) => match as_temporal(s, t) {
            Some(p) => Ok(p.compare(t)),
            None => Err(mismatch()),
        },
        (Val::Temporal(t), Val::Str(s)) => match as_temporal(s, t) {
            Some(p) => Ok(t.compare(&p)),
            None => Err(mismatch()),
        },
        (Val::Quantity(x, ux), Val::Quantity(y, uy)) => {
            Ok(quantity::comparable((*x, ux), (*y, uy)).and_then(|(x, y)| x.partial_cmp(&y)))
        }
        // Numbers compare with dimensionless quantities only.
        (Val::Quantity(q, u), n @ (Val::Int(_) | Val::Dec(_))) => Ok(if u == "1" {
            num(n).and_then(|n| q.partial_cmp(&n))
        } else {
            None
        }),
        (n @ (Val::Int(_) | Val::Dec(_)), Val::Quantity(q, u)) => Ok(if u == "1" {
            num(n).and_then(|n| n.partial_cmp(q))
        } else {
            None
        }),
        _ => match (num(&va), num(&vb)) {
            (Some(x), Some(y)) => Ok(x.partial_cmp(&y)),
            _ => Err(mismatch()),
        },
    }
}

fn kind_name(v: &Val<'_>) -> &'static str {
    match v {
        Val::Bool(_) => "Boolean",
        Val::Int(_) => "Integer",
        Val::Dec(_) => "Decimal",
        Val::Str(_) => "String",
        Val::Temporal(_) => "Date/Time",
        Val::Quantity(..) => "Quantity",
        Val::Complex(_) => "complex value",
    }
}

/// Quantity as text: `4 'mg'`, calendar keywords unquoted (`1 week`).
pub(crate) fn quantity_string(v: Decimal, unit: &str) -> String {
    if crate::parser::is_calendar_keyword(unit) {
        format!("{v} {unit}")
    } else {
        format!("{v} '{unit}'")
    }
}

/// `toString()` semantics; `None` for complex values.
pub(crate) fn to_string(item: &Item<'_>) -> Option<String> {
    match val(item)? {
        Val::Bool(b) => Some(b.to_string()),
        Val::Int(i) => Some(i.to_string()),
        Val::Dec(d) => Some(d.to_string()),
        Val::Str(s) => Some(s.into_owned()),
        Val::Temporal(t) => Some(t.to_string()),
        Val::Quantity(v, u) => Some(quantity_string(v, &u)),
        Val::Complex(_) => None,
    }
}
