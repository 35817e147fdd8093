//! Type-level interactions: search, create, conditional update/delete/patch, type history.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use medicus_store::api::HistoryScope;

use super::extract::{FhirBody, FhirPath, QueryPairs, content_type, header_str};
use super::instance::deleted_response;
use super::response::FhirResponse;
use super::{in_read_session, in_write_session};
use crate::context::RequestContext;
use crate::fhir::FhirError;
use crate::fhir::headers::{media_type, parse_if_match, require_fhir_json, require_json_patch};
use crate::fhir::interactions::conditional::{Matches, find_matches, parse_criteria};
use crate::fhir::interactions::create::{CreateOutcome, create as create_resource};
use crate::fhir::interactions::resource::ensure_supported_type;
use crate::fhir::interactions::search::{
    PageSizes, ParseOptions, SearchParams, StoredValueSets, localize_reference_values,
    parse_search_params_with, read_value_sets, search as run_search, value_set_urls,
};
use crate::fhir::interactions::validate::{resource_to_validate, validate_operation};
use crate::fhir::interactions::{delete, history, patch, update};
use crate::fhir::json_body::{parse_json, parse_resource};
use crate::fhir::query::parse_pairs;
use crate::state::AppState;
use medicus_auth::policy::Interaction;

type Result<T> = std::result::Result<T, FhirError>;

/// The page-size policy from the configuration (a zero maximum or default is treated as 1).
pub(super) fn page_sizes(state: &AppState) -> PageSizes {
    let max = state.config.max_page_size.max(1);
    PageSizes {
        default: state.config.default_page_size.clamp(1, max),
        max,
    }
}

/// Parses the parameters of a search over `resource_type` (`None`: all types), with the
/// ValueSets its `:in`/`:not-in` name and the configured limits.
pub(super) async fn parse_search_request(
    state: &AppState,
    ctx: &RequestContext,
    resource_type: Option<&str>,
    pairs: Vec<(String, String)>,
) -> Result<SearchParams> {
    let pairs = localize_reference_values(resource_type, pairs, &ctx.fhir_base);
    // `:in`/`:not-in` name ValueSets stored in the tenant: read them before planning the search.
    let urls = value_set_urls(&pairs);
    let value_sets = if urls.is_empty() {
        StoredValueSets::default()
    } else {
        in_read_session(state, ctx, move |s| read_value_sets(s, &urls)).await?
    };
    parse_search_params_with(
        resource_type,
        &pairs,
        page_sizes(state),
        ctx.prefer.handling,
        &ParseOptions {
            value_sets: &value_sets,
            max_chain_depth: state.config.max_chain_depth,
        },
    )
}

/// Search over `resource_type` (`None`: all types) with the given parameters.
pub(super) async fn search_response(
    state: &AppState,
    ctx: RequestContext,
    resource_type: Option<String>,
    pairs: Vec<(String, String)>,
) -> Result<FhirResponse> {
    let params = parse_search_request(state, &ctx, resource_type.as_deref(), pairs).await?;
    let fhir_base = ctx.fhir_base.clone();
    let bundle = in_read_session(state, &ctx, move |s| {
        let self_url = match &resource_type {
            Some(ty) => format!("{fhir_base}/{ty}"),
            None => fhir_base.clone(),
        };
        run_search(s, resource_type.as_deref(), &params, &fhir_base, &self_url)
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
        if content_type(headers).map(media_type).as_deref()
            != Some("application/x-www-form-urlencoded")
        {
            return Err(FhirError::UnsupportedMediaType(
                "POST _search takes application/x-www-form-urlencoded parameters".into(),
            ));
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
    let outcome = in_write_session(&state, &ctx, move |s| {
        create_resource(s, &ty, resource, if_none_exist.as_deref())
    })
    .await?;
    let (status, version) = match &outcome {
        CreateOutcome::Created(w) => (StatusCode::CREATED, &w.version),
        CreateOutcome::Existing(v) => (StatusCode::OK, v),
    };
    Ok(FhirResponse::written(
        status,
        version,
        &ctx.fhir_base,
        ctx.prefer.return_,
    ))
}

/// Conditional writes at type level need criteria: an empty query would match everything.
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
    let written = in_write_session(&state, &ctx, move |s| {
        update::conditional_update(s, &ty, &pairs, resource, precondition)
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
    let deleted = in_write_session(&state, &ctx, move |s| {
        delete::conditional_delete(s, &ty, &pairs)
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
    let written = in_write_session(&state, &ctx, move |s| {
        let id = match find_matches(s, &ty, &pairs)? {
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

pub async fn type_history(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty)): FhirPath<(String, String)>,
    QueryPairs(pairs): QueryPairs,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    let params = history::parse_history_params(&pairs, page_sizes(&state))?;
    let fhir_base = ctx.fhir_base.clone();
    let bundle = in_read_session(&state, &ctx, move |s| {
        let self_url = format!("{fhir_base}/{ty}/_history");
        history::history(s, HistoryScope::Type(&ty), &params, &fhir_base, &self_url)
    })
    .await?;
    Ok(FhirResponse::ok(bundle))
}

/// `POST /Type/$validate`: always 200 with an OperationOutcome holding the validation result;
/// nothing is written.
pub async fn validate(
    State(state): State<AppState>,
    ctx: RequestContext,
    FhirPath((_, ty)): FhirPath<(String, String)>,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<FhirResponse> {
    ensure_supported_type(&ty)?;
    ctx.access
        .require(Interaction::Operation("validate".into()), &ty)?;
    require_fhir_json(content_type(&headers))?;
    let resource = resource_to_validate(parse_resource(&body, state.config.max_json_depth)?)?;
    // Tenant existence still matters: an unknown tenant is a 404 like everywhere else.
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    if !super::blocking(move || Ok(store.tenant_exists(&tenant)?)).await? {
        return Err(FhirError::UnknownTenant);
    }
    Ok(FhirResponse::ok(validate_operation(&resource, Some(&ty))))
}
