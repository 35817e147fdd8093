//! FHIR interactions, independent of HTTP: each takes a store session and parsed inputs and
//! returns a typed outcome or a [`FhirError`](super::FhirError). The HTTP handlers and (later)
//! the CLI bulk import both drive these.

pub mod compartment;
pub mod conditional;
pub mod create;
pub mod delete;
pub mod everything;
pub mod history;
pub mod include;
pub mod patch;
pub mod read;
pub mod references;
pub mod resource;
pub mod search;
pub mod transaction;
pub mod update;
pub mod validate;
