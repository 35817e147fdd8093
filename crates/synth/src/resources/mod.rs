//! One module per FHIR resource family; each writes MII-shaped JSON through [`Emitter`].

pub mod common;
pub mod consent;
pub mod encounter;
pub mod lab;
pub mod medication;
pub mod organization;
pub mod patient;
