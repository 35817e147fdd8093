//! Every generated resource passes structural R4 validation, carries an MII profile (Organizations
//! excepted: the MII core data set has no profile for them), and every reference resolves.

use std::collections::{BTreeMap, HashSet};

use medicus_fhir::Severity;
use medicus_synth::{Generator, GeneratorConfig, profile};
use serde_json::Value;

fn collect_references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "reference" {
                    if let Some(s) = child.as_str() {
                        out.push(s.to_string());
                    }
                } else {
                    collect_references(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_references(i, out)),
        _ => {}
    }
}

/// Guards the test itself: the validator must reject what we would get wrong.
#[test]
fn validator_catches_structural_errors() {
    let bad = serde_json::json!({"resourceType": "Observation", "id": "x", "status": "final",
        "code": {"text": "x"}, "valueQuantity": {"value": "7"}, "bogus": 1});
    assert!(
        medicus_fhir::validate(&bad)
            .iter()
            .any(|i| matches!(i.severity, Severity::Error | Severity::Fatal))
    );
}

#[test]
fn two_hundred_patients_validate_and_resolve() {
    let generator = Generator::new(GeneratorConfig {
        hospitals: 4,
        seed: 11,
        ..Default::default()
    })
    .unwrap();
    let mut all: Vec<Value> = generator
        .reference_resources()
        .iter()
        .map(|r| r.to_value().unwrap())
        .collect();
    for i in 0..200 {
        all.extend(generator.patient(i).values().unwrap());
    }

    let mut failures: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut keys: HashSet<String> = HashSet::new();
    for r in &all {
        let rt = r["resourceType"].as_str().unwrap();
        let id = r["id"].as_str().unwrap();
        assert!(
            id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
            "invalid id {id}"
        );
        assert!(keys.insert(format!("{rt}/{id}")), "duplicate {rt}/{id}");
        for issue in medicus_fhir::validate(r) {
            if matches!(issue.severity, Severity::Error | Severity::Fatal) {
                let key = format!("{rt} {} {}", issue.expression, issue.message);
                let e = failures.entry(key).or_insert((0, id.to_string()));
                e.0 += 1;
            }
        }
        if rt != "Organization" {
            let profiles = r["meta"]["profile"].as_array().expect("meta.profile");
            assert!(
                profiles
                    .iter()
                    .all(|p| profile::ALL.contains(&p.as_str().unwrap_or(""))),
                "{rt}/{id} has a non-MII profile: {profiles:?}"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "validation errors (count, first id):\n{failures:#?}"
    );

    let mut dangling: Vec<String> = Vec::new();
    for r in &all {
        let mut refs = Vec::new();
        collect_references(r, &mut refs);
        for reference in refs {
            if !keys.contains(&reference) {
                dangling.push(format!("{} -> {reference}", r["id"]));
            }
        }
    }
    assert!(dangling.is_empty(), "unresolved references: {dangling:?}");
}

#[test]
fn bundles_are_put_transactions() {
    let generator = Generator::new(GeneratorConfig::default()).unwrap();
    let bundle = generator.patient_bundle(3).unwrap();
    assert_eq!(bundle["type"], "transaction");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), generator.patient(3).resources.len());
    for e in entries {
        assert_eq!(e["request"]["method"], "PUT");
        let url = e["request"]["url"].as_str().unwrap();
        assert_eq!(
            url,
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        );
    }
    assert!(
        medicus_fhir::validate(&bundle)
            .iter()
            .all(|i| !matches!(i.severity, Severity::Error | Severity::Fatal))
    );
    let batch = generator.patients_bundle(0..5).unwrap();
    let total: usize = (0..5).map(|i| generator.patient(i).resources.len()).sum();
    assert_eq!(batch["entry"].as_array().unwrap().len(), total);
    let reference = generator.reference_bundle().unwrap();
    assert!(!reference["entry"].as_array().unwrap().is_empty());
}

/// Nothing happens before birth or after death (or after the data's end date).
#[test]
fn dates_lie_between_birth_and_death() {
    let generator = Generator::new(GeneratorConfig::default()).unwrap();
    let end = format!(
        "{:04}-{:02}-{:02}",
        medicus_synth::AS_OF.0,
        medicus_synth::AS_OF.1,
        medicus_synth::AS_OF.2
    );
    let mut deceased = 0;
    for i in 0..500 {
        let values = generator.patient(i).values().unwrap();
        let patient = &values[0];
        let birth = patient["birthDate"].as_str().unwrap().to_string();
        let last = patient["deceasedDateTime"]
            .as_str()
            .map_or(end.clone(), str::to_string);
        deceased += usize::from(patient.get("deceasedDateTime").is_some());
        for r in &values[1..] {
            let mut dates: Vec<&str> = Vec::new();
            for key in [
                "onsetDateTime",
                "effectiveDateTime",
                "performedDateTime",
                "dateTime",
            ] {
                if let Some(d) = r[key].as_str() {
                    dates.push(d);
                }
            }
            for key in ["period", "effectivePeriod"] {
                if let Some(d) = r[key]["start"].as_str() {
                    dates.push(d);
                }
            }
            for d in dates {
                let day = &d[..10];
                assert!(
                    birth.as_str() <= day && day <= last.as_str(),
                    "{} at {d}, born {birth}, last day {last}",
                    r["id"]
                );
            }
        }
    }
    assert!(deceased > 0);
}
