//! `_include` and `_revinclude`: resources referenced by, or referring to, the matches of a
//! search, added to the searchset with `search.mode = include`.
//!
//! Only the plain forms are supported (`Type:param` and `Type:param:Target`, no `*`, no
//! `:iterate`). Both are bounded so one search cannot pull in an unbounded amount of data.

use std::collections::HashSet;

use medicus_fhir::SearchParamType;
use medicus_fhirpath::{Env, Item};
use medicus_store::api::{ReadSession, ResourceVersion};
use medicus_store::index::reference_parts;
use serde_json::Value;

use crate::fhir::error::FhirError;

/// At most this many resources are included per search page.
pub const MAX_INCLUDED: usize = 1000;
/// References looked up per `_revinclude` search.
const REVINCLUDE_CHUNK: usize = 100;

/// One `_include`/`_revinclude` value: `source_type:param[:target_type]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeSpec {
    pub source_type: String,
    pub param: String,
    pub target_type: Option<String>,
}

/// Parses an include value; `None` when it is malformed or names no reference parameter.
pub fn parse_include(value: &str) -> Option<IncludeSpec> {
    let mut parts = value.split(':');
    let source_type = parts.next()?.to_string();
    let param = parts.next()?.to_string();
    let target_type = parts.next().map(str::to_string);
    if parts.next().is_some() {
        return None;
    }
    let defs = medicus_fhir::r4();
    let p = defs.search_param(&source_type, &param)?;
    if p.kind != SearchParamType::Reference {
        return None;
    }
    if let Some(target) = &target_type
        && !defs.is_resource_type(target)
    {
        return None;
    }
    Some(IncludeSpec {
        source_type,
        param,
        target_type,
    })
}

/// `(type, id)` of every local reference that `spec.param` finds in `resource`.
fn referenced(resource: &Value, spec: &IncludeSpec) -> Vec<(String, String)> {
    let defs = medicus_fhir::r4();
    let Some(expression) = defs
        .search_param(&spec.source_type, &spec.param)
        .and_then(|p| p.expression.as_ref())
    else {
        return Vec::new();
    };
    let env = Env { model: Some(defs) };
    let Ok(items) = expression.evaluate(resource, &env) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Item::Node(node) => node.value.get("reference").and_then(Value::as_str),
            Item::String(s) => Some(s.as_str()),
            _ => None,
        })
        .filter_map(reference_parts)
        .filter_map(|(ty, id)| Some((ty?.to_string(), id.to_string())))
        .filter(|(ty, _)| spec.target_type.as_deref().is_none_or(|t| t == ty))
        .collect()
}

fn key(v: &ResourceVersion) -> (String, String) {
    (v.resource_type.clone(), v.id.clone())
}

/// The resources to include for `matches`, without duplicates and without the matches.
pub fn collect_included(
    session: &mut dyn ReadSession,
    matches: &[ResourceVersion],
    includes: &[IncludeSpec],
    revincludes: &[IncludeSpec],
) -> Result<Vec<ResourceVersion>, FhirError> {
    let mut seen: HashSet<(String, String)> = matches.iter().map(key).collect();
    let mut included = Vec::new();
    for spec in includes {
        for m in matches
            .iter()
            .filter(|m| m.resource_type == spec.source_type)
        {
            let Some(body) = &m.body else { continue };
            for (ty, id) in referenced(body, spec) {
                if included.len() >= MAX_INCLUDED || !seen.insert((ty.clone(), id.clone())) {
                    continue;
                }
                if let Some(v) = session.read(&ty, &id)?
                    && !v.is_deleted()
                {
                    included.push(v);
                }
            }
        }
    }
    for spec in revincludes {
        let targets: Vec<String> = matches
            .iter()
            .filter(|m| {
                spec.target_type
                    .as_deref()
                    .is_none_or(|t| t == m.resource_type)
            })
            .map(|m| format!("{}/{}", m.resource_type, m.id))
            .collect();
        for chunk in targets.chunks(REVINCLUDE_CHUNK) {
            if included.len() >= MAX_INCLUDED {
                break;
            }
            let criteria = vec![(spec.param.clone(), chunk.join(","))];
            let mut query = medicus_store::search::parse_search(
                medicus_fhir::r4(),
                Some(&spec.source_type),
                &criteria,
            )?;
            query.count = MAX_INCLUDED - included.len();
            query.total = false;
            for v in session.search(Some(&spec.source_type), &query)?.resources {
                if seen.insert(key(&v)) {
                    included.push(v);
                }
            }
        }
    }
    Ok(included)
}
