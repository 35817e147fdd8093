use super::*;

const DAY: i64 = 86_400;

fn application() -> Application {
    Application {
        title: "Anaemia after surgery".into(),
        public_summary: "How often haemoglobin drops after hip replacement.".into(),
        principal_investigator: "Practitioner/pi".into(),
        institution: "Charité".into(),
        legal_basis: LegalBasis::Consent,
        purpose: "health-care-research".into(),
        cohort: json!({ "version": "http://to_be_decided.com/draft-2/schema#", "inclusionCriteria": [] }),
        data: DataRequest {
            resource_types: vec!["Observation".into()],
            ..DataRequest::default()
        },
        duration_days: 365,
        ethics_vote: Some("DocumentReference/ethics-1".into()),
        team: vec!["alice".into(), "bob".into()],
        outputs: vec![OutputKind::Ndjson],
    }
}

fn committee(quorum: usize) -> Committee {
    Committee {
        members: ["c1", "c2", "c3"].into_iter().map(String::from).collect(),
        quorum,
    }
}

fn under_review(quorum: usize) -> Project {
    let mut p = Project::new("proj-1", "alice", application(), committee(quorum))
        .unwrap_or_else(|e| panic!("{e}"));
    p.submit("alice", 10).unwrap_or_else(|e| panic!("{e}"));
    p.start_review("c1", 20).unwrap_or_else(|e| panic!("{e}"));
    p
}

fn ok<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_transition_of_the_table() {
    use Action as A;
    use ProjectState as S;
    let states = [
        S::Draft,
        S::Submitted,
        S::UnderReview,
        S::ChangesRequested,
        S::Approved,
        S::Rejected,
        S::Active,
        S::Closed,
        S::Expired,
    ];
    let actions = [
        A::Submit,
        A::StartReview,
        A::RequestChanges,
        A::Approve,
        A::Reject,
        A::Activate,
        A::Close,
        A::Expire,
    ];
    let legal = [
        (S::Draft, A::Submit, S::Submitted),
        (S::ChangesRequested, A::Submit, S::Submitted),
        (S::Submitted, A::StartReview, S::UnderReview),
        (S::UnderReview, A::RequestChanges, S::ChangesRequested),
        (S::UnderReview, A::Approve, S::Approved),
        (S::UnderReview, A::Reject, S::Rejected),
        (S::Approved, A::Activate, S::Active),
        (S::Active, A::Close, S::Closed),
        (S::Approved, A::Expire, S::Expired),
        (S::Active, A::Expire, S::Expired),
    ];
    let mut n = 0;
    for s in states {
        for a in actions {
            let expected = legal
                .iter()
                .find(|(f, x, _)| *f == s && *x == a)
                .map(|(_, _, t)| *t);
            assert_eq!(next_state(s, a), expected, "{s:?} {a:?}");
            n += usize::from(expected.is_some());
        }
    }
    assert_eq!(n, legal.len());
    // Terminal states go nowhere.
    for s in [S::Rejected, S::Closed, S::Expired] {
        assert!(actions.iter().all(|a| next_state(s, *a).is_none()));
    }
}

#[test]
fn full_workflow_with_quorum_permit_and_history() {
    let mut p = Project::new("proj-1", "alice", application(), committee(2))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(
            p.start_review("c1", 5),
            Err(ResearchError::IllegalTransition(_))
        ),
        "draft cannot be reviewed"
    );
    assert!(matches!(
        p.submit("mallory", 5),
        Err(ResearchError::Forbidden(_))
    ));
    ok(p.submit("alice", 10));
    assert!(
        matches!(
            p.vote("c1", Vote::Approve, 11, "permit-1"),
            Err(ResearchError::IllegalTransition(_))
        ),
        "not under review yet"
    );
    assert!(
        matches!(
            p.start_review("alice", 15),
            Err(ResearchError::Forbidden(_))
        ),
        "applicant is not on the committee"
    );
    ok(p.start_review("c1", 20));
    assert!(matches!(
        p.vote("alice", Vote::Approve, 21, "permit-1"),
        Err(ResearchError::Forbidden(_))
    ));
    assert_eq!(
        ok(p.vote("c1", Vote::Approve, 21, "permit-1")),
        None,
        "below quorum"
    );
    assert!(p.permit.is_none());
    let t =
        ok(p.vote("c2", Vote::Approve, 22, "permit-1")).unwrap_or_else(|| panic!("quorum reached"));
    assert_eq!(
        (t.from, t.to),
        (ProjectState::UnderReview, ProjectState::Approved)
    );
    let permit = p.permit.clone().unwrap_or_else(|| panic!("permit issued"));
    assert_eq!(permit.expires_at_s, 22 + 365 * DAY);
    assert_eq!(
        permit.check("alice", OutputKind::Ndjson, 30),
        Err(PermitDenied::NotActive)
    );
    assert!(matches!(
        p.activate("c1", 30),
        Err(ResearchError::Forbidden(_))
    ));
    ok(p.activate("alice", 30));
    let permit = p.permit.clone().unwrap_or_else(|| panic!("permit"));
    assert_eq!(permit.check("alice", OutputKind::Ndjson, 31), Ok(()));
    assert_eq!(
        permit.check("carol", OutputKind::Ndjson, 31),
        Err(PermitDenied::UserNotNamed)
    );
    assert_eq!(
        permit.check("bob", OutputKind::Parquet, 31),
        Err(PermitDenied::OutputNotAllowed)
    );
    assert_eq!(
        permit.check("bob", OutputKind::Ndjson, 22 + 365 * DAY),
        Err(PermitDenied::Expired)
    );
    assert_eq!(ok(p.expire_if_due(40)), None);
    let t = ok(p.expire_if_due(22 + 365 * DAY)).unwrap_or_else(|| panic!("due"));
    assert_eq!(t.to, ProjectState::Expired);
    assert!(
        p.close("alice", 23 + 365 * DAY, None).is_err(),
        "expired is terminal"
    );
    let path: Vec<ProjectState> = p.history.iter().map(|t| t.to).collect();
    assert_eq!(
        path,
        [
            ProjectState::Submitted,
            ProjectState::UnderReview,
            ProjectState::Approved,
            ProjectState::Active,
            ProjectState::Expired
        ]
    );
    assert_eq!(
        p.to_research_study()["status"],
        "administratively-completed"
    );
}

#[test]
fn majority_decides_only_after_quorum_and_changes_restart_the_round() {
    let mut p = under_review(3);
    assert_eq!(ok(p.vote("c1", Vote::Approve, 21, "x")), None);
    assert_eq!(ok(p.vote("c2", Vote::Reject, 22, "x")), None);
    // 1:1:1, no majority: the review goes on.
    assert_eq!(ok(p.vote("c3", Vote::RequestChanges, 23, "x")), None);
    // c1 changes their vote: 2 of 3 request changes.
    let t = ok(p.vote("c1", Vote::RequestChanges, 24, "x")).unwrap_or_else(|| panic!("decided"));
    assert_eq!(t.to, ProjectState::ChangesRequested);
    ok(p.comment("c2", "please add the ethics vote of the second site", 25));
    let mut changed = application();
    changed.public_summary.push_str(" Second site added.");
    assert!(p.edit("c2", changed.clone()).is_err());
    ok(p.edit("alice", changed));
    ok(p.submit("alice", 30));
    ok(p.start_review("c2", 31));
    assert!(p.votes.is_empty(), "a new round");
    assert_eq!(p.round, 2);
    ok(p.vote("c1", Vote::Reject, 32, "x"));
    ok(p.vote("c2", Vote::Reject, 33, "x"));
    let t = ok(p.vote("c3", Vote::Approve, 34, "x")).unwrap_or_else(|| panic!("decided"));
    assert_eq!(t.to, ProjectState::Rejected);
    assert!(p.permit.is_none());
    assert!(p.vote("c3", Vote::Approve, 35, "x").is_err());
}

#[test]
fn incomplete_applications_and_bad_committees_are_refused() {
    let mut a = application();
    a.ethics_vote = None;
    a.team.clear();
    let mut p = Project::new("p", "alice", a, committee(2)).unwrap_or_else(|e| panic!("{e}"));
    match p.submit("alice", 1) {
        Err(ResearchError::Invalid(m)) => {
            assert!(m.contains("ethics vote") && m.contains("team"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(Project::new("p", "alice", application(), committee(0)).is_err());
    assert!(Project::new("p", "alice", application(), committee(4)).is_err());
    assert!(
        Project::new("p", "c1", application(), committee(2)).is_err(),
        "applicant on the committee"
    );
    for bad in ["", "a/b", "ü", &"x".repeat(65)] {
        assert!(
            Project::new(bad, "alice", application(), committee(2)).is_err(),
            "{bad}"
        );
    }
    assert!(Project::new("proj-1.v2", "alice", application(), committee(2)).is_ok());
}

#[test]
fn revoked_permit_yields_nothing_and_notifications_reach_the_people_involved() {
    let mut p = under_review(1);
    let t = ok(p.vote("c3", Vote::Approve, 21, "permit-9")).unwrap_or_else(|| panic!("decided"));
    let who = p.recipients(&t);
    assert!(
        who.contains("alice") && who.contains("bob") && who.contains("c1") && !who.contains("c3")
    );
    let c = p.notification(&t, "alice", "2026-01-01T00:00:00Z");
    assert_eq!(c["recipient"][0]["identifier"]["value"], "alice");
    assert_eq!(c["resourceType"], "Communication");
    assert_eq!(c["about"][0]["reference"], "ResearchStudy/proj-1");
    ok(p.activate("alice", 22));
    ok(p.revoke_permit("c1"));
    let permit = p.permit.clone().unwrap_or_else(|| panic!("permit"));
    assert_eq!(
        permit.check("alice", OutputKind::Ndjson, 23),
        Err(PermitDenied::Revoked)
    );
}
