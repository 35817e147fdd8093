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
//! - [`auth`]: the OAuth2/OIDC/SMART authorisation server at `/auth` (login and consent pages,
//!   token, introspection, revocation, JWKS, userinfo, discovery) and the SMART configuration
//!   under each FHIR base, mounted when the state has an [`auth::AuthState`].
//!
//! Entry point: [`router`] with an [`AppState`] (`store` + [`ServerConfig`]). Routes: the FHIR API
//! under `/fhir/{tenant}/…`, `/healthz` (200 `ok`) and `/readyz` (200 when the store answers,
//! else 503). Every FHIR error, including axum's own rejections, 404/405 fallbacks and panics,
//! is an OperationOutcome.
//!
//! Authentication slots in as a tower layer on the returned router (`router(state).layer(auth)`)
//! that rejects unauthenticated requests and inserts a [`Principal`] into the request
//! extensions; handlers see it through [`RequestContext::principal`].

pub mod audit;
pub mod auth;
pub mod config;
pub mod context;
pub mod fhir;
mod health;
mod middleware;
mod router;
pub mod s3;
pub mod state;

pub use config::ServerConfig;
pub use context::{Principal, RequestContext, RequestId};
pub use router::router;
pub use state::AppState;
