//! Conformance of uri search parameters (FHIR R4 search §3.1.1.4.7): exact, case-sensitive
//! equality by default; `:below` matches stored URIs that start with the search value, `:above`
//! stored URIs that the search value starts with; `:missing`.

mod common;

use common::TestApp;
use serde_json::{Value, json};

fn vs(id: &str, url: Option<&str>) -> Value {
    let mut v = json!({"resourceType": "ValueSet", "id": id, "status": "active"});
    if let Some(u) = url {
        v["url"] = json!(u);
    }
    v
}

fn fixtures() -> Vec<Value> {
    vec![
        vs("vs-root", Some("http://example.org/fhir")),
        vs("vs-a", Some("http://example.org/fhir/ValueSet/a")),
        vs("vs-ab", Some("http://example.org/fhir/ValueSet/ab")),
        vs("vs-other", Some("http://other.org/fhir/ValueSet/a")),
        vs("vs-urn", Some("urn:oid:1.2.276.0.76.5.409")),
        vs("vs-nourl", None),
        json!({"resourceType": "Procedure", "id": "proc-1", "status": "completed",
               "subject": {"reference": "Patient/x"},
               "instantiatesUri": ["http://example.org/protocols/op-1", "http://example.org/protocols/op-2"]}),
    ]
}

async fn app() -> TestApp {
    let app = TestApp::new();
    app.put_all(&fixtures()).await;
    app
}

#[tokio::test]
async fn exact_equality() {
    let app = app().await;
    app.assert_search("ValueSet?url=http://example.org/fhir/ValueSet/a", &["vs-a"])
        .await;
    app.assert_search("ValueSet?url=http://example.org/fhir/ValueSet/A", &[])
        .await;
    // Neither a prefix nor an extension of the stored URI.
    app.assert_search("ValueSet?url=http://example.org/fhir/ValueSet", &[])
        .await;
    app.assert_search("ValueSet?url=http://example.org/fhir/ValueSet/a/", &[])
        .await;
    app.assert_search("ValueSet?url=urn:oid:1.2.276.0.76.5.409", &["vs-urn"])
        .await;
    app.assert_search(
        "ValueSet?url=http://example.org/fhir/ValueSet/a,http://other.org/fhir/ValueSet/a",
        &["vs-a", "vs-other"],
    )
    .await;
    app.assert_search(
        "Procedure?instantiates-uri=http://example.org/protocols/op-2",
        &["proc-1"],
    )
    .await;
}

#[tokio::test]
async fn missing() {
    let app = app().await;
    app.assert_search("ValueSet?url:missing=true", &["vs-nourl"])
        .await;
    app.assert_search(
        "ValueSet?url:missing=false",
        &["vs-root", "vs-a", "vs-ab", "vs-other", "vs-urn"],
    )
    .await;
}

#[tokio::test]
async fn below_and_above() {
    let app = app().await;
    app.assert_search(
        "ValueSet?url:below=http://example.org/fhir/ValueSet/",
        &["vs-a", "vs-ab"],
    )
    .await;
    app.assert_search(
        "ValueSet?url:below=http://example.org/fhir",
        &["vs-root", "vs-a", "vs-ab"],
    )
    .await;
    app.assert_search("ValueSet?url:below=http://nowhere.org/", &[])
        .await;
    app.assert_search(
        "ValueSet?url:above=http://example.org/fhir/ValueSet/a/_history/5",
        &["vs-root", "vs-a"],
    )
    .await;
    app.assert_search(
        "ValueSet?url:above=http://other.org/fhir/ValueSet/a",
        &["vs-other"],
    )
    .await;
}

#[tokio::test]
async fn sql_metacharacters_are_data() {
    let app = app().await;
    app.assert_search("ValueSet?url=' OR 1=1 --", &[]).await;
    app.assert_search("ValueSet?url=%", &[]).await;
    app.assert_search("ValueSet?url=http://example.org/fhir/ValueSet/_", &[])
        .await;
}

#[tokio::test]
async fn wildcards_in_below_are_data() {
    let app = app().await;
    // Not a URI at all: refused (or nothing found), never a wildcard.
    app.assert_rejected("ValueSet?url:below=%").await;
    app.assert_search("ValueSet?url:below=http://example.org/fhir/ValueSet/_", &[])
        .await;
    app.assert_search("ValueSet?url:below=http://example.org/%/ValueSet", &[])
        .await;
}
