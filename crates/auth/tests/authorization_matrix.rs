//! The authorisation matrix: every role × own and foreign tenant × every interaction × a set
//! of types, under several scope and patient-context variants. The expected decision comes from
//! the literal tables below (the documented policy, docs/auth.md), independently of the
//! implementation's code; a set of invariants is checked on every case as well. Prints the
//! number of cases; any case more permissive than expected is a leak and fails the test.

use medicus_auth::policy::{Access, Decision, Interaction, Principal, decide};
use medicus_auth::{Role, ScopeSet};
use serde_json::json;

/// Per role: the most it may do on each category, in the column order of `CATEGORIES`.
/// `*` marks "own compartment only" (the patient role).
const BOUNDS: &[(Role, [&str; 7])] = &[
    (
        Role::PlatformAdmin,
        ["-", "-", "-", "rs", "cruds", "-", "-"],
    ),
    (
        Role::TenantAdmin,
        ["-", "-", "-", "cruds", "rs", "rs", "rs"],
    ),
    (
        Role::Clinician,
        ["cruds", "cruds", "cruds", "rs", "rs", "rs", "-"],
    ),
    (Role::Researcher, ["-", "-", "-", "rs", "rs", "cruds", "-"]),
    (
        Role::CommitteeMember,
        ["-", "-", "-", "rs", "rs", "rsu", "-"],
    ),
    (
        Role::TrustCentre,
        ["rs", "-", "cruds", "rs", "rs", "rs", "-"],
    ),
    (Role::Patient, ["rs*", "rs*", "rs*", "rs", "rs", "-", "-"]),
    (
        Role::Service,
        ["cruds", "cruds", "cruds", "cruds", "cruds", "cruds", "-"],
    ),
];
const CATEGORIES: [&str; 7] = [
    "patient",
    "clinical",
    "consent",
    "organisational",
    "conformance",
    "research",
    "audit",
];

/// (type, category, in the Patient compartment, readable with a patient context though outside it)
const TYPES: &[(&str, &str, bool, bool)] = &[
    ("Patient", "patient", true, false),
    ("Observation", "clinical", true, false),
    ("Encounter", "clinical", true, false),
    ("Medication", "clinical", false, true),
    ("Group", "clinical", true, false),
    ("Task", "clinical", false, false),
    ("Device", "clinical", false, false),
    ("Consent", "consent", true, false),
    ("ResearchStudy", "research", false, false),
    ("Organization", "organisational", false, true),
    ("Practitioner", "organisational", false, true),
    ("CodeSystem", "conformance", false, true),
    ("AuditEvent", "audit", true, false),
];

fn interactions() -> Vec<(Interaction, &'static str)> {
    vec![
        (Interaction::Read, "r"),
        (Interaction::Vread, "r"),
        (Interaction::Search, "s"),
        (Interaction::History, "rs"),
        (Interaction::Create, "c"),
        (Interaction::Update, "u"),
        (Interaction::Patch, "u"),
        (Interaction::Delete, "d"),
        (Interaction::Export, "rs"),
        (Interaction::Operation("$everything".into()), "rs"),
        (Interaction::Operation("$validate".into()), "c"),
        (Interaction::Operation("$meta".into()), "r"),
        (Interaction::Operation("$access-log".into()), "r"),
        (Interaction::Operation("$purge".into()), ""),
    ]
}

/// Scope variants: (name, scopes, launch patient). Resource scopes are written out per
/// context so the oracle can read them back.
const VARIANTS: &[(&str, &str, Option<&str>)] = &[
    ("user-all", "user/*.cruds", None),
    ("user-read", "user/*.rs", None),
    ("user-v1", "user/*.*", None),
    (
        "patient-all-ctx",
        "launch/patient patient/*.cruds",
        Some("p1"),
    ),
    ("patient-v1-read-ctx", "patient/*.read", Some("p1")),
    ("patient-other-ctx", "patient/*.rs", Some("p2")),
    ("patient-no-ctx", "patient/*.rs", None),
    ("system-all", "system/*.cruds", None),
    ("system-read", "system/*.rs", None),
    ("obs-only", "user/Observation.rs", None),
    (
        "granular",
        "patient/Observation.rs?category=laboratory",
        Some("p1"),
    ),
    ("identity-only", "openid fhirUser profile", None),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Deny,
    Allow,
    Patient(String),
}

fn perms_contain(have: &str, need: &str) -> bool {
    !need.is_empty() && need.chars().all(|c| have.contains(c))
}

/// (context, type or "*", perms) of each resource scope of a variant, v1 spelled as v2.
fn resource_scopes(text: &str) -> Vec<(String, String, String)> {
    text.split(' ')
        .filter(|s| s.contains('/') && s.contains('.'))
        .map(|s| {
            let (ctx, rest) = s.split_once('/').unwrap();
            let rest = rest.split('?').next().unwrap();
            let (ty, perms) = rest.split_once('.').unwrap();
            let perms = match perms {
                "read" => "rs",
                "write" => "cud",
                "*" => "cruds",
                p => p,
            };
            (ctx.to_owned(), ty.to_owned(), perms.to_owned())
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn oracle(
    role: Role,
    own_tenant: bool,
    op: &Interaction,
    need: &str,
    ty: (&str, &str, bool, bool),
    scopes: &str,
    ctx: Option<&str>,
    own_patient: Option<&str>,
) -> Expect {
    let (name, cat, in_compartment, shared) = ty;
    if !own_tenant || need.is_empty() {
        return Expect::Deny;
    }
    let op_name = match op {
        Interaction::Operation(o) => Some(o.trim_start_matches('$')),
        _ => None,
    };
    if matches!(op_name, Some("everything" | "access-log")) && name != "Patient" {
        return Expect::Deny;
    }
    if matches!(op, Interaction::Export) && role != Role::Service {
        return Expect::Deny;
    }
    let cat = if op_name == Some("access-log") {
        "audit"
    } else {
        cat
    };
    let col = CATEGORIES.iter().position(|c| *c == cat).unwrap();
    let mut bound = BOUNDS.iter().find(|(r, _)| *r == role).unwrap().1[col].to_owned();
    if op_name == Some("access-log") && role == Role::Patient {
        bound = "r*".into();
    }
    let own_only = bound.ends_with('*');
    if !perms_contain(&bound, need) {
        return Expect::Deny;
    }
    let role_patient = if own_only {
        match own_patient {
            Some(p) => Some(p.to_owned()),
            None => return Expect::Deny,
        }
    } else {
        None
    };
    let is_write = matches!(
        op,
        Interaction::Create | Interaction::Update | Interaction::Patch | Interaction::Delete
    );
    let mut best: Option<Expect> = None;
    for (context, sty, sperms) in resource_scopes(scopes) {
        if (sty != "*" && sty != name) || !perms_contain(&sperms, need) {
            continue;
        }
        let usable = match context.as_str() {
            "system" => role == Role::Service,
            "user" => role != Role::Service,
            _ => role != Role::Service && ctx.is_some(),
        };
        if !usable {
            continue;
        }
        let scope_patient = if context == "patient" {
            ctx.map(str::to_owned)
        } else {
            None
        };
        let patient = match (&role_patient, scope_patient) {
            (None, s) => s,
            (Some(r), None) => Some(r.clone()),
            (Some(r), Some(s)) if *r == s => Some(s),
            _ => continue,
        };
        let result = match patient {
            None => Expect::Allow,
            Some(p) if in_compartment => Expect::Patient(p),
            Some(_) if shared && !is_write && op_name.is_none() => Expect::Allow,
            Some(_) => continue,
        };
        best = match (best, result) {
            (None, r) => Some(r),
            (Some(Expect::Allow), _) | (_, Expect::Allow) => Some(Expect::Allow),
            (Some(b), _) => Some(b),
        };
    }
    best.unwrap_or(Expect::Deny)
}

fn compartment_type(ty: &str) -> bool {
    TYPES.iter().any(|(t, _, c, _)| *t == ty && *c)
}

#[test]
fn authorization_matrix() {
    let lab =
        json!({"resourceType": "Observation", "category": [{"coding": [{"code": "laboratory"}]}]});
    let vital =
        json!({"resourceType": "Observation", "category": [{"coding": [{"code": "vital-signs"}]}]});
    let (mut cases, mut leaks, mut too_strict) = (0usize, Vec::new(), Vec::new());
    for (role, _) in BOUNDS {
        let own_patient = (*role == Role::Patient).then_some("p1");
        for &(variant, scopes, ctx) in VARIANTS {
            let principal = Principal {
                subject: "s".into(),
                tenant: "t1".into(),
                roles: vec![*role],
                scopes: ScopeSet::parse(scopes).unwrap(),
                patient: ctx.map(Into::into),
                fhir_user: own_patient
                    .map(|p| format!("Patient/{p}"))
                    .or(Some("Practitioner/d1".into())),
                client_id: "app".into(),
                jti: "j".into(),
                expires_s: i64::MAX,
                family: None,
            };
            for (tenant, own_tenant) in [("t1", true), ("t2", false)] {
                for (interaction, need) in interactions() {
                    for &ty in TYPES {
                        let resources: Vec<Option<&serde_json::Value>> =
                            if variant == "granular" && ty.0 == "Observation" {
                                vec![None, Some(&lab), Some(&vital)]
                            } else {
                                vec![None]
                            };
                        for resource in resources {
                            cases += 1;
                            let mut expected = oracle(
                                *role,
                                own_tenant,
                                &interaction,
                                need,
                                ty,
                                scopes,
                                ctx,
                                own_patient,
                            );
                            if resource == Some(&vital) {
                                expected = Expect::Deny;
                            }
                            let actual = decide(
                                &principal,
                                &Access {
                                    tenant,
                                    interaction: interaction.clone(),
                                    resource_type: Some(ty.0),
                                    resource,
                                },
                            );
                            let case = format!(
                                "{role} {variant} tenant={tenant} {interaction:?} {} resource={}: expected {expected:?}, got {actual:?}",
                                ty.0,
                                resource.is_some()
                            );
                            // Invariants, whatever the tables say.
                            let mut leak = false;
                            if actual.is_allowed() {
                                leak |= !own_tenant;
                                leak |= ty.0 == "AuditEvent"
                                    && !matches!(
                                        interaction,
                                        Interaction::Read
                                            | Interaction::Vread
                                            | Interaction::Search
                                            | Interaction::History
                                            | Interaction::Operation(_)
                                    );
                                leak |= matches!(
                                    role,
                                    Role::Researcher | Role::CommitteeMember | Role::PlatformAdmin
                                ) && ["patient", "clinical", "consent"].contains(&ty.1);
                                leak |= scopes
                                    .split(' ')
                                    .all(|s| !s.contains('/') || s.starts_with("launch"));
                                leak |= *role != Role::Service && scopes.starts_with("system/");
                                leak |= matches!(interaction, Interaction::Operation(ref o) if o == "$purge");
                                if compartment_type(ty.0) {
                                    if *role == Role::Patient {
                                        leak |= actual
                                            != Decision::AllowPatient {
                                                patient: "p1".into(),
                                                filters: vec![],
                                            }
                                            && !matches!(&actual, Decision::AllowPatient { patient, .. } if patient == "p1");
                                    }
                                    if scopes.split(' ').all(|s| {
                                        !s.starts_with("user/") && !s.starts_with("system/")
                                    }) {
                                        leak |= !matches!(&actual, Decision::AllowPatient { patient, .. } if Some(patient.as_str()) == ctx);
                                    }
                                }
                            }
                            let more_permissive = match (&expected, &actual) {
                                (Expect::Deny, d) => d.is_allowed(),
                                (Expect::Patient(_), Decision::Allow { .. }) => true,
                                (Expect::Patient(p), Decision::AllowPatient { patient, .. }) => {
                                    p != patient
                                }
                                _ => false,
                            };
                            if leak || more_permissive {
                                leaks.push(case);
                            } else {
                                let matches = match (&expected, &actual) {
                                    (Expect::Deny, Decision::Deny { .. }) => true,
                                    (Expect::Allow, Decision::Allow { .. }) => true,
                                    (
                                        Expect::Patient(p),
                                        Decision::AllowPatient { patient, .. },
                                    ) => p == patient,
                                    _ => false,
                                };
                                if !matches {
                                    too_strict.push(case);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    println!(
        "authorization matrix: {cases} cases, {} leaks, {} stricter than expected",
        leaks.len(),
        too_strict.len()
    );
    assert!(cases > 20_000, "matrix shrank: {cases}");
    assert!(
        leaks.is_empty(),
        "{} leaks, e.g.:\n{}",
        leaks.len(),
        leaks
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        too_strict.is_empty(),
        "{} mismatches, e.g.:\n{}",
        too_strict.len(),
        too_strict
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Granular filters are handed to the search layer when there is no resource to check.
#[test]
fn granular_filters_reach_the_search_layer() {
    let principal = Principal {
        subject: "s".into(),
        tenant: "t1".into(),
        roles: vec![Role::Clinician],
        scopes: ScopeSet::parse("patient/Observation.rs?category=laboratory patient/Observation.s?code=http://loinc.org|1234-5").unwrap(),
        patient: Some("p1".into()),
        fhir_user: None,
        client_id: "app".into(),
        jti: "j".into(),
        expires_s: i64::MAX,
        family: None,
    };
    let d = decide(
        &principal,
        &Access {
            tenant: "t1",
            interaction: Interaction::Search,
            resource_type: Some("Observation"),
            resource: None,
        },
    );
    let Decision::AllowPatient { patient, filters } = d else {
        panic!("{d:?}")
    };
    assert_eq!(patient, "p1");
    assert_eq!(filters.len(), 2, "one alternative per constrained scope");
}
