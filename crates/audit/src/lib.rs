//! The tamper-evident audit trail of medicus.
//!
//! - [`AuditEvent`]: who did what to which entities, when, from where, with which outcome.
//! - [`chain`]: per chain (a tenant, or [`PLATFORM_CHAIN`]) every entry's hash covers the
//!   previous entry's hash, its position, time, subjects and encoded record, so a change,
//!   deletion or reordering of stored entries is detected by [`verify`].
//! - [`AuditTrail`]: the batching writer. Request paths hand events to a background thread,
//!   which appends them per chain with one `audit_append` per batch.
//! - [`fhir`]: entries as FHIR R4 `AuditEvent` resources and chain search.
//!
//! The store (`medicus_store::PlatformRecords`) keeps the entries; this crate owns their bytes.
//! Format and guarantees: docs/audit.md.

pub mod chain;
mod event;
pub mod fhir;
mod trail;

pub use chain::{Problem, VerifyReport, verify, verify_all};
pub use event::{
    Action, Agent, AuditEvent, Kind, OutcomeCode, PLATFORM_CHAIN, RECORD_VERSION, now_us,
};
pub use trail::{AuditTrail, DEFAULT_CAPACITY, TryRecord};

use medicus_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("encoding an audit record: {0}")]
    Encode(String),
    #[error("decoding an audit record: {0}")]
    Decode(String),
    #[error("the audit writer has stopped")]
    Stopped,
}

#[cfg(test)]
mod tests;
