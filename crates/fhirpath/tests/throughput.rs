//! Micro-benchmark: evaluations per second of typical search-parameter expressions on a typical
//! Observation. Ignored by default; run optimised:
//!
//! ```sh
//! cargo test -p medicus-fhirpath --release --test throughput -- --ignored --nocapture
//! ```

use std::time::Instant;

use medicus_fhirpath::{Env, Expression};
use serde_json::Value;

const OBSERVATION: &str = r#"{
  "resourceType": "Observation",
  "id": "f001",
  "meta": {"lastUpdated": "2023-01-01T10:00:00Z", "profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
  "identifier": [{"use": "official", "system": "http://www.bmc.nl/zorgportal/identifiers/observations", "value": "6323"}],
  "status": "final",
  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8", "display": "Glucose [Moles/volume] in Blood"}]},
  "subject": {"reference": "Patient/f001", "display": "P. van de Heuvel"},
  "encounter": {"reference": "Encounter/e1"},
  "effectivePeriod": {"start": "2013-04-02T09:30:10+01:00"},
  "issued": "2013-04-03T15:30:10.000+01:00",
  "performer": [{"reference": "Practitioner/f005", "display": "A. Langeveld"}],
  "valueQuantity": {"value": 6.3, "unit": "mmol/l", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
  "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}],
  "referenceRange": [{"low": {"value": 3.1, "unit": "mmol/l"}, "high": {"value": 6.2, "unit": "mmol/l"}}],
  "component": [
    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 107, "unit": "mmHg"}},
    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {"value": 60, "unit": "mmHg"}}
  ]
}"#;

/// A mix of R4 Observation search parameter expressions.
const EXPRESSIONS: &[&str] = &[
    "Observation.code",
    "Observation.subject.where(resolve() is Patient)",
    "(Observation.value as Quantity) | (Observation.value as SampledData)",
    "Observation.effective",
    "Observation.component.code",
    "Observation.category",
    "Observation.identifier",
    "Observation.performer",
    "Observation.status",
    "(Observation.value as CodeableConcept)",
    "Observation.component.value.ofType(Quantity)",
    "AllergyIntolerance.code | AllergyIntolerance.reaction.substance | Condition.code | (DeviceRequest.code as CodeableConcept) | DiagnosticReport.code | FamilyMemberHistory.condition.code | List.code | Medication.code | (MedicationAdministration.medication as CodeableConcept) | Observation.code | Procedure.code | ServiceRequest.code",
    "Resource.meta.lastUpdated",
];

#[test]
#[ignore = "benchmark; run with --release -- --ignored --nocapture"]
fn search_parameter_throughput() {
    let Ok(resource) = serde_json::from_str::<Value>(OBSERVATION) else {
        panic!("fixture does not parse");
    };
    let compiled: Vec<Expression> = EXPRESSIONS
        .iter()
        .map(|s| Expression::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect();
    let env = Env::default();
    let rounds = 20_000;
    let start = Instant::now();
    let mut items = 0usize;
    for _ in 0..rounds {
        for e in &compiled {
            match e.evaluate(&resource, &env) {
                Ok(r) => items += r.len(),
                Err(err) => panic!("{}: {err}", e.source()),
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let evals = (rounds * compiled.len()) as f64;
    println!(
        "{:.0} evaluations/s ({:.2} µs each; {} expressions x {rounds} rounds, {items} items)",
        evals / secs,
        secs * 1e6 / evals,
        compiled.len()
    );
}
