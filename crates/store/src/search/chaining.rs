//! Chained (`subject:Patient.birthdate=…`) and reverse-chained (`_has:Observation:subject:code=…`)
//! parameters, parsed recursively into criteria on the referenced or referring type.

use medicus_fhir::{Definitions, SearchParamType};

use super::criteria::{ChainValue, Criterion, HasValue, Value};
use crate::error::StoreError;
use crate::index::keys::param_key;

/// Parses a parameter that is not chained: `(resource_type, name, value)`.
pub(super) type PlainParser<'a> =
    &'a dyn Fn(&str, &str, &str) -> Result<Option<Criterion>, StoreError>;

/// Default limit of chained or reverse-chained links in one parameter.
pub const DEFAULT_MAX_CHAIN_DEPTH: usize = 4;

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidSearch(msg.into())
}

/// Parses one parameter `name=value` of `resource_type` that may be chained; `Ok(None)` when the
/// parameter is not chained (the caller parses it as a plain parameter).
pub(super) fn parse_chained(
    defs: &Definitions,
    resource_type: &str,
    name: &str,
    value: &str,
    depth: usize,
    max_depth: usize,
    plain: PlainParser<'_>,
) -> Result<Option<Criterion>, StoreError> {
    if let Some(rest) = name.strip_prefix("_has:") {
        return has(
            defs,
            resource_type,
            name,
            rest,
            value,
            depth,
            max_depth,
            plain,
        )
        .map(Some);
    }
    let Some((link, inner_name)) = name.split_once('.') else {
        return Ok(None);
    };
    if depth >= max_depth {
        return Err(invalid(format!(
            "'{name}': chains are limited to {max_depth} links"
        )));
    }
    let (code, type_modifier) = match link.split_once(':') {
        Some((c, t)) => (c, Some(t)),
        None => (link, None),
    };
    let p = defs
        .search_param(resource_type, code)
        .filter(|p| p.kind == SearchParamType::Reference)
        .ok_or_else(|| {
            invalid(format!(
                "'{name}': '{code}' is not a reference parameter of {resource_type}"
            ))
        })?;
    let targets: Vec<&str> = match type_modifier {
        Some(t) if defs.is_resource_type(t) && (p.targets.is_empty() || p.targets.contains(&t)) => {
            vec![t]
        }
        Some(t) => {
            return Err(invalid(format!(
                "'{name}': {code} cannot refer to a resource of type '{t}'"
            )));
        }
        None => p.targets.to_vec(),
    };
    let mut values = Vec::new();
    let mut last_error = None;
    for target in targets {
        match parse_link(defs, target, inner_name, value, depth + 1, max_depth, plain) {
            Ok(c) => values.push(Value::Chain(Box::new(ChainValue {
                target_type: target.to_owned(),
                criteria: vec![c],
            }))),
            // Without a type modifier the chain applies to the targets that have the parameter.
            Err(e) => last_error = Some(e),
        }
    }
    if values.is_empty() {
        return Err(last_error.unwrap_or_else(|| {
            invalid(format!("'{name}': {code} has no target type to chain into"))
        }));
    }
    Ok(Some(Criterion {
        code: name.to_owned(),
        param: param_key(resource_type, code),
        kind: Some(SearchParamType::Reference),
        missing: None,
        negated: false,
        values,
    }))
}

/// The criterion of the next link: chained again, or a plain parameter of `resource_type`. An
/// unknown parameter inside a chain is an error, never ignored: ignoring it would widen the result.
fn parse_link(
    defs: &Definitions,
    resource_type: &str,
    name: &str,
    value: &str,
    depth: usize,
    max_depth: usize,
    plain: PlainParser<'_>,
) -> Result<Criterion, StoreError> {
    if let Some(c) = parse_chained(defs, resource_type, name, value, depth, max_depth, plain)? {
        return Ok(c);
    }
    plain(resource_type, name, value)?.ok_or_else(|| {
        invalid(format!(
            "'{name}' is not a search parameter of {resource_type}"
        ))
    })
}

#[allow(clippy::too_many_arguments)]
fn has(
    defs: &Definitions,
    resource_type: &str,
    name: &str,
    rest: &str,
    value: &str,
    depth: usize,
    max_depth: usize,
    plain: PlainParser<'_>,
) -> Result<Criterion, StoreError> {
    if depth >= max_depth {
        return Err(invalid(format!(
            "'{name}': chains are limited to {max_depth} links"
        )));
    }
    let mut parts = rest.splitn(3, ':');
    let (Some(source_type), Some(code), Some(inner)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!(
            "'{name}': _has takes the form _has:Type:reference-parameter:parameter"
        )));
    };
    if !defs.is_resource_type(source_type) {
        return Err(invalid(format!(
            "'{name}': '{source_type}' is not a resource type"
        )));
    }
    let p = defs
        .search_param(source_type, code)
        .filter(|p| p.kind == SearchParamType::Reference)
        .ok_or_else(|| {
            invalid(format!(
                "'{name}': '{code}' is not a reference parameter of {source_type}"
            ))
        })?;
    if !p.targets.is_empty() && !p.targets.contains(&resource_type) {
        return Err(invalid(format!(
            "'{name}': {source_type}.{code} cannot refer to a {resource_type}"
        )));
    }
    let criterion = parse_link(defs, source_type, inner, value, depth + 1, max_depth, plain)?;
    Ok(Criterion {
        code: "_has".to_owned(),
        param: 0,
        kind: None,
        missing: None,
        negated: false,
        values: vec![Value::Has(Box::new(HasValue {
            source_type: source_type.to_owned(),
            param: param_key(source_type, code),
            criteria: vec![criterion],
        }))],
    })
}
