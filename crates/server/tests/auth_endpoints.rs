//! The authorisation server over real HTTP: the server listens on a socket and a reqwest
//! client without a cookie store plays the browser (cookies and CSRF tokens carried by hand)
//! and the apps. Runs on SQLite and, with `MEDICUS_TEST_DATABASE`, on PostgreSQL.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::TestApp;
use medicus_auth::clients::{NewClient, NewClientKind};
use medicus_auth::crypto::random_id;
use medicus_auth::grants::pkce_challenge;
use medicus_auth::jws::{Alg, Jwks, SigningKey};
use medicus_auth::password::PasswordCost;
use medicus_auth::users::{Membership, NewUser};
use medicus_auth::{Auth, AuthConfig, Records, Role, ServerKey, SystemClock};
use medicus_server::ServerConfig;
use medicus_server::auth::{AuthState, JwksFetchConfig, WebAuthConfig, http_jwks_fetcher};
use reqwest::StatusCode;
use serde_json::{Value, json};

const BASE: &str = "http://test.local";
const REDIRECT: &str = "https://app.example/cb";
const PASSWORD: &str = "correct horse battery staple";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk0123456789";
const APP_SCOPES: &str = "openid fhirUser profile launch/patient patient/*.rs offline_access";
const APP_NAME: &str = "<script>alert('app')</script> Charts";

struct Env {
    /// Shared with the server task, so the store (and its scratch database) goes last.
    app: Arc<TestApp>,
    core: Arc<Auth>,
    url: String,
    http: reqwest::Client,
    svc_key: SigningKey,
    /// Signs the assertions of `svc-uri`, whose key is published at its jwks_uri.
    uri_key: SigningKey,
    _jwks_server: Option<tokio::task::JoinHandle<()>>,
}

/// Serves `router` until the runtime ends. `keep` lives as long as the server: the test's
/// store must outlive the server's state, whose audit trail flushes into it when dropped.
async fn serve(
    router: axum::Router,
    keep: impl Send + 'static,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _keep = keep;
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    (addr, task)
}

async fn start(login_limit: u32) -> Env {
    start_with(login_limit, &[]).await
}

/// `trusted_proxies`: CIDR ranges whose `X-Forwarded-For` the server believes.
async fn start_with(login_limit: u32, trusted_proxies: &[&str]) -> Env {
    let trusted_proxies = medicus_server::auth::parse_trusted(
        &trusted_proxies
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    )
    .expect("trusted proxies");
    let mut slot = None;
    let config = ServerConfig {
        base_url: Some(BASE.into()),
        ..ServerConfig::default()
    };
    let app = TestApp::with_state(config, |state| {
        let records: Records = state.store.clone();
        let mut cfg = AuthConfig::new(format!("{BASE}/auth"), format!("{BASE}/fhir"));
        cfg.password_cost = PasswordCost::TEST;
        let core = Arc::new(
            Auth::new(
                records,
                ServerKey::generate().expect("key"),
                cfg,
                Arc::new(SystemClock),
            )
            .with_jwks_fetcher(http_jwks_fetcher(JwksFetchConfig::default())),
        );
        slot = Some(core.clone());
        state.with_auth(AuthState::new(
            core,
            WebAuthConfig {
                login_attempts_per_minute: login_limit,
                trusted_proxies,
                ..WebAuthConfig::default()
            },
        ))
    });
    let core = slot.expect("auth built");
    app.put_all(&[
        json!({"resourceType":"Patient","id":"p1","name":[{"given":["Ann"],"family":"Smith"}],"birthDate":"1970-01-02"}),
        json!({"resourceType":"Patient","id":"p2","name":[{"given":["Bob"],"family":"Jones"}]}),
    ])
    .await;

    // A client whose keys are published at a jwks_uri, served by a second listener.
    let (uri_key, _) = SigningKey::generate_ec("uri-1", Alg::ES384).expect("ec key");
    let published = Jwks {
        keys: vec![uri_key.public_jwk().clone()],
    };
    let jwks_router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let body = serde_json::to_value(&published).expect("jwks");
            async move { axum::Json(body) }
        }),
    );
    let (jwks_addr, jwks_task) = serve(jwks_router, ()).await;

    let (svc_key, _) = SigningKey::generate_ec("svc-1", Alg::ES384).expect("ec key");
    let svc_jwks = Jwks {
        keys: vec![svc_key.public_jwk().clone()],
    };
    let setup = core.clone();
    app.with_store(move |_| {
        setup.ensure_signing_key().expect("signing key");
        let user = |login: &str, name: &str, role: Role, fhir_user: &str| {
            setup
                .create_user(NewUser {
                    login: login.into(),
                    display_name: name.into(),
                    password: Some(PASSWORD.into()),
                    memberships: vec![Membership {
                        tenant: "default".into(),
                        roles: vec![role],
                        fhir_user: Some(fhir_user.into()),
                    }],
                })
                .expect("user");
        };
        user("alice", "Dr. Alice", Role::Clinician, "Practitioner/pr1");
        user(
            "mallory",
            "<script>alert('user')</script>",
            Role::Clinician,
            "Practitioner/pr2",
        );
        user("pat", "Ann Smith", Role::Patient, "Patient/p1");
        let client = |id: &str, name: &str, kind: NewClientKind, scopes: &str| {
            setup
                .register_client(NewClient {
                    client_id: Some(id.into()),
                    tenant: "default".into(),
                    name: name.into(),
                    kind,
                    redirect_uris: vec![REDIRECT.into()],
                    scopes: scopes.into(),
                })
                .expect("client");
        };
        client("app", APP_NAME, NewClientKind::Public, APP_SCOPES);
        client("app2", "Other app", NewClientKind::Public, APP_SCOPES);
        client(
            "svc",
            "Service",
            NewClientKind::PrivateKeyJwt {
                jwks: Some(svc_jwks),
                jwks_uri: None,
            },
            "system/*.rs",
        );
        client(
            "svc-uri",
            "Service by URI",
            NewClientKind::PrivateKeyJwt {
                jwks: None,
                jwks_uri: Some(format!("http://{jwks_addr}/jwks.json")),
            },
            "system/*.rs",
        );
    });
    let app = Arc::new(app);
    let (addr, _task) = serve(app.router.clone(), app.clone()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Env {
        app,
        core,
        url: format!("http://{addr}"),
        http,
        svc_key,
        uri_key,
        _jwks_server: Some(jwks_task),
    }
}

/// A browser step's answer, read completely.
struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Page {
    async fn read(response: reqwest::Response) -> Page {
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.expect("body"),
        }
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// `name=value` of the session cookie set by this answer.
    fn cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("medicus-login="))
            .map(|c| c.split(';').next().unwrap_or("").to_owned())
    }
    fn set_cookie(&self) -> String {
        self.header("set-cookie").unwrap_or("").to_owned()
    }
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let at = self.text.find(marker).expect("a form with a CSRF token") + marker.len();
        self.text[at..].split('"').next().expect("token").to_owned()
    }
    fn location(&self) -> String {
        self.header("location").expect("a redirect").to_owned()
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).expect("url");
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

impl Env {
    fn authorize_url(&self, overrides: &[(&str, &str)]) -> String {
        let challenge = pkce_challenge(VERIFIER);
        let aud = format!("{BASE}/fhir/default");
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", "app"),
            ("redirect_uri", REDIRECT),
            ("scope", APP_SCOPES),
            ("state", "st-123"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("aud", &aud),
            ("nonce", "n-1"),
        ];
        for (k, v) in overrides {
            params.retain(|(n, _)| n != k);
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        reqwest::Url::parse_with_params(&format!("{}/auth/authorize", self.url), &params)
            .expect("url")
            .to_string()
    }

    async fn get(&self, url: &str, bearer: Option<&str>) -> Page {
        let mut req = self.http.get(url);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        Page::read(req.send().await.expect("GET")).await
    }

    async fn post_form(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Page {
        let mut req = self.http.post(format!("{}{path}", self.url)).form(form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        Page::read(req.send().await.expect("POST")).await
    }

    /// GET authorize → the login page's cookie and CSRF token.
    async fn start_login(&self) -> (String, String, Page) {
        let page = self.get(&self.authorize_url(&[]), None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        (page.cookie().expect("session cookie"), page.csrf(), page)
    }

    /// Login as `login` → the consent page's cookie and CSRF token.
    async fn login(&self, login: &str) -> (String, String, Page) {
        let (cookie, csrf, _) = self.start_login().await;
        let page = self
            .post_form(
                "/auth/login",
                Some(&cookie),
                &[("csrf", &csrf), ("login", login), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        (page.cookie().expect("rotated session"), page.csrf(), page)
    }

    /// The whole browser part for alice choosing p1: returns the code.
    async fn code(&self) -> String {
        let (cookie, csrf, _) = self.login("alice").await;
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("action", "approve"),
            ("patient", "p1"),
        ];
        form.extend(APP_SCOPES.split(' ').map(|s| ("scope", s)));
        let page = self.post_form("/auth/consent", Some(&cookie), &form).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
        query_param(&page.location(), "code").expect("code")
    }

    async fn redeem(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Page {
        self.post_form(
            "/auth/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("client_id", client_id),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    async fn refresh(&self, token: &str) -> Page {
        self.post_form(
            "/auth/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", "app"),
            ],
        )
        .await
    }

    fn assertion(&self, key: &SigningKey, client_id: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        key.sign(
            None,
            &json!({
                "iss": client_id, "sub": client_id, "aud": format!("{BASE}/auth/token"),
                "exp": now + 60, "iat": now, "jti": random_id().expect("jti"),
            }),
        )
        .expect("assertion")
    }

    /// Introspection by the confidential service client.
    async fn introspect(&self, token: &str) -> Value {
        let assertion = self.assertion(&self.svc_key, "svc");
        let page = self
            .post_form(
                "/auth/introspect",
                None,
                &[
                    ("token", token),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        page.json()
    }
}

fn assert_oauth_error(page: &Page, status: StatusCode, error: &str) {
    assert_eq!(page.status, status, "{}", page.text);
    assert_eq!(page.json()["error"], error, "{}", page.text);
    assert_eq!(page.header("cache-control"), Some("no-store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_flow_as_a_browser() {
    let env = start(50).await;

    // Authorize: the login page, a session cookie, a CSRF token, the client name escaped.
    let (cookie, csrf, page) = env.start_login().await;
    let set = page.set_cookie();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http base URL: {set}");
    assert!(!page.text.contains("<script>"), "{}", page.text);
    assert!(page.text.contains("&lt;script&gt;alert(&#39;app&#39;)"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(page.header("content-security-policy").is_some());

    // Login: the consent page under a new session id (the old one is gone), with the picker.
    let login = env
        .post_form(
            "/auth/login",
            Some(&cookie),
            &[("csrf", &csrf), ("login", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let cookie2 = login.cookie().expect("rotated cookie");
    let csrf2 = login.csrf();
    assert_ne!(cookie2, cookie);
    assert_ne!(csrf2, csrf);
    assert!(login.text.contains("Dr. Alice"));
    assert!(login.text.contains("patient/*.rs"));
    assert!(login.text.contains("Ann Smith, born 1970-01-02 (p1)"));
    assert!(login.text.contains("Bob Jones (p2)"));
    let stale = env
        .post_form(
            "/auth/consent",
            Some(&cookie),
            &[("csrf", &csrf2), ("action", "approve"), ("scope", "openid")],
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::BAD_REQUEST,
        "pre-login session id"
    );

    // The patient picker searches by name.
    let search = env
        .post_form(
            "/auth/consent",
            Some(&cookie2),
            &[("csrf", &csrf2), ("action", "search"), ("name", "smith")],
        )
        .await;
    assert_eq!(search.status, StatusCode::OK, "{}", search.text);
    assert!(search.text.contains("(p1)") && !search.text.contains("(p2)"));

    // A patient that does not exist is refused.
    let mut form = vec![
        ("csrf", csrf2.as_str()),
        ("action", "approve"),
        ("patient", "nope"),
    ];
    form.extend(APP_SCOPES.split(' ').map(|s| ("scope", s)));
    let bad = env.post_form("/auth/consent", Some(&cookie2), &form).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Approve (without offline_access): redirect to the app with code and state.
    let mut form = vec![
        ("csrf", csrf2.as_str()),
        ("action", "approve"),
        ("patient", "p1"),
    ];
    form.extend(
        APP_SCOPES
            .split(' ')
            .filter(|s| *s != "profile")
            .map(|s| ("scope", s)),
    );
    let consent = env.post_form("/auth/consent", Some(&cookie2), &form).await;
    assert_eq!(consent.status, StatusCode::SEE_OTHER, "{}", consent.text);
    let location = consent.location();
    assert!(
        location.starts_with(&format!("{REDIRECT}?code=")),
        "{location}"
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    assert!(consent.set_cookie().contains("Max-Age=0"));
    let code = query_param(&location, "code").expect("code");
    // The consent form cannot be submitted twice.
    let again = env.post_form("/auth/consent", Some(&cookie2), &form).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);

    // Token.
    let token = env.redeem(&code, "app", REDIRECT, VERIFIER).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    assert_eq!(token.header("cache-control"), Some("no-store"));
    let t = token.json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["patient"], "p1");
    assert!(t["id_token"].is_string());
    let scope = t["scope"].as_str().expect("scope");
    assert!(
        scope.contains("patient/*.rs") && !scope.contains("profile"),
        "{scope}"
    );
    let access = t["access_token"].as_str().expect("access").to_owned();
    let refresh = t["refresh_token"].as_str().expect("refresh").to_owned();

    // Userinfo (no `profile` granted: no name).
    let info = env
        .get(&format!("{}/auth/userinfo", env.url), Some(&access))
        .await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text);
    let info = info.json();
    assert_eq!(
        info["fhirUser"],
        format!("{BASE}/fhir/default/Practitioner/pr1")
    );
    assert!(info.get("name").is_none());
    let anonymous = env.get(&format!("{}/auth/userinfo", env.url), None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous.header("www-authenticate").is_some());

    // Refresh: rotation.
    let refreshed = env.refresh(&refresh).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    let r = refreshed.json();
    let refresh2 = r["refresh_token"].as_str().expect("rotated").to_owned();
    let access2 = r["access_token"].as_str().expect("access").to_owned();
    assert_ne!(refresh2, refresh);

    // Introspection by a confidential client of the tenant; a public one may not.
    let active = env.introspect(&access2).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["patient"], "p1");
    assert_eq!(active["client_id"], "app");
    assert_eq!(env.introspect(&refresh2).await["active"], true);
    let by_public = env
        .post_form(
            "/auth/introspect",
            None,
            &[("token", &access2), ("client_id", "app")],
        )
        .await;
    assert_oauth_error(&by_public, StatusCode::UNAUTHORIZED, "invalid_client");

    // Revocation: the access token by jti, the refresh token with its family.
    let revoked = env
        .post_form(
            "/auth/revoke",
            None,
            &[("token", &access2), ("client_id", "app")],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(env.introspect(&access2).await["active"], false);
    let info = env
        .get(&format!("{}/auth/userinfo", env.url), Some(&access2))
        .await;
    assert_eq!(info.status, StatusCode::UNAUTHORIZED);
    let revoked = env
        .post_form(
            "/auth/revoke",
            None,
            &[("token", &refresh2), ("client_id", "app")],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(env.introspect(&refresh2).await["active"], false);
    assert_oauth_error(
        &env.refresh(&refresh2).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_user_is_their_own_context_and_deny_redirects() {
    let env = start(50).await;
    let (cookie, csrf, page) = env.login("pat").await;
    assert!(
        !page.text.contains("name=\"patient\""),
        "no picker for a patient"
    );
    let mut form = vec![("csrf", csrf.as_str()), ("action", "approve")];
    form.extend(APP_SCOPES.split(' ').map(|s| ("scope", s)));
    let consent = env.post_form("/auth/consent", Some(&cookie), &form).await;
    assert_eq!(consent.status, StatusCode::SEE_OTHER, "{}", consent.text);
    let code = query_param(&consent.location(), "code").expect("code");
    let token = env.redeem(&code, "app", REDIRECT, VERIFIER).await;
    assert_eq!(token.json()["patient"], "p1", "{}", token.text);

    let (cookie, csrf, _) = env.login("alice").await;
    let deny = env
        .post_form(
            "/auth/consent",
            Some(&cookie),
            &[("csrf", &csrf), ("action", "deny")],
        )
        .await;
    assert_eq!(deny.status, StatusCode::SEE_OTHER);
    let location = deny.location();
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    assert_eq!(query_param(&location, "code"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_names_are_escaped() {
    let env = start(50).await;
    let (_, _, page) = env.login("mallory").await;
    assert!(!page.text.contains("<script>"), "{}", page.text);
    assert!(
        page.text
            .contains("&lt;script&gt;alert(&#39;user&#39;)&lt;/script&gt;")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_attacks_at_the_endpoints() {
    let env = start(50).await;

    // Reused authorization code: refused, and what the first redemption got is revoked.
    let code = env.code().await;
    let first = env.redeem(&code, "app", REDIRECT, VERIFIER).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let access = first.json()["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let refresh = first.json()["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    assert_oauth_error(
        &env.redeem(&code, "app", REDIRECT, VERIFIER).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    assert_eq!(env.introspect(&access).await["active"], false);
    assert_oauth_error(
        &env.refresh(&refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );

    // PKCE plain (and none) is refused at authorize, back to the app.
    for overrides in [
        vec![
            ("code_challenge_method", "plain"),
            ("code_challenge", VERIFIER),
        ],
        vec![("code_challenge_method", ""), ("code_challenge", "")],
    ] {
        let page = env.get(&env.authorize_url(&overrides), None).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
        let location = page.location();
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some("invalid_request")
        );
        assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    }
    // A wrong verifier at the token endpoint.
    let code = env.code().await;
    let wrong = "x".repeat(50);
    assert_oauth_error(
        &env.redeem(&code, "app", REDIRECT, &wrong).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );

    // redirect_uri mismatch: an error page at authorize (never a redirect), invalid_grant at
    // the token endpoint.
    for uri in [
        "https://evil.example/cb",
        "https://app.example/cb/",
        "https://app.example/cb?x=1",
    ] {
        let page = env
            .get(&env.authorize_url(&[("redirect_uri", uri)]), None)
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(page.header("location").is_none());
        assert!(page.text.contains("redirect_uri is not registered"));
    }
    let unknown = env
        .get(&env.authorize_url(&[("client_id", "nobody")]), None)
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.header("location").is_none());
    let code = env.code().await;
    assert_oauth_error(
        &env.redeem(&code, "app", "https://app.example/other", VERIFIER)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );

    // Refresh token reused after rotation: refused, and the whole family ends.
    let code = env.code().await;
    let t = env.redeem(&code, "app", REDIRECT, VERIFIER).await.json();
    let r1 = t["refresh_token"].as_str().expect("refresh").to_owned();
    let rotated = env.refresh(&r1).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let r2 = rotated.json()["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let a2 = rotated.json()["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    assert_oauth_error(
        &env.refresh(&r1).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    assert_oauth_error(
        &env.refresh(&r2).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    assert_eq!(env.introspect(&a2).await["active"], false);

    // Wrong client: another app's code or refresh token, an unknown client.
    let code = env.code().await;
    assert_oauth_error(
        &env.redeem(&code, "app2", REDIRECT, VERIFIER).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    let code = env.code().await;
    assert_oauth_error(
        &env.redeem(&code, "nobody", REDIRECT, VERIFIER).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    let code = env.code().await;
    let t = env.redeem(&code, "app", REDIRECT, VERIFIER).await.json();
    let r = t["refresh_token"].as_str().expect("refresh").to_owned();
    let other = env
        .post_form(
            "/auth/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r),
                ("client_id", "app2"),
            ],
        )
        .await;
    assert_oauth_error(&other, StatusCode::BAD_REQUEST, "invalid_grant");

    // Malformed token requests.
    let json_body = env
        .http
        .post(format!("{}/auth/token", env.url))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("POST");
    assert_oauth_error(
        &Page::read(json_body).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
    let twice = env
        .post_form(
            "/auth/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("grant_type", "refresh_token"),
            ],
        )
        .await;
    assert_oauth_error(&twice, StatusCode::BAD_REQUEST, "invalid_request");
    let unsupported = env
        .post_form("/auth/token", None, &[("grant_type", "password")])
        .await;
    assert_oauth_error(
        &unsupported,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_and_session_are_required() {
    let env = start(50).await;
    let (cookie, csrf, _) = env.start_login().await;
    let login = |csrf: Option<&'static str>| {
        let mut form = vec![("login", "alice"), ("password", PASSWORD)];
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        form
    };
    let missing = env
        .post_form("/auth/login", Some(&cookie), &login(None))
        .await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let wrong = env
        .post_form("/auth/login", Some(&cookie), &login(Some("forged")))
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // The token of another session does not fit this one.
    let (_, other_csrf, _) = env.start_login().await;
    let mut form = login(None);
    form.push(("csrf", &other_csrf));
    let crossed = env.post_form("/auth/login", Some(&cookie), &form).await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN);
    // Without the cookie (a cross-site POST under SameSite=Lax) there is no session.
    let mut form = login(None);
    form.push(("csrf", &csrf));
    let no_cookie = env.post_form("/auth/login", None, &form).await;
    assert_eq!(no_cookie.status, StatusCode::BAD_REQUEST);
    // A wrong password shows the form again; the right one then works in the same session.
    let bad = env
        .post_form(
            "/auth/login",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("login", "alice"),
                ("password", "wrong password!!"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.text.contains("Wrong user name or password"));
    let ok = env.post_form("/auth/login", Some(&cookie), &form).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);

    // Consent without or with a wrong CSRF token.
    let (cookie, csrf, _) = env.login("alice").await;
    for token in ["", "forged"] {
        let page = env
            .post_form(
                "/auth/consent",
                Some(&cookie),
                &[("csrf", token), ("action", "approve"), ("scope", "openid")],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "csrf {token:?}");
    }
    // The session survived the forgeries.
    let deny = env
        .post_form(
            "/auth/consent",
            Some(&cookie),
            &[("csrf", &csrf), ("action", "deny")],
        )
        .await;
    assert_eq!(deny.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_attempts_are_rate_limited_per_ip() {
    let env = start(3).await;
    let (cookie, csrf, _) = env.start_login().await;
    for _ in 0..3 {
        let page = env
            .post_form(
                "/auth/login",
                Some(&cookie),
                &[
                    ("csrf", &csrf),
                    ("login", "nobody"),
                    ("password", "guess guess guess"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.text);
    }
    let limited = env
        .post_form(
            "/auth/login",
            Some(&cookie),
            &[("csrf", &csrf), ("login", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_and_discovery() {
    let env = start(50).await;

    // private_key_jwt with an inline JWKS, then with a jwks_uri fetched over HTTP.
    let assertion = env.assertion(&env.svc_key, "svc");
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "system/*.rs"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let token = env.post_form("/auth/token", None, &form).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    assert_eq!(token.json()["scope"], "system/*.rs");
    // The same assertion twice (jti replay).
    assert_oauth_error(
        &env.post_form("/auth/token", None, &form).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    let assertion = env.assertion(&env.uri_key, "svc-uri");
    let by_uri = env
        .post_form(
            "/auth/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    assert_eq!(by_uri.status, StatusCode::OK, "{}", by_uri.text);
    // A key that is not the client's.
    let assertion = env.assertion(&env.svc_key, "svc-uri");
    let forged = env
        .post_form(
            "/auth/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    assert_oauth_error(&forged, StatusCode::UNAUTHORIZED, "invalid_client");

    // Discovery and keys.
    let oidc = env
        .get(
            &format!("{}/auth/.well-known/openid-configuration", env.url),
            None,
        )
        .await;
    assert_eq!(oidc.status, StatusCode::OK);
    assert_eq!(oidc.json()["issuer"], format!("{BASE}/auth"));
    assert_eq!(oidc.json()["token_endpoint"], format!("{BASE}/auth/token"));
    let jwks = env.get(&format!("{}/auth/jwks", env.url), None).await;
    assert_eq!(jwks.status, StatusCode::OK);
    assert_eq!(jwks.json()["keys"][0]["kty"], "RSA");
    assert!(jwks.json()["keys"][0].get("d").is_none());
    let smart = env
        .http
        .get(format!(
            "{}/fhir/default/.well-known/smart-configuration",
            env.url
        ))
        .header("accept", "application/json")
        .send()
        .await
        .expect("GET");
    let smart = Page::read(smart).await;
    assert_eq!(smart.status, StatusCode::OK, "{}", smart.text);
    assert_eq!(smart.json()["fhir_base"], format!("{BASE}/fhir/default"));
    assert!(
        smart.json()["capabilities"]
            .as_array()
            .expect("capabilities")
            .contains(&json!("context-standalone-patient"))
    );
    let unknown = env
        .get(
            &format!("{}/fhir/nope/.well-known/smart-configuration", env.url),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(env.core.jwks().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_tokens_are_audited() {
    let env = start(50).await;
    let (cookie, csrf, _) = env.start_login().await;
    let typed = "no-such-login-xyz";
    let failed = env
        .post_form(
            "/auth/login",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("login", typed),
                ("password", "secret guess 123"),
            ],
        )
        .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let code = env.code().await;
    let token = env.redeem(&code, "app", REDIRECT, VERIFIER).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);

    let page = env.app.get("/fhir/default/AuditEvent?_count=100").await;
    assert_eq!(page.status.as_u16(), 200, "{}", page.text);
    let events: Vec<Value> = page.json["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["resource"].clone())
        .collect();
    let of = |code: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["subtype"][0]["code"] == code)
            .collect()
    };
    // Logins are DICOM "Login" events; a failure has outcome 4.
    let logins = of("110122");
    let failures: Vec<&&Value> = logins.iter().filter(|e| e["outcome"] == "4").collect();
    assert_eq!(failures.len(), 1, "{events:?}");
    assert_eq!(failures[0]["agent"][0]["who"]["display"], "anonymous");
    let text = failures[0].to_string();
    assert!(
        !text.contains(typed) && !text.contains("secret guess"),
        "{text}"
    );
    let successes: Vec<&&Value> = logins.iter().filter(|e| e["outcome"] == "0").collect();
    assert_eq!(successes.len(), 1, "{events:?}");
    assert_eq!(successes[0]["agent"][0]["role"][0]["text"], "clinician");
    let issued = of("token-issued");
    assert_eq!(issued.len(), 1, "{events:?}");
    assert!(
        issued[0].to_string().contains("Patient/p1"),
        "{}",
        issued[0]
    );
}

/// RFC 4648 base32 without padding (the enrolment secret's form).
fn base32_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut bits, mut acc) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {c}"),
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_sign_in_with_a_second_factor() {
    let env = start(50).await;
    let core = env.core.clone();
    let secret = env.app.with_store(move |_| {
        let admin = |login: &str| {
            core.create_user(NewUser {
                login: login.into(),
                display_name: "Admin".into(),
                password: Some(PASSWORD.into()),
                memberships: vec![Membership {
                    tenant: "default".into(),
                    roles: vec![Role::TenantAdmin],
                    fhir_user: None,
                }],
            })
            .expect("admin")
        };
        admin("no-totp");
        let user = admin("admin");
        let enrolment = core.begin_totp(&user.id, "medicus").expect("enrol");
        let secret = base32_decode(&enrolment.secret_base32);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        // Confirmed with the previous step's code, so the current one is still unused.
        let code = medicus_auth::totp::code_at(&secret, now - 30);
        assert!(core.confirm_totp(&user.id, &code).expect("confirm"));
        secret
    });
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64
    };

    // An admin role without an enrolled second factor must enrol one before any consent.
    let (cookie, csrf, _) = env.start_login().await;
    let page = env
        .post_form(
            "/auth/login",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("login", "no-totp"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("Set up a second factor"),
        "{}",
        page.text
    );
    assert!(!page.text.contains("Allow access?"));
    let enrol_cookie = page.cookie().expect("the session moves to enrolment");
    assert_ne!(enrol_cookie, cookie);
    let enrol_csrf = page.csrf();
    let marker = "id=\"totp-secret\">";
    let at = page.text.find(marker).expect("the secret is shown") + marker.len();
    let new_secret: String = page.text[at..]
        .split('<')
        .next()
        .expect("secret")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let new_secret = base32_decode(&new_secret);
    // Enrolment is not a login: consent refuses the session, and the form needs its CSRF token.
    let consent = env
        .post_form(
            "/auth/consent",
            Some(&enrol_cookie),
            &[
                ("csrf", &enrol_csrf),
                ("action", "approve"),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(consent.status, StatusCode::FORBIDDEN, "{}", consent.text);
    let forged = env
        .post_form(
            "/auth/totp",
            Some(&enrol_cookie),
            &[("csrf", "forged"), ("code", "000000")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let wrong = medicus_auth::totp::code_at(&new_secret, now() - 600);
    let page = env
        .post_form(
            "/auth/totp",
            Some(&enrol_cookie),
            &[
                ("csrf", &enrol_csrf),
                ("code", &wrong),
                ("action", "confirm"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.text);
    assert!(
        !page.text.contains("totp-secret"),
        "the secret is shown once"
    );
    let (enrol_cookie, enrol_csrf) = (page.cookie().expect("cookie"), page.csrf());
    let right = medicus_auth::totp::code_at(&new_secret, now());
    let page = env
        .post_form(
            "/auth/totp",
            Some(&enrol_cookie),
            &[
                ("csrf", &enrol_csrf),
                ("code", &right),
                ("action", "confirm"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Allow access?"), "{}", page.text);
    assert!(page.cookie().is_some());
    // From now on the account signs in with its code.
    let (cookie, csrf, _) = env.start_login().await;
    let page = env
        .post_form(
            "/auth/login",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("login", "no-totp"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(page.text.contains("name=\"totp\""), "{}", page.text);

    // Password alone: the form asks for the code.
    let (cookie, csrf, _) = env.start_login().await;
    let page = env
        .post_form(
            "/auth/login",
            Some(&cookie),
            &[("csrf", &csrf), ("login", "admin"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("name=\"totp\""));
    assert!(
        page.cookie().is_none(),
        "no session before the second factor"
    );
    let wrong = env
        .post_form(
            "/auth/login",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("login", "admin"),
                ("password", PASSWORD),
                ("totp", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let code = medicus_auth::totp::code_at(&secret, now());
    let ok = env
        .post_form(
            "/auth/login",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("login", "admin"),
                ("password", PASSWORD),
                ("totp", &code),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert!(ok.cookie().is_some());
    // A tenant-admin cannot choose a patient for launch/patient.
    assert!(
        ok.text.contains("your role cannot choose one"),
        "{}",
        ok.text
    );
    assert!(!ok.text.contains("name=\"patient\""));

    // The same code again (replay) is refused.
    let (cookie, csrf, _) = env.start_login().await;
    let replay = env
        .post_form(
            "/auth/login",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("login", "admin"),
                ("password", PASSWORD),
                ("totp", &code),
            ],
        )
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text);
}

impl Env {
    async fn login_from(&self, cookie: &str, csrf: &str, forwarded_for: &str) -> StatusCode {
        let response = self
            .http
            .post(format!("{}/auth/login", self.url))
            .header("cookie", cookie)
            .header("x-forwarded-for", forwarded_for)
            .form(&[
                ("csrf", csrf),
                ("login", "nobody"),
                ("password", "guess guess guess"),
            ])
            .send()
            .await
            .expect("POST");
        response.status()
    }

    /// The addresses of the tenant's failed logins, once the trail has written `n` of them.
    async fn failed_login_addresses(&self, n: usize) -> Vec<Option<String>> {
        for _ in 0..100 {
            let addresses = self.app.with_store(|store| {
                let filter = medicus_audit::fhir::EventFilter {
                    kind: vec!["login-failure".into()],
                    ..Default::default()
                };
                medicus_audit::fhir::search(store, "default", &filter, 100, None)
                    .expect("audit search")
                    .entries
                    .iter()
                    .map(|e| {
                        medicus_audit::AuditEvent::decode(&e.record, e.at_us, Vec::new())
                            .expect("event")
                            .address
                    })
                    .collect::<Vec<_>>()
            });
            if addresses.len() >= n {
                return addresses;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the failed logins were not audited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    // Behind a trusted proxy (the test connects from 127.0.0.1): each forwarded client has
    // its own login limit, and the audit names the client, not the proxy.
    let env = start_with(2, &["127.0.0.0/8"]).await;
    let (cookie, csrf, _) = env.start_login().await;
    for _ in 0..2 {
        let status = env.login_from(&cookie, &csrf, "198.51.100.1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let status = env.login_from(&cookie, &csrf, "198.51.100.1").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // What a client wrote left of the proxy's entry is not believed.
    let status = env
        .login_from(&cookie, &csrf, "203.0.113.50, 198.51.100.1")
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let status = env.login_from(&cookie, &csrf, "198.51.100.2").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let addresses = env.failed_login_addresses(3).await;
    assert_eq!(
        addresses
            .iter()
            .filter(|a| a.as_deref() == Some("198.51.100.1"))
            .count(),
        2,
        "{addresses:?}"
    );
    assert!(addresses.contains(&Some("198.51.100.2".into())));

    // Without trusted proxies the header changes nothing: one limit for the peer, which the
    // audit names.
    let env = start(2).await;
    let (cookie, csrf, _) = env.start_login().await;
    for (i, status) in [
        StatusCode::UNAUTHORIZED,
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
    ]
    .into_iter()
    .enumerate()
    {
        let forwarded = format!("198.51.100.{}", 10 + i);
        assert_eq!(env.login_from(&cookie, &csrf, &forwarded).await, status);
    }
    let addresses = env.failed_login_addresses(2).await;
    assert!(
        addresses.iter().all(|a| a.as_deref() == Some("127.0.0.1")),
        "{addresses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_may_enrol_a_second_factor_from_the_consent_page() {
    let env = start(50).await;
    let (cookie, csrf, consent) = env.login("alice").await;
    assert!(
        consent.text.contains("Set up a second factor"),
        "{}",
        consent.text
    );
    let page = env
        .post_form(
            "/auth/totp",
            Some(&cookie),
            &[("csrf", &csrf), ("action", "begin")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let marker = "id=\"totp-secret\">";
    let at = page.text.find(marker).expect("the secret is shown") + marker.len();
    let secret: String = page.text[at..]
        .split('<')
        .next()
        .expect("secret")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let secret = base32_decode(&secret);
    let (cookie, csrf) = (page.cookie().expect("cookie"), page.csrf());
    // The session is back in enrolment: no consent until the code is confirmed.
    let early = env
        .post_form(
            "/auth/consent",
            Some(&cookie),
            &[("csrf", &csrf), ("action", "approve"), ("scope", "openid")],
        )
        .await;
    assert_eq!(early.status, StatusCode::FORBIDDEN, "{}", early.text);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let code = medicus_auth::totp::code_at(&secret, now);
    let page = env
        .post_form(
            "/auth/totp",
            Some(&cookie),
            &[("csrf", &csrf), ("code", &code), ("action", "confirm")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Allow access?"));
    assert!(!page.text.contains("Set up a second factor"));
    // The next login asks for the code.
    let (cookie, csrf, _) = env.start_login().await;
    let page = env
        .post_form(
            "/auth/login",
            Some(&cookie),
            &[("csrf", &csrf), ("login", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert!(page.text.contains("name=\"totp\""), "{}", page.text);
}
