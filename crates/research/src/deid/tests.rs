use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::keys::TrustCentreKey;

fn keys(project: &str) -> ProjectKeys {
    TrustCentreKey::from_bytes(&[9; 32]).project(project)
}

fn patient(
    name: &str,
    given: &str,
    phone: &str,
    street: &str,
    city: &str,
    insurance: &str,
    birth: &str,
) -> Value {
    json!({
        "resourceType": "Patient",
        "id": "pat-123",
        "meta": { "versionId": "3", "lastUpdated": "2024-05-01T10:00:00Z", "source": "#x", "profile": ["https://www.medizininformatik-initiative.de/fhir/core/modul-person/StructureDefinition/Patient"] },
        "text": { "status": "generated", "div": format!("<div>{given} {name}</div>") },
        "identifier": [
            { "use": "official", "system": "http://fhir.de/sid/gkv/kvid-10", "value": insurance,
              "assigner": { "display": format!("AOK {city}") } },
            { "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR" }] },
              "system": "https://hospital.example/mrn", "value": format!("MRN-{insurance}") }
        ],
        "name": [{ "use": "official", "family": name, "given": [given], "text": format!("{given} {name}") }],
        "telecom": [{ "system": "phone", "value": phone }],
        "gender": "female",
        "birthDate": birth,
        "address": [{ "type": "both", "line": [street], "city": city, "postalCode": "10117", "country": "DE",
                      "extension": [{ "url": "http://example/precinct", "valueString": street }] }],
        "contact": [{ "name": { "family": name }, "telecom": [{ "value": phone }] }],
        "extension": [{ "url": "http://example/birthplace", "valueAddress": { "city": city, "postalCode": "8" } }],
        "generalPractitioner": [{ "reference": "Practitioner/dr-1", "display": format!("Dr. {name}") }]
    })
}

fn observation(name: &str, note: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "id": "obs-9",
        "status": "final",
        "code": { "coding": [{ "system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin" }], "text": note },
        "subject": { "reference": "Patient/pat-123", "display": name },
        "encounter": { "reference": "http://host/fhir/t/Encounter/enc-7/_history/2" },
        "effectiveDateTime": "2024-03-05T08:30:00+01:00",
        "issued": "2024-03-05T09:00:00.000Z",
        "valueQuantity": { "value": 13.1, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL" },
        "note": [{ "text": note, "authorString": name }],
        "identifier": [{ "system": "https://hospital.example/lab", "value": "LAB-4711" }]
    })
}

#[test]
fn patient_keeps_only_what_research_may_see() {
    let k = keys("p1");
    let d = Deidentifier::new(&k, "t", "pat-123", DeidConfig::default());
    let out = d
        .deidentify(&patient(
            "Mustermann",
            "Erika",
            "+49 30 1234567",
            "Hauptstr. 5",
            "Berlin",
            "A123456789",
            "1964-08-12",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out["id"], Value::from(d.pseudonym()));
    assert_eq!(out["identifier"].as_array().map(Vec::len), Some(1));
    assert_eq!(out["identifier"][0]["system"], PSEUDONYM_SYSTEM);
    assert_eq!(out["identifier"][0]["value"], Value::from(d.pseudonym()));
    assert_eq!(out["birthDate"], "1964-08");
    assert_eq!(out["address"], json!([{ "postalCode": "10" }]));
    assert_eq!(out["gender"], "female");
    assert_eq!(
        out["meta"],
        json!({ "profile": ["https://www.medizininformatik-initiative.de/fhir/core/modul-person/StructureDefinition/Patient"] })
    );
    for gone in ["text", "name", "telecom", "contact"] {
        assert!(out.get(gone).is_none(), "{gone}");
    }
    // The extension's address had no 2-digit postal code: dropped, and the extension with it.
    assert!(out.get("extension").is_none());
    assert_eq!(
        out["generalPractitioner"][0],
        json!({ "reference": format!("Practitioner/{}", k.token("Practitioner", "dr-1")) })
    );

    let year = Deidentifier::new(
        &k,
        "t",
        "pat-123",
        DeidConfig {
            birth_date: BirthDatePrecision::Year,
            ..DeidConfig::default()
        },
    );
    let out = year
        .deidentify(&patient("a", "b", "c", "d", "e", "f", "1964-08-12"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out["birthDate"], "1964");
}

#[test]
fn references_ids_and_dates_are_rewritten_consistently() {
    let k = keys("p1");
    let d = Deidentifier::new(&k, "t", "pat-123", DeidConfig::default());
    let out = d
        .deidentify(&observation("Mustermann", "free text"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out["subject"],
        json!({ "reference": format!("Patient/{}", d.pseudonym()) })
    );
    assert_eq!(
        out["encounter"]["reference"],
        Value::from(format!("Encounter/{}", k.token("Encounter", "enc-7")))
    );
    assert_eq!(out["id"], Value::from(k.token("Observation", "obs-9")));
    // The same encounter, de-identified itself, gets the id the reference names.
    let enc = d.deidentify(&json!({ "resourceType": "Encounter", "id": "enc-7", "period": { "start": "2024-03-01", "end": "2024-03-10" } }))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        Value::from(format!("Encounter/{}", enc["id"].as_str().unwrap_or(""))),
        out["encounter"]["reference"]
    );
    let offset = k.date_offset("t", "pat-123", 14);
    assert_ne!(offset, 0);
    let shifted = Day::parse_fhir("2024-03-05")
        .map(|x| x.plus(offset).to_string())
        .unwrap_or_default();
    assert_eq!(
        out["effectiveDateTime"],
        Value::from(format!("{shifted}T08:30:00+01:00"))
    );
    assert_eq!(
        out["issued"],
        Value::from(format!("{shifted}T09:00:00.000Z"))
    );
    let start = Day::parse_fhir("2024-03-01")
        .map(|x| x.plus(offset).to_string())
        .unwrap_or_default();
    assert_eq!(enc["period"]["start"], Value::from(start));
    // Quantities, codes and their displays stay.
    assert_eq!(out["valueQuantity"]["value"], json!(13.1));
    assert_eq!(out["code"]["coding"][0]["display"], "Hemoglobin");
    assert!(out["code"].get("text").is_none());
    assert!(out.get("note").is_none());
    assert_eq!(out["identifier"][0]["system"], TOKEN_SYSTEM);
    // Another project: other pseudonyms and tokens, nothing in common.
    let k2 = keys("p2");
    let d2 = Deidentifier::new(&k2, "t", "pat-123", DeidConfig::default());
    let out2 = d2
        .deidentify(&observation("Mustermann", "free text"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(out["subject"], out2["subject"]);
    assert_ne!(out["id"], out2["id"]);
    assert_ne!(out["identifier"], out2["identifier"]);
}

#[test]
fn partial_dates_keep_their_precision_and_other_references_go() {
    assert_eq!(shift_date("2024-01", 20, true), Some("2024-01".into()));
    assert_eq!(shift_date("2024-01", -1, true), Some("2023-12".into()));
    assert_eq!(shift_date("2024", -1, true), Some("2023".into()));
    assert_eq!(shift_date("2024", -1, false), None);
    assert_eq!(
        shift_date("2024-12-31T23:00:00Z", 1, false),
        Some("2025-01-01T23:00:00Z".into())
    );
    assert_eq!(shift_date("12345", 1, true), None);
    let k = keys("p");
    let d = Deidentifier::new(&k, "t", "x", DeidConfig::default());
    assert_eq!(d.reference("#c1"), Some("#c1".into()));
    assert_eq!(d.reference("not a reference"), None);
    assert_eq!(d.reference("Patient/"), None);
}

/// Strings a generator uses: distinct letters so no short string hides inside a token.
fn word() -> impl Strategy<Value = String> {
    "[A-Z][a-zäöü]{5,10}".prop_map(|s| s)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Leak scan: no name, phone, street, city, insurance number, record number, exact birth date
    /// or id of the input appears anywhere in the output.
    #[test]
    fn no_identifying_string_survives(
        name in word(), given in word(), street in word(), city in word(),
        phone in "\\+49 [0-9]{3} [0-9]{6,8}", insurance in "[A-Z][0-9]{9}",
        y in 1920i32..2020, m in 1u32..=12, dd in 1u32..=28, note in word(),
    ) {
        let birth = format!("{y:04}-{m:02}-{dd:02}");
        let k = keys("proj");
        let d = Deidentifier::new(&k, "t", "pat-123", DeidConfig::default());
        let mut text = String::new();
        for r in [patient(&name, &given, &phone, &street, &city, &insurance, &birth), observation(&name, &note)] {
            text.push_str(&d.deidentify(&r).map_err(|e| TestCaseError::fail(e.to_string()))?.to_string());
        }
        for secret in [&name, &given, &street, &city, &phone, &insurance, &birth, &note, &"pat-123".to_string(), &"LAB-4711".to_string(), &"obs-9".to_string(), &"enc-7".to_string(), &"dr-1".to_string(), &"10117".to_string()] {
            prop_assert!(!text.contains(secret.as_str()), "{secret} leaked into {text}");
        }
    }

    /// Any resource shape: what comes out never contains a string that was only under a dropped key.
    #[test]
    fn dropped_keys_never_leak_from_nested_elements(secret in word(), depth in 0usize..4, key in prop::sample::select(vec!["text", "note", "name", "telecom", "valueString", "display", "comment", "description", "onsetString", "authorString", "_text", "serialNumber"])) {
        let mut inner = json!({ key: secret.clone(), "code": null });
        if key == "display" { inner = json!({ "reference": "Organization/o1", "display": secret.clone() }); }
        for _ in 0..depth { inner = json!({ "component": [inner] }); }
        let r = json!({ "resourceType": "Observation", "id": "o", "status": "final", "extension": [{ "url": "u", "valueString": secret.clone() }], "component": [inner] });
        let k = keys("proj");
        let out = Deidentifier::new(&k, "t", "p", DeidConfig::default()).deidentify(&r).map_err(|e| TestCaseError::fail(e.to_string()))?.to_string();
        prop_assert!(!out.contains(secret.as_str()), "{out}");
    }
}
