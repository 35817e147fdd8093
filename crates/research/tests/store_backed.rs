//! The research records in a real store (SQLite, or PostgreSQL with `MEDICUS_TEST_DATABASE`).

use std::sync::Arc;

use medicus_research::depseudo::{self, DepseudoRequest, RequestState};
use medicus_research::project::{
    self, Application, Committee, DataRequest, OutputKind, Project, ProjectState, Vote,
};
use medicus_research::pseudonym::{self, Identity};
use medicus_research::{ResearchError, TrustCentreKey};
use medicus_store::Store;
use medicus_store::testing::TestStore;

fn store() -> (tempfile::TempDir, TestStore) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = TestStore::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (dir, store)
}

fn ok<T>(r: Result<T, ResearchError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn four_eyes_de_pseudonymisation_against_the_store() {
    let (_dir, ts) = store();
    let records: &dyn Store = &*ts.store;
    let tc = TrustCentreKey::from_bytes(&[5; 32]);
    let keys = tc.project("proj-a");
    let who = Identity {
        tenant: "default".into(),
        patient_id: "patient-42".into(),
    };
    let psn = ok(pseudonym::pseudonymize(records, &keys, &who));
    // Idempotent, and another project gets another pseudonym with its own mapping.
    assert_eq!(ok(pseudonym::pseudonymize(records, &keys, &who)), psn);
    let other = ok(pseudonym::pseudonymize(
        records,
        &tc.project("proj-b"),
        &who,
    ));
    assert_ne!(psn, other);
    // What the database holds names neither the patient nor the tenant.
    let docs = records
        .doc_list(pseudonym::NS_MAPPING, "", None, 100)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(docs.len(), 2);
    for d in &docs {
        let text = String::from_utf8_lossy(&d.value);
        assert!(
            !text.contains("patient-42") && !text.contains("default"),
            "{text}"
        );
    }

    let req = ok(DepseudoRequest::new(
        "req-1",
        "proj-a",
        vec![psn.clone(), "psn-unknown".into()],
        "incidental finding needs follow-up",
        "tc-alice",
        1_000,
        3_600,
        2,
    ));
    ok(depseudo::create_request(records, &req));
    assert!(
        depseudo::create_request(records, &req).is_err(),
        "ids are unique"
    );
    ok(depseudo::approve_request(records, "req-1", "tc-bob", 1_001));
    // One approval: refused, nothing marked executed.
    assert!(matches!(
        depseudo::de_pseudonymize(records, &keys, "req-1", "tc-bob", 1_002),
        Err(ResearchError::IllegalTransition(_))
    ));
    assert!(
        depseudo::approve_request(records, "req-1", "tc-bob", 1_003).is_err(),
        "same approver"
    );
    let r = ok(depseudo::approve_request(
        records, "req-1", "tc-carol", 1_004,
    ));
    assert_eq!(r.state, RequestState::Approved);
    // Another project's keys cannot run it.
    assert!(matches!(
        depseudo::de_pseudonymize(records, &tc.project("proj-b"), "req-1", "tc-carol", 1_005),
        Err(ResearchError::Forbidden(_))
    ));
    let (done, found) = ok(depseudo::de_pseudonymize(
        records, &keys, "req-1", "tc-carol", 1_006,
    ));
    assert_eq!(done.state, RequestState::Executed);
    assert_eq!(
        done.approvals
            .iter()
            .map(|a| a.by.as_str())
            .collect::<Vec<_>>(),
        ["tc-bob", "tc-carol"]
    );
    assert_eq!(
        found,
        vec![(psn, Some(who)), ("psn-unknown".to_string(), None)]
    );
    assert!(
        depseudo::de_pseudonymize(records, &keys, "req-1", "tc-carol", 1_007).is_err(),
        "single use"
    );
    assert_eq!(
        ok(depseudo::get_request(records, "req-1")).map(|r| r.state),
        Some(RequestState::Executed)
    );
}

#[test]
fn concurrent_approvals_both_count() {
    let (_dir, ts) = store();
    let records: Arc<dyn Store> = ts.store.clone();
    let req = ok(DepseudoRequest::new(
        "req-2",
        "p",
        vec!["psn-x".into()],
        "a justification long enough",
        "tc-a",
        0,
        3_600,
        3,
    ));
    ok(depseudo::create_request(&*records, &req));
    let threads: Vec<_> = ["tc-b", "tc-c", "tc-d"]
        .into_iter()
        .map(|who| {
            let records = records.clone();
            std::thread::spawn(move || {
                depseudo::approve_request(&*records, "req-2", who, 1).map(|_| ())
            })
        })
        .collect();
    for t in threads {
        ok(t.join()
            .unwrap_or_else(|_| panic!("approver thread panicked")));
    }
    let r = ok(depseudo::get_request(&*records, "req-2")).unwrap_or_else(|| panic!("stored"));
    assert_eq!(r.approvals.len(), 3);
    assert_eq!(r.state, RequestState::Approved);
}

#[test]
fn project_workflow_persists_under_compare_and_set() {
    let (_dir, ts) = store();
    let records: &dyn Store = &*ts.store;
    let app = Application {
        title: "t".into(),
        public_summary: "s".into(),
        principal_investigator: "pi".into(),
        institution: "i".into(),
        legal_basis: medicus_consent::LegalBasis::OptOut,
        purpose: "health-care-research".into(),
        cohort: serde_json::json!({ "inclusionCriteria": [] }),
        data: DataRequest {
            resource_types: vec!["Condition".into()],
            ..DataRequest::default()
        },
        duration_days: 30,
        ethics_vote: Some("DocumentReference/e".into()),
        team: vec!["alice".into()],
        outputs: vec![OutputKind::Parquet],
    };
    let committee = Committee {
        members: ["c1".to_string(), "c2".to_string()].into(),
        quorum: 2,
    };
    let p = ok(Project::new("proj-s", "alice", app, committee));
    ok(project::create_project(records, &p));
    assert!(project::create_project(records, &p).is_err());
    ok(project::update_project(records, "proj-s", |p| {
        p.submit("alice", 1)
    }));
    ok(project::update_project(records, "proj-s", |p| {
        p.start_review("c1", 2)
    }));
    ok(project::update_project(records, "proj-s", |p| {
        p.vote("c1", Vote::Approve, 3, "permit-s")
    }));
    // A refused change writes nothing.
    assert!(project::update_project(records, "proj-s", |p| p.activate("alice", 3)).is_err());
    let (p, t) = ok(project::update_project(records, "proj-s", |p| {
        p.vote("c2", Vote::Approve, 4, "permit-s")
    }));
    assert_eq!(t.map(|t| t.to), Some(ProjectState::Approved));
    assert_eq!(p.permit.as_ref().map(|p| p.id.as_str()), Some("permit-s"));
    let stored = ok(project::get_project(records, "proj-s")).unwrap_or_else(|| panic!("stored"));
    assert_eq!(stored, p);
    assert_eq!(ok(project::list_projects(records)).len(), 1);
    assert!(matches!(
        project::update_project(records, "nope", |p| p.submit("alice", 1)),
        Err(ResearchError::NotFound(_))
    ));
}

#[test]
fn transitions_write_the_research_study_and_notifications() {
    let (_dir, ts) = store();
    let st = ts.store.clone();
    std::thread::spawn(move || {
        st.create_tenant("default")
            .unwrap_or_else(|e| panic!("{e}"));
        let app = Application {
            title: "Anaemia".into(),
            public_summary: "s".into(),
            principal_investigator: "pi".into(),
            institution: "i".into(),
            legal_basis: medicus_consent::LegalBasis::Consent,
            purpose: "health-care-research".into(),
            cohort: serde_json::json!({}),
            data: DataRequest {
                resource_types: vec!["Condition".into()],
                ..DataRequest::default()
            },
            duration_days: 30,
            ethics_vote: Some("DocumentReference/e".into()),
            team: vec!["alice".into(), "bob".into()],
            outputs: vec![OutputKind::Ndjson],
        };
        let committee = Committee {
            members: ["c1".to_string(), "c2".to_string()].into(),
            quorum: 1,
        };
        let mut p = ok(Project::new("proj-n", "alice", app, committee));
        let t = ok(p.submit("alice", 1));
        let mut w = st
            .write_session("default")
            .unwrap_or_else(|e| panic!("{e}"));
        ok(project::record_transition(
            &mut *w,
            &p,
            &t,
            "2026-01-01T00:00:00Z",
        ));
        w.commit().unwrap_or_else(|e| panic!("{e}"));
        let mut r = st.read_session("default").unwrap_or_else(|e| panic!("{e}"));
        let study = r
            .read("ResearchStudy", "proj-n")
            .unwrap_or_else(|e| panic!("{e}"))
            .and_then(|v| v.body);
        assert_eq!(
            study.as_ref().map(|s| s["status"].clone()),
            Some(serde_json::json!("in-review"))
        );
        let pairs = vec![("_count".to_string(), "100".to_string())];
        let q =
            medicus_store::search::parse_search(medicus_fhir::r4(), Some("Communication"), &pairs)
                .unwrap_or_else(|e| panic!("{e}"));
        let page = r
            .search(Some("Communication"), &q)
            .unwrap_or_else(|e| panic!("{e}"));
        // pi, bob and the two committee members; not alice, who acted.
        let mut to: Vec<String> = page
            .resources
            .iter()
            .filter_map(|v| v.body.as_ref())
            .map(|c| {
                c["recipient"][0]["identifier"]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        to.sort();
        assert_eq!(to, ["bob", "c1", "c2", "pi"]);
    })
    .join()
    .unwrap_or_else(|_| panic!("store thread panicked"));
}
