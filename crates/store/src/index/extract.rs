//! Extraction of index entries from a resource through the search parameters' FHIRPath
//! expressions. This is FHIR search semantics: which parts of which datatype a parameter of
//! each type matches.

use medicus_fhir::{Definitions, SearchParam, SearchParamType};
use medicus_fhirpath::{Env, Item, Node};
use serde_json::Value;

use super::datetime::parse_range;
use super::derived::derived_entries;
use super::keys::{self, hash, normalize_string, param_key};
use super::ucum;
use super::{IndexEntry, decimal_range};

/// All index entries of `resource` (of type `resource_type`). Duplicates are allowed; the
/// writer ignores them.
pub fn extract_entries(
    defs: &Definitions,
    resource_type: &str,
    resource: &Value,
) -> Vec<IndexEntry> {
    let mut out = Vec::with_capacity(32);
    for param in defs.search_params(resource_type) {
        param_entries_into(defs, resource_type, param, resource, &mut out);
    }
    super::code_date::add_code_dates(defs, resource_type, &mut out);
    out.extend(super::fulltext::fulltext_entry(resource));
    out
}

/// The entries of one search parameter (`code`) of `resource`: what `extract_entries` gives for
/// it, without evaluating the other parameters (sorting needs only its key's values).
pub(crate) fn param_entries(
    defs: &Definitions,
    resource_type: &str,
    code: &str,
    resource: &Value,
) -> Vec<IndexEntry> {
    let mut out = Vec::new();
    if let Some(param) = defs.search_param(resource_type, code) {
        param_entries_into(defs, resource_type, param, resource, &mut out);
    }
    out
}

fn param_entries_into(
    defs: &Definitions,
    resource_type: &str,
    param: &SearchParam,
    resource: &Value,
    out: &mut Vec<IndexEntry>,
) {
    // `_id` and `_lastUpdated` live in the resource table; special params (near, _text) are not indexed.
    if matches!(param.code, "_id" | "_lastUpdated") || param.kind == SearchParamType::Special {
        return;
    }
    let Some(expr) = &param.expression else {
        return;
    };
    let env = Env { model: Some(defs) };
    let Ok(items) = expr.evaluate(resource, &env) else {
        return;
    };
    let pk = param_key(resource_type, param.code);
    if param.kind == SearchParamType::Composite {
        let strings = keys::derived_param_key(resource_type, param.code, STRING_LAST);
        composite_entries(param, pk, strings, &items, &env, out);
        return;
    }
    // Quantities in UCUM units also get rows in canonical units (see `ucum`).
    let canonical = (param.kind == SearchParamType::Quantity)
        .then(|| keys::derived_param_key(resource_type, param.code, ucum::CANONICAL));
    for item in &items {
        entries_of_item(param.kind, pk, canonical, item, out);
        derived_entries(resource_type, param, item, out);
    }
}

/// `canonical` is the derived key of a quantity parameter's canonical-unit rows; `None` leaves
/// them out (composite components).
fn entries_of_item(
    kind: SearchParamType,
    param: i64,
    canonical: Option<i64>,
    item: &Item<'_>,
    out: &mut Vec<IndexEntry>,
) {
    match kind {
        SearchParamType::Token => token_entries(param, item, out),
        SearchParamType::String => string_entries(param, item, out),
        SearchParamType::Date => {
            if let Some((lo, hi)) = date_range(item) {
                out.push(IndexEntry::Date { param, lo, hi });
            }
        }
        SearchParamType::Number => {
            if let Some((value, lo, hi)) = number_of(item) {
                out.push(IndexEntry::Number {
                    param,
                    value,
                    lo,
                    hi,
                });
            }
        }
        SearchParamType::Quantity => quantity_entries(param, canonical, item, out),
        SearchParamType::Reference => reference_entries(param, item, out),
        SearchParamType::Uri => {
            if let Some(s) = primitive_str(item) {
                out.push(IndexEntry::Uri {
                    param,
                    value: hash(s),
                });
            }
        }
        SearchParamType::Composite | SearchParamType::Special => {}
    }
}

fn node<'a>(item: &Item<'a>) -> Option<Node<'a>> {
    match item {
        Item::Node(n) => Some(*n),
        _ => None,
    }
}

pub(super) fn type_of(n: &Node<'_>) -> &'static str {
    if let Some(t) = n.type_name {
        return t;
    }
    // Without type information fall back to the JSON shape.
    match n.value {
        Value::Object(o) if o.contains_key("coding") => "CodeableConcept",
        Value::Object(o) if o.contains_key("reference") => "Reference",
        Value::Object(o) if o.contains_key("family") || o.contains_key("given") => "HumanName",
        Value::Object(o)
            if o.contains_key("city") || o.contains_key("line") || o.contains_key("postalCode") =>
        {
            "Address"
        }
        Value::Object(o) if o.contains_key("start") || o.contains_key("end") => "Period",
        Value::Object(o)
            if o.contains_key("value") && (o.contains_key("unit") || o.contains_key("code")) =>
        {
            "Quantity"
        }
        Value::Object(o) if o.contains_key("code") => "Coding",
        Value::Object(o) if o.contains_key("value") => "Identifier",
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "decimal",
        _ => "",
    }
}

pub(super) fn field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn primitive_str<'a>(item: &'a Item<'_>) -> Option<&'a str> {
    match item {
        Item::Node(n) => n.value.as_str(),
        Item::String(s) | Item::Date(s) | Item::DateTime(s) => Some(s),
        _ => None,
    }
}

pub(super) fn push_token(
    param: i64,
    system: Option<&str>,
    code: Option<&str>,
    out: &mut Vec<IndexEntry>,
) {
    let system = system.map_or(keys::NONE, keys::system_key);
    match code {
        Some(c) if !c.is_empty() => out.push(IndexEntry::Token {
            param,
            system,
            code: hash(c),
        }),
        // A coding with only a system still answers `system|` searches.
        _ if system != keys::NONE => out.push(IndexEntry::Token {
            param,
            system,
            code: keys::NONE,
        }),
        _ => {}
    }
}

fn token_entries(param: i64, item: &Item<'_>, out: &mut Vec<IndexEntry>) {
    let n = match item {
        Item::Boolean(b) => {
            return push_token(param, None, Some(if *b { "true" } else { "false" }), out);
        }
        Item::String(s) => return push_token(param, None, Some(s), out),
        Item::Node(n) => *n,
        _ => return,
    };
    let v = n.value;
    match type_of(&n) {
        "CodeableConcept" => {
            for c in v
                .get("coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                push_token(param, field(c, "system"), field(c, "code"), out);
            }
        }
        "Coding" => push_token(param, field(v, "system"), field(v, "code"), out),
        "Identifier" => push_token(param, field(v, "system"), field(v, "value"), out),
        "ContactPoint" => push_token(param, field(v, "system"), field(v, "value"), out),
        "code" => {
            if let Some(code) = v.as_str().filter(|c| !c.is_empty()) {
                out.push(IndexEntry::Token {
                    param,
                    system: keys::IMPLICIT_SYSTEM,
                    code: hash(code),
                });
            }
        }
        "boolean" => {
            if let Some(b) = v.as_bool() {
                push_token(param, None, Some(if b { "true" } else { "false" }), out);
            }
        }
        _ => {
            if let Some(s) = v.as_str() {
                push_token(param, None, Some(s), out);
            } else if let Some(num) = v.as_number() {
                push_token(param, None, Some(&num.to_string()), out);
            }
        }
    }
}

pub(super) fn push_string(param: i64, s: &str, out: &mut Vec<IndexEntry>) {
    let normalized = normalize_string(s);
    if normalized.is_empty() {
        return;
    }
    let exact = keys::truncate_chars(s.to_owned(), keys::MAX_STRING_CHARS);
    let exact = (exact != normalized).then_some(exact);
    out.push(IndexEntry::String {
        param,
        normalized,
        exact,
    });
}

fn string_entries(param: i64, item: &Item<'_>, out: &mut Vec<IndexEntry>) {
    let n = match item {
        Item::String(s) => return push_string(param, s, out),
        Item::Node(n) => *n,
        _ => return,
    };
    let v = n.value;
    let parts: &[&str] = match type_of(&n) {
        "HumanName" => &["text", "family", "given", "prefix", "suffix"],
        "Address" => &[
            "text",
            "line",
            "city",
            "district",
            "state",
            "postalCode",
            "country",
        ],
        _ => {
            if let Some(s) = v.as_str() {
                push_string(param, s, out);
            }
            return;
        }
    };
    for key in parts {
        match v.get(*key) {
            Some(Value::String(s)) => push_string(param, s, out),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .for_each(|s| push_string(param, s, out)),
            _ => {}
        }
    }
}

fn date_range(item: &Item<'_>) -> Option<(i64, i64)> {
    let n = match item {
        Item::Date(s) | Item::DateTime(s) | Item::String(s) => {
            return parse_range(s).map(|r| (r.lo, r.hi));
        }
        Item::Node(n) => *n,
        _ => return None,
    };
    let v = n.value;
    match type_of(&n) {
        "Period" => {
            let lo = field(v, "start")
                .and_then(parse_range)
                .map_or(i64::MIN, |r| r.lo);
            let hi = field(v, "end")
                .and_then(parse_range)
                .map_or(i64::MAX, |r| r.hi);
            (lo != i64::MIN || hi != i64::MAX).then_some((lo, hi))
        }
        "Timing" => {
            let events = v.get("event").and_then(Value::as_array);
            let ranges: Vec<_> = events
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter_map(parse_range)
                .collect();
            let lo = ranges.iter().map(|r| r.lo).min()?;
            let hi = ranges.iter().map(|r| r.hi).max()?;
            Some((lo, hi))
        }
        _ => v.as_str().and_then(parse_range).map(|r| (r.lo, r.hi)),
    }
}

fn number_of(item: &Item<'_>) -> Option<(f64, f64, f64)> {
    match item {
        Item::Integer(i) => decimal_range(&i.to_string()),
        Item::Decimal(s) => decimal_range(s),
        Item::Node(n) => match n.value {
            Value::Number(num) => decimal_range(&num.to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn quantity_entries(
    param: i64,
    canonical: Option<i64>,
    item: &Item<'_>,
    out: &mut Vec<IndexEntry>,
) {
    let Some(n) = node(item) else {
        if let Item::Quantity { value, unit } = item
            && let Some((v, lo, hi)) = decimal_range(value)
        {
            out.push(IndexEntry::Quantity {
                param,
                system: keys::NONE,
                code: hash(unit),
                value: v,
                lo,
                hi,
            });
        }
        return;
    };
    let v = n.value;
    let Some(Value::Number(num)) = v.get("value") else {
        return;
    };
    let Some((value, lo, hi)) = decimal_range(&num.to_string()) else {
        return;
    };
    let system_uri = field(v, "system");
    let system = system_uri.map_or(keys::NONE, keys::system_key);
    // Money has `currency` instead of `code`; a unit-only quantity is searchable by its unit text.
    let code = field(v, "code")
        .or_else(|| field(v, "currency"))
        .or_else(|| field(v, "unit"));
    out.push(IndexEntry::Quantity {
        param,
        system,
        code: code.map_or(keys::NONE, hash),
        value,
        lo,
        hi,
    });
    if let (Some(unit), Some(code)) = (field(v, "unit"), field(v, "code"))
        && unit != code
    {
        out.push(IndexEntry::Quantity {
            param,
            system: keys::NONE,
            code: hash(unit),
            value,
            lo,
            hi,
        });
    }
    // Only a `code` in the UCUM system is a UCUM unit: `unit` is display text.
    if let Some(canonical) = canonical
        && system_uri == Some(ucum::UCUM_SYSTEM)
        && let Some(row) = field(v, "code").and_then(|c| canonical_row(canonical, c, value, lo, hi))
    {
        out.push(row);
    }
}

/// The canonical-unit row of a UCUM quantity: its value and the bounds of its precision
/// converted alike (the conversion is a positive factor, so the order is kept).
fn canonical_row(param: i64, code: &str, value: f64, lo: f64, hi: f64) -> Option<IndexEntry> {
    let unit = ucum::canonical_unit(code)?;
    Some(IndexEntry::Quantity {
        param,
        system: keys::system_key(ucum::UCUM_SYSTEM),
        code: hash(unit.unit()),
        value: unit.convert(value)?,
        lo: unit.convert(lo)?,
        hi: unit.convert(hi)?,
    })
}

/// Splits a reference into (type, id-or-url). `Patient/1` → (Some("Patient"), "1"),
/// `Patient/1/_history/2` → (Some("Patient"), "1"), absolute URLs ending in `Type/id` keep
/// the whole URL as the target with no type so that only URL searches match them.
pub fn reference_parts(reference: &str) -> Option<(Option<&str>, &str)> {
    if reference.is_empty() || reference.starts_with('#') {
        return None;
    }
    if reference.contains("://") || reference.starts_with("urn:") {
        return Some((None, reference));
    }
    let base = reference.split("/_history/").next().unwrap_or(reference);
    match base.split_once('/') {
        Some((t, id)) if !t.is_empty() && !id.is_empty() && !id.contains('/') => {
            Some((Some(t), id))
        }
        Some(_) => None,
        None => Some((None, base)),
    }
}

fn reference_entries(param: i64, item: &Item<'_>, out: &mut Vec<IndexEntry>) {
    let reference = match item {
        Item::String(s) => Some(s.as_str()),
        Item::Node(n) => match n.value {
            Value::String(s) => Some(s.as_str()),
            Value::Object(_) => field(n.value, "reference"),
            _ => None,
        },
        _ => None,
    };
    let Some((ty, target)) = reference.and_then(reference_parts) else {
        return;
    };
    out.push(IndexEntry::Reference {
        param,
        target_type: ty.map_or(keys::NONE, keys::type_key),
        target: hash(target),
    });
}

/// The canonical texts a composite component contributes: tokens match with and without system.
fn component_texts(kind: SearchParamType, items: &[Item<'_>]) -> Vec<String> {
    let mut texts = Vec::new();
    for item in items {
        let mut entries = Vec::new();
        entries_of_item(kind, 0, None, item, &mut entries);
        for e in entries {
            match e {
                IndexEntry::Token { system, code, .. } => {
                    texts.push(format!("t{system}:{code}"));
                    texts.push(format!("t*:{code}"));
                }
                IndexEntry::String { normalized, .. } => texts.push(format!("s{normalized}")),
                // The unit is left out: it halves the rows, and a same-code same-value match in
                // another unit is practically absent.
                IndexEntry::Quantity { value, .. } => texts.push(format!("q{value}")),
                IndexEntry::Number { value, .. } => texts.push(format!("n{value}")),
                IndexEntry::Date { lo, hi, .. } => texts.push(format!("d{lo}:{hi}")),
                IndexEntry::Reference {
                    target_type,
                    target,
                    ..
                } => texts.push(format!("r{target_type}:{target}")),
                IndexEntry::Uri { value, .. } => texts.push(format!("u{value}")),
                IndexEntry::Composite { .. }
                | IndexEntry::CompositeRange { .. }
                | IndexEntry::CodeDate { .. }
                | IndexEntry::UriPrefix { .. }
                | IndexEntry::FullText { .. } => {}
            }
        }
    }
    texts.sort_unstable();
    texts.dedup();
    texts
}

fn composite_entries(
    param: &SearchParam,
    pk: i64,
    strings: i64,
    items: &[Item<'_>],
    env: &Env<'_>,
    out: &mut Vec<IndexEntry>,
) {
    // A numeric or date last component is kept as a range, for comparison prefixes; a string
    // one as a string row, for starts-with.
    let last_kind = param.components.last().map(|c| c.kind);
    let ranged = last_kind.is_some_and(is_range_kind);
    let string_last = last_kind == Some(SearchParamType::String);
    let keyed = if ranged || string_last {
        &param.components[..param.components.len() - 1]
    } else {
        &param.components[..]
    };
    for item in items {
        let Item::Node(n) = item else { continue };
        let mut combos = vec![String::new()];
        for component in keyed {
            let Ok(values) = component.expression.evaluate(n.value, env) else {
                combos.clear();
                break;
            };
            let texts = component_texts(component.kind, &values);
            combos = combos
                .iter()
                .flat_map(|prefix| texts.iter().map(move |t| format!("{prefix}${t}")))
                .collect();
        }
        if string_last {
            let Some(last) = param.components.last() else {
                continue;
            };
            let Ok(values) = last.expression.evaluate(n.value, env) else {
                continue;
            };
            let mut texts = Vec::new();
            for v in &values {
                entries_of_item(SearchParamType::String, 0, None, v, &mut texts);
            }
            for c in &combos {
                for t in &texts {
                    if let IndexEntry::String { normalized, .. } = t {
                        out.push(IndexEntry::String {
                            param: strings,
                            normalized: composite_string(hash(c), normalized),
                            exact: None,
                        });
                    }
                }
            }
            continue;
        }
        if !ranged {
            for c in combos {
                out.push(IndexEntry::Composite {
                    param: pk,
                    key: hash(&c),
                });
            }
            continue;
        }
        let Some(last) = param.components.last() else {
            continue;
        };
        let Ok(values) = last.expression.evaluate(n.value, env) else {
            continue;
        };
        let mut ranges = Vec::new();
        for v in &values {
            let mut entries = Vec::new();
            entries_of_item(last.kind, 0, None, v, &mut entries);
            for e in entries {
                match e {
                    IndexEntry::Number { value, .. } | IndexEntry::Quantity { value, .. } => {
                        ranges.push((value, value))
                    }
                    IndexEntry::Date { lo, hi, .. } => ranges.push((lo as f64, hi as f64)),
                    _ => {}
                }
            }
        }
        for c in &combos {
            for (lo, hi) in &ranges {
                out.push(IndexEntry::CompositeRange {
                    param: pk,
                    key: hash(c),
                    lo: *lo,
                    hi: *hi,
                });
            }
        }
    }
}

/// Component types kept as a range when they end a composite.
pub(crate) fn is_range_kind(kind: SearchParamType) -> bool {
    matches!(
        kind,
        SearchParamType::Number | SearchParamType::Quantity | SearchParamType::Date
    )
}

/// The derived parameter facet of composites ending in a string (`composite_string` rows).
pub(crate) const STRING_LAST: &str = "string-last";

/// The string row of a composite ending in a string: the other components' key, then the
/// normalised string, so a starts-with search on the whole row is one on the string under the key.
pub(crate) fn composite_string(key: i64, normalized: &str) -> String {
    format!("{key:016x}:{normalized}")
}

/// The composite key for a search value, matching `composite_entries`.
pub(crate) fn composite_key(texts: &[String]) -> i64 {
    let mut s = String::new();
    for t in texts {
        s.push('$');
        s.push_str(t);
    }
    hash(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_forms() {
        assert_eq!(reference_parts("Patient/1"), Some((Some("Patient"), "1")));
        assert_eq!(
            reference_parts("Patient/1/_history/3"),
            Some((Some("Patient"), "1"))
        );
        assert_eq!(
            reference_parts("http://x.org/fhir/Patient/1"),
            Some((None, "http://x.org/fhir/Patient/1"))
        );
        assert_eq!(reference_parts("#c1"), None);
        assert_eq!(reference_parts("1"), Some((None, "1")));
    }
    #[test]
    fn ucum_quantities_get_canonical_rows() {
        let defs = medicus_fhir::r4();
        let obs = |system: &str, code: &str| {
            serde_json::json!({
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                "valueQuantity": {"value": 100, "unit": "mg/dl", "system": system, "code": code}
            })
        };
        let canonical = keys::derived_param_key("Observation", "value-quantity", ucum::CANONICAL);
        let rows = |e: Vec<IndexEntry>| -> Vec<IndexEntry> {
            e.into_iter()
                .filter(|e| matches!(e, IndexEntry::Quantity { param, .. } if *param == canonical))
                .collect()
        };
        let canonical_rows = |system: &str, code: &str| {
            rows(extract_entries(defs, "Observation", &obs(system, code)))
        };
        let e = canonical_rows(ucum::UCUM_SYSTEM, "mg/dL");
        // 100 mg/dL written with precision [99.5, 100.5) is 1000 g/m3 in [995, 1005).
        assert_eq!(
            e,
            vec![IndexEntry::Quantity {
                param: canonical,
                system: keys::system_key(ucum::UCUM_SYSTEM),
                code: hash("g.m-3"),
                value: 1000.0,
                lo: 995.0,
                hi: 1005.0,
            }]
        );
        // Another system's "mg/dL", or a unit UCUM cannot convert, has no canonical row.
        assert!(canonical_rows("http://other", "mg/dL").is_empty());
        assert!(canonical_rows(ucum::UCUM_SYSTEM, "Cel").is_empty());
        // Composite rows keep the value as written, not a canonical one.
        let composite = |value: f64| IndexEntry::CompositeRange {
            param: keys::param_key("Observation", "code-value-quantity"),
            key: composite_key(&[format!("t*:{}", hash("2345-7"))]),
            lo: value,
            hi: value,
        };
        let all = extract_entries(defs, "Observation", &obs(ucum::UCUM_SYSTEM, "mg/dL"));
        assert!(all.contains(&composite(100.0)), "{all:?}");
        assert!(!all.contains(&composite(1000.0)));
    }
}
