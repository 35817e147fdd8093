//! The feasibility API on a real `medicus serve`: researchers get obfuscated counts of a
//! generated pilot, everyone else 401/403, bad CCDL a 400 with a pointer, too many queries a
//! 429, every query an AuditEvent, and a new write counts within a second.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, TestDir, database_of, medicus};
use medicus_audit::AuditEvent;
use medicus_audit::fhir::{EventFilter, search};
use medicus_auth::tokens::TokenGrant;
use medicus_auth::{Auth, AuthConfig, Records, Role, ScopeSet, ServerKey, SystemClock};
use medicus_store::{PostgresOptions, PostgresStore, SqliteStore, Store};
use reqwest::blocking::Client;
use serde_json::{Value, json};

const EVERYONE: &str = "gender:F,M,D,U";

fn open_store(dir: &TestDir) -> Arc<dyn Store> {
    let data = dir.data();
    match database_of(&data) {
        Some(url) => Arc::new(PostgresStore::connect(&url, PostgresOptions::default()).unwrap()),
        None => Arc::new(SqliteStore::open(&data).unwrap()),
    }
}

/// Issues user tokens the way the server's token endpoint does (same key, issuer and
/// audience), for roles `medicus admin token` does not mint.
struct Tokens {
    auth: Auth,
}

impl Tokens {
    fn new(dir: &TestDir, store: Arc<dyn Store>, server: &Server) -> Tokens {
        let key = ServerKey::from_base64(
            &std::fs::read_to_string(dir.data().join("server.key")).unwrap(),
        )
        .unwrap();
        let records: Records = store;
        let base = server.origin();
        let auth = Auth::new(
            records,
            key,
            AuthConfig::new(format!("{base}/auth"), format!("{base}/fhir")),
            Arc::new(SystemClock),
        );
        auth.ensure_signing_key().unwrap();
        Tokens { auth }
    }

    fn user(&self, subject: &str, tenant: &str, roles: &[Role], patient: Option<&str>) -> String {
        let scopes = if patient.is_some() {
            "patient/*.rs"
        } else {
            "user/*.rs"
        };
        let (token, _) = self
            .auth
            .issue_access_token(&TokenGrant {
                subject: subject.into(),
                tenant: tenant.into(),
                roles: roles.to_vec(),
                scopes: ScopeSet::parse(scopes).unwrap(),
                patient: patient.map(str::to_owned),
                fhir_user: None,
                client_id: "feasibility-test".into(),
                family: None,
            })
            .unwrap();
        token
    }
}

struct Api {
    client: Client,
    origin: String,
}

impl Api {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        ct: &str,
        body: &str,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.origin))
            .header("content-type", ct)
            .body(body.to_owned());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.json::<Value>().unwrap_or(Value::Null);
        (status, body, headers)
    }

    fn query(&self, token: &str, text: &str) -> Value {
        let (status, body, _) = self.post("/research/feasibility", Some(token), "text/plain", text);
        assert_eq!(status, 200, "{text}: {body}");
        body
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(format!("{}{path}", self.origin));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().unwrap_or(Value::Null))
    }
}

fn ccdl(context: &str, system: &str, code: &str) -> Value {
    json!({
        "version": "2",
        "inclusionCriteria": [[{
            "context": {"code": context, "system": "fdpg.mii.cds", "display": context},
            "termCodes": [{"code": code, "system": system, "display": code}]
        }]]
    })
}

#[test]
fn researchers_get_obfuscated_counts_others_are_refused_and_everything_is_audited() {
    let dir = TestDir::new();
    let pilot = dir.path().join("pilot");
    let out = medicus(&[
        "generate",
        "--patients",
        "150",
        "--resources-per-patient",
        "15",
        "--out",
        pilot.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = dir.data();
    let out = medicus(&[
        "import",
        "--data",
        data.to_str().unwrap(),
        pilot.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start(&dir);
    let store = open_store(&dir);
    let tokens = Tokens::new(&dir, store.clone(), &server);
    let api = Api {
        client: Client::new(),
        origin: server.origin(),
    };
    let researcher = tokens.user("rita", "default", &[Role::Researcher], None);

    // An obfuscated count: a multiple of 10, at least the threshold.
    let everyone = api.query(&researcher, EVERYONE);
    assert_eq!(everyone["result"], "count", "{everyone}");
    let n = everyone["count"].as_u64().unwrap();
    assert!(n >= 20 && n.is_multiple_of(10), "{everyone}");
    // Asked again (or equivalently, as CCDL JSON), the same number: the noise is cached.
    assert_eq!(api.query(&researcher, EVERYONE), everyone);
    // A code nobody has: too small, in both forms and under the tenant-named URL.
    assert_eq!(api.query(&researcher, "icd:U99.9")["result"], "too-small");
    let (status, body, _) = api.post(
        "/research/default/feasibility",
        Some(&researcher),
        "application/json",
        &ccdl(
            "Diagnose",
            "http://fhir.de/CodeSystem/bfarm/icd-10-gm",
            "U99.9",
        )
        .to_string(),
    );
    assert_eq!(
        (status, &body["result"]),
        (200, &json!("too-small")),
        "{body}"
    );

    // The catalogue: codes present, no counts.
    let (status, terms) = api.get("/research/feasibility/terms", Some(&researcher));
    assert_eq!(status, 200, "{terms}");
    let list = terms["terms"].as_array().unwrap();
    assert!(list.iter().any(|t| t["context"] == "Diagnose"), "{terms}");
    assert!(!terms.to_string().contains("count"), "{terms}");
    assert_eq!(
        api.get("/research/default/feasibility/terms", Some(&researcher))
            .0,
        200
    );

    // Who may not ask.
    let (status, _, headers) = api.post("/research/feasibility", None, "text/plain", EVERYONE);
    assert_eq!(status, 401);
    assert!(headers.get("www-authenticate").is_some());
    let (status, _, headers) = api.post(
        "/research/feasibility",
        Some("not-a-token"),
        "text/plain",
        EVERYONE,
    );
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(api.get("/research/feasibility/terms", None).0, 401);
    let clinician = tokens.user("carl", "default", &[Role::Clinician], None);
    let patient = tokens.user("pat", "default", &[Role::Patient], Some("p1"));
    let service = server.service_token("default");
    for (who, token) in [
        ("clinician", &clinician),
        ("patient", &patient),
        ("service", &service),
    ] {
        let (status, body, _) =
            api.post("/research/feasibility", Some(token), "text/plain", EVERYONE);
        assert_eq!(status, 403, "{who}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
        assert_eq!(
            api.get("/research/feasibility/terms", Some(token)).0,
            403,
            "{who}"
        );
    }
    // A researcher of another tenant, and a URL naming another tenant.
    common::create_tenant(&dir, "other");
    let foreign = tokens.user("otto", "other", &[Role::Researcher], None);
    let (status, body, _) = api.post(
        "/research/default/feasibility",
        Some(&foreign),
        "text/plain",
        EVERYONE,
    );
    assert_eq!(status, 403, "{body}");
    // In their own tenant the same researcher sees nothing of default's patients.
    let (status, body, _) = api.post(
        "/research/feasibility",
        Some(&foreign),
        "text/plain",
        EVERYONE,
    );
    assert_eq!(
        (status, &body["result"]),
        (200, &json!("too-small")),
        "{body}"
    );

    // Bad input: 400 with the pointer of the failing part, never a 500.
    let mut bad = ccdl(
        "Diagnose",
        "http://fhir.de/CodeSystem/bfarm/icd-10-gm",
        "E11",
    );
    bad["inclusionCriteria"][0][0]["context"]["code"] = json!("Nonsense");
    let (status, body, _) = api.post(
        "/research/feasibility",
        Some(&researcher),
        "application/json",
        &bad.to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["issue"][0]["expression"][0], "/inclusionCriteria/0/0/context/code",
        "{body}"
    );
    for (ct, text) in [
        ("application/json", "{not json"),
        ("application/json", "[1,2]"),
        (
            "application/json",
            r#"{"version":"2","inclusionCriteria":[[{"context":{"code":"Laboruntersuchung","system":"fdpg.mii.cds","display":"x"},"termCodes":[{"code":"4548-4","system":"http://loinc.org","display":"x"}],"valueFilter":{"type":"quantity-comparator","comparator":"gt"}}]]}"#,
        ),
        ("text/plain", "icd:"),
        ("text/plain", "(((("),
        ("text/plain", "loinc:4548-4>7.5[furlongs]"),
    ] {
        let (status, body, _) = api.post("/research/feasibility", Some(&researcher), ct, text);
        assert_eq!(status, 400, "{text}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome", "{text}");
    }
    let (status, _, _) = api.post("/research/feasibility", Some(&researcher), "image/png", "x");
    assert_eq!(status, 415);

    // A new write counts within a second: a diagnosis for every patient makes the unknown code
    // as frequent as everyone (the same true count, so the same cached noisy count).
    let ids: Vec<String> = std::fs::read_to_string(pilot.join("Patient.ndjson"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|p| p["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 150);
    let entries: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": format!("Patient/{id}")},
                    "code": {"coding": [{"system": "http://fhir.de/CodeSystem/bfarm/icd-10-gm", "code": "U99.9"}]}
                },
                "request": {"method": "POST", "url": "Condition"}
            })
        })
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    server.fhir().post("", &bundle).expect(200);
    let written = Instant::now();
    loop {
        let answer = api.query(&researcher, "icd:U99.9");
        if answer == everyone {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(1),
            "not counted within a second: {answer}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }

    // Every query is in the trail, with who and the outcome, and without the count.
    std::thread::sleep(Duration::from_millis(500));
    let trail = |chain: &str| -> Vec<AuditEvent> {
        let filter = EventFilter {
            entity: vec!["$feasibility".into()],
            ..EventFilter::default()
        };
        search(&*store, chain, &filter, 1000, None)
            .unwrap()
            .entries
            .iter()
            .map(|e| AuditEvent::decode(&e.record, e.at_us, e.subjects.clone()).unwrap())
            .collect()
    };
    let events = trail("default");
    let by = |user: &str, status: u16| {
        events
            .iter()
            .filter(|e| e.agent.user.as_deref() == Some(user) && e.status == status)
            .count()
    };
    assert!(by("rita", 200) >= 5, "{events:?}");
    assert!(by("rita", 400) >= 7, "{events:?}");
    assert_eq!(by("carl", 403), 1, "{events:?}");
    // Refusals are recorded in the tenant of the token (a URL may name any tenant).
    let other = trail("other");
    assert!(
        other
            .iter()
            .any(|e| e.agent.user.as_deref() == Some("otto") && e.status == 403)
    );
    assert!(
        other
            .iter()
            .any(|e| e.agent.user.as_deref() == Some("otto") && e.status == 200)
    );
    assert!(
        events
            .iter()
            .all(|e| e.tenant.as_deref() == Some("default"))
    );
    let rita = events
        .iter()
        .find(|e| e.agent.user.as_deref() == Some("rita") && e.status == 200)
        .unwrap();
    assert_eq!(rita.agent.roles, vec!["researcher".to_owned()]);
    let raw = serde_json::to_string(&events).unwrap();
    assert!(
        !raw.contains(&format!("\"count\":{n}")),
        "the trail must not hold counts"
    );
    assert!(
        !raw.contains("U99.9"),
        "the trail holds a digest, not the query"
    );

    // The rate limit: 999 queries per user and hour, refused ones included; then 429.
    let quick = tokens.user("quinn", "default", &[Role::Researcher], None);
    let mut limited = None;
    for i in 0..1100 {
        let (status, _, headers) = api.post(
            "/research/feasibility",
            Some(&quick),
            "text/plain",
            "icd:E11",
        );
        if status == 429 {
            limited = Some((i, headers));
            break;
        }
        assert_eq!(status, 200);
    }
    let (i, headers) = limited.expect("no 429 after 1100 queries");
    assert_eq!(i, 999);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 3600);
    // Another researcher is not affected.
    assert!(api.query(&researcher, "icd:E11")["result"].is_string());

    // Shutdown writes the snapshot; the next start loads it (no rebuild) and counts the same:
    // after the write above, the code and everyone have the same true count again.
    let mut server = server;
    assert!(server.signal_and_wait(libc::SIGTERM).success());
    let snapshot = medicus_cohort::snapshot_path(&dir.data());
    let saved = std::fs::metadata(&snapshot).unwrap().modified().unwrap();
    server.restart();
    let log = server.log();
    assert!(log.contains("cohort snapshot saved"), "{log}");
    assert!(!log.contains("snapshot unusable"), "{log}");
    let tokens = Tokens::new(&dir, store.clone(), &server);
    let api = Api {
        client: Client::new(),
        origin: server.origin(),
    };
    let researcher = tokens.user("rita", "default", &[Role::Researcher], None);
    let everyone = api.query(&researcher, EVERYONE);
    assert_eq!(everyone["result"], "count", "{everyone}");
    assert_eq!(api.query(&researcher, "icd:U99.9"), everyone);
    assert_eq!(
        std::fs::metadata(&snapshot).unwrap().modified().unwrap(),
        saved,
        "the restart must not have rewritten the snapshot yet"
    );
}
