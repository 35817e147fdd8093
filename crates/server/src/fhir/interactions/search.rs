//! Search: parameters → store query, and the `searchset` Bundle.

use medicus_store::api::ReadSession;
use medicus_store::search::SearchQuery;
use serde_json::{Value, json};

use super::history::with_query;
use super::include::{IncludeSpec, collect_included, parse_include};
use crate::fhir::bundle::{full_url, link, new_bundle, search_entry};
use crate::fhir::error::FhirError;
use crate::fhir::headers::Handling;
use crate::fhir::outcome::{Issue, Severity, operation_outcome};
use crate::fhir::query::encode_pairs;

/// Page-size policy from the server configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSizes {
    pub default: usize,
    pub max: usize,
}

impl PageSizes {
    /// `_count`: a non-negative integer, clamped to the maximum.
    pub fn parse_count(&self, value: &str) -> Result<usize, FhirError> {
        value
            .trim()
            .parse::<usize>()
            .map(|n| n.min(self.max))
            .map_err(|_| FhirError::bad_request("_count must be a non-negative integer"))
    }
}

/// Parameters this layer handles itself instead of passing them to the store's parser.
const HANDLED_HERE: &[&str] = &[
    "_include",
    "_revinclude",
    "_count",
    "_cursor",
    "_format",
    "_pretty",
    "_summary",
    "_elements",
];

/// A parsed search request.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchParams {
    pub query: SearchQuery,
    /// Parameters that were used, to repeat in the self and next links (no `_cursor`).
    pub link_params: Vec<(String, String)>,
    /// Parameters that were not understood and were ignored.
    pub ignored: Vec<String>,
    /// `_elements`: only these top-level elements are returned.
    pub elements: Option<Vec<String>>,
    pub includes: Vec<IncludeSpec>,
    pub revincludes: Vec<IncludeSpec>,
}

/// Reference search values that are absolute URLs on this server's base (`{base}/Patient/1`)
/// mean the local resource (`Patient/1`), which is how the store indexes local references.
pub fn localize_reference_values(
    resource_type: Option<&str>,
    pairs: Vec<(String, String)>,
    fhir_base: &str,
) -> Vec<(String, String)> {
    let Some(resource_type) = resource_type else {
        return pairs;
    };
    let prefix = format!("{fhir_base}/");
    let defs = medicus_fhir::r4();
    pairs
        .into_iter()
        .map(|(name, value)| {
            let code = name.split(':').next().unwrap_or("");
            let is_reference = defs
                .search_param(resource_type, code)
                .is_some_and(|p| p.kind == medicus_fhir::SearchParamType::Reference);
            if !is_reference || !value.contains(&prefix) {
                return (name, value);
            }
            let localized: Vec<&str> = value
                .split(',')
                .map(|v| v.strip_prefix(&prefix).unwrap_or(v))
                .collect();
            (name, localized.join(","))
        })
        .collect()
}

pub fn parse_search_params(
    resource_type: Option<&str>,
    pairs: &[(String, String)],
    sizes: PageSizes,
    handling: Handling,
) -> Result<SearchParams, FhirError> {
    let criteria: Vec<(String, String)> = pairs
        .iter()
        .filter(|(n, _)| !HANDLED_HERE.contains(&n.split(':').next().unwrap_or("")))
        .cloned()
        .collect();
    let mut query =
        medicus_store::search::parse_search(medicus_fhir::r4(), resource_type, &criteria)?;
    let mut ignored = query.ignored.clone();
    let mut count = sizes.default;
    let mut summary_count = false;
    let mut elements = None;
    let (mut includes, mut revincludes) = (Vec::new(), Vec::new());
    for (name, value) in pairs {
        match name.split(':').next().unwrap_or("") {
            kind @ ("_include" | "_revinclude") => match parse_include(value) {
                Some(spec) if kind == "_include" => includes.push(spec),
                Some(spec) => revincludes.push(spec),
                None => ignored.push(name.clone()),
            },
            "_count" => count = sizes.parse_count(value)?,
            "_cursor" => query
                .set_cursor(value)
                .map_err(|_| FhirError::bad_request("invalid _cursor"))?,
            "_summary" => match value.as_str() {
                "count" => summary_count = true,
                "false" => {}
                // Summary views are not implemented; full resources are returned.
                _ => ignored.push("_summary".into()),
            },
            "_elements" => {
                let list: Vec<String> = value
                    .split(',')
                    .map(|e| e.trim().to_string())
                    .filter(|e| !e.is_empty())
                    .collect();
                if !list.is_empty() {
                    elements = Some(list);
                }
            }
            _ => {}
        }
    }
    if handling == Handling::Strict && !ignored.is_empty() {
        return Err(FhirError::bad_request(format!(
            "unknown or unsupported search parameters: {}",
            ignored.join(", ")
        )));
    }
    query.count = if summary_count { 0 } else { count };
    if summary_count {
        query.total = true;
    }
    // The links repeat what was applied: not the paging token, rendering options or ignored
    // parameters (the store reports those by their name as given, modifier included).
    let link_params = pairs
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "_cursor" | "_format" | "_pretty"))
        .filter(|(n, _)| !ignored.contains(n))
        .cloned()
        .collect();
    Ok(SearchParams {
        query,
        link_params,
        ignored,
        elements,
        includes,
        revincludes,
    })
}

/// Runs a search and renders the `searchset` Bundle. `self_url` is the request URL without the
/// query (e.g. `{base}/Patient`).
pub fn search(
    session: &mut dyn ReadSession,
    resource_type: Option<&str>,
    params: &SearchParams,
    fhir_base: &str,
    self_url: &str,
) -> Result<Value, FhirError> {
    let page = session.search(resource_type, &params.query)?;
    let mut bundle = new_bundle("searchset");
    if let Some(total) = page.total {
        bundle.insert("total".into(), json!(total));
    }
    let link_pairs = || {
        params
            .link_params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
    };
    let cursor_text = params.query.cursor_token();
    let self_query =
        encode_pairs(link_pairs().chain(cursor_text.as_deref().map(|c| ("_cursor", c))));
    let mut links = vec![link("self", with_query(self_url, &self_query))];
    if let Some(next_text) = page.next_token()
        && params.query.count > 0
    {
        let next_query =
            encode_pairs(link_pairs().chain(std::iter::once(("_cursor", next_text.as_str()))));
        links.push(link("next", with_query(self_url, &next_query)));
    }
    bundle.insert("link".into(), Value::Array(links));
    let included = if params.includes.is_empty() && params.revincludes.is_empty() {
        Vec::new()
    } else {
        collect_included(
            session,
            &page.resources,
            &params.includes,
            &params.revincludes,
        )?
    };
    let mut entries: Vec<Value> = page
        .resources
        .into_iter()
        .filter_map(|mut v| {
            let body = v.body.take()?;
            let resource = match &params.elements {
                Some(elements) => subset_elements(&body, elements),
                None => body,
            };
            Some(search_entry(fhir_base, &v, resource))
        })
        .collect();
    entries.extend(included.into_iter().filter_map(|mut v| {
        let body = v.body.take()?;
        Some(json!({
            "fullUrl": full_url(fhir_base, &v.resource_type, &v.id),
            "resource": body,
            "search": { "mode": "include" },
        }))
    }));
    if !params.ignored.is_empty() {
        let outcome = operation_outcome(&[Issue {
            severity: Severity::Warning,
            code: "not-supported",
            diagnostics: format!(
                "ignored unknown or unsupported parameters: {}",
                params.ignored.join(", ")
            ),
            expression: Vec::new(),
        }]);
        entries.push(json!({ "resource": outcome, "search": { "mode": "outcome" } }));
    }
    // `_explain=true`: the planner's choice, for whoever tunes a slow query.
    if let Some(plan) = &page.plan {
        let outcome = operation_outcome(&[Issue {
            severity: Severity::Information,
            code: "informational",
            diagnostics: format!("plan: {plan}"),
            expression: Vec::new(),
        }]);
        entries.push(json!({ "resource": outcome, "search": { "mode": "outcome" } }));
    }
    if !entries.is_empty() {
        bundle.insert("entry".into(), Value::Array(entries));
    }
    Ok(Value::Object(bundle))
}

/// `_elements`: keeps the mandatory elements and the listed top-level ones, and marks the
/// resource as SUBSETTED.
pub fn subset_elements(resource: &Value, elements: &[String]) -> Value {
    let Some(obj) = resource.as_object() else {
        return resource.clone();
    };
    let mut out = serde_json::Map::new();
    for (key, value) in obj {
        let base = key.strip_prefix('_').unwrap_or(key);
        if matches!(key.as_str(), "resourceType" | "id" | "meta")
            || elements.iter().any(|e| e == base)
        {
            out.insert(key.clone(), value.clone());
        }
    }
    let meta = out.entry("meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Some(tags) = tags.as_array_mut() {
            tags.push(json!({
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "SUBSETTED",
            }));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_references_to_this_server_become_local() {
        let pairs = vec![
            (
                "subject".to_string(),
                "http://h/fhir/t/Patient/1,Patient/2,http://other/Patient/3".to_string(),
            ),
            ("code".to_string(), "http://h/fhir/t/x".to_string()),
        ];
        let out = localize_reference_values(Some("Observation"), pairs, "http://h/fhir/t");
        assert_eq!(out[0].1, "Patient/1,Patient/2,http://other/Patient/3");
        assert_eq!(out[1].1, "http://h/fhir/t/x");
    }

    #[test]
    fn count_is_clamped_and_checked() {
        let sizes = PageSizes {
            default: 10,
            max: 100,
        };
        assert_eq!(sizes.parse_count("5").unwrap(), 5);
        assert_eq!(sizes.parse_count("5000").unwrap(), 100);
        assert_eq!(sizes.parse_count("abc").unwrap_err().status(), 400);
    }

    #[test]
    fn elements_subset_keeps_mandatory_elements() {
        let r = json!({"resourceType": "Patient", "id": "1", "name": [{"family": "X"}], "gender": "male", "_gender": {}});
        let s = subset_elements(&r, &["gender".to_string()]);
        assert!(s.get("name").is_none());
        assert_eq!(s["gender"], "male");
        assert!(s.get("_gender").is_some());
        assert_eq!(s["meta"]["tag"][0]["code"], "SUBSETTED");
    }
}
