//! Type-level interactions: search, create, conditional update/delete/patch, type history.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use medicus_store::api::HistoryScope;

use super::blocking;
use super::extract::{FhirBody, FhirPath, QueryPairs, content_type, header_str};
use super::instance::deleted_response;
use super::response::FhirResponse;
use crate::context::RequestContext;
use crate::fhir::FhirError;
use crate::fhir::headers::{media_type, parse_if_match, require_fhir_json, require_json_patch};
use crate::fhir::interactions::conditional::{Matches, find_matches, parse_criteria};
use crate::fhir::interactions::create::{CreateOutcome, create as create_resource};
use crate::fhir::interactions::resource::ensure_supported_type;
use crate::fhir::interactions::search::{
    PageSizes, localize_reference_values, parse_search_params, search as run_search,
};
use crate::fhir::interactions::{delete, history, patch, update};
use crate::fhir::json_body::{parse_json, parse_resource};
use crate::fhir::query::parse_pairs;
use crate::state::AppState;

type Result<T> = std::result::Result<T, FhirError>;

pub(super) fn page_sizes(state: &AppState) -> PageSizes {
    let max = state.config.max_page_size.max(1);
    PageSizes {
        default: state.config.default_page_size.clamp(1, max),
        max,
    }
}

/// Search over `resource_type` (`None`: all types) with the given parameters.
pub(super) async fn search_response(
    state: &AppState,
    ctx: RequestContext,
    resource_type: Option<String>,
    pairs: Vec<(String, String)>,
) -> Result<FhirResponse> {
    let pairs = localize_reference_values(resource_type.as_deref(), pairs, &ctx.fhir_base);
    let params = parse_search_params(
        resource_type.as_deref(),
        &pairs,
        page_sizes(state),
        ctx.prefer.handling,
    )?;
    let store = state.store.clone();
    let bundle = blocking(move || {
        let mut session = store.read_session(&ctx.tenant)?;
        let self_url = match &resource_type {
            Some(ty) => format!("{}/{ty}", ctx.fhir_base),
            None => ctx.fhir_base.clone(),
        };
        run_search(
            &mut *session,
            resource_type.as_deref(),
            &params,
            &ctx.fhir_base,
            &self_url,
        )
    })
    .await?;
    Ok(FhirResponse::ok(bundle))
}

pub async fn search(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty)): FhirPath<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    search_response(&state, ctx, Some(ty), pairs).await
}

/// The parameters of `POST …/_search`: the query string plus the form body.
pub(super) fn form_search_pairs(
    headers: &HeaderMap,
    body: &[u8],
    mut pairs: Vec<(String, String)>,
) -> Result<Vec<(String, String)>> {
    if !body.is_empty() {
        match content_type(headers).map(media_type).as_deref() {
            Some("application/x-www-form-urlencoded") => {}
            _ => {
                return Err(FhirError::UnsupportedMediaType(
                    "POST _search takes application/x-www-form-urlencoded parameters".into(),
                ));
            }
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| FhirError::bad_request("form body is not UTF-8"))?;
        pairs.extend(parse_pairs(text));
    }
    Ok(pairs)
}

pub async fn search_post(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty)): FhirPath<(String, String)>,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    let pairs = form_search_pairs(&headers, &body, pairs)?;
    search_response(&state, ctx, Some(ty), pairs).await
}

pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty)): FhirPath<(String, String)>,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    require_fhir_json(content_type(&headers))?;
    let if_none_exist = header_str(&headers, "if-none-exist").map(parse_criteria);
    let resource = parse_resource(&body, state.config.max_json_depth)?;
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    let outcome = blocking(move || {
        let mut session = store.write_session(&tenant)?;
        let outcome = create_resource(&mut *session, &ty, resource, if_none_exist.as_deref())?;
        session.commit()?;
        Ok(outcome)
    })
    .await?;
    Ok(match outcome {
        CreateOutcome::Created(w) => FhirResponse::written(
            StatusCode::CREATED,
            &w.version,
            &ctx.fhir_base,
            ctx.prefer.return_,
        ),
        CreateOutcome::Existing(v) => {
            FhirResponse::written(StatusCode::OK, &v, &ctx.fhir_base, ctx.prefer.return_)
        }
    })
}

fn require_criteria(pairs: &[(String, String)], what: &str) -> Result<()> {
    if pairs.is_empty() {
        return Err(FhirError::bad_request(format!(
            "{what} without an id needs search criteria"
        )));
    }
    Ok(())
}

pub async fn conditional_update(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty)): FhirPath<(String, String)>,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    require_criteria(&pairs, "an update")?;
    require_fhir_json(content_type(&headers))?;
    let precondition = parse_if_match(header_str(&headers, "if-match"))?;
    let resource = parse_resource(&body, state.config.max_json_depth)?;
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    let written = blocking(move || {
        let mut session = store.write_session(&tenant)?;
        let written =
            update::conditional_update(&mut *session, &ty, &pairs, resource, precondition)?;
        session.commit()?;
        Ok(written)
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

pub async fn conditional_delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty)): FhirPath<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    require_criteria(&pairs, "a delete")?;
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    let deleted = blocking(move || {
        let mut session = store.write_session(&tenant)?;
        let deleted = delete::conditional_delete(&mut *session, &ty, &pairs)?;
        session.commit()?;
        Ok(deleted)
    })
    .await?;
    Ok(deleted_response(deleted.as_ref(), ctx.prefer.return_))
}

pub async fn conditional_patch(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty)): FhirPath<(String, String)>,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    require_criteria(&pairs, "a patch")?;
    require_json_patch(content_type(&headers))?;
    let precondition = parse_if_match(header_str(&headers, "if-match"))?;
    let document = patch::parse_patch(parse_json(&body, state.config.max_json_depth)?)?;
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    let written = blocking(move || {
        let mut session = store.write_session(&tenant)?;
        let id = match find_matches(&mut *session, &ty, &pairs)? {
            Matches::One(found) => found.id,
            Matches::None => {
                return Err(FhirError::NotFoundOther(
                    "conditional patch matched no resource".into(),
                ));
            }
            Matches::Many => {
                return Err(FhirError::PreconditionFailed(
                    "conditional patch criteria matched more than one resource".into(),
                ));
            }
        };
        let written = patch::patch(&mut *session, &ty, &id, &document, precondition)?;
        session.commit()?;
        Ok(written)
    })
    .await?;
    Ok(FhirResponse::written(
        StatusCode::OK,
        &written.version,
        &ctx.fhir_base,
        ctx.prefer.return_,
    ))
}

pub async fn type_history(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty)): FhirPath<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    let params = history::parse_history_params(&pairs, page_sizes(&state))?;
    let store = state.store.clone();
    let bundle = blocking(move || {
        let mut session = store.read_session(&ctx.tenant)?;
        let self_url = format!("{}/{ty}/_history", ctx.fhir_base);
        history::history(
            &mut *session,
            HistoryScope::Type(&ty),
            &params,
            &ctx.fhir_base,
            &self_url,
        )
    })
    .await?;
    Ok(FhirResponse::ok(bundle))
}
