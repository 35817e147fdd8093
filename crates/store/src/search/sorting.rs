//! `_sort`: keys by parameter, `-` for descending.

use medicus_fhir::{Definitions, SearchParamType};

use super::criteria::SortKey;
use crate::error::StoreError;
use crate::index::keys::param_key;

/// Parses `_sort`; unknown parameters are returned separately (ignored under lenient handling).
pub(super) fn parse_sort(
    defs: &Definitions,
    resource_type: Option<&str>,
    value: &str,
) -> Result<(Vec<SortKey>, Vec<String>), StoreError> {
    let mut keys = Vec::new();
    let mut unknown = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (code, descending) = match part.strip_prefix('-') {
            Some(c) => (c, true),
            None => (part, false),
        };
        if keys.iter().any(|k: &SortKey| k.code == code) {
            continue;
        }
        let key = match (code, resource_type) {
            ("_id" | "_lastUpdated", _) => SortKey {
                code: code.to_owned(),
                kind: None,
                param: 0,
                descending,
            },
            (_, Some(rt)) => match defs.search_param(rt, code) {
                Some(p)
                    if !matches!(
                        p.kind,
                        SearchParamType::Composite | SearchParamType::Special
                    ) =>
                {
                    SortKey {
                        code: code.to_owned(),
                        kind: Some(p.kind),
                        param: param_key(rt, code),
                        descending,
                    }
                }
                Some(_) => {
                    return Err(StoreError::InvalidSearch(format!(
                        "_sort: '{code}' is a composite or special parameter, which has no order"
                    )));
                }
                None => {
                    unknown.push(format!("_sort={part}"));
                    continue;
                }
            },
            (_, None) => {
                unknown.push(format!("_sort={part}"));
                continue;
            }
        };
        keys.push(key);
    }
    Ok((keys, unknown))
}
