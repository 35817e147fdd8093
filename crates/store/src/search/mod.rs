//! FHIR search: parsing a query against the search-parameter registry, and the result page.
//!
//! The query is parsed into typed criteria here, independent of the backend; each backend turns
//! the criteria into its own SQL.

mod chaining;
mod criteria;
mod modifiers;
mod parse;
mod sorting;
mod valueset;

pub use chaining::DEFAULT_MAX_CHAIN_DEPTH;
pub use criteria::{
    ChainValue, CompositeBound, Criterion, DateBound, DatePrefix, HasValue, NumberBound,
    QuantityValue, ReferenceValue, SortKey, StringMatch, TokenValue, Value as CriterionValue,
};
pub use parse::parse_search_opts;
pub use parse::{parse_search, parse_search_with};
pub use valueset::{MAX_VALUE_SET_CODES, NoResolver, SearchResolver};

use crate::api::ResourceVersion;

/// Default and maximum page sizes.
pub const DEFAULT_COUNT: usize = 50;
pub const MAX_COUNT: usize = 1000;

/// A parsed search: criteria AND-ed together, each criterion an OR over its values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchQuery {
    pub criteria: Vec<Criterion>,
    /// Page size (`_count`); 0 means only the total is wanted.
    pub count: usize,
    /// Continue after this resource surrogate key (our paging token, `_cursor`).
    pub cursor: Option<i64>,
    /// Whether to compute `Bundle.total` (`_total=none` switches it off).
    pub total: bool,
    /// Only resources in the Patient compartment (of the given patients, or of any patient).
    pub compartment: Option<CompartmentFilter>,
    /// Parameters that were not understood and were ignored (lenient handling).
    pub ignored: Vec<String>,
    /// Result parameters the caller must apply (`_summary`, `_elements`, `_format`, …), in order.
    pub result_params: Vec<(String, String)>,
    /// `_sort` keys, most significant first; empty: surrogate-key order.
    pub sort: Vec<SortKey>,
    /// Continue a sorted search after this position (see [`SortPosition`]).
    pub sort_after: Option<SortPosition>,
    /// `_total=estimate`: an estimate from the planner is good enough.
    pub total_estimate: bool,
    /// `_total=accurate`: count every match even when that is expensive (otherwise the total is
    /// given when it is cheap or the first page holds every match).
    pub total_accurate: bool,
    /// Report the chosen plan in [`SearchPage::plan`].
    pub explain: bool,
}

/// Where a sorted page ended: the sort values of the last resource and its surrogate key.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SortPosition {
    pub values: Vec<SortValue>,
    pub rid: i64,
}

/// A sort value as the index holds it; `Missing` sorts after every value in both directions.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    Int(i64),
    Real(f64),
    Text(String),
    Missing,
}

impl SearchQuery {
    /// Applies a `_cursor` paging token from a previous page's next link.
    pub fn set_cursor(&mut self, token: &str) -> Result<(), crate::error::StoreError> {
        let bad = || {
            crate::error::StoreError::InvalidSearch("_cursor is not a valid paging token".into())
        };
        if let Some(rest) = token.strip_prefix('s') {
            self.sort_after = Some(SortPosition::decode(rest).ok_or_else(bad)?);
        } else {
            self.cursor = Some(token.parse().map_err(|_| bad())?);
        }
        Ok(())
    }
}

impl SearchQuery {
    /// The `_cursor` token this query continues from, as [`SearchPage::next_token`] wrote it.
    pub fn cursor_token(&self) -> Option<String> {
        cursor_token(self.sort_after.as_ref(), self.cursor)
    }
}

impl SearchPage {
    /// The `_cursor` token of the next page, when there is one.
    pub fn next_token(&self) -> Option<String> {
        cursor_token(self.next_sort.as_ref(), self.next_cursor)
    }
}

/// The `_cursor` text of a position: `s` + the sort position, or the surrogate key (the format
/// `SearchQuery::set_cursor` reads).
fn cursor_token(sorted: Option<&SortPosition>, rid: Option<i64>) -> Option<String> {
    match (sorted, rid) {
        (Some(p), _) => Some(format!("s{}", p.encode())),
        (None, Some(rid)) => Some(rid.to_string()),
        (None, None) => None,
    }
}

impl SortPosition {
    /// `rid` then the values, `~`-separated; texts are hex-encoded so any content survives a URL.
    pub fn encode(&self) -> String {
        let mut out = self.rid.to_string();
        for v in &self.values {
            out.push('~');
            match v {
                SortValue::Int(i) => out.push_str(&format!("i{i}")),
                SortValue::Real(f) => out.push_str(&format!("r{:x}", f.to_bits())),
                SortValue::Text(t) => {
                    out.push('t');
                    for b in t.as_bytes() {
                        out.push_str(&format!("{b:02x}"));
                    }
                }
                SortValue::Missing => out.push('m'),
            }
        }
        out
    }

    pub fn decode(s: &str) -> Option<SortPosition> {
        let mut parts = s.split('~');
        let rid = parts.next()?.parse().ok()?;
        let mut values = Vec::new();
        for p in parts {
            let (tag, rest) = p.split_at_checked(1)?;
            values.push(match tag {
                "i" => SortValue::Int(rest.parse().ok()?),
                "r" => SortValue::Real(f64::from_bits(u64::from_str_radix(rest, 16).ok()?)),
                "t" => {
                    if rest.len() % 2 != 0 || rest.len() > 1024 {
                        return None;
                    }
                    let bytes = (0..rest.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(rest.get(i..i + 2)?, 16).ok())
                        .collect::<Option<Vec<u8>>>()?;
                    SortValue::Text(String::from_utf8(bytes).ok()?)
                }
                "m" if rest.is_empty() => SortValue::Missing,
                _ => return None,
            });
        }
        Some(SortPosition { values, rid })
    }
}

/// Membership in the Patient compartment, through the compartment definition's parameters of
/// each type (a Patient is in its own compartment).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompartmentFilter {
    /// `None`: any patient's compartment (every type with compartment parameters).
    pub patients: Option<Vec<String>>,
}

/// A page of search results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub resources: Vec<ResourceVersion>,
    pub total: Option<u64>,
    /// The `_cursor` value of the next page, when there is one.
    pub next_cursor: Option<i64>,
    /// The position of the next page of a sorted search.
    pub next_sort: Option<SortPosition>,
    /// The plan, when the query asked for it (`explain`).
    pub plan: Option<String>,
}
