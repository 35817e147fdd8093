//! Persistence for medicus: tenants, versioned resources with zstd-compressed JSON bodies, search
//! indexes per parameter type, and the change feed (the monotonically increasing transaction id).
//!
//! `api` is the contract every backend implements; `sqlite` is the embedded default, `postgres`
//! the server backend for deployments past one machine.

pub mod api;
mod codec;
mod error;
pub mod index;
pub mod objects;
pub mod platform;
pub mod postgres;
pub mod search;
mod sql_search;
pub mod sqlite;
mod stamp;
pub mod tenant;
pub mod testing;

pub use api::*;
pub use error::StoreError;
pub use objects::ObjectRecords;
pub use platform::*;
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::SqliteStore;
