//! Search modifiers answered by derived index rows (`index::derived`) or by several plain values:
//! token `:text` `:of-type` `:below` `:above` `:in` `:not-in`, uri `:below` `:above`, reference
//! `:identifier`. Each becomes an ordinary criterion (on the derived parameter key where the
//! rows are derived), so backends need nothing special for them.

use medicus_fhir::{SearchParam, SearchParamType};

use super::criteria::{Criterion, StringMatch, TokenValue, Value};
use super::parse::{invalid, split_bar, split_or, token_value};
use super::valueset::{MAX_VALUE_SET_CODES, SearchResolver, expand};
use crate::error::StoreError;
use crate::index::derived::{self, uri_path_prefixes};
use crate::index::hierarchy::{Family, self_and_ancestors};
use crate::index::keys::{self, derived_param_key, hash, normalize_string};

/// The criterion of `p:modifier=value` when the modifier is one of this module's, else `None`.
/// `c` is the criterion without values on the parameter's ordinary key.
pub(super) fn derived_criterion(
    resource_type: &str,
    p: &SearchParam,
    modifier: &str,
    value: &str,
    mut c: Criterion,
    resolver: &dyn SearchResolver,
) -> Result<Option<Criterion>, StoreError> {
    let derived_key = |facet: &str| derived_param_key(resource_type, p.code, facet);
    let values = split_or(value);
    match (p.kind, modifier) {
        (SearchParamType::Token, "text") => {
            c.param = derived_key(derived::TEXT);
            c.kind = Some(SearchParamType::String);
            c.values = values
                .iter()
                .map(|v| Value::String {
                    text: normalize_string(v),
                    mode: StringMatch::StartsWith,
                })
                .collect();
        }
        (SearchParamType::Token, "of-type") => {
            let on_identifier = p
                .expression
                .as_ref()
                .is_some_and(|e| e.source().to_ascii_lowercase().contains("identifier"));
            if !on_identifier {
                return Err(invalid(format!(
                    "':of-type' applies to Identifier parameters only, not to '{}'",
                    p.code
                )));
            }
            c.param = derived_key(derived::OF_TYPE);
            for v in &values {
                c.values.push(Value::Token(of_type_value(p.code, v)?));
            }
        }
        (SearchParamType::Token, "below") => {
            c.param = derived_key(derived::BELOW);
            for v in &values {
                let (family, code) = hierarchical(p.code, "below", v)?;
                c.values.push(Value::Token(TokenValue {
                    system: Some(keys::system_key(family.canonical_system())),
                    code: Some(hash(&code)),
                }));
            }
        }
        (SearchParamType::Token, "above") => {
            for v in &values {
                let (family, code) = hierarchical(p.code, "above", v)?;
                let mut codes = self_and_ancestors(family, &code);
                // The code as written (with an ICD marker, say) is stored as written.
                if let Some((_, raw)) = split_bar(v)
                    && !codes.iter().any(|c| c == raw)
                {
                    codes.push(raw.to_owned());
                }
                for system in family.systems() {
                    for code in &codes {
                        push_unique(&mut c.values, token(Some(system), Some(code)));
                    }
                }
            }
        }
        (SearchParamType::Token, "in" | "not-in") => {
            c.negated = modifier == "not-in";
            in_value_sets(&mut c, &values, resolver, derived_key(derived::BELOW))?;
        }
        (SearchParamType::Uri, "below") => {
            for v in &values {
                if uri_path_prefixes(v).is_none() {
                    return Err(uri_error(p.code, "below", v));
                }
                c.values.push(Value::UriBelow {
                    param: c.param,
                    prefix: hash(v.trim_end_matches('/')),
                });
            }
        }
        (SearchParamType::Uri, "above") => {
            for v in &values {
                let prefixes = uri_path_prefixes(v).ok_or_else(|| uri_error(p.code, "above", v))?;
                for prefix in prefixes {
                    push_unique(
                        &mut c.values,
                        Value::Uri {
                            value: hash(prefix),
                        },
                    );
                    push_unique(
                        &mut c.values,
                        Value::Uri {
                            value: hash(&format!("{prefix}/")),
                        },
                    );
                }
                push_unique(&mut c.values, Value::Uri { value: hash(v) });
            }
        }
        (SearchParamType::Reference, "identifier") => {
            c.param = derived_key(derived::IDENTIFIER);
            c.kind = Some(SearchParamType::Token);
            c.values = values
                .iter()
                .map(|v| Value::Token(token_value(v)))
                .collect();
        }
        _ => return Ok(None),
    }
    Ok(Some(c))
}

fn push_unique(values: &mut Vec<Value>, v: Value) {
    if !values.contains(&v) {
        values.push(v);
    }
}

fn token(system: Option<&str>, code: Option<&str>) -> Value {
    Value::Token(TokenValue {
        system: system.map(keys::system_key),
        code: code.map(hash),
    })
}

fn uri_error(code: &str, modifier: &str, v: &str) -> StoreError {
    invalid(format!(
        "{code}:{modifier} needs an absolute http(s) or urn: URI, got '{v}'"
    ))
}

/// `type-system|type-code|value` of `identifier:of-type` (all three parts; an empty system means
/// any system).
fn of_type_value(code: &str, v: &str) -> Result<TokenValue, StoreError> {
    let parts = split_bar(v).and_then(|(system, rest)| {
        let (type_code, value) = split_bar(rest)?;
        Some((system, type_code, value))
    });
    match parts {
        Some((system, type_code, value)) if !type_code.is_empty() && !value.is_empty() => {
            Ok(TokenValue {
                system: (!system.is_empty()).then(|| keys::system_key(system)),
                code: Some(derived::of_type_code(type_code, value)),
            })
        }
        _ => Err(invalid(format!(
            "{code}:of-type takes [type system]|[type code]|[identifier value], got '{v}'"
        ))),
    }
}

/// The family and normalised code of a token `:below`/`:above` value (`system|code`).
fn hierarchical(code: &str, modifier: &str, v: &str) -> Result<(Family, String), StoreError> {
    let Some((system, value)) = split_bar(v).filter(|(s, c)| !s.is_empty() && !c.is_empty()) else {
        return Err(invalid(format!(
            "{code}:{modifier} needs system|code (the hierarchy depends on the code system), got '{v}'"
        )));
    };
    let Some(family) = Family::of(system) else {
        return Err(invalid(format!(
            "{code}:{modifier} is supported for ICD-10-GM, OPS and ATC only, not for '{system}'"
        )));
    };
    let normalized = family.normalize_code(value);
    if normalized.is_empty() {
        return Err(invalid(format!("{code}:{modifier}: '{v}' has no code")));
    }
    Ok((family, normalized))
}

/// `:in`/`:not-in`: the union of the value sets' codes. One criterion has one parameter key, so
/// a selection mixing exact codes with hierarchy filters cannot be one criterion and is refused.
fn in_value_sets(
    c: &mut Criterion,
    urls: &[String],
    resolver: &dyn SearchResolver,
    below_key: i64,
) -> Result<(), StoreError> {
    let mut plain = Vec::new();
    let mut below = Vec::new();
    for url in urls {
        let e = expand(resolver, url)?;
        plain.extend(e.plain);
        below.extend(e.below);
    }
    if !plain.is_empty() && !below.is_empty() {
        return Err(invalid(format!(
            "{}:{}: value sets that mix listed codes with is-a filters are not supported yet",
            c.code,
            if c.negated { "not-in" } else { "in" }
        )));
    }
    if below.is_empty() {
        for (system, code) in &plain {
            let systems = match system.as_deref().and_then(Family::of) {
                Some(f) => f.systems().iter().map(|s| Some(*s)).collect(),
                None => vec![system.as_deref()],
            };
            for s in systems {
                push_unique(&mut c.values, token(s, code.as_deref()));
            }
            check_count(c)?;
        }
    } else {
        c.param = below_key;
        for (family, code) in &below {
            push_unique(
                &mut c.values,
                token(Some(family.canonical_system()), Some(code)),
            );
        }
        check_count(c)?;
    }
    if c.values.is_empty() {
        // An empty value set selects nothing; a criterion without values would select everything.
        c.values.push(Value::Token(TokenValue {
            system: Some(keys::NONE),
            code: Some(keys::NONE),
        }));
    }
    Ok(())
}

fn check_count(c: &Criterion) -> Result<(), StoreError> {
    if c.values.len() > MAX_VALUE_SET_CODES {
        return Err(invalid(format!(
            "{}: the value sets select more than {MAX_VALUE_SET_CODES} codes",
            c.code
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::parse::{parse_search, parse_search_with};
    use super::*;
    use serde_json::json;

    fn parse(rt: &str, name: &str, value: &str) -> Result<Criterion, StoreError> {
        parse_with(rt, name, value, &super::super::valueset::NoResolver)
    }

    fn parse_with(
        rt: &str,
        name: &str,
        value: &str,
        resolver: &dyn SearchResolver,
    ) -> Result<Criterion, StoreError> {
        let pairs = vec![(name.to_owned(), value.to_owned())];
        let mut q = parse_search_with(medicus_fhir::r4(), Some(rt), &pairs, resolver)?;
        assert_eq!(q.criteria.len(), 1);
        Ok(q.criteria.remove(0))
    }

    fn refused(rt: &str, name: &str, value: &str, needle: &str) {
        match parse(rt, name, value) {
            Err(StoreError::InvalidSearch(m)) => assert!(m.contains(needle), "{name}={value}: {m}"),
            other => panic!("{name}={value}: {other:?}"),
        }
    }

    const ICD_DIMDI: &str = "http://fhir.de/CodeSystem/dimdi/icd-10-gm";
    const ICD_BFARM: &str = "http://fhir.de/CodeSystem/bfarm/icd-10-gm";

    #[test]
    fn token_text() {
        let c = parse("Condition", "code:text", "Diabetes,Hyper").unwrap();
        assert_eq!(c.param, derived_param_key("Condition", "code", "text"));
        assert_eq!(c.kind, Some(SearchParamType::String));
        assert_eq!(
            c.values,
            vec![
                Value::String {
                    text: "diabetes".into(),
                    mode: StringMatch::StartsWith
                },
                Value::String {
                    text: "hyper".into(),
                    mode: StringMatch::StartsWith
                }
            ]
        );
    }

    #[test]
    fn of_type() {
        let c = parse(
            "Patient",
            "identifier:of-type",
            "http://terminology.hl7.org/CodeSystem/v2-0203|MR|42",
        )
        .unwrap();
        assert_eq!(
            c.param,
            derived_param_key("Patient", "identifier", "of-type")
        );
        assert_eq!(
            c.values,
            vec![Value::Token(TokenValue {
                system: Some(keys::system_key(
                    "http://terminology.hl7.org/CodeSystem/v2-0203"
                )),
                code: Some(derived::of_type_code("MR", "42")),
            })]
        );
        let any = parse("Patient", "identifier:of-type", "|MR|42").unwrap();
        assert_eq!(
            any.values,
            vec![Value::Token(TokenValue {
                system: None,
                code: Some(derived::of_type_code("MR", "42")),
            })]
        );
        for bad in ["MR|42", "42", "sys|MR|", "sys||42"] {
            refused("Patient", "identifier:of-type", bad, "identifier:of-type");
        }
        refused(
            "Patient",
            "gender:of-type",
            "a|b|c",
            "Identifier parameters only",
        );
    }

    #[test]
    fn token_below_and_above() {
        let c = parse("Condition", "code:below", &format!("{ICD_DIMDI}|E11")).unwrap();
        assert_eq!(c.param, derived_param_key("Condition", "code", "below"));
        assert_eq!(
            c.values,
            vec![Value::Token(TokenValue {
                system: Some(keys::system_key(ICD_BFARM)),
                code: Some(hash("E11")),
            })]
        );
        let c = parse("Condition", "code:above", &format!("{ICD_BFARM}|E11.90")).unwrap();
        assert_eq!(c.param, keys::param_key("Condition", "code"));
        // 3 codes (E11.90, E11.9, E11) under both URIs.
        assert_eq!(c.values.len(), 6);
        assert!(c.values.contains(&token(Some(ICD_DIMDI), Some("E11"))));
        assert!(c.values.contains(&token(Some(ICD_BFARM), Some("E11.90"))));
        refused("Condition", "code:below", "E11", "needs system|code");
        refused("Condition", "code:above", "|E11", "needs system|code");
        refused(
            "Observation",
            "code:below",
            "http://loinc.org|4548-4",
            "ICD-10-GM, OPS and ATC only",
        );
    }

    #[test]
    fn uri_below_and_above() {
        let c = parse("Observation", "_profile:below", "http://a.org/fhir/").unwrap();
        let profile = keys::param_key("Observation", "_profile");
        assert_eq!(c.param, profile);
        assert_eq!(
            c.values,
            vec![Value::UriBelow {
                param: profile,
                prefix: hash("http://a.org/fhir")
            }]
        );
        let c = parse("Observation", "_profile:above", "http://a.org/fhir/x").unwrap();
        assert_eq!(c.param, keys::param_key("Observation", "_profile"));
        for v in [
            "http://a.org",
            "http://a.org/fhir",
            "http://a.org/fhir/",
            "http://a.org/fhir/x",
        ] {
            assert!(c.values.contains(&Value::Uri { value: hash(v) }), "{v}");
        }
        refused(
            "Observation",
            "_profile:below",
            "relative/x",
            "absolute http(s)",
        );
        refused(
            "Observation",
            "_profile:above",
            "http://",
            "absolute http(s)",
        );
    }

    #[test]
    fn reference_identifier() {
        let c = parse("Observation", "subject:identifier", "urn:mrn|42").unwrap();
        assert_eq!(
            c.param,
            derived_param_key("Observation", "subject", "identifier")
        );
        assert_eq!(c.kind, Some(SearchParamType::Token));
        assert_eq!(c.values, vec![token(Some("urn:mrn"), Some("42"))]);
        // Still refused: an unknown modifier on a reference.
        refused("Observation", "subject:nonsense", "x", "not supported");
    }

    struct One(serde_json::Value);
    impl SearchResolver for One {
        fn value_set(&self, url: &str) -> Result<Option<serde_json::Value>, StoreError> {
            Ok((url == "http://x/vs").then(|| self.0.clone()))
        }
    }

    #[test]
    fn in_and_not_in() {
        let r = One(json!({"resourceType": "ValueSet", "compose": {"include": [
            {"system": ICD_DIMDI, "concept": [{"code": "E11.9"}]},
            {"system": "http://loinc.org", "concept": [{"code": "1-1"}]}]}}));
        let c = parse_with("Condition", "code:in", "http://x/vs", &r).unwrap();
        assert!(!c.negated);
        assert_eq!(c.param, keys::param_key("Condition", "code"));
        assert_eq!(
            c.values,
            vec![
                token(Some(ICD_BFARM), Some("E11.9")),
                token(Some(ICD_DIMDI), Some("E11.9")),
                token(Some("http://loinc.org"), Some("1-1")),
            ]
        );
        let c = parse_with("Condition", "code:not-in", "http://x/vs", &r).unwrap();
        assert!(c.negated);
        let below = One(json!({"resourceType": "ValueSet", "compose": {"include": [
            {"system": ICD_DIMDI, "filter": [{"property": "concept", "op": "is-a", "value": "E11"}]}]}}));
        let c = parse_with("Condition", "code:in", "http://x/vs", &below).unwrap();
        assert_eq!(c.param, derived_param_key("Condition", "code", "below"));
        assert_eq!(c.values, vec![token(Some(ICD_BFARM), Some("E11"))]);
        let mixed = One(json!({"resourceType": "ValueSet", "compose": {"include": [
            {"system": ICD_DIMDI, "filter": [{"property": "concept", "op": "is-a", "value": "E11"}]},
            {"system": "http://loinc.org", "concept": [{"code": "1-1"}]}]}}));
        assert!(matches!(
            parse_with("Condition", "code:in", "http://x/vs", &mixed),
            Err(StoreError::InvalidSearch(_))
        ));
        let empty = One(json!({"resourceType": "ValueSet", "expansion": {"contains": []}}));
        let c = parse_with("Condition", "code:in", "http://x/vs", &empty).unwrap();
        assert_eq!(c.values.len(), 1, "an empty value set must select nothing");
        match parse_search(
            medicus_fhir::r4(),
            Some("Condition"),
            &[("code:in".into(), "http://x/vs".into())],
        ) {
            Err(StoreError::InvalidSearch(m)) => assert!(m.contains("is not stored"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn absolute_reference_has_no_type() {
        // `patient` has the single target Patient, but another server's URL is indexed untyped.
        let c = parse("Observation", "patient", "http://other.org/fhir/Patient/1").unwrap();
        assert_eq!(
            c.values,
            vec![Value::Reference(super::super::criteria::ReferenceValue {
                target_type: None,
                target: hash("http://other.org/fhir/Patient/1"),
            })]
        );
    }

    proptest::proptest! {
        #[test]
        fn modifier_parsers_never_panic(v in "\\PC{0,40}", pick in 0usize..10) {
            let (rt, name) = [
                ("Condition", "code:text"),
                ("Patient", "identifier:of-type"),
                ("Condition", "code:below"),
                ("Condition", "code:above"),
                ("Condition", "code:in"),
                ("Condition", "code:not-in"),
                ("Observation", "_profile:below"),
                ("Observation", "_profile:above"),
                ("Observation", "subject:identifier"),
                ("Observation", "patient"),
            ][pick];
            let _ = parse_search(medicus_fhir::r4(), Some(rt), &[(name.to_owned(), v.clone())]);
            let _ = of_type_value("identifier", &v);
            let _ = hierarchical("code", "below", &v);
            let _ = uri_path_prefixes(&v);
        }
    }
}
