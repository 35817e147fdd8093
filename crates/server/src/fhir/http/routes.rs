//! The FHIR route table, everything under `/fhir/{tenant}`.

use axum::Router;
use axum::routing::{get, post};

use super::{bulk_export, bulk_import, compartment, instance, system, type_level};
use crate::audit;
use crate::state::AppState;

/// FHIR REST routes. Static segments (`metadata`, `_history`, `_search`, `$validate`,
/// `$everything`) take precedence over the `{type}`/`{id}`/`{target}` captures.
pub fn fhir_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/fhir/{tenant}",
            get(system::system_search).post(system::bundle),
        )
        .route(
            "/fhir/{tenant}/",
            get(system::system_search).post(system::bundle),
        )
        .route("/fhir/{tenant}/metadata", get(system::metadata))
        .route("/fhir/{tenant}/_history", get(system::system_history))
        .route("/fhir/{tenant}/_search", post(system::system_search_post))
        .route(
            "/fhir/{tenant}/$export",
            get(bulk_export::export_system).post(bulk_export::export_system_post),
        )
        .route("/fhir/{tenant}/$import", post(bulk_import::kick_off))
        .route(
            "/fhir/{tenant}/$import-poll-status/{id}",
            get(bulk_import::status).delete(bulk_import::cancel),
        )
        .route(
            "/fhir/{tenant}/$export-poll-status/{id}",
            get(bulk_export::status).delete(bulk_export::cancel),
        )
        .route(
            "/fhir/{tenant}/$export-file/{id}/{file}",
            get(bulk_export::file),
        )
        .route(
            "/fhir/{tenant}/{type}/$export",
            get(bulk_export::export_type).post(bulk_export::export_type_post),
        )
        .route(
            "/fhir/{tenant}/{type}/{id}/$export",
            get(bulk_export::export_group).post(bulk_export::export_group_post),
        )
        .route(
            "/fhir/{tenant}/{type}/$everything",
            get(compartment::everything_type).post(compartment::everything_type_post),
        )
        .route(
            "/fhir/{tenant}/{type}/{id}/$everything",
            get(compartment::everything_instance).post(compartment::everything_instance_post),
        )
        // The audit trail, served from the chain: read-only.
        .route(
            "/fhir/{tenant}/AuditEvent",
            get(audit::search_audit_events)
                .post(audit::refuse_write)
                .put(audit::refuse_write)
                .delete(audit::refuse_write)
                .patch(audit::refuse_write),
        )
        .route(
            "/fhir/{tenant}/AuditEvent/{id}",
            get(audit::read_audit_event)
                .post(audit::refuse_write)
                .put(audit::refuse_write)
                .delete(audit::refuse_write)
                .patch(audit::refuse_write),
        )
        .route(
            "/fhir/{tenant}/Patient/{id}/$access-log",
            get(audit::access_log),
        )
        .route(
            "/fhir/{tenant}/{type}",
            get(type_level::search)
                .post(type_level::create)
                .put(type_level::conditional_update)
                .delete(type_level::conditional_delete)
                .patch(type_level::conditional_patch),
        )
        .route(
            "/fhir/{tenant}/{type}/_search",
            post(type_level::search_post),
        )
        .route(
            "/fhir/{tenant}/{type}/$validate",
            post(type_level::validate),
        )
        .route(
            "/fhir/{tenant}/{type}/_history",
            get(type_level::type_history),
        )
        .route(
            "/fhir/{tenant}/{type}/{id}",
            get(instance::read)
                .put(instance::update)
                .delete(instance::delete)
                .patch(instance::patch),
        )
        .route(
            "/fhir/{tenant}/{type}/{id}/_history",
            get(instance::instance_history),
        )
        .route(
            "/fhir/{tenant}/{type}/{id}/_history/{vid}",
            get(instance::vread),
        )
        // Compartment search: `Patient/{id}/{type}` and `Patient/{id}/*`.
        .route(
            "/fhir/{tenant}/{type}/{id}/{target}",
            get(compartment::compartment_search),
        )
}
