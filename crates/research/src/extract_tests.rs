use std::collections::{BTreeMap, BTreeSet};

use medicus_consent::LegalBasis;
use medicus_synth::{Generator, GeneratorConfig};
use serde_json::{Value, json};

use super::*;
use crate::keys::TrustCentreKey;
use crate::project::DataRequest;

const NOW: i64 = 1_767_139_200; // 2025-12-31

fn permit(project: &str, basis: LegalBasis, types: &[&str]) -> DataPermit {
    DataPermit {
        id: format!("permit-{project}"),
        project: project.into(),
        legal_basis: basis,
        purpose: "health-care-research".into(),
        scope: DataRequest {
            resource_types: types.iter().map(|t| t.to_string()).collect(),
            ..DataRequest::default()
        },
        cohort: json!({}),
        issued_at_s: NOW - 100,
        expires_at_s: NOW + 86_400,
        allowed_outputs: [OutputKind::Ndjson].into(),
        named_users: ["alice".to_string()].into(),
        active: true,
        revoked: false,
    }
}

fn patients(n: u64) -> Vec<(String, Vec<Value>)> {
    let generator = Generator::new(GeneratorConfig {
        patients: n,
        hospitals: 1,
        resources_per_patient: 40,
        ..GeneratorConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    (0..n)
        .map(|i| {
            let record = generator.patient(i);
            (
                record.patient_id.clone(),
                record.values().unwrap_or_else(|e| panic!("{e}")),
            )
        })
        .collect()
}

const TYPES: &[&str] = &[
    "Patient",
    "Encounter",
    "Condition",
    "Procedure",
    "Observation",
    "MedicationAdministration",
    "MedicationStatement",
    "Consent",
];

fn run(
    project: &str,
    basis: LegalBasis,
    data: &[(String, Vec<Value>)],
) -> (BTreeMap<String, Vec<u8>>, Value, Vec<PatientOutcome>) {
    let keys = TrustCentreKey::from_bytes(&[6; 32]).project(project);
    let permit = permit(project, basis, TYPES);
    let mut x = Extractor::new(
        &permit,
        &keys,
        "default",
        "alice",
        NOW,
        DeidConfig::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut files = BTreeMap::new();
    let outcomes = data
        .iter()
        .map(|(id, rs)| {
            x.patient(id, rs, &mut files)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    (files, x.manifest(), outcomes)
}

/// Strings that identify a person, from the source data.
fn secrets(data: &[(String, Vec<Value>)]) -> BTreeSet<String> {
    fn walk(v: &Value, key: &str, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    walk(v, k, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, key, out)),
            Value::String(s) => {
                if matches!(
                    key,
                    "family"
                        | "given"
                        | "line"
                        | "city"
                        | "postalCode"
                        | "birthDate"
                        | "value"
                        | "id"
                ) {
                    out.insert(s.clone());
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for (_, resources) in data {
        for r in resources {
            let rtype = r["resourceType"].as_str().unwrap_or_default();
            if rtype == "Patient" {
                for k in [
                    "name",
                    "address",
                    "telecom",
                    "birthDate",
                    "identifier",
                    "id",
                ] {
                    walk(&r[k], k, &mut out);
                }
            } else {
                walk(&r["identifier"], "identifier", &mut out);
                walk(&r["id"], "id", &mut out);
            }
        }
    }
    out
}

#[test]
fn leak_scan_over_synthetic_patients() {
    let data = patients(40);
    let secrets = secrets(&data);
    assert!(secrets.len() > 200, "{}", secrets.len());
    let (files, manifest, outcomes) = run("proj-leak", LegalBasis::OptOut, &data);
    let extracted = outcomes
        .iter()
        .filter(|o| matches!(o, PatientOutcome::Extracted { .. }))
        .count();
    assert!(extracted > 30, "{outcomes:?}");
    assert!(files.get("Observation").is_some_and(|f| !f.is_empty()));
    let mut hits = Vec::new();
    for (t, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}"));
            // Every string of the output, as a whole value.
            let mut strings = BTreeSet::new();
            collect(&v, &mut strings);
            for s in &strings {
                if secrets.contains(s) {
                    hits.push(format!("{t}: {s}"));
                }
            }
        }
        // Longer secrets must not appear even inside other strings.
        for s in secrets.iter().filter(|s| s.len() >= 6 && !is_code_like(s)) {
            if text.contains(s.as_str()) {
                hits.push(format!("{t}: …{s}…"));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "{} hits, e.g. {:?}",
        hits.len(),
        &hits[..hits.len().min(10)]
    );
    assert_eq!(manifest["patients"], json!(extracted as u64));
}

/// Dates of other events can equal a birth date's year-month text; whole-string hits catch them.
fn is_code_like(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

fn collect(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => o.values().for_each(|x| collect(x, out)),
        Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
        Value::String(s) => {
            out.insert(s.clone());
        }
        _ => {}
    }
}

#[test]
fn reproducible_and_unlinkable_across_projects() {
    let data = patients(10);
    let (a1, m1, _) = run("proj-a", LegalBasis::OptOut, &data);
    let (a2, m2, _) = run("proj-a", LegalBasis::OptOut, &data);
    assert_eq!(a1, a2, "same permit and data, same bytes");
    assert_eq!(m1, m2);
    let (b, _, _) = run("proj-b", LegalBasis::OptOut, &data);
    let strings = |files: &BTreeMap<String, Vec<u8>>| {
        let mut out = BTreeSet::new();
        for bytes in files.values() {
            for line in String::from_utf8_lossy(bytes).lines() {
                let v: Value = serde_json::from_str(line).unwrap_or_default();
                if let Some(id) = v["id"].as_str() {
                    out.insert(id.to_string());
                }
                for ident in v["identifier"].as_array().into_iter().flatten() {
                    out.insert(ident["value"].as_str().unwrap_or_default().to_string());
                }
            }
        }
        out
    };
    let (ia, ib) = (strings(&a1), strings(&a2));
    assert_eq!(ia, ib);
    let common: Vec<_> = strings(&a1).intersection(&strings(&b)).cloned().collect();
    assert!(common.is_empty(), "{common:?}");
}

#[test]
fn consent_basis_excludes_objections_and_the_window_limits_data() {
    let data = patients(60);
    let today = Day(i32::try_from(NOW / 86_400).unwrap_or(0));
    let objected = |rs: &[Value]| medicus_consent::objection_status(rs, today).full;
    let with_objection = data.iter().filter(|(_, rs)| objected(rs)).count();
    assert!(
        with_objection > 0,
        "the synthetic population has objections"
    );
    for basis in [LegalBasis::OptOut, LegalBasis::Consent] {
        let (_, manifest, outcomes) = run("proj-c", basis, &data);
        for ((id, rs), outcome) in data.iter().zip(&outcomes) {
            if objected(rs) {
                assert_eq!(
                    *outcome,
                    PatientOutcome::Excluded(Exclusion::Objected),
                    "{id} under {basis:?}"
                );
            } else if basis == LegalBasis::OptOut {
                assert!(
                    matches!(outcome, PatientOutcome::Extracted { .. }),
                    "{id}: {outcome:?}"
                );
            }
        }
        let excluded: u64 = manifest["excluded"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
        let extracted = outcomes
            .iter()
            .filter(|o| matches!(o, PatientOutcome::Extracted { .. }))
            .count();
        assert_eq!(excluded as usize + extracted, data.len());
    }

    // A permit window: nothing dated outside it.
    let keys = TrustCentreKey::from_bytes(&[6; 32]).project("proj-w");
    let mut p = permit("proj-w", LegalBasis::OptOut, &["Observation", "Encounter"]);
    p.scope.from = Some("2024-01-01".into());
    p.scope.to = Some("2024-12-31".into());
    p.scope.elements.insert(
        "Observation".into(),
        vec![
            "Observation.code".into(),
            "effective".into(),
            "subject".into(),
        ],
    );
    let mut x = Extractor::new(
        &p,
        &keys,
        "default",
        "alice",
        NOW,
        DeidConfig {
            max_shift_days: 0,
            ..DeidConfig::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut files = BTreeMap::new();
    for (id, rs) in &data {
        x.patient(id, rs, &mut files)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let obs = String::from_utf8_lossy(files.get("Observation").map_or(&[][..], Vec::as_slice))
        .to_string();
    assert!(!obs.is_empty());
    for line in obs.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_default();
        let keys: BTreeSet<&str> = v
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert!(
            keys.iter().all(
                |k| ["resourceType", "id", "meta", "code", "subject"].contains(k)
                    || k.starts_with("effective")
            ),
            "{keys:?}"
        );
        let day = v["effectiveDateTime"]
            .as_str()
            .and_then(Day::parse_fhir)
            .unwrap_or_else(|| panic!("{line}"));
        assert!(
            day >= Day::parse_fhir("2024-01-01").unwrap_or(Day::MAX)
                && day <= Day::parse_fhir("2024-12-31").unwrap_or(Day::MIN),
            "{line}"
        );
    }
}

#[test]
fn a_permit_that_does_not_allow_the_run_yields_nothing() {
    let keys = TrustCentreKey::from_bytes(&[6; 32]).project("proj-x");
    let p = permit("proj-x", LegalBasis::OptOut, &["Patient"]);
    let refused = |p: &DataPermit, user: &str, now: i64| {
        Extractor::new(p, &keys, "default", user, now, DeidConfig::default()).is_err()
    };
    assert!(!refused(&p, "alice", NOW));
    assert!(refused(&p, "mallory", NOW), "user not named");
    assert!(refused(&p, "alice", NOW + 86_400), "expired");
    let mut revoked = p.clone();
    revoked.revoked = true;
    assert!(refused(&revoked, "alice", NOW));
    let other_keys = TrustCentreKey::from_bytes(&[6; 32]).project("proj-y");
    assert!(
        Extractor::new(
            &p,
            &other_keys,
            "default",
            "alice",
            NOW,
            DeidConfig::default()
        )
        .is_err()
    );
}

#[test]
fn an_objection_excludes_from_the_next_run_and_its_withdrawal_brings_the_patient_back() {
    let mut data = patients(30);
    let today = Day(i32::try_from(NOW / 86_400).unwrap_or(0));
    let (id, resources) = data
        .iter_mut()
        .find(|(_, rs)| !medicus_consent::objection_status(rs, today).full)
        .unwrap_or_else(|| panic!("a patient without objection"));
    let one = |rs: &[Value]| {
        run("proj-o", LegalBasis::OptOut, &[(id.clone(), rs.to_vec())])
            .2
            .remove(0)
    };
    assert!(matches!(one(resources), PatientOutcome::Extracted { .. }));
    let mut objection = medicus_consent::objection_consent(id, &[], today, "2025-12-31T08:00:00Z");
    objection["id"] = json!("objection-1");
    resources.push(objection.clone());
    assert_eq!(
        one(resources),
        PatientOutcome::Excluded(Exclusion::Objected)
    );
    let withdrawn =
        medicus_consent::withdraw_objection(&objection, today).unwrap_or_else(|e| panic!("{e}"));
    if let Some(last) = resources.last_mut() {
        *last = withdrawn;
    }
    assert!(matches!(one(resources), PatientOutcome::Extracted { .. }));
}

#[test]
fn patients_prepared_on_threads_give_the_same_bytes() {
    let data = patients(24);
    let (sequential, manifest, _) = run("proj-t", LegalBasis::OptOut, &data);
    let keys = TrustCentreKey::from_bytes(&[6; 32]).project("proj-t");
    let permit = permit("proj-t", LegalBasis::OptOut, TYPES);
    let mut x = Extractor::new(
        &permit,
        &keys,
        "default",
        "alice",
        NOW,
        DeidConfig::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let prepared: Vec<Prepared> = std::thread::scope(|s| {
        let x = &x;
        let handles: Vec<_> = data
            .chunks(7)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(id, rs)| x.prepare(id, rs))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| panic!("worker panicked"))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    });
    let mut files = BTreeMap::new();
    for p in prepared {
        x.write(p, &mut files).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(files, sequential);
    assert_eq!(x.manifest(), manifest);
}
