//! Token `:in` / `:not-in`: a stored ValueSet, found through a [`SearchResolver`], expanded into
//! the codes it selects.
//!
//! - `expansion.contains` (nested entries included, abstract entries left out) is used when the
//!   ValueSet carries a complete expansion: it is the authoritative list.
//! - Otherwise `compose.include`: a `concept` list selects `system|code`; a `system` alone
//!   selects the whole system (`system|`); a single `is-a` or `descendent-of` filter on the
//!   `concept` property of ICD-10-GM, OPS or ATC selects the code and its descendants through the
//!   derived `below` rows (`descendent-of` is treated like `is-a`: the code itself is included);
//!   a single `valueSet` is expanded recursively. Other filters, several filters, and includes that
//!   combine these (intersections) are refused with a 400 rather than answered wrongly.
//! - `compose.exclude` (best effort): a `concept` list removes those codes from enumerated
//!   includes; a `system` alone removes everything of that system. An exclude that would have to
//!   cut a code out of a whole-system or hierarchy include, and excludes by filter or value set
//!   that touch an included system, are refused with a 400.
//!
//! A canonical URL with a version (`url|1.0`) is passed to the resolver as given.

use serde_json::Value;

use crate::error::StoreError;
use crate::index::hierarchy::Family;

/// Answers the look-ups a search needs beyond the query: the ValueSets of `:in` / `:not-in`.
pub trait SearchResolver {
    /// The stored ValueSet with this canonical `url` (or `url|version`), `None` when there is none.
    fn value_set(&self, url: &str) -> Result<Option<Value>, StoreError>;
}

/// A resolver that knows no ValueSets: `:in` answers 400 "ValueSet … is not stored".
#[derive(Debug, Clone, Copy, Default)]
pub struct NoResolver;

impl SearchResolver for NoResolver {
    fn value_set(&self, _url: &str) -> Result<Option<Value>, StoreError> {
        Ok(None)
    }
}

/// Largest number of search values one `:in` may produce.
pub const MAX_VALUE_SET_CODES: usize = 10_000;
/// Nesting of `include.valueSet` and of `expansion.contains`.
const MAX_DEPTH: usize = 16;

/// What a ValueSet selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Expansion {
    /// Exact matches on the parameter's ordinary rows: `(system, code)`; a `None` system is any
    /// system (an expansion entry without one), a `None` code the whole system.
    pub(crate) plain: Vec<(Option<String>, Option<String>)>,
    /// A code and its descendants in a structural hierarchy (the derived `below` rows).
    pub(crate) below: Vec<(Family, String)>,
}

impl Expansion {
    fn len(&self) -> usize {
        self.plain.len() + self.below.len()
    }
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidSearch(msg.into())
}

fn same_system(a: &str, b: &str) -> bool {
    a == b || Family::of(a).is_some_and(|f| Family::of(b) == Some(f))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn array_of<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Expands the ValueSet `url` through `resolver`.
pub(crate) fn expand(resolver: &dyn SearchResolver, url: &str) -> Result<Expansion, StoreError> {
    let mut out = Expansion::default();
    let mut stack = Vec::new();
    expand_into(resolver, url, &mut stack, &mut out)?;
    Ok(out)
}

fn check_size(out: &Expansion, url: &str) -> Result<(), StoreError> {
    if out.len() > MAX_VALUE_SET_CODES {
        return Err(invalid(format!(
            "ValueSet '{url}' selects more than {MAX_VALUE_SET_CODES} codes, too many for :in/:not-in"
        )));
    }
    Ok(())
}

fn expand_into(
    resolver: &dyn SearchResolver,
    url: &str,
    stack: &mut Vec<String>,
    out: &mut Expansion,
) -> Result<(), StoreError> {
    if stack.iter().any(|u| u == url) {
        return Err(invalid(format!("ValueSet '{url}' includes itself")));
    }
    if stack.len() >= MAX_DEPTH {
        return Err(invalid(format!(
            "ValueSet '{url}': value sets nested deeper than {MAX_DEPTH}"
        )));
    }
    let vs = resolver
        .value_set(url)?
        .ok_or_else(|| invalid(format!("ValueSet '{url}' is not stored")))?;
    stack.push(url.to_owned());
    let result = expand_value_set(resolver, url, &vs, stack, out);
    stack.pop();
    result
}

/// Expands one ValueSet resource (already resolved).
fn expand_value_set(
    resolver: &dyn SearchResolver,
    url: &str,
    vs: &Value,
    stack: &mut Vec<String>,
    out: &mut Expansion,
) -> Result<(), StoreError> {
    if let Some(expansion) = vs.get("expansion") {
        let mut listed = Expansion::default();
        let mut entries = 0usize;
        contains_into(
            url,
            array_of(expansion, "contains"),
            0,
            &mut entries,
            &mut listed,
        )?;
        let total = expansion.get("total").and_then(Value::as_u64);
        let offset = expansion.get("offset").and_then(Value::as_u64).unwrap_or(0);
        let complete =
            offset == 0 && total.is_none_or(|t| t <= u64::try_from(entries).unwrap_or(u64::MAX));
        if complete {
            out.plain.extend(listed.plain);
            return check_size(out, url);
        }
        if vs.get("compose").is_none() {
            return Err(invalid(format!(
                "ValueSet '{url}' has only a partial expansion and no compose"
            )));
        }
    }
    let Some(compose) = vs.get("compose") else {
        return Err(invalid(format!(
            "ValueSet '{url}' has neither an expansion nor a compose"
        )));
    };
    let mut included = Expansion::default();
    for include in array_of(compose, "include") {
        include_into(resolver, url, include, stack, &mut included)?;
        check_size(&included, url)?;
    }
    for exclude in array_of(compose, "exclude") {
        apply_exclude(url, exclude, &mut included)?;
    }
    out.plain.extend(included.plain);
    out.below.extend(included.below);
    check_size(out, url)
}

fn contains_into(
    url: &str,
    contains: &[Value],
    depth: usize,
    entries: &mut usize,
    out: &mut Expansion,
) -> Result<(), StoreError> {
    if depth >= MAX_DEPTH {
        return Err(invalid(format!(
            "ValueSet '{url}': expansion nested deeper than {MAX_DEPTH}"
        )));
    }
    for c in contains {
        *entries += 1;
        let is_abstract = c.get("abstract").and_then(Value::as_bool) == Some(true);
        if let (Some(code), false) = (str_of(c, "code"), is_abstract) {
            out.plain.push((
                str_of(c, "system").map(str::to_owned),
                Some(code.to_owned()),
            ));
            check_size(out, url)?;
        }
        contains_into(url, array_of(c, "contains"), depth + 1, entries, out)?;
    }
    Ok(())
}

fn include_into(
    resolver: &dyn SearchResolver,
    url: &str,
    include: &Value,
    stack: &mut Vec<String>,
    out: &mut Expansion,
) -> Result<(), StoreError> {
    let system = str_of(include, "system");
    let concepts = array_of(include, "concept");
    let filters = array_of(include, "filter");
    let value_sets = array_of(include, "valueSet");
    if !value_sets.is_empty() {
        // Several value sets, or a value set with a system, mean their intersection.
        let [vs] = value_sets else {
            return Err(invalid(format!(
                "ValueSet '{url}': an include of several value sets (their intersection) is not supported"
            )));
        };
        if system.is_some() {
            return Err(invalid(format!(
                "ValueSet '{url}': an include of a value set restricted to a system is not supported"
            )));
        }
        let Some(inner) = vs.as_str() else {
            return Err(invalid(format!(
                "ValueSet '{url}': include.valueSet must be a canonical URL"
            )));
        };
        return expand_into(resolver, inner, stack, out);
    }
    let Some(system) = system else {
        return Err(invalid(format!(
            "ValueSet '{url}': an include needs a system or a value set"
        )));
    };
    match (concepts.is_empty(), filters) {
        (true, []) => out.plain.push((Some(system.to_owned()), None)),
        (false, []) => {
            for c in concepts {
                if let Some(code) = str_of(c, "code") {
                    out.plain
                        .push((Some(system.to_owned()), Some(code.to_owned())));
                }
            }
        }
        (true, [filter]) => {
            let property = str_of(filter, "property");
            let op = str_of(filter, "op");
            let value = str_of(filter, "value");
            let family = Family::of(system);
            match (property, op, value, family) {
                (Some("concept"), Some("is-a" | "descendent-of"), Some(code), Some(family)) => {
                    out.below.push((family, family.normalize_code(code)));
                }
                _ => {
                    return Err(invalid(format!(
                        "ValueSet '{url}': the filter {} {} {} on '{system}' is not supported \
                         (only is-a/descendent-of on the concept of ICD-10-GM, OPS and ATC)",
                        property.unwrap_or("?"),
                        op.unwrap_or("?"),
                        value.unwrap_or("?")
                    )));
                }
            }
        }
        _ => {
            return Err(invalid(format!(
                "ValueSet '{url}': includes that combine concepts and filters, or several filters, are not supported"
            )));
        }
    }
    Ok(())
}

fn apply_exclude(url: &str, exclude: &Value, inc: &mut Expansion) -> Result<(), StoreError> {
    let system = str_of(exclude, "system");
    let concepts = array_of(exclude, "concept");
    let by_filter_or_vs =
        !array_of(exclude, "filter").is_empty() || !array_of(exclude, "valueSet").is_empty();
    let Some(system) = system else {
        if by_filter_or_vs && inc.len() > 0 {
            return Err(invalid(format!(
                "ValueSet '{url}': exclude by value set is not supported"
            )));
        }
        return Ok(());
    };
    let touches = |inc: &Expansion| {
        inc.plain
            .iter()
            .any(|(s, _)| s.as_deref().is_none_or(|s| same_system(s, system)))
            || inc
                .below
                .iter()
                .any(|(f, _)| Family::of(system) == Some(*f))
    };
    if by_filter_or_vs {
        if touches(inc) {
            return Err(invalid(format!(
                "ValueSet '{url}': exclude by filter or value set on '{system}' is not supported"
            )));
        }
        return Ok(());
    }
    if concepts.is_empty() {
        inc.plain
            .retain(|(s, _)| !s.as_deref().is_some_and(|s| same_system(s, system)));
        inc.below.retain(|(f, _)| Family::of(system) != Some(*f));
        return Ok(());
    }
    for c in concepts {
        let Some(code) = str_of(c, "code") else {
            continue;
        };
        let covered_wholesale = inc
            .plain
            .iter()
            .any(|(s, c)| c.is_none() && s.as_deref().is_some_and(|s| same_system(s, system)))
            || inc
                .below
                .iter()
                .any(|(f, _)| Family::of(system) == Some(*f));
        if covered_wholesale {
            return Err(invalid(format!(
                "ValueSet '{url}': excluding '{code}' from a whole-system or hierarchy include is not supported"
            )));
        }
        inc.plain.retain(|(s, c)| {
            !(c.as_deref() == Some(code) && s.as_deref().is_none_or(|s| same_system(s, system)))
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, Value>);

    impl SearchResolver for Map {
        fn value_set(&self, url: &str) -> Result<Option<Value>, StoreError> {
            Ok(self.0.get(url).cloned())
        }
    }

    const ICD: &str = "http://fhir.de/CodeSystem/bfarm/icd-10-gm";

    fn plain(system: &str, code: &str) -> (Option<String>, Option<String>) {
        (Some(system.to_owned()), Some(code.to_owned()))
    }

    fn resolver() -> Map {
        Map(HashMap::from([
            (
                "http://x/vs/concepts",
                json!({"resourceType": "ValueSet", "compose": {
                    "include": [{"system": "http://loinc.org", "concept": [{"code": "1-1"}, {"code": "2-2"}, {"code": "3-3"}]}],
                    "exclude": [{"system": "http://loinc.org", "concept": [{"code": "2-2"}]}]
                }}),
            ),
            (
                "http://x/vs/diabetes",
                json!({"resourceType": "ValueSet", "compose": {"include": [
                    {"system": ICD, "filter": [{"property": "concept", "op": "is-a", "value": "E11"}]},
                    {"system": ICD, "filter": [{"property": "concept", "op": "descendent-of", "value": "E10"}]}
                ]}}),
            ),
            (
                "http://x/vs/expanded",
                json!({"resourceType": "ValueSet", "expansion": {"total": 3, "contains": [
                    {"system": "http://loinc.org", "code": "a", "contains": [
                        {"system": "http://loinc.org", "code": "b"}]},
                    {"system": "http://loinc.org", "code": "group", "abstract": true}
                ]}}),
            ),
            (
                "http://x/vs/outer",
                json!({"resourceType": "ValueSet", "compose": {"include": [
                    {"valueSet": ["http://x/vs/expanded"]},
                    {"system": "http://snomed.info/sct"}
                ]}}),
            ),
            (
                "http://x/vs/loop",
                json!({"resourceType": "ValueSet", "compose": {"include": [{"valueSet": ["http://x/vs/loop"]}]}}),
            ),
            (
                "http://x/vs/regex",
                json!({"resourceType": "ValueSet", "compose": {"include": [
                    {"system": "http://loinc.org", "filter": [{"property": "COMPONENT", "op": "regex", "value": ".*"}]}]}}),
            ),
            (
                "http://x/vs/bad-exclude",
                json!({"resourceType": "ValueSet", "compose": {
                    "include": [{"system": "http://loinc.org"}],
                    "exclude": [{"system": "http://loinc.org", "concept": [{"code": "1-1"}]}]}}),
            ),
            (
                "http://x/vs/partial",
                json!({"resourceType": "ValueSet", "expansion": {"total": 50, "contains": [
                    {"system": "http://loinc.org", "code": "a"}]}}),
            ),
        ]))
    }

    #[test]
    fn concepts_minus_excluded() {
        let e = expand(&resolver(), "http://x/vs/concepts").unwrap();
        assert_eq!(
            e.plain,
            vec![
                plain("http://loinc.org", "1-1"),
                plain("http://loinc.org", "3-3")
            ]
        );
        assert!(e.below.is_empty());
    }

    #[test]
    fn hierarchy_filters() {
        let e = expand(&resolver(), "http://x/vs/diabetes").unwrap();
        assert!(e.plain.is_empty());
        assert_eq!(
            e.below,
            vec![
                (Family::Icd10Gm, "E11".to_owned()),
                (Family::Icd10Gm, "E10".to_owned())
            ]
        );
    }

    #[test]
    fn expansion_is_recursive_and_skips_abstract() {
        let e = expand(&resolver(), "http://x/vs/expanded").unwrap();
        assert_eq!(
            e.plain,
            vec![
                plain("http://loinc.org", "a"),
                plain("http://loinc.org", "b")
            ]
        );
    }

    #[test]
    fn nested_value_sets_and_whole_systems() {
        let e = expand(&resolver(), "http://x/vs/outer").unwrap();
        assert_eq!(
            e.plain,
            vec![
                plain("http://loinc.org", "a"),
                plain("http://loinc.org", "b"),
                (Some("http://snomed.info/sct".to_owned()), None)
            ]
        );
    }

    #[test]
    fn refusals() {
        let r = resolver();
        for (url, needle) in [
            ("http://x/vs/missing", "is not stored"),
            ("http://x/vs/loop", "includes itself"),
            ("http://x/vs/regex", "not supported"),
            ("http://x/vs/bad-exclude", "excluding '1-1'"),
            ("http://x/vs/partial", "partial expansion"),
        ] {
            match expand(&r, url) {
                Err(StoreError::InvalidSearch(m)) => assert!(m.contains(needle), "{url}: {m}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        assert!(matches!(
            expand(&NoResolver, "http://x/vs/concepts"),
            Err(StoreError::InvalidSearch(_))
        ));
    }

    #[test]
    fn size_is_capped() {
        let concepts: Vec<Value> = (0..=MAX_VALUE_SET_CODES)
            .map(|i| json!({"code": i.to_string()}))
            .collect();
        let r = Map(HashMap::from([(
            "http://x/vs/huge",
            json!({"resourceType": "ValueSet", "compose": {"include": [{"system": "http://s", "concept": concepts}]}}),
        )]));
        match expand(&r, "http://x/vs/huge") {
            Err(StoreError::InvalidSearch(m)) => assert!(m.contains("more than"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
