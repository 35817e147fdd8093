//! Search-index entries of a resource: what a write stores in the index tables.

pub mod code_date;
mod compartment;
pub mod datetime;
pub(crate) mod derived;
mod extract;
pub mod fulltext;
pub mod hierarchy;
pub mod keys;
pub mod ucum;

pub use compartment::{body_in_patient_compartment, in_patient_compartment};
pub(crate) use extract::{
    STRING_LAST, composite_key, composite_string, is_range_kind, param_entries,
};
pub use extract::{extract_entries, reference_parts};

/// Bumped whenever extraction produces different index rows for the same resource (new
/// parameters, modifiers or normalisation): the index is rebuilt from the stored bodies at open.
pub const INDEX_VERSION: i64 = 5;

/// One row of a search index table, without tenant and resource (the writer adds those).
#[derive(Debug, Clone, PartialEq)]
pub enum IndexEntry {
    Token {
        param: i64,
        system: i64,
        code: i64,
    },
    String {
        param: i64,
        normalized: String,
        exact: Option<String>,
    },
    Date {
        param: i64,
        lo: i64,
        hi: i64,
    },
    Number {
        param: i64,
        value: f64,
        lo: f64,
        hi: f64,
    },
    Quantity {
        param: i64,
        system: i64,
        code: i64,
        value: f64,
        lo: f64,
        hi: f64,
    },
    /// `target_type` is `keys::NONE` for an absolute URL or a reference without a type.
    Reference {
        param: i64,
        target_type: i64,
        target: i64,
    },
    /// The hashed URI (equality search only: canonical URLs are long and repeat on every resource).
    Uri {
        param: i64,
        value: i64,
    },
    Composite {
        param: i64,
        key: i64,
    },
    /// A URI value (`value`, the hash the parameter's `Uri` row holds) under one of its path
    /// prefixes (`prefix`, see `derived::uri_path_prefixes`), for `:below`. These rows form a
    /// dictionary of distinct URIs, not a row per resource: `:below` looks up the URIs under the
    /// prefix and then their ordinary `Uri` rows.
    UriPrefix {
        param: i64,
        prefix: i64,
        value: i64,
    },
    /// A composite whose last component is a number, quantity or date: the other components
    /// hashed into `key`, the last one as a range (`lo == hi` for numbers), so comparison
    /// prefixes work on it.
    CompositeRange {
        param: i64,
        key: i64,
        lo: f64,
        hi: f64,
    },
    /// A date of the resource under one code of its `code` parameter: `param` is the date
    /// parameter, `code` the token's code hash. `_sort=-date` with `code=…` walks these rows in
    /// date order within one code, so the first page does not depend on how the code's dates
    /// interleave with other codes' (see `code_date`).
    CodeDate {
        param: i64,
        code: i64,
        lo: i64,
        hi: i64,
    },
    /// The words of the resource for `_text` (narrative) and `_content` (every string); at most
    /// one per resource.
    FullText {
        narrative: String,
        content: String,
    },
}

/// The implicit range of a decimal given its written precision: `5.4` covers [5.35, 5.45).
/// The bounds are computed in decimal and rounded once, so they are the doubles a stored `5.35`
/// or `5.45` parses to (in binary, `5.4 + 0.05` lands just above `5.45`).
pub fn decimal_range(text: &str) -> Option<(f64, f64, f64)> {
    let text = text.trim();
    let value: f64 = text.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let decimals = i32::try_from(frac.len()).ok()?;
    // value = ±M × 10^(exp − decimals); the bounds are ±(10M ∓ 5) × 10^(exp − decimals − 1).
    let m: i128 = format!("{int}{frac}")
        .parse()
        .ok()
        .filter(|_| int.len() + frac.len() <= 36)?;
    let scale = exp.checked_sub(decimals)?.checked_sub(1)?;
    let bound = |n: i128| -> Option<f64> { format!("{n}e{scale}").parse().ok() };
    let (mut lo, mut hi) = (bound(10 * m - 5)?, bound(10 * m + 5)?);
    if negative {
        (lo, hi) = (-hi, -lo);
    }
    Some((value, lo, hi))
}

#[cfg(test)]
mod tests {
    use super::decimal_range;

    #[test]
    fn decimal_precision_ranges() {
        let (v, lo, hi) = decimal_range("5.4").unwrap();
        assert_eq!(v, 5.4);
        assert!((lo - 5.35).abs() < 1e-9 && (hi - 5.45).abs() < 1e-9);
        let (_, lo, hi) = decimal_range("100").unwrap();
        assert!((lo - 99.5).abs() < 1e-9 && (hi - 100.5).abs() < 1e-9);
        // One significant figure: 1e2 stands for [50, 150).
        let (_, lo, hi) = decimal_range("1e2").unwrap();
        assert!((lo - 50.0).abs() < 1e-9 && (hi - 150.0).abs() < 1e-9);
        assert!(decimal_range("abc").is_none());
        // Bounds are the doubles of the decimal bounds, not of binary arithmetic.
        assert_eq!(decimal_range("1.1").unwrap(), (1.1, 1.05, 1.15));
        assert_eq!(decimal_range("-1.1").unwrap(), (-1.1, -1.15, -1.05));
        assert_eq!(decimal_range("0.3").unwrap(), (0.3, 0.25, 0.35));
        assert_eq!(decimal_range("+2").unwrap(), (2.0, 1.5, 2.5));
        assert_eq!(
            decimal_range("1.50e-3").unwrap(),
            (0.0015, 0.001495, 0.001505)
        );
        assert!(decimal_range("1e999").is_none());
    }

    proptest::proptest! {
        #[test]
        fn value_lies_in_its_range(int in 0u32..100_000, frac in 0u32..1000, neg: bool) {
            let text = format!("{}{int}.{frac:03}", if neg { "-" } else { "" });
            let (v, lo, hi) = decimal_range(&text).unwrap();
            proptest::prop_assert!(lo <= v && v < hi || (neg && lo < v && v <= hi), "{text}");
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = decimal_range(&s);
        }
    }
}
