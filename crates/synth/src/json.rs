//! A minimal streaming JSON writer. Resources are written straight into a `String` instead of being
//! assembled as `serde_json::Value` trees: that avoids one allocation per node and per key and is what
//! makes the ≥ 200k resources/s target reachable on two cores. Keys are static literals (no escaping);
//! values are escaped per RFC 8259.

use std::fmt::Write;

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends a finite decimal with `decimals` fraction digits (non-finite values become 0: JSON has no NaN).
pub fn write_decimal(out: &mut String, v: f64, decimals: usize) {
    let v = if v.is_finite() { v } else { 0.0 };
    let _ = write!(out, "{v:.decimals$}");
}

/// Writer for the members of one JSON object. Created by [`object`] or nested builders.
pub struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

/// Writer for the items of one JSON array.
pub struct Arr<'a> {
    out: &'a mut String,
    first: bool,
}

/// Writes a whole JSON object into `out`.
pub fn object(out: &mut String, f: impl FnOnce(&mut Obj)) {
    out.push('{');
    let mut o = Obj { out, first: true };
    f(&mut o);
    o.out.push('}');
}

impl Obj<'_> {
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        write_str(self.out, v);
        self
    }

    pub fn int(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        let _ = write!(self.out, "{v}");
        self
    }

    pub fn decimal(&mut self, k: &str, v: f64, decimals: usize) -> &mut Self {
        self.key(k);
        write_decimal(self.out, v, decimals);
        self
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.out.push_str(if v { "true" } else { "false" });
        self
    }

    pub fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj)) -> &mut Self {
        self.key(k);
        object(self.out, f);
        self
    }

    pub fn arr(&mut self, k: &str, f: impl FnOnce(&mut Arr)) -> &mut Self {
        self.key(k);
        self.out.push('[');
        let mut a = Arr {
            out: self.out,
            first: true,
        };
        f(&mut a);
        self.out.push(']');
        self
    }
}

impl Arr<'_> {
    fn sep(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.sep();
        write_str(self.out, v);
        self
    }

    pub fn obj(&mut self, f: impl FnOnce(&mut Obj)) -> &mut Self {
        self.sep();
        object(self.out, f);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_escaped_json() {
        let mut s = String::new();
        object(&mut s, |o| {
            o.str("a", "x\"y\\z\n\u{1}ä")
                .int("b", -3)
                .decimal("c", 1.25, 1)
                .decimal("n", f64::NAN, 2)
                .bool("d", true)
                .arr("e", |a| {
                    a.str("p").obj(|o| {
                        o.str("q", "r");
                    });
                })
                .obj("f", |_| {});
        });
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["a"], "x\"y\\z\n\u{1}ä");
        assert_eq!(v["e"][1]["q"], "r");
        assert_eq!(v["n"].to_string(), "0.00");
    }
}
