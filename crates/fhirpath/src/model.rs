//! Built-in R4 type knowledge used when no [`Model`](crate::Model) is supplied,
//! plus helpers that consult the model when one is.
//!
//! The evaluator needs `&'static str` type names for [`Node::type_name`](crate::Node); without a
//! model they come from these tables, which list every R4 resource, datatype and primitive.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::Model;

/// R4 primitive types and their base type (`None` for `Element`-derived roots).
const PRIMITIVES: &[(&str, Option<&str>)] = &[
    ("base64Binary", None),
    ("boolean", None),
    ("canonical", Some("uri")),
    ("code", Some("string")),
    ("date", None),
    ("dateTime", None),
    ("decimal", None),
    ("id", Some("string")),
    ("instant", None),
    ("integer", None),
    ("markdown", Some("string")),
    ("oid", Some("uri")),
    ("positiveInt", Some("integer")),
    ("string", None),
    ("time", None),
    ("unsignedInt", Some("integer")),
    ("uri", None),
    ("url", Some("uri")),
    ("uuid", Some("uri")),
    ("xhtml", None),
];

/// R4 complex datatypes and their base type.
const COMPLEX: &[(&str, &str)] = &[
    ("Element", ""),
    ("BackboneElement", "Element"),
    ("Address", "Element"),
    ("Age", "Quantity"),
    ("Annotation", "Element"),
    ("Attachment", "Element"),
    ("CodeableConcept", "Element"),
    ("Coding", "Element"),
    ("ContactDetail", "Element"),
    ("ContactPoint", "Element"),
    ("Contributor", "Element"),
    ("Count", "Quantity"),
    ("DataRequirement", "Element"),
    ("Distance", "Quantity"),
    ("Dosage", "BackboneElement"),
    ("Duration", "Quantity"),
    ("ElementDefinition", "BackboneElement"),
    ("Expression", "Element"),
    ("Extension", "Element"),
    ("HumanName", "Element"),
    ("Identifier", "Element"),
    ("MarketingStatus", "BackboneElement"),
    ("Meta", "Element"),
    ("Money", "Element"),
    ("MoneyQuantity", "Quantity"),
    ("Narrative", "Element"),
    ("ParameterDefinition", "Element"),
    ("Period", "Element"),
    ("Population", "BackboneElement"),
    ("ProdCharacteristic", "BackboneElement"),
    ("ProductShelfLife", "BackboneElement"),
    ("Quantity", "Element"),
    ("Range", "Element"),
    ("Ratio", "Element"),
    ("Reference", "Element"),
    ("RelatedArtifact", "Element"),
    ("SampledData", "Element"),
    ("Signature", "Element"),
    ("SimpleQuantity", "Quantity"),
    ("SubstanceAmount", "BackboneElement"),
    ("Timing", "BackboneElement"),
    ("TriggerDefinition", "Element"),
    ("UsageContext", "Element"),
];

/// Every R4 resource type. All derive from `DomainResource` except the few listed in
/// [`PLAIN_RESOURCES`].
const RESOURCES: &[&str] = &[
    "Resource",
    "DomainResource",
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "SubscriptionStatus",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

/// Resources that derive from `Resource` directly rather than from `DomainResource`.
const PLAIN_RESOURCES: &[&str] = &["Bundle", "Binary", "Parameters", "DomainResource"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Primitive,
    Complex,
    Resource,
}

/// Name → (kind, parent) for every built-in type, built once: evaluation looks types up on
/// every resource node, so this must not be a linear scan.
fn index() -> &'static HashMap<&'static str, (Kind, Option<&'static str>)> {
    static INDEX: OnceLock<HashMap<&'static str, (Kind, Option<&'static str>)>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m = HashMap::with_capacity(PRIMITIVES.len() + COMPLEX.len() + RESOURCES.len());
        for (n, p) in PRIMITIVES {
            m.insert(*n, (Kind::Primitive, Some(p.unwrap_or("Element"))));
        }
        for (n, p) in COMPLEX {
            m.insert(*n, (Kind::Complex, (!p.is_empty()).then_some(*p)));
        }
        for n in RESOURCES {
            let parent = match *n {
                "Resource" => None,
                n if PLAIN_RESOURCES.contains(&n) => Some("Resource"),
                _ => Some("DomainResource"),
            };
            m.insert(*n, (Kind::Resource, parent));
        }
        m
    })
}

/// The `&'static` name of a built-in R4 type (resource, complex datatype or primitive).
pub fn builtin_type_name(name: &str) -> Option<&'static str> {
    index().get_key_value(name).map(|(k, _)| *k)
}

/// True when `name` is an R4 primitive type (`string`, `dateTime`, ...).
pub(crate) fn is_primitive(name: &str) -> bool {
    index()
        .get(name)
        .is_some_and(|(k, _)| *k == Kind::Primitive)
}

/// True when `name` is a built-in R4 resource type.
pub(crate) fn is_resource_type(name: &str) -> bool {
    index().get(name).is_some_and(|(k, _)| *k == Kind::Resource)
}

fn builtin_parent(ty: &str) -> Option<&'static str> {
    if let Some((_, parent)) = index().get(ty) {
        return *parent;
    }
    // Inline backbone elements are named by their path (`Patient.contact`).
    if ty.contains('.') {
        return Some("BackboneElement");
    }
    None
}

/// `ty` is `base` or derives from it, per the built-in tables.
pub(crate) fn builtin_is_subtype(ty: &str, base: &str) -> bool {
    let mut cur = Some(ty);
    let mut guard = 0;
    while let Some(t) = cur {
        if t == base {
            return true;
        }
        guard += 1;
        if guard > 16 {
            break;
        }
        cur = builtin_parent(t);
    }
    false
}

/// Resolves a type name to its `&'static` spelling, preferring the model.
pub(crate) fn static_type_name(model: Option<&dyn Model>, name: &str) -> Option<&'static str> {
    model
        .and_then(|m| m.type_name(name))
        .or_else(|| builtin_type_name(name))
}

/// Subtype check, preferring the model and falling back to the built-in tables.
pub(crate) fn is_subtype(model: Option<&dyn Model>, ty: &str, base: &str) -> bool {
    if ty == base {
        return true;
    }
    if let Some(m) = model
        && m.is_subtype_of(ty, base)
    {
        return true;
    }
    builtin_is_subtype(ty, base)
}

/// Maps the suffix of a choice element key (`valueDateTime` → `DateTime`) to the FHIR type name
/// (`dateTime`): primitives are spelled with a lower-case first letter, complex types as is.
pub(crate) fn choice_suffix_type(suffix: &str) -> Option<&'static str> {
    let mut chars = suffix.chars();
    let first = chars.next()?;
    if !first.is_ascii_uppercase() {
        return None;
    }
    if let Some((t, (Kind::Complex, _))) = index().get_key_value(suffix) {
        return Some(t);
    }
    // `DateTime` → `dateTime`, `Base64Binary` → `base64Binary` (lower-cased in a stack buffer).
    let mut buf = [0u8; 32];
    let bytes = suffix.as_bytes();
    if bytes.len() > buf.len() {
        return None;
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[0] = buf[0].to_ascii_lowercase();
    let lowered = std::str::from_utf8(&buf[..bytes.len()]).ok()?;
    match index().get_key_value(lowered) {
        Some((t, (Kind::Primitive, _))) => Some(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_map_to_fhir_types() {
        assert_eq!(choice_suffix_type("DateTime"), Some("dateTime"));
        assert_eq!(choice_suffix_type("Quantity"), Some("Quantity"));
        assert_eq!(choice_suffix_type("Base64Binary"), Some("base64Binary"));
        assert_eq!(
            choice_suffix_type("CodeableConcept"),
            Some("CodeableConcept")
        );
        assert_eq!(choice_suffix_type("quantity"), None);
        assert_eq!(choice_suffix_type("Nope"), None);
    }

    #[test]
    fn builtin_hierarchy() {
        assert!(builtin_is_subtype("Age", "Quantity"));
        assert!(builtin_is_subtype("Patient", "DomainResource"));
        assert!(builtin_is_subtype("Patient", "Resource"));
        assert!(builtin_is_subtype("Bundle", "Resource"));
        assert!(!builtin_is_subtype("Bundle", "DomainResource"));
        assert!(builtin_is_subtype("code", "string"));
        assert!(builtin_is_subtype("Patient.contact", "BackboneElement"));
        assert!(!builtin_is_subtype("string", "code"));
    }
}
