//! `medicus_fhirpath::Model` over the R4 type table: one or two hash lookups per call, no allocation.

use medicus_fhirpath::Model;

use crate::Definitions;
use crate::definitions::Variant;

/// FHIRPath may qualify FHIR types with their namespace (`FHIR.Patient`).
fn unqualified(name: &str) -> &str {
    name.strip_prefix("FHIR.").unwrap_or(name)
}

impl Model for Definitions {
    fn element_types(&self, parent_type: &str, element: &str) -> Option<&'static [&'static str]> {
        let types = &self.types;
        let parent = types.id(unqualified(parent_type))?;
        let r = types.lookup(parent, element)?;
        let def = types.element(r);
        match r.variant {
            Variant::Plain | Variant::ChoiceBase => Some(def.types),
            // `valueQuantity` names one variant: answer with just its type.
            Variant::Choice(i) => def.types.get(usize::from(i)..=usize::from(i)),
        }
    }

    fn is_subtype_of(&self, ty: &str, base: &str) -> bool {
        let types = &self.types;
        match (types.id(unqualified(ty)), types.id(unqualified(base))) {
            (Some(t), Some(b)) => types.is_subtype(t, b),
            _ => false,
        }
    }

    fn type_name(&self, name: &str) -> Option<&'static str> {
        let types = &self.types;
        types.id(unqualified(name)).map(|id| types.get(id).name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::r4;

    #[test]
    fn plain_choice_and_backbone_elements() {
        let m = r4();
        assert_eq!(m.element_types("Patient", "name"), Some(&["HumanName"][..]));
        assert_eq!(
            m.element_types("Patient", "contact"),
            Some(&["Patient.contact"][..])
        );
        assert_eq!(
            m.element_types("Patient.contact", "name"),
            Some(&["HumanName"][..])
        );
        let value = m.element_types("Observation", "value").unwrap();
        assert!(value.contains(&"Quantity") && value.contains(&"CodeableConcept"));
        assert_eq!(
            m.element_types("Observation", "valueQuantity"),
            Some(&["Quantity"][..])
        );
        assert_eq!(
            m.element_types("Patient", "deceased"),
            Some(&["boolean", "dateTime"][..])
        );
        assert_eq!(m.element_types("Patient", "nope"), None);
        assert_eq!(m.element_types("Nope", "id"), None);
    }

    #[test]
    fn content_references_resolve_to_the_referenced_backbone() {
        let m = r4();
        assert_eq!(
            m.element_types("Questionnaire.item", "item"),
            Some(&["Questionnaire.item"][..])
        );
        assert_eq!(
            m.element_types("Parameters.parameter", "part"),
            Some(&["Parameters.parameter"][..])
        );
        assert_eq!(
            m.element_types("Observation.component", "referenceRange"),
            Some(&["Observation.referenceRange"][..])
        );
    }

    #[test]
    fn inherited_and_primitive_elements() {
        let m = r4();
        assert_eq!(m.element_types("Patient", "id"), Some(&["id"][..]));
        assert_eq!(m.element_types("Patient", "meta"), Some(&["Meta"][..]));
        assert_eq!(
            m.element_types("Patient", "contained"),
            Some(&["Resource"][..])
        );
        assert_eq!(
            m.element_types("Patient", "modifierExtension"),
            Some(&["Extension"][..])
        );
        assert_eq!(m.element_types("Bundle", "id"), Some(&["id"][..]));
        assert_eq!(
            m.element_types("Patient.contact", "extension"),
            Some(&["Extension"][..])
        );
        assert_eq!(
            m.element_types("string", "value"),
            Some(&["System.String"][..])
        );
        assert_eq!(
            m.element_types("date", "extension"),
            Some(&["Extension"][..])
        );
        assert_eq!(m.element_types("Element", "id"), Some(&["string"][..]));
        assert_eq!(m.element_types("Extension", "url"), Some(&["uri"][..]));
        assert_eq!(
            m.element_types("FHIR.Patient", "name"),
            Some(&["HumanName"][..])
        );
    }

    /// medplum's in-place additions to HL7 types are reverted by the generator.
    #[test]
    fn r4_not_medplum_elements() {
        let m = r4();
        for (ty, el) in [
            ("Meta", "project"),
            ("Meta", "author"),
            ("Binary", "url"),
            ("ResearchStudy", "label"),
            ("DeviceDefinition", "classification"),
            ("EvidenceVariable.characteristic", "linkId"),
        ] {
            assert_eq!(m.element_types(ty, el), None, "{ty}.{el}");
        }
        assert_eq!(
            m.element_types("Bundle.entry.response", "outcome"),
            Some(&["Resource"][..])
        );
        let definition = m
            .element_types("EvidenceVariable.characteristic", "definition")
            .unwrap();
        assert_eq!(definition.len(), 6);
        assert_eq!(
            m.element_types("EvidenceVariable.characteristic", "participantEffective"),
            Some(&["dateTime", "Period", "Duration", "Timing"][..])
        );
    }

    #[test]
    fn subtypes_and_names() {
        let m = r4();
        for derived in [
            "Age",
            "Distance",
            "Duration",
            "Count",
            "SimpleQuantity",
            "MoneyQuantity",
        ] {
            assert!(m.is_subtype_of(derived, "Quantity"), "{derived}");
        }
        assert!(m.is_subtype_of("Patient", "DomainResource"));
        assert!(m.is_subtype_of("Patient", "Resource"));
        assert!(m.is_subtype_of("Bundle", "Resource"));
        assert!(!m.is_subtype_of("Bundle", "DomainResource"));
        assert!(m.is_subtype_of("Patient.contact", "BackboneElement"));
        assert!(m.is_subtype_of("Patient.contact", "Element"));
        assert!(m.is_subtype_of("Quantity", "Quantity"));
        assert!(!m.is_subtype_of("Quantity", "Age"));
        assert!(!m.is_subtype_of("Nope", "Resource"));
        assert_eq!(m.type_name("Patient"), Some("Patient"));
        assert_eq!(m.type_name("FHIR.dateTime"), Some("dateTime"));
        assert_eq!(m.type_name("Nope"), None);
    }
}
