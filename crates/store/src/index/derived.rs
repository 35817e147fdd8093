//! Derived index rows: extra rows under `keys::derived_param_key(type, code, facet)` that answer
//! search modifiers from the ordinary index tables, so the query side needs no special SQL.
//!
//! - `text` (token `:text`): String rows of `CodeableConcept.text`, `Coding.display` and
//!   `Identifier.type.text`.
//! - `of-type` (token `:of-type`): Token rows of an Identifier's type codings, with the code
//!   `hash("{type code}|{identifier value}")`.
//! - `below` (token `:below`): Token rows of a code and its structural ancestors in the
//!   family's canonical system (`hierarchy`).
//!
//! URIs get `UriPrefix` dictionary rows (each path prefix → the URI) under the parameter's own
//! key instead: the same few profile and system URLs repeat on every resource, so a row per
//! resource and prefix would multiply the uri index for a rarely used modifier.
//! - `identifier` (reference `:identifier`): Token rows of `Reference.identifier`.

use medicus_fhir::{SearchParam, SearchParamType};
use medicus_fhirpath::Item;
use serde_json::Value;

use super::IndexEntry;
use super::extract::{field, push_string, push_token, type_of};
use super::hierarchy::{Family, self_and_ancestors};
use super::keys::{self, derived_param_key, hash};

pub(crate) const TEXT: &str = "text";
pub(crate) const OF_TYPE: &str = "of-type";
pub(crate) const BELOW: &str = "below";
pub(crate) const IDENTIFIER: &str = "identifier";

/// Deeper URIs keep their first levels and themselves: bounds the rows of one value.
pub(crate) const MAX_URI_LEVELS: usize = 16;

/// The `of-type` code of an identifier value under a type code.
pub(crate) fn of_type_code(type_code: &str, value: &str) -> i64 {
    hash(&format!("{type_code}|{value}"))
}

/// The path prefixes of an absolute `http(s)` or `urn:` URI, shortest first, ending with the
/// URI itself without a trailing `/`: `http://a/b/c` → `http://a`, `http://a/b`, `http://a/b/c`.
/// Query, fragment and a canonical's `|version` do not split. `None` for other URIs.
pub(crate) fn uri_path_prefixes(uri: &str) -> Option<Vec<&str>> {
    let start = if let Some(rest) = uri.strip_prefix("https://") {
        uri.len() - rest.len()
    } else if let Some(rest) = uri.strip_prefix("http://") {
        uri.len() - rest.len()
    } else if let Some(rest) = uri.strip_prefix("urn:") {
        uri.len() - rest.len()
    } else {
        return None;
    };
    let full = uri.trim_end_matches('/');
    if full.len() <= start {
        return None;
    }
    let path_end = uri[start..]
        .find(['?', '#', '|'])
        .map_or(full.len(), |i| (start + i).min(full.len()));
    let mut out: Vec<&str> = Vec::new();
    for (i, c) in uri[start..path_end].char_indices() {
        let end = start + i;
        // An empty segment (`a//b`) adds no level.
        if c == '/' && end > start && !uri[..end].ends_with('/') {
            if out.len() + 1 >= MAX_URI_LEVELS {
                break;
            }
            out.push(&uri[..end]);
        }
    }
    out.push(full);
    Some(out)
}

/// Adds the derived rows of one item of `param` on `resource_type`.
pub(crate) fn derived_entries(
    resource_type: &str,
    param: &SearchParam,
    item: &Item<'_>,
    out: &mut Vec<IndexEntry>,
) {
    let key = |facet: &str| derived_param_key(resource_type, param.code, facet);
    match param.kind {
        SearchParamType::Token => {
            let Item::Node(n) = item else { return };
            let v = n.value;
            match type_of(n) {
                "CodeableConcept" => {
                    let codings = v.get("coding").and_then(Value::as_array);
                    let has_text = field(v, "text").is_some()
                        || codings
                            .into_iter()
                            .flatten()
                            .any(|c| field(c, "display").is_some());
                    if has_text {
                        let k = key(TEXT);
                        if let Some(t) = field(v, "text") {
                            push_string(k, t, out);
                        }
                        for c in codings.into_iter().flatten() {
                            if let Some(d) = field(c, "display") {
                                push_string(k, d, out);
                            }
                        }
                    }
                    for c in codings.into_iter().flatten() {
                        below_rows(&key, c, out);
                    }
                }
                "Coding" => {
                    if let Some(d) = field(v, "display") {
                        push_string(key(TEXT), d, out);
                    }
                    below_rows(&key, v, out);
                }
                "Identifier" => identifier_rows(&key, v, out),
                _ => {}
            }
        }
        SearchParamType::Uri => {
            let s = match item {
                Item::Node(n) => n.value.as_str(),
                Item::String(s) => Some(s.as_str()),
                _ => None,
            };
            let Some(s) = s else { return };
            if let Some(prefixes) = uri_path_prefixes(s) {
                let (param, value) = (keys::param_key(resource_type, param.code), hash(s));
                for p in prefixes {
                    out.push(IndexEntry::UriPrefix {
                        param,
                        prefix: hash(p),
                        value,
                    });
                }
            }
        }
        SearchParamType::Reference => {
            let Item::Node(n) = item else { return };
            if let Some(id) = n.value.get("identifier") {
                push_token(
                    key(IDENTIFIER),
                    field(id, "system"),
                    field(id, "value"),
                    out,
                );
            }
        }
        _ => {}
    }
}

/// `below` rows of a coding in a code system with a structural hierarchy.
fn below_rows(key: &dyn Fn(&str) -> i64, coding: &Value, out: &mut Vec<IndexEntry>) {
    let (Some(system), Some(code)) = (field(coding, "system"), field(coding, "code")) else {
        return;
    };
    let Some(family) = Family::of(system) else {
        return;
    };
    let codes = self_and_ancestors(family, code);
    if codes.is_empty() {
        return;
    }
    let (param, system) = (key(BELOW), keys::system_key(family.canonical_system()));
    for c in codes {
        out.push(IndexEntry::Token {
            param,
            system,
            code: hash(&c),
        });
    }
}

/// `text` (type text) and `of-type` rows of an Identifier.
fn identifier_rows(key: &dyn Fn(&str) -> i64, identifier: &Value, out: &mut Vec<IndexEntry>) {
    let Some(ty) = identifier.get("type") else {
        return;
    };
    if let Some(t) = field(ty, "text") {
        push_string(key(TEXT), t, out);
    }
    let Some(value) = field(identifier, "value").filter(|v| !v.is_empty()) else {
        return;
    };
    for c in ty
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(code) = field(c, "code").filter(|c| !c.is_empty()) {
            out.push(IndexEntry::Token {
                param: key(OF_TYPE),
                system: field(c, "system").map_or(keys::NONE, keys::system_key),
                code: of_type_code(code, value),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::extract_entries;
    use serde_json::json;

    #[test]
    fn uri_prefixes() {
        assert_eq!(
            uri_path_prefixes("http://a.org/fhir/StructureDefinition/x").unwrap(),
            vec![
                "http://a.org",
                "http://a.org/fhir",
                "http://a.org/fhir/StructureDefinition",
                "http://a.org/fhir/StructureDefinition/x"
            ]
        );
        assert_eq!(
            uri_path_prefixes("https://a//b/").unwrap(),
            vec!["https://a", "https://a//b"]
        );
        assert_eq!(
            uri_path_prefixes("http://a/p|1.0/x").unwrap(),
            vec!["http://a", "http://a/p|1.0/x"]
        );
        assert_eq!(
            uri_path_prefixes("urn:oid:1.2.3").unwrap(),
            vec!["urn:oid:1.2.3"]
        );
        assert!(uri_path_prefixes("http://").is_none());
        assert!(uri_path_prefixes("relative/path").is_none());
        let deep = format!("http://a{}", "/x".repeat(100));
        let p = uri_path_prefixes(&deep).unwrap();
        assert_eq!(p.len(), MAX_URI_LEVELS);
        assert_eq!(p.last().copied(), Some(deep.as_str()));
    }

    fn has(entries: &[IndexEntry], e: &IndexEntry) -> bool {
        entries.contains(e)
    }

    #[test]
    fn condition_rows() {
        let defs = medicus_fhir::r4();
        let condition = json!({
            "resourceType": "Condition",
            "code": {"text": "Diabetes Typ 2", "coding": [{
                "system": "http://fhir.de/CodeSystem/dimdi/icd-10-gm", "code": "E11.90",
                "display": "Diabetes mellitus, Typ 2"
            }]},
            "subject": {"identifier": {"system": "urn:mrn", "value": "42"}}
        });
        let e = extract_entries(defs, "Condition", &condition);
        let text = derived_param_key("Condition", "code", TEXT);
        let below = derived_param_key("Condition", "code", BELOW);
        let icd = keys::system_key("http://fhir.de/CodeSystem/bfarm/icd-10-gm");
        for s in ["diabetes typ 2", "diabetes mellitus, typ 2"] {
            assert!(e.iter().any(|x| matches!(x, IndexEntry::String { param, normalized, .. } if *param == text && normalized == s)), "{s}");
        }
        for c in ["E11.90", "E11.9", "E11"] {
            let row = IndexEntry::Token {
                param: below,
                system: icd,
                code: hash(c),
            };
            assert!(has(&e, &row), "{c}");
        }
        let ident = IndexEntry::Token {
            param: derived_param_key("Condition", "subject", IDENTIFIER),
            system: keys::system_key("urn:mrn"),
            code: hash("42"),
        };
        assert!(has(&e, &ident));
    }

    #[test]
    fn identifier_type_rows() {
        let defs = medicus_fhir::r4();
        let patient = json!({
            "resourceType": "Patient",
            "identifier": [{
                "type": {"text": "Krankenversichertennummer", "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                "system": "urn:mrn", "value": "42"
            }]
        });
        let e = extract_entries(defs, "Patient", &patient);
        let row = IndexEntry::Token {
            param: derived_param_key("Patient", "identifier", OF_TYPE),
            system: keys::system_key("http://terminology.hl7.org/CodeSystem/v2-0203"),
            code: of_type_code("MR", "42"),
        };
        assert!(has(&e, &row));
        let text = derived_param_key("Patient", "identifier", TEXT);
        assert!(e.iter().any(|x| matches!(x, IndexEntry::String { param, normalized, .. } if *param == text && normalized == "krankenversichertennummer")));
    }
}
