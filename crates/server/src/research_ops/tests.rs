//! The research operations through the router, with the caller's access set per request.

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use medicus_auth::Role;
use medicus_auth::policy::Principal;
use medicus_consent::{ConsentPolicy, Day, LegalBasis, evaluate};
use medicus_research::project::{Application, Committee, DataRequest, OutputKind, Project};
use medicus_research::{ProjectKeys, TrustCentreKey};
use medicus_store::api::Precondition;
use medicus_store::testing::TestStore;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{ResearchConfig, routes};
use crate::access::Access;
use crate::config::ServerConfig;
use crate::state::AppState;

struct Harness {
    state: AppState,
    config: Arc<ResearchConfig>,
    _ts: TestStore,
    _dir: tempfile::TempDir,
}

fn token(subject: &str, roles: &[Role], fhir_user: Option<&str>) -> Access {
    Access::Token(Arc::new(Principal {
        subject: subject.into(),
        tenant: "default".into(),
        roles: roles.to_vec(),
        scopes: Default::default(),
        patient: None,
        fhir_user: fhir_user.map(str::to_string),
        client_id: "test".into(),
        jti: "jti".into(),
        expires_s: i64::MAX,
        family: None,
    }))
}

fn tc(subject: &str) -> Access {
    token(subject, &[Role::TrustCentre], None)
}

const KEY: [u8; 32] = [4; 32];

fn harness(with_key: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ts = TestStore::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let store = ts.store.clone();
    std::thread::scope(|s| {
        s.spawn(|| {
            store.create_tenant("default").unwrap_or_else(|e| panic!("{e}"));
            let mut w = store.write_session("default").unwrap_or_else(|e| panic!("{e}"));
            for id in ["p1", "p2"] {
                w.put("Patient", id, json!({ "resourceType": "Patient", "id": id }), Precondition::None)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            let broad = json!({
                "resourceType": "Consent", "id": "bc1", "status": "active",
                "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research" }] },
                "category": [{ "coding": [{ "system": "http://loinc.org", "code": "57016-8" }] }],
                "patient": { "reference": "Patient/p1" },
                "provision": { "type": "deny", "period": { "start": "2020-01-01", "end": "2090-01-01" }, "provision": [
                    { "type": "permit", "period": { "start": "2020-01-01", "end": "2090-01-01" },
                      "code": [{ "coding": [{ "system": "urn:oid:2.16.840.1.113883.3.1937.777.24.5.3", "code": "2.16.840.1.113883.3.1937.777.24.5.3.6" }] }] },
                    { "type": "permit", "period": { "start": "2020-01-01", "end": "2090-01-01" },
                      "code": [{ "coding": [{ "system": "urn:oid:2.16.840.1.113883.3.1937.777.24.5.3", "code": "2.16.840.1.113883.3.1937.777.24.5.3.8" }] }] }
                ]}
            });
            w.put("Consent", "bc1", broad, Precondition::None).unwrap_or_else(|e| panic!("{e}"));
            w.commit().unwrap_or_else(|e| panic!("{e}"));
            let app = Application {
                title: "t".into(),
                public_summary: "s".into(),
                principal_investigator: "pi".into(),
                institution: "i".into(),
                legal_basis: LegalBasis::Consent,
                purpose: "health-care-research".into(),
                cohort: json!({}),
                data: DataRequest { resource_types: vec!["Patient".into()], ..DataRequest::default() },
                duration_days: 10,
                ethics_vote: Some("DocumentReference/e".into()),
                team: vec!["alice".into()],
                outputs: vec![OutputKind::Ndjson],
            };
            let committee = Committee { members: ["c1".to_string()].into(), quorum: 1 };
            let project = Project::new("proj-1", "alice", app, committee).unwrap_or_else(|e| panic!("{e}"));
            medicus_research::project::create_project(&*store, &project).unwrap_or_else(|e| panic!("{e}"));
        });
    });
    let state = AppState::new(
        store,
        ServerConfig {
            bulk_dir: dir.path().join("bulk"),
            ..ServerConfig::default()
        },
    );
    let config = Arc::new(ResearchConfig {
        trust_centre: with_key.then(|| Arc::new(TrustCentreKey::from_bytes(&KEY))),
        ..ResearchConfig::default()
    });
    Harness {
        state,
        config,
        _ts: ts,
        _dir: dir,
    }
}

impl Harness {
    fn app(&self, access: Access) -> Router {
        routes(self.config.clone())
            .layer(Extension(access))
            .with_state(self.state.clone())
    }

    async fn call(
        &self,
        access: Access,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if body.is_some() {
            req = req.header("content-type", "application/fhir+json");
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap_or_else(|e| panic!("{e}"));
        let resp = self
            .app(access)
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        let status = resp.status();
        let bytes = to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The patient's Consents as stored, evaluated like the research paths do.
    fn permits(&self, patient: &str) -> bool {
        let store = self.state.store.clone();
        let patient = patient.to_string();
        std::thread::spawn(move || {
            let mut r = store
                .read_session("default")
                .unwrap_or_else(|e| panic!("{e}"));
            let pairs = vec![("patient".to_string(), format!("Patient/{patient}"))];
            let q =
                medicus_store::search::parse_search(medicus_fhir::r4(), Some("Consent"), &pairs)
                    .unwrap_or_else(|e| panic!("{e}"));
            let page = r
                .search(Some("Consent"), &q)
                .unwrap_or_else(|e| panic!("{e}"));
            let consents: Vec<Value> = page.resources.into_iter().filter_map(|v| v.body).collect();
            evaluate(&ConsentPolicy::default(), &consents, &[]).permits_research(
                LegalBasis::Consent,
                "health-care-research",
                Day::today(),
            )
        })
        .join()
        .unwrap_or_else(|_| panic!("evaluation thread"))
    }
}

fn param<'a>(v: &'a Value, name: &str) -> Vec<&'a Value> {
    v["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == name)
        .collect()
}

fn params(list: Value) -> Value {
    json!({ "resourceType": "Parameters", "parameter": list })
}

const OBJ: &str = "/fhir/default/Patient/p1/$research-objection";

#[tokio::test(flavor = "multi_thread")]
async fn patient_objects_per_purpose_then_fully_then_withdraws() {
    let h = harness(false);
    let me = token("user-p1", &[Role::Patient], Some("Patient/p1"));
    let (s, v) = h.call(me.clone(), "GET", OBJ, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(param(&v, "objected")[0]["valueBoolean"], false);
    assert!(h.permits("p1"));

    let (s, v) = h
        .call(
            me.clone(),
            "POST",
            OBJ,
            Some(params(
                json!([{ "name": "purpose", "valueCode": "commercial" }]),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(param(&v, "purpose")[0]["valueCode"], "commercial");
    assert_eq!(param(&v, "objected")[0]["valueBoolean"], false);
    assert!(
        h.permits("p1"),
        "a commercial-only objection leaves health-care research"
    );

    let (s, v) = h
        .call(me.clone(), "POST", OBJ, Some(params(json!([]))))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(param(&v, "objected")[0]["valueBoolean"], true);
    assert_eq!(param(&v, "objection").len(), 2);
    assert!(!h.permits("p1"), "the objection takes effect at once");

    let (s, v) = h
        .call(
            me.clone(),
            "POST",
            OBJ,
            Some(params(
                json!([{ "name": "action", "valueCode": "withdraw" }]),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(param(&v, "objected")[0]["valueBoolean"], false);
    assert!(param(&v, "purpose").is_empty());
    let statuses: Vec<&Value> = param(&v, "objection")
        .iter()
        .flat_map(|o| o["part"].as_array().into_iter().flatten())
        .filter(|p| p["name"] == "status")
        .collect();
    assert!(statuses.iter().all(|s| s["valueCode"] == "inactive"), "{v}");
    assert!(h.permits("p1"), "back in once the objection is withdrawn");

    let (s, _) = h
        .call(
            me,
            "POST",
            OBJ,
            Some(params(
                json!([{ "name": "action", "valueCode": "withdraw" }]),
            )),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "nothing left to withdraw"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn objection_is_for_the_patient_themself_or_the_trust_centre() {
    let h = harness(false);
    let other = token("user-p2", &[Role::Patient], Some("Patient/p2"));
    assert_eq!(
        h.call(other.clone(), "GET", OBJ, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.call(other, "POST", OBJ, Some(params(json!([])))).await.0,
        StatusCode::FORBIDDEN
    );
    let researcher = token("r", &[Role::Researcher], None);
    assert_eq!(
        h.call(researcher, "GET", OBJ, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.call(Access::Anonymous, "GET", OBJ, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.call(tc("tc-1"), "GET", OBJ, None).await.0, StatusCode::OK);
    let me = token("user-p1", &[Role::Patient], Some("Patient/p1"));
    assert_eq!(
        h.call(
            me.clone(),
            "GET",
            "/fhir/default/Patient/nope/$research-objection",
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.call(
            tc("tc-1"),
            "GET",
            "/fhir/default/Patient/nope/$research-objection",
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let bad = h
        .call(
            me,
            "POST",
            OBJ,
            Some(params(
                json!([{ "name": "action", "valueCode": "explode" }]),
            )),
        )
        .await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST);
}

fn keys() -> ProjectKeys {
    TrustCentreKey::from_bytes(&KEY).project("proj-1")
}

#[tokio::test(flavor = "multi_thread")]
async fn pseudonymize_needs_the_trust_centre_and_its_key() {
    let body = params(
        json!([{ "name": "project", "valueString": "proj-1" }, { "name": "patient", "valueReference": { "reference": "Patient/p1" } }]),
    );
    let h = harness(true);
    let (s, v) = h
        .call(
            tc("tc-1"),
            "POST",
            "/fhir/default/$pseudonymize",
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let parts = &param(&v, "pseudonym")[0]["part"];
    assert_eq!(
        parts[1]["valueString"],
        Value::from(keys().patient_pseudonym("default", "p1"))
    );
    let researcher = token("r", &[Role::Researcher], None);
    assert_eq!(
        h.call(
            researcher,
            "POST",
            "/fhir/default/$pseudonymize",
            Some(body.clone())
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let admin = token("a", &[Role::TenantAdmin], None);
    assert_eq!(
        h.call(
            admin,
            "POST",
            "/fhir/default/$pseudonymize",
            Some(body.clone())
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let unknown = params(
        json!([{ "name": "project", "valueString": "nope" }, { "name": "patient", "valueString": "p1" }]),
    );
    assert_eq!(
        h.call(
            tc("tc-1"),
            "POST",
            "/fhir/default/$pseudonymize",
            Some(unknown)
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let h = harness(false);
    assert_eq!(
        h.call(
            tc("tc-1"),
            "POST",
            "/fhir/default/$pseudonymize",
            Some(body)
        )
        .await
        .0,
        StatusCode::NOT_IMPLEMENTED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn de_pseudonymisation_needs_two_approvals_besides_the_requester() {
    let h = harness(true);
    let url = "/fhir/default/$de-pseudonymize";
    let body = params(
        json!([{ "name": "project", "valueString": "proj-1" }, { "name": "patient", "valueString": "p1" }]),
    );
    let (s, _) = h
        .call(
            tc("tc-alice"),
            "POST",
            "/fhir/default/$pseudonymize",
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let psn = keys().patient_pseudonym("default", "p1");
    let (s, v) = h
        .call(tc("tc-alice"), "POST", url, Some(params(json!([
            { "name": "action", "valueCode": "request" },
            { "name": "project", "valueString": "proj-1" },
            { "name": "pseudonym", "valueString": psn },
            { "name": "justification", "valueString": "incidental finding: the patient must be told" }
        ]))))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = param(&v, "request")[0]["valueId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let act = |action: &str| {
        params(
            json!([{ "name": "action", "valueCode": action }, { "name": "request", "valueId": id }]),
        )
    };
    assert_eq!(
        h.call(tc("tc-alice"), "POST", url, Some(act("approve")))
            .await
            .0,
        StatusCode::FORBIDDEN,
        "own request"
    );
    assert_eq!(
        h.call(tc("tc-bob"), "POST", url, Some(act("approve")))
            .await
            .0,
        StatusCode::OK
    );
    let (s, v) = h
        .call(tc("tc-bob"), "POST", url, Some(act("execute")))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "one approval is not enough: {v}");
    let researcher = token("r", &[Role::Researcher], None);
    assert_eq!(
        h.call(researcher, "POST", url, Some(act("approve")))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = h
        .call(tc("tc-carol"), "POST", url, Some(act("approve")))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(param(&v, "state")[0]["valueCode"], "approved");
    let (s, v) = h
        .call(tc("tc-bob"), "POST", url, Some(act("execute")))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let identity = &param(&v, "identity")[0]["part"];
    assert_eq!(identity[1]["valueReference"]["reference"], "Patient/p1");
    let approvers: Vec<&Value> = param(&v, "approvedBy")
        .into_iter()
        .map(|p| &p["valueString"])
        .collect();
    assert_eq!(approvers, [&json!("tc-bob"), &json!("tc-carol")]);
    assert_eq!(
        h.call(tc("tc-bob"), "POST", url, Some(act("execute")))
            .await
            .0,
        StatusCode::CONFLICT,
        "single use"
    );
    let short = params(
        json!([{ "name": "action", "valueCode": "request" }, { "name": "project", "valueString": "proj-1" }, { "name": "pseudonym", "valueString": psn }, { "name": "justification", "valueString": "why not" }]),
    );
    assert_eq!(
        h.call(tc("tc-alice"), "POST", url, Some(short)).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}
