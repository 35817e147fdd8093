//! Synthetic, MII-shaped FHIR R4 pilot data for medicus: hospitals with departments, and patients
//! with encounters, ICD-10-GM diagnoses with comorbidity, OPS procedures, ATC medication, LOINC labs
//! that follow the diagnoses, vital status and MII Broad Consent (with opt-outs and withdrawals).
//!
//! Every patient is a pure function of `(seed, index)` and the hospital list, so patients can be
//! generated in any order and on any number of threads with identical output. [`write_ndjson`]
//! streams a data set to one NDJSON file per resource type with bounded memory.
//!
//! ```
//! use medicus_synth::{Generator, GeneratorConfig};
//! let generator = Generator::new(GeneratorConfig { hospitals: 2, ..Default::default() }).unwrap();
//! let record = generator.patient(7);
//! assert_eq!(record.resources[0].resource_type(), "Patient");
//! ```

pub mod catalog;
mod config;
mod date;
mod hospital;
mod json;
mod ndjson;
mod patient;
mod record;
mod resources;
mod rng;

use std::ops::Range;

use serde_json::Value;

pub use config::{GeneratorConfig, SynthError};
pub use ndjson::{Summary, write_ndjson};
pub use resources::common::{Resource, ResourceKind, Sink, profile};

use crate::date::Day;
use crate::hospital::Hospital;
use crate::patient::World;
use crate::resources::common::Emitter;
use crate::resources::organization;

/// The date the synthetic history ends ("today" for the data): fixed so output never depends on the clock.
pub const AS_OF: (i32, u32, u32) = (2025, 12, 31);

/// All resources of one patient, in a stable order (Patient first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRecord {
    pub index: u64,
    pub patient_id: String,
    /// Index of the hospital (Organization `hosp-<n>`) the patient belongs to.
    pub hospital: u32,
    pub resources: Vec<Resource>,
}

impl PatientRecord {
    pub fn values(&self) -> Result<Vec<Value>, SynthError> {
        Ok(self
            .resources
            .iter()
            .map(Resource::to_value)
            .collect::<Result<_, _>>()?)
    }
}

/// Generates hospitals and patients for one configuration. Cheap to share across threads (`&self`).
#[derive(Debug, Clone)]
pub struct Generator {
    config: GeneratorConfig,
    hospitals: Vec<Hospital>,
    hospital_weights: Vec<f64>,
    as_of: Day,
}

impl Generator {
    pub fn new(config: GeneratorConfig) -> Result<Self, SynthError> {
        config.validate()?;
        let hospitals = hospital::build(config.seed, config.hospitals);
        let hospital_weights = hospitals.iter().map(|h| h.size).collect();
        Ok(Generator {
            config,
            hospitals,
            hospital_weights,
            as_of: Day::from_ymd(AS_OF.0, AS_OF.1, AS_OF.2),
        })
    }

    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// Organization ids of the hospitals (`hosp-<n>`), e.g. to create one tenant per hospital.
    pub fn hospital_ids(&self) -> Vec<String> {
        self.hospitals.iter().map(|h| h.id.clone()).collect()
    }

    /// Shared resources every patient refers to: hospital and department Organizations, then the
    /// Medication catalogue. Load these before patients.
    pub fn reference_resources(&self) -> Vec<Resource> {
        let mut out: Vec<Resource> = Vec::new();
        let mut em = Emitter::new(&mut out);
        for h in &self.hospitals {
            organization::emit_hospital(&mut em, h);
        }
        organization::emit_medications(&mut em);
        out
    }

    /// Hospital and department Organizations as JSON values.
    pub fn organizations(&self) -> Vec<Value> {
        self.reference_values(ResourceKind::Organization)
    }

    /// The Medication catalogue (one per ATC code) as JSON values.
    pub fn medications(&self) -> Vec<Value> {
        self.reference_values(ResourceKind::Medication)
    }

    fn reference_values(&self, kind: ResourceKind) -> Vec<Value> {
        self.reference_resources()
            .iter()
            .filter(|r| r.kind == kind)
            .filter_map(|r| r.to_value().ok())
            .collect()
    }

    fn world(&self) -> World<'_> {
        World {
            seed: self.config.seed,
            target: self.config.resources_per_patient,
            hospitals: &self.hospitals,
            hospital_weights: &self.hospital_weights,
            as_of: self.as_of,
        }
    }

    /// Streams all resources of patient `index` into `sink`; returns how many were written.
    pub fn patient_into(&self, index: u64, sink: &mut dyn Sink) -> u64 {
        self.generate(index, sink).1
    }

    /// Generates patient `index` into `sink`; returns (model, resources written).
    fn generate(&self, index: u64, sink: &mut dyn Sink) -> (patient::Model, u64) {
        let model = patient::build(&self.world(), index);
        let hosp = &self.hospitals[model.hospital as usize];
        let mut em = Emitter::new(sink);
        record::emit(&mut em, &model, hosp, self.config.seed, self.as_of);
        debug_assert_eq!(
            em.count, model.planned,
            "resource plan and emission disagree"
        );
        let count = em.count;
        (model, count)
    }

    /// All resources of patient `index` (any `u64`; independent of every other patient).
    pub fn patient(&self, index: u64) -> PatientRecord {
        let mut resources: Vec<Resource> = Vec::new();
        let (model, _) = self.generate(index, &mut resources);
        PatientRecord {
            index,
            patient_id: model.id,
            hospital: model.hospital,
            resources,
        }
    }

    /// Transaction Bundle (as JSON text) of `resources`, each entry a `PUT Type/id`, so posting the
    /// same bundle twice leaves the server unchanged.
    pub fn transaction_json(resources: &[Resource]) -> String {
        let size: usize = resources.iter().map(|r| r.json.len() + 80).sum();
        let mut out = String::with_capacity(size + 64);
        out.push_str(r#"{"resourceType":"Bundle","type":"transaction","entry":["#);
        for (i, r) in resources.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(r#"{"resource":"#);
            out.push_str(&r.json);
            out.push_str(r#","request":{"method":"PUT","url":"#);
            json::write_str(&mut out, &format!("{}/{}", r.kind.name(), r.id));
            out.push_str("}}");
        }
        out.push_str("]}");
        out
    }

    /// Transaction Bundle of the shared Organizations and Medications.
    pub fn reference_bundle(&self) -> Result<Value, SynthError> {
        Ok(serde_json::from_str(&Self::transaction_json(
            &self.reference_resources(),
        ))?)
    }

    /// Transaction Bundle of one patient (refers to the reference data, which it does not contain).
    pub fn patient_bundle(&self, index: u64) -> Result<Value, SynthError> {
        self.patients_bundle(index..index.saturating_add(1))
    }

    /// Transaction Bundle of the patients with indices in `indices`.
    pub fn patients_bundle(&self, indices: Range<u64>) -> Result<Value, SynthError> {
        Ok(serde_json::from_str(&self.patients_bundle_json(indices))?)
    }

    /// Like [`Generator::patients_bundle`] but as JSON text, for posting without a parse.
    pub fn patients_bundle_json(&self, indices: Range<u64>) -> String {
        let mut resources: Vec<Resource> = Vec::new();
        for i in indices {
            self.patient_into(i, &mut resources);
        }
        Self::transaction_json(&resources)
    }
}
