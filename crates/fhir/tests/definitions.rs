//! The public definitions API: counts and well-known entries of the embedded R4 data.

use medicus_fhir::{SearchParamType, r4};

#[test]
fn counts() {
    let d = r4();
    assert_eq!(d.fhir_version(), "4.0.1");
    assert_eq!(d.resource_types().len(), 146);
    assert_eq!(d.search_param_count(), 1375);
    assert_eq!(d.patient_compartment_len(), 66);
    let mut sorted = d.resource_types().to_vec();
    sorted.sort_unstable();
    assert_eq!(sorted, d.resource_types());
    assert_eq!(d.resource_types().first(), Some(&"Account"));
    assert_eq!(d.resource_types().last(), Some(&"VisionPrescription"));
}

#[test]
fn resource_types() {
    let d = r4();
    assert!(d.is_resource_type("Patient"));
    assert!(d.is_resource_type("Bundle"));
    assert!(!d.is_resource_type("Resource"));
    assert!(!d.is_resource_type("DomainResource"));
    assert!(!d.is_resource_type("HumanName"));
    assert!(!d.is_resource_type("Patient.contact"));
    // medplum's own types and back-ports are not R4.
    for not_r4 in [
        "Project",
        "ProjectMembership",
        "Bot",
        "Login",
        "ClientApplication",
        "User",
        "SubscriptionStatus",
    ] {
        assert!(!d.is_resource_type(not_r4), "{not_r4}");
    }
}

#[test]
fn search_params_and_compartment() {
    let d = r4();
    assert_eq!(
        d.patient_compartment_params("Observation"),
        ["subject", "performer"]
    );
    assert_eq!(d.patient_compartment_params("Patient"), ["link"]);
    assert!(d.patient_compartment_params("Practitioner").is_empty());
    let patient = d.search_params("Patient");
    let codes: Vec<_> = patient.iter().map(|p| p.code).collect();
    for code in [
        "_id",
        "_lastUpdated",
        "_tag",
        "_profile",
        "_security",
        "_source",
        "_text",
        "name",
        "birthdate",
        "identifier",
    ] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    let birthdate = d.search_param("Patient", "birthdate").expect("birthdate");
    assert_eq!(birthdate.kind, SearchParamType::Date);
    assert_eq!(
        birthdate.url,
        "http://hl7.org/fhir/SearchParameter/individual-birthdate"
    );
    assert_eq!(
        birthdate.expression.as_ref().map(|e| e.source()),
        Some("Patient.birthDate")
    );
    let general_practitioner = d
        .search_param("Patient", "general-practitioner")
        .expect("general-practitioner");
    assert_eq!(
        general_practitioner.targets,
        ["Organization", "Practitioner", "PractitionerRole"]
    );
    assert!(d.search_param("Patient", "nope").is_none());
}
