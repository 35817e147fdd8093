//! Benchmark data: transaction Bundles of 100 resources, MII-shaped (10 patients, each with an
//! encounter, 3 diagnoses and 5 lab values), with stable ids so entries are `PUT`s.

use serde_json::{Value, json};

pub const RESOURCES_PER_BUNDLE: usize = 100;

/// The `(type, id, resource)` triples of bundle number `seed`.
pub fn resources(seed: usize) -> Vec<(&'static str, String, Value)> {
    let mut out = Vec::with_capacity(RESOURCES_PER_BUNDLE);
    for p in 0..10 {
        let pid = format!("p{seed}-{p}");
        out.push((
            "Patient",
            pid.clone(),
            json!({"resourceType": "Patient",
                "meta": {"profile": ["https://www.medizininformatik-initiative.de/fhir/core/modul-person/StructureDefinition/Patient"]},
                "identifier": [{"system": "http://fhir.de/sid/gkv/kvid-10", "value": format!("A{seed:05}{p:04}")}],
                "name": [{"use": "official", "family": "Müller", "given": ["Anna", "Maria"]}],
                "gender": "female", "birthDate": "1970-05-01",
                "address": [{"type": "both", "line": ["Hauptstr. 1"], "city": "Freiburg", "postalCode": "79098", "country": "DE"}]}),
        ));
        let eid = format!("e{seed}-{p}");
        out.push((
            "Encounter",
            eid.clone(),
            json!({"resourceType": "Encounter", "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                "subject": {"reference": format!("Patient/{pid}")},
                "period": {"start": "2024-01-02T08:00:00+01:00", "end": "2024-01-09T12:00:00+01:00"}}),
        ));
        for (c, code) in ["E11.90", "I10.00", "N18.3"].into_iter().enumerate() {
            out.push((
                "Condition",
                format!("c{seed}-{p}-{c}"),
                json!({"resourceType": "Condition",
                    "code": {"coding": [{"system": "http://fhir.de/CodeSystem/bfarm/icd-10-gm", "version": "2024", "code": code}]},
                    "subject": {"reference": format!("Patient/{pid}")},
                    "encounter": {"reference": format!("Encounter/{eid}")},
                    "recordedDate": "2024-01-02", "onsetDateTime": "2019-03"}),
            ));
        }
        for o in 0..5 {
            out.push((
                "Observation",
                format!("o{seed}-{p}-{o}"),
                json!({"resourceType": "Observation", "status": "final",
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
                    "subject": {"reference": format!("Patient/{pid}")},
                    "encounter": {"reference": format!("Encounter/{eid}")},
                    "effectiveDateTime": "2024-01-03T07:30:00+01:00",
                    "valueQuantity": {"value": 7.1 + f64::from(o) / 10.0, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
                    "referenceRange": [{"low": {"value": 4.0, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
                                        "high": {"value": 6.0, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}]}),
            ));
        }
    }
    out
}

/// Bundle number `seed` as a FHIR transaction of `PUT` entries.
pub fn transaction_bundle(seed: usize) -> Value {
    let entries: Vec<Value> = resources(seed)
        .into_iter()
        .map(|(rt, id, mut body)| {
            body["id"] = Value::String(id.clone());
            json!({"fullUrl": format!("{rt}/{id}"), "resource": body, "request": {"method": "PUT", "url": format!("{rt}/{id}")}})
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

#[cfg(test)]
mod tests {
    #[test]
    fn bundles_are_valid_and_sized() {
        let b = super::transaction_bundle(3);
        assert_eq!(
            b["entry"].as_array().map(Vec::len),
            Some(super::RESOURCES_PER_BUNDLE)
        );
        let issues = medicus_fhir::validate(&b);
        assert!(issues.is_empty(), "{issues:?}");
    }
}
