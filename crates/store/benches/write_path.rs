//! Store-level write throughput: transactions of 100 resources (10 patients with an encounter,
//! 3 conditions and 5 lab observations each), with full validation-free indexing.
//! `cargo bench -p medicus-store --bench write_path -- [transactions]`
//! Prints the median resources/s over the transactions and the index extraction share.

use std::time::Instant;

use medicus_store::{Precondition, SqliteStore, Store};
use serde_json::{Value, json};

fn bundle(seed: usize) -> Vec<(&'static str, String, Value)> {
    let mut out = Vec::with_capacity(100);
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
        for (c, code) in ["E11.9", "I10.00", "N18.3"].into_iter().enumerate() {
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
                    "valueQuantity": {"value": 7.1 + o as f64 / 10.0, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
                    "referenceRange": [{"low": {"value": 4.0, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}, "high": {"value": 6.0, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}]}),
            ));
        }
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let defs = medicus_fhir::r4();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).expect("open");
    store.create_tenant("bench").expect("tenant");
    let bundles: Vec<_> = (0..n).map(bundle).collect();

    // Extraction alone, as the baseline share of the write path.
    let t = Instant::now();
    let mut entries = 0;
    for b in &bundles {
        for (rt, _, body) in b {
            entries += medicus_store::index::extract_entries(defs, rt, body).len();
        }
    }
    let extract_s = t.elapsed().as_secs_f64();

    let mut rates = Vec::with_capacity(n);
    let start = Instant::now();
    for b in bundles {
        let t = Instant::now();
        let mut s = store.write_session("bench").expect("session");
        for (rt, id, body) in b {
            s.put(rt, &id, body, Precondition::None).expect("put");
        }
        s.commit().expect("commit");
        rates.push(100.0 / t.elapsed().as_secs_f64());
    }
    let total_s = start.elapsed().as_secs_f64();
    let resources = (n * 100) as f64;
    let db = std::fs::metadata(dir.path().join("medicus.db"))
        .map(|m| m.len())
        .unwrap_or(0)
        + std::fs::metadata(dir.path().join("medicus.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!("transactions of 100 resources: {n}");
    println!(
        "median resources/s per transaction: {:.0}",
        median(&mut rates)
    );
    println!("overall resources/s: {:.0}", resources / total_s);
    println!(
        "index extraction alone: {:.0} resources/s ({:.1} entries/resource)",
        resources / extract_s,
        entries as f64 / resources
    );
    println!(
        "disk bytes/resource (db + wal): {:.0}",
        db as f64 / resources
    );
}
