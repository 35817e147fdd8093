//! Bulk import: NDJSON files, Bundles and folders of them (also `.gz`) into one tenant.
//!
//! Used by `medicus import` and by `POST /fhir/{tenant}/$import`:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use medicus_bulk::import::{Importer, ImportOptions, NoProgress};
//! # fn demo(store: Arc<dyn medicus_store::Store>) -> Result<(), Box<dyn std::error::Error>> {
//! let importer = Importer::new(store, "default", ImportOptions::default());
//! let summary = importer.import_paths(&["data/".into()], &NoProgress)?;
//! println!("{} imported, {} failed", summary.resources, summary.failed);
//! # Ok(()) }
//! ```
//!
//! How it works (`pipeline`): a reader thread streams lines (or Bundle entries, with `urn:uuid`
//! references resolved, see `bundle`), worker threads parse, validate and extract index entries
//! in parallel, and one writer commits batches with a checkpoint per file in the same
//! transaction. Every resource is a PUT by id (ids are derived deterministically where the
//! input has none), so re-running or resuming an import never duplicates resources; a re-run
//! skips what the checkpoints say is committed. A bad line is reported with its file and line
//! and never stops the rest.

mod bundle;
mod checkpoint;
mod ndjson;
mod pipeline;
mod progress;
mod report;
mod source;
mod worker;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use medicus_store::{Store, StoreError};
use thiserror::Error;

pub use progress::{BarProgress, NoProgress, Progress, ProgressSink};
pub use report::{LineError, default_report_path};
pub use source::{Format, InputFile, expand};

/// Fatal import errors. Problems with single lines are not errors: they go to the report.
#[derive(Debug, Error)]
pub enum ImportError {
    #[error("{}: {source}", path.display())]
    NoSuchPath {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the error report {}: {source}", path.display())]
    Report {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unknown tenant '{0}' (create it with `medicus admin tenant create {0}`)")]
    UnknownTenant(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Resources per committed batch.
    pub batch_size: usize,
    /// Input bytes per committed batch (whichever limit is reached first).
    pub batch_bytes: usize,
    /// Parsing/validation threads; 0 means one per core.
    pub workers: usize,
    /// Structural validation of every resource (on by default).
    pub validate: bool,
    /// Where per-line errors are written as NDJSON; `None` keeps them in the summary only.
    pub report_path: Option<PathBuf>,
    /// Set to stop after the current batch (committed, so a later run resumes after it).
    pub cancel: Arc<AtomicBool>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            batch_size: 10_000,
            batch_bytes: 32 << 20,
            workers: 0,
            validate: true,
            report_path: None,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl ImportOptions {
    fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    pub files: usize,
    /// Files a previous run had already imported completely.
    pub skipped_files: usize,
    /// Resources written in this run.
    pub resources: u64,
    /// Lines or entries that failed.
    pub failed: u64,
    pub batches: u64,
    /// Input bytes (compressed for `.gz`).
    pub bytes: u64,
    pub elapsed: Duration,
    /// Stopped through `ImportOptions::cancel` (a re-run resumes).
    pub cancelled: bool,
    /// The error report, when errors were written to one.
    pub report: Option<PathBuf>,
    /// The first errors (all of them are in the report file).
    pub errors: Vec<LineError>,
}

impl ImportSummary {
    pub fn resources_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.resources as f64 / secs
        } else {
            0.0
        }
    }

    /// The `$import` completion body: counts, and each kept error as an OperationOutcome issue.
    pub fn to_json(&self) -> serde_json::Value {
        let issues: Vec<serde_json::Value> = self
            .errors
            .iter()
            .map(|e| {
                let mut issue = serde_json::json!({
                    "severity": "error",
                    "code": "invalid",
                    "diagnostics": match (e.line, e.entry) {
                        (Some(line), _) => format!("{} line {line}: {}", e.file, e.error),
                        (None, Some(entry)) => format!("{} entry {entry}: {}", e.file, e.error),
                        (None, None) => format!("{}: {}", e.file, e.error),
                    },
                });
                if let Some(expr) = &e.expression {
                    issue["expression"] = serde_json::json!([expr]);
                }
                issue
            })
            .collect();
        serde_json::json!({
            "resources": self.resources,
            "failed": self.failed,
            "files": self.files,
            "batches": self.batches,
            "bytes": self.bytes,
            "seconds": self.elapsed.as_secs_f64(),
            "cancelled": self.cancelled,
            "errors": {"resourceType": "OperationOutcome", "issue": issues},
        })
    }
}

/// Imports into one tenant of a store.
pub struct Importer {
    store: Arc<dyn Store>,
    tenant: String,
    options: ImportOptions,
}

impl Importer {
    pub fn new(store: Arc<dyn Store>, tenant: impl Into<String>, options: ImportOptions) -> Self {
        Importer {
            store,
            tenant: tenant.into(),
            options,
        }
    }

    pub fn options(&self) -> &ImportOptions {
        &self.options
    }

    /// Imports files and folders (recursively: `*.ndjson`, `*.json`, also `.gz`).
    pub fn import_paths(
        &self,
        paths: &[PathBuf],
        progress: &dyn ProgressSink,
    ) -> Result<ImportSummary, ImportError> {
        let files = expand(paths)?;
        self.import_files(&files, progress)
    }

    /// Imports files already described (e.g. an `$import` body saved under a job folder).
    pub fn import_files(
        &self,
        files: &[InputFile],
        progress: &dyn ProgressSink,
    ) -> Result<ImportSummary, ImportError> {
        if !self.store.tenant_exists(&self.tenant)? {
            return Err(ImportError::UnknownTenant(self.tenant.clone()));
        }
        let summary = pipeline::run(&*self.store, &self.tenant, files, &self.options, progress)?;
        // The database's own maintenance catches up with small loads; a large one would
        // otherwise be searched with plans made for the tables before it.
        if summary.resources >= REFRESH_STATISTICS_AFTER {
            self.store.refresh_statistics(&self.tenant)?;
        }
        Ok(summary)
    }
}

/// Resources written by one import from which the store's statistics are refreshed at its end.
const REFRESH_STATISTICS_AFTER: u64 = 10_000;
