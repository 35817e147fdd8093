//! `$import` over HTTP: `POST [base]/$import` with an NDJSON body (`application/fhir+ndjson`,
//! optionally `Content-Encoding: gzip`) runs the same importer as `medicus import`
//! asynchronously, with the Bulk Data status pattern shared with `$export` (`bulk_status`).
//!
//! The body is streamed to a file in the job's directory (memory stays flat whatever its size,
//! up to `ServerConfig::max_import_bytes`); the kick-off answers `202 Accepted` with
//! `Content-Location: [base]/$import-poll-status/{id}` once the body is on disk. The completion
//! body carries the counts and the failed lines as an OperationOutcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::StreamExt;
use medicus_bulk::import::{
    Format, ImportError, ImportOptions, Importer, InputFile, Progress, ProgressSink,
};
use medicus_bulk::jobs::{Job, JobKind, JobState};
use tokio::io::AsyncWriteExt;

use super::extract::{FhirPath, content_type, header_str};
use super::{blocking, bulk_status};
use crate::context::RequestContext;
use crate::fhir::FhirError;
use crate::state::AppState;
use medicus_auth::policy::Interaction;

type Result<T> = std::result::Result<T, FhirError>;

/// Media types accepted for the body.
const NDJSON_TYPES: [&str; 3] = [
    "application/fhir+ndjson",
    "application/ndjson",
    "application/x-ndjson",
];

/// Resources per committed batch: smaller than the CLI's, because a batch holds the store's
/// single writer and interactive writes wait for it.
const BATCH_SIZE: usize = 2000;

impl From<ImportError> for FhirError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Store(e) => e.into(),
            ImportError::UnknownTenant(_) => FhirError::UnknownTenant,
            e => FhirError::Internal(e.to_string()),
        }
    }
}

/// `POST [base]/$import`.
pub async fn kick_off(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    body: Body,
) -> Result<Response> {
    // The import writes through its own sessions: the caller must be able to create and
    // update every type without restriction.
    ctx.access.require_everywhere(Interaction::Create)?;
    ctx.access.require_everywhere(Interaction::Update)?;
    let media = content_type(&headers)
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    if !media.as_deref().is_some_and(|m| NDJSON_TYPES.contains(&m)) {
        return Err(FhirError::UnsupportedMediaType(
            "$import takes NDJSON: send Content-Type: application/fhir+ndjson".into(),
        ));
    }
    let gzip = match header_str(&headers, header::CONTENT_ENCODING.as_str()) {
        None => false,
        Some(e) if e.eq_ignore_ascii_case("identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") => true,
        Some(e) => {
            return Err(FhirError::UnsupportedMediaType(format!(
                "Content-Encoding '{e}' is not supported (gzip is)"
            )));
        }
    };
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    if !blocking(move || Ok(store.tenant_exists(&tenant)?)).await? {
        return Err(FhirError::UnknownTenant);
    }

    let origin = ctx
        .fhir_base
        .strip_suffix(&format!("/fhir/{}", ctx.tenant))
        .unwrap_or(&ctx.fhir_base);
    let request_url = format!(
        "{origin}{}",
        uri.path_and_query().map_or(uri.path(), |p| p.as_str())
    );
    let job = state
        .jobs
        .create(&ctx.tenant, JobKind::Import, &request_url)
        .map_err(|e| FhirError::Internal(format!("creating the import job directory: {e}")))?;
    let input = job.dir.join(if gzip {
        "input.ndjson.gz"
    } else {
        "input.ndjson"
    });
    if let Err(e) = save_body(body, &input, state.config.max_import_bytes).await {
        // Nothing was imported; the job never becomes visible.
        state.jobs.cancel(&ctx.tenant, &job.id);
        return Err(e);
    }
    job.set_state(JobState::Running {
        progress: "0% (queued)".into(),
    });
    let status_url = format!("{}/$import-poll-status/{}", ctx.fhir_base, job.id);
    tracing::info!(tenant = %ctx.tenant, job = %job.id, "import started");

    let store = state.store.clone();
    let worker_job = job.clone();
    Ok(bulk_status::spawn_job(job, &status_url, move || {
        run(store, &worker_job, &input, gzip)
    }))
}

/// Streams the request body to `path`, failing with 413 past `max` bytes.
async fn save_body(body: Body, path: &std::path::Path, max: u64) -> Result<()> {
    let io = |e: std::io::Error| FhirError::Internal(format!("saving the import body: {e}"));
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut stream = body.into_data_stream();
    let mut written: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| FhirError::bad_request(format!("could not read the request body: {e}")))?;
        written += chunk.len() as u64;
        if written > max {
            return Err(FhirError::PayloadTooLarge(
                usize::try_from(max).unwrap_or(usize::MAX),
            ));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    Ok(())
}

/// Reports progress into the job and turns a `DELETE` into the importer's cancel flag.
struct JobProgress<'a> {
    job: &'a Job,
    cancel: Arc<AtomicBool>,
}

impl ProgressSink for JobProgress<'_> {
    fn update(&self, p: &Progress) {
        if self.job.is_cancelled() {
            self.cancel.store(true, Ordering::Relaxed);
            return;
        }
        self.job.set_state(JobState::Running {
            progress: p.describe(),
        });
    }
}

/// The import itself, on a blocking thread.
fn run(store: Arc<dyn medicus_store::Store>, job: &Job, input: &std::path::Path, gzip: bool) {
    // Cancelled while queued: the registry already removed the job and its directory.
    let cancel = Arc::new(AtomicBool::new(job.is_cancelled()));
    let options = ImportOptions {
        batch_size: BATCH_SIZE,
        report_path: Some(job.dir.join("errors.ndjson")),
        cancel: cancel.clone(),
        ..ImportOptions::default()
    };
    let progress = JobProgress { job, cancel };
    let result = InputFile::with_format(input, Format::Ndjson, gzip).and_then(|file| {
        Importer::new(store, job.tenant.clone(), options).import_files(&[file], &progress)
    });
    // The input is not needed any more; the error report stays with the job.
    let _ = std::fs::remove_file(input);
    match result {
        Ok(summary) if summary.cancelled => {}
        Ok(summary) => {
            let mut manifest = summary.to_json();
            manifest["request"] = serde_json::Value::String(job.request.clone());
            let now_us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
            manifest["transactionTime"] =
                serde_json::Value::String(crate::fhir::time_fmt::instant(now_us));
            job.set_state(JobState::Completed { manifest });
        }
        Err(e) => job.set_state(JobState::Failed {
            outcome: FhirError::from(e).to_operation_outcome(),
        }),
    }
}

/// `GET [base]/$import-poll-status/{id}`.
pub async fn status(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, id)): FhirPath<(String, String)>,
) -> Result<Response> {
    super::bulk_export::authorize_bulk_job(&ctx)?;
    bulk_status::poll(&state, &ctx.tenant, JobKind::Import, &id)
}

/// `DELETE [base]/$import-poll-status/{id}`: stops the import after the current batch (what
/// was committed stays; importing the same data again completes it).
pub async fn cancel(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, id)): FhirPath<(String, String)>,
) -> Result<Response> {
    super::bulk_export::authorize_bulk_job(&ctx)?;
    bulk_status::cancel(&state, &ctx.tenant, JobKind::Import, &id)
}
