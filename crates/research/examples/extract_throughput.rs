//! Extraction throughput on synthetic patients: `cargo run --release -p medicus-research
//! --example extract_throughput [patients]`. Consent evaluation, de-identification and NDJSON
//! serialisation of every resource of every patient, prepared on every core and written in order
//! (data generation not counted).

use std::collections::BTreeMap;
use std::time::Instant;

use medicus_consent::LegalBasis;
use medicus_research::extract::Extractor;
use medicus_research::project::{DataPermit, DataRequest, OutputKind};
use medicus_research::{DeidConfig, TrustCentreKey};
use medicus_synth::{Generator, GeneratorConfig};
use serde_json::{Value, json};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let generator = match Generator::new(GeneratorConfig {
        patients: n,
        hospitals: 1,
        ..GeneratorConfig::default()
    }) {
        Ok(g) => g,
        Err(e) => return eprintln!("{e}"),
    };
    let data: Vec<(String, Vec<Value>)> = (0..n)
        .filter_map(|i| {
            let r = generator.patient(i);
            r.values().ok().map(|v| (r.patient_id.clone(), v))
        })
        .collect();
    let total: usize = data.iter().map(|(_, r)| r.len()).sum();
    let now = 1_767_139_200;
    let permit = DataPermit {
        id: "permit".into(),
        project: "bench".into(),
        legal_basis: LegalBasis::OptOut,
        purpose: "health-care-research".into(),
        scope: DataRequest {
            resource_types: [
                "Patient",
                "Encounter",
                "Condition",
                "Procedure",
                "Observation",
                "MedicationAdministration",
                "MedicationStatement",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            ..DataRequest::default()
        },
        cohort: json!({}),
        issued_at_s: now - 1,
        expires_at_s: now + 86_400,
        allowed_outputs: [OutputKind::Ndjson].into(),
        named_users: ["bench".to_string()].into(),
        active: true,
        revoked: false,
    };
    let keys = TrustCentreKey::from_bytes(&[1; 32]).project("bench");
    let t = Instant::now();
    let mut x = match Extractor::new(
        &permit,
        &keys,
        "default",
        "bench",
        now,
        DeidConfig::default(),
    ) {
        Ok(x) => x,
        Err(e) => return eprintln!("{e}"),
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = data.len().div_ceil(threads).max(1);
    let prepared = std::thread::scope(|s| {
        let x = &x;
        let handles: Vec<_> = data
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .map(|(id, rs)| x.prepare(id, rs))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    });
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for part in prepared {
        let Ok(Ok(part)) = part else {
            return eprintln!("a worker failed");
        };
        for p in part {
            if let Err(e) = x.write(p, &mut files) {
                return eprintln!("{e}");
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let written: usize = files
        .values()
        .map(|f| f.iter().filter(|b| **b == b'\n').count())
        .sum();
    println!(
        "{n} patients, {total} resources read, {written} written, {threads} threads: {:.0} resources/s",
        total as f64 / secs
    );
}
