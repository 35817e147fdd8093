//! The synthetic pilot that `medicus demo` seeds on first start: hospitals of different sizes as
//! tenants, each with its own synthetic patients, loaded through the bulk importer.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use medicus_bulk::import::{BarProgress, ImportOptions, Importer};
use medicus_store::Store;
use medicus_store::tenant::DEFAULT_TENANT;
use medicus_synth::{GeneratorConfig, write_ndjson};

use crate::error::CliError;

/// Marks a seeded data directory, committed after the last hospital is loaded.
const SEEDED: &str = "demo:pilot";

/// The pilot hospitals: a university hospital, a general hospital and a small district hospital.
pub const HOSPITALS: [(&str, &str, f64); 3] = [
    ("uk-nord", "Universitätsklinikum Nord", 1.5),
    ("klinikum-mitte", "Klinikum Mitte", 1.0),
    ("kreisklinik-sued", "Kreisklinik Süd", 0.5),
];

#[derive(Debug, Clone, Copy)]
pub struct PilotSize {
    /// Patients of the medium hospital; the others scale by their factor.
    pub patients: u64,
    pub resources_per_patient: u32,
}

/// Seeds the pilot unless this data directory already has it. Returns the tenants.
pub fn ensure(
    store: &Arc<dyn Store>,
    data: &Path,
    size: PilotSize,
) -> Result<Vec<&'static str>, CliError> {
    let tenants: Vec<&'static str> = HOSPITALS.iter().map(|(t, _, _)| *t).collect();
    if store.checkpoint(SEEDED)?.is_some() {
        super::super::say(format_args!(
            "medicus demo: pilot data already loaded ({})",
            tenants.join(", ")
        ));
        return Ok(tenants);
    }
    let work = data.join("demo-pilot");
    for (i, (tenant, name, factor)) in HOSPITALS.iter().enumerate() {
        let started = Instant::now();
        store.create_tenant(tenant)?;
        let dir = work.join(tenant);
        let config = GeneratorConfig {
            patients: ((size.patients as f64) * factor).round().max(1.0) as u64,
            hospitals: 1,
            seed: 2026 + i as u64,
            resources_per_patient: size.resources_per_patient,
            ..GeneratorConfig::default()
        };
        let generated = write_ndjson(&config, &dir, |_| {})?;
        let progress = BarProgress::new(
            generated
                .files
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum(),
        );
        let importer = Importer::new(store.clone(), *tenant, ImportOptions::default());
        let summary = importer
            .import_paths(std::slice::from_ref(&dir), &progress)
            .map_err(CliError::Import)?;
        super::super::say(format_args!(
            "medicus demo: {name} ({tenant}): {} patients, {} resources in {:.1} s",
            config.patients,
            summary.resources,
            started.elapsed().as_secs_f64()
        ));
        if summary.failed > 0 {
            tracing::warn!(
                tenant,
                failed = summary.failed,
                "some pilot resources were rejected"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&work);
    let mut session = store.write_session(DEFAULT_TENANT)?;
    session.set_checkpoint(SEEDED, &tenants.join(","))?;
    session.commit()?;
    Ok(tenants)
}
