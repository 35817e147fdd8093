//! The MII Broad Consents of the core data set test Bundles (shared/reference/mii-kds-testdata),
//! evaluated with each patient's encounters.

use std::collections::BTreeMap;
use std::path::PathBuf;

use medicus_consent::{
    ConsentPolicy, Day, Exclusion, LegalBasis, PatientConsent, Period, evaluate,
};
use serde_json::Value;

fn testdata_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/mii-kds-testdata"
    ))
}

fn d(s: &str) -> Day {
    Day::parse_fhir(s).unwrap_or_else(|| panic!("bad test date {s}"))
}

/// Per patient id: (Consents, Encounters) from every Bundle.
fn patients() -> BTreeMap<String, (Vec<Value>, Vec<Value>)> {
    let mut out: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
    let dir = testdata_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable test bundle");
        let bundle: Value = serde_json::from_str(&text).expect("test bundle is JSON");
        for e in bundle["entry"].as_array().into_iter().flatten() {
            let r = &e["resource"];
            let (pointer, consent) = match r["resourceType"].as_str() {
                Some("Consent") => ("/patient/reference", true),
                Some("Encounter") => ("/subject/reference", false),
                _ => continue,
            };
            let Some(patient) = r.pointer(pointer).and_then(Value::as_str) else {
                continue;
            };
            let slot = out
                .entry(patient.trim_start_matches("Patient/").to_string())
                .or_default();
            if consent {
                slot.0.push(r.clone())
            } else {
                slot.1.push(r.clone())
            }
        }
    }
    out
}

fn eval(p: &BTreeMap<String, (Vec<Value>, Vec<Value>)>, n: u32) -> PatientConsent {
    let (consents, encounters) = p
        .get(&format!("mii-exa-test-data-patient-{n}"))
        .unwrap_or_else(|| panic!("patient {n} in the test data"));
    evaluate(&ConsentPolicy::default(), consents, encounters)
}

const PURPOSE: &str = "health-care-research";

#[test]
fn every_mii_test_patient_with_a_consent_gets_the_expected_window() {
    let p = patients();
    let consenting: Vec<&String> = p
        .iter()
        .filter(|(_, (c, _))| !c.is_empty())
        .map(|(k, _)| k)
        .collect();
    assert_eq!(consenting.len(), 10, "{consenting:?}");
    // Signed after their (first) stay: the window starts on the signature day.
    for (n, start, end) in [
        (1, "2024-02-23", "2054-01-31"),
        (2, "2024-03-14", "2054-02-28"),
        (4, "2020-09-10", "2050-09-30"),
        (5, "2023-07-05", "2053-07-31"),
        (6, "2022-03-08", "2052-03-31"),
        (7, "2024-01-03", "2054-01-31"),
        (9, "2024-02-15", "2054-02-28"),
        (10, "2019-05-10", "2049-05-31"),
    ] {
        let pc = eval(&p, n);
        assert_eq!(
            pc.window.periods(),
            &[Period {
                start: d(start),
                end: d(end)
            }],
            "patient {n}"
        );
        assert_eq!(
            pc.gate.periods(),
            &[Period {
                start: d(start),
                end: d(end)
            }],
            "patient {n}"
        );
        assert!(
            pc.permits_research(LegalBasis::Consent, PURPOSE, d("2026-01-01")),
            "patient {n}"
        );
        assert!(
            !pc.permits_research(LegalBasis::Consent, PURPOSE, d(start).plus(-1)),
            "patient {n}"
        );
        assert!(pc.objections.is_empty());
    }
}

#[test]
fn patient_3_signed_during_a_stay_so_the_window_starts_at_its_admission() {
    // Encounter 2022-04-02..2022-04-22, consent signed 2022-04-14.
    let pc = eval(&patients(), 3);
    assert_eq!(
        pc.window.periods(),
        &[Period {
            start: d("2022-04-02"),
            end: d("2052-02-28")
        }]
    );
    assert_eq!(
        pc.gate.periods(),
        &[Period {
            start: d("2022-04-14"),
            end: d("2052-02-28")
        }]
    );
    assert!(pc.permits_data(
        LegalBasis::Consent,
        PURPOSE,
        d("2026-01-01"),
        d("2022-04-05")
    ));
    assert!(!pc.permits_data(
        LegalBasis::Consent,
        PURPOSE,
        d("2026-01-01"),
        d("2022-04-01")
    ));
}

#[test]
fn patient_8_consent_expired_after_ten_days() {
    // All provisions 2023-11-05..2023-11-15: the gate is closed today.
    let pc = eval(&patients(), 8);
    assert!(pc.permits_research(LegalBasis::Consent, PURPOSE, d("2023-11-10")));
    assert_eq!(
        pc.decide(LegalBasis::Consent, PURPOSE, d("2026-01-01")),
        Err(Exclusion::GateClosed)
    );
    // An opt-out project is not bound by the Broad Consent.
    assert!(pc.permits_research(LegalBasis::OptOut, PURPOSE, d("2026-01-01")));
}

#[test]
fn patients_without_a_consent_are_excluded_under_consent_only() {
    let p = patients();
    let (c, e) = p
        .get("mii-exa-test-data-icu-patient-1")
        .expect("icu patient");
    let pc = evaluate(&ConsentPolicy::default(), c, e);
    assert_eq!(
        pc.decide(LegalBasis::Consent, PURPOSE, d("2026-01-01")),
        Err(Exclusion::NoConsent)
    );
    assert!(pc.permits_research(LegalBasis::Statutory, PURPOSE, d("2026-01-01")));
}
