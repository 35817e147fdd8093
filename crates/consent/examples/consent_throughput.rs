//! Consent evaluation throughput: `cargo run --release -p medicus-consent --example
//! consent_throughput [patients]`. Compiles MII-shaped Broad Consents (every fifth patient also
//! with an objection) and asks each compiled consent for the research mask, on one thread.

use std::time::Instant;

use medicus_consent::{ConsentPolicy, Day, LegalBasis, evaluate};
use serde_json::{Value, json};

fn broad(i: u32) -> Value {
    let start = format!("20{:02}-0{}-1{}", 10 + i % 15, 1 + i % 9, i % 10);
    let end = format!("20{:02}-0{}-1{}", 40 + i % 15, 1 + i % 9, i % 10);
    let provisions: Vec<Value> = ["6", "7", "8", "9", "37", "44", "45"]
        .iter()
        .map(|c| {
            json!({ "type": "permit", "period": { "start": start, "end": end },
                    "code": [{ "coding": [{ "system": "urn:oid:2.16.840.1.113883.3.1937.777.24.5.3",
                                            "code": format!("2.16.840.1.113883.3.1937.777.24.5.3.{c}") }] }] })
        })
        .collect();
    json!({ "resourceType": "Consent", "status": "active",
            "category": [{ "coding": [{ "system": "http://loinc.org", "code": "57016-8" }] }],
            "provision": { "type": "deny", "period": { "start": start, "end": end }, "provision": provisions } })
}

fn opt_out() -> Value {
    json!({ "resourceType": "Consent", "status": "active", "dateTime": "2024-01-01",
            "category": [{ "coding": [{ "system": "http://fhir.de/ConsentManagement/CodeSystem/TemplateType", "code": "CONSENT-OPT-OUT" }] }],
            "provision": { "type": "deny", "period": { "start": "2024-01-01" } } })
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let patients: Vec<Vec<Value>> = (0..n)
        .map(|i| {
            if i % 5 == 0 {
                vec![broad(i), opt_out()]
            } else {
                vec![broad(i)]
            }
        })
        .collect();
    let encounters = [
        json!({ "resourceType": "Encounter", "period": { "start": "2015-03-01", "end": "2015-03-20" } }),
    ];
    let policy = ConsentPolicy::default();
    let today = Day::today();

    let t = Instant::now();
    let compiled: Vec<_> = patients
        .iter()
        .map(|c| evaluate(&policy, c, &encounters))
        .collect();
    let compile_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut permitted = 0usize;
    for _ in 0..10 {
        permitted += compiled
            .iter()
            .filter(|pc| pc.permits_research(LegalBasis::Consent, "health-care-research", today))
            .count();
    }
    let mask_s = t.elapsed().as_secs_f64() / 10.0;
    println!(
        "{n} patients: compile {:.0} patients/s, mask {:.0} patients/s ({} permitted)",
        f64::from(n) / compile_s,
        f64::from(n) / mask_s,
        permitted / 10
    );
}
