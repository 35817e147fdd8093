//! axum handlers of the FHIR REST API: they parse HTTP inputs, call the framework-free
//! interactions on a blocking thread and render the outcome.

mod bulk_export;
mod bulk_import;
pub mod bulk_status;
mod compartment;
mod extract;
mod instance;
pub mod response;
mod routes;
mod system;
mod type_level;

pub use routes::fhir_routes;

use medicus_store::api::{ReadSession, WriteSession};

use crate::access::guard;
use crate::context::RequestContext;
use crate::fhir::FhirError;
use crate::state::AppState;

/// Runs blocking store work off the async runtime. A panic in there becomes a 500.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, FhirError>
where
    F: FnOnce() -> Result<T, FhirError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        // A panic message may quote data; only its kind is logged.
        .map_err(|e| {
            FhirError::Internal(if e.is_panic() {
                "store task panicked".into()
            } else {
                "store task cancelled".into()
            })
        })?
}

/// Runs `work` in a read session of the request's tenant, seen through the caller's access
/// (see [`crate::access::guard`]), on a blocking thread.
pub(crate) async fn in_read_session<T, F>(
    state: &AppState,
    ctx: &RequestContext,
    work: F,
) -> Result<T, FhirError>
where
    F: FnOnce(&mut dyn ReadSession) -> Result<T, FhirError> + Send + 'static,
    T: Send + 'static,
{
    read_guarded(state, ctx, false, work).await
}

/// [`in_read_session`] for a search over many types (`Patient/{id}/*`, `$everything`): the
/// types the caller may not search are left out instead of failing the request.
pub(crate) async fn in_read_session_omitting_denied<T, F>(
    state: &AppState,
    ctx: &RequestContext,
    work: F,
) -> Result<T, FhirError>
where
    F: FnOnce(&mut dyn ReadSession) -> Result<T, FhirError> + Send + 'static,
    T: Send + 'static,
{
    read_guarded(state, ctx, true, work).await
}

async fn read_guarded<T, F>(
    state: &AppState,
    ctx: &RequestContext,
    omit_denied: bool,
    work: F,
) -> Result<T, FhirError>
where
    F: FnOnce(&mut dyn ReadSession) -> Result<T, FhirError> + Send + 'static,
    T: Send + 'static,
{
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    let access = ctx.access.clone();
    blocking(move || {
        let mut session = store.read_session(&tenant)?;
        guard::with_read(&mut *session, &access, omit_denied, work)
    })
    .await
}

/// Runs `work` in a write session of the request's tenant, seen through the caller's access,
/// on a blocking thread, and commits when it succeeds. On error (a refusal included) the
/// session is dropped without commit, which rolls everything back.
pub(crate) async fn in_write_session<T, F>(
    state: &AppState,
    ctx: &RequestContext,
    work: F,
) -> Result<T, FhirError>
where
    F: FnOnce(&mut dyn WriteSession) -> Result<T, FhirError> + Send + 'static,
    T: Send + 'static,
{
    let store = state.store.clone();
    let tenant = ctx.tenant.clone();
    let access = ctx.access.clone();
    blocking(move || {
        let mut session = store.write_session(&tenant)?;
        let outcome = guard::with_write(&mut *session, &access, work)?;
        session.commit()?;
        Ok(outcome)
    })
    .await
}
