//! Finding and rewriting `reference` elements inside resources (transaction processing).
//!
//! Only `Reference.reference` values are touched: every object member named `reference` whose
//! value is a string, at any depth (contained resources and extensions included).

use serde_json::Value;

/// A placeholder reference to another entry of the same Bundle (`urn:uuid:…`, `urn:oid:…`).
pub fn is_placeholder(reference: &str) -> bool {
    reference.starts_with("urn:uuid:") || reference.starts_with("urn:oid:")
}

/// A conditional reference `Type?criteria`: returns the type and the query string.
pub fn as_conditional(reference: &str) -> Option<(&str, &str)> {
    let (ty, query) = reference.split_once('?')?;
    let is_type_name = ty.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && ty.chars().all(|c| c.is_ascii_alphanumeric());
    is_type_name.then_some((ty, query))
}

/// Every `reference` string in `value`, in document order.
pub fn collect_references(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    visit(value, &mut |r| found.push(r.to_string()));
    found
}

fn visit(value: &Value, f: &mut dyn FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("reference", Value::String(r)) => f(r),
                    _ => visit(child, f),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| visit(v, f)),
        _ => {}
    }
}

/// Replaces every `reference` for which `rewrite` returns `Some`. `rewrite` may fail, which stops
/// the walk; the value may then be partially rewritten (callers discard it).
pub fn rewrite_references<E>(
    value: &mut Value,
    rewrite: &mut dyn FnMut(&str) -> Result<Option<String>, E>,
) -> Result<(), E> {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "reference"
                    && let Value::String(r) = child
                {
                    if let Some(new) = rewrite(r)? {
                        *r = new;
                    }
                    continue;
                }
                rewrite_references(child, rewrite)?;
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| rewrite_references(v, rewrite)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    #[test]
    fn classifies_references() {
        assert!(is_placeholder(
            "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"
        ));
        assert!(is_placeholder("urn:oid:1.2.3"));
        assert!(!is_placeholder("Patient/1"));
        assert_eq!(
            as_conditional("Patient?identifier=a|b"),
            Some(("Patient", "identifier=a|b"))
        );
        assert_eq!(as_conditional("http://x/Patient?x=1"), None);
        assert_eq!(as_conditional("Patient/1"), None);
    }

    #[test]
    fn rewrites_nested_references_everywhere() {
        let mut obs = json!({
            "resourceType": "Observation",
            "subject": {"reference": "urn:uuid:p"},
            "performer": [{"reference": "Practitioner/1"}, {"reference": "urn:uuid:q"}],
            "extension": [{"url": "x", "valueReference": {"reference": "urn:uuid:p"}}],
            "contained": [{"resourceType": "Provenance", "target": [{"reference": "urn:uuid:q"}]}],
            "note": [{"text": "urn:uuid:p"}],
            "reference": {"not": "a string"}
        });
        let map: HashMap<&str, &str> = [
            ("urn:uuid:p", "Patient/a"),
            ("urn:uuid:q", "Practitioner/b"),
        ]
        .into();
        rewrite_references::<()>(&mut obs, &mut |r| Ok(map.get(r).map(|s| s.to_string()))).unwrap();
        assert_eq!(obs["subject"]["reference"], "Patient/a");
        assert_eq!(obs["performer"][0]["reference"], "Practitioner/1");
        assert_eq!(obs["performer"][1]["reference"], "Practitioner/b");
        assert_eq!(
            obs["extension"][0]["valueReference"]["reference"],
            "Patient/a"
        );
        assert_eq!(
            obs["contained"][0]["target"][0]["reference"],
            "Practitioner/b"
        );
        // Only `reference` members are touched.
        assert_eq!(obs["note"][0]["text"], "urn:uuid:p");
        assert_eq!(
            collect_references(&obs),
            vec![
                "Patient/a",
                "Practitioner/1",
                "Practitioner/b",
                "Patient/a",
                "Practitioner/b"
            ]
        );
    }

    #[test]
    fn rewrite_errors_stop_the_walk() {
        let mut v = json!({"a": {"reference": "urn:uuid:missing"}});
        let r = rewrite_references(&mut v, &mut |r| {
            if is_placeholder(r) {
                Err(r.to_string())
            } else {
                Ok(None)
            }
        });
        assert_eq!(r, Err("urn:uuid:missing".to_string()));
    }
}
