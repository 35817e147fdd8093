//! The FHIR REST API: framework-free interaction logic plus the axum handlers around it.

pub mod bundle;
pub mod capability;
pub mod error;
pub mod headers;
pub mod http;
pub mod interactions;
pub mod json_body;
pub mod outcome;
pub mod query;
pub mod time_fmt;

pub use error::FhirError;
