//! Parsing of FHIR search parameters (`name[:modifier]=value[,value]`) into typed criteria.

use medicus_fhir::{Definitions, SearchParam, SearchParamType};

use super::chaining::{DEFAULT_MAX_CHAIN_DEPTH, parse_chained};
use super::criteria::*;
use super::modifiers;
use super::sorting::parse_sort;
use super::valueset::{NoResolver, SearchResolver};
use super::{DEFAULT_COUNT, MAX_COUNT, SearchQuery};
use crate::error::StoreError;
use crate::index::datetime::parse_range;
use crate::index::keys::{self, hash, normalize_string, param_key};
use crate::index::{decimal_range, reference_parts, ucum};

/// Parameters that shape the result rather than select resources; the caller applies them.
const RESULT_PARAMS: &[&str] = &["_summary", "_elements", "_format", "_pretty"];
/// Known parameters this engine does not implement yet; ignored under lenient handling.
const UNSUPPORTED: &[&str] = &[
    "_include",
    "_revinclude",
    "_contained",
    "_containedType",
    "_list",
    "_query",
    "_filter",
    "_score",
];

pub(super) fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidSearch(msg.into())
}

/// Parses the query parameters of a search on `resource_type` (or all types when `None`).
/// Knows no ValueSets: `:in`/`:not-in` answer `InvalidSearch` (see `parse_search_with`).
pub fn parse_search(
    defs: &Definitions,
    resource_type: Option<&str>,
    params: &[(String, String)],
) -> Result<SearchQuery, StoreError> {
    parse_search_with(defs, resource_type, params, &NoResolver)
}

/// `parse_search` with a resolver for what the query refers to (the ValueSets of `:in`/`:not-in`).
pub fn parse_search_with(
    defs: &Definitions,
    resource_type: Option<&str>,
    params: &[(String, String)],
    resolver: &dyn SearchResolver,
) -> Result<SearchQuery, StoreError> {
    parse_search_opts(
        defs,
        resource_type,
        params,
        resolver,
        DEFAULT_MAX_CHAIN_DEPTH,
    )
}

/// [`parse_search_with`] with a limit on the links of chained and reverse-chained parameters.
pub fn parse_search_opts(
    defs: &Definitions,
    resource_type: Option<&str>,
    params: &[(String, String)],
    resolver: &dyn SearchResolver,
    max_chain_depth: usize,
) -> Result<SearchQuery, StoreError> {
    let mut q = SearchQuery {
        count: DEFAULT_COUNT,
        total: true,
        ..SearchQuery::default()
    };
    for (name, value) in params {
        let code = name.split_once(':').map_or(name.as_str(), |(c, _)| c);
        match code {
            "_count" => {
                let n: usize = value.parse().map_err(|_| {
                    invalid(format!(
                        "_count must be a non-negative integer, got '{value}'"
                    ))
                })?;
                q.count = n.min(MAX_COUNT);
                continue;
            }
            "_cursor" => {
                q.cursor = Some(
                    value
                        .parse()
                        .map_err(|_| invalid("_cursor is not a valid paging token"))?,
                );
                continue;
            }
            "_total" => {
                q.total_estimate = value == "estimate";
                q.total_accurate = value == "accurate";
                q.total = match value.as_str() {
                    "none" => false,
                    "estimate" | "accurate" => true,
                    _ => {
                        return Err(invalid(format!(
                            "_total must be none, estimate or accurate, got '{value}'"
                        )));
                    }
                };
                continue;
            }
            "_summary" if value == "count" => {
                q.count = 0;
                q.total = true;
                q.result_params.push((name.clone(), value.clone()));
                continue;
            }
            c if RESULT_PARAMS.contains(&c) => {
                q.result_params.push((name.clone(), value.clone()));
                continue;
            }
            c if UNSUPPORTED.contains(&c) => {
                q.ignored.push(name.clone());
                continue;
            }
            "_sort" => {
                let (keys, unknown) = parse_sort(defs, resource_type, value)?;
                q.sort = keys;
                q.ignored.extend(unknown);
                continue;
            }
            "_explain" => {
                q.explain = value != "false";
                continue;
            }
            "_text" | "_content" if !value.is_empty() => {
                q.criteria.push(fulltext_criterion(name, code, value)?);
                continue;
            }
            _ => {}
        }
        if value.is_empty() {
            // An empty value places no constraint (FHIR search: parameters with no value are ignored).
            continue;
        }
        if name.starts_with("_has:") || name.contains('.') {
            let Some(rt) = resource_type else {
                return Err(invalid(format!(
                    "'{name}': chained parameters need a resource type"
                )));
            };
            let plain = |rt: &str, name: &str, value: &str| {
                plain_criterion(defs, Some(rt), name, value, resolver)
            };
            if let Some(c) = parse_chained(defs, rt, name, value, 0, max_chain_depth, &plain)
                .map_err(|e| naming(name, e))?
            {
                q.criteria.push(c);
            }
            continue;
        }
        match plain_criterion(defs, resource_type, name, value, resolver)
            .map_err(|e| naming(name, e))?
        {
            Some(c) => q.criteria.push(c),
            None => q.ignored.push(name.clone()),
        }
    }
    Ok(q)
}

/// `_text` (narrative) or `_content` (all strings): every word of a value must occur; values OR-ed.
fn fulltext_criterion(name: &str, code: &str, value: &str) -> Result<Criterion, StoreError> {
    if name != code {
        return Err(invalid(format!("{name}: {code} takes no modifier")));
    }
    let mut c = base(code, 0, None);
    for v in split_or(value) {
        let words = crate::index::fulltext::query_words(&v);
        if words.is_empty() {
            return Err(invalid(format!(
                "{code}: '{v}' contains no word to search for"
            )));
        }
        c.values.push(Value::FullText {
            narrative_only: code == "_text",
            words,
        });
    }
    Ok(c)
}

/// Makes sure an error message names the parameter it is about (clients fix one parameter at a time).
fn naming(name: &str, e: StoreError) -> StoreError {
    match e {
        StoreError::InvalidSearch(m) if !m.contains(name) => {
            StoreError::InvalidSearch(format!("{name}: {m}"))
        }
        e => e,
    }
}

/// A parameter of `resource_type` that is not chained; `None` when the type has no such parameter.
fn plain_criterion(
    defs: &Definitions,
    resource_type: Option<&str>,
    name: &str,
    value: &str,
    resolver: &dyn SearchResolver,
) -> Result<Option<Criterion>, StoreError> {
    let (code, modifier) = match name.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (name, None),
    };
    Ok(Some(match (code, resource_type) {
        ("_id", _) => id_criterion(modifier, value)?,
        ("_lastUpdated", _) => last_updated_criterion(modifier, value)?,
        (_, Some(rt)) => match defs.search_param(rt, code) {
            Some(p) => param_criterion(defs, rt, p, modifier, value, resolver)?,
            None => return Ok(None),
        },
        (_, None) => return Ok(None),
    }))
}

fn base(code: &str, param: i64, kind: Option<SearchParamType>) -> Criterion {
    Criterion {
        code: code.to_owned(),
        param,
        kind,
        missing: None,
        negated: false,
        values: Vec::new(),
    }
}

fn id_criterion(modifier: Option<&str>, value: &str) -> Result<Criterion, StoreError> {
    if let Some(m) = modifier {
        return Err(invalid(format!("modifier ':{m}' is not supported on _id")));
    }
    let mut c = base("_id", 0, None);
    c.values = split_or(value).into_iter().map(Value::Id).collect();
    Ok(c)
}

fn last_updated_criterion(modifier: Option<&str>, value: &str) -> Result<Criterion, StoreError> {
    if let Some(m) = modifier {
        return Err(invalid(format!(
            "modifier ':{m}' is not supported on _lastUpdated"
        )));
    }
    let mut c = base("_lastUpdated", 0, None);
    for v in split_or(value) {
        let b = date_bound(&v)?;
        // The resource table keeps microseconds.
        c.values.push(Value::LastUpdated(DateBound {
            prefix: b.prefix,
            lo: b.lo * 1000,
            hi: b.hi * 1000 + 999,
        }));
    }
    Ok(c)
}

fn param_criterion(
    defs: &Definitions,
    resource_type: &str,
    p: &SearchParam,
    modifier: Option<&str>,
    value: &str,
    resolver: &dyn SearchResolver,
) -> Result<Criterion, StoreError> {
    let mut c = base(p.code, param_key(resource_type, p.code), Some(p.kind));
    if modifier == Some("missing") {
        c.missing = Some(match value {
            "true" => true,
            "false" => false,
            _ => return Err(invalid(format!("{}:missing takes true or false", p.code))),
        });
        return Ok(c);
    }
    if let Some(m) = modifier
        && let Some(c) =
            modifiers::derived_criterion(resource_type, p, m, value, c.clone(), resolver)?
    {
        return Ok(c);
    }
    let mut string_mode = StringMatch::StartsWith;
    let mut reference_type = None;
    match (p.kind, modifier) {
        (_, None) => {}
        (SearchParamType::Token, Some("not")) => c.negated = true,
        (SearchParamType::String, Some("exact")) => string_mode = StringMatch::Exact,
        (SearchParamType::String, Some("contains")) => string_mode = StringMatch::Contains,
        (SearchParamType::Reference, Some(t)) if defs.is_resource_type(t) => {
            reference_type = Some(t)
        }
        (_, Some(m)) => {
            return Err(invalid(format!(
                "modifier ':{m}' is not supported on '{}'",
                p.code
            )));
        }
    }
    // Split on commas but keep the other escapes: `system\|code` must not split a token value.
    for raw in split_unescaped(value, ',') {
        let v = unescape(&raw);
        let parsed = match p.kind {
            SearchParamType::Token => Value::Token(token_value(&raw)),
            SearchParamType::String => {
                let text = if string_mode == StringMatch::Exact {
                    v
                } else {
                    normalize_string(&v)
                };
                Value::String {
                    text,
                    mode: string_mode,
                }
            }
            SearchParamType::Date => Value::Date(date_bound(&v)?),
            SearchParamType::Number => Value::Number(number_bound(&v)?),
            SearchParamType::Quantity => Value::Quantity(quantity_value(&raw)?),
            SearchParamType::Reference => Value::Reference(reference_value(&v, reference_type, p)?),
            SearchParamType::Uri => Value::Uri { value: hash(&v) },
            SearchParamType::Composite => composite_value(p, &raw)?,
            SearchParamType::Special => {
                return Err(invalid(format!(
                    "special parameter '{}' is not supported yet",
                    p.code
                )));
            }
        };
        c.values.push(parsed);
    }
    if p.kind == SearchParamType::Quantity {
        canonicalize_quantities(resource_type, p.code, value, &mut c)?;
    }
    if p.kind == SearchParamType::Composite
        && p.components.last().map(|c| c.kind) == Some(SearchParamType::String)
    {
        c.param = keys::derived_param_key(resource_type, p.code, crate::index::STRING_LAST);
    }
    Ok(c)
}

/// Splits on unescaped commas and removes the FHIR escapes (`\,` `\|` `\$` `\\`).
pub(super) fn split_or(value: &str) -> Vec<String> {
    split_unescaped(value, ',')
        .into_iter()
        .map(|s| unescape(&s))
        .collect()
}

fn split_unescaped(value: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = value.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                let last = out.last_mut();
                if let Some(s) = last {
                    s.push('\\');
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                }
            }
            c if c == sep => out.push(String::new()),
            c => {
                if let Some(s) = out.last_mut() {
                    s.push(c);
                }
            }
        }
    }
    out
}

pub(super) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits `system|code` at the first unescaped bar.
pub(super) fn split_bar(v: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in v.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => return Some((&v[..i], &v[i + 1..])),
            _ => escaped = false,
        }
    }
    None
}

/// A token value with its FHIR escapes still in place: split at the first unescaped bar, then
/// each part unescaped.
pub(super) fn token_value(v: &str) -> TokenValue {
    match split_bar(v) {
        None => TokenValue {
            system: None,
            code: Some(hash(&unescape(v))),
        },
        Some(("", code)) => TokenValue {
            system: Some(keys::NONE),
            code: Some(hash(&unescape(code))),
        },
        Some((system, "")) => TokenValue {
            system: Some(keys::system_key(&unescape(system))),
            code: None,
        },
        Some((system, code)) => TokenValue {
            system: Some(keys::system_key(&unescape(system))),
            code: Some(hash(&unescape(code))),
        },
    }
}

fn split_prefix(v: &str) -> (DatePrefix, &str) {
    let prefix = match v.get(..2) {
        Some("eq") => DatePrefix::Eq,
        Some("ne") => DatePrefix::Ne,
        Some("lt") => DatePrefix::Lt,
        Some("gt") => DatePrefix::Gt,
        Some("le") => DatePrefix::Le,
        Some("ge") => DatePrefix::Ge,
        Some("sa") => DatePrefix::Sa,
        Some("eb") => DatePrefix::Eb,
        Some("ap") => DatePrefix::Ap,
        _ => return (DatePrefix::Eq, v),
    };
    (prefix, &v[2..])
}

fn date_bound(v: &str) -> Result<DateBound, StoreError> {
    let (prefix, rest) = split_prefix(v);
    let r = parse_range(rest)
        .ok_or_else(|| invalid(format!("'{v}' is not a valid date search value")))?;
    Ok(DateBound {
        prefix,
        lo: r.lo,
        hi: r.hi,
    })
}

fn number_bound(v: &str) -> Result<NumberBound, StoreError> {
    let (prefix, rest) = split_prefix(v);
    let (value, lo, hi) =
        decimal_range(rest).ok_or_else(|| invalid(format!("'{v}' is not a valid number")))?;
    Ok(NumberBound {
        prefix,
        value,
        lo,
        hi,
    })
}

/// `number|system|code` (or `number|code`, or `number`) as the number's text and the unescaped
/// system and code, `None` when empty.
fn quantity_parts(v: &str) -> (&str, Option<String>, Option<String>) {
    match split_bar(v) {
        None => (v, None, None),
        Some((num, rest)) => {
            let (system, code) = split_bar(rest).unwrap_or(("", rest));
            let text = |s: &str| (!s.is_empty()).then(|| unescape(s));
            (num, text(system), text(code))
        }
    }
}

fn quantity_value(v: &str) -> Result<QuantityValue, StoreError> {
    let (num, system, code) = quantity_parts(v);
    Ok(QuantityValue {
        number: number_bound(num)?,
        system: system.as_deref().map(keys::system_key),
        code: code.as_deref().map(hash),
    })
}

/// The value in canonical UCUM units (matching the `ucum::CANONICAL` rows of `index::extract`)
/// when it names the UCUM system and a unit that converts; `Ok(None)` otherwise. Without a
/// system (`5.4||mg`) the code may be a unit of any system, so it is matched as written: the
/// spec ties canonical comparison to UCUM.
fn canonical_quantity_value(v: &str) -> Result<Option<QuantityValue>, StoreError> {
    let (num, system, code) = quantity_parts(v);
    let number = number_bound(num)?;
    let (Some(ucum::UCUM_SYSTEM), Some(code)) = (system.as_deref(), code.as_deref()) else {
        return Ok(None);
    };
    let Some(unit) = ucum::canonical_unit(code) else {
        return Ok(None);
    };
    // The factor is positive, so the prefix keeps its meaning on the converted bounds.
    let (Some(value), Some(lo), Some(hi)) = (
        unit.convert(number.value),
        unit.convert(number.lo),
        unit.convert(number.hi),
    ) else {
        return Ok(None);
    };
    Ok(Some(QuantityValue {
        number: NumberBound {
            prefix: number.prefix,
            value,
            lo,
            hi,
        },
        system: Some(keys::system_key(ucum::UCUM_SYSTEM)),
        code: Some(hash(unit.unit())),
    }))
}

/// Moves a quantity criterion onto the canonical-unit rows when every one of its values is a
/// convertible UCUM quantity. One criterion has one parameter key for all its OR-ed values, and a
/// value without a convertible UCUM unit has no canonical rows to match: if any value does not
/// convert, all keep matching their units as written, which is what they matched before (a
/// stored UCUM quantity keeps its row in its own unit next to the canonical one).
fn canonicalize_quantities(
    resource_type: &str,
    code: &str,
    value: &str,
    c: &mut Criterion,
) -> Result<(), StoreError> {
    let mut converted = Vec::with_capacity(c.values.len());
    for v in split_or(value) {
        match canonical_quantity_value(&v)? {
            Some(q) => converted.push(Value::Quantity(q)),
            None => return Ok(()),
        }
    }
    c.param = keys::derived_param_key(resource_type, code, ucum::CANONICAL);
    c.values = converted;
    Ok(())
}

fn reference_value(
    v: &str,
    modifier_type: Option<&str>,
    p: &SearchParam,
) -> Result<ReferenceValue, StoreError> {
    let (ty, target) = reference_parts(v)
        .ok_or_else(|| invalid(format!("'{v}' is not a valid reference search value")))?;
    // An absolute URL (another server's resource) is indexed without a type, as the whole URL.
    let absolute = ty.is_none() && (target.contains("://") || target.starts_with("urn:"));
    // A plain id on a parameter with a single target type means that type.
    let ty = ty.or(modifier_type).or(match p.targets {
        [only] => Some(*only),
        _ => None,
    });
    let ty = if absolute { None } else { ty };
    Ok(ReferenceValue {
        target_type: ty.map(keys::type_key),
        target: hash(target),
    })
}

fn exact_only(prefix: DatePrefix, p: &SearchParam) -> Result<(), StoreError> {
    if prefix == DatePrefix::Eq {
        Ok(())
    } else {
        Err(invalid(format!(
            "comparison prefixes inside the composite parameter '{}' are not supported yet",
            p.code
        )))
    }
}

fn composite_value(p: &SearchParam, v: &str) -> Result<Value, StoreError> {
    let mut parts = split_unescaped(v, '$');
    if parts.len() != p.components.len() {
        return Err(invalid(format!(
            "'{}' takes {} components separated by '$'",
            p.code,
            p.components.len()
        )));
    }
    // A string last component is matched by starts-with on its own rows (see `index::extract`).
    if p.components.last().map(|c| c.kind) == Some(SearchParamType::String)
        && let Some(part) = parts.pop()
    {
        let key = composite_key_of(p, &parts)?;
        return Ok(Value::String {
            text: crate::index::composite_string(key, &normalize_string(&unescape(&part))),
            mode: StringMatch::StartsWith,
        });
    }
    // A numeric or date last component is compared as a range (see `index::extract`).
    let mut bound = None;
    if let Some(last) = p.components.last()
        && crate::index::is_range_kind(last.kind)
        && let Some(part) = parts.pop()
    {
        bound = Some(match last.kind {
            SearchParamType::Date => CompositeBound::Date(date_bound(&part)?),
            SearchParamType::Quantity => CompositeBound::Number(quantity_value(&part)?.number),
            _ => CompositeBound::Number(number_bound(&part)?),
        });
    }
    let key = composite_key_of(p, &parts)?;
    Ok(match bound {
        Some(bound) => Value::CompositeRange { key, bound },
        None => Value::Composite { key },
    })
}

/// The key of a composite search value's exactly matched components (all but a range or string
/// last one).
fn composite_key_of(p: &SearchParam, parts: &[String]) -> Result<i64, StoreError> {
    let mut texts = Vec::with_capacity(parts.len());
    for (part, component) in parts.iter().zip(&p.components) {
        let text = match component.kind {
            SearchParamType::Token => {
                let t = token_value(part);
                match (t.system, t.code) {
                    (Some(s), Some(c)) => format!("t{s}:{c}"),
                    (None, Some(c)) => format!("t*:{c}"),
                    _ => return Err(invalid("composite token components need a code")),
                }
            }
            // Composite rows hold exact values: a comparison prefix cannot be answered from them.
            SearchParamType::Quantity => {
                let q = quantity_value(part)?;
                exact_only(q.number.prefix, p)?;
                // Units are not part of composite keys (see `index::extract`).
                format!("q{}", q.number.value)
            }
            SearchParamType::Number => {
                let n = number_bound(part)?;
                exact_only(n.prefix, p)?;
                format!("n{}", n.value)
            }
            SearchParamType::Date => {
                let d = date_bound(part)?;
                exact_only(d.prefix, p)?;
                format!("d{}:{}", d.lo, d.hi)
            }
            SearchParamType::String => format!("s{}", normalize_string(&unescape(part))),
            SearchParamType::Uri => format!("u{}", hash(&unescape(part))),
            SearchParamType::Reference => {
                let r = reference_value(part, None, p)?;
                format!("r{}:{}", r.target_type.unwrap_or(keys::NONE), r.target)
            }
            SearchParamType::Composite | SearchParamType::Special => {
                return Err(invalid("nested composite parameters are not supported"));
            }
        };
        texts.push(text);
    }
    Ok(crate::index::composite_key(&texts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_unescaped_commas() {
        assert_eq!(split_or(r"a,b\,c,d"), vec!["a", "b,c", "d"]);
        assert_eq!(split_or("x"), vec!["x"]);
    }

    #[test]
    fn token_forms() {
        assert_eq!(
            token_value("a|b"),
            TokenValue {
                system: Some(keys::system_key("a")),
                code: Some(hash("b"))
            }
        );
        assert_eq!(
            token_value("|b"),
            TokenValue {
                system: Some(keys::NONE),
                code: Some(hash("b"))
            }
        );
        assert_eq!(
            token_value("a|"),
            TokenValue {
                system: Some(keys::system_key("a")),
                code: None
            }
        );
        assert_eq!(
            token_value("b"),
            TokenValue {
                system: None,
                code: Some(hash("b"))
            }
        );
        assert_eq!(
            token_value(r"a\|b"),
            TokenValue {
                system: None,
                code: Some(hash("a|b"))
            }
        );
    }

    #[test]
    fn prefixes() {
        let d = date_bound("ge2020-01").unwrap();
        assert_eq!(d.prefix, DatePrefix::Ge);
        assert!(date_bound("gt2020-13").is_err());
        let q = quantity_value("lt5.4|http://unitsofmeasure.org|mg").unwrap();
        assert_eq!(q.number.prefix, DatePrefix::Lt);
        assert_eq!(q.code, Some(hash("mg")));
        let q = quantity_value("5.4||mg").unwrap();
        assert_eq!((q.system, q.code), (None, Some(hash("mg"))));
    }

    fn quantity_criterion(value: &str) -> Criterion {
        let params = vec![("value-quantity".to_owned(), value.to_owned())];
        let q = parse_search(medicus_fhir::r4(), Some("Observation"), &params).unwrap();
        q.criteria.into_iter().next().unwrap()
    }

    #[test]
    fn ucum_quantities_search_canonical_rows() {
        let canonical = keys::derived_param_key("Observation", "value-quantity", ucum::CANONICAL);
        let plain = param_key("Observation", "value-quantity");
        let c = quantity_criterion("gt1|http://unitsofmeasure.org|g/L");
        assert_eq!(c.param, canonical);
        assert_eq!(
            c.values,
            vec![Value::Quantity(QuantityValue {
                number: NumberBound {
                    prefix: DatePrefix::Gt,
                    value: 1000.0,
                    lo: 500.0,
                    hi: 1500.0
                },
                system: Some(keys::system_key(ucum::UCUM_SYSTEM)),
                code: Some(hash("g.m-3")),
            })]
        );
        let both = quantity_criterion(
            "5|http://unitsofmeasure.org|mmol/L,5000|http://unitsofmeasure.org|umol/L",
        );
        assert_eq!(both.param, canonical);
        let (Value::Quantity(a), Value::Quantity(b)) = (&both.values[0], &both.values[1]) else {
            panic!("quantity values expected");
        };
        // Same value and unit; each keeps the precision it was written with.
        assert_eq!((a.number.value, a.code), (b.number.value, b.code));
        assert_eq!((a.number.lo, a.number.hi), (4.5, 5.5));
        assert_eq!((b.number.lo, b.number.hi), (4.9995, 5.0005));
        // No system, a non-UCUM system, an unconvertible unit, or one such value among others:
        // units match as written on the parameter's own rows.
        for v in [
            "5||mg",
            "5|mg",
            "5",
            "5|http://other|mg",
            "37|http://unitsofmeasure.org|Cel",
            "5|http://unitsofmeasure.org|mg,5||mg",
        ] {
            let c = quantity_criterion(v);
            assert_eq!(c.param, plain, "{v}");
            assert_eq!(c.values.len(), split_or(v).len());
            for (got, raw) in c.values.iter().zip(split_or(v)) {
                assert_eq!(got, &Value::Quantity(quantity_value(&raw).unwrap()), "{v}");
            }
        }
        let bad = "x|http://unitsofmeasure.org|mg".to_owned();
        let bad = [("value-quantity".to_owned(), bad)];
        assert!(parse_search(medicus_fhir::r4(), Some("Observation"), &bad).is_err());
    }

    proptest::proptest! {
        #[test]
        fn value_parsers_never_panic(s in "\\PC{0,30}") {
            let _ = split_or(&s);
            let _ = token_value(&s);
            let _ = date_bound(&s);
            let _ = quantity_value(&s);
        }
    }
}
