//! The Bulk Data status endpoint, shared by `$export` and `$import`: one rendering of a job's
//! [`JobState`] and the poll / cancel handlers keyed by [`JobKind`].
//!
//! - running → `202 Accepted` with `X-Progress` and `Retry-After`;
//! - completed → `200 OK` with the completion body (the manifest) as `application/json`;
//! - failed → the job's OperationOutcome with a 4xx/5xx status;
//! - unknown, another tenant's, or cancelled → `404` (a job is only visible under its own
//!   tenant's base URL).

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medicus_bulk::jobs::{Job, JobKind, JobState};
use serde_json::Value;

use super::response::FhirResponse;
use crate::fhir::FhirError;
use crate::fhir::outcome::information;
use crate::state::AppState;

/// Seconds a client should wait before polling a running job again.
const RETRY_AFTER_SECS: &str = "2";

/// Runs a job's `work` on a blocking thread and answers its kick-off: `202 Accepted` with
/// `Content-Location: {status_url}`. Detached: the job's state is how the outcome is reported,
/// and a panic in `work` must not leave the job "running" for ever.
pub(super) fn spawn_job(
    job: Arc<Job>,
    status_url: &str,
    work: impl FnOnce() + Send + 'static,
) -> Response {
    let what = kind_name(job.kind);
    let handle = tokio::task::spawn_blocking(work);
    tokio::spawn(async move {
        if handle.await.is_err() {
            job.set_state(JobState::Failed {
                outcome: FhirError::Internal(format!("{what} task failed")).to_operation_outcome(),
            });
        }
    });
    FhirResponse::new(
        StatusCode::ACCEPTED,
        Some(information(format!(
            "{what} started; poll {status_url} for its status"
        ))),
    )
    .header(header::CONTENT_LOCATION, status_url)
    .into_response()
}

fn kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Export => "export",
        JobKind::Import => "import",
    }
}

/// The job `id` of `tenant` if it is of `kind`; anything else is "not found".
pub(crate) fn find_job(
    state: &AppState,
    tenant: &str,
    kind: JobKind,
    id: &str,
) -> Result<Arc<Job>, FhirError> {
    state
        .jobs
        .get(tenant, id)
        .filter(|j| j.kind == kind && j.state() != JobState::Cancelled)
        .ok_or_else(|| {
            FhirError::NotFoundOther(format!(
                "there is no {} job '{id}' (unknown, expired or cancelled)",
                kind_name(kind)
            ))
        })
}

/// The status response for a job state.
pub fn job_status_response(state: &JobState) -> Response {
    match state {
        JobState::Running { progress } => {
            let mut r = StatusCode::ACCEPTED.into_response();
            // Progress texts are ours (type names and counts); anything a header cannot carry
            // is dropped rather than failing the poll.
            let progress: String = progress
                .chars()
                .filter(|c| c.is_ascii() && !c.is_ascii_control())
                .collect();
            if let Ok(v) = HeaderValue::from_str(&progress) {
                r.headers_mut().insert("x-progress", v);
            }
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
            r
        }
        JobState::Completed { manifest } => match serde_json::to_vec(manifest) {
            Ok(bytes) => {
                let mut r = (StatusCode::OK, bytes).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r
            }
            Err(e) => FhirError::Internal(format!("serialising a manifest: {e}")).into_response(),
        },
        JobState::Failed { outcome } => {
            FhirResponse::new(failure_status(outcome), Some(outcome.clone())).into_response()
        }
        JobState::Cancelled => {
            FhirError::NotFoundOther("the job was cancelled".into()).into_response()
        }
    }
}

/// Bad input found only while running is the client's fault (4xx); anything else is ours.
fn failure_status(outcome: &Value) -> StatusCode {
    let code = outcome
        .pointer("/issue/0/code")
        .and_then(Value::as_str)
        .unwrap_or("exception");
    match code {
        "invalid" | "structure" | "required" | "value" | "invariant" => StatusCode::BAD_REQUEST,
        "not-found" => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `GET …/$export-poll-status/{id}` (and `$import-poll-status`).
pub(crate) fn poll(
    state: &AppState,
    tenant: &str,
    kind: JobKind,
    id: &str,
) -> Result<Response, FhirError> {
    let job = find_job(state, tenant, kind, id)?;
    Ok(job_status_response(&job.state()))
}

/// `DELETE …/$export-poll-status/{id}`: cancels the job and removes its files; polling it
/// afterwards answers 404.
pub(crate) fn cancel(
    state: &AppState,
    tenant: &str,
    kind: JobKind,
    id: &str,
) -> Result<Response, FhirError> {
    let job = find_job(state, tenant, kind, id)?;
    if !state.jobs.cancel(tenant, &job.id) {
        return Err(FhirError::NotFoundOther(format!(
            "there is no {} job '{id}'",
            kind_name(kind)
        )));
    }
    Ok(FhirResponse::new(
        StatusCode::ACCEPTED,
        Some(information(format!(
            "{} job {id} cancelled",
            kind_name(kind)
        ))),
    )
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_by_state() {
        let r = job_status_response(&JobState::Running {
            progress: "Observation: 120000 resources".into(),
        });
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(r.headers()["x-progress"], "Observation: 120000 resources");
        assert_eq!(r.headers()["retry-after"], "2");
        let r = job_status_response(&JobState::Completed {
            manifest: json!({"output": []}),
        });
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "application/json");
        let failed = |code: &str| JobState::Failed {
            outcome: json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code}]}),
        };
        assert_eq!(job_status_response(&failed("invalid")).status(), 400);
        assert_eq!(job_status_response(&failed("exception")).status(), 500);
        assert_eq!(job_status_response(&JobState::Cancelled).status(), 404);
    }
}
