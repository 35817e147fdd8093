//! Serde shapes of the committed compact data (`crates/fhir/data/*.json`, written by
//! `tools/gen-fhir-definitions`). Strings are borrowed from the embedded text, which is `'static`;
//! the generator guarantees that no string needs a JSON escape.

use serde::Deserialize;
use std::collections::BTreeMap;

pub(crate) const TYPES_JSON: &str = include_str!("../../data/r4-types.json");
pub(crate) const SEARCH_PARAMETERS_JSON: &str =
    include_str!("../../data/r4-search-parameters.json");
pub(crate) const COMPARTMENT_PATIENT_JSON: &str =
    include_str!("../../data/r4-compartment-patient.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TypesFile<'a> {
    pub fhir_version: &'a str,
    #[serde(borrow)]
    pub types: Vec<RawType<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct RawType<'a> {
    pub name: &'a str,
    pub kind: RawKind,
    pub base: Option<&'a str>,
    #[serde(rename = "abstract")]
    pub is_abstract: bool,
    #[serde(borrow)]
    pub elements: Vec<RawElement<'a>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawKind {
    Primitive,
    Complex,
    Resource,
    Backbone,
}

/// `[name, min, max, [types], contentReference, isSummary]`; `name` ends in `[x]` for a choice
/// element.
#[derive(Deserialize)]
pub(crate) struct RawElement<'a>(
    pub &'a str,
    pub u32,
    pub &'a str,
    #[serde(borrow)] pub Vec<&'a str>,
    pub Option<&'a str>,
    pub bool,
);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchParametersFile<'a> {
    #[serde(borrow)]
    pub search_parameters: Vec<RawSearchParam<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct RawSearchParam<'a> {
    pub code: &'a str,
    pub url: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    #[serde(borrow)]
    pub base: Vec<&'a str>,
    /// The expression narrowed to each base type.
    #[serde(default, borrow)]
    pub expression: BTreeMap<&'a str, &'a str>,
    #[serde(default, borrow)]
    pub target: Vec<&'a str>,
    /// `[code, type, expression, definition url]` of each component of a composite parameter.
    #[serde(default, borrow)]
    pub component: Vec<(&'a str, &'a str, &'a str, &'a str)>,
}

#[derive(Deserialize)]
pub(crate) struct CompartmentFile<'a> {
    #[serde(borrow)]
    pub resources: BTreeMap<&'a str, Vec<&'a str>>,
}
