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

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Server, TestDir, create_tenant, database_of, medicus};
use medicus_audit::AuditEvent;
use medicus_audit::fhir::{EventFilter, search};
use medicus_store::{PostgresOptions, PostgresStore, SqliteStore, Store};
use reqwest::blocking::Client;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
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

/// One answer, read completely.
struct Page {
    url: String,
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Page {
    fn location(&self) -> Option<String> {
        let loc = self.headers.get(LOCATION)?.to_str().ok()?;
        Some(resolve(&self.url, loc))
    }
}

/// `location` relative to `base` (absolute URLs and absolute paths are all the servers send).
fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    if location.starts_with('/') {
        format!("{}{location}", &base[..origin_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|i| *i >= origin_end)
            .unwrap_or(base.len());
        format!("{}/{location}", &base[..dir_end])
    }
}

fn origin_of(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    url[..end].to_owned()
}

/// A browser without JavaScript: a cookie jar per origin (name → value; paths are not needed
/// by these servers), no automatic redirects.
struct Browser {
    http: Client,
    jar: HashMap<String, HashMap<String, String>>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            jar: HashMap::new(),
        }
    }

    fn cookie_header(&self, url: &str) -> Option<String> {
        let cookies = self.jar.get(&origin_of(url))?;
        (!cookies.is_empty()).then(|| {
            cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn keep_cookies(&mut self, url: &str, headers: &HeaderMap) {
        let jar = self.jar.entry(origin_of(url)).or_default();
        for value in headers.get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let mut attrs = text.split(';');
            let Some((name, value)) = attrs.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let expired = attrs.any(|a| {
                let a = a.trim().to_ascii_lowercase();
                a == "max-age=0" || a.starts_with("expires=thu, 01 jan 1970")
            });
            if expired || value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn send(&mut self, request: reqwest::blocking::RequestBuilder, url: &str) -> Page {
        let request = match self.cookie_header(url) {
            Some(c) => request.header(reqwest::header::COOKIE, c),
            None => request,
        };
        let response = request.send().expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.keep_cookies(url, &headers);
        Page {
            url: url.to_owned(),
            status,
            headers,
            text: response.text().expect("body"),
        }
    }

    fn get(&mut self, url: &str) -> Page {
        let request = self.http.get(url);
        self.send(request, url)
    }

    fn post(&mut self, url: &str, form: &[(String, String)]) -> Page {
        let request = self.http.post(url).form(form);
        self.send(request, url)
    }

    /// Follows redirects until a page, or until the next URL starts with `stop` (returned
    /// unvisited as a 303 pointing there).
    fn follow(&mut self, mut page: Page, stop: &[&str]) -> Page {
        for _ in 0..20 {
            let Some(next) = page
                .location()
                .filter(|_| (300..400).contains(&page.status))
            else {
                return page;
            };
            if stop.iter().any(|s| next.starts_with(s)) {
                return page;
            }
            page = self.get(&next);
        }
        panic!("too many redirects");
    }

    /// Submits the form of `page` whose action contains `action`, with `fill` overriding or
    /// adding fields and `button` (name, value) as the pressed button.
    fn submit(
        &mut self,
        page: &Page,
        action: &str,
        fill: &[(&str, &str)],
        button: Option<(&str, &str)>,
    ) -> Page {
        let form = forms(&page.text)
            .into_iter()
            .find(|f| f.action.contains(action))
            .unwrap_or_else(|| panic!("no form {action} in:\n{}", page.text));
        let mut fields: Vec<(String, String)> = form
            .fields
            .into_iter()
            .filter(|(name, _)| !fill.iter().any(|(n, _)| n == name))
            .collect();
        fields.extend(fill.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        if let Some((n, v)) = button {
            fields.push((n.to_owned(), v.to_owned()));
        }
        let url = resolve(&page.url, &form.action);
        self.post(&url, &fields)
    }
}

struct Form {
    action: String,
    /// Hidden and text inputs, checked checkboxes and radios, in document order.
    fields: Vec<(String, String)>,
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';').filter(|e| *e < 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before = lower[..at].chars().last();
        if !before.is_some_and(char::is_whitespace) {
            continue;
        }
        let after = lower[at + name.len()..].trim_start();
        if !after.starts_with('=') {
            if after.starts_with(['>', '/'])
                || after.starts_with(char::is_whitespace)
                || after.is_empty()
            {
                return Some(String::new());
            }
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let value = tag[value_start..].trim_start();
        let (quote, body) = match value.chars().next() {
            Some(q @ ('"' | '\'')) => (q, &value[1..]),
            _ => {
                let end = value.find([' ', '>']).unwrap_or(value.len());
                return Some(unescape(&value[..end]));
            }
        };
        let end = body.find(quote)?;
        return Some(unescape(&body[..end]));
    }
    None
}

fn has_flag(tag: &str, name: &str) -> bool {
    attr(tag, name).is_some()
}

/// The forms of a page: just enough HTML for the pages of medicus and the provider.
fn forms(html: &str) -> Vec<Form> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let body = &rest[start..];
        let end = body.find("</form>").unwrap_or(body.len());
        let form = &body[..end];
        let open_end = form.find('>').unwrap_or(form.len());
        let action = attr(&form[..open_end], "action").unwrap_or_default();
        let mut fields = Vec::new();
        let mut tags = form;
        while let Some(i) = tags.find("<input") {
            let tag_end = tags[i..].find('>').map_or(tags.len(), |e| i + e + 1);
            let tag = &tags[i..tag_end];
            let kind = attr(tag, "type").unwrap_or_else(|| "text".into());
            if let Some(name) = attr(tag, "name") {
                let value = attr(tag, "value").unwrap_or_default();
                let take = match kind.as_str() {
                    "checkbox" | "radio" => has_flag(tag, "checked"),
                    "submit" | "button" => false,
                    _ => true,
                };
                if take {
                    fields.push((name, value));
                }
            }
            tags = &tags[tag_end..];
        }
        out.push(Form { action, fields });
        rest = &body[end..];
    }
    out
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').expect("a query");
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k == name => format!("{k}={value}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
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

fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT");
    let bytes = medicus_auth::crypto::b64url_decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
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
