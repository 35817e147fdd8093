//! An end-to-end SMART App Launch (standalone, `launch/patient`) against a real `medicus serve`,
//! driven over HTTP as a browser without JavaScript would: the app's authorize request, the
//! login form, the consent page (a clinician picks the patient in the picker, a patient user is
//! their own context), the redirect back to the app with the code, and the code exchange with
//! PKCE. The app then reads data with the access token through two third-party FHIR clients in
//! Python, `fhirpy` and `fhirclient` (`tests/fixtures/smart/read_with_token.py`), and must see
//! exactly its patient's compartment: the other patient's Observations are not found by any
//! search, reading the other patient is 404, the token is 403 at another tenant's base, and an
//! expired or garbled token is 401 — each as the client library reports it.
//!
//! The launch and the raw-HTTP checks always run. The Python part needs both clients
//! (`scripts/test-requirements.txt`, installed by `.ci/run`): outside CI it is skipped with a
//! note when they are missing; in CI (`CI=true`) that is a failure.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use common::browser::{Browser, Form, attr, jwt_claims, query_param};
use common::{Server, TestDir, create_tenant, database_of, medicus, medicus_command};
use medicus_auth::crypto::{b64url, b64url_decode, random_token, sha256};
use medicus_auth::tokens::TokenGrant;
use medicus_auth::{Auth, AuthConfig, ManualClock, Records, Role, ScopeSet, ServerKey};
use medicus_store::{PostgresOptions, PostgresStore, SqliteStore, Store};
use reqwest::Url;
use reqwest::blocking::Client;
use reqwest::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use serde_json::{Value, json};

/// The app's redirect URI. Nothing listens there: like a browser, the test only needs the
/// `Location` the authorization server sends it to.
const APP_REDIRECT: &str = "http://127.0.0.1:8765/cb";
const APP_SCOPES: &str = "openid fhirUser launch/patient patient/*.rs offline_access";
const CLIENT_ID: &str = "chart-app";
const CLINICIAN: (&str, &str) = ("dr.house", "clinician-password-1");
const PATIENT_USER: (&str, &str) = ("ann.alpha", "patient-password-1");
/// Seeded in `default`: the launch patient's Observations and the other patient's.
const P1_OBSERVATIONS: [&str; 3] = ["obs-p1-a", "obs-p1-b", "obs-p1-c"];
const P2_OBSERVATIONS: [&str; 2] = ["obs-p2-a", "obs-p2-b"];
const FHIR_CLIENTS: [&str; 2] = ["fhirpy", "fhirclient"];

struct World {
    dir: TestDir,
    server: Server,
    http: Client,
}

impl World {
    fn base(&self, tenant: &str) -> String {
        format!("{}/fhir/{tenant}", self.server.origin())
    }
}

fn run_ok(args: &[&str]) -> String {
    let out = medicus(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `medicus admin user create … --password-stdin`, the password written to its stdin.
fn create_user(dir: &TestDir, (login, password): (&str, &str), role: &str, fhir_user: &str) {
    let data = dir.data();
    let mut child = medicus_command()
        .args(["admin", "user", "create", "--data"])
        .arg(&data)
        .args(dir.database_args())
        .args(["--login", login, "--name", login, "--tenant", "default"])
        .args(["--role", role, "--fhir-user", fhir_user, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start medicus admin user create");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write the password");
    let out = child.wait_with_output().expect("medicus admin user create");
    assert!(
        out.status.success(),
        "user create {login}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn observation(id: &str, patient: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2024-05-01T10:00:00Z",
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    })
}

fn patient(id: &str, family: &str, given: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "name": [{"family": family, "given": [given]}],
        "birthDate": "1970-01-02",
    })
}

/// A server with tenants `default` and `other`, two patients with Observations in `default`
/// (and a Patient/p1 of its own in `other`), a clinician, a patient user linked to Patient/p1
/// and a public SMART app.
fn setup() -> World {
    let dir = TestDir::new();
    create_tenant(&dir, "other");
    let server = Server::start(&dir);

    let fhir = server.fhir();
    fhir.upsert(&patient("p1", "Alpha", "Ann"));
    fhir.upsert(&patient("p2", "Beta", "Ben"));
    fhir.upsert(&json!({
        "resourceType": "Practitioner",
        "id": "dr1",
        "name": [{"family": "House", "given": ["Greg"]}],
    }));
    for id in P1_OBSERVATIONS {
        fhir.upsert(&observation(id, "p1"));
    }
    for id in P2_OBSERVATIONS {
        fhir.upsert(&observation(id, "p2"));
    }
    // The same patient id in another hospital: a token of `default` must not reach it.
    let other = server.tenant("other");
    other.upsert(&patient("p1", "Alpha", "Other"));
    other.upsert(&observation("obs-other-p1", "p1"));

    create_user(&dir, CLINICIAN, "clinician", "Practitioner/dr1");
    create_user(&dir, PATIENT_USER, "patient", "Patient/p1");
    let data = dir.data();
    let data = data.to_str().expect("utf-8 path");
    let out = run_ok(&[
        "admin",
        "client",
        "create",
        "--data",
        data,
        "--tenant",
        "default",
        "--id",
        CLIENT_ID,
        "--name",
        "Chart app",
        "--kind",
        "public",
        "--redirect-uri",
        APP_REDIRECT,
        "--scopes",
        APP_SCOPES,
    ]);
    assert!(out.contains(CLIENT_ID), "{out}");
    assert!(
        !out.contains("client_secret"),
        "a public client has no secret: {out}"
    );

    World {
        dir,
        server,
        http: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
    }
}

// ---------------------------------------------------------------------------------------------
// The browser: a cookie jar for the one origin, no automatic redirects, plain HTML forms.

/// The values of the patient radio buttons of a consent page.
fn picker_choices(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<input type=\"radio\" name=\"patient\"") {
        let tag_end = rest[i..].find('>').map_or(rest.len(), |e| i + e + 1);
        out.extend(attr(&rest[i..tag_end], "value"));
        rest = &rest[tag_end..];
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// The launch.

/// How the user answers the consent page's patient question.
enum Choice<'a> {
    /// Search the picker by `name`, then tick `id`.
    Pick { name: &'a str, id: &'a str },
    /// A patient user: no picker, their own record.
    Own,
}

/// `POST /auth/token` with an authorization code, as the public app does.
fn redeem(world: &World, code: &str, verifier: &str) -> reqwest::blocking::Response {
    world
        .http
        .post(format!("{}/auth/token", world.server.origin()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", APP_REDIRECT),
            ("client_id", CLIENT_ID),
            ("code_verifier", verifier),
        ])
        .send()
        .expect("token request")
}

/// A completed standalone launch: the token response, and the code and PKCE verifier it was
/// redeemed with.
struct Launch {
    tokens: Value,
    code: String,
    verifier: String,
}

/// Runs a standalone launch from the app's authorize request to the token response.
fn launch(world: &World, user: (&str, &str), choice: Choice<'_>, state: &str) -> Launch {
    let origin = world.server.origin();
    let verifier = random_token().expect("random");
    let challenge = b64url(&sha256(verifier.as_bytes()));
    let authorize = Url::parse_with_params(
        &format!("{origin}/auth/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", APP_REDIRECT),
            ("scope", APP_SCOPES),
            ("state", state),
            ("aud", &world.base("default")),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .expect("authorize URL");

    let mut browser = Browser::new();
    let login = browser.get(authorize.as_str());
    assert_eq!(login.status, 200, "{}", login.text);
    assert!(
        browser
            .cookies(authorize.as_str())
            .contains_key("medicus-login"),
        "no login session cookie: {:?}",
        login.headers
    );
    let before_login = browser.cookies(authorize.as_str());
    let consent = browser.submit_where(
        &login,
        |f| f.action == "/auth/login",
        &[("login", user.0), ("password", user.1)],
    );
    assert_eq!(consent.status, 200, "{}", consent.text);
    assert!(consent.text.contains("Allow access?"), "{}", consent.text);
    assert!(consent.text.contains("Chart app"), "{}", consent.text);
    assert_ne!(
        browser.cookies(authorize.as_str()),
        before_login,
        "login must replace the session id"
    );
    let is_approve = |f: &Form| f.html.contains("value=\"approve\"");

    let approved = match choice {
        Choice::Pick { name, id } => {
            // The first page lists the tenant's patients; a search narrows it.
            assert_eq!(picker_choices(&consent.text), vec!["p1", "p2"]);
            let found = browser.submit_where(
                &consent,
                |f| f.fields.iter().any(|(k, v)| k == "action" && v == "search"),
                &[("name", name)],
            );
            assert_eq!(found.status, 200, "{}", found.text);
            assert_eq!(picker_choices(&found.text), vec![id.to_owned()]);
            browser.submit_where(
                &found,
                is_approve,
                &[("patient", id), ("action", "approve")],
            )
        }
        Choice::Own => {
            assert!(
                picker_choices(&consent.text).is_empty(),
                "a patient user gets no picker: {}",
                consent.text
            );
            browser.submit_where(&consent, is_approve, &[("action", "approve")])
        }
    };
    assert_eq!(approved.status, 303, "{}", approved.text);
    let to_app = approved.location().expect("redirect to the app");
    assert!(to_app.starts_with(&format!("{APP_REDIRECT}?")), "{to_app}");
    assert_eq!(query_param(&to_app, "error"), None, "{to_app}");
    assert_eq!(query_param(&to_app, "state").as_deref(), Some(state));
    let code = query_param(&to_app, "code").expect("code");

    let response = redeem(world, &code, &verifier);
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let tokens: Value = response.json().expect("token JSON");

    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    assert_eq!(tokens["patient"], "p1", "{tokens}");
    assert!(
        tokens["expires_in"].as_i64().is_some_and(|s| s > 0),
        "{tokens}"
    );
    assert!(
        tokens["refresh_token"].is_string(),
        "offline_access: {tokens}"
    );
    let granted: Vec<&str> = tokens["scope"]
        .as_str()
        .expect("scope")
        .split(' ')
        .collect();
    for scope in APP_SCOPES.split(' ') {
        assert!(granted.contains(&scope), "{scope} not granted: {tokens}");
    }
    Launch {
        tokens,
        code,
        verifier,
    }
}

/// The launch's `fhirUser` (id_token) and the access token's claims.
fn check_identity(world: &World, tokens: &Value, fhir_user: &str) {
    let id_token = jwt_claims(tokens["id_token"].as_str().expect("id_token with openid"));
    assert_eq!(
        id_token["fhirUser"],
        format!("{}/{fhir_user}", world.base("default")),
        "{id_token}"
    );
    assert_eq!(id_token["aud"], CLIENT_ID, "{id_token}");
    let access = jwt_claims(access_token(tokens));
    assert_eq!(access["tenant"], "default", "{access}");
    assert_eq!(access["patient"], "p1", "{access}");
    assert_eq!(access["fhirUser"], fhir_user, "{access}");
    assert_eq!(access["aud"], world.base("default"), "{access}");
}

fn access_token(tokens: &Value) -> &str {
    tokens["access_token"].as_str().expect("access_token")
}

// ---------------------------------------------------------------------------------------------
// Reading with the token: raw HTTP and the Python clients.

fn sorted_ids(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// The data the confinement checks rely on is really there: without it, "p2 is not visible"
/// would prove nothing.
fn check_seed_visible_to_service(world: &World) {
    let fhir = world.server.fhir();
    fhir.get("Patient/p2").expect(200);
    let all = fhir.search_ids("Observation?_count=2");
    let mut expected = sorted_ids(&P1_OBSERVATIONS);
    expected.extend(sorted_ids(&P2_OBSERVATIONS));
    expected.sort();
    assert_eq!(all, expected);
}

/// The token over plain HTTP: p1's compartment only.
fn check_confined_over_http(world: &World, token: &str) {
    let fhir = world
        .server
        .anonymous("default")
        .with_token(token.to_owned());
    fhir.get("Patient/p1").expect(200);
    let p2 = fhir.get("Patient/p2");
    assert_eq!(p2.status, 404, "{}", p2.text);
    assert_eq!(
        fhir.search_ids("Observation?_count=2"),
        sorted_ids(&P1_OBSERVATIONS)
    );
    assert_eq!(
        fhir.search_ids("Observation?subject=Patient/p2"),
        Vec::<String>::new()
    );
    for id in P2_OBSERVATIONS {
        assert_eq!(fhir.get(&format!("Observation/{id}")).status, 404, "{id}");
    }
    // Patient search: the compartment holds one Patient.
    assert_eq!(fhir.search_ids("Patient"), vec!["p1".to_owned()]);
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smart/read_with_token.py")
}

fn python(args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg(script())
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run python3")
}

/// Whether python3 with fhirpy and fhirclient is there; in CI their absence fails the test.
fn python_clients() -> bool {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    let available = AVAILABLE.get_or_init(|| {
        match Command::new("python3")
            .arg(script())
            .arg("available")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .output()
        {
            Err(e) => Err(format!("python3 does not run: {e}")),
            Ok(out) if !out.status.success() => Err(format!(
                "fhirpy or fhirclient does not import (pip install -r scripts/test-requirements.txt): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Ok(_) => Ok(()),
        }
    });
    match available {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the SMART launch test needs the Python FHIR clients: {why}"
            );
            eprintln!("skipping the third-party FHIR client part of the SMART launch test: {why}");
            false
        }
    }
}

fn python_json(args: &[&str]) -> Value {
    let out = python(args);
    assert!(
        out.status.success(),
        "{} {:?} failed: {}",
        script().display(),
        &args[..2],
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// What each client saw with the launch token: p1 and p1's Observations, nothing of p2.
fn check_confined_through_clients(world: &World, token: &str) {
    let base = world.base("default");
    for client in FHIR_CLIENTS {
        let seen = python_json(&["read", client, &base, token, "p1", "p2"]);
        assert_eq!(seen["client"], client);
        assert_eq!(seen["patient"], "p1", "{client}: {seen}");
        assert_eq!(
            seen["observations"],
            json!(sorted_ids(&P1_OBSERVATIONS)),
            "{client}: {seen}"
        );
        assert_eq!(
            seen["observations_of_other"],
            json!({"ok": []}),
            "{client}: {seen}"
        );
        let not_found = match client {
            "fhirpy" => "ResourceNotFound",
            _ => "FHIRNotFoundException",
        };
        assert_eq!(
            seen["other_patient"],
            json!({"error": not_found}),
            "{client}: {seen}"
        );
        if client == "fhirclient" {
            assert_eq!(seen["launch_patient"], "p1", "{seen}");
        }
    }
}

/// How each client sees reading Patient/p1 with `token` at `base`.
fn probe(base: &str, token: &str) -> Vec<Value> {
    FHIR_CLIENTS
        .iter()
        .map(|client| python_json(&["probe", client, base, token, "p1"]))
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn clinician_standalone_launch_picks_patient_and_fhir_clients_see_only_that_patient() {
    let world = setup();
    check_seed_visible_to_service(&world);
    let tokens = launch(
        &world,
        CLINICIAN,
        Choice::Pick {
            name: "Alpha",
            id: "p1",
        },
        "state-clinician-1",
    )
    .tokens;
    check_identity(&world, &tokens, "Practitioner/dr1");
    let roles = jwt_claims(access_token(&tokens))["roles"].clone();
    assert_eq!(roles, json!(["clinician"]));
    check_confined_over_http(&world, access_token(&tokens));
    if python_clients() {
        check_confined_through_clients(&world, access_token(&tokens));
    }
}

#[test]
fn patient_user_standalone_launch_and_fhir_clients_see_only_their_record() {
    let world = setup();
    check_seed_visible_to_service(&world);
    let tokens = launch(&world, PATIENT_USER, Choice::Own, "state-patient-1").tokens;
    check_identity(&world, &tokens, "Patient/p1");
    assert_eq!(
        jwt_claims(access_token(&tokens))["roles"],
        json!(["patient"])
    );
    check_confined_over_http(&world, access_token(&tokens));
    if python_clients() {
        check_confined_through_clients(&world, access_token(&tokens));
    }
}

/// An `Auth` over the server's store and server key whose clock stands at `clock`: it signs
/// with the server's own current key, so its tokens differ from the server's only in time.
fn auth_at(world: &World, clock: ManualClock) -> Auth {
    let data = world.dir.data();
    let store: Arc<dyn Store> = match database_of(&data) {
        Some(url) => {
            Arc::new(PostgresStore::connect(&url, PostgresOptions::default()).expect("pg"))
        }
        None => Arc::new(SqliteStore::open(&data).expect("sqlite")),
    };
    let key = std::fs::read_to_string(data.join("server.key")).expect("server key");
    let origin = world.server.origin();
    let records: Records = store;
    let auth = Auth::new(
        records,
        ServerKey::from_base64(&key).expect("server key"),
        AuthConfig::new(format!("{origin}/auth"), format!("{origin}/fhir")),
        Arc::new(clock),
    );
    auth.ensure_signing_key().expect("signing key");
    auth
}

fn now_s() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_secs()).expect("seconds")
}

#[test]
fn launch_token_is_refused_at_another_tenant_and_expired_or_garbled_tokens_are_401() {
    let world = setup();
    let launched = launch(&world, PATIENT_USER, Choice::Own, "state-negative-1");
    let token = access_token(&launched.tokens);
    let default = world.base("default");
    let other = world.base("other");

    // Another tenant's base, where a Patient/p1 exists too: 403.
    world.server.tenant("other").get("Patient/p1").expect(200);
    let foreign = world.server.anonymous("other").with_token(token.to_owned());
    for path in ["Patient/p1", "Observation", "Observation/obs-other-p1"] {
        let resp = foreign.get(path);
        assert_eq!(resp.status, 403, "{path}: {}", resp.text);
        assert!(!resp.text.contains("obs-other-p1"), "{}", resp.text);
    }

    // The same grant, expired an hour ago, signed with the server's key: 401 invalid_token.
    let claims = jwt_claims(token);
    let clock = ManualClock::new(now_s() - 7200);
    let auth = auth_at(&world, clock.clone());
    let grant = TokenGrant {
        subject: claims["sub"].as_str().expect("sub").to_owned(),
        tenant: "default".into(),
        roles: vec![Role::Patient],
        scopes: ScopeSet::parse("launch/patient patient/*.rs").expect("scopes"),
        patient: Some("p1".into()),
        fhir_user: Some("Patient/p1".into()),
        client_id: CLIENT_ID.into(),
        family: None,
    };
    let (expired, _) = auth.issue_access_token(&grant).expect("expired token");
    // The control: the same grant issued now is accepted, so only time refuses the other.
    clock.set(now_s());
    let (fresh, _) = auth.issue_access_token(&grant).expect("fresh token");

    // The launch token with its signature altered.
    let (signed, signature) = token.rsplit_once('.').expect("JWT");
    let mut bytes = b64url_decode(signature).expect("signature");
    bytes[0] ^= 0x01;
    let garbled = format!("{signed}.{}", b64url(&bytes));

    let http = |base: &str, token: &str| {
        world
            .server
            .anonymous("default")
            .with_token(token.to_owned())
            .get(&format!("{base}/Patient/p1"))
    };
    assert_eq!(http(&default, token).status, 200);
    assert_eq!(http(&default, &fresh).status, 200);
    for (what, bad) in [("expired", expired.as_str()), ("garbled", garbled.as_str())] {
        let resp = http(&default, bad);
        assert_eq!(resp.status, 401, "{what}: {}", resp.text);
        let challenge = resp
            .headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
    }

    let unauthorized = vec![
        json!({"error": "AuthorizationError"}),
        json!({"error": "FHIRUnauthorizedException"}),
    ];
    let clients = python_clients();
    if clients {
        assert_eq!(probe(&default, token), vec![json!({"ok": "p1"}); 2]);
        assert_eq!(probe(&default, &fresh), vec![json!({"ok": "p1"}); 2]);
        assert_eq!(
            probe(&other, token),
            vec![
                json!({"error": "ForbiddenError"}),
                json!({"error": "FHIRPermissionDeniedException"})
            ]
        );
        for bad in [&expired, &garbled] {
            assert_eq!(probe(&default, bad), unauthorized);
        }
    }

    // A replayed code is refused and revokes what the code gave (RFC 6749 §4.1.2): the app's
    // token stops working.
    let replay = redeem(&world, &launched.code, &launched.verifier);
    assert_eq!(replay.status().as_u16(), 400);
    let replay: Value = replay.json().expect("error JSON");
    assert_eq!(replay["error"], "invalid_grant", "{replay}");
    assert_eq!(http(&default, token).status, 401);
    if clients {
        assert_eq!(probe(&default, token), unauthorized);
    }
}
