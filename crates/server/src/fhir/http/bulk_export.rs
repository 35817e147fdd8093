//! `$export` over HTTP (FHIR Bulk Data Access 2.0): kick-off at system, Patient and
//! `Group/[id]` level, status polling and cancel (shared with `$import`, see `bulk_status`),
//! and the output files.
//!
//! The export itself runs on a blocking thread (`medicus_bulk::export::run`); the kick-off only
//! checks the request, registers the job and answers `202 Accepted` with `Content-Location`.

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use medicus_bulk::export::{self, ExportError, ExportLevel, ExportRequest, ExportSettings};
use medicus_bulk::jobs::{JobKind, JobState};
use tokio::io::AsyncReadExt;

use super::blocking;
use super::bulk_status;
use super::extract::{FhirBody, FhirPath, QueryPairs, content_type};
use crate::context::RequestContext;
use crate::fhir::FhirError;
use crate::fhir::headers::require_fhir_json;
use crate::fhir::json_body::parse_resource;
use crate::state::AppState;
use medicus_auth::policy::Interaction;

type Result<T> = std::result::Result<T, FhirError>;

/// Chunk size when streaming a file: the file is never read into memory as a whole.
const FILE_CHUNK: usize = 64 * 1024;

impl From<ExportError> for FhirError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::InvalidRequest(m) => FhirError::BadRequest(m),
            ExportError::UnknownGroup(id) => FhirError::NotFound {
                resource_type: "Group".into(),
                id,
            },
            ExportError::Store(e) => e.into(),
            e @ (ExportError::Io(_) | ExportError::Cancelled) => FhirError::Internal(e.to_string()),
        }
    }
}

/// `GET [base]/$export`.
pub async fn export_system(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response> {
    kick_off(state, ctx, &headers, &uri, &pairs, ExportLevel::System).await
}

/// `GET [base]/Patient/$export`.
pub async fn export_type(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, resource_type)): FhirPath<(String, String)>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response> {
    if resource_type != "Patient" {
        return Err(FhirError::NotFoundOther(format!(
            "$export is defined on the system, Patient and Group/[id], not on {resource_type}"
        )));
    }
    kick_off(state, ctx, &headers, &uri, &pairs, ExportLevel::Patient).await
}

/// `GET [base]/Group/[id]/$export`.
pub async fn export_group(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, resource_type, id)): FhirPath<(String, String, String)>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response> {
    if resource_type != "Group" {
        return Err(FhirError::NotFoundOther(format!(
            "$export is defined on the system, Patient and Group/[id], not on {resource_type}/[id]"
        )));
    }
    kick_off(state, ctx, &headers, &uri, &pairs, ExportLevel::Group(id)).await
}

/// `POST [base]/$export` (and the Patient and Group forms) with a `Parameters` body: the same
/// parameters as the query string, as `valueString` / `valueInstant` / `valueCode`.
pub async fn export_system_post(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    FhirBody(body): FhirBody,
) -> Result<Response> {
    let pairs = parameters_pairs(&state, &headers, &body)?;
    kick_off(state, ctx, &headers, &uri, &pairs, ExportLevel::System).await
}

pub async fn export_type_post(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, resource_type)): FhirPath<(String, String)>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    FhirBody(body): FhirBody,
) -> Result<Response> {
    if resource_type != "Patient" {
        return Err(FhirError::NotFoundOther(format!(
            "$export is defined on the system, Patient and Group/[id], not on {resource_type}"
        )));
    }
    let pairs = parameters_pairs(&state, &headers, &body)?;
    kick_off(state, ctx, &headers, &uri, &pairs, ExportLevel::Patient).await
}

pub async fn export_group_post(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, resource_type, id)): FhirPath<(String, String, String)>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    FhirBody(body): FhirBody,
) -> Result<Response> {
    if resource_type != "Group" {
        return Err(FhirError::NotFoundOther(format!(
            "$export is defined on the system, Patient and Group/[id], not on {resource_type}/[id]"
        )));
    }
    let pairs = parameters_pairs(&state, &headers, &body)?;
    kick_off(state, ctx, &headers, &uri, &pairs, ExportLevel::Group(id)).await
}

/// The kick-off parameters of a `Parameters` body, as (name, value) pairs.
fn parameters_pairs(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>> {
    require_fhir_json(content_type(headers))?;
    let parameters = parse_resource(body, state.config.max_json_depth)?;
    if parameters.get("resourceType").and_then(|v| v.as_str()) != Some("Parameters") {
        return Err(FhirError::bad_request(
            "the body of a POST $export must be a Parameters resource",
        ));
    }
    let mut pairs = Vec::new();
    for p in parameters
        .get("parameter")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let name = p.get("name").and_then(|v| v.as_str()).unwrap_or("");
        let value = ["valueString", "valueInstant", "valueCode", "valueUri"]
            .iter()
            .find_map(|k| p.get(*k).and_then(|v| v.as_str()));
        match value {
            Some(v) => pairs.push((name.to_owned(), v.to_owned())),
            None => {
                return Err(FhirError::bad_request(format!(
                    "parameter '{name}': expected a string, instant, code or uri value"
                )));
            }
        }
    }
    Ok(pairs)
}

/// The Bulk Data kick-off requires `Prefer: respond-async`.
fn require_respond_async(headers: &HeaderMap) -> Result<()> {
    let asks_async = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"));
    if asks_async {
        Ok(())
    } else {
        Err(FhirError::bad_request(
            "$export runs asynchronously: send the header 'Prefer: respond-async'",
        ))
    }
}

/// The export job reads the store directly (not through a guarded session), so the caller
/// must reach every type it exports without restriction: a service client of the tenant.
fn authorize_export(ctx: &RequestContext, request: &ExportRequest) -> Result<()> {
    match &request.types {
        Some(types) => {
            for ty in types {
                let reach = ctx.access.require(Interaction::Export, ty)?;
                if !reach.is_unrestricted() {
                    return Err(FhirError::Forbidden(format!(
                        "export of {ty} needs unrestricted access to it"
                    )));
                }
            }
            Ok(())
        }
        None => ctx.access.require_everywhere(Interaction::Export),
    }
}

/// Status, files and cancellation of bulk jobs: service clients of the tenant (the URL's
/// tenant is the token's, checked by the authentication layer).
pub(super) fn authorize_bulk_job(ctx: &RequestContext) -> Result<()> {
    if ctx.access.is_service() {
        Ok(())
    } else {
        Err(FhirError::Forbidden(
            "bulk data jobs are for service clients".into(),
        ))
    }
}

async fn kick_off(
    state: AppState,
    ctx: RequestContext,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    pairs: &[(String, String)],
    level: ExportLevel,
) -> Result<Response> {
    require_respond_async(headers)?;
    let request = ExportRequest::parse(medicus_fhir::r4(), level, pairs)?;
    authorize_export(&ctx, &request)?;

    // Unknown tenant (404) and unknown Group (404) are answered now, not as a failed job.
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    let group = match &request.level {
        ExportLevel::Group(id) => Some(id.clone()),
        _ => None,
    };
    blocking(move || {
        let mut session = store.read_session(&tenant)?;
        if let Some(id) = group {
            export::group_patients(&mut *session, &id)?;
        }
        Ok(())
    })
    .await?;

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
        .create(&ctx.tenant, JobKind::Export, &request_url)
        .map_err(|e| FhirError::Internal(format!("creating the export job directory: {e}")))?;
    let settings = ExportSettings::new(format!("{}/$export-file/{}", ctx.fhir_base, job.id));
    let status_url = format!("{}/$export-poll-status/{}", ctx.fhir_base, job.id);
    tracing::info!(tenant = %ctx.tenant, job = %job.id, "export started");

    let store = state.store.clone();
    let worker_job = job.clone();
    Ok(bulk_status::spawn_job(job, &status_url, move || {
        export::run(&*store, &worker_job, &request, &settings)
    }))
}

/// `GET [base]/$export-poll-status/{id}`.
pub async fn status(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, id)): FhirPath<(String, String)>,
) -> Result<Response> {
    authorize_bulk_job(&ctx)?;
    bulk_status::poll(&state, &ctx.tenant, JobKind::Export, &id)
}

/// `DELETE [base]/$export-poll-status/{id}`.
pub async fn cancel(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, id)): FhirPath<(String, String)>,
) -> Result<Response> {
    authorize_bulk_job(&ctx)?;
    bulk_status::cancel(&state, &ctx.tenant, JobKind::Export, &id)
}

/// `GET [base]/$export-file/{id}/{file}`: streams one output file of a completed export. Only
/// names the job's manifest lists are served, so no path can leave the job's directory.
pub async fn file(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, id, name)): FhirPath<(String, String, String)>,
) -> Result<Response> {
    authorize_bulk_job(&ctx)?;
    let job = bulk_status::find_job(&state, &ctx.tenant, JobKind::Export, &id)?;
    let listed = match job.state() {
        JobState::Completed { manifest } => export::file_names(&manifest).any(|n| n == name),
        _ => false,
    };
    if !listed {
        return Err(FhirError::NotFoundOther(format!(
            "export job {id} has no output file '{name}'"
        )));
    }
    let path = job.dir.join(&name);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| FhirError::NotFoundOther(format!("output file '{name}' is gone")))?;
    let len = file.metadata().await.ok().map(|m| m.len());
    let stream = futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; FILE_CHUNK];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), file)))
    });
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+ndjson"),
    );
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(response)
}
