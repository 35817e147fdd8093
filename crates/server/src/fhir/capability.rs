//! The CapabilityStatement: states exactly what this server implements.
//!
//! The search part is generated from the implementation rather than written down: every
//! parameter and modifier listed is one the store's query parser accepts (each is tried once,
//! when the statement is first built), so the statement follows the parser as it learns more.

use std::collections::HashMap;
use std::sync::OnceLock;

use medicus_fhir::{SearchParam, SearchParamType};
use medicus_store::StoreError;
use medicus_store::search::{SearchResolver, parse_search, parse_search_with};
use serde_json::{Value, json};

fn param_type(kind: SearchParamType) -> &'static str {
    match kind {
        SearchParamType::Number => "number",
        SearchParamType::Date => "date",
        SearchParamType::String => "string",
        SearchParamType::Token => "token",
        SearchParamType::Reference => "reference",
        SearchParamType::Composite => "composite",
        SearchParamType::Quantity => "quantity",
        SearchParamType::Uri => "uri",
        SearchParamType::Special => "special",
    }
}

/// Parameters the server layer interprets on every type search, with their documentation.
const SERVER_PARAMS: &[(&str, &str, &str)] = &[
    (
        "_count",
        "number",
        "Page size; larger values are capped at the maximum, which the result says.",
    ),
    (
        "_summary",
        "token",
        "`true`, `text`, `data`, `count` or `false`; summary views carry the SUBSETTED tag.",
    ),
    (
        "_elements",
        "string",
        "Top-level elements to return (plus `id` and `meta`); SUBSETTED tag.",
    ),
    (
        "_list",
        "token",
        "Only the resources of this type that the List with this id has in `entry.item`.",
    ),
    (
        "_total",
        "token",
        "`none`, `estimate` or `accurate` (default).",
    ),
];

/// A resolver that knows one ValueSet under every URL, so that trying `:in` tests the parser's
/// support for the modifier, not the content of this server.
struct ProbeResolver;

impl SearchResolver for ProbeResolver {
    fn value_set(&self, url: &str) -> Result<Option<Value>, StoreError> {
        Ok(Some(json!({
            "resourceType": "ValueSet",
            "url": url,
            "status": "active",
            "expansion": { "contains": [{ "system": "http://loinc.org", "code": "1-8" }] },
        })))
    }
}

/// Whether the store's parser accepts `name=value` on `resource_type` (and does not ignore it).
fn accepted(resource_type: &str, name: &str, value: &str) -> bool {
    let pairs = [(name.to_string(), value.to_string())];
    parse_search_with(
        medicus_fhir::r4(),
        Some(resource_type),
        &pairs,
        &ProbeResolver,
    )
    .is_ok_and(|q| q.ignored.is_empty())
}

/// A value of the parameter's type that every parameter of that type accepts.
fn sample_value(kind: SearchParamType) -> Option<&'static str> {
    Some(match kind {
        SearchParamType::Number | SearchParamType::Quantity => "1",
        SearchParamType::Date => "2020-01-01",
        SearchParamType::String => "x",
        SearchParamType::Token => "http://loinc.org|1-8",
        SearchParamType::Reference => "Patient/1",
        SearchParamType::Uri => "http://example.org/fhir/x",
        // Composite values depend on the components, special ones on the parameter.
        SearchParamType::Composite | SearchParamType::Special => return None,
    })
}

/// A value for `p` that its type's parser can read.
fn value_for(p: &SearchParam) -> Option<String> {
    if p.kind != SearchParamType::Composite {
        return sample_value(p.kind).map(str::to_string);
    }
    let parts: Option<Vec<&str>> = p.components.iter().map(|c| sample_value(c.kind)).collect();
    parts
        .filter(|parts| !parts.is_empty())
        .map(|parts| parts.join("$"))
}

/// Modifiers tried on each parameter, with a value that suits the modifier.
const MODIFIERS: &[(&str, Option<&str>)] = &[
    ("missing", Some("true")),
    ("exact", None),
    ("contains", None),
    ("text", Some("x")),
    ("not", None),
    ("above", None),
    ("below", None),
    ("in", Some("http://example.org/fhir/ValueSet/probe")),
    ("not-in", Some("http://example.org/fhir/ValueSet/probe")),
    (
        "of-type",
        Some("http://terminology.hl7.org/CodeSystem/v2-0203|MR|1"),
    ),
    ("identifier", Some("urn:example|1")),
];

/// Values for the hierarchy modifiers, which only know some code systems.
const HIERARCHICAL_TOKEN: &str = "http://fhir.de/CodeSystem/bfarm/icd-10-gm|E11";

/// The modifiers the parser accepts on `p` of `resource_type` (`[type]` for a reference
/// parameter's type modifier).
fn modifiers(resource_type: &str, p: &SearchParam, value: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    for (modifier, special) in MODIFIERS {
        let v = match (*modifier, p.kind) {
            ("above" | "below", SearchParamType::Token) => HIERARCHICAL_TOKEN,
            _ => special.unwrap_or(value),
        };
        if accepted(resource_type, &format!("{}:{modifier}", p.code), v) {
            found.push(*modifier);
        }
    }
    if p.kind == SearchParamType::Reference
        && let Some(target) = p.targets.first()
        && accepted(resource_type, &format!("{}:{target}", p.code), "1")
    {
        found.push("[type]");
    }
    found
}

/// The `searchParam` entries of a type: the R4 parameters the parser accepts, each with its
/// modifiers, then the server's own parameters.
fn search_params(resource_type: &str) -> Vec<Value> {
    let mut out: Vec<Value> = medicus_fhir::r4()
        .search_params(resource_type)
        .iter()
        .filter_map(|p| {
            let value = value_for(p)?;
            if !accepted(resource_type, p.code, &value) {
                return None;
            }
            let modifiers = modifiers(resource_type, p, &value);
            let documentation = if modifiers.is_empty() {
                "Modifiers: none.".to_string()
            } else {
                let list: Vec<String> = modifiers.iter().map(|m| format!("`:{m}`")).collect();
                format!("Modifiers: {}.", list.join(", "))
            };
            Some(json!({
                "name": p.code,
                "definition": p.url,
                "type": param_type(p.kind),
                "documentation": documentation,
            }))
        })
        .collect();
    out.extend(SERVER_PARAMS.iter().map(|(name, kind, documentation)| {
        json!({ "name": name, "type": kind, "documentation": documentation })
    }));
    if sort_supported() {
        out.push(json!({
            "name": "_sort",
            "type": "string",
            "documentation": "Comma-separated parameters, `-` for descending; also `_id` and `_lastUpdated`.",
        }));
    }
    out
}

fn sort_supported() -> bool {
    let pairs = [("_sort".to_string(), "_lastUpdated".to_string())];
    parse_search(medicus_fhir::r4(), Some("Patient"), &pairs).is_ok_and(|q| q.ignored.is_empty())
}

/// `*`, `Type:*` and `Type:param` for every reference parameter of `resource_type` (what
/// `_include` accepts).
fn search_includes(resource_type: &str) -> Vec<String> {
    let mut out = vec!["*".to_string(), format!("{resource_type}:*")];
    out.extend(
        medicus_fhir::r4()
            .search_params(resource_type)
            .iter()
            .filter(|p| p.kind == SearchParamType::Reference)
            .map(|p| format!("{resource_type}:{}", p.code)),
    );
    out
}

/// For each type, the `Source:param` pairs whose references may point at it (`_revinclude`),
/// and `Source:*` for each such source type.
fn search_rev_includes() -> HashMap<&'static str, Vec<String>> {
    let defs = medicus_fhir::r4();
    let mut by_target: HashMap<&'static str, Vec<String>> = HashMap::new();
    for source in defs.resource_types() {
        for p in defs
            .search_params(source)
            .iter()
            .filter(|p| p.kind == SearchParamType::Reference)
        {
            for target in p.targets {
                let values = by_target
                    .entry(target)
                    .or_insert_with(|| vec!["*".to_owned()]);
                let wildcard = format!("{source}:*");
                if !values.contains(&wildcard) {
                    values.push(wildcard);
                }
                values.push(format!("{source}:{}", p.code));
            }
        }
    }
    by_target
}

const RESOURCE_DOCUMENTATION: &str = "Search: `_include` and `_revinclude` take `:iterate` \
(also `:recurse`) and `*` for every reference parameter; at most 1000 included resources per page. \
Types of the Patient compartment can also be searched as `Patient/[id]/[type]`, and \
`Patient/[id]/*` searches all of them.";

fn resource_entry(resource_type: &str, rev_includes: &HashMap<&'static str, Vec<String>>) -> Value {
    let interactions: Vec<Value> = [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ]
    .iter()
    .map(|code| json!({ "code": code }))
    .collect();
    json!({
        "type": resource_type,
        "documentation": RESOURCE_DOCUMENTATION,
        "interaction": interactions,
        "versioning": "versioned-update",
        "readHistory": true,
        "updateCreate": true,
        "conditionalCreate": true,
        "conditionalRead": "not-supported",
        "conditionalUpdate": true,
        "conditionalDelete": "single",
        "referencePolicy": ["literal", "local"],
        "searchInclude": search_includes(resource_type),
        "searchRevInclude": rev_includes.get(resource_type).cloned().unwrap_or_default(),
        "searchParam": search_params(resource_type),
        "operation": resource_operations(resource_type),
    })
}

/// Bulk Data Access 2.0 operation definitions.
const BULK_DATA: &str = "http://hl7.org/fhir/uv/bulkdata";

fn resource_operations(resource_type: &str) -> Vec<Value> {
    let mut ops = vec![json!({
        "name": "validate",
        "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    })];
    let export = match resource_type {
        "Patient" => Some("patient-export"),
        "Group" => Some("group-export"),
        _ => None,
    };
    if let Some(op) = export {
        ops.push(json!({ "name": "export", "definition": format!("{BULK_DATA}/OperationDefinition/{op}") }));
    }
    if resource_type == "Patient" {
        ops.push(json!({
            "name": "everything",
            "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            "documentation": "Instance and type level, GET or POST. Parameters: `_count`, \
`_since`, `_type`, `start`/`end` (on types with a `date` parameter), `_summary`, `_elements`, \
`_total`. Referenced resources outside the compartment are `search.mode = include`.",
        }));
    }
    ops
}

fn static_statement() -> &'static Value {
    static STATEMENT: OnceLock<Value> = OnceLock::new();
    STATEMENT.get_or_init(|| {
        let rev_includes = search_rev_includes();
        let resources: Vec<Value> = medicus_fhir::r4()
            .resource_types()
            .iter()
            .map(|t| resource_entry(t, &rev_includes))
            .collect();
        json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            // When this statement was built: at the first request after start.
            "date": crate::fhir::time_fmt::instant(now_us()),
            "publisher": "medicus",
            "kind": "instance",
            "software": { "name": "medicus", "version": env!("CARGO_PKG_VERSION") },
            "instantiates": [format!("{BULK_DATA}/CapabilityStatement/bulk-data")],
            "fhirVersion": "4.0.1",
            "format": ["json", "application/fhir+json"],
            "patchFormat": ["application/json-patch+json"],
            "rest": [{
                "mode": "server",
                "resource": resources,
                "interaction": [
                    { "code": "transaction" },
                    { "code": "batch" },
                    { "code": "history-system" },
                    { "code": "search-system" },
                ],
                "searchParam": [
                    { "name": "_id", "type": "token" },
                    { "name": "_lastUpdated", "type": "date" },
                ],
                "operation": [
                    { "name": "export", "definition": format!("{BULK_DATA}/OperationDefinition/export") },
                ],
                "compartment": ["http://hl7.org/fhir/CompartmentDefinition/patient"],
            }],
        })
    })
}

fn now_us() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(0)
}

/// The CapabilityStatement for a tenant's FHIR base.
pub fn capability_statement(fhir_base: &str) -> Value {
    let mut statement = static_statement().clone();
    statement["implementation"] =
        json!({ "description": "medicus FHIR R4 server", "url": fhir_base });
    statement
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param<'a>(params: &'a [Value], name: &str) -> Option<&'a Value> {
        params.iter().find(|p| p["name"] == name)
    }

    #[test]
    fn search_params_say_what_the_parser_accepts() {
        let obs = search_params("Observation");
        let code = param(&obs, "code").unwrap();
        assert_eq!(code["type"], "token");
        let doc = code["documentation"].as_str().unwrap();
        assert!(
            doc.contains("`:missing`") && doc.contains("`:not`"),
            "{doc}"
        );
        assert!(!doc.contains("`:exact`"), "{doc}");
        let subject = param(&obs, "subject").unwrap();
        let doc = subject["documentation"].as_str().unwrap();
        assert!(
            doc.contains("`:[type]`") && doc.contains("`:missing`"),
            "{doc}"
        );
        let patient = search_params("Patient");
        let family = param(&patient, "family").unwrap();
        let doc = family["documentation"].as_str().unwrap();
        assert!(
            doc.contains("`:exact`") && doc.contains("`:contains`"),
            "{doc}"
        );
        assert!(param(&patient, "_count").is_some() && param(&patient, "_list").is_some());
        // Special parameters are not implemented, so they are not listed.
        assert!(param(&search_params("Location"), "near").is_none());
        // Parameters the parser ignores are not listed either.
        assert!(param(&patient, "_query").is_none());
    }

    #[test]
    fn includes_and_compartment() {
        let inc = search_includes("Observation");
        assert!(inc.iter().any(|i| i == "Observation:*"));
        assert!(inc.iter().any(|i| i == "Observation:subject"));
        let rev = search_rev_includes();
        let patient = &rev["Patient"];
        assert!(patient.iter().any(|i| i == "Observation:*"));
        assert!(patient.iter().any(|i| i == "Observation:subject"));
        let ops = resource_operations("Patient");
        assert!(ops.iter().any(|o| o["name"] == "everything"));
        assert!(
            !resource_operations("Observation")
                .iter()
                .any(|o| o["name"] == "everything")
        );
    }
}
