//! Parsing request bodies as JSON without trusting their shape.
//!
//! The nesting depth is checked with a cheap byte scan *before* `serde_json` sees the input, so a
//! body of 100k `[` cannot exhaust the stack; serde_json's own recursion limit stays on as a
//! second line of defence.

use serde_json::Value;

use super::error::FhirError;

/// The maximum nesting depth of `bytes` read as JSON, counting `[` and `{` outside strings.
///
/// Stops scanning and returns `limit + 1` as soon as the depth exceeds `limit`. It does not
/// validate the JSON: malformed input gets some depth and the parser rejects it afterwards.
pub fn max_depth(bytes: &[u8], limit: usize) -> usize {
    let mut depth = 0usize;
    let mut max = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    if max > limit {
                        return max;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses a request body as a JSON value, rejecting empty bodies, bodies nested deeper than
/// `max_depth` and malformed JSON with 400.
pub fn parse_json(bytes: &[u8], max_json_depth: usize) -> Result<Value, FhirError> {
    // Some Windows tools prefix UTF-8 with a byte-order mark; JSON parsers reject it.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FhirError::bad_request("request body is empty"));
    }
    if max_depth(bytes, max_json_depth) > max_json_depth {
        return Err(FhirError::bad_request(format!(
            "JSON is nested deeper than the limit of {max_json_depth} levels"
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| FhirError::bad_request(format!("invalid JSON: {e}")))
}

/// Parses a body that must be a JSON object representing a FHIR resource.
pub fn parse_resource(bytes: &[u8], max_json_depth: usize) -> Result<Value, FhirError> {
    let value = parse_json(bytes, max_json_depth)?;
    if !value.is_object() {
        return Err(FhirError::bad_request("request body is not a JSON object"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value_depth(v: &Value) -> usize {
        match v {
            Value::Array(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(value_depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(max_depth(br#"{"a":"[[[{{{"}"#, 64), 1);
        assert_eq!(max_depth(br#"{"a":"\"[[["}"#, 64), 1);
        assert_eq!(max_depth(br#"{"a":"\\","b":[[1]]}"#, 64), 3);
        assert_eq!(max_depth(b"42", 64), 0);
    }

    #[test]
    fn very_deep_input_is_rejected_without_parsing() {
        let deep = "[".repeat(100_000);
        let err = parse_json(deep.as_bytes(), 64).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.to_string().contains("nested deeper"));
        let deep_closed = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(parse_json(deep_closed.as_bytes(), 64).is_err());
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(parse_json(ok.as_bytes(), 64).is_ok());
    }

    #[test]
    fn malformed_and_empty_bodies_are_bad_requests() {
        assert_eq!(parse_json(b"", 64).unwrap_err().status(), 400);
        assert_eq!(parse_json(b"{\"a\":", 64).unwrap_err().status(), 400);
        assert_eq!(parse_resource(b"[1]", 64).unwrap_err().status(), 400);
        assert!(parse_resource(b"\xEF\xBB\xBF{}", 64).is_ok());
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[\\[\\]{}\"\\\\a-z ]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(12, 128, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[\\[{\"\\\\a-z]{0,4}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn scanner_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), limit in 0usize..80) {
            let _ = max_depth(&bytes, limit);
            let _ = parse_json(&bytes, limit);
        }

        #[test]
        fn scanner_agrees_with_serde_on_depth(v in arb_json()) {
            let text = serde_json::to_vec(&v).unwrap();
            prop_assert_eq!(max_depth(&text, usize::MAX), value_depth(&v));
            let pretty = serde_json::to_vec_pretty(&v).unwrap();
            prop_assert_eq!(max_depth(&pretty, usize::MAX), value_depth(&v));
        }
    }
}
