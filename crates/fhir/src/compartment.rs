//! The Patient compartment (CompartmentDefinition `patient`): which search parameters link a
//! resource of each type to a Patient.

use crate::definitions::TypeTable;
use crate::definitions::raw::{self, CompartmentFile};
use crate::error::DefinitionsError;
use crate::fast_hash::FastMap;

#[derive(Debug)]
pub(crate) struct PatientCompartment {
    params: FastMap<&'static str, &'static [&'static str]>,
}

impl PatientCompartment {
    pub(crate) fn load(types: &TypeTable) -> Result<Self, DefinitionsError> {
        let file: CompartmentFile<'static> = serde_json::from_str(raw::COMPARTMENT_PATIENT_JSON)
            .map_err(|source| DefinitionsError::Json {
                file: "r4-compartment-patient.json",
                source,
            })?;
        let mut params = FastMap::default();
        for (resource_type, codes) in file.resources {
            if types.concrete_resource(resource_type).is_none() {
                return Err(DefinitionsError::MissingType(resource_type));
            }
            // `{def}` means "the resource itself" (not a search parameter); the generator drops it,
            // filter again so the contract holds whatever the data says.
            let codes: Vec<&'static str> =
                codes.into_iter().filter(|c| !c.starts_with('{')).collect();
            if !codes.is_empty() {
                params.insert(resource_type, &*Box::leak(codes.into_boxed_slice()));
            }
        }
        Ok(Self { params })
    }

    pub(crate) fn params(&self, resource_type: &str) -> &[&'static str] {
        self.params.get(resource_type).copied().unwrap_or(&[])
    }

    pub(crate) fn len(&self) -> usize {
        self.params.len()
    }
}

#[cfg(test)]
mod tests {
    use crate::r4;

    #[test]
    fn patient_compartment() {
        let d = r4();
        assert_eq!(d.patient_compartment_len(), 66);
        assert_eq!(
            d.patient_compartment_params("Observation"),
            ["subject", "performer"]
        );
        assert_eq!(d.patient_compartment_params("Patient"), ["link"]);
        // HL7's R4 definition, not medplum's edited copy (which says `subject`).
        assert_eq!(d.patient_compartment_params("Encounter"), ["patient"]);
        assert!(d.patient_compartment_params("Task").is_empty());
        assert_eq!(
            d.patient_compartment_params("Condition"),
            ["patient", "asserter"]
        );
        assert!(d.patient_compartment_params("Organization").is_empty());
        assert!(d.patient_compartment_params("Nope").is_empty());
        // Every compartment parameter is a search parameter of its type.
        for &rt in d.resource_types() {
            for code in d.patient_compartment_params(rt) {
                assert!(
                    d.search.sources(rt).iter().any(|p| p.code == *code),
                    "{rt}.{code}"
                );
            }
        }
    }
}
