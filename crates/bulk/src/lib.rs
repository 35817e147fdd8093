//! Bulk data: moving millions of resources in and out.
//!
//! - [`import`]: NDJSON files, Bundles and folders of them (also `.gz`) into a tenant, with parallel
//!   parsing/validation/index extraction, batched durable writes, per-line error reports and
//!   checkpoints for resuming. Used by `medicus import` and `POST /fhir/{tenant}/$import`.
//! - [`export`]: FHIR Bulk Data Access 2.0 `$export` (system, Patient, Group) to NDJSON files with
//!   bounded memory.
//! - [`jobs`]: the asynchronous job registry behind the kick-off / status / cancel pattern that
//!   both `$export` and `$import` use.

pub mod export;
pub mod import;
pub mod jobs;
