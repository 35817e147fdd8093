//! Code-date rows: each date of a resource once per distinct code of its `code` parameter.
//!
//! "The latest results of this test" (`Observation?code=…&_sort=-date`) is the most common sorted
//! search. Walking the date index newest-first and checking the code per entry reads every newer
//! entry of other codes first: with one frequent code among many, or a batch of newer results of
//! other tests, that is tens of thousands of rows before the first match. These rows are
//! clustered `(date param, code, date, resource)`, so the walk reads only the code's own dates.
//! They cost one row per (code, date) pair of a resource, and only types with a `code` token
//! parameter have them.

use medicus_fhir::{Definitions, SearchParamType};

use super::IndexEntry;
use super::keys::param_key;

/// The parameter whose codes the rows are keyed by.
pub const CODE_PARAM: &str = "code";

/// Appends the code-date rows of the entries already extracted for a resource of `resource_type`.
pub(crate) fn add_code_dates(defs: &Definitions, resource_type: &str, out: &mut Vec<IndexEntry>) {
    let Some(code_param) = defs
        .search_param(resource_type, CODE_PARAM)
        .filter(|p| p.kind == SearchParamType::Token)
    else {
        return;
    };
    let code_key = param_key(resource_type, code_param.code);
    let mut codes: Vec<i64> = out
        .iter()
        .filter_map(|e| match e {
            IndexEntry::Token { param, code, .. } if *param == code_key => Some(*code),
            _ => None,
        })
        .collect();
    if codes.is_empty() {
        return;
    }
    codes.sort_unstable();
    codes.dedup();
    let dates: Vec<(i64, i64, i64)> = out
        .iter()
        .filter_map(|e| match e {
            IndexEntry::Date { param, lo, hi } => Some((*param, *lo, *hi)),
            _ => None,
        })
        .collect();
    for &code in &codes {
        for &(param, lo, hi) in &dates {
            out.push(IndexEntry::CodeDate {
                param,
                code,
                lo,
                hi,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::index::keys::{hash, param_key};
    use crate::index::{IndexEntry, extract_entries};

    fn code_dates(entries: &[IndexEntry]) -> Vec<(i64, i64)> {
        entries
            .iter()
            .filter_map(|e| match e {
                IndexEntry::CodeDate { param, code, .. } => Some((*param, *code)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn one_row_per_code_and_date() {
        let obs = json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [
                {"system": "http://loinc.org", "code": "718-7"},
                {"system": "urn:other", "code": "718-7"},
                {"system": "urn:local", "code": "HB"}]},
            "effectiveDateTime": "2024-05-01T10:00:00Z"
        });
        let rows = code_dates(&extract_entries(medicus_fhir::r4(), "Observation", &obs));
        let date = param_key("Observation", "date");
        // The same code in two systems is one row: the walk checks the system per candidate.
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows.contains(&(date, hash("718-7"))));
        assert!(rows.contains(&(date, hash("HB"))));
    }

    #[test]
    fn every_date_parameter_and_none_without_code() {
        let condition = json!({
            "resourceType": "Condition",
            "code": {"coding": [{"system": "http://fhir.de/CodeSystem/bfarm/icd-10-gm", "code": "E11.90"}]},
            "onsetDateTime": "2020-01-01", "recordedDate": "2020-02-01"
        });
        let rows = code_dates(&extract_entries(
            medicus_fhir::r4(),
            "Condition",
            &condition,
        ));
        assert!(rows.contains(&(param_key("Condition", "onset-date"), hash("E11.90"))));
        assert!(rows.contains(&(param_key("Condition", "recorded-date"), hash("E11.90"))));
        let patient = json!({"resourceType": "Patient", "birthDate": "1970-01-01"});
        assert!(code_dates(&extract_entries(medicus_fhir::r4(), "Patient", &patient)).is_empty());
        let no_date = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}});
        assert!(
            code_dates(&extract_entries(
                medicus_fhir::r4(),
                "Observation",
                &no_date
            ))
            .is_empty()
        );
    }
}
