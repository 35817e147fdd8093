//! Which units a quantity filter may name: UCUM expressions built from common atoms with the
//! metric prefixes, `.` and `/` between terms, integer exponents and `{annotations}`. Enough to
//! refuse a misspelt or made-up unit with 400 instead of silently counting nothing.

use crate::date::AgeUnit;

/// Atoms that take metric prefixes.
const METRIC: &[&str] = &[
    "g", "m", "l", "L", "s", "mol", "U", "kat", "Pa", "eq", "osm", "Cel", "K", "Hz", "N", "J", "W",
    "V", "A", "bar", "t", "cd", "sr", "rad", "Bq", "Gy", "Sv", "[iU]", "[IU]", "IU", "gf",
];
/// Atoms without prefixes.
const PLAIN: &[&str] = &[
    "%", "min", "h", "d", "wk", "mo", "a", "[degF]", "[mm_Hg]", "mm[Hg]", "[in_i]", "[lb_av]",
    "[oz_av]", "[ppm]", "[ppb]", "[pH]", "[drp]", "[arb'U]", "[beth'U]", "[HPF]", "[LPF]", "10*3",
    "10*6", "10*9", "10*12", "10^3", "10^6", "10^9", "10^12", "1",
];
const PREFIXES: &[&str] = &[
    "Y", "Z", "E", "P", "T", "G", "M", "k", "h", "da", "d", "c", "m", "u", "n", "p", "f", "a",
];

fn atom_known(a: &str) -> bool {
    if PLAIN.contains(&a) || METRIC.contains(&a) {
        return true;
    }
    PREFIXES
        .iter()
        .any(|p| a.strip_prefix(p).is_some_and(|rest| METRIC.contains(&rest)))
}

fn term_known(t: &str) -> bool {
    // An annotation alone (`{cells}`) is a unit of 1; after an atom it is ignored.
    let t = match t.find('{') {
        Some(i) if t.ends_with('}') => &t[..i],
        Some(_) => return false,
        None => t,
    };
    if t.is_empty() {
        return true;
    }
    if PLAIN.contains(&t) {
        return true;
    }
    let digits = t.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
    !digits.is_empty() && atom_known(digits)
}

/// Whether `code` is a UCUM unit this engine understands.
pub fn is_known(code: &str) -> bool {
    if code.is_empty() || code.len() > 64 {
        return false;
    }
    let body = code.strip_prefix('/').unwrap_or(code);
    // Split on '/' and '.' outside annotations (`{1.73_m2}` is one annotation).
    let mut depth = 0u32;
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' | '.' if depth == 0 => {
                if !term_known(&body[start..i]) || i == start {
                    return false;
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    depth == 0 && start < body.len() && term_known(&body[start..])
}

/// The unit of an age filter: UCUM `a`/`mo`/`wk`/`d`, or the words the MII tools also send.
pub fn age_unit(code: &str) -> Option<AgeUnit> {
    Some(match code {
        "a" | "year" | "years" | "Jahr" | "Jahre" => AgeUnit::Years,
        "mo" | "month" | "months" | "Monat" | "Monate" => AgeUnit::Months,
        "wk" | "week" | "weeks" | "Woche" | "Wochen" => AgeUnit::Weeks,
        "d" | "day" | "days" | "Tag" | "Tage" => AgeUnit::Days,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_of_the_lab_catalogue_are_known() {
        for u in [
            "g/dL",
            "10*3/uL",
            "10*9/L",
            "mmol/L",
            "mg/dL",
            "mg/L",
            "%",
            "ng/mL",
            "pg/mL",
            "U/L",
            "mL/min/{1.73_m2}",
            "umol/L",
            "mIU/L",
            "ng/L",
            "{INR}",
            "mm[Hg]",
            "kg/m2",
            "Cel",
            "[IU]/L",
            "mg",
            "mL/min",
            "1",
            "/min",
        ] {
            assert!(is_known(u), "{u}");
        }
    }

    #[test]
    fn made_up_units_are_not() {
        for u in ["", "furlong", "mg/", "g//L", "xyz/L", "mg/dL{", "kkg"] {
            assert!(!is_known(u), "{u}");
        }
    }
}
