//! The consent mask: which patients research may count. The engine asks a
//! [`ResearchEligibility`] about each patient's Consents and keeps the answer as a bitmap that
//! every count is intersected with; no query path reads the index without it.
//!
//! The default, [`MiiBroadConsent`], is `medicus-consent`'s evaluation of the MII Broad Consent
//! (TORCH's algorithm: the `.8` gate must hold today, a data window must exist) with objections
//! (opt-out, withdrawal) excluding the patient.

use medicus_consent::{ConsentPolicy, Day, LegalBasis, PatientConsent};
use serde_json::{Map, Value};

/// Decides whether research may count a patient, from their Consent resources.
pub trait ResearchEligibility: Send + Sync {
    /// Compiles a patient's Consents (as [`trim`] keeps them) once, when they change.
    fn compile(&self, consents: &[Value]) -> PatientConsent;
    /// Whether the compiled situation lets research count the patient on `today` (days since
    /// 1970-01-01).
    fn permits(&self, consent: &PatientConsent, today: i32) -> bool;
}

/// The MII Broad Consent under a legal basis and for a research purpose.
#[derive(Debug, Clone)]
pub struct MiiBroadConsent {
    pub policy: ConsentPolicy,
    pub basis: LegalBasis,
    /// The purpose objections are checked against (an objection without purposes covers all).
    pub purpose: String,
}

impl Default for MiiBroadConsent {
    fn default() -> Self {
        MiiBroadConsent {
            policy: ConsentPolicy::default(),
            basis: LegalBasis::Consent,
            purpose: "feasibility".into(),
        }
    }
}

impl ResearchEligibility for MiiBroadConsent {
    fn compile(&self, consents: &[Value]) -> PatientConsent {
        // Encounters only move the start of the data window earlier; whether a patient counts
        // depends on the gate, a non-empty window and objections, which they do not change.
        medicus_consent::evaluate(&self.policy, consents, &[])
    }

    fn permits(&self, consent: &PatientConsent, today: i32) -> bool {
        consent.permits_research(self.basis, &self.purpose, Day(today))
    }
}

/// The members of a Consent eligibility depends on (the rest is dropped to save memory).
pub fn trim(r: &Value) -> Value {
    let mut out = Map::new();
    if let Some(o) = r.as_object() {
        for key in [
            "resourceType",
            "id",
            "status",
            "category",
            "dateTime",
            "policy",
            "provision",
        ] {
            if let Some(v) = o.get(key) {
                out.insert(key.to_owned(), v.clone());
            }
        }
    }
    Value::Object(out)
}
