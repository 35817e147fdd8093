//! A small fixed-point decimal: an `i128` mantissa scaled by a power of ten.
//!
//! FHIR decimals must keep their precision (`1.50` stays `1.50`), which `f64` cannot do.
//! Every operation is checked: overflow yields `None`, which the evaluator maps to empty.

use std::cmp::Ordering;
use std::fmt;

/// Scale (digits after the point) kept by division and by inputs that are more precise.
const MAX_SCALE: u32 = 28;
/// Digits after the point produced by division.
const DIV_SCALE: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decimal {
    mant: i128,
    scale: u32,
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Decimal {
    pub(crate) fn from_i64(v: i64) -> Self {
        Decimal {
            mant: v as i128,
            scale: 0,
        }
    }

    /// Parses `-12.340`, `1e3`, `1.5E-2`. Returns `None` for anything else.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (body, exp) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
            None => (s, 0),
        };
        let (neg, body) = match body.as_bytes().first()? {
            b'-' => (true, &body[1..]),
            b'+' => (false, &body[1..]),
            _ => (false, body),
        };
        let (int_part, frac_part) = match body.find('.') {
            Some(i) => (&body[..i], &body[i + 1..]),
            None => (body, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut mant: i128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            mant = mant.checked_mul(10)?.checked_add((b - b'0') as i128)?;
        }
        let mut scale = frac_part.len() as i64 - exp as i64;
        if scale < 0 {
            mant = mant.checked_mul(pow10(u32::try_from(-scale).ok()?)?)?;
            scale = 0;
        }
        let mut d = Decimal {
            mant: if neg { -mant } else { mant },
            scale: u32::try_from(scale).ok()?,
        };
        if d.scale > MAX_SCALE {
            d = d.round(MAX_SCALE)?;
        }
        Some(d)
    }

    pub(crate) fn is_zero(self) -> bool {
        self.mant == 0
    }

    pub(crate) fn is_negative(self) -> bool {
        self.mant < 0
    }

    fn rescale(self, scale: u32) -> Option<Self> {
        if scale >= self.scale {
            Some(Decimal {
                mant: self.mant.checked_mul(pow10(scale - self.scale)?)?,
                scale,
            })
        } else {
            self.round(scale)
        }
    }

    fn align(a: Self, b: Self) -> Option<(i128, i128, u32)> {
        let s = a.scale.max(b.scale);
        Some((a.rescale(s)?.mant, b.rescale(s)?.mant, s))
    }

    pub(crate) fn checked_add(self, o: Self) -> Option<Self> {
        let (a, b, s) = Self::align(self, o)?;
        Some(Decimal {
            mant: a.checked_add(b)?,
            scale: s,
        })
    }

    pub(crate) fn checked_sub(self, o: Self) -> Option<Self> {
        let (a, b, s) = Self::align(self, o)?;
        Some(Decimal {
            mant: a.checked_sub(b)?,
            scale: s,
        })
    }

    pub(crate) fn checked_mul(self, o: Self) -> Option<Self> {
        let d = Decimal {
            mant: self.mant.checked_mul(o.mant)?,
            scale: self.scale + o.scale,
        };
        if d.scale > MAX_SCALE {
            d.round(MAX_SCALE)
        } else {
            Some(d)
        }
    }

    /// Division to [`DIV_SCALE`] digits, trailing zeros removed. `None` on division by zero.
    pub(crate) fn checked_div(self, o: Self) -> Option<Self> {
        if o.mant == 0 {
            return None;
        }
        // self / o = (a * 10^k) / b at scale (self.scale - o.scale + k); pick k for DIV_SCALE + 1
        // digits, then round the extra one.
        let target = DIV_SCALE + 1;
        let k = (target + o.scale).saturating_sub(self.scale);
        let num = self.mant.checked_mul(pow10(k)?)?;
        let q = num.checked_div(o.mant)?;
        let scale = self.scale + k - o.scale;
        let d = Decimal { mant: q, scale }.round(DIV_SCALE.min(scale))?;
        Some(d.normalize())
    }

    /// Integer division (truncated) as an integer-valued decimal.
    pub(crate) fn div_trunc(self, o: Self) -> Option<Self> {
        let (a, b, _) = Self::align(self, o)?;
        if b == 0 {
            return None;
        }
        Some(Decimal {
            mant: a.checked_div(b)?,
            scale: 0,
        })
    }

    pub(crate) fn checked_rem(self, o: Self) -> Option<Self> {
        let (a, b, s) = Self::align(self, o)?;
        if b == 0 {
            return None;
        }
        Some(Decimal {
            mant: a.checked_rem(b)?,
            scale: s,
        })
    }

    pub(crate) fn neg(self) -> Self {
        Decimal {
            // Saturating: `i128::MIN` cannot be negated (it never comes from parsed input).
            mant: self.mant.saturating_neg(),
            scale: self.scale,
        }
    }

    pub(crate) fn abs(self) -> Self {
        Decimal {
            mant: self.mant.saturating_abs(),
            scale: self.scale,
        }
    }

    /// Rounds half away from zero to `scale` digits.
    pub(crate) fn round(self, scale: u32) -> Option<Self> {
        if scale >= self.scale {
            return self.rescale(scale);
        }
        let f = pow10(self.scale - scale)?;
        let q = self.mant / f;
        let r = self.mant % f;
        let adj = if r.unsigned_abs() * 2 >= f.unsigned_abs() {
            self.mant.signum()
        } else {
            0
        };
        Some(Decimal {
            mant: q + adj,
            scale,
        })
    }

    /// Digits after the decimal point.
    pub(crate) fn scale(self) -> u32 {
        self.scale
    }

    /// Rounds to `scale` digits towards +infinity (`up`) or -infinity.
    pub(crate) fn round_dir(self, scale: u32, up: bool) -> Option<Self> {
        if scale >= self.scale {
            return self.rescale(scale);
        }
        let f = pow10(self.scale - scale)?;
        let q = self.mant.div_euclid(f);
        let q = if up && self.mant.rem_euclid(f) != 0 {
            q + 1
        } else {
            q
        };
        Some(Decimal { mant: q, scale })
    }

    /// `lowBoundary`/`highBoundary`: the value widened by half a unit of its last digit, to
    /// `digits` decimal places (default 8). `None` outside 0..=28 digits.
    pub(crate) fn boundary(self, digits: Option<i64>, high: bool) -> Option<Self> {
        let p = u32::try_from(digits.unwrap_or(8))
            .ok()
            .filter(|p| *p <= MAX_SCALE)?;
        let half = Decimal {
            mant: 5,
            scale: self.scale + 1,
        };
        let v = if high {
            self.checked_add(half)?
        } else {
            self.checked_sub(half)?
        };
        v.round_dir(p, high)
    }

    /// Removes trailing fractional zeros (`2.500` → `2.5`, `3.0` → `3`).
    pub(crate) fn normalize(mut self) -> Self {
        while self.scale > 0 && self.mant % 10 == 0 {
            self.mant /= 10;
            self.scale -= 1;
        }
        self
    }

    pub(crate) fn floor(self) -> Option<i128> {
        let f = pow10(self.scale)?;
        Some(self.mant.div_euclid(f))
    }

    pub(crate) fn ceil(self) -> Option<i128> {
        let f = pow10(self.scale)?;
        let q = self.mant.div_euclid(f);
        Some(if self.mant.rem_euclid(f) == 0 {
            q
        } else {
            q + 1
        })
    }

    pub(crate) fn trunc(self) -> Option<i128> {
        Some(self.mant / pow10(self.scale)?)
    }

    /// The integer value when there is no fractional part.
    pub(crate) fn to_i64_exact(self) -> Option<i64> {
        let n = self.normalize();
        if n.scale == 0 {
            i64::try_from(n.mant).ok()
        } else {
            None
        }
    }

    pub(crate) fn to_f64(self) -> f64 {
        // Going through text keeps this exact for the digits f64 can hold.
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    pub(crate) fn from_f64(v: f64) -> Option<Self> {
        if !v.is_finite() {
            return None;
        }
        // 15 significant digits avoid printing binary noise (0.1 + 0.2 style).
        let s = format!("{:.*}", 12, v);
        Some(Self::parse(&s)?.normalize())
    }

    /// Compares at the precision of the less precise operand (used by `~`).
    pub(crate) fn equivalent(self, o: Self) -> bool {
        // Trailing zeros do not count towards precision: `1.10 ~ 1.1`, `1.0 ~ 1.1` at 0 digits.
        let s = self.normalize().scale.min(o.normalize().scale);
        match (self.round(s), o.round(s)) {
            (Some(a), Some(b)) => a.mant == b.mant,
            _ => false,
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        let (a, b, _) = Self::align(*self, *o)?;
        Some(a.cmp(&b))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.mant < 0;
        let digits = self.mant.unsigned_abs().to_string();
        let scale = self.scale as usize;
        let s = if scale == 0 {
            digits
        } else if digits.len() > scale {
            format!(
                "{}.{}",
                &digits[..digits.len() - scale],
                &digits[digits.len() - scale..]
            )
        } else {
            format!("0.{}{}", "0".repeat(scale - digits.len()), digits)
        };
        if neg {
            write!(f, "-{s}")
        } else {
            f.write_str(&s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn parse_and_print_keep_precision() {
        assert_eq!(d("1.50").to_string(), "1.50");
        assert_eq!(d("-0.05").to_string(), "-0.05");
        assert_eq!(d("1e3").to_string(), "1000");
        assert_eq!(d("1.5E-2").to_string(), "0.015");
        assert!(Decimal::parse("abc").is_none());
        assert!(Decimal::parse("1.2.3").is_none());
        assert!(Decimal::parse("").is_none());
    }

    #[test]
    fn arithmetic() {
        assert_eq!(d("1.1").checked_add(d("2.25")).unwrap().to_string(), "3.35");
        assert_eq!(d("1.1").checked_mul(d("2")).unwrap().to_string(), "2.2");
        assert_eq!(
            d("1").checked_div(d("3")).unwrap().to_string(),
            "0.33333333"
        );
        assert_eq!(d("4").checked_div(d("2")).unwrap().to_string(), "2");
        assert!(d("1").checked_div(d("0")).is_none());
        assert_eq!(d("5.5").checked_rem(d("0.7")).unwrap().to_string(), "0.6");
        assert_eq!(d("1.5").round(0).unwrap().to_string(), "2");
        assert_eq!(d("-1.5").floor(), Some(-2));
        assert_eq!(d("1.1").ceil(), Some(2));
        assert!(d("1.0") == d("1.0"));
        assert_eq!(d("1.0").partial_cmp(&d("1")), Some(Ordering::Equal));
        assert!(d("1.01").equivalent(d("1.0")));
    }
}
