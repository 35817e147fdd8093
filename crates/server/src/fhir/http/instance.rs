//! Instance-level interactions: read, vread, update, patch, delete, instance history.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use medicus_fhir::SummaryMode;
use medicus_store::api::{HistoryScope, ResourceVersion};

use super::extract::{FhirBody, FhirPath, QueryPairs, content_type, header_str};
use super::response::FhirResponse;
use super::type_level::page_sizes;
use super::{in_read_session, in_write_session};
use crate::context::RequestContext;
use crate::fhir::FhirError;
use crate::fhir::headers::{
    Handling, ReturnPreference, etag, parse_etag_version, parse_if_match, require_fhir_json,
    require_json_patch,
};
use crate::fhir::interactions::resource::{ensure_supported_type, ensure_valid_id};
use crate::fhir::interactions::search::result_view;
use crate::fhir::interactions::{delete, history, patch, read, update};
use crate::fhir::json_body::{parse_json, parse_resource};
use crate::fhir::outcome::information;
use crate::state::AppState;
use medicus_auth::policy::Interaction;

type Result<T> = std::result::Result<T, FhirError>;

pub async fn read(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty, id)): FhirPath<(String, String, String)>,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    ctx.access.require(Interaction::Read, &ty)?;
    let (summary, elements) = read_view(&pairs, ctx.prefer.handling)?;
    let mut v = in_read_session(&state, &ctx, move |s| read::read(s, &ty, &id)).await?;
    // A client that already has this version gets 304 without a body.
    if header_str(&headers, "if-none-match").and_then(parse_etag_version) == Some(v.version) {
        return Ok(FhirResponse::new(StatusCode::NOT_MODIFIED, None).version_headers(&v));
    }
    let body = v
        .body
        .take()
        .map(|body| result_view(body, summary, elements.as_deref()));
    Ok(FhirResponse::new(StatusCode::OK, body).version_headers(&v))
}

/// `_summary` (`true`, `text`, `data`, `false`) and `_elements` on a read. Anything else in the
/// query is ignored, or a 400 under `Prefer: handling=strict`.
fn read_view(
    pairs: &[(String, String)],
    handling: Handling,
) -> Result<(Option<SummaryMode>, Option<Vec<String>>)> {
    let (mut summary, mut elements, mut unknown) = (None, None, Vec::new());
    for (name, value) in pairs {
        match name.as_str() {
            "_summary" if value == "false" => summary = None,
            "_summary" => match SummaryMode::parse(value) {
                Some(mode) => summary = Some(mode),
                None => unknown.push(name.clone()),
            },
            "_elements" => {
                let list: Vec<String> = value
                    .split(',')
                    .map(|e| e.trim().to_string())
                    .filter(|e| !e.is_empty())
                    .collect();
                elements = (!list.is_empty()).then_some(list);
            }
            "_format" | "_pretty" => {}
            _ => unknown.push(name.clone()),
        }
    }
    if handling == Handling::Strict && !unknown.is_empty() {
        return Err(FhirError::UnsupportedParameters(unknown));
    }
    Ok((summary, elements))
}

pub async fn vread(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty, id, vid)): FhirPath<(String, String, String, String)>,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    ctx.access.require(Interaction::Vread, &ty)?;
    let mut v = in_read_session(&state, &ctx, move |s| read::vread(s, &ty, &id, &vid)).await?;
    Ok(FhirResponse::new(StatusCode::OK, v.body.take()).version_headers(&v))
}

pub async fn update(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty, id)): FhirPath<(String, String, String)>,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    require_fhir_json(content_type(&headers))?;
    let precondition = parse_if_match(header_str(&headers, "if-match"))?;
    let resource = parse_resource(&body, state.config.max_json_depth)?;
    // `If-None-Match: *` makes the PUT create-only.
    let create_only = header_str(&headers, "if-none-match").map(str::trim) == Some("*");
    let written = in_write_session(&state, &ctx, move |s| {
        if create_only && s.read(&ty, &id)?.is_some_and(|v| !v.is_deleted()) {
            return Err(FhirError::PreconditionFailed(format!(
                "{ty}/{id} already exists"
            )));
        }
        update::update(s, &ty, &id, resource, precondition)
    })
    .await?;
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(FhirResponse::written(
        status,
        &written.version,
        &ctx.fhir_base,
        ctx.prefer.return_,
    ))
}

pub async fn patch(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty, id)): FhirPath<(String, String, String)>,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    require_json_patch(content_type(&headers))?;
    let precondition = parse_if_match(header_str(&headers, "if-match"))?;
    let document = patch::parse_patch(parse_json(&body, state.config.max_json_depth)?)?;
    let written = in_write_session(&state, &ctx, move |s| {
        patch::patch(s, &ty, &id, &document, precondition)
    })
    .await?;
    Ok(FhirResponse::written(
        StatusCode::OK,
        &written.version,
        &ctx.fhir_base,
        ctx.prefer.return_,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty, id)): FhirPath<(String, String, String)>,
    headers: HeaderMap,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    let precondition = parse_if_match(header_str(&headers, "if-match"))?;
    let deleted = in_write_session(&state, &ctx, move |s| {
        delete::delete(s, &ty, &id, precondition)
    })
    .await?;
    Ok(deleted_response(deleted.as_ref(), ctx.prefer.return_))
}

/// 200 with an OperationOutcome (or 204 for `return=minimal`) when something was deleted, and
/// 204 when there was nothing to delete (deleting is idempotent).
pub(super) fn deleted_response(
    deleted: Option<&ResourceVersion>,
    preference: ReturnPreference,
) -> FhirResponse {
    match deleted {
        Some(v) if preference != ReturnPreference::Minimal => {
            FhirResponse::ok(information(format!("deleted {}/{}", v.resource_type, v.id)))
                .header(header::ETAG, &etag(v.version))
        }
        Some(v) => {
            FhirResponse::new(StatusCode::NO_CONTENT, None).header(header::ETAG, &etag(v.version))
        }
        None => FhirResponse::new(StatusCode::NO_CONTENT, None),
    }
}

pub async fn instance_history(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty, id)): FhirPath<(String, String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    ensure_valid_id(&id)?;
    let params = history::parse_history_params(&pairs, page_sizes(&state))?;
    let fhir_base = ctx.fhir_base.clone();
    let bundle = in_read_session(&state, &ctx, move |s| {
        // The history of something that never existed is a 404, not an empty Bundle.
        if s.read(&ty, &id)?.is_none() {
            return Err(FhirError::NotFound {
                resource_type: ty,
                id,
            });
        }
        let self_url = format!("{fhir_base}/{ty}/{id}/_history");
        history::history(
            s,
            HistoryScope::Instance(&ty, &id),
            &params,
            &fhir_base,
            &self_url,
        )
    })
    .await?;
    Ok(FhirResponse::ok(bundle))
}
