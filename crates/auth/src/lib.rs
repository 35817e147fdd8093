//! Identity and authorisation for medicus, free of any HTTP framework.
//!
//! The HTTP layer (server) calls into [`Auth`]: it authenticates users and clients, runs the
//! OAuth2 / SMART grant logic, issues and verifies signed JWT access tokens, and asks
//! [`policy::decide`] whether a verified [`Principal`] may perform a FHIR interaction.
//! Everything persistent goes through the store's [`PlatformRecords`] documents; secrets are
//! hashed (argon2id) or sealed (AES-256-GCM under the caller's [`ServerKey`]).
//! Concepts, scopes, roles and the token format: `docs/auth.md`.

pub mod clients;
pub mod clock;
pub mod crypto;
pub mod error;
pub mod federation;
pub mod grants;
pub mod jws;
pub mod keys;
pub mod oidc;
pub mod password;
pub mod policy;
pub mod roles;
pub mod scope;
pub mod testing;
pub mod tokens;
pub mod totp;
pub mod users;

mod docs;
mod service;

pub use clock::{Clock, ManualClock, SystemClock};
pub use crypto::ServerKey;
pub use error::{AuthError, OAuthError, OAuthErrorCode};
pub use medicus_store::platform::PlatformRecords;
pub use policy::{Access, Decision, Interaction, decide};
pub use roles::Role;
pub use scope::{Scope, ScopeSet};
pub use service::{Auth, AuthConfig, JwksFetcher, Records};
pub use tokens::Principal;
