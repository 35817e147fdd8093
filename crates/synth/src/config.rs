//! Generator configuration and errors.

use std::path::PathBuf;

/// What to generate. Every field is plain data so callers (CLI, demo, benchmarks) can build it directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// Number of patients to generate (`write_ndjson`, batch helpers).
    pub patients: u64,
    /// Number of hospitals (Organizations, later tenants); at least 1.
    pub hospitals: u32,
    /// Seed: same seed and config, byte-identical output.
    pub seed: u64,
    /// Target mean number of resources per patient (default 100). Individual patients vary widely.
    pub resources_per_patient: u32,
    /// Index of the first patient, so a large data set can be generated in independent slices.
    pub start_patient: u64,
    /// Worker threads for `write_ndjson`; 0 means one per available core. Output does not depend on it.
    pub threads: usize,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            patients: 1000,
            hospitals: 3,
            seed: 42,
            resources_per_patient: 100,
            start_patient: 0,
            threads: 0,
        }
    }
}

/// Limits that keep ids short and generation meaningful.
pub const MAX_HOSPITALS: u32 = 100_000;
pub const MIN_RESOURCES_PER_PATIENT: u32 = 10;
pub const MAX_RESOURCES_PER_PATIENT: u32 = 100_000;

impl GeneratorConfig {
    pub fn validate(&self) -> Result<(), SynthError> {
        if self.hospitals == 0 || self.hospitals > MAX_HOSPITALS {
            return Err(SynthError::InvalidConfig(format!(
                "hospitals must be between 1 and {MAX_HOSPITALS}, got {}",
                self.hospitals
            )));
        }
        if !(MIN_RESOURCES_PER_PATIENT..=MAX_RESOURCES_PER_PATIENT)
            .contains(&self.resources_per_patient)
        {
            return Err(SynthError::InvalidConfig(format!(
                "resources per patient must be between {MIN_RESOURCES_PER_PATIENT} and {MAX_RESOURCES_PER_PATIENT}, got {}",
                self.resources_per_patient
            )));
        }
        if self.start_patient.checked_add(self.patients).is_none() {
            return Err(SynthError::InvalidConfig(
                "start patient plus patient count overflows".into(),
            ));
        }
        if self.threads > 1024 {
            return Err(SynthError::InvalidConfig(format!(
                "at most 1024 threads, got {}",
                self.threads
            )));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("invalid generator configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a generator thread failed: {0}")]
    Worker(String),
    #[error("generated JSON did not parse (a generator bug): {0}")]
    Json(#[from] serde_json::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_values() {
        assert!(GeneratorConfig::default().validate().is_ok());
        let bad = [
            GeneratorConfig {
                hospitals: 0,
                ..Default::default()
            },
            GeneratorConfig {
                resources_per_patient: 1,
                ..Default::default()
            },
            GeneratorConfig {
                start_patient: u64::MAX,
                patients: 2,
                ..Default::default()
            },
            GeneratorConfig {
                threads: 5000,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(
                matches!(c.validate(), Err(SynthError::InvalidConfig(_))),
                "{c:?}"
            );
        }
    }
}
