//! Resolving conditional criteria (`If-None-Exist`, `PUT Type?…`, `DELETE Type?…`, conditional
//! references) to the matching resources.

use medicus_store::api::{ReadSession, ResourceVersion};

use crate::fhir::error::FhirError;
use crate::fhir::query::parse_pairs;

/// How many resources matched a conditional request.
#[derive(Debug, Clone, PartialEq)]
pub enum Matches {
    None,
    One(ResourceVersion),
    Many,
}

/// Parameters that control paging or rendering and must not take part in a conditional match.
const NON_CRITERIA: &[&str] = &[
    "_count",
    "_cursor",
    "_format",
    "_pretty",
    "_summary",
    "_elements",
    "_sort",
    "_total",
];

/// Parses conditional criteria given as a query string, tolerating a leading `?` or `Type?`.
pub fn parse_criteria(text: &str) -> Vec<(String, String)> {
    let query = match text.split_once('?') {
        Some((_, q)) => q,
        None => text,
    };
    parse_pairs(query)
}

/// Runs the criteria and counts matches (at most two are fetched).
///
/// Criteria that match everything would make a conditional write hit an arbitrary resource, so
/// empty criteria and criteria with unknown parameters are rejected (400) instead of ignored.
pub fn find_matches(
    session: &mut dyn ReadSession,
    resource_type: &str,
    criteria: &[(String, String)],
) -> Result<Matches, FhirError> {
    let criteria: Vec<(String, String)> = criteria
        .iter()
        .filter(|(n, _)| !NON_CRITERIA.contains(&n.as_str()))
        .cloned()
        .collect();
    if criteria.is_empty() {
        return Err(FhirError::bad_request(
            "conditional request without search criteria",
        ));
    }
    let mut query =
        medicus_store::search::parse_search(medicus_fhir::r4(), Some(resource_type), &criteria)?;
    if !query.ignored.is_empty() {
        return Err(FhirError::bad_request(format!(
            "conditional request uses unknown search parameters: {}",
            query.ignored.join(", ")
        )));
    }
    if query.criteria.is_empty() {
        return Err(FhirError::bad_request(
            "conditional request without search criteria",
        ));
    }
    query.count = 2;
    query.cursor = None;
    query.total = false;
    let page = session.search(Some(resource_type), &query)?;
    let mut found = page.resources.into_iter();
    Ok(match (found.next(), found.next()) {
        (None, _) => Matches::None,
        (Some(one), None) if page.next_cursor.is_none() => Matches::One(one),
        _ => Matches::Many,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_forms() {
        let expected = vec![("identifier".to_string(), "sys|1".to_string())];
        assert_eq!(parse_criteria("identifier=sys|1"), expected);
        assert_eq!(parse_criteria("?identifier=sys|1"), expected);
        assert_eq!(parse_criteria("Patient?identifier=sys%7C1"), expected);
    }
}
