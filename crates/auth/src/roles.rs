//! The platform's roles. A user holds roles per tenant membership; a service client acts with
//! [`Role::Service`]. Roles bound what scopes can grant (see [`crate::policy`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Operates the platform: tenants, conformance resources. No clinical data.
    PlatformAdmin,
    /// Administers one hospital: organisational units, practitioners, users; reads its audit trail.
    TenantAdmin,
    /// Treats patients: reads and writes identified clinical data of the tenant.
    Clinician,
    /// Works with study metadata; never identified clinical data.
    Researcher,
    /// Reviews studies (use-and-access committee).
    CommitteeMember,
    /// Holds identities and consents (pseudonymisation, consent management).
    TrustCentre,
    /// A patient: only their own compartment.
    Patient,
    /// A machine client (client_credentials) with system scopes.
    Service,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::PlatformAdmin,
        Role::TenantAdmin,
        Role::Clinician,
        Role::Researcher,
        Role::CommitteeMember,
        Role::TrustCentre,
        Role::Patient,
        Role::Service,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform-admin",
            Role::TenantAdmin => "tenant-admin",
            Role::Clinician => "clinician",
            Role::Researcher => "researcher",
            Role::CommitteeMember => "committee-member",
            Role::TrustCentre => "trust-centre",
            Role::Patient => "patient",
            Role::Service => "service",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Admin roles must log in with a second factor.
    pub fn requires_totp(self) -> bool {
        matches!(self, Role::PlatformAdmin | Role::TenantAdmin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        assert_eq!(Role::parse("root"), None);
        assert!(Role::TenantAdmin.requires_totp());
        assert!(!Role::Clinician.requires_totp());
    }
}
