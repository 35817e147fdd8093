//! Shared harness of the integration tests: start the real `medicus` binary on a free loopback
//! port with its own data directory, wait until it is ready, speak FHIR over HTTP, and stop it
//! when the test ends (also when it fails: [`Server`] kills its process on drop).
//!
//! With `MEDICUS_TEST_DATABASE` set (the PostgreSQL pass of `scripts/test`), every [`TestDir`]
//! also gets a scratch PostgreSQL database, and the servers and commands the harness starts on
//! its data directory use it (`--database`).

#![allow(dead_code)] // every test binary uses a different part of the harness

pub mod browser;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::sleep;
use std::time::{Duration, Instant};

use medicus_store::postgres::ScratchDatabase;
use reqwest::Method;
use reqwest::blocking::Client;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_medicus");
pub const FHIR_JSON: &str = "application/fhir+json";

/// Waiting limits. They only bound how long a broken server can hang a test; nothing asserts on time.
const START_LIMIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(20);

/// Every variable the binary reads, removed so the developer's environment cannot leak in.
const MEDICUS_VARS: [&str; 11] = [
    "MEDICUS_DATA",
    "MEDICUS_DATABASE",
    "MEDICUS_LISTEN",
    "MEDICUS_CONFIG",
    "MEDICUS_LOG",
    "MEDICUS_MAX_BODY_BYTES",
    "MEDICUS_BASE_URL",
    "MEDICUS_TRUSTED_PROXIES",
    "MEDICUS_SERVER_KEY_FILE",
    "MEDICUS_MASTER_KEY_FILE",
    "RUST_LOG",
];

/// The scratch database of each live `TestDir`, by data directory.
static DATABASES: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);

/// The scratch database URL of the `TestDir` whose data directory is `data`.
pub fn database_of(data: &Path) -> Option<String> {
    DATABASES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|m| m.get(data).cloned())
}

/// `--database URL` for the commands in `args` that name a data directory with a scratch database.
fn database_args(args: &[&str]) -> Vec<String> {
    if args.contains(&"--database") {
        return Vec::new();
    }
    args.windows(2)
        .find(|w| w[0] == "--data")
        .and_then(|w| database_of(Path::new(w[1])))
        .map(|url| vec!["--database".to_owned(), url])
        .unwrap_or_default()
}

/// A temporary folder with the server's data directory and its logs (and, in the PostgreSQL
/// pass, a scratch database).
pub struct TestDir {
    tmp: TempDir,
    database: Option<ScratchDatabase>,
}

impl TestDir {
    pub fn new() -> TestDir {
        let tmp = tempfile::Builder::new()
            .prefix("medicus-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(tmp.path().join("logs")).unwrap();
        let database = ScratchDatabase::from_env().expect("scratch database");
        if let Some(db) = &database {
            DATABASES
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(HashMap::new)
                .insert(tmp.path().join("data"), db.url().to_owned());
        }
        TestDir { tmp, database }
    }

    /// The scratch database, in the PostgreSQL pass.
    pub fn database(&self) -> Option<&str> {
        self.database.as_ref().map(ScratchDatabase::url)
    }

    /// `--database URL` in the PostgreSQL pass, nothing otherwise: for commands a test builds
    /// with `medicus_command()` itself.
    pub fn database_args(&self) -> Vec<String> {
        self.database()
            .map(|url| vec!["--database".to_owned(), url.to_owned()])
            .unwrap_or_default()
    }

    /// The data directory (not created: the binary creates it).
    pub fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn logs(&self) -> PathBuf {
        self.tmp.path().join("logs")
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if let Some(m) = DATABASES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            m.remove(&self.data());
        }
    }
}

/// A `medicus` command with a clean environment. On Linux the child is also killed when the
/// test thread that started it dies, so not even a killed test run leaks a server.
pub fn medicus_command() -> Command {
    let mut cmd = Command::new(BIN);
    for var in MEDICUS_VARS {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    cmd
}

/// Run `medicus ARGS...` to completion.
pub fn medicus(args: &[&str]) -> Output {
    medicus_command()
        .args(args)
        .args(database_args(args))
        .output()
        .unwrap()
}

/// A server on a fresh data directory (keep the `TestDir` alive as long as the server).
pub fn start() -> (TestDir, Server) {
    let dir = TestDir::new();
    let server = Server::start(&dir);
    (dir, server)
}

/// `medicus admin tenant create ID --data DIR`, asserting success.
pub fn create_tenant(dir: &TestDir, id: &str) {
    let data = dir.data();
    let out = medicus(&[
        "admin",
        "tenant",
        "create",
        id,
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "tenant create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How to start the server.
#[derive(Clone)]
pub struct Options {
    /// `serve` or `demo`.
    pub command: &'static str,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            command: "serve",
            env: Vec::new(),
            args: Vec::new(),
        }
    }
}

impl Options {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// A running `medicus serve`, killed on drop.
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:PORT`
    pub addr: String,
    data: PathBuf,
    logs: PathBuf,
    stdout: PathBuf,
    options: Options,
    /// Tokens from `medicus admin token`, per (tenant, scopes).
    tokens: Mutex<HashMap<(String, String), String>>,
}

impl Server {
    pub fn start(dir: &TestDir) -> Server {
        Server::start_with(dir, Options::default())
    }

    pub fn start_with(dir: &TestDir, options: Options) -> Server {
        let mut server = Server {
            child: None,
            addr: String::new(),
            data: dir.data(),
            logs: dir.logs().join("stderr.log"),
            stdout: dir.logs().join("stdout.log"),
            options,
            tokens: Mutex::new(HashMap::new()),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let stdout = File::create(&self.stdout).unwrap();
        // Append: the log of a restarted server keeps what the previous run wrote.
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.logs)
            .unwrap();
        let mut cmd = medicus_command();
        cmd.arg(self.options.command)
            .arg("--data")
            .arg(&self.data)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(&self.options.args)
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .envs(
                database_of(&self.data)
                    .filter(|_| {
                        !self
                            .options
                            .env
                            .iter()
                            .any(|(k, _)| k == "MEDICUS_DATABASE")
                    })
                    .map(|url| ("MEDICUS_DATABASE", url)),
            )
            .stdout(stdout)
            .stderr(stderr);
        self.child = Some(cmd.spawn().unwrap());
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.addr = self.wait_for_address();
        self.wait_ready();
    }

    /// The binary prints `medicus: FHIR base URL http://ADDR/fhir/default` once it listens.
    fn wait_for_address(&mut self) -> String {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let mut text = String::new();
            if let Ok(mut f) = File::open(&self.stdout) {
                f.read_to_string(&mut text).unwrap();
            }
            if let Some(line) = text
                .lines()
                .find(|l| l.starts_with("medicus: FHIR base URL http://"))
            {
                let rest = line.trim_start_matches("medicus: FHIR base URL http://");
                let addr = rest.split('/').next().unwrap();
                return addr.to_owned();
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "medicus exited with {status} before listening; log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "medicus did not print its address; log:\n{}",
                self.log()
            );
            sleep(POLL);
        }
    }

    fn wait_ready(&mut self) {
        let client = Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let url = format!("http://{}/readyz", self.addr);
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok(resp) = client.get(&url).send()
                && resp.status().is_success()
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "medicus exited with {status} before ready; log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "medicus not ready; log:\n{}",
                self.log()
            );
            sleep(POLL);
        }
    }

    /// `http://ADDR`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// FHIR client for the `default` tenant.
    pub fn fhir(&self) -> Fhir {
        self.tenant("default")
    }

    /// FHIR client for `tenant`, carrying a service token (`system/*.*`) of that tenant,
    /// minted at its first request (the tenant may be created after the client). For a tenant
    /// that does not exist (yet) it carries a token of `default`, which the server answers with
    /// 404 unknown tenant.
    pub fn tenant(&self, tenant: &str) -> Fhir {
        let mut fhir = Fhir::new(format!("http://{}/fhir/{tenant}", self.addr));
        let mint = self.mint();
        let tenant = tenant.to_owned();
        fhir.mint = Some(Arc::new(move || {
            mint.mint(&tenant, "system/*.*")
                .map(|t| (t, true))
                .or_else(|_| mint.mint("default", "system/*.*").map(|t| (t, false)))
                .ok()
        }));
        fhir
    }

    /// FHIR client for `tenant` without a token (for the access-control tests).
    pub fn anonymous(&self, tenant: &str) -> Fhir {
        Fhir::new(format!("http://{}/fhir/{tenant}", self.addr))
    }

    /// A service access token of `tenant` with `system/*.*`, from `medicus admin token` on the
    /// server's data (same store and server key), valid for an hour.
    pub fn service_token(&self, tenant: &str) -> String {
        self.token(tenant, "system/*.*")
    }

    /// `medicus admin token --tenant T --scopes S` for this server; cached per (tenant, scopes)
    /// until the server restarts (its address, and so the token audience, may change).
    pub fn token(&self, tenant: &str, scopes: &str) -> String {
        self.try_token(tenant, scopes)
            .unwrap_or_else(|e| panic!("medicus admin token failed: {e}"))
    }

    fn try_token(&self, tenant: &str, scopes: &str) -> Result<String, String> {
        let key = (tenant.to_owned(), scopes.to_owned());
        if let Some(t) = self
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(t.clone());
        }
        let token = self.mint().mint(tenant, scopes)?;
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, token.clone());
        Ok(token)
    }

    /// What `medicus admin token` needs to issue tokens this server accepts.
    pub fn mint(&self) -> TokenMint {
        let args = &self.options.args;
        let arg = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let env = |name: &str| {
            self.options
                .env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        TokenMint {
            data: self.data.clone(),
            base: arg("--base-url").unwrap_or_else(|| self.origin()),
            server_key_file: arg("--server-key-file").or_else(|| env("MEDICUS_SERVER_KEY_FILE")),
            database: arg("--database")
                .or_else(|| env("MEDICUS_DATABASE"))
                .or_else(|| database_of(&self.data)),
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.logs).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("not running").id()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Send `signal` and wait for the exit.
    pub fn signal_and_wait(&mut self, signal: i32) -> ExitStatus {
        let mut child = self.child.take().expect("not running");
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: plain kill(2) on our own child, which has not been reaped yet.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "medicus did not stop after signal {signal}; log:\n{}",
                    self.log()
                );
            }
            sleep(POLL);
        }
    }

    /// Start again on the same data directory (after [`Server::kill`]); the port changes.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP response, read completely.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON; `Null` when empty or not JSON.
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The version from `ETag: W/"N"`.
    pub fn etag_version(&self) -> Option<i64> {
        let etag = self.header("etag")?;
        etag.strip_prefix("W/")
            .unwrap_or(etag)
            .trim_matches('"')
            .parse()
            .ok()
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    /// Assert the status, printing the response when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Resp {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Assert an OperationOutcome with at least one error or fatal issue and the given status.
    #[track_caller]
    pub fn expect_outcome(&self, status: u16) -> &Resp {
        self.expect(status);
        assert_eq!(
            self.body["resourceType"], "OperationOutcome",
            "body: {}",
            self.text
        );
        let issues = self.body["issue"]
            .as_array()
            .expect("OperationOutcome.issue");
        assert!(
            issues
                .iter()
                .any(|i| i["severity"] == "error" || i["severity"] == "fatal"),
            "no error issue: {}",
            self.text
        );
        self
    }

    /// The entries' resources of a Bundle.
    pub fn resources(&self) -> Vec<Value> {
        bundle_resources(&self.body)
    }
}

pub fn bundle_resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e.get("resource").cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// `Type/id` of every resource in a Bundle, sorted.
pub fn resource_keys(bundle: &Value) -> Vec<String> {
    let mut keys: Vec<String> = bundle_resources(bundle)
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap_or("?"),
                r["id"].as_str().unwrap_or("?")
            )
        })
        .collect();
    keys.sort();
    keys
}

/// The ids of the resources of a search Bundle (only `search.mode = match` entries).
pub fn match_ids(bundle: &Value) -> Vec<String> {
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"].as_str().unwrap_or("match") == "match")
                .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The URL of the Bundle link with `relation`.
pub fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str())
        .map(str::to_owned)
}

/// The descriptions (`outcome_desc`) of the `kind` events in `chain` of the store in `dir`
/// (e.g. `admin-change`, `token-issued`), oldest first.
pub fn audit_descriptions(dir: &TestDir, chain: &str, kind: &str) -> Vec<String> {
    use medicus_audit::fhir::{EventFilter, search};
    let data = dir.data();
    let store: std::sync::Arc<dyn medicus_store::Store> = match database_of(&data) {
        Some(url) => std::sync::Arc::new(
            medicus_store::PostgresStore::connect(&url, medicus_store::PostgresOptions::default())
                .unwrap(),
        ),
        None => std::sync::Arc::new(medicus_store::SqliteStore::open(&data).unwrap()),
    };
    let filter = EventFilter {
        kind: vec![kind.to_owned()],
        ..EventFilter::default()
    };
    search(&*store, chain, &filter, 1000, None)
        .unwrap()
        .entries
        .iter()
        .map(|e| {
            medicus_audit::AuditEvent::decode(&e.record, e.at_us, e.subjects.clone())
                .unwrap()
                .outcome_desc
                .unwrap_or_default()
        })
        .collect()
}

/// Issues tokens through `medicus admin token` on a server's data directory and key.
#[derive(Debug, Clone)]
pub struct TokenMint {
    pub data: PathBuf,
    pub base: String,
    pub server_key_file: Option<String>,
    pub database: Option<String>,
}

impl TokenMint {
    pub fn mint(&self, tenant: &str, scopes: &str) -> Result<String, String> {
        let mut cmd = medicus_command();
        cmd.args(["admin", "token", "--data"])
            .arg(&self.data)
            .args(["--base-url", &self.base, "--tenant", tenant])
            .args(["--scopes", scopes, "--lifetime", "3600"]);
        if let Some(file) = &self.server_key_file {
            cmd.args(["--server-key-file", file]);
        }
        if let Some(url) = &self.database {
            cmd.env("MEDICUS_DATABASE", url);
        }
        let out = cmd.output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// Mints a token on first use: `(token, final)`; a non-final one is not cached.
pub type MintFn = Arc<dyn Fn() -> Option<(String, bool)> + Send + Sync>;

/// A FHIR client bound to one tenant's base URL.
#[derive(Clone)]
pub struct Fhir {
    pub base: String,
    client: Client,
    /// Sent as `Authorization: Bearer …` unless a request sets its own Authorization.
    token: Arc<Mutex<Option<String>>>,
    /// Where a token comes from when `token` is empty.
    pub mint: Option<MintFn>,
}

impl Fhir {
    pub fn new(base: String) -> Fhir {
        let client = Client::builder()
            .timeout(Duration::from_secs(300))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Fhir {
            base,
            client,
            token: Arc::new(Mutex::new(None)),
            mint: None,
        }
    }

    pub fn with_token(self, token: String) -> Fhir {
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = Some(token);
        self
    }

    /// The token requests carry (minted now if need be).
    pub fn token(&self) -> Option<String> {
        let mut slot = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = slot.as_ref() {
            return Some(t.clone());
        }
        let (token, last) = self.mint.as_ref().and_then(|m| m())?;
        if last {
            *slot = Some(token.clone());
        }
        Some(token)
    }

    /// `path` relative to the base (`Patient/1`, `Patient?name=x`), or an absolute URL.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else if path.is_empty() {
            self.base.clone()
        } else if path.starts_with('?') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        }
    }

    /// Send a request; a JSON `body` is sent as `application/fhir+json` unless `headers` set a
    /// Content-Type.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let raw = body.map(|b| serde_json::to_vec(b).unwrap());
        self.send_raw(method, path, raw, headers)
    }

    pub fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Resp {
        self.try_send_raw(method, path, body, headers)
            .unwrap_or_else(|e| panic!("request to {path} failed: {e}"))
    }

    /// Like [`Fhir::send_raw`], but a failed connection is an `Err` instead of a panic.
    pub fn try_send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<Resp, reqwest::Error> {
        let mut req = self.client.request(method, self.url(path));
        let has_ct = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        let has_accept = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("accept"));
        if !has_accept {
            req = req.header("accept", FHIR_JSON);
        }
        if let Some(body) = body {
            if !has_ct {
                req = req.header("content-type", FHIR_JSON);
            }
            req = req.body(body);
        }
        let has_auth = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        if !has_auth && let Some(token) = self.token() {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send()?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text()?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            headers,
            text,
            body,
        })
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send(Method::GET, path, None, headers)
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(Method::POST, path, Some(body), &[])
    }

    pub fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        self.send(Method::POST, path, Some(body), headers)
    }

    pub fn put(&self, path: &str, body: &Value) -> Resp {
        self.send(Method::PUT, path, Some(body), &[])
    }

    pub fn put_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        self.send(Method::PUT, path, Some(body), headers)
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None, &[])
    }

    pub fn delete_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send(Method::DELETE, path, None, headers)
    }

    pub fn patch(&self, path: &str, patch: &Value, headers: &[(&str, &str)]) -> Resp {
        let mut all = vec![("content-type", "application/json-patch+json")];
        all.extend_from_slice(headers);
        self.send(Method::PATCH, path, Some(patch), &all)
    }

    /// POST a resource, assert 201, return the stored resource (asking for the representation).
    #[track_caller]
    pub fn create(&self, resource: &Value) -> Value {
        let rt = resource["resourceType"].as_str().unwrap();
        let resp = self.post_with(rt, resource, &[("prefer", "return=representation")]);
        resp.expect(201);
        assert_eq!(resp.body["resourceType"], rt, "body: {}", resp.text);
        resp.body.clone()
    }

    /// PUT a resource at its id, assert 200/201, return the stored resource.
    #[track_caller]
    pub fn upsert(&self, resource: &Value) -> Value {
        let rt = resource["resourceType"].as_str().unwrap();
        let id = resource["id"].as_str().unwrap();
        let resp = self.put_with(
            &format!("{rt}/{id}"),
            resource,
            &[("prefer", "return=representation")],
        );
        assert!(
            resp.status == 200 || resp.status == 201,
            "PUT {rt}/{id}: {} {}",
            resp.status,
            resp.text
        );
        resp.body.clone()
    }

    /// The `total` of a history Bundle (`Patient/1/_history`, `Patient/_history`, `_history`).
    #[track_caller]
    pub fn history_total(&self, path: &str) -> u64 {
        let resp = self.get(path);
        resp.expect(200);
        assert_eq!(resp.body["resourceType"], "Bundle", "{}", resp.text);
        assert_eq!(resp.body["type"], "history", "{}", resp.text);
        resp.body["total"]
            .as_u64()
            .unwrap_or_else(|| panic!("history without total: {}", resp.text))
    }

    /// Run a search and follow `next` links to the end; returns every page.
    #[track_caller]
    pub fn search_pages(&self, path: &str) -> Vec<Value> {
        let mut pages = Vec::new();
        let mut url = self.url(path);
        loop {
            let resp = self.get(&url);
            resp.expect(200);
            assert_eq!(resp.body["resourceType"], "Bundle", "{}", resp.text);
            let next = link(&resp.body, "next");
            pages.push(resp.body);
            match next {
                Some(n) => {
                    assert!(pages.len() < 10_000, "paging does not end");
                    url = n;
                }
                None => return pages,
            }
        }
    }

    /// Sorted ids of every match of a search, across all pages.
    #[track_caller]
    pub fn search_ids(&self, path: &str) -> Vec<String> {
        let mut ids: Vec<String> = self.search_pages(path).iter().flat_map(match_ids).collect();
        ids.sort();
        ids
    }
}

/// A minimal valid Patient.
pub fn patient(family: &str, given: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
    })
}

/// Remove `meta` (server-maintained) for comparisons.
pub fn strip_meta(resource: &Value) -> Value {
    let mut r = resource.clone();
    if let Some(obj) = r.as_object_mut() {
        obj.remove("meta");
    }
    r
}

/// Sorted strings.
pub fn sorted(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}
