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

/// Runs `work` in a read session of `tenant`, on a blocking thread.
pub(crate) async fn in_read_session<T, F>(
    state: &AppState,
    tenant: &str,
    work: F,
) -> Result<T, FhirError>
where
    F: FnOnce(&mut dyn ReadSession) -> Result<T, FhirError> + Send + 'static,
    T: Send + 'static,
{
    let store = state.store.clone();
    let tenant = tenant.to_string();
    blocking(move || {
        let mut session = store.read_session(&tenant)?;
        work(&mut *session)
    })
    .await
}

/// Runs `work` in a write session of `tenant`, on a blocking thread, and commits when it
/// succeeds. On error the session is dropped without commit, which rolls everything back.
pub(crate) async fn in_write_session<T, F>(
    state: &AppState,
    tenant: &str,
    work: F,
) -> Result<T, FhirError>
where
    F: FnOnce(&mut dyn WriteSession) -> Result<T, FhirError> + Send + 'static,
    T: Send + 'static,
{
    let store = state.store.clone();
    let tenant = tenant.to_string();
    blocking(move || {
        let mut session = store.write_session(&tenant)?;
        let outcome = work(&mut *session)?;
        session.commit()?;
        Ok(outcome)
    })
    .await
}
