//! Search: parameters → store query, and the `searchset` Bundle.

use std::borrow::Cow;

use medicus_fhir::SummaryMode;
use medicus_store::api::{ReadSession, ResourceVersion};
use medicus_store::index::reference_parts;
use medicus_store::search::{SearchQuery, SearchResolver};
use serde_json::{Value, json};

use super::history::with_query;
use super::include::{IncludeSpec, MAX_INCLUDED, collect_included, parse_include};
use crate::fhir::bundle::{included_entry, link, new_bundle, search_entry};
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
        self.parse_count_capped(value).map(|(n, _)| n)
    }

    /// `_count` clamped to the maximum, and whether it had to be clamped.
    pub fn parse_count_capped(&self, value: &str) -> Result<(usize, bool), FhirError> {
        value
            .trim()
            .parse::<usize>()
            .map(|n| (n.min(self.max), n > self.max))
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
    "_list",
];

/// At most this many resources of a `_list` restrict a search (they become one `_id` criterion).
pub const MAX_LIST_MEMBERS: usize = 10_000;

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
    /// `_summary=true|text|data`: the view of every returned resource.
    pub summary: Option<SummaryMode>,
    pub includes: Vec<IncludeSpec>,
    pub revincludes: Vec<IncludeSpec>,
    /// `_list`: only the resources this List (of the same tenant) has in `entry.item`.
    pub list: Option<String>,
    /// `_count` asked for more than the maximum page size: the count asked for.
    pub count_capped: Option<String>,
    /// The configured maximum page size (for the note when `_count` is capped).
    pub max_count: usize,
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

/// What a search may refer to beyond its own parameters, and its limits.
pub struct ParseOptions<'a> {
    /// The ValueSets that `:in`/`:not-in` name (see [`value_set_urls`]).
    pub value_sets: &'a StoredValueSets,
    pub max_chain_depth: usize,
}

/// ValueSets read from the tenant's store before parsing, by canonical URL (`url` or `url|version`).
#[derive(Debug, Default)]
pub struct StoredValueSets(pub std::collections::HashMap<String, Value>);

impl SearchResolver for StoredValueSets {
    fn value_set(&self, url: &str) -> Result<Option<Value>, medicus_store::StoreError> {
        Ok(self.0.get(url).cloned())
    }
}

/// The ValueSet URLs that `:in`/`:not-in` parameters (also inside chains) name.
pub fn value_set_urls(pairs: &[(String, String)]) -> Vec<String> {
    let mut urls: Vec<String> = pairs
        .iter()
        .filter(|(n, _)| n.ends_with(":in") || n.ends_with(":not-in"))
        .flat_map(|(_, v)| v.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|u| !u.is_empty())
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

/// Reads the named ValueSets (`url` or `url|version`) from the session; unknown ones are left
/// out, and the parser reports them.
pub fn read_value_sets(
    session: &mut dyn ReadSession,
    urls: &[String],
) -> Result<StoredValueSets, FhirError> {
    let mut found = StoredValueSets::default();
    for canonical in urls {
        let mut pairs = Vec::new();
        match canonical.split_once('|') {
            Some((url, version)) => {
                pairs.push(("url".to_owned(), url.to_owned()));
                pairs.push(("version".to_owned(), version.to_owned()));
            }
            None => pairs.push(("url".to_owned(), canonical.clone())),
        }
        let mut q =
            medicus_store::search::parse_search(medicus_fhir::r4(), Some("ValueSet"), &pairs)?;
        q.count = 1;
        q.total = false;
        let page = session.search(Some("ValueSet"), &q)?;
        if let Some(body) = page.resources.into_iter().next().and_then(|r| r.body) {
            found.0.insert(canonical.clone(), body);
        }
    }
    Ok(found)
}

pub fn parse_search_params(
    resource_type: Option<&str>,
    pairs: &[(String, String)],
    sizes: PageSizes,
    handling: Handling,
) -> Result<SearchParams, FhirError> {
    let none = StoredValueSets::default();
    parse_search_params_with(
        resource_type,
        pairs,
        sizes,
        handling,
        &ParseOptions {
            value_sets: &none,
            max_chain_depth: medicus_store::search::DEFAULT_MAX_CHAIN_DEPTH,
        },
    )
}

pub fn parse_search_params_with(
    resource_type: Option<&str>,
    pairs: &[(String, String)],
    sizes: PageSizes,
    handling: Handling,
    options: &ParseOptions<'_>,
) -> Result<SearchParams, FhirError> {
    let criteria: Vec<(String, String)> = pairs
        .iter()
        .filter(|(n, _)| !HANDLED_HERE.contains(&n.split(':').next().unwrap_or("")))
        .cloned()
        .collect();
    let mut query = medicus_store::search::parse_search_opts(
        medicus_fhir::r4(),
        resource_type,
        &criteria,
        options.value_sets,
        options.max_chain_depth,
    )?;
    let mut count = sizes.default;
    let mut count_capped = None;
    let mut summary_count = false;
    let mut summary = None;
    let mut elements = None;
    let mut list = None;
    let (mut includes, mut revincludes) = (Vec::new(), Vec::new());
    // Positions in `pairs` of what this layer ignored (the store reports names only).
    let mut ignored_here: Vec<usize> = Vec::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        let (code, modifier) = match name.split_once(':') {
            Some((c, m)) => (c, Some(m)),
            None => (name.as_str(), None),
        };
        match code {
            "_include" | "_revinclude" => match parse_include(modifier, value) {
                Some(spec) if code == "_include" => includes.push(spec),
                Some(spec) => revincludes.push(spec),
                None => ignored_here.push(i),
            },
            "_count" => {
                let (n, capped) = sizes.parse_count_capped(value)?;
                count = n;
                count_capped = capped.then(|| value.trim().to_string());
            }
            "_cursor" => query
                .set_cursor(value)
                .map_err(|_| FhirError::bad_request("invalid _cursor"))?,
            "_summary" => match value.as_str() {
                "count" => summary_count = true,
                "false" => summary = None,
                other => match SummaryMode::parse(other) {
                    Some(mode) => summary = Some(mode),
                    None => ignored_here.push(i),
                },
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
            // A List id; `$current-allergies` and the other functional lists are not supported,
            // and without a type the List's items could not become an `_id` criterion.
            "_list" if resource_type.is_some() && !value.is_empty() && !value.starts_with('$') => {
                list = Some(value.clone());
            }
            "_list" => ignored_here.push(i),
            _ => {}
        }
    }
    let mut ignored = query.ignored.clone();
    for &i in &ignored_here {
        if !ignored.contains(&pairs[i].0) {
            ignored.push(pairs[i].0.clone());
        }
    }
    if handling == Handling::Strict && !ignored.is_empty() {
        return Err(FhirError::UnsupportedParameters(ignored));
    }
    query.count = if summary_count { 0 } else { count };
    if summary_count {
        query.total = true;
    }
    // The links repeat what was applied: not the paging token, rendering options or ignored
    // parameters (the store reports those by their name as given, modifier included), and a
    // capped `_count` as the count that was used.
    let link_params = pairs
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| !matches!(n.as_str(), "_cursor" | "_format" | "_pretty"))
        .filter(|(i, (n, _))| !ignored_here.contains(i) && !query.ignored.contains(n))
        .map(|(_, (n, v))| {
            if n == "_count" && count_capped.is_some() {
                (n.clone(), count.to_string())
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect();
    Ok(SearchParams {
        query,
        link_params,
        ignored,
        elements,
        summary,
        includes,
        revincludes,
        list,
        count_capped,
        max_count: sizes.max,
    })
}

/// The ids of the resources of `resource_type` that List `list_id` refers to in `entry.item`
/// (local references, or absolute ones on this server's base); `None` when there is no such
/// List. Deleted and `entry.deleted` items do not count.
pub fn list_members(
    session: &mut dyn ReadSession,
    list_id: &str,
    resource_type: &str,
    fhir_base: &str,
) -> Result<Option<Vec<String>>, FhirError> {
    if !super::resource::is_valid_id(list_id) {
        return Ok(None);
    }
    let Some(body) = session.read("List", list_id)?.and_then(|v| v.body) else {
        return Ok(None);
    };
    let prefix = format!("{fhir_base}/");
    let mut ids: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let entries = body.get("entry").and_then(Value::as_array);
    for entry in entries.into_iter().flatten() {
        if entry.get("deleted").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let Some(reference) = entry.pointer("/item/reference").and_then(Value::as_str) else {
            continue;
        };
        let reference = reference.strip_prefix(&prefix).unwrap_or(reference);
        if let Some((Some(ty), id)) = reference_parts(reference)
            && ty == resource_type
            && seen.insert(id)
        {
            ids.push(id.to_string());
        }
    }
    if ids.len() > MAX_LIST_MEMBERS {
        return Err(FhirError::bad_request(format!(
            "List/{list_id} has more than {MAX_LIST_MEMBERS} {resource_type} items; _list cannot use it"
        )));
    }
    Ok(Some(ids))
}

/// One resource as the result parameters ask for it: the `_summary` view, then `_elements`.
pub fn result_view(
    body: Value,
    summary: Option<SummaryMode>,
    elements: Option<&[String]>,
) -> Value {
    let body = match summary {
        Some(mode) => mark_subsetted(medicus_fhir::r4().summarize(&body, mode)),
        None => body,
    };
    match elements {
        Some(elements) => subset_elements(&body, elements),
        None => body,
    }
}

/// Notes about how the request was applied: ignored parameters, a capped `_count`.
pub fn request_notes(params: &SearchParams) -> Vec<Issue> {
    let mut notes = Vec::new();
    if !params.ignored.is_empty() {
        notes.push(Issue {
            severity: Severity::Warning,
            code: "not-supported",
            diagnostics: format!(
                "ignored unknown or unsupported parameters: {}",
                params.ignored.join(", ")
            ),
            expression: Vec::new(),
        });
    }
    if let Some(asked) = &params.count_capped {
        notes.push(Issue::information(
            "informational",
            format!(
                "_count={asked} is more than the maximum page size; pages have at most {} entries",
                params.max_count
            ),
        ));
    }
    notes
}

/// The note for included resources that were left out.
pub fn truncated_note() -> Issue {
    Issue {
        severity: Severity::Warning,
        code: "incomplete",
        diagnostics: format!(
            "included resources are incomplete: at most {MAX_INCLUDED} per page are returned"
        ),
        expression: Vec::new(),
    }
}

/// A `search.mode = outcome` entry holding `issues`, if there are any.
pub fn outcome_entry(issues: &[Issue]) -> Option<Value> {
    (!issues.is_empty())
        .then(|| json!({ "resource": operation_outcome(issues), "search": { "mode": "outcome" } }))
}

/// The match and include entries of a page, rendered as the result parameters ask.
pub fn page_entries(
    fhir_base: &str,
    params: &SearchParams,
    matches: Vec<ResourceVersion>,
    included: Vec<ResourceVersion>,
) -> Vec<Value> {
    let mut entries: Vec<Value> = matches
        .into_iter()
        .filter_map(|mut v| {
            let body = v.body.take()?;
            let resource = result_view(body, params.summary, params.elements.as_deref());
            Some(search_entry(fhir_base, &v, resource))
        })
        .collect();
    // `_elements` names elements of the matches; included resources get the summary view only.
    entries.extend(included.into_iter().filter_map(|mut v| {
        let body = v.body.take()?;
        Some(included_entry(
            fhir_base,
            &v,
            result_view(body, params.summary, None),
        ))
    }));
    entries
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
    // `_list`: the List's items of this type become an `_id` criterion; no List or no such item
    // means nothing matches.
    let mut query = Cow::Borrowed(&params.query);
    let mut nothing_matches = false;
    if let (Some(list_id), Some(rt)) = (&params.list, resource_type) {
        match list_members(session, list_id, rt, fhir_base)? {
            Some(ids) if !ids.is_empty() => {
                let id_query = medicus_store::search::parse_search(
                    medicus_fhir::r4(),
                    Some(rt),
                    &[("_id".to_string(), ids.join(","))],
                )?;
                query.to_mut().criteria.extend(id_query.criteria);
            }
            _ => nothing_matches = true,
        }
    }
    let page = if nothing_matches {
        None
    } else {
        Some(session.search(resource_type, &query)?)
    };
    let mut bundle = new_bundle("searchset");
    let total = match &page {
        Some(page) => page.total,
        None => query.total.then_some(0),
    };
    if let Some(total) = total {
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
    if let Some(next_text) = page.as_ref().and_then(|p| p.next_token())
        && params.query.count > 0
    {
        let next_query =
            encode_pairs(link_pairs().chain(std::iter::once(("_cursor", next_text.as_str()))));
        links.push(link("next", with_query(self_url, &next_query)));
    }
    bundle.insert("link".into(), Value::Array(links));
    let (resources, plan) = match page {
        Some(page) => (page.resources, page.plan),
        None => (Vec::new(), None),
    };
    let mut notes = request_notes(params);
    let included = if params.includes.is_empty() && params.revincludes.is_empty() {
        Vec::new()
    } else {
        let found = collect_included(session, &resources, &params.includes, &params.revincludes)?;
        if found.truncated {
            notes.push(truncated_note());
        }
        found.resources
    };
    let mut entries = page_entries(fhir_base, params, resources, included);
    entries.extend(outcome_entry(&notes));
    // `_explain=true`: the planner's choice, for whoever tunes a slow query.
    if let Some(plan) = &plan {
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

const SUBSETTED: &str = "SUBSETTED";
const OBSERVATION_VALUE: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// Tags a resource as SUBSETTED (`meta.tag`), once.
pub fn mark_subsetted(mut resource: Value) -> Value {
    let Some(obj) = resource.as_object_mut() else {
        return resource;
    };
    let meta = obj.entry("meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Some(tags) = tags.as_array_mut()
            && !tags
                .iter()
                .any(|t| t["system"] == OBSERVATION_VALUE && t["code"] == SUBSETTED)
        {
            tags.push(json!({ "system": OBSERVATION_VALUE, "code": SUBSETTED }));
        }
    }
    resource
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
    mark_subsetted(Value::Object(out))
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

    #[test]
    fn capped_count_is_reported_and_linked_as_applied() {
        let sizes = PageSizes {
            default: 10,
            max: 100,
        };
        assert_eq!(sizes.parse_count_capped("100").unwrap(), (100, false));
        assert_eq!(sizes.parse_count_capped("101").unwrap(), (100, true));
        let pairs = vec![
            ("_count".to_string(), "5000".to_string()),
            ("family".to_string(), "x".to_string()),
        ];
        let p = parse_search_params(Some("Patient"), &pairs, sizes, Handling::Lenient).unwrap();
        assert_eq!(p.query.count, 100);
        assert_eq!(p.count_capped.as_deref(), Some("5000"));
        assert_eq!(
            p.link_params,
            [
                ("_count".to_string(), "100".to_string()),
                ("family".to_string(), "x".to_string())
            ]
        );
        let notes = request_notes(&p);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].severity, Severity::Information);
        assert!(
            notes[0].diagnostics.contains("5000"),
            "{}",
            notes[0].diagnostics
        );
    }

    #[test]
    fn ignored_values_leave_the_links_but_valid_repeats_stay() {
        let sizes = PageSizes {
            default: 10,
            max: 100,
        };
        let pairs: Vec<(String, String)> = [
            ("_include", "Observation:nope"),
            ("_include", "Observation:subject"),
            ("_summary", "bogus"),
            ("bogus", "1"),
            ("_list", "$current-allergies"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        let p = parse_search_params(Some("Observation"), &pairs, sizes, Handling::Lenient).unwrap();
        assert_eq!(
            p.link_params,
            [("_include".to_string(), "Observation:subject".to_string())]
        );
        assert_eq!(p.ignored, ["bogus", "_include", "_summary", "_list"]);
        let err =
            parse_search_params(Some("Observation"), &pairs, sizes, Handling::Strict).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.issues().len(), 4);
    }

    #[test]
    fn summary_modes_and_views() {
        let sizes = PageSizes {
            default: 10,
            max: 100,
        };
        let pairs = vec![("_summary".to_string(), "true".to_string())];
        let p = parse_search_params(Some("Patient"), &pairs, sizes, Handling::Strict).unwrap();
        assert_eq!(p.summary, Some(SummaryMode::True));
        let r = json!({"resourceType": "Patient", "id": "1", "name": [{"family": "X"}],
                       "photo": [{"data": "AAAA"}], "meta": {"tag": [{"code": "t"}]}});
        let v = result_view(r.clone(), Some(SummaryMode::True), None);
        assert!(v.get("photo").is_none() && v.get("name").is_some());
        assert_eq!(v["meta"]["tag"][1]["code"], "SUBSETTED");
        // Both views: the intersection, tagged once.
        let v = result_view(r, Some(SummaryMode::True), Some(&["photo".to_string()]));
        assert!(v.get("photo").is_none() && v.get("name").is_none());
        let subsetted = v["meta"]["tag"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["code"] == "SUBSETTED")
            .count();
        assert_eq!(subsetted, 1);
    }
}
