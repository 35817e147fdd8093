//! Benchmark data: the synthetic MII pilot (`medicus-synth`), one patient (about 100 resources:
//! encounters, diagnoses, procedures, medication, labs, consent) per transaction or batch unit.
//! Patients refer to shared Organizations and Medications, which are loaded first.

use medicus_synth::{Generator, GeneratorConfig, Resource};
use serde_json::Value;

use crate::BenchError;

/// A resource ready for a store write: type, id and body.
pub type Typed = (&'static str, String, Value);

pub struct Fixture {
    generator: Generator,
}

fn typed(resources: Vec<Resource>) -> Result<Vec<Typed>, BenchError> {
    resources
        .into_iter()
        .map(|r| {
            let body = r
                .to_value()
                .map_err(|e| BenchError::Unexpected(e.to_string()))?;
            Ok((r.resource_type(), r.id, body))
        })
        .collect()
}

impl Fixture {
    /// The same seed as the suite, so figures of different cases describe the same data.
    pub fn new(patients: u64) -> Result<Fixture, BenchError> {
        let config = GeneratorConfig {
            patients,
            seed: 42,
            ..GeneratorConfig::default()
        };
        Ok(Fixture {
            generator: Generator::new(config)?,
        })
    }

    /// The shared Organizations and Medications the patients refer to.
    pub fn reference_resources(&self) -> Result<Vec<Typed>, BenchError> {
        typed(self.generator.reference_resources())
    }

    /// All resources of patient `index`.
    pub fn patient_resources(&self, index: u64) -> Result<Vec<Typed>, BenchError> {
        typed(self.generator.patient(index).resources)
    }

    /// The shared resources as a transaction Bundle (JSON text).
    pub fn reference_bundle_json(&self) -> String {
        Generator::transaction_json(&self.generator.reference_resources())
    }

    /// Patient `index` as a transaction Bundle of `PUT` entries (JSON text) and its size.
    pub fn patient_bundle_json(&self, index: u64) -> (String, usize) {
        let record = self.generator.patient(index);
        (
            Generator::transaction_json(&record.resources),
            record.resources.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bundles_are_valid_transactions() {
        let f = super::Fixture::new(3).unwrap();
        let (json, n) = f.patient_bundle_json(1);
        let bundle: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(bundle["type"], "transaction");
        assert_eq!(bundle["entry"].as_array().map(Vec::len), Some(n));
        assert!(n > 10);
        let issues = medicus_fhir::validate(&bundle);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(f.patient_resources(1).unwrap().len(), n);
        assert!(!f.reference_resources().unwrap().is_empty());
    }
}
