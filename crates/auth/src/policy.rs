//! The access policy: may this verified principal perform this FHIR interaction on this type
//! in this tenant? Scopes say what the app was granted; roles bound what any scope can grant.
//!
//! Decisions are per resource type. The HTTP layer asks once per type a request touches
//! (each `_type` of a system search, each entry of a transaction, each type of an export) and
//! applies an [`Decision::AllowPatient`] restriction to every query path, `_include`,
//! `_revinclude`, chains and history included.

use serde_json::Value;

use crate::roles::Role;
use crate::scope::{Constraint, Context, Perms, ScopeSet};

/// Who is asking: what a verified access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id, or the client id for a service.
    pub subject: String,
    pub tenant: String,
    pub roles: Vec<Role>,
    pub scopes: ScopeSet,
    /// The launch context patient id (token claim `patient`).
    pub patient: Option<String>,
    /// `Practitioner/…` or `Patient/…` of the user.
    pub fhir_user: Option<String>,
    pub client_id: String,
    pub jti: String,
    pub expires_s: i64,
    /// The grant family the token came from (revoked together).
    pub family: Option<String>,
}

impl Principal {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The patient id a patient-role user is, from `fhirUser = Patient/{id}`.
    pub fn own_patient(&self) -> Option<&str> {
        self.fhir_user
            .as_deref()
            .and_then(|r| r.strip_prefix("Patient/"))
            .filter(|id| !id.is_empty() && !id.contains('/'))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    Read,
    Vread,
    Search,
    History,
    Create,
    Update,
    Patch,
    Delete,
    /// An operation by name, with or without `$` (`everything`, `validate`, `meta`, `access-log`).
    Operation(String),
    /// Bulk Data export of the type.
    Export,
}

impl Interaction {
    pub fn required_perms(&self) -> Option<Perms> {
        Some(match self {
            Interaction::Read | Interaction::Vread => Perms::R,
            Interaction::Search => Perms::S,
            Interaction::History | Interaction::Export => Perms::RS,
            Interaction::Create => Perms::C,
            Interaction::Update | Interaction::Patch => Perms::U,
            Interaction::Delete => Perms::D,
            Interaction::Operation(op) => match op.trim_start_matches('$') {
                "everything" => Perms::RS,
                "meta" => Perms::R,
                "access-log" => Perms::R,
                // Validation reads nothing stored; it needs the right to write the type.
                "validate" => Perms::C,
                _ => return None,
            },
        })
    }

    fn is_write(&self) -> bool {
        matches!(
            self,
            Interaction::Create | Interaction::Update | Interaction::Patch | Interaction::Delete
        )
    }
}

/// One access to decide.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    /// The tenant of the URL.
    pub tenant: &'a str,
    pub interaction: Interaction,
    /// `None` for a system-level interaction without a type: always denied, ask per type.
    pub resource_type: Option<&'a str>,
    /// The resource read or written, when known, for granular scope constraints.
    pub resource: Option<&'a Value>,
}

/// The alternatives of granular constraints: a resource must satisfy all constraints of at
/// least one alternative. Empty = no constraint.
pub type Filters = Vec<Vec<Constraint>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        filters: Filters,
    },
    /// Only resources in the Patient compartment of `patient` (for `Patient`: that patient).
    AllowPatient {
        patient: String,
        filters: Filters,
    },
    Deny {
        reason: &'static str,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Decision::Deny { .. })
    }
}

/// What kind of data a type holds, which decides what each role may do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Patient,
    /// Identified clinical data (the default for any type not listed elsewhere).
    Clinical,
    /// Consent and study enrolment (identifying, managed by the trust centre).
    ConsentAdmin,
    /// Organisational units and people: Organization, Location, Practitioner, …
    Organisational,
    /// Definitions and terminology.
    Conformance,
    Research,
    Audit,
}

pub fn category(resource_type: &str) -> Category {
    match resource_type {
        "Patient" => Category::Patient,
        "AuditEvent" => Category::Audit,
        "Consent" | "ResearchSubject" => Category::ConsentAdmin,
        "ResearchStudy" => Category::Research,
        "Organization"
        | "OrganizationAffiliation"
        | "Location"
        | "Practitioner"
        | "PractitionerRole"
        | "HealthcareService"
        | "Endpoint" => Category::Organisational,
        "CapabilityStatement"
        | "StructureDefinition"
        | "ValueSet"
        | "CodeSystem"
        | "ConceptMap"
        | "SearchParameter"
        | "OperationDefinition"
        | "NamingSystem"
        | "Questionnaire"
        | "ImplementationGuide"
        | "CompartmentDefinition"
        | "StructureMap"
        | "GraphDefinition"
        | "MessageDefinition"
        | "TerminologyCapabilities"
        | "Library"
        | "Measure"
        | "PlanDefinition"
        | "ActivityDefinition" => Category::Conformance,
        _ => Category::Clinical,
    }
}

/// Types a patient-context token may read although they are outside the compartment: shared
/// reference data that identifies no patient.
fn shared_for_patient(resource_type: &str) -> bool {
    matches!(
        category(resource_type),
        Category::Organisational | Category::Conformance
    ) || matches!(
        resource_type,
        "Medication" | "Substance" | "MedicationKnowledge"
    )
}

fn in_patient_compartment(resource_type: &str) -> bool {
    resource_type == "Patient"
        || !medicus_fhir::r4()
            .patient_compartment_params(resource_type)
            .is_empty()
}

/// The most a role may do on a category, and whether only the user's own compartment.
/// The table is in docs/auth.md.
pub fn role_bound(role: Role, category: Category) -> (Perms, bool) {
    use Category as K;
    let rs = Perms::RS;
    let all = Perms::ALL;
    let none = Perms::NONE;
    let rsu = Perms::RS.union(Perms::U);
    let perms = match (role, category) {
        (Role::PlatformAdmin, K::Organisational) => rs,
        (Role::PlatformAdmin, K::Conformance) => all,
        (Role::PlatformAdmin, _) => none,
        (Role::TenantAdmin, K::Organisational) => all,
        (Role::TenantAdmin, K::Conformance | K::Audit | K::Research) => rs,
        (Role::TenantAdmin, _) => none,
        (Role::Clinician, K::Patient | K::Clinical | K::ConsentAdmin) => all,
        (Role::Clinician, K::Organisational | K::Conformance | K::Research) => rs,
        (Role::Clinician, K::Audit) => none,
        (Role::Researcher, K::Research) => all,
        (Role::Researcher, K::Organisational | K::Conformance) => rs,
        (Role::Researcher, _) => none,
        (Role::CommitteeMember, K::Research) => rsu,
        (Role::CommitteeMember, K::Organisational | K::Conformance) => rs,
        (Role::CommitteeMember, _) => none,
        (Role::TrustCentre, K::ConsentAdmin) => all,
        (Role::TrustCentre, K::Patient | K::Organisational | K::Conformance | K::Research) => rs,
        (Role::TrustCentre, _) => none,
        (Role::Patient, K::Patient | K::Clinical | K::ConsentAdmin) => {
            return (rs, true);
        }
        (Role::Patient, K::Organisational | K::Conformance) => rs,
        (Role::Patient, _) => none,
        (Role::Service, K::Audit) => none,
        (Role::Service, _) => all,
    };
    (perms, false)
}

/// Which of the principal's scopes may be used at all: `system/` only by a service,
/// `user/` only by a user, `patient/` only with a launch patient.
fn scope_usable(principal: &Principal, context: Context) -> bool {
    let service = principal.has_role(Role::Service);
    match context {
        Context::System => service,
        Context::User => !service,
        Context::Patient => !service && principal.patient.is_some(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    Unrestricted,
    Compartment(String),
}

pub fn decide(principal: &Principal, access: &Access<'_>) -> Decision {
    if principal.tenant != access.tenant {
        return Decision::Deny {
            reason: "the token's tenant is not the URL's tenant",
        };
    }
    let Some(resource_type) = access.resource_type else {
        return Decision::Deny {
            reason: "decisions are per resource type",
        };
    };
    let Some(required) = access.interaction.required_perms() else {
        return Decision::Deny {
            reason: "operation not permitted",
        };
    };
    let op = match &access.interaction {
        Interaction::Operation(op) => Some(op.trim_start_matches('$')),
        _ => None,
    };
    if matches!(op, Some("everything" | "access-log")) && resource_type != "Patient" {
        return Decision::Deny {
            reason: "operation is defined on Patient only",
        };
    }
    if matches!(access.interaction, Interaction::Export) && !principal.has_role(Role::Service) {
        return Decision::Deny {
            reason: "bulk export needs a service client",
        };
    }
    let cat = if op == Some("access-log") {
        // Who accessed a record is audit data; its own patient may read it as well.
        Category::Audit
    } else {
        category(resource_type)
    };
    let in_compartment = in_patient_compartment(resource_type);

    // The widest reach any (role, scope) pair grants, and the constraints that come with it.
    let mut best: Option<(Reach, Filters, bool)> = None;
    for role in &principal.roles {
        let (mut bound, mut own_only) = role_bound(*role, cat);
        if op == Some("access-log") && *role == Role::Patient {
            (bound, own_only) = (Perms::R, true);
        }
        if !bound.contains(required) {
            continue;
        }
        let role_reach = if own_only {
            match principal.own_patient() {
                Some(p) => Reach::Compartment(p.to_owned()),
                None => continue,
            }
        } else {
            Reach::Unrestricted
        };
        for scope in principal.scopes.resource_scopes() {
            if !scope.covers_type(resource_type)
                || !scope.perms.contains(required)
                || !scope_usable(principal, scope.context)
            {
                continue;
            }
            let scope_reach = match scope.context {
                Context::Patient => match &principal.patient {
                    Some(p) => Reach::Compartment(p.clone()),
                    None => continue,
                },
                _ => Reach::Unrestricted,
            };
            let reach = match (&role_reach, scope_reach) {
                (Reach::Unrestricted, r) => r,
                (r, Reach::Unrestricted) => r.clone(),
                (Reach::Compartment(a), Reach::Compartment(b)) if *a == b => Reach::Compartment(b),
                // A patient user launched with someone else's record: nothing.
                _ => continue,
            };
            // Compartment reach on a type outside the compartment: shared reference data
            // may be read, anything else is out of reach.
            let reach = match reach {
                Reach::Compartment(p) if in_compartment => Reach::Compartment(p),
                Reach::Compartment(_) => {
                    if shared_for_patient(resource_type)
                        && !access.interaction.is_write()
                        && !matches!(access.interaction, Interaction::Operation(_))
                    {
                        Reach::Unrestricted
                    } else {
                        continue;
                    }
                }
                Reach::Unrestricted => Reach::Unrestricted,
            };
            let constrained = !scope.constraints.is_empty();
            match &mut best {
                None => {
                    best = Some((
                        reach,
                        if constrained {
                            vec![scope.constraints.clone()]
                        } else {
                            Vec::new()
                        },
                        !constrained,
                    ))
                }
                Some((best_reach, filters, unconstrained)) => {
                    if reach < *best_reach {
                        *best_reach = reach;
                        *filters = if constrained {
                            vec![scope.constraints.clone()]
                        } else {
                            Vec::new()
                        };
                        *unconstrained = !constrained;
                    } else if reach == *best_reach && !*unconstrained {
                        if constrained {
                            filters.push(scope.constraints.clone());
                        } else {
                            filters.clear();
                            *unconstrained = true;
                        }
                    }
                }
            }
        }
    }
    let Some((reach, filters, _)) = best else {
        return Decision::Deny {
            reason: "no scope and role grant this interaction on this type",
        };
    };
    if !filters.is_empty()
        && let Some(resource) = access.resource
        && !filters
            .iter()
            .any(|all| all.iter().all(|c| matches_constraint(resource, c)))
    {
        return Decision::Deny {
            reason: "the resource is outside the granted scope's constraints",
        };
    }
    match reach {
        Reach::Unrestricted => Decision::Allow { filters },
        Reach::Compartment(patient) => Decision::AllowPatient { patient, filters },
    }
}

/// Checks a token-style constraint (`system|code`, `|code`, `system|`, `code`) against the
/// element named after the search parameter (`clinical-status` → `clinicalStatus`): a code,
/// a Coding, a CodeableConcept or a list of those. Absent or unrecognised → no match (the
/// decision fails closed).
pub fn matches_constraint(resource: &Value, constraint: &Constraint) -> bool {
    let mut element = String::new();
    let mut upper = false;
    for ch in constraint.param.chars() {
        if ch == '-' {
            upper = true;
        } else if upper {
            element.extend(ch.to_uppercase());
            upper = false;
        } else {
            element.push(ch);
        }
    }
    let (system, code) = match constraint.value.split_once('|') {
        Some((s, c)) => (Some(s), c),
        None => (None, constraint.value.as_str()),
    };
    resource
        .get(&element)
        .is_some_and(|v| value_matches(v, system, code))
}

fn value_matches(value: &Value, system: Option<&str>, code: &str) -> bool {
    match value {
        Value::String(s) => system.is_none_or(str::is_empty) && s == code,
        Value::Array(items) => items.iter().any(|v| value_matches(v, system, code)),
        Value::Object(map) => {
            if let Some(codings) = map.get("coding") {
                return value_matches(codings, system, code);
            }
            let sys = map.get("system").and_then(Value::as_str);
            let c = map.get("code").and_then(Value::as_str);
            let system_ok = match system {
                None => true,
                Some("") => sys.is_none(),
                Some(s) => sys == Some(s),
            };
            let code_ok = code.is_empty() || c == Some(code);
            system_ok && code_ok && (c.is_some() || sys.is_some())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal(
        roles: &[Role],
        scopes: &str,
        patient: Option<&str>,
        fhir_user: Option<&str>,
    ) -> Principal {
        Principal {
            subject: "u1".into(),
            tenant: "t1".into(),
            roles: roles.to_vec(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            patient: patient.map(Into::into),
            fhir_user: fhir_user.map(Into::into),
            client_id: "app".into(),
            jti: "j".into(),
            expires_s: 0,
            family: None,
        }
    }

    fn ask(
        p: &Principal,
        tenant: &str,
        i: Interaction,
        ty: &str,
        resource: Option<&Value>,
    ) -> Decision {
        decide(
            p,
            &Access {
                tenant,
                interaction: i,
                resource_type: Some(ty),
                resource,
            },
        )
    }

    #[test]
    fn tenant_mismatch_is_denied() {
        let p = principal(&[Role::Clinician], "user/*.cruds", None, None);
        assert!(ask(&p, "t1", Interaction::Read, "Observation", None).is_allowed());
        assert!(!ask(&p, "t2", Interaction::Read, "Observation", None).is_allowed());
    }

    #[test]
    fn patient_context_restricts_to_compartment() {
        let p = principal(
            &[Role::Clinician],
            "patient/Observation.rs launch/patient",
            Some("p1"),
            None,
        );
        assert_eq!(
            ask(&p, "t1", Interaction::Search, "Observation", None),
            Decision::AllowPatient {
                patient: "p1".into(),
                filters: vec![]
            }
        );
        assert!(!ask(&p, "t1", Interaction::Create, "Observation", None).is_allowed());
        assert!(!ask(&p, "t1", Interaction::Read, "Condition", None).is_allowed());
        // The same scopes without a launch patient grant nothing.
        let p = principal(&[Role::Clinician], "patient/Observation.rs", None, None);
        assert!(!ask(&p, "t1", Interaction::Search, "Observation", None).is_allowed());
    }

    #[test]
    fn patient_role_sees_only_itself() {
        let p = principal(&[Role::Patient], "user/*.cruds", None, Some("Patient/p7"));
        assert_eq!(
            ask(&p, "t1", Interaction::Read, "Observation", None),
            Decision::AllowPatient {
                patient: "p7".into(),
                filters: vec![]
            }
        );
        assert!(!ask(&p, "t1", Interaction::Update, "Observation", None).is_allowed());
        // Launched with another patient's context: nothing.
        let p = principal(
            &[Role::Patient],
            "patient/*.rs",
            Some("p8"),
            Some("Patient/p7"),
        );
        assert!(!ask(&p, "t1", Interaction::Read, "Observation", None).is_allowed());
        // No Patient fhirUser: nothing.
        let p = principal(&[Role::Patient], "user/*.rs", None, None);
        assert!(!ask(&p, "t1", Interaction::Read, "Observation", None).is_allowed());
        // Shared reference data is readable.
        let p = principal(&[Role::Patient], "user/*.rs", None, Some("Patient/p7"));
        assert_eq!(
            ask(&p, "t1", Interaction::Read, "Practitioner", None),
            Decision::Allow { filters: vec![] }
        );
        // Own access log.
        assert_eq!(
            ask(
                &p,
                "t1",
                Interaction::Operation("$access-log".into()),
                "Patient",
                None
            ),
            Decision::AllowPatient {
                patient: "p7".into(),
                filters: vec![]
            }
        );
    }

    #[test]
    fn researcher_never_reads_clinical_data() {
        let p = principal(&[Role::Researcher], "user/*.cruds", None, None);
        for ty in [
            "Patient",
            "Observation",
            "Condition",
            "Encounter",
            "Consent",
            "AuditEvent",
        ] {
            assert!(
                !ask(&p, "t1", Interaction::Read, ty, None).is_allowed(),
                "{ty}"
            );
        }
        assert!(ask(&p, "t1", Interaction::Search, "ResearchStudy", None).is_allowed());
    }

    #[test]
    fn system_scopes_only_for_services() {
        let clinician = principal(&[Role::Clinician], "system/*.cruds", None, None);
        assert!(!ask(&clinician, "t1", Interaction::Read, "Observation", None).is_allowed());
        let service = principal(&[Role::Service], "system/*.rs user/*.cruds", None, None);
        assert!(ask(&service, "t1", Interaction::Read, "Observation", None).is_allowed());
        assert!(!ask(&service, "t1", Interaction::Create, "Observation", None).is_allowed());
        assert!(ask(&service, "t1", Interaction::Export, "Observation", None).is_allowed());
        assert!(!ask(&service, "t1", Interaction::Read, "AuditEvent", None).is_allowed());
    }

    #[test]
    fn granular_constraints() {
        let p = principal(
            &[Role::Clinician],
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
            Some("p1"),
            None,
        );
        let lab = json!({"resourceType": "Observation", "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}]});
        let vital = json!({"resourceType": "Observation", "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]});
        let none = json!({"resourceType": "Observation"});
        let d = ask(&p, "t1", Interaction::Search, "Observation", None);
        let Decision::AllowPatient { filters, .. } = d else {
            panic!("{d:?}")
        };
        assert_eq!(filters.len(), 1);
        assert!(ask(&p, "t1", Interaction::Read, "Observation", Some(&lab)).is_allowed());
        assert!(!ask(&p, "t1", Interaction::Read, "Observation", Some(&vital)).is_allowed());
        assert!(!ask(&p, "t1", Interaction::Read, "Observation", Some(&none)).is_allowed());
        // An unconstrained scope beside it lifts the constraint.
        let p = principal(
            &[Role::Clinician],
            "patient/Observation.rs?category=laboratory patient/Observation.r",
            Some("p1"),
            None,
        );
        assert!(ask(&p, "t1", Interaction::Read, "Observation", Some(&vital)).is_allowed());
    }

    #[test]
    fn constraint_matching_forms() {
        let r = json!({"status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]}, "clinicalStatus": {"coding": [{"code": "active"}]}});
        let c = |p: &str, v: &str| Constraint {
            param: p.into(),
            value: v.into(),
        };
        assert!(matches_constraint(&r, &c("status", "final")));
        assert!(!matches_constraint(&r, &c("status", "amended")));
        assert!(matches_constraint(
            &r,
            &c("code", "http://loinc.org|1234-5")
        ));
        assert!(matches_constraint(&r, &c("code", "1234-5")));
        assert!(matches_constraint(&r, &c("code", "http://loinc.org|")));
        assert!(!matches_constraint(&r, &c("code", "|1234-5")));
        assert!(matches_constraint(&r, &c("clinical-status", "|active")));
        assert!(!matches_constraint(&r, &c("missing", "x")));
    }

    #[test]
    fn audit_is_never_writable_and_system_level_needs_a_type() {
        let admin = principal(&[Role::TenantAdmin], "user/*.cruds", None, None);
        assert!(ask(&admin, "t1", Interaction::Search, "AuditEvent", None).is_allowed());
        for i in [
            Interaction::Create,
            Interaction::Update,
            Interaction::Patch,
            Interaction::Delete,
        ] {
            assert!(!ask(&admin, "t1", i, "AuditEvent", None).is_allowed());
        }
        assert!(
            !decide(
                &admin,
                &Access {
                    tenant: "t1",
                    interaction: Interaction::Search,
                    resource_type: None,
                    resource: None
                }
            )
            .is_allowed()
        );
        assert!(
            !ask(
                &admin,
                "t1",
                Interaction::Operation("$reindex".into()),
                "Patient",
                None
            )
            .is_allowed()
        );
    }
}
