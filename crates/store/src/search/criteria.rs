//! Typed search criteria, ready for a backend to turn into SQL.

/// One search parameter occurrence: its values are OR-ed.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// The parameter code as given (`code`, `_id`, `_lastUpdated`).
    pub code: String,
    /// Hashed key of the parameter for the resource type (see `index::keys::param_key`).
    pub param: i64,
    /// The parameter type; `None` for `_id` and `_lastUpdated`, which live in the resource table.
    pub kind: Option<medicus_fhir::SearchParamType>,
    /// `:missing=true|false`: the values are ignored.
    pub missing: Option<bool>,
    /// `:not` on a token: the resources that have no matching value.
    pub negated: bool,
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `_id`.
    Id(String),
    /// `_lastUpdated`, in microseconds to match the resource table.
    LastUpdated(DateBound),
    Token(TokenValue),
    /// `text` is normalised for starts-with/contains and kept as given for `:exact`.
    String {
        text: String,
        mode: StringMatch,
    },
    Date(DateBound),
    Number(NumberBound),
    Quantity(QuantityValue),
    Reference(ReferenceValue),
    /// The hashed URI (`:above` is an OR of the value's prefixes).
    Uri {
        value: i64,
    },
    /// `:below`: the URIs of parameter `param` that have the hashed path prefix `prefix`
    /// (looked up in the `UriPrefix` dictionary rows).
    UriBelow {
        param: i64,
        prefix: i64,
    },
    Composite {
        key: i64,
    },
    /// A composite ending in a number, quantity or date: the other components' key and the
    /// comparison on the last one.
    CompositeRange {
        key: i64,
        bound: CompositeBound,
    },
    /// Forward chaining (`subject:Patient.birthdate=…`): a reference of this criterion's
    /// parameter to a resource of `target_type` that matches all `criteria`.
    Chain(Box<ChainValue>),
    /// Reverse chaining (`_has:Observation:subject:code=…`): some resource of `source_type`
    /// refers to this one through `param` and matches all `criteria`.
    Has(Box<HasValue>),
    /// `_text` (`narrative_only`) / `_content`: every word must occur (see
    /// `index::fulltext::query_words`); each backend writes its own full-text query.
    FullText {
        narrative_only: bool,
        words: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CompositeBound {
    Number(NumberBound),
    Date(DateBound),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChainValue {
    pub target_type: String,
    pub criteria: Vec<Criterion>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HasValue {
    pub source_type: String,
    /// Key of the source type's reference parameter.
    pub param: i64,
    pub criteria: Vec<Criterion>,
}

/// One `_sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The parameter code as given (`date`, `_id`, `_lastUpdated`).
    pub code: String,
    /// `None` for `_id` and `_lastUpdated`.
    pub kind: Option<medicus_fhir::SearchParamType>,
    pub param: i64,
    pub descending: bool,
}

/// A token: `system` is `None` for "any system", `Some(NONE)` for "no system" (`|code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenValue {
    pub system: Option<i64>,
    /// `None` for `system|` (any code in the system).
    pub code: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMatch {
    StartsWith,
    Exact,
    Contains,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePrefix {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Sa,
    Eb,
    Ap,
}

/// A date search value: the interval the search value covers, with the comparison prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateBound {
    pub prefix: DatePrefix,
    pub lo: i64,
    pub hi: i64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberBound {
    pub prefix: DatePrefix,
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantityValue {
    pub number: NumberBound,
    pub system: Option<i64>,
    pub code: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReferenceValue {
    /// Hashed target type, `None` when the search value named only an id.
    pub target_type: Option<i64>,
    pub target: i64,
}
