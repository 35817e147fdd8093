//! Search-index entries of a resource: what a write stores in the index tables.

pub mod datetime;
pub(crate) mod derived;
mod extract;
pub mod fulltext;
pub mod hierarchy;
pub mod keys;
pub mod ucum;

pub(crate) use extract::{composite_key, is_range_kind};
pub use extract::{extract_entries, reference_parts};

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
    /// A composite whose last component is a number, quantity or date: the other components
    /// hashed into `key`, the last one as a range (`lo == hi` for numbers), so comparison
    /// prefixes work on it.
    CompositeRange {
        param: i64,
        key: i64,
        lo: f64,
        hi: f64,
    },
    /// The words of the resource for `_text` (narrative) and `_content` (every string); at most
    /// one per resource.
    FullText {
        narrative: String,
        content: String,
    },
}

/// The implicit range of a decimal given its written precision: `5.4` covers [5.35, 5.45).
pub fn decimal_range(text: &str) -> Option<(f64, f64, f64)> {
    let value: f64 = text.trim().parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let exp: i32 = text
        .split_once(['e', 'E'])
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i32);
    let half = 0.5 * 10f64.powi(exp - decimals);
    Some((value, value - half, value + half))
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
    }
}
