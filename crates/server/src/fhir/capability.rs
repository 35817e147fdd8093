//! The CapabilityStatement: states exactly what this server implements.

use std::collections::HashMap;
use std::sync::OnceLock;

use medicus_fhir::SearchParamType;
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

/// Parameters the server interprets itself on every search.
const RESULT_PARAMS: &[(&str, &str)] = &[
    ("_count", "number"),
    ("_summary", "token"),
    ("_elements", "string"),
];

/// `Type:param` for every reference parameter of `resource_type` (what `_include` accepts).
fn search_includes(resource_type: &str) -> Vec<String> {
    medicus_fhir::r4()
        .search_params(resource_type)
        .iter()
        .filter(|p| p.kind == SearchParamType::Reference)
        .map(|p| format!("{resource_type}:{}", p.code))
        .collect()
}

/// For each type, the `Source:param` pairs whose references may point at it (`_revinclude`).
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
                by_target
                    .entry(target)
                    .or_default()
                    .push(format!("{source}:{}", p.code));
            }
        }
    }
    by_target
}

fn resource_entry(resource_type: &str, rev_includes: &HashMap<&'static str, Vec<String>>) -> Value {
    let defs = medicus_fhir::r4();
    let mut params: Vec<Value> = defs
        .search_params(resource_type)
        .iter()
        .map(|p| json!({ "name": p.code, "definition": p.url, "type": param_type(p.kind) }))
        .collect();
    params.extend(
        RESULT_PARAMS
            .iter()
            .map(|(name, kind)| json!({ "name": name, "type": kind })),
    );
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
        "searchParam": params,
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
