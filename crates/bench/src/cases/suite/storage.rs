//! Phases 2, 3 and 6: bulk import into a fresh store, disk per resource, and `$export`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use medicus_bulk::export::{ExportLevel, ExportRequest, ExportSettings, export as bulk_export};
use medicus_bulk::import::{BarProgress, ImportOptions, Importer, NoProgress, ProgressSink};
use medicus_bulk::jobs::{JobKind, JobRegistry};
use medicus_store::{SqliteStore, Store};

use super::{SuiteOptions, TENANT};
use crate::{BenchError, Report};

pub struct Imported {
    pub resources: u64,
    pub seconds: f64,
    /// Database files as the import left them (db + WAL), before any checkpoint.
    pub bytes_as_left: u64,
}

impl Imported {
    pub fn report(&self, report: &mut Report, detail: &str, peak_mib: f64) {
        let case = "import (validated, fully indexed)";
        report.push(
            case,
            "throughput",
            self.resources as f64 / self.seconds.max(1e-9),
            "resources/s",
            detail,
        );
        report.push(case, "peak RSS (VmHWM)", peak_mib, "MiB", detail);
        report.push(
            case,
            "disk as left (db + WAL)",
            self.bytes_as_left as f64 / self.resources.max(1) as f64,
            "bytes/resource",
            detail,
        );
    }
}

pub fn open(data_dir: &Path) -> Result<Arc<dyn Store>, BenchError> {
    Ok(Arc::new(SqliteStore::open(data_dir)?))
}

/// Imports every generated file with the importer's defaults (validation on, all cores).
pub fn import(opts: &SuiteOptions, ndjson: &Path, data: &Path) -> Result<Imported, BenchError> {
    let store = open(data)?;
    store.create_tenant(TENANT)?;
    let files = medicus_bulk::import::expand(&[ndjson.to_path_buf()])?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    opts.say(format_args!(
        "importing {} files ({:.1} MB) with validation and indexing",
        files.len(),
        total as f64 / 1e6
    ));
    let bar;
    let progress: &dyn ProgressSink = if opts.progress {
        bar = BarProgress::new(total);
        &bar
    } else {
        &NoProgress
    };
    let importer = Importer::new(Arc::clone(&store), TENANT, ImportOptions::default());
    let t = Instant::now();
    let summary = importer.import_files(&files, progress)?;
    let seconds = t.elapsed().as_secs_f64();
    if summary.failed > 0 {
        let first = summary
            .errors
            .first()
            .map(|e| format!("{}: {}", e.file, e.error))
            .unwrap_or_default();
        return Err(BenchError::Unexpected(format!(
            "import failed for {} resources, first: {first}",
            summary.failed
        )));
    }
    opts.say(format_args!(
        "imported {} resources in {seconds:.1} s ({:.0}/s)",
        summary.resources,
        summary.resources as f64 / seconds.max(1e-9)
    ));
    Ok(Imported {
        resources: summary.resources,
        seconds,
        bytes_as_left: db_bytes(data),
    })
}

/// `medicus.db` plus its WAL (the shared-memory index `-shm` is not data and is not counted).
fn db_bytes(data: &Path) -> u64 {
    ["medicus.db", "medicus.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

pub struct Disk {
    pub bytes: u64,
}

impl Disk {
    pub fn report(&self, report: &mut Report, detail: &str, resources: u64, ndjson_bytes: u64) {
        report.push(
            "disk (db after checkpoint, indexes incl.)",
            "size",
            self.bytes as f64 / resources.max(1) as f64,
            "bytes/resource",
            detail,
        );
        report.push(
            "disk (db after checkpoint, indexes incl.)",
            "vs. NDJSON input",
            self.bytes as f64 / ndjson_bytes.max(1) as f64,
            "ratio",
            detail,
        );
    }
}

/// Disk use once the WAL is folded into the database: the import dropped its store, and
/// opening and closing it again makes SQLite checkpoint and remove the WAL on the last close.
/// So this is the size of `medicus.db` (plus any WAL left, normally none).
pub fn disk_after_close(data: &Path) -> Result<Disk, BenchError> {
    drop(SqliteStore::open(data)?);
    Ok(Disk {
        bytes: db_bytes(data),
    })
}

/// A system-level `$export` of everything through the bulk engine (raw stored bodies, NDJSON
/// part files), as the server's `$export` job runs it.
pub fn export(
    opts: &SuiteOptions,
    store: &dyn Store,
    work: &Path,
    report: &mut Report,
    detail: &str,
) -> Result<(), BenchError> {
    opts.say(format_args!("exporting (system level)"));
    let jobs = JobRegistry::new(work.join("bulk"));
    let job = jobs.create(TENANT, JobKind::Export, "bench suite")?;
    let settings = ExportSettings::new("http://bench/fhir/bench/$export-file/suite");
    let t = Instant::now();
    let manifest = bulk_export(
        store,
        &job,
        &ExportRequest::new(ExportLevel::System),
        &settings,
    )
    .map_err(|e| BenchError::Unexpected(format!("export: {e}")))?;
    let seconds = t.elapsed().as_secs_f64();
    let resources: u64 = manifest["output"]
        .as_array()
        .map(|o| o.iter().filter_map(|f| f["count"].as_u64()).sum())
        .unwrap_or(0);
    let bytes: u64 = std::fs::read_dir(&job.dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let _ = std::fs::remove_dir_all(&job.dir);
    opts.say(format_args!(
        "exported {resources} resources in {seconds:.1} s"
    ));
    let case = "$export system (bulk engine)";
    report.push(
        case,
        "throughput",
        resources as f64 / seconds.max(1e-9),
        "resources/s",
        detail,
    );
    report.push(
        case,
        "output",
        bytes as f64 / seconds.max(1e-9) / 1e6,
        "MB/s",
        detail,
    );
    report.push(case, "resources", resources as f64, "resources", detail);
    Ok(())
}
