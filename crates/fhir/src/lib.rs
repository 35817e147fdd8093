//! FHIR R4 knowledge: type metadata generated from the official definitions, structural
//! validation, the search-parameter registry and the Patient compartment.
//!
//! CONTRACT (used by medicus-store and medicus-server; keep these signatures):
//! - `r4()` returns the process-wide definitions, loaded once from the committed compact data.
//! - `Definitions` implements `medicus_fhirpath::Model`.
//! - `validate(resource)` checks a resource structurally; every issue carries a FHIRPath-style
//!   `expression` pointing at the failing element, e.g. `Patient.name[0].given[1]`.

mod compartment;
mod definitions;
mod error;
mod fast_hash;
mod model;
mod search_params;
mod summary;
mod validate;

use std::sync::LazyLock;

use serde_json::Value;

pub use error::DefinitionsError;
pub use summary::SummaryMode;

static R4: LazyLock<Definitions> = LazyLock::new(|| {
    // The data is embedded at build time and checked by this crate's tests: a failure here is a
    // build defect, not bad input.
    Definitions::load()
        .unwrap_or_else(|e| panic!("medicus-fhir: embedded R4 definitions are invalid: {e}"))
});

/// Process-wide R4 definitions.
pub fn r4() -> &'static Definitions {
    &R4
}

/// The R4 definitions: types and their elements, search parameters, the Patient compartment.
/// Search parameter expressions are compiled on the first `search_params`/`search_param` call
/// (about 1 ms for all of them; call it at start-up to warm up), so that validation and the FHIRPath
/// model never depend on the FHIRPath parser.
#[derive(Debug)]
pub struct Definitions {
    types: definitions::TypeTable,
    search: search_params::SearchRegistry,
    compartment: compartment::PatientCompartment,
}

impl Definitions {
    /// Build the definitions from the embedded data (what `r4()` does once). Names are leaked to
    /// become `&'static str`, so this is for the one static instance only.
    pub(crate) fn load() -> Result<Self, DefinitionsError> {
        let types = definitions::TypeTable::load()?;
        let search = search_params::SearchRegistry::load(&types)?;
        let compartment = compartment::PatientCompartment::load(&types)?;
        Ok(Self {
            types,
            search,
            compartment,
        })
    }

    /// The FHIR version of the definitions (`4.0.1`).
    pub fn fhir_version(&self) -> &'static str {
        self.types.fhir_version
    }

    /// True for a concrete resource type (`Patient`; not `DomainResource`).
    pub fn is_resource_type(&self, name: &str) -> bool {
        self.types.concrete_resource(name).is_some()
    }

    /// All concrete resource type names (Account … VisionPrescription), sorted.
    pub fn resource_types(&self) -> &[&'static str] {
        self.types.resource_types()
    }

    /// Number of distinct search parameters in the definitions (each counted once, whatever its bases).
    pub fn search_param_count(&self) -> usize {
        self.search.distinct_count()
    }

    /// Every search parameter that applies to `resource_type`, including the ones inherited from
    /// Resource and DomainResource (`_id`, `_lastUpdated`, `_tag`, `_profile`, `_security`, `_source`, …).
    /// Expressions are already narrowed to this type (the `|` branches for other types removed).
    pub fn search_params(&self, resource_type: &str) -> &[SearchParam] {
        self.search.compiled(resource_type)
    }

    pub fn search_param(&self, resource_type: &str, code: &str) -> Option<&SearchParam> {
        self.search_params(resource_type)
            .iter()
            .find(|p| p.code == code)
    }

    /// Search parameter codes that link `resource_type` into the Patient compartment
    /// (empty when the type is not in the compartment; `["{def}"]` style entries excluded).
    pub fn patient_compartment_params(&self, resource_type: &str) -> &[&'static str] {
        self.compartment.params(resource_type)
    }

    /// Number of resource types in the Patient compartment (with at least one parameter).
    pub fn patient_compartment_len(&self) -> usize {
        self.compartment.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

#[derive(Debug)]
pub struct SearchParam {
    pub code: &'static str,
    pub url: &'static str,
    pub kind: SearchParamType,
    /// Compiled expression narrowed to the resource type; `None` when the parameter has none
    /// (or it could not be compiled, which is logged once at load).
    pub expression: Option<medicus_fhirpath::Expression>,
    /// Allowed target resource types of a reference parameter.
    pub targets: &'static [&'static str],
    /// Components of a composite parameter: the component parameter's code (resolved from its
    /// definition url) and the compiled expression relative to the composite's node.
    pub components: Vec<CompositeComponent>,
}

#[derive(Debug)]
pub struct CompositeComponent {
    pub code: &'static str,
    pub kind: SearchParamType,
    pub expression: medicus_fhirpath::Expression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

/// OperationOutcome issue types used by validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    /// Malformed structure: unknown element, wrong JSON shape.
    Structure,
    /// A required element is missing.
    Required,
    /// A value is of the wrong form (primitive format).
    Value,
    /// Too many repetitions / array where one value is allowed.
    Invariant,
    Invalid,
}

impl IssueType {
    /// The OperationOutcome `issue.code`.
    pub fn code(self) -> &'static str {
        match self {
            IssueType::Structure => "structure",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::Invariant => "invariant",
            IssueType::Invalid => "invalid",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ValidationIssue {
    pub severity: Severity,
    pub code: IssueType,
    /// FHIRPath-style location, e.g. `Patient.name[0].given[1]`.
    pub expression: String,
    pub message: String,
}

/// Structural validation against the R4 definitions. Returns every error found (not just the first).
/// Warnings do not make a resource invalid.
pub fn validate(resource: &Value) -> Vec<ValidationIssue> {
    validate::validate(&r4().types, resource)
}
