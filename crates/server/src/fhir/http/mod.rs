//! axum handlers of the FHIR REST API: they parse HTTP inputs, call the framework-free
//! interactions on a blocking thread and render the outcome.

mod extract;
mod instance;
pub mod response;
mod routes;
mod system;
mod type_level;

pub use routes::fhir_routes;

use crate::fhir::FhirError;

/// Runs blocking store work off the async runtime. A panic in there becomes a 500.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, FhirError>
where
    F: FnOnce() -> Result<T, FhirError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| FhirError::Internal(format!("store task failed: {e}")))?
}
