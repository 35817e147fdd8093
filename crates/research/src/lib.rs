//! The research platform's core, without HTTP: trust-centre pseudonymisation ([`keys`],
//! [`pseudonym`]), four-eyes de-pseudonymisation ([`depseudo`]), de-identification of FHIR
//! resources ([`deid`]), and research projects with committee votes and data permits
//! ([`project`]). Consent evaluation lives in `medicus-consent`.
//!
//! State lives in the store's platform records (documents with compare-and-set); the crate adds
//! no schema. Nothing here logs: identities, pseudonyms and keys must not reach a log, and
//! error messages carry none of them.

pub mod deid;
pub mod depseudo;
mod docs;
pub mod error;
pub mod extract;
pub mod keys;
pub mod project;
pub mod pseudonym;

pub use deid::{BirthDatePrecision, DeidConfig, Deidentifier};
pub use depseudo::{DepseudoRequest, RequestState};
pub use error::{ResearchError, Result};
pub use keys::{ProjectKeys, TrustCentreKey};
pub use project::{
    Action, Application, Committee, DataPermit, DataRequest, OutputKind, PermitDenied, Project,
    ProjectState, Transition, Vote,
};
pub use pseudonym::{Identity, pseudonymize};
