//! The feasibility engine: "how many patients with X and Y, without Z?" answered from an
//! in-memory index of patient bitmaps per tenant, fed by the store's change feed, with the
//! consent mask applied inside every count and the result obfuscated as in the MII.
//!
//! - [`ccdl`]: the CCDL v2 model and its schema validation (errors carry a JSON pointer);
//!   [`text`]: the short text form (`icd:E11 AND loinc:4548-4>7.5 AND NOT atc:A10A*`).
//! - [`plan`]: both compile to a [`Plan`]: contexts resolved, code systems normalised,
//!   hierarchies (ICD-10-GM, OPS, ATC) by code structure, units checked, limits enforced.
//! - [`index`]: one tenant's index; [`engine`]: the engine over a store (build, change feed,
//!   snapshots); [`consent`]: the research-eligibility seam and the MII Broad Consent rule.
//! - [`obfuscate`]: Laplace noise, rounding, caching, "too small".
//! - [`reference`]: a plain scan over NDJSON computing the same counts, for tests and benches.

pub mod ccdl;
pub mod consent;
pub mod date;
pub mod engine;
pub mod error;
pub mod facts;
pub mod index;
pub mod obfuscate;
pub mod plan;
pub mod reference;
pub mod service;
mod snapshot;
pub mod text;
pub mod units;

pub use ccdl::Ccdl;
pub use consent::{MiiBroadConsent, ResearchEligibility};
pub use engine::{CohortEngine, snapshot_path};
pub use error::{EngineError, QueryError};
pub use obfuscate::{Obfuscated, ObfuscationConfig, Obfuscator};
pub use plan::{Limits, Plan, compile};

/// Parses a query in either form: CCDL JSON when it starts with `{`, else the text form.
pub fn parse_query(input: &str, limits: Limits) -> Result<Plan, QueryError> {
    let ccdl = if input.trim_start().starts_with('{') {
        Ccdl::from_json(input)?
    } else {
        text::parse(input)?
    };
    plan::compile_with(&ccdl, limits)
}
