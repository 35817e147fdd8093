//! HTTP composition for medicus: the FHIR R4 REST API on axum.
//!
//! Layout:
//! - [`fhir::interactions`]: the FHIR interaction logic (create, update, conditional writes, patch,
//!   history, search, transaction/batch). Framework-free: it takes a store session and parsed
//!   inputs and returns typed outcomes, so the CLI bulk import can reuse it.
//! - [`fhir::http`]: the axum handlers that parse HTTP requests into those inputs and render the
//!   outcomes as FHIR responses.
//! - [`context`]: the per-request context (tenant, request id, principal) that an auth layer
//!   will fill in later.
//!
//! Entry point: [`router`] with an [`AppState`].

pub mod config;
pub mod context;
pub mod fhir;
mod health;
mod middleware;
mod router;
pub mod state;

pub use config::ServerConfig;
pub use context::{Principal, RequestContext, RequestId};
pub use router::router;
pub use state::AppState;
