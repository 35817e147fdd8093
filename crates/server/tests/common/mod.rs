//! Test harness: the router over a real SqliteStore in a temporary directory, driven with
//! `tower::ServiceExt::oneshot` (no sockets).

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use medicus_server::{AppState, ServerConfig, router};
use medicus_store::{SqliteStore, Store};
use serde_json::Value;
use tower::ServiceExt;

pub const FHIR_JSON: &str = "application/fhir+json";

pub struct TestApp {
    pub router: Router,
    pub store: Arc<SqliteStore>,
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
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::open(dir.path()).expect("open store"));
        store.create_tenant("default").expect("tenant");
        store.create_tenant("other").expect("tenant");
        let config = ServerConfig {
            bulk_dir: dir.path().join("bulk"),
            ..config
        };
        let state = AppState::new(store.clone(), config);
        TestApp {
            router: router(state),
            store,
            _dir: dir,
        }
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
