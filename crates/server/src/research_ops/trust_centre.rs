//! `$pseudonymize` and `$de-pseudonymize`, for the trust centre only.
//!
//! `$pseudonymize` (Parameters: `project`, one or more `patient` references or ids) answers a
//! `pseudonym` part per patient and records the sealed mapping. `$de-pseudonymize` runs the
//! four-eyes procedure with `action`:
//! - `request` (`project`, `pseudonym`…, `justification`) → a pending request (its `request` id);
//! - `approve` / `reject` (`request`, `reason` for a rejection) by a trust-centre user other
//!   than the requester; two distinct approvals approve it;
//! - `execute` (`request`) once approved: the identities (patient references of this tenant),
//!   once;
//! - `status` (`request`).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use medicus_auth::Role;
use medicus_research::depseudo::{self, DepseudoRequest};
use medicus_research::project;
use medicus_research::pseudonym::{self, Identity};
use medicus_store::Store;
use serde_json::Value;

use super::params::{self, out, p, part};
use super::{ResearchConfig, body_bytes, now_s, require_role, research_error};
use crate::context::RequestContext;
use crate::fhir::FhirError;
use crate::fhir::headers::require_fhir_json;
use crate::fhir::http::response::FhirResponse;
use crate::fhir::json_body::parse_json;
use crate::state::AppState;

fn key(config: &ResearchConfig) -> Result<Arc<medicus_research::TrustCentreKey>, FhirError> {
    config.trust_centre.clone().ok_or_else(|| {
        FhirError::NotSupported("no trust-centre key is configured on this server".into())
    })
}

fn parse_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, FhirError> {
    require_fhir_json(headers.get("content-type").and_then(|v| v.to_str().ok()))?;
    parse_json(&body_bytes(state, body)?, state.config.max_json_depth)
}

fn ensure_project(store: &dyn Store, id: &str) -> Result<(), FhirError> {
    match project::get_project(store, id).map_err(research_error)? {
        Some(_) => Ok(()),
        None => Err(FhirError::NotFoundOther(format!(
            "research project {id} is not known"
        ))),
    }
}

/// `POST /fhir/{tenant}/$pseudonymize`.
pub async fn pseudonymize(
    State(state): State<AppState>,
    Extension(config): Extension<Arc<ResearchConfig>>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<FhirResponse, FhirError> {
    require_role(&ctx.access, Role::TrustCentre)?;
    let key = key(&config)?;
    let body = parse_body(&state, &headers, body)?;
    let params = params::parameters(&body)?;
    let project_id = params::required(params, "project")?.to_string();
    let patients: Vec<String> = params::strings(params, "patient")
        .into_iter()
        .map(|r| r.strip_prefix("Patient/").unwrap_or(r).to_string())
        .collect();
    if patients.is_empty() || patients.iter().any(|p| p.is_empty() || p.contains('/')) {
        return Err(FhirError::bad_request(
            "one or more 'patient' parameters (Patient/{id} or an id) are required",
        ));
    }
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    let result = crate::fhir::http::blocking(move || {
        if !store.tenant_exists(&tenant)? {
            return Err(FhirError::UnknownTenant);
        }
        ensure_project(&*store, &project_id)?;
        let keys = key.project(&project_id);
        let mut session = store.read_session(&tenant)?;
        let mut parameter = Vec::with_capacity(patients.len());
        for patient_id in patients {
            match session.read("Patient", &patient_id)? {
                Some(v) if !v.is_deleted() => {}
                _ => {
                    return Err(FhirError::NotFound {
                        resource_type: "Patient".into(),
                        id: patient_id,
                    });
                }
            }
            let identity = Identity {
                tenant: tenant.clone(),
                patient_id: patient_id.clone(),
            };
            let psn = pseudonym::pseudonymize(&*store, &keys, &identity).map_err(research_error)?;
            parameter.push(part(
                "pseudonym",
                vec![
                    p(
                        "patient",
                        "Reference",
                        serde_json::json!({ "reference": format!("Patient/{patient_id}") }),
                    ),
                    p("value", "String", psn),
                ],
            ));
        }
        Ok(out(parameter))
    })
    .await?;
    Ok(FhirResponse::ok(result))
}

fn request_parameters(r: &DepseudoRequest) -> Vec<Value> {
    let state = serde_json::to_value(r.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut out = vec![
        p("request", "Id", r.id.as_str()),
        p("project", "String", r.project.as_str()),
        p("state", "Code", state),
        p("requestedBy", "String", r.requested_by.as_str()),
        p("justification", "String", r.justification.as_str()),
        p("requiredApprovals", "PositiveInt", r.required_approvals),
    ];
    for a in &r.approvals {
        out.push(p("approvedBy", "String", a.by.as_str()));
    }
    out
}

/// `POST /fhir/{tenant}/$de-pseudonymize`.
pub async fn de_pseudonymize(
    State(state): State<AppState>,
    Extension(config): Extension<Arc<ResearchConfig>>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<FhirResponse, FhirError> {
    let actor = require_role(&ctx.access, Role::TrustCentre)?;
    let key = key(&config)?;
    let body = parse_body(&state, &headers, body)?;
    let params = params::parameters(&body)?;
    let action = params::required(params, "action")?.to_string();
    let request_id = params::one(params, "request")?.map(str::to_string);
    let project_id = params::one(params, "project")?.map(str::to_string);
    let justification = params::one(params, "justification")?
        .unwrap_or_default()
        .to_string();
    let reason = params::one(params, "reason")?
        .unwrap_or_default()
        .to_string();
    let pseudonyms: Vec<String> = params::strings(params, "pseudonym")
        .into_iter()
        .map(str::to_string)
        .collect();
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    let ttl = config.depseudo_ttl_s;
    let approvals = config.required_approvals;
    let result = crate::fhir::http::blocking(move || {
        if !store.tenant_exists(&tenant)? {
            return Err(FhirError::UnknownTenant);
        }
        let now = now_s();
        let need_request = || {
            request_id
                .clone()
                .ok_or_else(|| FhirError::bad_request("parameter 'request' is required"))
        };
        let request = match action.as_str() {
            "request" => {
                let project_id = project_id
                    .ok_or_else(|| FhirError::bad_request("parameter 'project' is required"))?;
                ensure_project(&*store, &project_id)?;
                let id = uuid::Uuid::new_v4().to_string();
                let r = DepseudoRequest::new(
                    &id,
                    &project_id,
                    pseudonyms,
                    &justification,
                    &actor,
                    now,
                    ttl,
                    approvals,
                )
                .map_err(research_error)?;
                depseudo::create_request(&*store, &r).map_err(research_error)?;
                r
            }
            "approve" => depseudo::approve_request(&*store, &need_request()?, &actor, now)
                .map_err(research_error)?,
            "reject" => depseudo::reject_request(&*store, &need_request()?, &actor, &reason, now)
                .map_err(research_error)?,
            "status" => depseudo::get_request(&*store, &need_request()?)
                .map_err(research_error)?
                .ok_or_else(|| {
                    FhirError::NotFoundOther("no such de-pseudonymisation request".into())
                })?,
            "execute" => {
                let id = need_request()?;
                let stored = depseudo::get_request(&*store, &id)
                    .map_err(research_error)?
                    .ok_or_else(|| {
                        FhirError::NotFoundOther("no such de-pseudonymisation request".into())
                    })?;
                let keys = key.project(&stored.project);
                let (r, found) = depseudo::de_pseudonymize(&*store, &keys, &id, &actor, now)
                    .map_err(research_error)?;
                let mut parameter = request_parameters(&r);
                for (psn, identity) in found {
                    let mut parts = vec![p("pseudonym", "String", psn)];
                    // Identities of other tenants are not this request's to reveal.
                    if let Some(Identity {
                        tenant: t,
                        patient_id,
                    }) = identity
                        && t == tenant
                    {
                        parts.push(p(
                            "patient",
                            "Reference",
                            serde_json::json!({ "reference": format!("Patient/{patient_id}") }),
                        ));
                    }
                    parameter.push(part("identity", parts));
                }
                return Ok(out(parameter));
            }
            other => {
                return Err(FhirError::bad_request(format!(
                    "action '{other}' is not one of request, approve, reject, execute, status"
                )));
            }
        };
        Ok(out(request_parameters(&request)))
    })
    .await?;
    Ok(FhirResponse::ok(result))
}
