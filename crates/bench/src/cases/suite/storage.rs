//! Phases 2, 3 and 6: bulk import into a fresh store (SQLite or PostgreSQL), disk per resource,
//! and `$export`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use medicus_bulk::export::{ExportLevel, ExportRequest, ExportSettings, export as bulk_export};
use medicus_bulk::import::{BarProgress, ImportOptions, Importer, NoProgress, ProgressSink};
use medicus_bulk::jobs::{JobKind, JobRegistry};
use medicus_store::{PostgresOptions, PostgresStore, SqliteStore, Store};

use super::{Backend, SuiteOptions, TENANT};
use crate::{BenchError, Report, pg};

pub struct Imported {
    pub resources: u64,
    pub seconds: f64,
    /// The store as the import left it: SQLite db + WAL before any checkpoint; the tenant's
    /// PostgreSQL tables before `VACUUM`.
    pub bytes_as_left: u64,
}

impl Imported {
    pub fn report(&self, report: &mut Report, backend: &Backend, detail: &str, peak_mib: f64) {
        let case = "import (validated, fully indexed)";
        report.push(
            case,
            "throughput",
            self.resources as f64 / self.seconds.max(1e-9),
            "resources/s",
            detail,
        );
        report.push(case, "peak RSS (VmHWM)", peak_mib, "MiB", detail);
        let metric = match backend {
            Backend::Sqlite => "disk as left (db + WAL)",
            Backend::Postgres(_) => "disk as left (tenant tables; WAL not counted)",
        };
        report.push(
            case,
            metric,
            self.bytes_as_left as f64 / self.resources.max(1) as f64,
            "bytes/resource",
            detail,
        );
    }
}

/// Opens the store of `backend`: SQLite in `data` (created), or the PostgreSQL database with
/// the store's default pool.
pub fn open(backend: &Backend, data: &Path) -> Result<Arc<dyn Store>, BenchError> {
    Ok(match backend {
        Backend::Sqlite => {
            std::fs::create_dir_all(data)?;
            Arc::new(SqliteStore::open(data)?)
        }
        Backend::Postgres(url) => {
            Arc::new(PostgresStore::connect(url, PostgresOptions::default())?)
        }
    })
}

/// Bytes of the store as it is now (see [`Imported::bytes_as_left`]).
fn store_bytes(backend: &Backend, data: &Path) -> Result<u64, BenchError> {
    match backend {
        Backend::Sqlite => Ok(db_bytes(data)),
        Backend::Postgres(url) => pg::tenant_bytes(url, TENANT),
    }
}

/// Imports every generated file with the importer's defaults (validation on, all cores); on
/// PostgreSQL the store writes the batches with `COPY`.
pub fn import(
    opts: &SuiteOptions,
    backend: &Backend,
    ndjson: &Path,
    data: &Path,
) -> Result<Imported, BenchError> {
    let store = open(backend, data)?;
    store.create_tenant(TENANT)?;
    let files = medicus_bulk::import::expand(&[ndjson.to_path_buf()])?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    opts.say(format_args!(
        "importing {} files ({:.1} MB) into {} with validation and indexing",
        files.len(),
        total as f64 / 1e6,
        backend.label()
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
        "imported {} resources into {} in {seconds:.1} s ({:.0}/s)",
        summary.resources,
        backend.label(),
        summary.resources as f64 / seconds.max(1e-9)
    ));
    drop(importer);
    drop(store);
    Ok(Imported {
        resources: summary.resources,
        seconds,
        bytes_as_left: store_bytes(backend, data)?,
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
    /// PostgreSQL: how long `VACUUM (ANALYZE)` of the tenant's tables took.
    pub vacuum_seconds: Option<f64>,
}

impl Disk {
    pub fn report(
        &self,
        report: &mut Report,
        backend: &Backend,
        detail: &str,
        resources: u64,
        ndjson_bytes: u64,
    ) {
        let case = disk_case(backend);
        report.push(
            case,
            "size",
            self.bytes as f64 / resources.max(1) as f64,
            "bytes/resource",
            detail,
        );
        report.push(
            case,
            "vs. NDJSON input",
            self.bytes as f64 / ndjson_bytes.max(1) as f64,
            "ratio",
            detail,
        );
        if let Some(s) = self.vacuum_seconds {
            report.push("VACUUM (ANALYZE) after import", "duration", s, "s", detail);
        }
    }
}

/// The disk case of a backend; the side-by-side table pairs them.
pub fn disk_case(backend: &Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "disk (db after checkpoint, indexes incl.)",
        Backend::Postgres(_) => "disk (tenant tables after VACUUM ANALYZE, indexes incl.)",
    }
}

/// Disk use once the store has settled. SQLite: the import dropped its store, and opening and
/// closing it again makes SQLite checkpoint and remove the WAL on the last close, so this is
/// the size of `medicus.db` (plus any WAL left, normally none). PostgreSQL: the tenant's tables
/// with indexes and TOAST after `VACUUM (ANALYZE)` (which also gives the planner statistics and
/// the visibility map before the searches, as autovacuum would later).
pub fn disk_after_close(
    opts: &SuiteOptions,
    backend: &Backend,
    data: &Path,
) -> Result<Disk, BenchError> {
    match backend {
        Backend::Sqlite => {
            drop(SqliteStore::open(data)?);
            Ok(Disk {
                bytes: db_bytes(data),
                vacuum_seconds: None,
            })
        }
        Backend::Postgres(url) => {
            opts.say(format_args!("VACUUM (ANALYZE) of the tenant's tables"));
            let t = Instant::now();
            pg::vacuum_analyze(url, TENANT)?;
            let vacuum_seconds = Some(t.elapsed().as_secs_f64());
            Ok(Disk {
                bytes: pg::tenant_bytes(url, TENANT)?,
                vacuum_seconds,
            })
        }
    }
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
