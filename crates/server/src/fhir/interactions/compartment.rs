//! The Patient compartment: compartment search (`Patient/{id}/{type}`, `Patient/{id}/*`) and the
//! pager over several resource types that `*` and `$everything` share.
//!
//! A compartment is defined by the references of its members (the R4 CompartmentDefinition's
//! parameters), not by the Patient resource: searching the compartment of an unknown or deleted
//! patient is a normal search that finds what still refers to it, usually nothing (200 with an
//! empty searchset), in the request's tenant only.

use medicus_store::api::{ReadSession, ResourceVersion};
use medicus_store::search::{CompartmentFilter, SearchQuery};
use serde_json::{Value, json};

use super::history::with_query;
use super::include::{Included, collect_included};
use super::search::{
    SearchParams, outcome_entry, page_entries, request_notes, search, truncated_note,
};
use crate::fhir::bundle::{link, new_bundle};
use crate::fhir::error::FhirError;
use crate::fhir::query::encode_pairs;

/// The compartment types R4 defines; only the Patient compartment is implemented.
const R4_COMPARTMENTS: &[&str] = &[
    "Patient",
    "Encounter",
    "RelatedPerson",
    "Practitioner",
    "Device",
];

/// Accepts the Patient compartment; other R4 compartments are a 400, other types a 404.
pub fn ensure_patient_compartment(compartment: &str) -> Result<(), FhirError> {
    match compartment {
        "Patient" => Ok(()),
        c if R4_COMPARTMENTS.contains(&c) => Err(FhirError::bad_request(format!(
            "the {c} compartment is not supported; only Patient/[id]/[type] is"
        ))),
        c => Err(FhirError::UnsupportedType(c.to_string())),
    }
}

/// The types of the Patient compartment: Patient first, then the others by name.
pub fn patient_compartment_types() -> Vec<&'static str> {
    let defs = medicus_fhir::r4();
    std::iter::once("Patient")
        .chain(
            defs.resource_types()
                .iter()
                .copied()
                .filter(|t| *t != "Patient" && !defs.patient_compartment_params(t).is_empty()),
        )
        .collect()
}

/// Types outside the Patient compartment (Practitioner, Organization, Medication, …).
pub fn outside_patient_compartment(resource_type: &str) -> bool {
    resource_type != "Patient"
        && medicus_fhir::r4()
            .patient_compartment_params(resource_type)
            .is_empty()
}

/// One patient's compartment, or (`None`) every patient's.
pub fn patient_filter(patient: Option<&str>) -> CompartmentFilter {
    CompartmentFilter {
        patients: patient.map(|id| vec![id.to_string()]),
    }
}

/// `GET Patient/{id}/{type}`: a search on `type` restricted to the patient's compartment.
pub fn compartment_search(
    session: &mut dyn ReadSession,
    patient: &str,
    resource_type: &str,
    params: &SearchParams,
    fhir_base: &str,
) -> Result<Value, FhirError> {
    let mut params = params.clone();
    params.query.compartment = Some(patient_filter(Some(patient)));
    let self_url = format!("{fhir_base}/Patient/{patient}/{resource_type}");
    search(session, Some(resource_type), &params, fhir_base, &self_url)
}

/// `GET Patient/{id}/*`: every type of the compartment, one after the other. `params` were
/// parsed without a type (only common parameters select); `cursor` is this pager's token.
pub fn compartment_search_all(
    session: &mut dyn ReadSession,
    patient: &str,
    params: &SearchParams,
    cursor: Option<&str>,
    fhir_base: &str,
) -> Result<Value, FhirError> {
    let queries: Vec<TypeQuery> = patient_compartment_types()
        .into_iter()
        .map(|t| {
            let mut query = params.query.clone();
            query.compartment = Some(patient_filter(Some(patient)));
            TypeQuery {
                resource_type: t,
                query,
            }
        })
        .collect();
    let self_url = format!("{fhir_base}/Patient/{patient}/*");
    types_searchset(
        session,
        &queries,
        params,
        cursor,
        fhir_base,
        &self_url,
        |s, page| collect_included(s, page, &params.includes, &params.revincludes),
    )
}

/// One query of a search over several types.
#[derive(Debug, Clone)]
pub struct TypeQuery {
    pub resource_type: &'static str,
    pub query: SearchQuery,
}

/// Where a page over several types starts: in `queries[index]`, after the store's cursor `inner`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypesCursor {
    pub index: usize,
    pub inner: Option<String>,
}

impl TypesCursor {
    /// `Type` (the start of that type) or `Type:token` (after the store's paging token).
    pub fn parse(token: &str, queries: &[TypeQuery]) -> Result<TypesCursor, FhirError> {
        let (ty, inner) = match token.split_once(':') {
            Some((ty, inner)) => (ty, Some(inner.to_string())),
            None => (token, None),
        };
        let index = queries
            .iter()
            .position(|q| q.resource_type == ty)
            .ok_or_else(|| FhirError::bad_request("invalid _cursor"))?;
        Ok(TypesCursor { index, inner })
    }

    pub fn encode(&self, queries: &[TypeQuery]) -> String {
        let ty = queries.get(self.index).map_or("", |q| q.resource_type);
        match &self.inner {
            Some(inner) => format!("{ty}:{inner}"),
            None => ty.to_string(),
        }
    }
}

/// A page of a search over several types.
#[derive(Debug)]
pub struct TypesPage {
    pub resources: Vec<ResourceVersion>,
    pub next: Option<TypesCursor>,
}

/// Up to `count` (> 0) resources from `from` on: the rest of one type, then the next types.
/// Each type is paged by the store's own keyset cursor, so pages never drift.
pub fn page_over_types(
    session: &mut dyn ReadSession,
    queries: &[TypeQuery],
    from: &TypesCursor,
    count: usize,
) -> Result<TypesPage, FhirError> {
    let mut resources = Vec::new();
    let mut index = from.index;
    let mut inner = from.inner.clone();
    while let Some(tq) = queries.get(index) {
        let mut query = tq.query.clone();
        query.count = count - resources.len();
        query.total = false;
        if let Some(token) = &inner {
            query
                .set_cursor(token)
                .map_err(|_| FhirError::bad_request("invalid _cursor"))?;
        }
        let page = session.search(Some(tq.resource_type), &query)?;
        let more = page.next_token();
        resources.extend(page.resources);
        if let Some(next) = more {
            return Ok(TypesPage {
                resources,
                next: Some(TypesCursor {
                    index,
                    inner: Some(next),
                }),
            });
        }
        index += 1;
        inner = None;
        if resources.len() >= count {
            // Full at a type boundary: the next page starts at the next type with anything in
            // it, so that no `next` link leads to an empty page.
            let next = first_nonempty(session, queries, index)?;
            return Ok(TypesPage {
                resources,
                next: next.map(|index| TypesCursor { index, inner: None }),
            });
        }
    }
    Ok(TypesPage {
        resources,
        next: None,
    })
}

fn first_nonempty(
    session: &mut dyn ReadSession,
    queries: &[TypeQuery],
    from: usize,
) -> Result<Option<usize>, FhirError> {
    for (index, tq) in queries.iter().enumerate().skip(from) {
        let mut query = tq.query.clone();
        query.count = 1;
        query.total = false;
        if !session
            .search(Some(tq.resource_type), &query)?
            .resources
            .is_empty()
        {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// The number of matches over all types.
pub fn total_over_types(
    session: &mut dyn ReadSession,
    queries: &[TypeQuery],
) -> Result<u64, FhirError> {
    let mut total = 0;
    for tq in queries {
        let mut query = tq.query.clone();
        query.count = 0;
        query.total = true;
        total += session
            .search(Some(tq.resource_type), &query)?
            .total
            .unwrap_or(0);
    }
    Ok(total)
}

/// The `searchset` of a search over several types. `params.query` decides the page size
/// (`count`) and whether to count (`total`); `extra` finds the resources that go with a page
/// (`search.mode = include`).
pub fn types_searchset(
    session: &mut dyn ReadSession,
    queries: &[TypeQuery],
    params: &SearchParams,
    cursor: Option<&str>,
    fhir_base: &str,
    self_url: &str,
    extra: impl FnOnce(&mut dyn ReadSession, &[ResourceVersion]) -> Result<Included, FhirError>,
) -> Result<Value, FhirError> {
    let from = match cursor {
        Some(token) => TypesCursor::parse(token, queries)?,
        None => TypesCursor::default(),
    };
    let mut bundle = new_bundle("searchset");
    if params.query.total {
        bundle.insert("total".into(), json!(total_over_types(session, queries)?));
    }
    let page = if params.query.count > 0 {
        page_over_types(session, queries, &from, params.query.count)?
    } else {
        TypesPage {
            resources: Vec::new(),
            next: None,
        }
    };
    let link_pairs = || {
        params
            .link_params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
    };
    let self_query = encode_pairs(link_pairs().chain(cursor.map(|c| ("_cursor", c))));
    let mut links = vec![link("self", with_query(self_url, &self_query))];
    if let Some(next) = &page.next {
        let token = next.encode(queries);
        let next_query =
            encode_pairs(link_pairs().chain(std::iter::once(("_cursor", token.as_str()))));
        links.push(link("next", with_query(self_url, &next_query)));
    }
    bundle.insert("link".into(), Value::Array(links));
    let mut notes = request_notes(params);
    let included = extra(session, &page.resources)?;
    if included.truncated {
        notes.push(truncated_note());
    }
    let mut entries = page_entries(fhir_base, params, page.resources, included.resources);
    entries.extend(outcome_entry(&notes));
    if !entries.is_empty() {
        bundle.insert("entry".into(), Value::Array(entries));
    }
    Ok(Value::Object(bundle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compartment_types_start_with_patient() {
        let types = patient_compartment_types();
        assert_eq!(types[0], "Patient");
        assert!(types.contains(&"Observation") && types.contains(&"Encounter"));
        assert!(!types.contains(&"Practitioner") && !types.contains(&"Organization"));
        assert_eq!(types.iter().filter(|t| **t == "Patient").count(), 1);
        assert!(outside_patient_compartment("Medication"));
        assert!(!outside_patient_compartment("Patient"));
        assert!(!outside_patient_compartment("Condition"));
    }

    #[test]
    fn compartments_other_than_patient_are_refused() {
        assert!(ensure_patient_compartment("Patient").is_ok());
        assert_eq!(
            ensure_patient_compartment("Encounter")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            ensure_patient_compartment("Nope").unwrap_err().status(),
            404
        );
    }

    #[test]
    fn cursors_name_the_type() {
        let queries: Vec<TypeQuery> = ["Patient", "Observation"]
            .into_iter()
            .map(|t| TypeQuery {
                resource_type: t,
                query: SearchQuery::default(),
            })
            .collect();
        let c = TypesCursor::parse("Observation:17", &queries).unwrap();
        assert_eq!(
            c,
            TypesCursor {
                index: 1,
                inner: Some("17".into())
            }
        );
        assert_eq!(c.encode(&queries), "Observation:17");
        assert_eq!(TypesCursor::parse("Patient", &queries).unwrap().index, 0);
        assert_eq!(
            TypesCursor::parse("Condition:1", &queries)
                .unwrap_err()
                .status(),
            400
        );
    }
}
