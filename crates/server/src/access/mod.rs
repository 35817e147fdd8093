//! Access control on the FHIR API: who may do what, enforced in two places.
//!
//! 1. [`authenticate`] (a middleware on every `/fhir/{tenant}/…` request) verifies the bearer
//!    token, checks that it was issued for the URL's tenant and puts an [`Access`] into the
//!    request. Only the capability statement and the SMART configuration are public.
//! 2. Every store session a FHIR handler opens is wrapped in a [`guard`]: each read, search,
//!    history page and write asks the policy (`medicus_auth::decide`) for the resource type it
//!    touches, and a patient-context token sees its patient's compartment only. Because
//!    `_include`, `_revinclude`, chains, conditional writes, transactions, batches and
//!    `$everything` all reach data through the session, none of them is a side door.
//!
//! Handlers also ask up front ([`Access::require`]) so that a type the token may not touch at all
//! is a clear 403 instead of an empty result.

mod authenticate;
pub mod guard;

use std::sync::Arc;

use medicus_auth::policy::{self, Decision, Filters, Interaction};
use medicus_auth::{Principal, Role};

use crate::fhir::FhirError;

pub use authenticate::{AuditActor, authenticate};

/// Whether the router checks tokens. Built by the CLI always as [`AccessControl::Enforced`];
/// `Open` exists for embedding the router where the embedder has already decided (the
/// in-process test harness of FHIR semantics, tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessControl {
    Enforced,
    Open,
}

/// What the caller of one request may do. Missing from a request means [`Access::Anonymous`].
#[derive(Debug, Clone)]
pub enum Access {
    /// Access control is off for this router ([`AccessControl::Open`]).
    Open,
    /// A public endpoint without a token: no data may be touched.
    Anonymous,
    /// A verified access token of the URL's tenant.
    Token(Arc<Principal>),
}

/// Where a decision lets the caller reach within one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every resource of the type that satisfies the scope constraints.
    All { filters: Filters },
    /// Only resources in the Patient compartment of `patient` (and the constraints).
    Patient { patient: String, filters: Filters },
}

impl Reach {
    pub fn filters(&self) -> &Filters {
        match self {
            Reach::All { filters } | Reach::Patient { filters, .. } => filters,
        }
    }

    /// No compartment and no constraints: nothing to check per resource.
    pub fn is_unrestricted(&self) -> bool {
        matches!(self, Reach::All { filters } if filters.is_empty())
    }
}

/// Types a system-wide interaction does not need: the audit trail is served from its own chain
/// (`crate::audit`), and the API refuses to write AuditEvents into the clinical store.
fn outside_system_interactions(resource_type: &str) -> bool {
    resource_type == "AuditEvent"
}

impl Access {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Access::Token(p) => Some(p),
            _ => None,
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Access::Open)
    }

    /// The policy's answer for `interaction` on `resource_type` (no particular resource).
    pub fn reach(
        &self,
        interaction: &Interaction,
        resource_type: &str,
    ) -> Result<Reach, &'static str> {
        match self {
            Access::Open => Ok(Reach::All {
                filters: Vec::new(),
            }),
            Access::Anonymous => Err("this endpoint needs an access token"),
            Access::Token(principal) => {
                let access = policy::Access {
                    tenant: &principal.tenant,
                    interaction: interaction.clone(),
                    resource_type: Some(resource_type),
                    resource: None,
                };
                match policy::decide(principal, &access) {
                    Decision::Allow { filters } => Ok(Reach::All { filters }),
                    Decision::AllowPatient { patient, filters } => {
                        Ok(Reach::Patient { patient, filters })
                    }
                    Decision::Deny { reason } => Err(reason),
                }
            }
        }
    }

    /// [`Access::reach`] as a 403 when denied.
    pub fn require(
        &self,
        interaction: Interaction,
        resource_type: &str,
    ) -> Result<Reach, FhirError> {
        self.reach(&interaction, resource_type)
            .map_err(|reason| forbidden(&interaction, resource_type, reason))
    }

    /// A system-wide interaction (search or history over every type, bulk import) needs
    /// unrestricted access to every type.
    pub fn require_everywhere(&self, interaction: Interaction) -> Result<(), FhirError> {
        if self.is_open() {
            return Ok(());
        }
        for resource_type in medicus_fhir::r4().resource_types() {
            if outside_system_interactions(resource_type) {
                continue;
            }
            match self.reach(&interaction, resource_type) {
                Ok(reach) if reach.is_unrestricted() => {}
                Ok(_) => {
                    return Err(FhirError::Forbidden(format!(
                        "{} across all types needs unrestricted access to every type; the token is limited on {resource_type}",
                        describe(&interaction)
                    )));
                }
                Err(reason) => return Err(forbidden(&interaction, resource_type, reason)),
            }
        }
        Ok(())
    }

    /// Whether the caller acts for a service (bulk data, automation).
    pub fn is_service(&self) -> bool {
        match self {
            Access::Open => true,
            Access::Anonymous => false,
            Access::Token(p) => p.has_role(Role::Service),
        }
    }
}

fn describe(interaction: &Interaction) -> String {
    match interaction {
        Interaction::Read => "read".into(),
        Interaction::Vread => "vread".into(),
        Interaction::Search => "search".into(),
        Interaction::History => "history".into(),
        Interaction::Create => "create".into(),
        Interaction::Update => "update".into(),
        Interaction::Patch => "patch".into(),
        Interaction::Delete => "delete".into(),
        Interaction::Operation(op) => format!("${}", op.trim_start_matches('$')),
        Interaction::Export => "export".into(),
    }
}

pub(crate) fn forbidden(interaction: &Interaction, resource_type: &str, reason: &str) -> FhirError {
    FhirError::Forbidden(format!(
        "{} on {resource_type} is not allowed: {reason}",
        describe(interaction)
    ))
}
