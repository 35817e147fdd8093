//! `$research-objection`: a patient's objection to research, as Consent resources in the store.
//!
//! `GET` answers the status on today's date and the history. `POST` takes a Parameters body:
//! `action` = `object` (default; `purpose` codes make it purpose-specific, none a full
//! objection) or `withdraw` (the objection Consent named by `objection`, else every active
//! one), and answers like `GET`. An objection is a Consent written in the same request, so
//! every research path that evaluates consent sees it on its next read.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use medicus_consent::{Day, objection_consent, objection_status, withdraw_objection};
use medicus_store::api::{Precondition, ReadSession};
use medicus_store::search::parse_search;
use serde_json::Value;

use super::params::{self, out, p, part};
use super::{body_bytes, now_s, path_id, require_patient_or_trust_centre};
use crate::context::RequestContext;
use crate::fhir::FhirError;
use crate::fhir::headers::require_fhir_json;
use crate::fhir::http::response::FhirResponse;
use crate::fhir::json_body::parse_json;
use crate::state::AppState;

/// Every Consent of the patient (all pages).
fn consents_of(
    session: &mut dyn ReadSession,
    patient_id: &str,
) -> Result<Vec<(Value, i64)>, FhirError> {
    let pairs = vec![
        ("patient".to_string(), format!("Patient/{patient_id}")),
        ("_count".to_string(), "1000".to_string()),
    ];
    let mut query = parse_search(medicus_fhir::r4(), Some("Consent"), &pairs)?;
    query.total = false;
    let mut out = Vec::new();
    loop {
        let page = session.search(Some("Consent"), &query)?;
        for v in page.resources {
            if let Some(body) = v.body {
                out.push((body, v.version));
            }
        }
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => return Ok(out),
        }
    }
}

fn ensure_patient(session: &mut dyn ReadSession, patient_id: &str) -> Result<(), FhirError> {
    match session.read("Patient", patient_id)? {
        Some(v) if !v.is_deleted() => Ok(()),
        _ => Err(FhirError::NotFound {
            resource_type: "Patient".into(),
            id: patient_id.into(),
        }),
    }
}

fn today() -> Day {
    Day(i32::try_from(now_s().div_euclid(86_400)).unwrap_or(Day::MAX.0))
}

/// The status as a Parameters resource.
fn status_parameters(consents: &[Value], on: Day) -> Value {
    let status = objection_status(consents, on);
    let mut parameter = vec![p("objected", "Boolean", status.full)];
    for purpose in &status.purposes {
        parameter.push(p("purpose", "Code", purpose.as_str()));
    }
    for record in &status.history {
        let mut parts = Vec::new();
        if let Some(id) = &record.id {
            parts.push(p("id", "Id", id.as_str()));
        }
        let kind = match record.kind {
            medicus_consent::ObjectionKind::OptOut => "opt-out",
            medicus_consent::ObjectionKind::Withdrawal => "withdrawal",
        };
        parts.push(p("kind", "Code", kind));
        parts.push(p("status", "Code", record.status.as_str()));
        if let Some(r) = &record.recorded {
            parts.push(p("recorded", "DateTime", r.as_str()));
        }
        if let Some(s) = record.start {
            parts.push(p("start", "Date", s.to_string()));
        }
        if let Some(e) = record.end {
            parts.push(p("end", "Date", e.to_string()));
        }
        for purpose in &record.purposes {
            parts.push(p("purpose", "Code", purpose.as_str()));
        }
        parameter.push(part("objection", parts));
    }
    out(parameter)
}

/// `GET …/Patient/{id}/$research-objection`.
pub async fn get_status(
    State(state): State<AppState>,
    ctx: RequestContext,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<FhirResponse, FhirError> {
    let id = path_id(path)?;
    require_patient_or_trust_centre(&ctx.access, &id)?;
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    let body = crate::fhir::http::blocking(move || {
        if !store.tenant_exists(&tenant)? {
            return Err(FhirError::UnknownTenant);
        }
        let mut session = store.read_session(&tenant)?;
        ensure_patient(&mut *session, &id)?;
        let consents: Vec<Value> = consents_of(&mut *session, &id)?
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        Ok(status_parameters(&consents, today()))
    })
    .await?;
    Ok(FhirResponse::ok(body))
}

/// `POST …/Patient/{id}/$research-objection`.
pub async fn post(
    State(state): State<AppState>,
    ctx: RequestContext,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<FhirResponse, FhirError> {
    let id = path_id(path)?;
    require_patient_or_trust_centre(&ctx.access, &id)?;
    require_fhir_json(headers.get("content-type").and_then(|v| v.to_str().ok()))?;
    let body = parse_json(&body_bytes(&state, body)?, state.config.max_json_depth)?;
    let params = params::parameters(&body)?;
    let action = params::one(params, "action")?
        .unwrap_or("object")
        .to_string();
    let purposes: Vec<String> = params::strings(params, "purpose")
        .into_iter()
        .map(str::to_string)
        .collect();
    let target = params::one(params, "objection")?.map(str::to_string);
    if purposes.iter().any(|p| p.is_empty() || p.len() > 64) {
        return Err(FhirError::bad_request(
            "a purpose is a code of 1 to 64 characters",
        ));
    }
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    let out = crate::fhir::http::blocking(move || {
        if !store.tenant_exists(&tenant)? {
            return Err(FhirError::UnknownTenant);
        }
        let mut session = store.write_session(&tenant)?;
        ensure_patient(&mut *session, &id)?;
        let day = today();
        match action.as_str() {
            "object" => {
                let recorded = crate::fhir::time_fmt::instant(now_s().saturating_mul(1_000_000));
                let consent = objection_consent(&id, &purposes, day, &recorded);
                let new_id = uuid::Uuid::new_v4().to_string();
                let mut consent = consent;
                consent["id"] = Value::from(new_id.clone());
                session.put("Consent", &new_id, consent, Precondition::None)?;
            }
            "withdraw" => {
                let mut withdrawn = 0;
                for (c, version) in consents_of(&mut *session, &id)? {
                    let cid = c
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    if target.as_deref().is_some_and(|t| t != cid) {
                        continue;
                    }
                    match withdraw_objection(&c, day) {
                        Ok(next) => {
                            session.put("Consent", &cid, next, Precondition::VersionIs(version))?;
                            withdrawn += 1;
                        }
                        // Named explicitly: say why it cannot be withdrawn.
                        Err(e) if target.is_some() => {
                            return Err(FhirError::Unprocessable(e.to_string()));
                        }
                        Err(_) => {}
                    }
                }
                if withdrawn == 0 {
                    return Err(FhirError::Unprocessable(
                        "no active objection to withdraw".into(),
                    ));
                }
            }
            other => {
                return Err(FhirError::bad_request(format!(
                    "action '{other}' is not one of object, withdraw"
                )));
            }
        }
        let consents: Vec<Value> = consents_of(&mut *session, &id)?
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        session.commit()?;
        Ok(status_parameters(&consents, day))
    })
    .await?;
    Ok(FhirResponse::ok(out))
}
