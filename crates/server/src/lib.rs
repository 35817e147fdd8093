//! HTTP composition for medicus: the FHIR R4 REST API on axum.
//!
//! Layout:
//! - [`fhir::interactions`]: the FHIR interaction logic (create, update, conditional writes, patch,
//!   history, search, transaction/batch). Framework-free: it takes a store session and parsed
//!   inputs and returns typed outcomes, so the CLI bulk import can reuse it.
//! - [`fhir::http`]: the axum handlers that parse HTTP requests into those inputs and render the
//!   outcomes as FHIR responses.
//! - [`context`]: the per-request context (tenant, request id, the caller's [`Access`]).
//! - [`auth`]: the OAuth2/OIDC/SMART authorisation server at `/auth` (login and consent pages,
//!   token, introspection, revocation, JWKS, userinfo, discovery) and the SMART configuration
//!   under each FHIR base, mounted when the state has an [`auth::AuthState`].
//!
//! Entry point: [`router`] with an [`AppState`] (`store` + [`ServerConfig`]). Routes: the FHIR API
//! under `/fhir/{tenant}/…`, the feasibility API under `/research/` ([`research`]), `/healthz`
//! (200 `ok`) and `/readyz` (200 when the store answers, else 503). Every FHIR error, including
//! axum's own rejections, 404/405 fallbacks and panics, is an OperationOutcome.
//!
//! Access control: [`access::authenticate`] checks the bearer token of every FHIR request
//! (the router adds it), and every store session a handler opens is wrapped in an
//! [`access::guard`] that asks the policy before each read, search and write.

pub mod access;
pub mod audit;
pub mod auth;
pub mod config;
pub mod context;
pub mod fhir;
mod health;
mod middleware;
pub mod research;
pub mod research_ops;
mod router;
pub mod s3;
pub mod state;

pub use access::{Access, AccessControl};
pub use config::ServerConfig;
pub use context::{RequestContext, RequestId};
pub use router::router;
pub use state::AppState;
