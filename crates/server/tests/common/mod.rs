//! Test harness: the router over a real store, driven with `tower::ServiceExt::oneshot` (no
//! sockets). The store is SQLite in a temporary directory, or PostgreSQL in a scratch database
//! when `MEDICUS_TEST_DATABASE` names a server (`.ci/run` runs the suite both ways).

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use medicus_server::{AppState, ServerConfig, router};
use medicus_store::Store;
use medicus_store::testing::TestStore;
use serde_json::Value;
use tower::ServiceExt;

pub const FHIR_JSON: &str = "application/fhir+json";

pub struct TestApp {
    pub router: Router,
    pub store: Arc<dyn Store>,
    /// Dropped after the store and the router (fields drop in order): a scratch database goes last.
    _test_store: TestStore,
    _dir: tempfile::TempDir,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the body is an OperationOutcome and returns its diagnostics, joined.
    pub fn outcome_text(&self) -> String {
        assert_eq!(
            self.json["resourceType"], "OperationOutcome",
            "body: {}",
            self.text
        );
        self.json["issue"]
            .as_array()
            .map(|issues| {
                issues
                    .iter()
                    .map(|i| i["diagnostics"].as_str().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }
}

impl Default for TestApp {
    fn default() -> Self {
        TestApp::new()
    }
}

impl TestApp {
    pub fn new() -> TestApp {
        TestApp::with_config(ServerConfig {
            base_url: Some("http://test.local".into()),
            ..ServerConfig::default()
        })
    }

    pub fn with_config(config: ServerConfig) -> TestApp {
        TestApp::with_state(config, |state| state)
    }

    /// `with_config` with a hook that completes the state before the router is built (e.g.
    /// `AppState::with_auth`). It runs on the test's thread: store calls belong elsewhere.
    pub fn with_state(
        config: ServerConfig,
        complete: impl FnOnce(AppState) -> AppState,
    ) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let test_store = TestStore::open(dir.path()).expect("open store");
        let store = test_store.store.clone();
        // Tenants on a thread of their own: the PostgreSQL store blocks on its runtime, which
        // an async test's thread must not do.
        std::thread::scope(|s| {
            s.spawn(|| {
                store.create_tenant("default").expect("tenant");
                store.create_tenant("other").expect("tenant");
            });
        });
        let config = ServerConfig {
            bulk_dir: dir.path().join("bulk"),
            ..config
        };
        // The FHIR-semantics tests run without token checks; the access-control tests set
        // `access_control` back to `Enforced` in `complete`.
        let state = complete(AppState::new(store.clone(), config).with_open_access());
        TestApp {
            router: router(state),
            store,
            _dir: dir,
            _test_store: test_store,
        }
    }

    /// Planner statistics after loading data (PostgreSQL pass; nothing on SQLite).
    pub fn analyze(&self) {
        self._test_store.analyze().expect("ANALYZE");
    }

    /// Runs `f` on the store directly, on a thread of its own (see `with_config`).
    pub fn with_store<T: Send>(&self, f: impl FnOnce(&dyn Store) -> T + Send) -> T {
        let store = &*self.store;
        std::thread::scope(|s| s.spawn(|| f(store)).join().expect("store operation"))
    }

    pub async fn request(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(builder.body(body.into()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.request("GET", uri, &[], Body::empty()).await
    }

    pub async fn send_json(&self, method: &str, uri: &str, body: &Value) -> TestResponse {
        self.request(
            method,
            uri,
            &[("content-type", FHIR_JSON)],
            body.to_string(),
        )
        .await
    }

    /// Creates a resource and returns its id.
    pub async fn create(&self, resource: &Value) -> String {
        let ty = resource["resourceType"].as_str().expect("resourceType");
        let r = self
            .send_json("POST", &format!("/fhir/default/{ty}"), resource)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json["id"].as_str().expect("id").to_string()
    }
}

/// Search helpers shared by the search conformance and differential tests.
impl TestApp {
    /// PUTs each resource at its `id` (creating it), asserting success.
    pub async fn put_all(&self, resources: &[Value]) {
        for resource in resources {
            let ty = resource["resourceType"].as_str().expect("resourceType");
            let id = resource["id"].as_str().expect("id");
            let r = self
                .send_json("PUT", &format!("/fhir/default/{ty}/{id}"), resource)
                .await;
            assert!(
                r.status == StatusCode::CREATED || r.status == StatusCode::OK,
                "PUT {ty}/{id}: {} {}",
                r.status,
                r.text
            );
        }
    }

    /// Every page of a search (`uri` relative to the server, e.g. `/fhir/default/Patient?x=1`),
    /// following `next` links; panics unless every page is a 200 Bundle.
    pub async fn search_pages(&self, uri: &str) -> Vec<Value> {
        let mut pages = Vec::new();
        let mut next = Some(uri.to_owned());
        while let Some(url) = next {
            let r = self.get(&url).await;
            assert_eq!(r.status, StatusCode::OK, "GET {url}: {}", r.text);
            assert_eq!(r.json["resourceType"], "Bundle", "GET {url}: {}", r.text);
            next = r.json["link"].as_array().and_then(|links| {
                links
                    .iter()
                    .find(|l| l["relation"] == "next")
                    .and_then(|l| l["url"].as_str())
                    .map(|u| {
                        u.split_once("/fhir/")
                            .map_or(u.to_owned(), |(_, p)| format!("/fhir/{p}"))
                    })
            });
            assert!(pages.len() < 10_000, "paging does not end: {uri}");
            pages.push(r.json);
        }
        pages
    }

    /// Ids of the `match` entries of a search over all pages, in the order the server gave them.
    pub async fn search_ids(&self, uri: &str) -> Vec<String> {
        self.search_pages(uri)
            .await
            .iter()
            .flat_map(|page| entry_keys(page, "match", false))
            .collect()
    }
}

/// `id` (or `Type/id` when `typed`) of the entries of a Bundle with `search.mode == mode`.
pub fn entry_keys(bundle: &Value, mode: &str, typed: bool) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == mode)
        .map(|e| {
            let r = &e["resource"];
            let id = r["id"].as_str().unwrap_or_default();
            if typed {
                format!("{}/{id}", r["resourceType"].as_str().unwrap_or_default())
            } else {
                id.to_owned()
            }
        })
        .collect()
}

/// Percent-encodes the names and values of a raw query (`a=x|y&b=Müller`); the first `=` of each
/// `&`-separated pair separates name and value, so values may contain `=` but not `&`.
pub fn encode_query(raw: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b':')
        .remove(b'/')
        .remove(b',');
    let set = SET;
    raw.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((n, v)) => format!(
                "{}={}",
                utf8_percent_encode(n, set),
                utf8_percent_encode(v, set)
            ),
            None => utf8_percent_encode(pair, set).to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `Type?query` on the default tenant, with the query encoded.
pub fn search_uri(path_and_query: &str) -> String {
    match path_and_query.split_once('?') {
        Some((path, query)) => format!("/fhir/default/{path}?{}", encode_query(query)),
        None => format!("/fhir/default/{path_and_query}"),
    }
}

impl TestApp {
    /// Asserts that `Type?query` matches exactly the resources with these ids (in any order).
    pub async fn assert_search(&self, query: &str, expected: &[&str]) {
        let mut got = self.search_ids(&search_uri(query)).await;
        got.sort();
        let mut want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        assert_eq!(got, want, "GET {query}");
    }

    /// Asserts that `Type?query` is refused with 400 and an OperationOutcome that names `param`.
    pub async fn assert_bad_search(&self, query: &str, param: &str) {
        let r = self.get(&search_uri(query)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "GET {query}: {}", r.text);
        assert_eq!(
            r.json["resourceType"], "OperationOutcome",
            "GET {query}: {}",
            r.text
        );
        assert!(
            r.text.contains(param),
            "GET {query}: the outcome should name '{param}': {}",
            r.text
        );
    }
}

impl TestApp {
    /// Asserts that `Type?query` is refused with 400 and an OperationOutcome.
    pub async fn assert_rejected(&self, query: &str) {
        let r = self.get(&search_uri(query)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "GET {query}: {}", r.text);
        assert_eq!(
            r.json["resourceType"], "OperationOutcome",
            "GET {query}: {}",
            r.text
        );
    }
}
