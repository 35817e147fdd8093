//! FHIR Bulk Data Access 2.0 `$export`: system, Patient and Group level, to NDJSON files.
//!
//! Framework-free: the HTTP layer parses the kick-off into an [`ExportRequest`], registers a job
//! and calls [`run`] on a blocking thread; [`run`] leaves the job `Completed` with the manifest,
//! `Failed` with an OperationOutcome, or stops early when the job is cancelled.
//!
//! Memory stays bounded whatever the data size: each type is read page by page through
//! [`ReadSession::search_raw`] (stored JSON bytes, no parse and re-serialise) and each page is
//! written through a buffered writer before the next one is fetched. At most one page per query
//! is in memory.
//!
//! Consistency: `transactionTime` is taken from the store's write clock before scanning (see
//! [`snapshot_time`]) and every query is bounded by `_lastUpdated <= transactionTime`, so an
//! export contains exactly the changes up to that instant that are still current when scanned.
//! A resource changed while the export runs is left out and comes with the next export that
//! uses `_since=<transactionTime>`; chaining exports that way misses nothing.
//! A resource deleted while the export runs is left out as well.

mod group;
mod manifest;
mod request;
mod scan;
mod writer;

use medicus_store::search::{
    CompartmentFilter, Criterion, CriterionValue, DateBound, DatePrefix, SearchQuery,
};
use medicus_store::{ReadSession, Store, StoreError};
use serde_json::{Value, json};
use thiserror::Error;

use crate::jobs::{Job, JobState};

pub use group::group_patients;
pub use manifest::{file_names, manifest};
pub use request::{ExportLevel, ExportRequest, OutputFormat, TypeFilter, parse_instant};
pub use writer::{OutputFile, PartLimits, TypeWriter, file_name};

#[derive(Debug, Error)]
pub enum ExportError {
    /// Bad kick-off parameters (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// The Group of a Group-level export does not exist (404).
    #[error("Group/{0} is not known")]
    UnknownGroup(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing export files: {0}")]
    Io(#[from] std::io::Error),
    #[error("the export was cancelled")]
    Cancelled,
}

/// How an export runs.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Resources fetched per store query.
    pub page_size: usize,
    /// Resources per query of Patient and Group exports. Larger, because SQLite evaluates the
    /// compartment condition (`rid IN (SELECT rid FROM idx_reference …)`) into a temporary
    /// list once per query: fewer, larger pages do that fewer times.
    pub compartment_page_size: usize,
    /// When a type's file is split into parts.
    pub limits: PartLimits,
    /// Where the job's files are served, e.g. `http://host/fhir/t/$export-file/{job id}`; the
    /// manifest's URLs are this plus `/` plus the file name.
    pub file_base_url: String,
}

impl ExportSettings {
    pub fn new(file_base_url: impl Into<String>) -> Self {
        ExportSettings {
            page_size: 1000,
            compartment_page_size: 10_000,
            limits: PartLimits {
                max_resources: 100_000,
                max_bytes: 1 << 30,
            },
            file_base_url: file_base_url.into(),
        }
    }
}

/// Patients per compartment query of a Group export: keeps each SQL statement well under
/// SQLite's limit of bound parameters. Chunks are merged without duplicates (see `scan`).
const GROUP_CHUNK: usize = 5000;

/// Runs the export of `job` and records the outcome in the job's state.
pub fn run(store: &dyn Store, job: &Job, request: &ExportRequest, settings: &ExportSettings) {
    match export(store, job, request, settings) {
        Ok(manifest) => job.set_state(JobState::Completed { manifest }),
        // Cancelling removes the job's directory, so a write may fail before the next check
        // notices the cancellation: either way the job is cancelled, not failed.
        Err(_) if job.is_cancelled() => {
            // Files opened before the directory was removed may have been recreated since.
            let _ = std::fs::remove_dir_all(&job.dir);
        }
        Err(e) => {
            tracing::warn!(job = %job.id, tenant = %job.tenant, error = %e, "export failed");
            let _ = std::fs::remove_dir_all(&job.dir);
            job.set_state(JobState::Failed {
                outcome: failure_outcome(&e),
            });
        }
    }
}

fn failure_outcome(e: &ExportError) -> Value {
    let code = match e {
        ExportError::InvalidRequest(_) => "invalid",
        ExportError::UnknownGroup(_) => "not-found",
        _ => "exception",
    };
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": e.to_string()}],
    })
}

/// The export's `transactionTime`: one microsecond before the `lastUpdated` the next write
/// transaction would get. Taking it under the store's single writer (the session is rolled
/// back unused) means no write is half-way: every committed change is at or before it and
/// every later one is after it.
pub fn snapshot_time(store: &dyn Store, tenant: &str) -> Result<i64, StoreError> {
    let session = store.write_session(tenant)?;
    Ok(session.timestamp_us() - 1)
}

/// Writes the export's files into `job.dir` and returns the manifest.
pub fn export(
    store: &dyn Store,
    job: &Job,
    request: &ExportRequest,
    settings: &ExportSettings,
) -> Result<Value, ExportError> {
    let defs = medicus_fhir::r4();
    let transaction_time = snapshot_time(store, &job.tenant)?;
    let mut session = store.read_session(&job.tenant)?;
    let compartments = compartments(&mut *session, &request.level)?;
    let page_size = match request.level {
        ExportLevel::System => settings.page_size,
        ExportLevel::Patient | ExportLevel::Group(_) => settings.compartment_page_size,
    };
    let mut files = Vec::new();
    let mut total: u64 = 0;
    for rt in request.resource_types(defs) {
        if job.is_cancelled() {
            return Err(ExportError::Cancelled);
        }
        job.set_state(JobState::Running {
            progress: format!("{rt}: starting ({total} resources so far)"),
        });
        let mut queries = queries_of(request, &rt, &compartments, transaction_time);
        let mut out = TypeWriter::new(&job.dir, &rt, settings.limits);
        let mut count: u64 = 0;
        // Called for every resource; `Ok(false)` stops the scan (cancelled).
        let mut write = |json: &[u8]| -> Result<bool, ExportError> {
            out.write(json)?;
            count += 1;
            if count.is_multiple_of(1000) {
                if job.is_cancelled() {
                    return Ok(false);
                }
                if count.is_multiple_of(10_000) {
                    job.set_state(JobState::Running {
                        progress: format!("{rt}: {count} resources ({} total)", total + count),
                    });
                }
            }
            Ok(true)
        };
        if queries.len() == 1 {
            // One query: a single streaming statement, so the store evaluates it (and a
            // compartment's resource list) once rather than once per page.
            let query = queries.remove(0);
            let mut failure = None;
            session.scan_raw(Some(&rt), &query, &mut |r| match write(&r.json) {
                Ok(go_on) => Ok(go_on),
                Err(e) => {
                    failure = Some(e);
                    Ok(false)
                }
            })?;
            if let Some(e) = failure {
                return Err(e);
            }
        } else {
            let mut scan = scan::MergedScan::new(&rt, queries, page_size);
            while let Some(resource) = scan.next(&mut *session)? {
                if !write(&resource.json)? {
                    break;
                }
            }
        }
        if job.is_cancelled() {
            return Err(ExportError::Cancelled);
        }
        files.extend(out.finish()?);
        total += count;
    }
    if job.is_cancelled() {
        return Err(ExportError::Cancelled);
    }
    Ok(manifest(
        transaction_time,
        &job.request,
        &settings.file_base_url,
        &files,
    ))
}

/// The compartment filters of the level: none (system), any patient (Patient level), or the
/// Group's patients in chunks.
fn compartments(
    session: &mut dyn ReadSession,
    level: &ExportLevel,
) -> Result<Vec<Option<CompartmentFilter>>, ExportError> {
    Ok(match level {
        ExportLevel::System => vec![None],
        ExportLevel::Patient => vec![Some(CompartmentFilter { patients: None })],
        ExportLevel::Group(id) => {
            let patients = group_patients(session, id)?;
            if patients.is_empty() {
                vec![Some(CompartmentFilter {
                    patients: Some(Vec::new()),
                })]
            } else {
                patients
                    .chunks(GROUP_CHUNK)
                    .map(|c| {
                        Some(CompartmentFilter {
                            patients: Some(c.to_vec()),
                        })
                    })
                    .collect()
            }
        }
    })
}

/// The store queries of one type: each `_typeFilter` alternative (or no filter) × each
/// compartment chunk, all bounded by `_since` and the transaction time.
fn queries_of(
    request: &ExportRequest,
    resource_type: &str,
    compartments: &[Option<CompartmentFilter>],
    transaction_time: i64,
) -> Vec<SearchQuery> {
    let mut filters: Vec<SearchQuery> = request.filters_of(resource_type).cloned().collect();
    if filters.is_empty() {
        filters.push(SearchQuery::default());
    }
    let mut bounds = vec![last_updated(DatePrefix::Le, transaction_time)];
    if let Some(since) = request.since_us {
        // "Changed after the supplied time": strictly later, so that chaining with the previous
        // export's transactionTime neither misses nor repeats anything.
        bounds.push(last_updated(DatePrefix::Gt, since));
    }
    let mut queries = Vec::with_capacity(filters.len() * compartments.len());
    for f in &filters {
        for c in compartments {
            let mut q = f.clone();
            q.criteria.extend(bounds.iter().cloned());
            q.compartment = c.clone();
            queries.push(q);
        }
    }
    queries
}

/// `_lastUpdated` compared with an exact instant (µs).
fn last_updated(prefix: DatePrefix, us: i64) -> Criterion {
    Criterion {
        code: "_lastUpdated".into(),
        param: 0,
        kind: None,
        missing: None,
        negated: false,
        values: vec![CriterionValue::LastUpdated(DateBound {
            prefix,
            lo: us,
            hi: us,
        })],
    }
}
