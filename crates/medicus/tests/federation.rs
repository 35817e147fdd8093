//! Federated login against a real OpenID provider: the npm package `oidc-provider` (a certified
//! implementation) run by node from `tests/fixtures/oidc-provider` (`npm ci` there first;
//! `.ci/run` does). The test starts `medicus serve` and the provider, configures the provider
//! with `medicus admin idp add` (discovery, sealed client secret, claim → role map), then plays
//! the browser over HTTP with a cookie jar and no JavaScript: the SMART app's authorize request,
//! "Sign in with …", the provider's own login and consent forms, the callback, medicus's consent,
//! and the token request. The access token's roles must be the ones mapped from the provider's
//! groups. Attacks (forged state, another browser's state, a nonce the provider was tricked
//! into, an id_token for another audience, one signed by an unpublished key, a user without a
//! mapped role) are refused and audited.
//!
//! Outside CI the test is skipped with a note when node or the fixture's `node_modules` are
//! missing; in CI (`CI=true`) that is a failure.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::browser::{Browser, Page, jwt_claims, percent_encode, query_param, with_param};
use common::{Server, TestDir, create_tenant, database_of, medicus};
use medicus_audit::AuditEvent;
use medicus_audit::fhir::{EventFilter, search};
use medicus_store::{PostgresOptions, PostgresStore, SqliteStore, Store};
use reqwest::blocking::Client;
use serde_json::Value;

const APP_REDIRECT: &str = "https://app.example/cb";
const APP_SCOPES: &str = "openid fhirUser profile user/*.rs";
/// A PKCE verifier and its S256 challenge (RFC 7636 appendix B).
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc-provider")
}

/// Whether node and the installed fixture are there; in CI their absence fails the test.
fn provider_available() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let installed = fixture().join("node_modules/oidc-provider").is_dir();
    if node && installed {
        return true;
    }
    let why = if node {
        "run `npm ci` in crates/medicus/tests/fixtures/oidc-provider"
    } else {
        "node is not installed"
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the federated-login test needs the OpenID provider: {why}"
    );
    eprintln!("skipping the federated-login test: {why}");
    false
}

/// The node OpenID provider, stopped on drop.
struct Provider {
    child: Child,
    issuer: String,
}

impl Provider {
    fn start(redirect_uri: &str) -> Provider {
        let mut child = Command::new("node")
            .arg("server.js")
            .arg("0")
            .arg(redirect_uri)
            .current_dir(fixture())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(issuer) = line.strip_prefix("listening ") {
                    let _ = tx.send(issuer.trim().to_owned());
                }
            }
        });
        let issuer = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the OpenID provider did not start");
        Provider { child, issuer }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

struct World {
    dir: TestDir,
    server: Server,
    provider: Provider,
    http: Client,
}

impl World {
    fn origin(&self) -> String {
        self.server.origin()
    }

    fn authorize_url(&self, tenant: &str, state: &str) -> String {
        let enc = percent_encode;
        format!(
            "{}/auth/authorize?response_type=code&client_id=app-{tenant}&redirect_uri={}&scope={}&state={state}&code_challenge={CHALLENGE}&code_challenge_method=S256&aud={}",
            self.origin(),
            enc(APP_REDIRECT),
            enc(APP_SCOPES),
            enc(&format!("{}/fhir/{tenant}", self.origin())),
        )
    }

    /// From the app's authorize request to the redirect towards the provider (not followed).
    fn to_provider(&self, browser: &mut Browser, tenant: &str, state: &str) -> Page {
        let login = browser.get(&self.authorize_url(tenant, state));
        assert_eq!(login.status, 200, "{}", login.text);
        assert!(
            login.text.contains("Sign in with Hospital Keycloak"),
            "{}",
            login.text
        );
        let started = browser.submit(&login, "/auth/federation/start", &[], None);
        assert_eq!(started.status, 303, "{}", started.text);
        let location = started.location().expect("location");
        assert!(location.starts_with(&self.provider.issuer), "{location}");
        for p in ["state", "nonce", "code_challenge"] {
            assert!(
                query_param(&location, p).is_some_and(|v| v.len() >= 20),
                "{p}"
            );
        }
        assert_eq!(
            query_param(&location, "code_challenge_method").as_deref(),
            Some("S256")
        );
        started
    }

    /// Signs in at the provider (from its authorization URL) and returns the URL it sends the
    /// browser back to medicus with (not visited).
    fn at_provider(&self, browser: &mut Browser, authorize_url: &str, login: &str) -> String {
        let callback = format!("{}/auth/federation/callback", self.origin());
        let first = browser.get(authorize_url);
        let form = browser.follow(first, &[&callback]);
        assert_eq!(form.status, 200, "{}", form.text);
        let password = format!("{login}-password");
        let signed_in = browser.submit(
            &form,
            "/login",
            &[("login", login), ("password", &password)],
            None,
        );
        let next = browser.follow(signed_in, &[&callback]);
        let next = if next.status == 200 {
            // The provider's consent page.
            let confirmed = browser.submit(&next, "/confirm", &[], None);
            browser.follow(confirmed, &[&callback])
        } else {
            next
        };
        let back = next.location().expect("back to medicus");
        assert!(back.starts_with(&callback), "{back}");
        back
    }

    /// Exchanges the app's code for tokens.
    fn redeem(&self, tenant: &str, code: &str) -> Value {
        let response = self
            .http
            .post(format!("{}/auth/token", self.origin()))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", APP_REDIRECT),
                ("client_id", &format!("app-{tenant}")),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .expect("token request");
        assert_eq!(response.status().as_u16(), 200);
        response.json().expect("token JSON")
    }

    fn store(&self) -> Arc<dyn Store> {
        let data = self.dir.data();
        match database_of(&data) {
            Some(url) => {
                Arc::new(PostgresStore::connect(&url, PostgresOptions::default()).expect("pg"))
            }
            None => Arc::new(SqliteStore::open(&data).expect("sqlite")),
        }
    }

    /// The tenant's login events (newest first), waiting for the batching trail to write
    /// at least `at_least` of them.
    fn login_events(&self, chain: &str, at_least: usize) -> Vec<AuditEvent> {
        self.events(chain, &["login", "login-failure"], at_least)
    }

    fn events(&self, chain: &str, kinds: &[&str], at_least: usize) -> Vec<AuditEvent> {
        let store = self.store();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let filter = EventFilter {
                kind: kinds.iter().map(|k| k.to_string()).collect(),
                ..EventFilter::default()
            };
            let page = search(&*store, chain, &filter, 100, None).expect("audit search");
            let events: Vec<AuditEvent> = page
                .entries
                .iter()
                .map(|e| AuditEvent::decode(&e.record, e.at_us, e.subjects.clone()).expect("event"))
                .collect();
            if events.len() >= at_least || Instant::now() > deadline {
                return events;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn setup() -> Option<World> {
    if !provider_available() {
        return None;
    }
    let dir = TestDir::new();
    for tenant in ["clinic", "clinic-aud", "clinic-key"] {
        create_tenant(&dir, tenant);
    }
    let server = Server::start(&dir);
    let origin = server.origin();
    let provider = Provider::start(&format!("{origin}/auth/federation/callback"));
    let data = dir.data();
    let data = data.to_str().expect("path");
    let secret_file = dir.path().join("idp-secret");
    std::fs::write(&secret_file, "medicus-test-secret\n").expect("secret file");
    let secret_file = secret_file.to_str().expect("path");
    for (tenant, token_endpoint) in [
        ("clinic", None),
        ("clinic-aud", Some("/tamper/aud/token")),
        ("clinic-key", Some("/tamper/key/token")),
    ] {
        run_ok(&[
            "admin",
            "client",
            "create",
            "--data",
            data,
            "--tenant",
            tenant,
            "--id",
            &format!("app-{tenant}"),
            "--name",
            "Chart app",
            "--kind",
            "public",
            "--redirect-uri",
            APP_REDIRECT,
            "--scopes",
            APP_SCOPES,
        ]);
        let token_endpoint = token_endpoint.map(|p| format!("{}{p}", provider.issuer));
        let mut args = vec![
            "admin",
            "idp",
            "add",
            "--data",
            data,
            "--base-url",
            &origin,
            "--tenant",
            tenant,
            "--id",
            "hospital",
            "--name",
            "Hospital Keycloak",
            "--issuer",
            &provider.issuer,
            "--client-id",
            "medicus",
            "--client-secret-file",
            secret_file,
            "--role-claim",
            "groups",
            "--map",
            "doctors=clinician",
            "--map",
            "staff=researcher",
            "--fhir-user-claim",
            "fhir_user",
        ];
        if let Some(t) = &token_endpoint {
            args.extend(["--token-endpoint", t.as_str()]);
        }
        let out = run_ok(&args);
        assert!(
            out.contains(&format!("{origin}/auth/federation/callback")),
            "{out}"
        );
    }
    let listed = run_ok(&["admin", "idp", "list", "--data", data, "--tenant", "clinic"]);
    assert!(
        listed.contains("hospital") && listed.contains("doctors=clinician"),
        "{listed}"
    );
    assert!(!listed.contains("medicus-test-secret"));
    Some(World {
        dir,
        server,
        provider,
        http: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
    })
}

#[test]
fn federated_login_against_oidc_provider() {
    let Some(world) = setup() else { return };

    // The whole flow, as a browser.
    let mut browser = Browser::new();
    let to_provider = world.to_provider(&mut browser, "clinic", "app-state-1");
    let authorize = to_provider.location().expect("location");
    let back = world.at_provider(&mut browser, &authorize, "anna");
    let consent = browser.get(&back);
    assert_eq!(consent.status, 200, "{}", consent.text);
    assert!(consent.text.contains("Dr Anna Example"), "{}", consent.text);
    // A replayed callback finds no state.
    let mut replay = Browser::new();
    replay.jar = browser.jar.clone();
    assert_eq!(replay.get(&back).status, 400);

    let approved = browser.submit(&consent, "/auth/consent", &[], Some(("action", "approve")));
    assert_eq!(approved.status, 303, "{}", approved.text);
    let to_app = approved.location().expect("redirect to the app");
    assert!(to_app.starts_with(APP_REDIRECT), "{to_app}");
    assert_eq!(
        query_param(&to_app, "state").as_deref(),
        Some("app-state-1")
    );
    let code = query_param(&to_app, "code").expect("code");
    let tokens = world.redeem("clinic", &code);
    let claims = jwt_claims(tokens["access_token"].as_str().expect("access token"));
    let mut roles: Vec<&str> = claims["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    roles.sort_unstable();
    assert_eq!(roles, vec!["clinician", "researcher"], "{claims}");
    assert_eq!(claims["tenant"], "clinic");
    assert_eq!(claims["fhirUser"], "Practitioner/pr-anna");
    let id_token = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(id_token["preferred_username"], "anna@hospital.clinic");

    // A second login links to the same user.
    let mut again = Browser::new();
    let to_provider = world.to_provider(&mut again, "clinic", "app-state-2");
    let back = world.at_provider(&mut again, &to_provider.location().expect("loc"), "anna");
    let consent = again.get(&back);
    assert_eq!(consent.status, 200, "{}", consent.text);
    let approved = again.submit(&consent, "/auth/consent", &[], Some(("action", "approve")));
    let code = query_param(&approved.location().expect("loc"), "code").expect("code");
    let second = jwt_claims(
        world.redeem("clinic", &code)["access_token"]
            .as_str()
            .expect("at"),
    );
    assert_eq!(second["sub"], claims["sub"]);

    let events = world.login_events("clinic", 2);
    let successes: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| e.outcome_desc.as_deref() == Some("identity provider hospital"))
        .collect();
    assert_eq!(successes.len(), 2, "{events:?}");
    assert!(
        successes
            .iter()
            .all(|e| e.agent.user.as_deref() == claims["sub"].as_str())
    );
    assert!(
        successes
            .iter()
            .all(|e| e.address.as_deref() == Some("127.0.0.1"))
    );
    // Configuring the provider was an audited admin change (without the secret).
    let changes = world.events("clinic", &["admin-change"], 1);
    assert!(
        changes.iter().any(|e| e
            .outcome_desc
            .as_deref()
            .is_some_and(|d| d.starts_with("identity provider hospital set"))),
        "{changes:?}"
    );
    assert!(!format!("{changes:?}").contains("medicus-test-secret"));
    // The replayed callback was recorded on the platform chain (its state named no tenant).
    let platform = world.login_events("_platform", 1);
    assert!(
        platform.iter().any(|e| e.outcome_desc.as_deref()
            == Some("identity provider: unknown or expired login state")),
        "{platform:?}"
    );
}

#[test]
fn federated_login_attacks_are_refused_and_audited() {
    let Some(world) = setup() else { return };
    let refused = |page: &Page| {
        assert!(
            page.status == 400 || page.status == 403,
            "{} {}",
            page.status,
            page.text
        );
        assert!(!page.text.contains("Allow access?"), "{}", page.text);
    };

    // A forged state.
    let mut b = Browser::new();
    let to_provider = world.to_provider(&mut b, "clinic", "s1");
    let back = world.at_provider(&mut b, &to_provider.location().expect("loc"), "anna");
    refused(&b.get(&with_param(&back, "state", "forged-state-value-0123456789")));

    // Another browser's callback (login CSRF): the victim has a login session of their own.
    let mut attacker = Browser::new();
    let to_provider = world.to_provider(&mut attacker, "clinic", "s2");
    let attackers_back =
        world.at_provider(&mut attacker, &to_provider.location().expect("loc"), "anna");
    let mut victim = Browser::new();
    world.to_provider(&mut victim, "clinic", "s3");
    refused(&victim.get(&attackers_back));

    // The provider was given another nonce than medicus stored (a swapped authorization URL).
    let mut b = Browser::new();
    let to_provider = world.to_provider(&mut b, "clinic", "s4");
    let forged = with_param(
        &to_provider.location().expect("loc"),
        "nonce",
        "attacker-nonce",
    );
    let back = world.at_provider(&mut b, &forged, "anna");
    refused(&b.get(&back));

    // An id_token for another audience, and one signed with a key the provider never published.
    for tenant in ["clinic-aud", "clinic-key"] {
        let mut b = Browser::new();
        let to_provider = world.to_provider(&mut b, tenant, "s5");
        let back = world.at_provider(&mut b, &to_provider.location().expect("loc"), "anna");
        refused(&b.get(&back));
    }

    // A provider user whose groups map to no medicus role.
    let mut b = Browser::new();
    let to_provider = world.to_provider(&mut b, "clinic", "s6");
    let back = world.at_provider(&mut b, &to_provider.location().expect("loc"), "bob");
    let page = b.get(&back);
    refused(&page);

    let reasons = |chain: &str, n: usize| -> Vec<String> {
        world
            .login_events(chain, n)
            .into_iter()
            .filter(|e| e.kind == medicus_audit::Kind::LoginFailure)
            .filter_map(|e| e.outcome_desc)
            .collect()
    };
    let clinic = reasons("clinic", 3);
    for expected in [
        "identity provider hospital: login state of another browser session",
        "identity provider hospital: id_token nonce mismatch",
        "identity provider hospital: no medicus role for this user",
    ] {
        assert!(
            clinic.iter().any(|r| r == expected),
            "{expected}: {clinic:?}"
        );
    }
    assert!(
        reasons("clinic-aud", 1)
            .iter()
            .any(|r| r == "identity provider hospital: id_token for another client")
    );
    assert!(
        reasons("clinic-key", 1)
            .iter()
            .any(|r| r == "identity provider hospital: id_token signature does not verify")
    );
    assert!(
        reasons("_platform", 1)
            .iter()
            .any(|r| r == "identity provider: unknown or expired login state")
    );
    // No successful login happened in any of these.
    for chain in ["clinic", "clinic-aud", "clinic-key"] {
        assert!(
            world
                .login_events(chain, 0)
                .iter()
                .all(|e| e.kind != medicus_audit::Kind::Login),
            "{chain}"
        );
    }
}
