//! Membership in a Patient compartment, decided from a resource's index entries exactly as the
//! search clause (`sql_search::clause::compartment_rows`) decides it from the index tables, so
//! that an access check on one resource and a compartment-restricted search always agree.

use super::IndexEntry;
use super::keys;

/// Whether a resource of `resource_type` with these index `entries` is in the compartment of
/// `Patient/{patient}`. A Patient is in its own compartment only (`id == patient`).
pub fn in_patient_compartment(
    resource_type: &str,
    id: &str,
    entries: &[IndexEntry],
    patient: &str,
) -> bool {
    if resource_type == "Patient" {
        return id == patient;
    }
    let params = medicus_fhir::r4().patient_compartment_params(resource_type);
    if params.is_empty() {
        return false;
    }
    let param_keys: Vec<i64> = params
        .iter()
        .map(|code| keys::param_key(resource_type, code))
        .collect();
    let patient_type = keys::type_key("Patient");
    let target = keys::hash(patient);
    entries.iter().any(|e| match e {
        IndexEntry::Reference {
            param,
            target_type,
            target: t,
        } => *target_type == patient_type && *t == target && param_keys.contains(param),
        _ => false,
    })
}

/// [`in_patient_compartment`] of a stored body (its index entries extracted first).
pub fn body_in_patient_compartment(
    resource_type: &str,
    id: &str,
    body: &serde_json::Value,
    patient: &str,
) -> bool {
    if resource_type == "Patient" {
        return id == patient;
    }
    let entries = super::extract_entries(medicus_fhir::r4(), resource_type, body);
    in_patient_compartment(resource_type, id, &entries, patient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn observation_by_subject_and_performer() {
        let obs = json!({"resourceType":"Observation","id":"o1","status":"final",
            "code":{"text":"x"},"subject":{"reference":"Patient/p1"}});
        assert!(body_in_patient_compartment("Observation", "o1", &obs, "p1"));
        assert!(!body_in_patient_compartment(
            "Observation",
            "o1",
            &obs,
            "p2"
        ));
        let performed = json!({"resourceType":"Observation","id":"o2","status":"final",
            "code":{"text":"x"},"performer":[{"reference":"Patient/p2"}]});
        assert!(body_in_patient_compartment(
            "Observation",
            "o2",
            &performed,
            "p2"
        ));
    }

    #[test]
    fn patients_and_types_outside_the_compartment() {
        let p = json!({"resourceType":"Patient","id":"p1","link":[{"other":{"reference":"Patient/p2"}}]});
        assert!(body_in_patient_compartment("Patient", "p1", &p, "p1"));
        // A link to another patient does not put this Patient into that compartment.
        assert!(!body_in_patient_compartment("Patient", "p1", &p, "p2"));
        let org =
            json!({"resourceType":"Organization","id":"o","partOf":{"reference":"Patient/p1"}});
        assert!(!body_in_patient_compartment(
            "Organization",
            "o",
            &org,
            "p1"
        ));
        // A reference to a Practitioner with the patient's id is not the patient.
        let obs = json!({"resourceType":"Observation","id":"o3","status":"final",
            "code":{"text":"x"},"subject":{"reference":"Group/p1"}});
        assert!(!body_in_patient_compartment(
            "Observation",
            "o3",
            &obs,
            "p1"
        ));
    }
}
