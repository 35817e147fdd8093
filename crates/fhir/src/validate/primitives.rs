//! JSON representation and lexical rules of the R4 primitive types (the regexes of the R4
//! specification, hand-written: faster than regexes and they also check calendar validity).

use serde_json::Value;

use crate::IssueType;
use crate::definitions::Primitive;

/// Longest string value accepted (the R4 spec: strings SHALL NOT exceed 1 MB).
pub(crate) const MAX_STRING_BYTES: usize = 1024 * 1024;

pub(crate) type Failure = (IssueType, &'static str);

/// Check a primitive JSON value against its type. `Err` carries the issue type and message.
pub(crate) fn check(primitive: Primitive, value: &Value) -> Result<(), Failure> {
    match primitive {
        Primitive::Boolean => match value {
            Value::Bool(_) => Ok(()),
            _ => Err((
                IssueType::Structure,
                "a boolean must be a JSON true or false",
            )),
        },
        Primitive::Integer | Primitive::PositiveInt | Primitive::UnsignedInt => {
            let Value::Number(n) = value else {
                return Err((IssueType::Structure, "an integer must be a JSON number"));
            };
            // `as_i64` fails for `1.0` and `1e2` (also under serde_json's arbitrary_precision).
            let Some(i) = n.as_i64() else {
                return Err((IssueType::Value, "not a valid integer"));
            };
            let (low, message) = match primitive {
                Primitive::PositiveInt => (1, "a positiveInt must be between 1 and 2147483647"),
                Primitive::UnsignedInt => (0, "an unsignedInt must be between 0 and 2147483647"),
                _ => (i64::from(i32::MIN), "an integer must fit in 32 bits"),
            };
            if (low..=i64::from(i32::MAX)).contains(&i) {
                Ok(())
            } else {
                Err((IssueType::Value, message))
            }
        }
        Primitive::Decimal => match value {
            // JSON's number grammar is the R4 decimal grammar; non-finite values cannot be written.
            Value::Number(_) => Ok(()),
            _ => Err((IssueType::Structure, "a decimal must be a JSON number")),
        },
        _ => {
            let Value::String(s) = value else {
                return Err((IssueType::Structure, "this primitive must be a JSON string"));
            };
            if s.is_empty() {
                return Err((
                    IssueType::Invalid,
                    "a string value must have content (not be empty)",
                ));
            }
            if s.len() > MAX_STRING_BYTES {
                return Err((IssueType::Value, "a string value must not exceed 1 MB"));
            }
            check_string(primitive, s).map_err(|m| (IssueType::Value, m))
        }
    }
}

fn check_string(primitive: Primitive, s: &str) -> Result<(), &'static str> {
    let ok = match primitive {
        Primitive::Id => is_id(s),
        Primitive::Code => is_code(s),
        Primitive::Uri | Primitive::Url | Primitive::Canonical => {
            !s.chars().any(char::is_whitespace)
        }
        Primitive::Oid => is_oid(s),
        Primitive::Uuid => is_uuid(s, false),
        Primitive::Date => is_date(s),
        Primitive::DateTime => is_date_time(s),
        Primitive::Instant => is_instant(s),
        Primitive::Time => is_time(s),
        Primitive::Base64Binary => is_base64(s),
        // The narrative is an XHTML `<div>` (R4 Narrative.div); its content is not checked here.
        Primitive::Xhtml => s.trim_start().starts_with("<div"),
        // string, markdown: any non-empty text (checked above).
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(match primitive {
            Primitive::Id => "not a valid id (1-64 of A-Z a-z 0-9 - .)",
            Primitive::Code => "not a valid code (no leading, trailing or repeated whitespace)",
            Primitive::Uri => "not a valid uri (no whitespace)",
            Primitive::Url => "not a valid url (no whitespace)",
            Primitive::Canonical => "not a valid canonical (no whitespace)",
            Primitive::Oid => "not a valid oid (urn:oid:…)",
            Primitive::Uuid => "not a valid uuid (urn:uuid: and lower-case 8-4-4-4-12 hex)",
            Primitive::Date => "not a valid date (YYYY, YYYY-MM or YYYY-MM-DD)",
            Primitive::DateTime => {
                "not a valid dateTime (a date, or a date and time with seconds and time zone)"
            }
            Primitive::Instant => "not a valid instant (date and time with seconds and time zone)",
            Primitive::Time => "not a valid time (hh:mm:ss)",
            Primitive::Base64Binary => "not valid base64",
            Primitive::Xhtml => "the narrative must be an XHTML <div> element",
            _ => "not a valid value",
        })
    }
}

/// `[A-Za-z0-9\-\.]{1,64}`
pub(crate) fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `[^\s]+(\s[^\s]+)*`
fn is_code(s: &str) -> bool {
    let mut prev_ws = true; // no leading whitespace
    for c in s.chars() {
        let ws = c.is_whitespace();
        if ws && prev_ws {
            return false;
        }
        prev_ws = ws;
    }
    !prev_ws
}

/// `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`
pub(crate) fn is_oid(s: &str) -> bool {
    s.strip_prefix("urn:oid:").is_some_and(is_bare_oid)
}

fn is_bare_oid(s: &str) -> bool {
    let mut arcs = s.split('.');
    let first_ok = arcs.next().is_some_and(|a| matches!(a, "0" | "1" | "2"));
    let mut count = 0;
    for arc in arcs {
        count += 1;
        let valid = !arc.is_empty()
            && arc.bytes().all(|b| b.is_ascii_digit())
            && (arc == "0" || !arc.starts_with('0'));
        if !valid {
            return false;
        }
    }
    first_ok && count >= 1
}

/// `urn:uuid:` + 8-4-4-4-12 hex (lower case in the R4 regex; references accept either case).
pub(crate) fn is_uuid(s: &str, any_case: bool) -> bool {
    let Some(rest) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let b = rest.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => {
                c.is_ascii_digit()
                    || (b'a'..=b'f').contains(&c)
                    || (any_case && (b'A'..=b'F').contains(&c))
            }
        })
}

/// A cursor over ASCII bytes for the date/time grammars.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn new(s: &str) -> Cursor<'_> {
        Cursor {
            bytes: s.as_bytes(),
            pos: 0,
        }
    }

    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `n` digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let slice = self.bytes.get(self.pos..self.pos + n)?;
        let mut v = 0u32;
        for &b in slice {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(b - b'0');
        }
        self.pos += n;
        Some(v)
    }

    /// `YYYY(-MM(-DD)?)?`; returns how many parts were present (1..=3).
    fn date(&mut self) -> Option<u8> {
        let year = self.digits(4)?;
        if year == 0 {
            return None;
        }
        if !self.eat(b'-') {
            return Some(1);
        }
        let month = self.digits(2)?;
        if !(1..=12).contains(&month) {
            return None;
        }
        if !self.eat(b'-') {
            return Some(2);
        }
        let day = self.digits(2)?;
        (day >= 1 && day <= days_in_month(year, month)).then_some(3)
    }

    /// `hh:mm:ss(.f+)?`
    fn time(&mut self) -> Option<()> {
        let h = self.digits(2)?;
        let m = self.eat(b':').then(|| self.digits(2)).flatten()?;
        let s = self.eat(b':').then(|| self.digits(2)).flatten()?;
        if h > 23 || m > 59 || s > 60 {
            return None;
        }
        if self.eat(b'.') {
            let start = self.pos;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
            if self.pos == start {
                return None;
            }
        }
        Some(())
    }

    /// `Z | (+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)`
    fn zone(&mut self) -> Option<()> {
        if self.eat(b'Z') {
            return Some(());
        }
        if !(self.eat(b'+') || self.eat(b'-')) {
            return None;
        }
        let h = self.digits(2)?;
        let m = self.eat(b':').then(|| self.digits(2)).flatten()?;
        (h <= 13 && m <= 59 || h == 14 && m == 0).then_some(())
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

pub(crate) fn is_date(s: &str) -> bool {
    let mut c = Cursor::new(s);
    c.date().is_some() && c.done()
}

/// A date of any precision, or a full date with `Thh:mm:ss(.f)?` and a time zone.
pub(crate) fn is_date_time(s: &str) -> bool {
    let mut c = Cursor::new(s);
    match c.date() {
        Some(3) if c.eat(b'T') => c.time().and_then(|()| c.zone()).is_some() && c.done(),
        Some(_) => c.done(),
        None => false,
    }
}

pub(crate) fn is_instant(s: &str) -> bool {
    let mut c = Cursor::new(s);
    c.date() == Some(3) && c.eat(b'T') && c.time().and_then(|()| c.zone()).is_some() && c.done()
}

pub(crate) fn is_time(s: &str) -> bool {
    let mut c = Cursor::new(s);
    c.time().is_some() && c.done()
}

/// Base64 with optional whitespace (line breaks are common); `=` padding only at the end.
fn is_base64(s: &str) -> bool {
    let mut count = 0usize;
    let mut padding = 0usize;
    for b in s.bytes() {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'=' => padding += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if padding == 0 => {}
            _ => return false,
        }
        count += 1;
    }
    count > 0 && count.is_multiple_of(4) && padding <= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(p: Primitive, v: Value) -> bool {
        check(p, &v).is_ok()
    }

    #[test]
    fn json_kinds() {
        assert!(ok(Primitive::Boolean, json!(true)));
        assert!(!ok(Primitive::Boolean, json!("true")));
        assert!(ok(Primitive::Integer, json!(-5)));
        assert!(!ok(Primitive::Integer, json!("5")));
        assert!(!ok(Primitive::Integer, json!(1.5)));
        assert!(!ok(Primitive::Integer, json!(2_147_483_648_i64)));
        assert!(ok(Primitive::Integer, json!(-2_147_483_648_i64)));
        assert!(ok(Primitive::PositiveInt, json!(1)));
        assert!(!ok(Primitive::PositiveInt, json!(0)));
        assert!(ok(Primitive::UnsignedInt, json!(0)));
        assert!(!ok(Primitive::UnsignedInt, json!(-1)));
        assert!(ok(Primitive::Decimal, json!(1.50)));
        assert!(!ok(Primitive::Decimal, json!("1.5")));
        assert!(!ok(Primitive::String, json!(1)));
        assert!(!ok(Primitive::String, json!("")));
        assert!(ok(Primitive::String, json!(" x ")));
        assert!(ok(Primitive::Markdown, json!("# x")));
        assert!(ok(
            Primitive::Xhtml,
            json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>")
        ));
        assert!(!ok(Primitive::Xhtml, json!("<p>x</p>")));
        assert!(!ok(
            Primitive::String,
            Value::String("x".repeat(MAX_STRING_BYTES + 1))
        ));
    }

    #[test]
    fn integer_text_forms() {
        let v: Value = serde_json::from_str("1.0").unwrap();
        assert!(!ok(Primitive::Integer, v));
        let v: Value = serde_json::from_str("1e2").unwrap();
        assert!(!ok(Primitive::Integer, v));
        let v: Value = serde_json::from_str("1e2").unwrap();
        assert!(ok(Primitive::Decimal, v));
    }

    #[test]
    fn ids_codes_uris() {
        assert!(is_id("abc-1.2"));
        assert!(is_id(&"a".repeat(64)));
        assert!(!is_id(&"a".repeat(65)));
        assert!(!is_id("a_b"));
        assert!(!is_id(""));
        assert!(is_code("final"));
        assert!(is_code("a b"));
        assert!(!is_code(" a"));
        assert!(!is_code("a "));
        assert!(!is_code("a  b"));
        assert!(ok(Primitive::Uri, json!("http://x.org/a")));
        assert!(!ok(Primitive::Uri, json!("http://x.org/a b")));
        assert!(!ok(Primitive::Canonical, json!("a\tb")));
    }

    #[test]
    fn oids_and_uuids() {
        assert!(is_oid("urn:oid:2.16.840.1.113883"));
        assert!(!is_oid("urn:oid:3.1"));
        assert!(!is_oid("urn:oid:1"));
        assert!(!is_oid("urn:oid:1.02"));
        assert!(!is_oid("2.16.840"));
        assert!(is_uuid(
            "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
            false
        ));
        assert!(!is_uuid(
            "urn:uuid:C757873D-EC9A-4326-A141-556F43239520",
            false
        ));
        assert!(is_uuid(
            "urn:uuid:C757873D-EC9A-4326-A141-556F43239520",
            true
        ));
        assert!(!is_uuid(
            "urn:uuid:c757873d-ec9a-4326-a141-556f4323952",
            false
        ));
    }

    #[test]
    fn dates() {
        for s in ["2023", "2023-02", "2023-02-28", "2024-02-29", "0001-01-01"] {
            assert!(is_date(s), "{s}");
        }
        for s in [
            "2023-02-30",
            "2023-02-29",
            "1900-02-29",
            "0000",
            "2023-13",
            "2023-1-01",
            "23",
            "2023-02-28T10:00:00Z",
        ] {
            assert!(!is_date(s), "{s}");
        }
    }

    #[test]
    fn date_times() {
        for s in [
            "2023",
            "2023-05",
            "2023-05-01",
            "2023-05-01T10:20:30Z",
            "2023-05-01T10:20:30.123+02:00",
            "2023-05-01T23:59:60-14:00",
            "2023-05-01T10:20:30+14:00",
        ] {
            assert!(is_date_time(s), "{s}");
        }
        for s in [
            "2023-05-01T10:20:30",
            "2023-05-01T10:20Z",
            "2023-05-01T24:00:00Z",
            "2023-05T10:20:30Z",
            "2023-05-01T10:20:30+14:30",
            "2023-05-01T10:20:30.Z",
            "2023-02-30T10:20:30Z",
            "2023-05-01 10:20:30Z",
        ] {
            assert!(!is_date_time(s), "{s}");
        }
    }

    #[test]
    fn instants_and_times() {
        assert!(is_instant("2015-02-07T13:28:17.239+02:00"));
        assert!(is_instant("2015-02-07T13:28:17Z"));
        assert!(!is_instant("2015-02-07T13:28:17"));
        assert!(!is_instant("2015-02-07"));
        assert!(!is_instant("2015-02-07T13:28Z"));
        assert!(is_time("13:28:17"));
        assert!(is_time("13:28:17.5"));
        assert!(!is_time("13:28"));
        assert!(!is_time("25:00:00"));
        assert!(!is_time("13:28:17Z"));
    }

    #[test]
    fn base64() {
        assert!(is_base64("SGVsbG8="));
        assert!(is_base64("SGVs\nbG8h"));
        assert!(is_base64("a+/="));
        assert!(!is_base64("SGVsbG8"));
        assert!(!is_base64("SG=sbG8="));
        assert!(!is_base64("SGVsbG8*"));
        assert!(!is_base64("  "));
    }
}
