//! `_include` and `_revinclude`: resources referenced by, or referring to, the matches of a
//! search, added to the searchset with `search.mode = include`.
//!
//! Forms: `Source:param`, `Source:param:Target`, `Source:*` (every reference parameter of the
//! source type) and `*` (for `_include` every reference parameter of every match, for
//! `_revinclude` every reference parameter of every type that can point at a match). The
//! `:iterate` modifier (and STU3's `:recurse`) applies a value to the included resources too,
//! round after round, until a round adds nothing. Everything is bounded: at most
//! [`MAX_INCLUDED`] resources and [`MAX_ROUNDS`] rounds per page, reported as truncated otherwise.

use std::collections::HashSet;

use medicus_fhir::{SearchParam, SearchParamType};
use medicus_fhirpath::{Env, Item};
use medicus_store::api::{ReadSession, ResourceVersion};
use medicus_store::index::reference_parts;
use serde_json::Value;

use crate::fhir::error::FhirError;

/// At most this many resources are included per search page.
pub const MAX_INCLUDED: usize = 1000;
/// At most this many `:iterate` rounds after the first one.
pub const MAX_ROUNDS: usize = 8;
/// References looked up per `_revinclude` search.
const REVINCLUDE_CHUNK: usize = 100;

/// One `_include`/`_revinclude` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeSpec {
    /// The type holding the reference; `None` for `_include=*` (any type).
    pub source_type: Option<String>,
    /// The reference parameter; `None` for `*` (every reference parameter of the source type).
    pub param: Option<String>,
    pub target_type: Option<String>,
    /// `:iterate`: also applied to included resources.
    pub iterate: bool,
}

/// Parses an include value; `modifier` is what follows `_include:` in the parameter name.
/// `None` when it is malformed, names no reference parameter, or has an unknown modifier.
pub fn parse_include(modifier: Option<&str>, value: &str) -> Option<IncludeSpec> {
    let iterate = match modifier {
        None => false,
        Some("iterate" | "recurse") => true,
        Some(_) => return None,
    };
    let defs = medicus_fhir::r4();
    if value == "*" {
        return Some(IncludeSpec {
            source_type: None,
            param: None,
            target_type: None,
            iterate,
        });
    }
    let mut parts = value.split(':');
    let source_type = parts.next()?.to_string();
    let param = parts.next()?.to_string();
    let target_type = parts.next().map(str::to_string);
    if parts.next().is_some() || !defs.is_resource_type(&source_type) {
        return None;
    }
    if let Some(target) = &target_type
        && !defs.is_resource_type(target)
    {
        return None;
    }
    let param = if param == "*" {
        None
    } else {
        let p = defs.search_param(&source_type, &param)?;
        if p.kind != SearchParamType::Reference {
            return None;
        }
        if let Some(target) = &target_type
            && !p.targets.contains(&target.as_str())
        {
            return None;
        }
        Some(param)
    };
    Some(IncludeSpec {
        source_type: Some(source_type),
        param,
        target_type,
        iterate,
    })
}

/// The reference parameters of `resource_type` that `spec` uses.
fn reference_params(resource_type: &str, spec: &IncludeSpec) -> Vec<&'static SearchParam> {
    let defs = medicus_fhir::r4();
    match &spec.param {
        Some(code) => defs.search_param(resource_type, code).into_iter().collect(),
        None => defs
            .search_params(resource_type)
            .iter()
            .filter(|p| p.kind == SearchParamType::Reference)
            .collect(),
    }
}

/// `(type, id)` of every local reference that `param` finds in `resource`.
fn referenced(
    resource: &Value,
    param: &SearchParam,
    target_type: Option<&str>,
) -> Vec<(String, String)> {
    let Some(expression) = param.expression.as_ref() else {
        return Vec::new();
    };
    let env = Env {
        model: Some(medicus_fhir::r4()),
    };
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
        .filter(|(ty, _)| target_type.is_none_or(|t| t == ty))
        .collect()
}

fn key(v: &ResourceVersion) -> (String, String) {
    (v.resource_type.clone(), v.id.clone())
}

/// What `collect_included` found.
#[derive(Debug, Default)]
pub struct Included {
    pub resources: Vec<ResourceVersion>,
    /// Some resources were left out because of [`MAX_INCLUDED`] or [`MAX_ROUNDS`].
    pub truncated: bool,
}

/// Adds resources to `found` while the budget lasts; remembers when it did not.
struct Collector {
    seen: HashSet<(String, String)>,
    found: Vec<ResourceVersion>,
    budget: usize,
    truncated: bool,
}

impl Collector {
    fn full(&mut self) -> bool {
        self.found.len() >= self.budget
    }

    fn include(
        &mut self,
        session: &mut dyn ReadSession,
        sources: &[ResourceVersion],
        spec: &IncludeSpec,
    ) -> Result<(), FhirError> {
        for source in sources {
            if spec
                .source_type
                .as_deref()
                .is_some_and(|t| t != source.resource_type)
            {
                continue;
            }
            let Some(body) = &source.body else { continue };
            for param in reference_params(&source.resource_type, spec) {
                for (ty, id) in referenced(body, param, spec.target_type.as_deref()) {
                    if self.seen.contains(&(ty.clone(), id.clone())) {
                        continue;
                    }
                    if self.full() {
                        self.truncated = true;
                        return Ok(());
                    }
                    self.seen.insert((ty.clone(), id.clone()));
                    if let Some(v) = session.read(&ty, &id)?
                        && !v.is_deleted()
                    {
                        self.found.push(v);
                    }
                }
            }
        }
        Ok(())
    }

    fn revinclude(
        &mut self,
        session: &mut dyn ReadSession,
        sources: &[ResourceVersion],
        spec: &IncludeSpec,
    ) -> Result<(), FhirError> {
        let defs = medicus_fhir::r4();
        // `*`: every type, each with the reference parameters that can point at a match (one
        // indexed search per type and parameter, so only those that can find something).
        let source_types: &[&str] = match spec.source_type.as_deref() {
            Some(t) => &[t][..],
            None => defs.resource_types(),
        };
        for &source_type in source_types {
            self.revinclude_from(session, sources, spec, source_type)?;
            if self.full() {
                break;
            }
        }
        Ok(())
    }

    fn revinclude_from(
        &mut self,
        session: &mut dyn ReadSession,
        sources: &[ResourceVersion],
        spec: &IncludeSpec,
        source_type: &str,
    ) -> Result<(), FhirError> {
        for param in reference_params(source_type, spec) {
            let targets: Vec<String> = sources
                .iter()
                .filter(|m| {
                    spec.target_type
                        .as_deref()
                        .is_none_or(|t| t == m.resource_type)
                        && param.targets.contains(&m.resource_type.as_str())
                })
                .map(|m| format!("{}/{}", m.resource_type, m.id))
                .collect();
            for chunk in targets.chunks(REVINCLUDE_CHUNK) {
                if self.full() {
                    self.truncated = true;
                    return Ok(());
                }
                let criteria = vec![(param.code.to_string(), chunk.join(","))];
                let mut query = medicus_store::search::parse_search(
                    medicus_fhir::r4(),
                    Some(source_type),
                    &criteria,
                )?;
                query.count = self.budget - self.found.len();
                query.total = false;
                let page = session.search(Some(source_type), &query)?;
                if page.next_token().is_some() {
                    self.truncated = true;
                }
                for v in page.resources {
                    if self.seen.insert(key(&v)) {
                        self.found.push(v);
                    }
                }
            }
        }
        Ok(())
    }

    fn round(
        &mut self,
        session: &mut dyn ReadSession,
        sources: &[ResourceVersion],
        includes: &[&IncludeSpec],
        revincludes: &[&IncludeSpec],
    ) -> Result<(), FhirError> {
        for spec in includes {
            self.include(session, sources, spec)?;
        }
        for spec in revincludes {
            self.revinclude(session, sources, spec)?;
        }
        Ok(())
    }
}

/// The resources to include for `matches`, without duplicates and without the matches.
pub fn collect_included<'a>(
    session: &mut dyn ReadSession,
    matches: &[ResourceVersion],
    includes: &'a [IncludeSpec],
    revincludes: &'a [IncludeSpec],
) -> Result<Included, FhirError> {
    let mut c = Collector {
        seen: matches.iter().map(key).collect(),
        found: Vec::new(),
        budget: MAX_INCLUDED,
        truncated: false,
    };
    let all = |specs: &'a [IncludeSpec]| specs.iter().collect::<Vec<_>>();
    let iterating =
        |specs: &'a [IncludeSpec]| specs.iter().filter(|s| s.iterate).collect::<Vec<_>>();
    c.round(session, matches, &all(includes), &all(revincludes))?;
    let (includes, revincludes) = (iterating(includes), iterating(revincludes));
    if includes.is_empty() && revincludes.is_empty() {
        return Ok(Included {
            resources: c.found,
            truncated: c.truncated,
        });
    }
    // Each round works on what the previous one added; `seen` guarantees progress.
    let mut start = 0;
    for _ in 0..MAX_ROUNDS {
        let end = c.found.len();
        if start == end || c.full() {
            break;
        }
        let sources: Vec<ResourceVersion> = c.found[start..end].to_vec();
        c.round(session, &sources, &includes, &revincludes)?;
        start = end;
    }
    if start < c.found.len() && !c.full() {
        // The round limit stopped the iteration while the last round still found something.
        c.truncated = true;
    }
    Ok(Included {
        resources: c.found,
        truncated: c.truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_values() {
        let spec = parse_include(None, "Observation:subject").unwrap();
        assert_eq!(spec.source_type.as_deref(), Some("Observation"));
        assert_eq!(spec.param.as_deref(), Some("subject"));
        assert!(!spec.iterate);
        let spec = parse_include(Some("iterate"), "Observation:subject:Patient").unwrap();
        assert!(spec.iterate);
        assert_eq!(spec.target_type.as_deref(), Some("Patient"));
        assert!(
            parse_include(Some("recurse"), "Observation:*")
                .unwrap()
                .param
                .is_none()
        );
        assert!(parse_include(None, "*").unwrap().source_type.is_none());
        assert!(parse_include(None, "*").unwrap().source_type.is_none());
        assert!(parse_include(Some("bogus"), "Observation:subject").is_none());
        assert!(parse_include(None, "Observation:status").is_none());
        assert!(parse_include(None, "Observation:subject:Nope").is_none());
        // Observation.subject cannot point at a Practitioner.
        assert!(parse_include(None, "Observation:subject:Practitioner").is_none());
        assert!(parse_include(None, "Nope:subject").is_none());
        assert!(parse_include(None, "Observation").is_none());
        assert!(parse_include(None, "Observation:subject:Patient:x").is_none());
    }

    #[test]
    fn wildcard_uses_every_reference_parameter() {
        let spec = parse_include(None, "Patient:*").unwrap();
        let codes: Vec<&str> = reference_params("Patient", &spec)
            .iter()
            .map(|p| p.code)
            .collect();
        assert!(codes.contains(&"general-practitioner") && codes.contains(&"organization"));
        let body = serde_json::json!({"resourceType": "Patient",
            "generalPractitioner": [{"reference": "Practitioner/d"}],
            "managingOrganization": {"reference": "Organization/o"}});
        let mut refs: Vec<(String, String)> = reference_params("Patient", &spec)
            .iter()
            .flat_map(|p| referenced(&body, p, None))
            .collect();
        refs.sort();
        refs.dedup();
        assert_eq!(
            refs,
            [
                ("Organization".to_string(), "o".to_string()),
                ("Practitioner".to_string(), "d".to_string())
            ]
        );
    }
}
