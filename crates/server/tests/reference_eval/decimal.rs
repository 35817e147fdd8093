//! Exact decimals for number and quantity matching (no floating-point rounding at the edges
//! of a precision range).

use std::cmp::Ordering;

/// `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy)]
pub struct Dec {
    mantissa: i128,
    scale: i32,
}

impl Dec {
    /// Parses `[-+]digits[.digits][e[-+]digits]`; `None` for anything else (NaN, inf, hex…).
    pub fn parse(s: &str) -> Option<Dec> {
        let (body, exp) = match s.split_once(['e', 'E']) {
            Some((b, e)) => (b, e.parse::<i32>().ok()?),
            None => (s, 0),
        };
        if exp.abs() > 20 {
            return None;
        }
        let (neg, digits) = match body.as_bytes().first()? {
            b'-' => (true, &body[1..]),
            b'+' => (false, &body[1..]),
            _ => (false, body),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
            || int.len() + frac.len() > 30
        {
            return None;
        }
        let text = format!("{int}{frac}");
        let mut mantissa: i128 = if text.is_empty() {
            0
        } else {
            text.parse().ok()?
        };
        if neg {
            mantissa = -mantissa;
        }
        Some(Dec {
            mantissa,
            scale: frac.len() as i32 - exp,
        })
    }

    /// The precision interval of a search value: ± half a unit of its last digit,
    /// as `[lo, hi)` (FHIR R4 search §3.1.1.4.2: `100` is [99.5, 100.5)).
    pub fn precision_range(self) -> (Dec, Dec) {
        let m = self.mantissa * 10;
        let scale = self.scale + 1;
        (
            Dec {
                mantissa: m - 5,
                scale,
            },
            Dec {
                mantissa: m + 5,
                scale,
            },
        )
    }
}

impl Dec {
    /// `self × 10^n` (unit conversion by powers of ten).
    pub fn times_pow10(self, n: i32) -> Dec {
        Dec {
            mantissa: self.mantissa,
            scale: self.scale - n,
        }
    }
}

fn aligned(a: Dec, b: Dec) -> (i128, i128) {
    let s = a.scale.max(b.scale);
    let up = |d: Dec| d.mantissa * 10i128.pow(s.abs_diff(d.scale));
    (up(a), up(b))
}

impl PartialEq for Dec {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Dec {}

impl PartialOrd for Dec {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Dec {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = aligned(*self, *other);
        a.cmp(&b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_compare() {
        let d = |s| Dec::parse(s).unwrap();
        assert_eq!(d("5.40"), d("5.4"));
        assert!(d("5.35") < d("5.4"));
        assert_eq!(d("1e2"), d("100"));
        let (lo, hi) = d("5.4").precision_range();
        assert_eq!((lo, hi), (d("5.35"), d("5.45")));
        assert!(Dec::parse("NaN").is_none() && Dec::parse("0x1").is_none());
    }
}
