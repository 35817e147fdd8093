//! FHIR search: parsing a query against the search-parameter registry, and the result page.
//!
//! The query is parsed into typed criteria here, independent of the backend; each backend turns
//! the criteria into its own SQL.

mod criteria;
mod parse;

pub use criteria::{
    Criterion, DateBound, DatePrefix, NumberBound, QuantityValue, ReferenceValue, StringMatch,
    TokenValue, Value as CriterionValue,
};
pub use parse::parse_search;

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
}
