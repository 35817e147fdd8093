//! FHIR R4 knowledge: type metadata generated from the official definitions, structural
//! validation, the search-parameter registry and the Patient compartment.
//!
//! CONTRACT (used by medicus-store and medicus-server; keep these signatures):
//! - `r4()` returns the process-wide definitions, loaded once from the committed compact data.
//! - `Definitions` implements `medicus_fhirpath::Model`.
//! - `validate(resource)` checks a resource structurally; every issue carries a FHIRPath-style
//!   `expression` pointing at the failing element, e.g. `Patient.name[0].given[1]`.

use serde_json::Value;

/// Process-wide R4 definitions.
pub fn r4() -> &'static Definitions {
    todo!("medicus-fhir: load generated data")
}

pub struct Definitions {}

impl Definitions {
    pub fn is_resource_type(&self, name: &str) -> bool {
        let _ = name;
        todo!()
    }

    /// All concrete resource type names (Account … VisionPrescription), sorted.
    pub fn resource_types(&self) -> &[&'static str] {
        todo!()
    }

    /// Every search parameter that applies to `resource_type`, including the ones inherited from
    /// Resource and DomainResource (`_id`, `_lastUpdated`, `_tag`, `_profile`, `_security`, `_source`, …).
    /// Expressions are already narrowed to this type (the `|` branches for other types removed).
    pub fn search_params(&self, resource_type: &str) -> &[SearchParam] {
        let _ = resource_type;
        todo!()
    }

    pub fn search_param(&self, resource_type: &str, code: &str) -> Option<&SearchParam> {
        self.search_params(resource_type).iter().find(|p| p.code == code)
    }

    /// Search parameter codes that link `resource_type` into the Patient compartment
    /// (empty when the type is not in the compartment; `["{def}"]` style entries excluded).
    pub fn patient_compartment_params(&self, resource_type: &str) -> &[&'static str] {
        let _ = resource_type;
        todo!()
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
    let _ = resource;
    todo!("medicus-fhir: validator")
}
