//! Research operations over HTTP:
//!
//! - `GET/POST /fhir/{tenant}/Patient/{id}/$research-objection`: a patient (role `patient`, own
//!   record only) or the trust centre reads the objection status and its history, objects fully
//!   or per purpose, or withdraws an objection ([`objection`]).
//! - `POST /fhir/{tenant}/$pseudonymize` and `POST /fhir/{tenant}/$de-pseudonymize`: the trust
//!   centre (role `trust-centre`) pseudonymises patients for a project, and runs four-eyes
//!   de-pseudonymisation requests ([`trust_centre`]).
//!
//! The operations check roles themselves (the generic policy knows no research roles) and then
//! work on unguarded store sessions. Every call passes the audit middleware like any FHIR
//! interaction, so each approval is in the trail under its approver.

pub mod objection;
pub mod params;
pub mod trust_centre;

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::routing::{get, post};
use medicus_auth::Role;
use medicus_research::TrustCentreKey;

use crate::access::Access;
use crate::fhir::FhirError;
use crate::state::AppState;

/// What the research operations need besides the app state.
#[derive(Debug)]
pub struct ResearchConfig {
    /// The trust centre's master key (from its key file); `None`: `$pseudonymize` and
    /// `$de-pseudonymize` answer 501.
    pub trust_centre: Option<Arc<TrustCentreKey>>,
    /// How long a de-pseudonymisation request stays open (seconds).
    pub depseudo_ttl_s: i64,
    /// Distinct approvals a de-pseudonymisation request needs (at least 2).
    pub required_approvals: usize,
}

impl Default for ResearchConfig {
    fn default() -> Self {
        ResearchConfig {
            trust_centre: None,
            depseudo_ttl_s: 7 * 86_400,
            required_approvals: 2,
        }
    }
}

impl ResearchConfig {
    /// The defaults with the trust-centre key read from its key file (see
    /// `medicus_research::TrustCentreKey::load`: base64, 32 bytes, not readable by others).
    pub fn with_key_file(
        path: &std::path::Path,
    ) -> Result<ResearchConfig, medicus_research::ResearchError> {
        Ok(ResearchConfig {
            trust_centre: Some(Arc::new(TrustCentreKey::load(path)?)),
            ..ResearchConfig::default()
        })
    }
}

/// The routes of the research operations; merge them into the FHIR router (their static
/// segments take precedence over the generic `{type}/{id}` routes).
pub fn routes(config: Arc<ResearchConfig>) -> Router<AppState> {
    Router::new()
        .route(
            "/fhir/{tenant}/Patient/{id}/$research-objection",
            get(objection::get_status).post(objection::post),
        )
        .route(
            "/fhir/{tenant}/$pseudonymize",
            post(trust_centre::pseudonymize),
        )
        .route(
            "/fhir/{tenant}/$de-pseudonymize",
            post(trust_centre::de_pseudonymize),
        )
        .layer(Extension(config))
}

/// The acting user, if `access` holds `role` (open access acts as `open`).
pub(crate) fn require_role(access: &Access, role: Role) -> Result<String, FhirError> {
    match access {
        Access::Open => Ok("open".into()),
        Access::Anonymous => Err(FhirError::Unauthorized(
            "this operation needs an access token".into(),
        )),
        Access::Token(p) if p.has_role(role) => Ok(p.subject.clone()),
        Access::Token(_) => Err(FhirError::Forbidden(format!(
            "this operation needs the role {}",
            role.as_str()
        ))),
    }
}

/// The acting user when it is the patient `patient_id` themself (role `patient`, their own
/// record) or the trust centre (recording an objection made on paper).
pub(crate) fn require_patient_or_trust_centre(
    access: &Access,
    patient_id: &str,
) -> Result<String, FhirError> {
    match access {
        Access::Token(p) if p.has_role(Role::Patient) && !p.has_role(Role::TrustCentre) => {
            let own = p.own_patient().or(p.patient.as_deref());
            if own == Some(patient_id) {
                Ok(p.subject.clone())
            } else {
                Err(FhirError::Forbidden(
                    "a patient may manage the objection of their own record only".into(),
                ))
            }
        }
        other => require_role(other, Role::TrustCentre),
    }
}

/// The `{id}` of a `/fhir/{tenant}/Patient/{id}/…` path.
pub(crate) fn path_id(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<String, FhirError> {
    path.map(|Path((_, id))| id)
        .map_err(|_| FhirError::bad_request("invalid path"))
}

/// The request body, the size limit answered with 413.
pub(crate) fn body_bytes(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, FhirError> {
    body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            FhirError::PayloadTooLarge(state.config.max_body_bytes)
        } else {
            FhirError::bad_request("could not read the request body")
        }
    })
}

/// Seconds since the Unix epoch.
pub(crate) fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

pub(crate) fn research_error(e: medicus_research::ResearchError) -> FhirError {
    use medicus_research::ResearchError as E;
    match e {
        E::Invalid(m) => FhirError::Unprocessable(m),
        E::NotFound(m) => FhirError::NotFoundOther(m),
        E::Forbidden(m) => FhirError::Forbidden(m),
        E::IllegalTransition(m) | E::Conflict(m) => FhirError::Conflict(m),
        E::Store(s) => s.into(),
        // Key, crypto and corruption problems are the operator's: no detail to the caller.
        other => {
            tracing::error!(error = %other, "research operation failed");
            FhirError::Internal("the trust-centre operation failed".into())
        }
    }
}

#[cfg(test)]
mod tests;
