//! Persistence for medicus: tenants, versioned resources with zstd-compressed JSON bodies, search
//! indexes per parameter type, and the change feed (the monotonically increasing transaction id).
//!
//! `api` is the contract every backend implements; `sqlite` is the embedded default.

pub mod api;
mod codec;
mod error;
pub mod index;
pub mod search;
pub mod sqlite;
pub mod tenant;

pub use api::*;
pub use error::StoreError;
pub use sqlite::SqliteStore;
