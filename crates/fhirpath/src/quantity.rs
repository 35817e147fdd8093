//! Just enough UCUM for comparing quantities: common units of mass, length, volume and time,
//! and the FHIRPath calendar duration keywords (`7 days = 1 week`).

use crate::decimal::Decimal;

/// (unit, dimension, factor to the dimension's base unit as decimal text)
const UNITS: &[(&str, &str, &str)] = &[
    ("g", "mass", "1"),
    ("kg", "mass", "1000"),
    ("mg", "mass", "0.001"),
    ("ug", "mass", "0.000001"),
    ("ng", "mass", "0.000000001"),
    ("[lb_av]", "mass", "453.59237"),
    ("[oz_av]", "mass", "28.349523125"),
    ("m", "length", "1"),
    ("km", "length", "1000"),
    ("cm", "length", "0.01"),
    ("mm", "length", "0.001"),
    ("um", "length", "0.000001"),
    ("[in_i]", "length", "0.0254"),
    ("[ft_i]", "length", "0.3048"),
    ("L", "volume", "1"),
    ("l", "volume", "1"),
    ("dL", "volume", "0.1"),
    ("mL", "volume", "0.001"),
    ("ml", "volume", "0.001"),
    ("uL", "volume", "0.000001"),
    ("ms", "time", "0.001"),
    ("s", "time", "1"),
    ("min", "time", "60"),
    ("h", "time", "3600"),
    ("d", "time", "86400"),
    ("wk", "time", "604800"),
    ("millisecond", "time", "0.001"),
    ("milliseconds", "time", "0.001"),
    ("second", "time", "1"),
    ("seconds", "time", "1"),
    ("minute", "time", "60"),
    ("minutes", "time", "60"),
    ("hour", "time", "3600"),
    ("hours", "time", "3600"),
    ("day", "time", "86400"),
    ("days", "time", "86400"),
    ("week", "time", "604800"),
    ("weeks", "time", "604800"),
    ("mm[Hg]", "pressure", "1"),
    ("Cel", "temperature-c", "1"),
    ("[degF]", "temperature-f", "1"),
    ("%", "ratio", "1"),
    ("1", "one", "1"),
];

/// Calendar units whose length varies, so they never equal a definite UCUM duration.
fn is_calendar_variable(unit: &str) -> bool {
    matches!(unit, "year" | "years" | "month" | "months")
}

fn normalize_calendar(unit: &str) -> &str {
    match unit {
        "years" => "year",
        "months" => "month",
        u => u,
    }
}

/// Converts to the dimension's base unit.
fn to_base(value: Decimal, unit: &str) -> Option<(Decimal, &'static str)> {
    let (_, dim, factor) = UNITS.iter().find(|(u, _, _)| *u == unit)?;
    Some((value.checked_mul(Decimal::parse(factor)?)?, dim))
}

/// Both quantities in a common unit, for comparison: `None` when incomparable.
pub(crate) fn comparable(a: (Decimal, &str), b: (Decimal, &str)) -> Option<(Decimal, Decimal)> {
    let (ua, ub) = (normalize_calendar(a.1), normalize_calendar(b.1));
    if ua == ub {
        return Some((a.0, b.0));
    }
    // Calendar years and months relate to each other exactly (1 year = 12 months), but to no
    // definite duration.
    match (ua, ub) {
        ("year", "month") => return Some((a.0.checked_mul(Decimal::from_i64(12))?, b.0)),
        ("month", "year") => return Some((a.0, b.0.checked_mul(Decimal::from_i64(12))?)),
        _ => {}
    }
    if is_calendar_variable(ua) || is_calendar_variable(ub) {
        return None;
    }
    let (va, da) = to_base(a.0, ua)?;
    let (vb, db) = to_base(b.0, ub)?;
    (da == db).then_some((va, vb))
}

/// Equivalence also relates `year` to `'a'` and `month` to `'mo'`.
pub(crate) fn equivalent_units(a: &str, b: &str) -> bool {
    matches!(
        (normalize_calendar(a), normalize_calendar(b)),
        ("year", "a") | ("a", "year") | ("month", "mo") | ("mo", "month")
    )
}

fn base_symbol(dimension: &str) -> Option<&'static str> {
    Some(match dimension {
        "mass" => "g",
        "length" => "m",
        "volume" => "L",
        "time" => "s",
        _ => return None,
    })
}

/// Product or quotient of two quantities. Same-dimension units are first brought to their base
/// unit (`2 'cm' * 2 'm'` = `0.04 'm2'`, `1 'm' / 1 'm'` = `1 '1'`); otherwise the units are
/// combined as written (`'g/m'`, `'g.m'`).
pub(crate) fn multiply(
    a: (Decimal, &str),
    b: (Decimal, &str),
    divide: bool,
) -> Option<(Decimal, String)> {
    let op = |x: Decimal, y: Decimal| {
        if divide {
            x.checked_div(y)
        } else {
            x.checked_mul(y)
        }
    };
    // Calendar durations have no UCUM product or quotient.
    if crate::parser::is_calendar_keyword(a.1) || crate::parser::is_calendar_keyword(b.1) {
        return None;
    }
    if b.1 == "1" {
        return Some((op(a.0, b.0)?, a.1.to_string()));
    }
    if a.1 == "1" && !divide {
        return Some((op(a.0, b.0)?, b.1.to_string()));
    }
    if let (Some((va, da)), Some((vb, db))) = (to_base(a.0, a.1), to_base(b.0, b.1))
        && da == db
        && let Some(base) = base_symbol(da)
    {
        let unit = if divide {
            "1".to_string()
        } else {
            format!("{base}2")
        };
        return Some((op(va, vb)?.normalize(), unit));
    }
    let unit = if divide {
        format!("{}/{}", a.1, b.1)
    } else {
        format!("{}.{}", a.1, b.1)
    };
    Some((op(a.0, b.0)?, unit))
}

/// `value` (in `from`) expressed in unit `to`, when the two are comparable.
pub(crate) fn convert(value: Decimal, from: &str, to: &str) -> Option<Decimal> {
    if from == to {
        return Some(value);
    }
    let (v, one) = comparable((value, from), (Decimal::from_i64(1), to))?;
    v.checked_div(one)
}
