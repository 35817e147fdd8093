//! The search-parameter registry: every R4 search parameter, attached to each resource type it
//! applies to (inherited `Resource`/`DomainResource` ones included), with its expression narrowed to
//! that type and compiled once.
//!
//! Compilation is lazy (on the first `search_params` call), so that loading the type table — which
//! validation and the FHIRPath model need — does not depend on the FHIRPath parser.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use medicus_fhirpath::{Expression, ParseError};

use crate::definitions::TypeTable;
use crate::definitions::raw::{self, SearchParametersFile};
use crate::error::DefinitionsError;
use crate::fast_hash::FastMap;
use crate::{CompositeComponent, SearchParam, SearchParamType};

/// One search parameter as it applies to one resource type, before compilation.
#[derive(Debug, Clone)]
pub(crate) struct SearchParamSource {
    pub(crate) code: &'static str,
    pub(crate) url: &'static str,
    pub(crate) kind: SearchParamType,
    /// Narrowed to the resource type; `Resource.`/`DomainResource.` prefixes of inherited
    /// parameters are rewritten to the concrete type (`Resource.id` -> `Patient.id`).
    pub(crate) expression: Option<&'static str>,
    pub(crate) targets: &'static [&'static str],
    pub(crate) components: Vec<ComponentSource>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ComponentSource {
    pub(crate) code: &'static str,
    pub(crate) kind: SearchParamType,
    pub(crate) expression: &'static str,
}

#[derive(Debug)]
pub(crate) struct SearchRegistry {
    /// Resource type -> its parameters, sorted by code.
    sources: FastMap<&'static str, Vec<SearchParamSource>>,
    /// Number of distinct search parameters in the data.
    distinct: usize,
    compiled: OnceLock<FastMap<&'static str, Vec<SearchParam>>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CompileError {
    #[error(transparent)]
    Syntax(#[from] ParseError),
    #[error("the FHIRPath parser panicked")]
    Panicked,
}

impl SearchParamType {
    fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "number" => Self::Number,
            "date" => Self::Date,
            "string" => Self::String,
            "token" => Self::Token,
            "reference" => Self::Reference,
            "composite" => Self::Composite,
            "quantity" => Self::Quantity,
            "uri" => Self::Uri,
            "special" => Self::Special,
            _ => return None,
        })
    }
}

/// Compile one FHIRPath expression. A panicking parser is contained: a search parameter is not worth
/// taking the server down for.
pub(crate) fn compile_expression(src: &str) -> Result<Expression, CompileError> {
    match catch_unwind(AssertUnwindSafe(|| Expression::parse(src))) {
        Ok(result) => Ok(result?),
        Err(_) => Err(CompileError::Panicked),
    }
}

/// Rewrite the `Resource.`/`DomainResource.` root of an inherited expression to the concrete type, so
/// that evaluating it needs no type hierarchy (`Resource.meta.tag | Resource.x` -> `Patient.meta.tag | Patient.x`).
fn rewrite_inherited(expression: &str, resource_type: &str) -> String {
    let mut out = String::with_capacity(expression.len() + 8);
    for (i, branch) in expression.split(" | ").enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        let rest = branch
            .strip_prefix("Resource.")
            .or_else(|| branch.strip_prefix("DomainResource."));
        match rest {
            Some(rest) => {
                out.push_str(resource_type);
                out.push('.');
                out.push_str(rest);
            }
            None => out.push_str(branch),
        }
    }
    out
}

impl SearchRegistry {
    pub(crate) fn load(types: &TypeTable) -> Result<Self, DefinitionsError> {
        let file: SearchParametersFile<'static> = serde_json::from_str(raw::SEARCH_PARAMETERS_JSON)
            .map_err(|source| DefinitionsError::Json {
                file: "r4-search-parameters.json",
                source,
            })?;
        let resource = types.resource_type;
        let mut sources: FastMap<&'static str, Vec<SearchParamSource>> = FastMap::default();
        for p in &file.search_parameters {
            let bad = |message: String| DefinitionsError::BadSearchParam {
                url: p.url,
                message,
            };
            let kind = SearchParamType::from_code(p.kind)
                .ok_or_else(|| bad(format!("unknown type {}", p.kind)))?;
            let targets: &'static [&'static str] = Box::leak(p.target.clone().into_boxed_slice());
            let mut components = Vec::with_capacity(p.component.len());
            for &(code, kind, expression, _definition) in &p.component {
                let kind = SearchParamType::from_code(kind)
                    .ok_or_else(|| bad(format!("unknown component type {kind}")))?;
                components.push(ComponentSource {
                    code,
                    kind,
                    expression,
                });
            }
            for &base in &p.base {
                let base_id = types
                    .id(base)
                    .ok_or_else(|| bad(format!("unknown base {base}")))?;
                let expression = p.expression.get(base).copied();
                let source = SearchParamSource {
                    code: p.code,
                    url: p.url,
                    kind,
                    expression,
                    targets,
                    components: components.clone(),
                };
                sources.entry(base).or_default().push(source.clone());
                // Parameters of the abstract bases apply to every resource type derived from them.
                if types.get(base_id).is_abstract {
                    for &rt in types.resource_types() {
                        let rt_id = types
                            .id(rt)
                            .ok_or_else(|| bad(format!("unknown type {rt}")))?;
                        if !types.is_subtype(rt_id, base_id) || !types.is_subtype(base_id, resource)
                        {
                            continue;
                        }
                        let expression = expression
                            .map(|e| &*Box::leak(rewrite_inherited(e, rt).into_boxed_str()));
                        sources.entry(rt).or_default().push(SearchParamSource {
                            expression,
                            ..source.clone()
                        });
                    }
                }
            }
        }
        for list in sources.values_mut() {
            list.sort_by_key(|p| p.code);
        }
        Ok(Self {
            sources,
            distinct: file.search_parameters.len(),
            compiled: OnceLock::new(),
        })
    }

    /// Uncompiled parameters of a resource type.
    #[cfg(test)]
    pub(crate) fn sources(&self, resource_type: &str) -> &[SearchParamSource] {
        self.sources.get(resource_type).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn distinct_count(&self) -> usize {
        self.distinct
    }

    pub(crate) fn compiled(&self, resource_type: &str) -> &[SearchParam] {
        let compiled = self.compiled.get_or_init(|| compile_all(&self.sources));
        compiled.get(resource_type).map_or(&[], Vec::as_slice)
    }
}

fn compile_all(
    sources: &FastMap<&'static str, Vec<SearchParamSource>>,
) -> FastMap<&'static str, Vec<SearchParam>> {
    let mut failed = 0usize;
    let mut out: FastMap<&'static str, Vec<SearchParam>> = FastMap::default();
    for (&resource_type, list) in sources {
        let params = list
            .iter()
            .map(|source| {
                let compiled = compile_param(source);
                if compiled.is_none() && source.expression.is_some() {
                    failed += 1;
                }
                let (expression, components) = compiled.unwrap_or_default();
                SearchParam {
                    code: source.code,
                    url: source.url,
                    kind: source.kind,
                    expression,
                    targets: source.targets,
                    components,
                }
            })
            .collect();
        out.insert(resource_type, params);
    }
    if failed > 0 {
        tracing::warn!(
            failed,
            "search parameter expressions that did not compile are disabled"
        );
    }
    out
}

/// The compiled expression and components of one parameter; `None` (logged) when any part fails, so
/// that a composite is never indexed with only some of its components.
fn compile_param(
    source: &SearchParamSource,
) -> Option<(Option<Expression>, Vec<CompositeComponent>)> {
    let Some(src) = source.expression else {
        return Some((None, Vec::new()));
    };
    let warn = |expression: &str, error: &CompileError| {
        tracing::warn!(url = source.url, expression, %error, "search parameter expression does not compile");
    };
    let expression = compile_expression(src).map_err(|e| warn(src, &e)).ok()?;
    let mut components = Vec::with_capacity(source.components.len());
    for c in &source.components {
        let expression = compile_expression(c.expression)
            .map_err(|e| warn(c.expression, &e))
            .ok()?;
        components.push(CompositeComponent {
            code: c.code,
            kind: c.kind,
            expression,
        });
    }
    Some((Some(expression), components))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::r4;

    fn codes(resource_type: &str) -> Vec<&'static str> {
        r4().search
            .sources(resource_type)
            .iter()
            .map(|p| p.code)
            .collect()
    }

    fn source(resource_type: &str, code: &str) -> SearchParamSource {
        r4().search
            .sources(resource_type)
            .iter()
            .find(|p| p.code == code)
            .unwrap_or_else(|| panic!("{resource_type}.{code}"))
            .clone()
    }

    #[test]
    fn counts() {
        assert_eq!(r4().search.distinct_count(), 1375);
        let total: usize = r4()
            .resource_types()
            .iter()
            .map(|t| r4().search.sources(t).len())
            .sum();
        assert!(total > 2000, "{total}");
    }

    #[test]
    fn inherited_parameters_apply_to_every_resource_type() {
        for &rt in r4().resource_types() {
            let codes = codes(rt);
            for code in [
                "_id",
                "_lastUpdated",
                "_tag",
                "_profile",
                "_security",
                "_source",
                "_content",
                "_query",
            ] {
                assert!(codes.contains(&code), "{rt} lacks {code}");
            }
        }
        assert!(codes("Patient").contains(&"_text"));
        assert!(
            !codes("Bundle").contains(&"_text"),
            "Bundle is not a DomainResource"
        );
        assert_eq!(source("Patient", "_id").expression, Some("Patient.id"));
        assert_eq!(
            source("Observation", "_lastUpdated").expression,
            Some("Observation.meta.lastUpdated")
        );
        assert_eq!(source("Patient", "_text").expression, None);
        assert_eq!(source("Resource", "_id").expression, Some("Resource.id"));
    }

    #[test]
    fn expressions_are_narrowed_to_the_type() {
        assert_eq!(
            source("AllergyIntolerance", "code").expression,
            Some("AllergyIntolerance.code | AllergyIntolerance.reaction.substance")
        );
        assert_eq!(
            source("Condition", "code").expression,
            Some("Condition.code")
        );
        assert_eq!(
            source("Observation", "patient").expression,
            Some("Observation.subject.where(resolve() is Patient)")
        );
        let context = source("ActivityDefinition", "context").expression.unwrap();
        assert!(
            context.starts_with("(ActivityDefinition.useContext.value"),
            "{context}"
        );
        // Every branch of every narrowed expression is rooted at the type itself. The one exception
        // in R4 is InsurancePlan's `name | alias` (not qualified by the type at all).
        let mut unclean = Vec::new();
        for &rt in r4().resource_types() {
            for p in r4().search.sources(rt) {
                let Some(expr) = p.expression else { continue };
                for branch in expr.split(" | ") {
                    let root = branch.trim_start_matches('(');
                    let rooted = root == rt
                        || root
                            .strip_prefix(rt)
                            .is_some_and(|r| r.starts_with(['.', ' ', ')']));
                    if !rooted {
                        unclean.push(format!("{rt}.{}: {expr}", p.code));
                    }
                }
            }
        }
        unclean.dedup();
        assert_eq!(unclean, ["InsurancePlan.name: name | alias"]);
    }

    #[test]
    fn references_and_composites() {
        let subject = source("Observation", "subject");
        assert_eq!(subject.kind, SearchParamType::Reference);
        assert!(subject.targets.contains(&"Patient") && subject.targets.contains(&"Group"));
        let combo = source("Observation", "code-value-quantity");
        assert_eq!(combo.kind, SearchParamType::Composite);
        let components: Vec<_> = combo
            .components
            .iter()
            .map(|c| (c.code, c.kind, c.expression))
            .collect();
        assert_eq!(
            components,
            [
                ("code", SearchParamType::Token, "code"),
                (
                    "value-quantity",
                    SearchParamType::Quantity,
                    "value.ofType(Quantity)"
                )
            ]
        );
    }

    /// Every narrowed expression and composite component compiles with medicus-fhirpath.
    #[test]
    fn all_expressions_compile() {
        let mut checked = 0;
        let mut failures = Vec::new();
        let types = r4()
            .resource_types()
            .iter()
            .copied()
            .chain(["Resource", "DomainResource"]);
        for rt in types {
            for p in r4().search.sources(rt) {
                let components = p.components.iter().map(|c| c.expression);
                for expression in p.expression.into_iter().chain(components) {
                    checked += 1;
                    if let Err(e) = compile_expression(expression) {
                        failures.push(format!("{rt}.{} `{expression}`: {e}", p.code));
                    }
                }
            }
        }
        assert!(checked > 2500, "{checked}");
        assert!(
            failures.is_empty(),
            "{} of {checked} fail:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn compiled_registry_matches_sources() {
        let d = r4();
        let params = d.search_params("Observation");
        assert_eq!(params.len(), d.search.sources("Observation").len());
        let code = d
            .search_param("Observation", "code")
            .expect("Observation.code");
        assert_eq!(code.kind, SearchParamType::Token);
        assert_eq!(
            code.expression.as_ref().map(Expression::source),
            Some("Observation.code")
        );
        let combo = d
            .search_param("Observation", "code-value-quantity")
            .expect("composite");
        assert_eq!(combo.components.len(), 2);
        assert_eq!(combo.components[1].code, "value-quantity");
        assert!(d.search_params("Nope").is_empty());
        let id = d.search_param("Patient", "_id").expect("_id");
        assert_eq!(
            id.expression.as_ref().map(Expression::source),
            Some("Patient.id")
        );
    }

    #[test]
    fn rewrites_inherited_roots() {
        assert_eq!(rewrite_inherited("Resource.id", "Patient"), "Patient.id");
        assert_eq!(
            rewrite_inherited("Resource.meta.tag | DomainResource.text", "Observation"),
            "Observation.meta.tag | Observation.text"
        );
        assert_eq!(
            rewrite_inherited("name | alias", "InsurancePlan"),
            "name | alias"
        );
    }
}
