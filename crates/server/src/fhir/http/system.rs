//! System-level interactions: capabilities, transaction/batch, system history and search.

use axum::extract::State;
use axum::http::HeaderMap;
use medicus_store::api::HistoryScope;

use super::extract::{FhirBody, QueryPairs, content_type};
use super::response::FhirResponse;
use super::type_level::{form_search_pairs, page_sizes, search_response};
use super::{blocking, in_read_session, in_write_session};
use crate::context::RequestContext;
use crate::fhir::FhirError;
use crate::fhir::capability::capability_statement;
use crate::fhir::headers::require_fhir_json;
use crate::fhir::interactions::history;
use crate::fhir::interactions::transaction::{
    BundleOptions, bundle_kind, process_batch, process_transaction,
};
use crate::fhir::json_body::parse_resource;
use crate::state::AppState;

type Result<T> = std::result::Result<T, FhirError>;

pub async fn metadata(State(state): State<AppState>, ctx: RequestContext) -> Result<FhirResponse> {
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    if !blocking(move || Ok(store.tenant_exists(&tenant)?)).await? {
        return Err(FhirError::UnknownTenant);
    }
    Ok(FhirResponse::ok(capability_statement(&ctx.fhir_base)))
}

/// `POST /fhir/{tenant}` with a transaction or batch Bundle.
pub async fn bundle(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<FhirResponse> {
    require_fhir_json(content_type(&headers))?;
    let bundle = parse_resource(&body, state.config.max_json_depth)?;
    let is_transaction = bundle_kind(&bundle)? == "transaction";
    let options = BundleOptions {
        fhir_base: ctx.fhir_base.clone(),
        return_preference: ctx.prefer.return_,
        page_sizes: page_sizes(&state),
        max_json_depth: state.config.max_json_depth,
    };
    let response = if is_transaction {
        in_write_session(&state, &ctx, move |s| {
            process_transaction(s, &bundle, &options)
        })
        .await?
    } else {
        let store = state.store.clone();
        let tenant = ctx.tenant.clone();
        let access = ctx.access.clone();
        blocking(move || process_batch(&*store, &tenant, &access, &bundle, &options)).await?
    };
    Ok(FhirResponse::ok(response))
}

pub async fn system_history(
    State(state): State<AppState>,
    ctx: RequestContext,
    QueryPairs(pairs): QueryPairs,
) -> Result<FhirResponse> {
    let params = history::parse_history_params(&pairs, page_sizes(&state))?;
    let fhir_base = ctx.fhir_base.clone();
    let bundle = in_read_session(&state, &ctx, move |s| {
        let self_url = format!("{fhir_base}/_history");
        history::history(s, HistoryScope::System, &params, &fhir_base, &self_url)
    })
    .await?;
    Ok(FhirResponse::ok(bundle))
}

pub async fn system_search(
    State(state): State<AppState>,
    ctx: RequestContext,
    QueryPairs(pairs): QueryPairs,
) -> Result<FhirResponse> {
    search_response(&state, ctx, None, pairs).await
}

pub async fn system_search_post(
    State(state): State<AppState>,
    ctx: RequestContext,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
    FhirBody(body): FhirBody,
) -> Result<FhirResponse> {
    let pairs = form_search_pairs(&headers, &body, pairs)?;
    search_response(&state, ctx, None, pairs).await
}
