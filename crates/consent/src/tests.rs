//! Hand-written edge cases of the TORCH algorithm and of objections.

use serde_json::{Value, json};

use super::*;

fn d(s: &str) -> Day {
    Day::parse_fhir(s).unwrap_or_else(|| panic!("bad test date {s}"))
}

fn per(a: &str, b: &str) -> Period {
    Period {
        start: d(a),
        end: d(b),
    }
}

/// A provision: `(code suffix, permit, start, end)`.
type Prov<'a> = (&'a str, bool, Option<&'a str>, Option<&'a str>);

fn consent(status: &str, provs: &[Prov<'_>]) -> Value {
    let nested: Vec<Value> = provs
        .iter()
        .map(|(code, permit, start, end)| {
            let mut period = json!({});
            if let Some(s) = start {
                period["start"] = json!(s);
            }
            if let Some(e) = end {
                period["end"] = json!(e);
            }
            json!({
                "type": if *permit { "permit" } else { "deny" },
                "period": period,
                "code": [{ "coding": [{
                    "system": codes::POLICY_SYSTEM,
                    "code": format!("2.16.840.1.113883.3.1937.777.24.5.3.{code}")
                }]}]
            })
        })
        .collect();
    json!({
        "resourceType": "Consent",
        "status": status,
        "provision": { "type": "deny", "provision": nested }
    })
}

/// A Broad Consent permitting .6, .7 and .8 over the period.
fn broad(start: &str, end: &str) -> Value {
    consent(
        "active",
        &[
            ("6", true, Some(start), Some(end)),
            ("7", true, Some(start), Some(end)),
            ("8", true, Some(start), Some(end)),
        ],
    )
}

fn encounter(start: &str, end: Option<&str>) -> Value {
    let mut period = json!({ "start": start });
    if let Some(e) = end {
        period["end"] = json!(e);
    }
    json!({ "resourceType": "Encounter", "period": period })
}

fn template_doc(
    template: &str,
    start: Option<&str>,
    end: Option<&str>,
    purposes: &[&str],
) -> Value {
    let mut provision = json!({ "type": "deny" });
    let mut period = json!({});
    if let Some(s) = start {
        period["start"] = json!(s);
    }
    if let Some(e) = end {
        period["end"] = json!(e);
    }
    provision["period"] = period;
    if !purposes.is_empty() {
        provision["purpose"] = Value::Array(
            purposes
                .iter()
                .map(|p| json!({ "system": codes::PURPOSE_SYSTEM, "code": p }))
                .collect(),
        );
    }
    json!({
        "resourceType": "Consent",
        "id": format!("{template}-{}", start.unwrap_or("x")),
        "status": "active",
        "dateTime": "2024-05-01T10:00:00+02:00",
        "category": [{ "coding": [{ "system": codes::TEMPLATE_TYPE_SYSTEM, "code": template }] }],
        "provision": provision
    })
}

fn eval(consents: &[Value], encounters: &[Value]) -> PatientConsent {
    evaluate(&ConsentPolicy::default(), consents, encounters)
}

const P: &str = "health-care-research";

#[test]
fn plain_broad_consent_gives_its_data_window_while_the_gate_holds() {
    let pc = eval(&[broad("2024-02-23", "2054-01-31")], &[]);
    assert_eq!(pc.window.periods(), &[per("2024-02-23", "2054-01-31")]);
    assert_eq!(
        pc.decide(LegalBasis::Consent, P, d("2025-01-01")),
        Ok(&pc.window)
    );
    assert_eq!(
        pc.decide(LegalBasis::Consent, P, d("2024-02-22")),
        Err(Exclusion::GateClosed)
    );
    assert_eq!(
        pc.decide(LegalBasis::Consent, P, d("2054-02-01")),
        Err(Exclusion::GateClosed)
    );
    assert!(pc.permits_data(LegalBasis::Consent, P, d("2025-01-01"), d("2024-02-23")));
    assert!(!pc.permits_data(LegalBasis::Consent, P, d("2025-01-01"), d("2024-02-22")));
}

#[test]
fn the_gate_and_the_window_are_separate_codes() {
    // .6 only until 2025, .8 until 2050: data up to 2025, usable until 2050.
    let c = consent(
        "active",
        &[
            ("6", true, Some("2020-01-01"), Some("2024-12-31")),
            ("8", true, Some("2020-01-01"), Some("2050-01-01")),
        ],
    );
    let pc = eval(&[c], &[]);
    assert_eq!(pc.window.periods(), &[per("2020-01-01", "2024-12-31")]);
    assert!(pc.permits_research(LegalBasis::Consent, P, d("2040-01-01")));
    assert!(!pc.permits_research(LegalBasis::Consent, P, d("2051-01-01")));
}

#[test]
fn window_start_snaps_to_the_earliest_encounter_containing_it() {
    let c = broad("2022-04-14", "2052-02-28");
    let encounters = [
        encounter("2022-04-02", Some("2022-04-22")),
        // Also contains the start, and starts earlier: this one wins.
        encounter("2022-03-30", Some("2022-04-14")),
        // Ends the day before the start: no overlap.
        encounter("2022-03-01", Some("2022-04-13")),
        // No end: TORCH ignores it.
        encounter("2022-01-01", None),
    ];
    let pc = eval(std::slice::from_ref(&c), &encounters);
    assert_eq!(pc.window.periods(), &[per("2022-03-30", "2052-02-28")]);
    // The gate is never moved.
    assert_eq!(pc.gate.periods(), &[per("2022-04-14", "2052-02-28")]);
    // An encounter starting on the consent day changes nothing.
    let pc = eval(&[c], &[encounter("2022-04-14", Some("2022-04-20"))]);
    assert_eq!(pc.window.periods(), &[per("2022-04-14", "2052-02-28")]);
}

#[test]
fn deny_periods_of_any_consent_are_subtracted() {
    let revocation = consent(
        "active",
        &[("6", false, Some("2026-01-01"), Some("2026-12-31"))],
    );
    let pc = eval(&[broad("2024-01-01", "2054-01-01"), revocation], &[]);
    assert_eq!(
        pc.window.periods(),
        &[
            per("2024-01-01", "2025-12-31"),
            per("2027-01-01", "2054-01-01")
        ]
    );
    // A deny of the gate code closes the gate in that span.
    let gate_deny = consent("active", &[("8", false, Some("2030-01-01"), None)]);
    let pc = eval(&[broad("2024-01-01", "2054-01-01"), gate_deny], &[]);
    assert!(pc.permits_research(LegalBasis::Consent, P, d("2029-12-31")));
    assert_eq!(
        pc.decide(LegalBasis::Consent, P, d("2030-01-01")),
        Err(Exclusion::GateClosed)
    );
    // A deny of all .6 leaves nothing: the patient is out.
    let all = consent(
        "active",
        &[("6", false, Some("2000-01-01"), Some("2099-01-01"))],
    );
    let pc = eval(&[broad("2024-01-01", "2054-01-01"), all], &[]);
    assert_eq!(
        pc.decide(LegalBasis::Consent, P, d("2025-01-01")),
        Err(Exclusion::NoConsent)
    );
}

#[test]
fn a_deny_without_dates_fails_closed() {
    let deny = consent("active", &[("6", false, None, None)]);
    let pc = eval(&[broad("2024-01-01", "2054-01-01"), deny], &[]);
    assert!(!pc.permits_research(LegalBasis::Consent, P, d("2025-01-01")));
}

#[test]
fn only_consents_with_every_required_code_contribute_permits() {
    // .6 alone in one document, .8 alone in another: neither is complete.
    let a = consent(
        "active",
        &[("6", true, Some("2024-01-01"), Some("2030-01-01"))],
    );
    let b = consent(
        "active",
        &[("8", true, Some("2024-01-01"), Some("2030-01-01"))],
    );
    let pc = eval(&[a.clone(), b], &[]);
    assert_eq!(
        pc.decide(LegalBasis::Consent, P, d("2025-01-01")),
        Err(Exclusion::NoConsent)
    );
    // An incomplete document's permits do not widen a complete one's window.
    let a = consent(
        "active",
        &[("6", true, Some("2010-01-01"), Some("2030-01-01"))],
    );
    let pc = eval(&[a, broad("2024-01-01", "2030-01-01")], &[]);
    assert_eq!(pc.window.periods(), &[per("2024-01-01", "2030-01-01")]);
}

#[test]
fn permits_of_several_complete_consents_merge() {
    let pc = eval(
        &[
            broad("2020-01-01", "2021-12-31"),
            broad("2022-01-01", "2023-06-30"),
            broad("2025-01-01", "2026-01-01"),
        ],
        &[],
    );
    assert_eq!(
        pc.window.periods(),
        &[
            per("2020-01-01", "2023-06-30"),
            per("2025-01-01", "2026-01-01")
        ]
    );
}

#[test]
fn inactive_consents_and_partial_dates_are_ignored() {
    let pc = eval(
        &[consent(
            "inactive",
            &[
                ("6", true, Some("2024-01-01"), Some("2030-01-01")),
                ("8", true, Some("2024-01-01"), Some("2030-01-01")),
            ],
        )],
        &[],
    );
    assert_eq!(
        pc.decide(LegalBasis::Consent, P, d("2025-01-01")),
        Err(Exclusion::NoConsent)
    );
    let partial = consent(
        "active",
        &[
            ("6", true, Some("2024-01"), Some("2030-01-01")),
            ("8", true, Some("2024-01-01"), Some("2030-01-01")),
        ],
    );
    assert!(!eval(&[partial], &[]).permits_research(LegalBasis::Consent, P, d("2025-01-01")));
}

/// TORCH's documented example (consent.md §5).
#[test]
fn retrospective_modifier_extends_within_its_own_consent_only() {
    let a = consent(
        "active",
        &[
            ("8", true, Some("2020-01-01"), Some("2050-12-31")),
            ("6", true, Some("2020-01-01"), Some("2025-12-31")),
            ("45", true, Some("2020-01-01"), Some("2025-12-31")),
            ("45", false, Some("2000-01-01"), Some("2009-12-31")),
        ],
    );
    let b = consent(
        "active",
        &[
            ("6", false, Some("2023-01-01"), Some("2025-12-31")),
            ("45", true, Some("2023-01-01"), Some("2025-12-31")),
        ],
    );
    let pc = eval(&[a, b], &[]);
    assert_eq!(
        pc.window.periods(),
        &[
            per("1900-01-01", "1999-12-31"),
            per("2010-01-01", "2025-12-31")
        ]
    );

    // Without the modifier in the policy, the .6 deny of B applies.
    let policy = ConsentPolicy {
        retro_codes: vec![],
        ..ConsentPolicy::default()
    };
    let a = consent(
        "active",
        &[
            ("8", true, Some("2020-01-01"), Some("2050-12-31")),
            ("6", true, Some("2020-01-01"), Some("2025-12-31")),
            ("45", true, Some("2020-01-01"), Some("2025-12-31")),
        ],
    );
    let b = consent(
        "active",
        &[("6", false, Some("2023-01-01"), Some("2025-12-31"))],
    );
    let pc = evaluate(&policy, &[a.clone(), b], &[]);
    assert_eq!(pc.window.periods(), &[per("2020-01-01", "2022-12-31")]);

    // A .45 permit in another Consent does not extend.
    let a = consent(
        "active",
        &[
            ("8", true, Some("2020-01-01"), Some("2050-12-31")),
            ("6", true, Some("2020-01-01"), Some("2025-12-31")),
        ],
    );
    let c = consent(
        "active",
        &[("45", true, Some("2020-01-01"), Some("2025-12-31"))],
    );
    assert_eq!(
        eval(&[a, c], &[]).window.periods(),
        &[per("2020-01-01", "2025-12-31")]
    );
}

#[test]
fn synthetic_withdrawal_document_excludes_from_its_date() {
    // The synth crate's shape: a WITHDRAWAL document with only a top-level deny.
    let w = template_doc(
        codes::TEMPLATE_WITHDRAWAL,
        Some("2026-03-01"),
        Some("2054-01-01"),
        &[],
    );
    let pc = eval(&[broad("2024-01-01", "2054-01-01"), w], &[]);
    assert!(pc.permits_research(LegalBasis::Consent, P, d("2026-02-28")));
    for basis in [
        LegalBasis::Consent,
        LegalBasis::OptOut,
        LegalBasis::Statutory,
    ] {
        assert_eq!(
            pc.decide(basis, P, d("2026-03-01")),
            Err(Exclusion::Objected)
        );
    }
}

#[test]
fn withdrawal_with_coded_denies_closes_the_gate() {
    let mut w = consent(
        "active",
        &[
            ("8", false, Some("2026-03-01"), None),
            ("6", false, Some("2026-03-01"), None),
        ],
    );
    w["category"] =
        json!([{ "coding": [{ "system": codes::TEMPLATE_TYPE_SYSTEM, "code": "WITHDRAWAL" }] }]);
    w["dateTime"] = json!("2026-03-01");
    let pc = eval(&[broad("2024-01-01", "2054-01-01"), w], &[]);
    assert_eq!(pc.window.periods(), &[per("2024-01-01", "2026-02-28")]);
    assert!(pc.permits_research(LegalBasis::Consent, P, d("2026-02-28")));
    assert!(!pc.permits_research(LegalBasis::Consent, P, d("2026-03-02")));
}

#[test]
fn full_and_purpose_specific_opt_out() {
    let full = template_doc(codes::TEMPLATE_OPT_OUT, Some("2025-01-01"), None, &[]);
    let pc = eval(&[full], &[]);
    assert!(pc.permits_research(LegalBasis::OptOut, P, d("2024-12-31")));
    assert!(!pc.permits_research(LegalBasis::OptOut, P, d("2025-01-01")));
    assert!(!pc.permits_research(LegalBasis::Statutory, "other", d("2030-01-01")));
    // No Broad Consent: a consent-based project never includes this patient.
    assert_eq!(
        pc.decide(LegalBasis::Consent, P, d("2024-06-01")),
        Err(Exclusion::NoConsent)
    );

    let commercial = template_doc(
        codes::TEMPLATE_OPT_OUT,
        Some("2025-01-01"),
        None,
        &["commercial"],
    );
    let pc = eval(&[broad("2024-01-01", "2054-01-01"), commercial], &[]);
    assert!(pc.permits_research(LegalBasis::Consent, P, d("2025-06-01")));
    assert!(pc.permits_research(LegalBasis::OptOut, P, d("2025-06-01")));
    assert!(!pc.permits_research(LegalBasis::Consent, "commercial", d("2025-06-01")));
    assert!(
        pc.data_window(LegalBasis::Consent, "commercial", d("2025-06-01"))
            .is_empty()
    );
    assert_eq!(
        pc.data_window(LegalBasis::OptOut, P, d("2025-06-01")),
        Periods::all()
    );
}

#[test]
fn objection_with_unknown_purpose_system_or_no_dates_is_full_and_permanent() {
    let mut o = template_doc(codes::TEMPLATE_OPT_OUT, None, None, &[]);
    o.as_object_mut().map(|m| m.remove("dateTime"));
    o["provision"]["purpose"] = json!([{ "system": "urn:other", "code": P }]);
    let pc = eval(&[o], &[]);
    assert!(!pc.permits_research(LegalBasis::OptOut, "anything", d("1950-01-01")));
    assert!(!pc.permits_research(LegalBasis::OptOut, "anything", d("2100-01-01")));
}

#[test]
fn objection_round_trip_record_withdraw_and_history() {
    let mut o = objection_consent("p1", &[], d("2025-05-01"), "2025-05-01T09:00:00Z");
    o["id"] = json!("obj-1");
    let mut purpose = objection_consent(
        "p1",
        &["commercial".into()],
        d("2025-06-01"),
        "2025-06-01T09:00:00Z",
    );
    purpose["id"] = json!("obj-2");
    let b = broad("2024-01-01", "2054-01-01");
    let pc = eval(&[b.clone(), o.clone(), purpose.clone()], &[]);
    assert!(!pc.permits_research(LegalBasis::Consent, P, d("2025-05-01")));
    let status = objection_status(&[b.clone(), o.clone(), purpose.clone()], d("2025-07-01"));
    assert!(status.full);
    assert_eq!(status.purposes, vec!["commercial".to_string()]);
    assert_eq!(status.history.len(), 2);

    let withdrawn = withdraw_objection(&o, d("2025-08-01")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(withdrawn["status"], "inactive");
    assert_eq!(withdrawn["provision"]["period"]["end"], "2025-07-31");
    let consents = [b, withdrawn.clone(), purpose];
    let pc = eval(&consents, &[]);
    assert!(pc.permits_research(LegalBasis::Consent, P, d("2025-08-01")));
    assert!(!pc.permits_research(LegalBasis::Consent, "commercial", d("2025-08-01")));
    let status = objection_status(&consents, d("2025-08-01"));
    assert!(!status.full);
    assert_eq!(status.history[0].status, "inactive");
    assert_eq!(status.history[0].end, Some(d("2025-07-31")));
    // Withdrawing twice, or a Broad Consent, is refused.
    assert!(withdraw_objection(&withdrawn, d("2025-09-01")).is_err());
    assert!(withdraw_objection(&broad("2024-01-01", "2054-01-01"), d("2025-09-01")).is_err());
}

#[test]
fn non_consent_resources_are_ignored() {
    let mut c = broad("2024-01-01", "2054-01-01");
    c["resourceType"] = json!("Observation");
    assert!(
        eval(&[c, json!(null), json!("x")], &[json!(42)])
            .window
            .is_empty()
    );
}
