//! `Patient/{id}/$everything` and `Patient/$everything` (R4 OperationDefinition
//! Patient-everything): the patient(s), every resource in the Patient compartment, and the
//! resources those refer to outside the compartment (Practitioner, Organization, Location,
//! Medication, …).
//!
//! The compartment is paged type by type (Patient first) with keyset cursors, so a page costs
//! the same wherever it is and memory is bounded by the page size plus [`MAX_INCLUDED`]
//! referenced resources per page. Referenced resources are added to the page that refers to
//! them (`search.mode = include`); one referred to from several pages appears on each.
//!
//! Parameters: `_count`, `_since` (`meta.lastUpdated` on or after), `_type` (only these types,
//! for referenced resources too), `start`/`end` (care dates: applied to the types that have a
//! `date` search parameter; other types are not restricted), plus `_summary`, `_elements` and
//! `_total` (no total unless asked for: counting every type costs a query per type).

use std::collections::HashSet;

use medicus_store::api::{ReadSession, ResourceVersion};
use medicus_store::index::reference_parts;
use serde_json::Value;

use super::compartment::{
    TypeQuery, outside_patient_compartment, patient_compartment_types, patient_filter,
    types_searchset,
};
use super::include::{Included, MAX_INCLUDED};
use super::read::read;
use super::search::{PageSizes, SearchParams, parse_search_params};
use crate::fhir::error::FhirError;
use crate::fhir::headers::Handling;

/// Operation parameters handled here (the rest of the request is result parameters).
const OPERATION_PARAMS: &[&str] = &["_since", "_type", "start", "end"];
/// Result and paging parameters passed on to the search layer.
const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_summary",
    "_elements",
    "_format",
    "_pretty",
    "_total",
];

/// A parsed `$everything` request.
#[derive(Debug, Clone)]
pub struct EverythingParams {
    /// Page size, result views, notes and the links (operation parameters included).
    pub search: SearchParams,
    /// `_type`: only these resource types.
    pub types: Option<Vec<String>>,
    pub since: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub cursor: Option<String>,
}

/// An unencoded `+` of a time zone arrives as a space.
fn date_value(value: &str) -> String {
    value.trim().replace(' ', "+")
}

pub fn parse_everything_params(
    pairs: &[(String, String)],
    sizes: PageSizes,
    handling: Handling,
) -> Result<EverythingParams, FhirError> {
    let defs = medicus_fhir::r4();
    let (mut types, mut since, mut start, mut end, mut cursor) = (None, None, None, None, None);
    let mut operation_links = Vec::new();
    let mut passed_on = Vec::new();
    let mut ignored = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "_cursor" => cursor = Some(value.clone()),
            "_type" => {
                let list: &mut Vec<String> = types.get_or_insert_with(Vec::new);
                for ty in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if !defs.is_resource_type(ty) {
                        return Err(FhirError::bad_request(format!(
                            "_type: '{ty}' is not a resource type"
                        )));
                    }
                    list.push(ty.to_string());
                }
            }
            "_since" => since = Some(date_value(value)),
            "start" => start = Some(date_value(value)),
            "end" => end = Some(date_value(value)),
            n if RESULT_PARAMS.contains(&n) => passed_on.push((name.clone(), value.clone())),
            _ => {
                if !ignored.contains(name) {
                    ignored.push(name.clone());
                }
                continue;
            }
        }
        if OPERATION_PARAMS.contains(&name.as_str()) {
            let value = match name.as_str() {
                "_type" => value.clone(),
                _ => date_value(value),
            };
            operation_links.push((name.clone(), value));
        }
    }
    let mut search = parse_search_params(None, &passed_on, sizes, Handling::Lenient)?;
    for name in ignored {
        if !search.ignored.contains(&name) {
            search.ignored.push(name);
        }
    }
    if handling == Handling::Strict && !search.ignored.is_empty() {
        return Err(FhirError::UnsupportedParameters(search.ignored));
    }
    let asked_for_total =
        passed_on.iter().any(|(n, v)| n == "_total" && v != "none") || search.query.count == 0;
    search.query.total = asked_for_total;
    operation_links.append(&mut search.link_params);
    search.link_params = operation_links;
    Ok(EverythingParams {
        search,
        types,
        since,
        start,
        end,
        cursor,
    })
}

/// The parameters of a `POST` with a `Parameters` body, as name/value pairs.
pub fn parameters_to_pairs(body: &Value) -> Result<Vec<(String, String)>, FhirError> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(FhirError::bad_request(
            "the body of an operation must be a Parameters resource",
        ));
    }
    let mut pairs = Vec::new();
    for p in body
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        let value = p.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.starts_with("value"))
                .map(|(_, v)| v)
        });
        let text = match value {
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            _ => {
                return Err(FhirError::bad_request(format!(
                    "parameter '{name}' needs a primitive value"
                )));
            }
        };
        pairs.push((name.to_string(), text));
    }
    Ok(pairs)
}

/// One query per type: the compartment of `patient` (or of every patient), `_since`, and the
/// care-date range on the types that have a `date` parameter.
fn everything_queries(
    patient: Option<&str>,
    params: &EverythingParams,
) -> Result<Vec<TypeQuery>, FhirError> {
    let defs = medicus_fhir::r4();
    let mut queries = Vec::new();
    for ty in patient_compartment_types() {
        if params
            .types
            .as_ref()
            .is_some_and(|types| !types.iter().any(|t| t == ty))
        {
            continue;
        }
        let mut criteria = Vec::new();
        if let Some(since) = &params.since {
            criteria.push(("_lastUpdated".to_string(), format!("ge{since}")));
        }
        let has_care_date = ty != "Patient"
            && defs
                .search_param(ty, "date")
                .is_some_and(|p| p.kind == medicus_fhir::SearchParamType::Date);
        if has_care_date {
            if let Some(start) = &params.start {
                criteria.push(("date".to_string(), format!("ge{start}")));
            }
            if let Some(end) = &params.end {
                criteria.push(("date".to_string(), format!("le{end}")));
            }
        }
        let mut query = medicus_store::search::parse_search(defs, Some(ty), &criteria)?;
        query.compartment = Some(patient_filter(patient));
        queries.push(TypeQuery {
            resource_type: ty,
            query,
        });
    }
    Ok(queries)
}

/// Every `reference` string in a resource (of Reference elements at any depth).
fn references(resource: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    let mut stack = vec![resource];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(obj) => {
                if let Some(Value::String(r)) = obj.get("reference") {
                    out.push(r.as_str());
                }
                stack.extend(obj.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

/// The resources outside the compartment that `page` refers to (local references, or absolute
/// ones on this server's base), each once, at most [`MAX_INCLUDED`].
fn referenced_outside(
    session: &mut dyn ReadSession,
    page: &[ResourceVersion],
    types: Option<&[String]>,
    fhir_base: &str,
) -> Result<Included, FhirError> {
    let defs = medicus_fhir::r4();
    let prefix = format!("{fhir_base}/");
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut found = Included::default();
    for v in page {
        let Some(body) = &v.body else { continue };
        for reference in references(body) {
            let reference = reference.strip_prefix(&prefix).unwrap_or(reference);
            let Some((Some(ty), id)) = reference_parts(reference) else {
                continue;
            };
            if !defs.is_resource_type(ty)
                || !outside_patient_compartment(ty)
                || types.is_some_and(|types| !types.iter().any(|t| t == ty))
                || !seen.insert((ty.to_string(), id.to_string()))
            {
                continue;
            }
            if found.resources.len() >= MAX_INCLUDED {
                found.truncated = true;
                return Ok(found);
            }
            if let Some(r) = session.read(ty, id)?
                && !r.is_deleted()
            {
                found.resources.push(r);
            }
        }
    }
    Ok(found)
}

/// Runs `$everything` for `patient` (instance level: 404 when unknown, 410 when deleted) or for
/// every patient (`None`, type level). `self_url` is the operation's URL without the query.
pub fn everything(
    session: &mut dyn ReadSession,
    patient: Option<&str>,
    params: &EverythingParams,
    fhir_base: &str,
    self_url: &str,
) -> Result<Value, FhirError> {
    if let Some(id) = patient {
        read(session, "Patient", id)?;
    }
    let queries = everything_queries(patient, params)?;
    types_searchset(
        session,
        &queries,
        &params.search,
        params.cursor.as_deref(),
        fhir_base,
        self_url,
        |s, page| referenced_outside(s, page, params.types.as_deref(), fhir_base),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    const SIZES: PageSizes = PageSizes {
        default: 10,
        max: 100,
    };

    #[test]
    fn operation_parameters() {
        let p = parse_everything_params(
            &pairs(&[
                ("_type", "Observation,Practitioner"),
                ("_since", "2024-01-01T00:00:00 01:00"),
                ("_count", "500"),
                ("_cursor", "Observation:3"),
                ("bogus", "1"),
            ]),
            SIZES,
            Handling::Lenient,
        )
        .unwrap();
        assert_eq!(
            p.types.as_deref(),
            Some(&["Observation".to_string(), "Practitioner".to_string()][..])
        );
        assert_eq!(p.since.as_deref(), Some("2024-01-01T00:00:00+01:00"));
        assert_eq!(p.search.query.count, 100);
        assert!(!p.search.query.total, "no total unless asked for");
        assert_eq!(p.cursor.as_deref(), Some("Observation:3"));
        assert_eq!(p.search.ignored, ["bogus"]);
        assert_eq!(
            p.search.link_params,
            pairs(&[
                ("_type", "Observation,Practitioner"),
                ("_since", "2024-01-01T00:00:00+01:00"),
                ("_count", "100")
            ])
        );
        let strict = parse_everything_params(&pairs(&[("bogus", "1")]), SIZES, Handling::Strict);
        assert_eq!(strict.unwrap_err().status(), 400);
        let bad_type =
            parse_everything_params(&pairs(&[("_type", "Nope")]), SIZES, Handling::Lenient);
        assert_eq!(bad_type.unwrap_err().status(), 400);
        let total =
            parse_everything_params(&pairs(&[("_total", "accurate")]), SIZES, Handling::Strict);
        assert!(total.unwrap().search.query.total);
    }

    #[test]
    fn queries_per_type() {
        let p = parse_everything_params(
            &pairs(&[
                ("_type", "Patient,Observation,Account"),
                ("start", "2020"),
                ("end", "2021"),
            ]),
            SIZES,
            Handling::Strict,
        )
        .unwrap();
        let queries = everything_queries(Some("p1"), &p).unwrap();
        let types: Vec<&str> = queries.iter().map(|q| q.resource_type).collect();
        assert_eq!(types, ["Patient", "Account", "Observation"]);
        // Observation has `date`; Patient and Account are not restricted by care dates.
        assert_eq!(queries[0].query.criteria.len(), 0);
        assert_eq!(queries[1].query.criteria.len(), 0);
        assert_eq!(queries[2].query.criteria.len(), 2);
        assert!(
            queries
                .iter()
                .all(|q| q.query.compartment == Some(patient_filter(Some("p1"))))
        );
        let bad =
            parse_everything_params(&pairs(&[("start", "notadate")]), SIZES, Handling::Strict)
                .unwrap();
        assert_eq!(everything_queries(None, &bad).unwrap_err().status(), 400);
    }

    #[test]
    fn parameters_bodies() {
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "start", "valueDate": "2020-01-01"},
            {"name": "_count", "valueInteger": 5}
        ]});
        assert_eq!(
            parameters_to_pairs(&body).unwrap(),
            pairs(&[("start", "2020-01-01"), ("_count", "5")])
        );
        assert_eq!(
            parameters_to_pairs(&json!({"resourceType": "Patient"}))
                .unwrap_err()
                .status(),
            400
        );
        let no_value = json!({"resourceType": "Parameters", "parameter": [{"name": "x"}]});
        assert_eq!(parameters_to_pairs(&no_value).unwrap_err().status(), 400);
    }

    #[test]
    fn references_at_any_depth() {
        let r = json!({"resourceType": "Encounter",
            "participant": [{"individual": {"reference": "Practitioner/d"}}],
            "location": [{"location": {"reference": "Location/l"}}],
            "serviceProvider": {"reference": "Organization/o"}});
        let mut refs = references(&r);
        refs.sort();
        assert_eq!(refs, ["Location/l", "Organization/o", "Practitioner/d"]);
    }
}
