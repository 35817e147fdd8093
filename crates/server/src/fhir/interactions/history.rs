//! History: parameters and the history Bundle.

use medicus_store::api::{HistoryCursor, HistoryPage, HistoryQuery, HistoryScope, ReadSession};
use serde_json::{Value, json};

use super::search::PageSizes;
use crate::fhir::bundle::{history_entry, link, new_bundle};
use crate::fhir::error::FhirError;
use crate::fhir::query::encode_pairs;
use crate::fhir::time_fmt::parse_instant_us;

/// Parsed history parameters (`_since`, `_count`, our paging `_cursor`; `_at` and `_list` are
/// not supported and ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryParams {
    pub query: HistoryQuery,
    /// The parameters to repeat in paging links (without `_cursor`).
    pub link_params: Vec<(String, String)>,
}

/// A history cursor is written as `tx.key`.
pub fn format_cursor(c: HistoryCursor) -> String {
    format!("{}.{}", c.tx, c.key)
}

pub fn parse_cursor(text: &str) -> Option<HistoryCursor> {
    let (tx, key) = text.split_once('.')?;
    Some(HistoryCursor {
        tx: tx.parse().ok()?,
        key: key.parse().ok()?,
    })
}

pub fn parse_history_params(
    pairs: &[(String, String)],
    sizes: PageSizes,
) -> Result<HistoryParams, FhirError> {
    let mut query = HistoryQuery {
        count: sizes.default,
        ..HistoryQuery::default()
    };
    let mut link_params = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "_since" => {
                query.since_us = Some(parse_instant_us(value).ok_or_else(|| {
                    FhirError::bad_request("_since must be an instant like 2024-01-01T00:00:00Z")
                })?);
                link_params.push((name.clone(), value.clone()));
            }
            "_count" => {
                query.count = sizes.parse_count(value)?;
                link_params.push((name.clone(), value.clone()));
            }
            "_cursor" => {
                query.cursor = Some(
                    parse_cursor(value).ok_or_else(|| FhirError::bad_request("invalid _cursor"))?,
                );
            }
            _ => {}
        }
    }
    Ok(HistoryParams { query, link_params })
}

/// Runs a history request and renders the `history` Bundle. `self_url` is the request URL
/// without query (e.g. `{base}/Patient/1/_history`).
pub fn history(
    session: &mut dyn ReadSession,
    scope: HistoryScope<'_>,
    params: &HistoryParams,
    fhir_base: &str,
    self_url: &str,
) -> Result<Value, FhirError> {
    let page = session.history(scope, &params.query)?;
    Ok(history_bundle(page, params, fhir_base, self_url))
}

pub fn history_bundle(
    page: HistoryPage,
    params: &HistoryParams,
    fhir_base: &str,
    self_url: &str,
) -> Value {
    let mut bundle = new_bundle("history");
    bundle.insert("total".into(), json!(page.total));
    let mut self_params: Vec<(&str, &str)> = params
        .link_params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let cursor_text = params.query.cursor.map(format_cursor);
    if let Some(c) = &cursor_text {
        self_params.push(("_cursor", c));
    }
    let mut links = vec![link(
        "self",
        with_query(self_url, &encode_pairs(self_params)),
    )];
    if let Some(next) = page.next {
        let next_text = format_cursor(next);
        let mut next_params: Vec<(&str, &str)> = params
            .link_params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        next_params.push(("_cursor", &next_text));
        links.push(link(
            "next",
            with_query(self_url, &encode_pairs(next_params)),
        ));
    }
    bundle.insert("link".into(), Value::Array(links));
    bundle.insert(
        "entry".into(),
        Value::Array(
            page.entries
                .into_iter()
                .map(|v| history_entry(fhir_base, v))
                .collect(),
        ),
    );
    Value::Object(bundle)
}

pub(crate) fn with_query(url: &str, query: &str) -> String {
    if query.is_empty() {
        url.to_string()
    } else {
        format!("{url}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        crate::fhir::query::parse_pairs(q)
    }

    #[test]
    fn history_params() {
        let sizes = PageSizes {
            default: 50,
            max: 100,
        };
        let p = parse_history_params(
            &pairs("_since=2024-01-01T00:00:00Z&_count=500&_cursor=9.4"),
            sizes,
        )
        .unwrap();
        assert_eq!(p.query.count, 100);
        assert_eq!(p.query.cursor, Some(HistoryCursor { tx: 9, key: 4 }));
        assert!(p.query.since_us.is_some());
        assert_eq!(p.link_params.len(), 2);
        assert_eq!(
            parse_history_params(&pairs("_since=soon"), sizes)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            parse_history_params(&pairs("_cursor=x"), sizes)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            parse_history_params(&pairs("_count=-1"), sizes)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(parse_history_params(&[], sizes).unwrap().query.count, 50);
    }

    #[test]
    fn next_link_carries_cursor_and_params() {
        let sizes = PageSizes {
            default: 2,
            max: 100,
        };
        let p = parse_history_params(&pairs("_count=2"), sizes).unwrap();
        let page = HistoryPage {
            entries: vec![],
            total: 5,
            next: Some(HistoryCursor { tx: 3, key: 8 }),
        };
        let b = history_bundle(page, &p, "http://h/fhir/t", "http://h/fhir/t/_history");
        assert_eq!(b["type"], "history");
        assert_eq!(b["total"], 5);
        assert_eq!(b["link"][1]["relation"], "next");
        assert_eq!(
            b["link"][1]["url"],
            "http://h/fhir/t/_history?_count=2&_cursor=3.8"
        );
    }
}
