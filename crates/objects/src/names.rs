//! What a bucket name, a key and a `Range` header may be: parsed and checked before anything
//! touches the store.

use crate::error::ObjectError;

/// Longest key, in bytes (S3's limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// Checks a bucket name against the S3 rules for new buckets: 3–63 characters of lower-case
/// letters, digits, `-` and `.`; starts and ends with a letter or digit; no `..`, no `.-`/`-.`;
/// not an IPv4 address; not the reserved `xn--` prefix or `-s3alias` suffix.
pub fn validate_bucket_name(name: &str) -> Result<(), ObjectError> {
    let bad = |why: &str| Err(ObjectError::InvalidBucketName(why.to_owned()));
    if !(3..=63).contains(&name.len()) {
        return bad("use 3 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return bad("use lower-case letters, digits, '-' and '.'");
    }
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    if !edge(bytes[0]) || !edge(bytes[bytes.len() - 1]) {
        return bad("start and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return bad("no '..', '.-' or '-.'");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("not an IP address");
    }
    if name.starts_with("xn--") || name.ends_with("-s3alias") || name.ends_with("--ol-s3") {
        return bad("reserved prefix or suffix");
    }
    Ok(())
}

/// Checks an object key: 1–1024 bytes, no NUL or other control characters, and no `.` or `..`
/// path segment (keys map to names that path-based tools resolve).
pub fn validate_key(key: &str) -> Result<(), ObjectError> {
    let bad = |why: &str| Err(ObjectError::InvalidKey(why.to_owned()));
    if key.is_empty() {
        return bad("the key is empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return bad("longer than 1024 bytes");
    }
    if key.chars().any(|c| c.is_control()) {
        return bad("contains NUL or another control character");
    }
    if key.split('/').any(|s| s == ".." || s == ".") {
        return bad("contains a '.' or '..' path segment");
    }
    Ok(())
}

/// A byte range of an object, inclusive of both ends, resolved against its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    /// Inclusive.
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A parsed `Range` header value before it meets an object size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=a-b` or `bytes=a-`.
    From { start: u64, end: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n` (one range; S3 serves no multi-range).
pub fn parse_range(header: &str) -> Result<RangeSpec, ObjectError> {
    let bad = || ObjectError::InvalidArgument(format!("invalid Range header: {header:?}"));
    let spec = header.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| -> Result<u64, ObjectError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    if a.is_empty() {
        return Ok(RangeSpec::Suffix(num(b)?));
    }
    let start = num(a)?;
    let end = if b.is_empty() { None } else { Some(num(b)?) };
    if let Some(e) = end
        && e < start
    {
        return Err(bad());
    }
    Ok(RangeSpec::From { start, end })
}

impl RangeSpec {
    /// The bytes of an object of `size` this selects; `InvalidRange` (416) when none.
    pub fn resolve(self, size: u64) -> Result<ByteRange, ObjectError> {
        match self {
            RangeSpec::From { start, end } => {
                if start >= size {
                    return Err(ObjectError::InvalidRange);
                }
                let end = end.map_or(size - 1, |e| e.min(size - 1));
                Ok(ByteRange { start, end })
            }
            RangeSpec::Suffix(n) => {
                if n == 0 || size == 0 {
                    return Err(ObjectError::InvalidRange);
                }
                Ok(ByteRange {
                    start: size.saturating_sub(n),
                    end: size - 1,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.2", "a".repeat(63).as_str(), "1bucket"] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Abc",
            "a_b",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            "a".repeat(64).as_str(),
            "ab c",
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys() {
        for ok in ["a", "a/b/c.txt", "..a", "a..", "dir/.hidden", "ü/€"] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(1025);
        for bad in ["", "a/../b", "..", "./a", "a\0b", "a\nb", long.as_str()] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key(&"x".repeat(1024)).is_ok());
    }

    #[test]
    fn ranges() {
        let r = |h: &str, size| parse_range(h).and_then(|s| s.resolve(size));
        assert_eq!(r("bytes=0-9", 100).unwrap(), ByteRange { start: 0, end: 9 });
        assert_eq!(
            r("bytes=90-", 100).unwrap(),
            ByteRange { start: 90, end: 99 }
        );
        assert_eq!(
            r("bytes=90-200", 100).unwrap(),
            ByteRange { start: 90, end: 99 }
        );
        assert_eq!(
            r("bytes=-10", 100).unwrap(),
            ByteRange { start: 90, end: 99 }
        );
        assert_eq!(
            r("bytes=-1000", 100).unwrap(),
            ByteRange { start: 0, end: 99 }
        );
        assert!(matches!(
            r("bytes=100-", 100),
            Err(ObjectError::InvalidRange)
        ));
        assert!(matches!(r("bytes=-0", 100), Err(ObjectError::InvalidRange)));
        assert!(matches!(r("bytes=0-0", 0), Err(ObjectError::InvalidRange)));
        for bad in [
            "bytes=",
            "bytes=a-b",
            "bytes=5-4",
            "items=0-1",
            "bytes=1-2,4-5",
            "bytes=+1-2",
        ] {
            assert!(
                matches!(parse_range(bad), Err(ObjectError::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn resolved_ranges_lie_inside_the_object(a in 0u64..2000, b in 0u64..2000, size in 0u64..1500, suffix in any::<bool>()) {
            let header = if suffix { format!("bytes=-{a}") } else { format!("bytes={}-{}", a.min(b), a.max(b)) };
            let spec = parse_range(&header).unwrap();
            if let Ok(r) = spec.resolve(size) {
                prop_assert!(r.start <= r.end && r.end < size);
            }
        }

        #[test]
        fn range_parser_never_panics(s in ".{0,40}") {
            let _ = parse_range(&s).map(|spec| spec.resolve(10));
        }

        #[test]
        fn accepted_keys_are_safe(s in "\\PC{0,20}(/\\.{1,3}/)?\\PC{0,5}") {
            if validate_key(&s).is_ok() {
                prop_assert!(!s.is_empty() && s.len() <= MAX_KEY_BYTES);
                prop_assert!(!s.contains('\0'));
                prop_assert!(!s.split('/').any(|p| p == ".." || p == "."));
            }
        }

        #[test]
        fn accepted_bucket_names_are_dns_labels(s in "[a-z0-9.-]{0,70}") {
            if validate_bucket_name(&s).is_ok() {
                prop_assert!((3..=63).contains(&s.len()));
                prop_assert!(!s.contains(".."));
            }
        }
    }
}
