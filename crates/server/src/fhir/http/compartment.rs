//! Patient compartment search (`Patient/{id}/{type}`, `Patient/{id}/*`) and `$everything`.

use axum::extract::State;
use axum::http::HeaderMap;

use super::extract::{FhirBody, FhirPath, QueryPairs, content_type};
use super::response::FhirResponse;
use super::type_level::{form_search_pairs, page_sizes, parse_search_request};
use super::{in_read_session, in_read_session_omitting_denied};
use crate::access::Reach;
use crate::context::RequestContext;
use crate::fhir::FhirError;
use crate::fhir::headers::{is_fhir_json_content_type, media_type};
use crate::fhir::interactions::compartment::{
    compartment_search as run_compartment_search, compartment_search_all,
    ensure_patient_compartment,
};
use crate::fhir::interactions::everything::{
    everything as run_everything, parameters_to_pairs, parse_everything_params,
};
use crate::fhir::interactions::resource::{ensure_supported_type, ensure_valid_id};
use crate::fhir::json_body::parse_json;
use crate::state::AppState;
use medicus_auth::policy::Interaction;

type Result<T> = std::result::Result<T, FhirError>;

/// `GET /{compartment}/{id}/{type}` and `GET /{compartment}/{id}/*`.
pub async fn compartment_search(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, compartment, id, target)): FhirPath<(String, String, String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> Result<FhirResponse> {
    ensure_supported_type(&compartment)?;
    ensure_patient_compartment(&compartment)?;
    ensure_valid_id(&id)?;
    let fhir_base = ctx.fhir_base.clone();
    let bundle = if target == "*" {
        // The pager over several types has its own cursor; the rest selects in every type.
        let cursor = pairs
            .iter()
            .rfind(|(n, _)| n == "_cursor")
            .map(|(_, v)| v.clone());
        let pairs: Vec<(String, String)> =
            pairs.into_iter().filter(|(n, _)| n != "_cursor").collect();
        let params = parse_search_request(&state, &ctx, None, pairs).await?;
        in_read_session_omitting_denied(&state, &ctx, move |s| {
            compartment_search_all(s, &id, &params, cursor.as_deref(), &fhir_base)
        })
        .await?
    } else {
        ensure_supported_type(&target)?;
        let params = parse_search_request(&state, &ctx, Some(&target), pairs).await?;
        in_read_session(&state, &ctx, move |s| {
            run_compartment_search(s, &id, &target, &params, &fhir_base)
        })
        .await?
    };
    Ok(FhirResponse::ok(bundle))
}

/// `$everything` is defined for Patient only (R4 also has Encounter's, not implemented).
fn ensure_patient_everything(resource_type: &str) -> Result<()> {
    ensure_supported_type(resource_type)?;
    if resource_type != "Patient" {
        return Err(FhirError::bad_request(format!(
            "$everything is not supported on {resource_type}; only on Patient"
        )));
    }
    Ok(())
}

/// The operation's parameters of a `POST`: the query string plus a `Parameters` or form body.
fn operation_pairs(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    pairs: Vec<(String, String)>,
) -> Result<Vec<(String, String)>> {
    if body.is_empty() {
        return Ok(pairs);
    }
    match content_type(headers) {
        Some(ct) if is_fhir_json_content_type(ct) => {
            let mut pairs = pairs;
            pairs.extend(parameters_to_pairs(&parse_json(
                body,
                state.config.max_json_depth,
            )?)?);
            Ok(pairs)
        }
        Some(ct) if media_type(ct) == "application/x-www-form-urlencoded" => {
            form_search_pairs(headers, body, pairs)
        }
        _ => Err(FhirError::UnsupportedMediaType(
            "$everything takes a Parameters resource (application/fhir+json) or form parameters"
                .into(),
        )),
    }
}

async fn everything_response(
    state: &AppState,
    ctx: RequestContext,
    patient: Option<String>,
    pairs: Vec<(String, String)>,
) -> Result<FhirResponse> {
    let params = parse_everything_params(&pairs, page_sizes(state), ctx.prefer.handling)?;
    // A patient-context token: its own record only (every search inside is restricted to the
    // compartment as well; this makes another patient's `$everything` a clear 403).
    match ctx
        .access
        .require(Interaction::Operation("everything".into()), "Patient")?
    {
        Reach::All { .. } => {}
        Reach::Patient { patient: own, .. } if patient.as_deref() == Some(own.as_str()) => {}
        Reach::Patient { .. } => {
            return Err(FhirError::Forbidden(
                "$everything with a patient-context token is available for that patient only"
                    .into(),
            ));
        }
    }
    let fhir_base = ctx.fhir_base.clone();
    let bundle = in_read_session_omitting_denied(state, &ctx, move |s| {
        // Next links are GETs of the same operation (it is idempotent).
        let self_url = match &patient {
            Some(id) => format!("{fhir_base}/Patient/{id}/$everything"),
            None => format!("{fhir_base}/Patient/$everything"),
        };
        run_everything(s, patient.as_deref(), &params, &fhir_base, &self_url)
    })
    .await?;
    Ok(FhirResponse::ok(bundle))
}

pub async fn everything_instance(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty, id)): FhirPath<(String, String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> Result<FhirResponse> {
    ensure_patient_everything(&ty)?;
    ensure_valid_id(&id)?;
    everything_response(&state, ctx, Some(id), pairs).await
}

pub async fn everything_instance_post(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty, id)): FhirPath<(String, String, String)>,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<FhirResponse> {
    ensure_patient_everything(&ty)?;
    ensure_valid_id(&id)?;
    let pairs = operation_pairs(&state, &headers, &body, pairs)?;
    everything_response(&state, ctx, Some(id), pairs).await
}

pub async fn everything_type(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty)): FhirPath<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> Result<FhirResponse> {
    ensure_patient_everything(&ty)?;
    everything_response(&state, ctx, None, pairs).await
}

pub async fn everything_type_post(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty)): FhirPath<(String, String)>,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<FhirResponse> {
    ensure_patient_everything(&ty)?;
    let pairs = operation_pairs(&state, &headers, &body, pairs)?;
    everything_response(&state, ctx, None, pairs).await
}
