//! Enforcement on the FHIR API: tokens on every request, the tenant of the token, scopes per
//! interaction and type, and patient-context tokens confined to their patient's compartment
//! through every path (search, `_include`, `_revinclude`, chains, `_has`, compartment search,
//! `$everything`, history, transactions, batches, bulk export). Runs on SQLite and, with
//! `MEDICUS_TEST_DATABASE`, on PostgreSQL.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use common::{FHIR_JSON, TestApp, TestResponse};
use medicus_auth::tokens::TokenGrant;
use medicus_auth::{Auth, AuthConfig, Records, Role, ScopeSet, ServerKey, SystemClock};
use medicus_server::ServerConfig;
use medicus_server::access::AccessControl;
use medicus_server::auth::{AuthState, WebAuthConfig};
use serde_json::{Value, json};

const BASE: &str = "http://test.local";
const LAB: &str = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory";

struct Env {
    app: TestApp,
    core: Arc<Auth>,
}

fn observation(id: &str, patient: &str, category: &str, performer: &str) -> Value {
    json!({"resourceType":"Observation","id":id,"status":"final",
        "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":category}]}],
        "code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},
        "subject":{"reference":format!("Patient/{patient}")},
        "performer":[{"reference":format!("Practitioner/{performer}")}]})
}

async fn start() -> Env {
    let mut slot = None;
    let config = ServerConfig {
        base_url: Some(BASE.into()),
        ..ServerConfig::default()
    };
    let app = TestApp::with_state(config, |mut state| {
        let records: Records = state.store.clone();
        let core = Arc::new(Auth::new(
            records,
            ServerKey::generate().expect("key"),
            AuthConfig::new(format!("{BASE}/auth"), format!("{BASE}/fhir")),
            Arc::new(SystemClock),
        ));
        slot = Some(core.clone());
        state.access_control = AccessControl::Enforced;
        state.with_auth(AuthState::new(core, WebAuthConfig::default()))
    });
    let core = slot.expect("auth built");
    let setup = core.clone();
    app.with_store(move |_| setup.ensure_signing_key().expect("signing key"));
    let env = Env { app, core };
    let admin = env.token("svc", Role::Service, "system/*.cruds", None, None);
    for r in [
        json!({"resourceType":"Patient","id":"p1","name":[{"family":"Smith"}]}),
        json!({"resourceType":"Patient","id":"p2","name":[{"family":"Jones"}]}),
        json!({"resourceType":"Practitioner","id":"pr1","name":[{"family":"House"}]}),
        json!({"resourceType":"Practitioner","id":"pr2","name":[{"family":"Grey"}]}),
        observation("o1", "p1", "laboratory", "pr1"),
        observation("o2", "p2", "laboratory", "pr2"),
        observation("o3", "p1", "vital-signs", "pr1"),
        json!({"resourceType":"Condition","id":"c2","subject":{"reference":"Patient/p2"},
            "code":{"text":"secret diagnosis"}}),
        json!({"resourceType":"ResearchStudy","id":"s1","status":"active"}),
    ] {
        let ty = r["resourceType"].as_str().expect("type").to_owned();
        let id = r["id"].as_str().expect("id").to_owned();
        let resp = env
            .send(&admin, "PUT", &format!("/fhir/default/{ty}/{id}"), Some(&r))
            .await;
        assert!(resp.status.is_success(), "seed {ty}/{id}: {}", resp.text);
    }
    env
}

impl Env {
    fn token(
        &self,
        subject: &str,
        role: Role,
        scopes: &str,
        patient: Option<&str>,
        fhir_user: Option<&str>,
    ) -> String {
        self.token_for("default", subject, role, scopes, patient, fhir_user)
    }

    fn token_for(
        &self,
        tenant: &str,
        subject: &str,
        role: Role,
        scopes: &str,
        patient: Option<&str>,
        fhir_user: Option<&str>,
    ) -> String {
        let grant = TokenGrant {
            subject: subject.into(),
            tenant: tenant.into(),
            roles: vec![role],
            scopes: ScopeSet::parse(scopes).expect("scopes"),
            patient: patient.map(str::to_owned),
            fhir_user: fhir_user.map(str::to_owned),
            client_id: "test-app".into(),
            family: None,
        };
        self.core.issue_access_token(&grant).expect("token").0
    }

    async fn send(
        &self,
        token: &str,
        method: &str,
        uri: &str,
        body: Option<&Value>,
    ) -> TestResponse {
        let bearer = format!("Bearer {token}");
        let mut headers = vec![("authorization", bearer.as_str())];
        let body = match body {
            Some(b) => {
                headers.push(("content-type", FHIR_JSON));
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        self.app.request(method, uri, &headers, body).await
    }

    async fn get(&self, token: &str, uri: &str) -> TestResponse {
        self.send(token, "GET", uri, None).await
    }
}

/// `Type/id` of every entry of a searchset (matches and includes).
fn keys(bundle: &Value) -> BTreeSet<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let r = &e["resource"];
            Some(format!(
                "{}/{}",
                r["resourceType"].as_str()?,
                r["id"].as_str()?
            ))
        })
        .filter(|k| !k.starts_with("OperationOutcome/"))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn requests_need_a_valid_token_of_the_tenant() {
    let env = start().await;
    let anonymous = env.app.get("/fhir/default/Patient/p1").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some("Bearer realm=\"medicus\"")
    );
    assert!(anonymous.outcome_text().contains("access token"));

    let forged = env.get("not.a.token", "/fhir/default/Patient/p1").await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert!(
        forged
            .header("www-authenticate")
            .is_some_and(|h| h.contains("invalid_token"))
    );
    // Only the discovery documents are public.
    assert_eq!(
        env.app.get("/fhir/default/metadata").await.status,
        StatusCode::OK
    );
    assert_eq!(
        env.app.get("/fhir/default/Patient").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        env.app.get("/fhir/default").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A token of tenant `other` opens nothing in `default`, and the reverse.
    let other = env.token_for("other", "u", Role::Clinician, "user/*.cruds", None, None);
    let denied = env.get(&other, "/fhir/default/Patient/p1").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.text);
    let mine = env.token("u", Role::Clinician, "user/*.cruds", None, None);
    assert_eq!(
        env.get(&mine, "/fhir/other/Patient").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        env.get(&mine, "/fhir/default/Patient/p1").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn scopes_and_roles_decide_per_interaction_and_type() {
    let env = start().await;
    let reader = env.token("doc", Role::Clinician, "user/Observation.rs", None, None);
    let all = env.get(&reader, "/fhir/default/Observation").await;
    assert_eq!(
        keys(&all.json),
        set(&["Observation/o1", "Observation/o2", "Observation/o3"])
    );
    assert_eq!(
        env.get(&reader, "/fhir/default/Patient/p1").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        env.get(&reader, "/fhir/default/Condition").await.status,
        StatusCode::FORBIDDEN
    );
    let write = env
        .send(
            &reader,
            "PUT",
            "/fhir/default/Observation/o9",
            Some(&observation("o9", "p1", "laboratory", "pr1")),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.text);
    assert_eq!(
        env.send(&reader, "DELETE", "/fhir/default/Observation/o1", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // A researcher never reaches identified clinical data, whatever the scopes say.
    let researcher = env.token("res", Role::Researcher, "user/*.cruds", None, None);
    assert_eq!(
        env.get(&researcher, "/fhir/default/Observation")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        env.get(&researcher, "/fhir/default/Patient/p1")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let studies = env.get(&researcher, "/fhir/default/ResearchStudy").await;
    assert_eq!(keys(&studies.json), set(&["ResearchStudy/s1"]));

    // Granular scopes: laboratory results only, in searches (inside the query, so the total
    // is right) and in reads.
    let lab = env.token(
        "doc",
        Role::Clinician,
        &format!("user/Observation.rs?category={LAB}"),
        None,
        None,
    );
    let found = env
        .get(&lab, "/fhir/default/Observation?_total=accurate")
        .await;
    assert_eq!(
        keys(&found.json),
        set(&["Observation/o1", "Observation/o2"])
    );
    assert_eq!(found.json["total"], 2);
    assert_eq!(
        env.get(&lab, "/fhir/default/Observation/o3").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        env.get(&lab, "/fhir/default/Observation/o1").await.status,
        StatusCode::OK
    );

    // The audit trail: the tenant's admins only.
    assert_eq!(
        env.get(&reader, "/fhir/default/AuditEvent").await.status,
        StatusCode::FORBIDDEN
    );
    let admin = env.token("adm", Role::TenantAdmin, "user/AuditEvent.rs", None, None);
    assert_eq!(
        env.get(&admin, "/fhir/default/AuditEvent").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_patient_token_sees_its_own_compartment_only() {
    let env = start().await;
    let me = env.token(
        "pat",
        Role::Patient,
        "patient/*.rs",
        Some("p1"),
        Some("Patient/p1"),
    );
    let get = |uri: &'static str| env.get(&me, uri);

    assert_eq!(get("/fhir/default/Patient/p1").await.status, StatusCode::OK);
    // Other records are not found (their existence is not confirmed either).
    assert_eq!(
        get("/fhir/default/Patient/p2").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("/fhir/default/Observation/o2").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("/fhir/default/Condition/c2").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("/fhir/default/Observation/o2/_history/1").await.status,
        StatusCode::NOT_FOUND
    );

    // Searches are confined inside the database: matches, totals, includes.
    let obs = get("/fhir/default/Observation?_total=accurate").await;
    assert_eq!(keys(&obs.json), set(&["Observation/o1", "Observation/o3"]));
    assert_eq!(obs.json["total"], 2);
    assert_eq!(
        keys(&get("/fhir/default/Patient").await.json),
        set(&["Patient/p1"])
    );
    assert!(keys(&get("/fhir/default/Condition").await.json).is_empty());
    let included = get(
        "/fhir/default/Observation?_include=Observation:subject&_include=Observation:performer",
    )
    .await;
    assert_eq!(
        keys(&included.json),
        set(&[
            "Observation/o1",
            "Observation/o3",
            "Patient/p1",
            "Practitioner/pr1"
        ])
    );
    let rev = get("/fhir/default/Practitioner?_revinclude=Observation:performer").await;
    assert_eq!(
        keys(&rev.json),
        set(&[
            "Practitioner/pr1",
            "Practitioner/pr2",
            "Observation/o1",
            "Observation/o3"
        ])
    );
    // Compartment search of someone else: nothing.
    assert!(keys(&get("/fhir/default/Patient/p2/Observation").await.json).is_empty());
    assert!(keys(&get("/fhir/default/Patient/p2/*").await.json).is_empty());

    // Chains and `_has` into other patients' data are refused, not answered.
    let chained = get("/fhir/default/Observation?subject.name=Jones").await;
    assert_eq!(chained.status, StatusCode::FORBIDDEN, "{}", chained.text);
    let has = get("/fhir/default/Practitioner?_has:Observation:performer:code=4548-4").await;
    assert_eq!(has.status, StatusCode::FORBIDDEN, "{}", has.text);
    // A chain into shared reference data is fine.
    let shared = get("/fhir/default/Observation?performer:Practitioner.name=House").await;
    assert_eq!(
        keys(&shared.json),
        set(&["Observation/o1", "Observation/o3"])
    );

    // $everything: own record only.
    assert_eq!(
        get("/fhir/default/Patient/p2/$everything").await.status,
        StatusCode::FORBIDDEN
    );
    let everything = get("/fhir/default/Patient/p1/$everything").await;
    let all = keys(&everything.json);
    assert!(
        all.contains("Observation/o1") && !all.contains("Observation/o2"),
        "{all:?}"
    );
    assert!(!all.contains("Condition/c2") && !all.contains("Patient/p2"));

    // History across resources is refused; one's own resource's history is served.
    assert_eq!(
        get("/fhir/default/Observation/_history").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get("/fhir/default/_history").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get("/fhir/default/Observation/o1/_history").await.status,
        StatusCode::OK
    );
    assert!(keys(&get("/fhir/default/Observation/o2/_history").await.json).is_empty());

    // System-wide search and bulk export need unrestricted access.
    assert_eq!(
        get("/fhir/default?_id=o2").await.status,
        StatusCode::FORBIDDEN
    );
    let export = env
        .app
        .request(
            "GET",
            "/fhir/default/$export",
            &[
                ("authorization", &format!("Bearer {me}")),
                ("prefer", "respond-async"),
            ],
            Body::empty(),
        )
        .await;
    assert_eq!(export.status, StatusCode::FORBIDDEN, "{}", export.text);

    // The access log: own record yes, another's no.
    assert_eq!(
        get("/fhir/default/Patient/p1/$access-log").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get("/fhir/default/Patient/p2/$access-log").await.status,
        StatusCode::FORBIDDEN
    );

    // A patient reads, never writes.
    let write = env
        .send(
            &me,
            "PUT",
            "/fhir/default/Observation/o1",
            Some(&observation("o1", "p1", "laboratory", "pr1")),
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bundles_are_checked_entry_by_entry() {
    let env = start().await;
    let me = env.token(
        "pat",
        Role::Patient,
        "patient/*.rs",
        Some("p1"),
        Some("Patient/p1"),
    );
    let batch = json!({"resourceType":"Bundle","type":"batch","entry":[
        {"request":{"method":"GET","url":"Observation/o2"}},
        {"request":{"method":"GET","url":"Observation"}},
        {"request":{"method":"GET","url":"Observation/o1"}}
    ]});
    let r = env.send(&me, "POST", "/fhir/default", Some(&batch)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let entries = r.json["entry"].as_array().expect("entries");
    assert!(
        entries[0]["response"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("404"))
    );
    assert_eq!(
        keys(&entries[1]["resource"]),
        set(&["Observation/o1", "Observation/o3"])
    );
    assert!(
        entries[2]["response"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("200"))
    );

    // A clinician launched for p1 with write scopes: writes stay inside p1's compartment, and
    // a transaction with one entry outside it leaves nothing behind.
    let ehr = env.token(
        "doc",
        Role::Clinician,
        "patient/Observation.cruds",
        Some("p1"),
        Some("Practitioner/pr1"),
    );
    let tx = json!({"resourceType":"Bundle","type":"transaction","entry":[
        {"fullUrl":"urn:uuid:11111111-1111-1111-1111-111111111111",
         "resource":observation("x", "p1", "laboratory", "pr1"),
         "request":{"method":"POST","url":"Observation"}},
        {"fullUrl":"urn:uuid:22222222-2222-2222-2222-222222222222",
         "resource":observation("y", "p2", "laboratory", "pr1"),
         "request":{"method":"POST","url":"Observation"}}
    ]});
    let r = env.send(&ehr, "POST", "/fhir/default", Some(&tx)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let svc = env.token("svc", Role::Service, "system/*.rs", None, None);
    let count = env
        .get(&svc, "/fhir/default/Observation?_summary=count")
        .await;
    assert_eq!(
        count.json["total"], 3,
        "the transaction left nothing behind"
    );

    let own = env
        .send(
            &ehr,
            "POST",
            "/fhir/default/Observation",
            Some(&observation("n", "p1", "laboratory", "pr1")),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.text);
    let foreign = env
        .send(
            &ehr,
            "PUT",
            "/fhir/default/Observation/o2",
            Some(&observation("o2", "p1", "laboratory", "pr1")),
        )
        .await;
    assert_eq!(
        foreign.status,
        StatusCode::FORBIDDEN,
        "another patient's record cannot be taken over"
    );
    let moved = env
        .send(
            &ehr,
            "PUT",
            "/fhir/default/Observation/o1",
            Some(&observation("o1", "p2", "laboratory", "pr1")),
        )
        .await;
    assert_eq!(
        moved.status,
        StatusCode::FORBIDDEN,
        "nor moved out of the compartment"
    );
    env.send(&ehr, "DELETE", "/fhir/default/Observation/o2", None)
        .await;
    assert_eq!(
        env.get(&svc, "/fhir/default/Observation/o2").await.status,
        StatusCode::OK,
        "o2 survives"
    );
}

#[tokio::test]
async fn audit_events_name_the_caller() {
    let env = start().await;
    let doc = env.token("dr-who", Role::Clinician, "user/*.rs", None, None);
    assert_eq!(
        env.get(&doc, "/fhir/default/Patient/p1").await.status,
        StatusCode::OK
    );
    env.app.get("/fhir/default/Patient/p2").await; // anonymous: 401, audited as well
    let admin = env.token("adm", Role::TenantAdmin, "user/AuditEvent.rs", None, None);
    let mut found = Value::Null;
    for _ in 0..100 {
        let r = env.get(&admin, "/fhir/default/AuditEvent?_count=100").await;
        let text = r.text.clone();
        if text.contains("dr-who") && text.contains("401") {
            found = r.json;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let text = found.to_string();
    assert!(
        text.contains("dr-who"),
        "the clinician's read is audited with who: {text}"
    );
    assert!(text.contains("test-app"), "and the client");
}

// ---- the authorisation matrix over HTTP ------------------------------------------------------

/// One resource per type in p1's and in p2's compartment (or shared), as seeded by `start`.
fn matrix_resource(ty: &str, id: &str, patient: &str) -> Value {
    match ty {
        "Patient" => json!({"resourceType":"Patient","id":id}),
        "Observation" => observation(id, patient, "laboratory", "pr1"),
        "Consent" => json!({"resourceType":"Consent","id":id,"status":"active",
            "scope":{"text":"research"},"category":[{"text":"consent"}],
            "patient":{"reference":format!("Patient/{patient}")}}),
        "Organization" => json!({"resourceType":"Organization","id":id,"name":"Ward"}),
        _ => json!({"resourceType":"ResearchStudy","id":id,"status":"active"}),
    }
}

/// What the policy says about `body` for this principal: may it be seen (or written)?
fn policy_allows(
    principal: &medicus_auth::Principal,
    interaction: medicus_auth::Interaction,
    ty: &str,
    body: Option<&Value>,
) -> bool {
    let access = medicus_auth::Access {
        tenant: "default",
        interaction,
        resource_type: Some(ty),
        resource: body,
    };
    match medicus_auth::decide(principal, &access) {
        medicus_auth::Decision::Allow { .. } => true,
        medicus_auth::Decision::AllowPatient { patient, .. } => body.is_none_or(|b| {
            let id = b["id"].as_str().unwrap_or("");
            medicus_store::index::body_in_patient_compartment(ty, id, b, &patient)
        }),
        medicus_auth::Decision::Deny { .. } => false,
    }
}

#[derive(Default)]
struct Tally {
    cases: usize,
    allowed: usize,
    leaks: Vec<String>,
    wrongly_denied: Vec<String>,
}

impl Tally {
    fn check(&mut self, case: String, expected: bool, granted: bool) {
        self.cases += 1;
        if expected {
            self.allowed += 1;
        }
        match (expected, granted) {
            (false, true) => self.leaks.push(case),
            (true, false) => self.wrongly_denied.push(case),
            _ => {}
        }
    }
}

/// Every role × own and foreign tenant × user, patient-context and system scopes × read (own
/// and another patient's record), search, create, update and delete × five types of every
/// category, over HTTP, against what the policy decides for the resource concerned. A leak is
/// data seen or changed that the policy denies; none may occur, and nothing the policy allows
/// may be refused.
#[tokio::test]
async fn authorisation_matrix_over_http() {
    let env = start().await;
    let svc = env.token("svc", Role::Service, "system/*.cruds", None, None);
    let types = [
        "Patient",
        "Observation",
        "Consent",
        "Organization",
        "ResearchStudy",
    ];
    for ty in types {
        for (id, patient) in [("m1", "p1"), ("m2", "p2")] {
            let id = if ty == "Patient" { patient } else { id };
            let r = env
                .send(
                    &svc,
                    "PUT",
                    &format!("/fhir/default/{ty}/{id}"),
                    Some(&matrix_resource(ty, id, patient)),
                )
                .await;
            assert!(r.status.is_success(), "{ty}/{id}: {}", r.text);
        }
    }
    let variants: [(&str, Option<&str>); 4] = [
        ("user/*.cruds", None),
        ("user/*.rs", None),
        ("patient/*.cruds", Some("p1")),
        ("system/*.cruds", None),
    ];
    let mut tally = Tally::default();
    let mut n = 0;
    for role in Role::ALL {
        let fhir_user = if role == Role::Patient {
            "Patient/p1"
        } else {
            "Practitioner/pr1"
        };
        for (scopes, patient) in variants {
            for tenant in ["default", "other"] {
                let token = env.token_for(tenant, "m", role, scopes, patient, Some(fhir_user));
                // Off the async thread: the PostgreSQL store blocks on a runtime of its own.
                let core = env.core.clone();
                let principal = env
                    .app
                    .with_store(|_| core.verify_access_token(&token))
                    .expect("verify");
                for ty in types {
                    let label = |what: &str| format!("{role} {scopes} {tenant} {what} {ty}");
                    // Reads: own record and another patient's.
                    for (id, owner) in [("m1", "p1"), ("m2", "p2")] {
                        let id = if ty == "Patient" { owner } else { id };
                        let body = matrix_resource(ty, id, owner);
                        let expected = policy_allows(
                            &principal,
                            medicus_auth::Interaction::Read,
                            ty,
                            Some(&body),
                        );
                        let r = env.get(&token, &format!("/fhir/default/{ty}/{id}")).await;
                        tally.check(
                            label(&format!("read {id}")),
                            expected,
                            r.status == StatusCode::OK,
                        );
                    }
                    // Search: exactly what the policy lets it see.
                    let r = env
                        .get(&token, &format!("/fhir/default/{ty}?_count=100"))
                        .await;
                    let seen = keys(&r.json);
                    let all: Vec<Value> = [("m1", "p1"), ("m2", "p2")]
                        .iter()
                        .map(|(id, owner)| {
                            let id = if ty == "Patient" { *owner } else { *id };
                            matrix_resource(ty, id, owner)
                        })
                        .collect();
                    for body in &all {
                        let key = format!("{ty}/{}", body["id"].as_str().unwrap_or(""));
                        let expected = policy_allows(
                            &principal,
                            medicus_auth::Interaction::Search,
                            ty,
                            Some(body),
                        );
                        tally.check(
                            label(&format!("search finds {key}")),
                            expected,
                            seen.contains(&key),
                        );
                    }
                    // Create in p1's compartment.
                    n += 1;
                    let new_id = format!("n{n}");
                    let body = matrix_resource(ty, &new_id, "p1");
                    let expected = policy_allows(
                        &principal,
                        medicus_auth::Interaction::Create,
                        ty,
                        Some(&body),
                    );
                    let r = env
                        .send(
                            &token,
                            "PUT",
                            &format!("/fhir/default/{ty}/{new_id}"),
                            Some(&body),
                        )
                        .await;
                    let created = env
                        .get(&svc, &format!("/fhir/default/{ty}/{new_id}"))
                        .await
                        .status
                        == StatusCode::OK;
                    tally.check(label("create"), expected, created);
                    if expected && r.status != StatusCode::CREATED {
                        tally.wrongly_denied.push(format!(
                            "{} (status {})",
                            label("create"),
                            r.status
                        ));
                    }
                    // Update p1's (own) and p2's record: a new version, or nothing.
                    for (id, owner) in [("m1", "p1"), ("m2", "p2")] {
                        let id = if ty == "Patient" { owner } else { id };
                        let before = env.get(&svc, &format!("/fhir/default/{ty}/{id}")).await;
                        let body = matrix_resource(ty, id, owner);
                        let expected = policy_allows(
                            &principal,
                            medicus_auth::Interaction::Update,
                            ty,
                            Some(&body),
                        );
                        env.send(
                            &token,
                            "PUT",
                            &format!("/fhir/default/{ty}/{id}"),
                            Some(&body),
                        )
                        .await;
                        let after = env.get(&svc, &format!("/fhir/default/{ty}/{id}")).await;
                        let changed =
                            before.json["meta"]["versionId"] != after.json["meta"]["versionId"];
                        tally.check(label(&format!("update {id}")), expected, changed);
                    }
                    // Delete a throwaway record of p1's, then of p2's.
                    for owner in ["p1", "p2"] {
                        if ty == "Patient" {
                            continue;
                        }
                        n += 1;
                        let id = format!("d{n}");
                        let body = matrix_resource(ty, &id, owner);
                        env.send(
                            &svc,
                            "PUT",
                            &format!("/fhir/default/{ty}/{id}"),
                            Some(&body),
                        )
                        .await;
                        let expected = policy_allows(
                            &principal,
                            medicus_auth::Interaction::Delete,
                            ty,
                            Some(&body),
                        );
                        env.send(&token, "DELETE", &format!("/fhir/default/{ty}/{id}"), None)
                            .await;
                        let gone = env
                            .get(&svc, &format!("/fhir/default/{ty}/{id}"))
                            .await
                            .status
                            == StatusCode::GONE;
                        tally.check(label(&format!("delete of {owner}'s")), expected, gone);
                    }
                }
            }
        }
    }
    println!(
        "authorisation matrix over HTTP: {} cases, {} allowed, {} denied, {} leaks, {} wrongly denied",
        tally.cases,
        tally.allowed,
        tally.cases - tally.allowed,
        tally.leaks.len(),
        tally.wrongly_denied.len()
    );
    assert!(tally.leaks.is_empty(), "leaks: {:#?}", tally.leaks);
    assert!(
        tally.wrongly_denied.is_empty(),
        "wrongly denied: {:#?}",
        tally.wrongly_denied
    );
    assert!(
        tally.allowed > 100 && tally.cases - tally.allowed > 100,
        "both outcomes are exercised"
    );
}
