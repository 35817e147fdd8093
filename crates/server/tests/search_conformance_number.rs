//! Conformance of number search parameters (FHIR R4 search §3.1.1.4.2): the search value's
//! precision gives an implicit range for equality (`0.5` is [0.45, 0.55), `0.50` is
//! [0.495, 0.505)); `gt`/`lt` compare with the value itself; `ge`/`le` are `gt`/`lt` or equal.
//! The fixtures keep clear of the band where the spec's two readings of `ge`/`le` (exact value
//! vs. precision range) differ.

mod common;

use common::TestApp;
use serde_json::{Value, json};

fn risk(id: &str, probabilities: &[f64]) -> Value {
    let prediction: Vec<Value> = probabilities
        .iter()
        .map(|p| json!({"probabilityDecimal": p}))
        .collect();
    let mut r = json!({"resourceType": "RiskAssessment", "id": id, "status": "final",
                       "subject": {"reference": "Patient/x"}});
    if !prediction.is_empty() {
        r["prediction"] = Value::Array(prediction);
    }
    r
}

fn sequence(id: &str, start: i64) -> Value {
    json!({"resourceType": "MolecularSequence", "id": id, "coordinateSystem": 0,
           "variant": [{"start": start, "end": start + 1}]})
}

fn fixtures() -> Vec<Value> {
    vec![
        risk("ra-a", &[0.5]),
        risk("ra-b", &[0.54]),
        risk("ra-c", &[0.55]),
        risk("ra-d", &[0.45]),
        risk("ra-e", &[0.449]),
        risk("ra-f", &[0.1]),
        risk("ra-g", &[0.2, 0.9]),
        risk("ra-none", &[]),
        risk("ra-edge-lo", &[1.05]),
        risk("ra-edge-hi", &[1.15]),
        sequence("ms-99", 99),
        sequence("ms-100", 100),
        sequence("ms-101", 101),
    ]
}

async fn app() -> TestApp {
    let app = TestApp::new();
    app.put_all(&fixtures()).await;
    app
}

#[tokio::test]
async fn equality_uses_the_precision_of_the_search_value() {
    let app = app().await;
    app.assert_search("RiskAssessment?probability=0.5", &["ra-a", "ra-b", "ra-d"])
        .await;
    app.assert_search(
        "RiskAssessment?probability=eq0.5",
        &["ra-a", "ra-b", "ra-d"],
    )
    .await;
    app.assert_search("RiskAssessment?probability=0.50", &["ra-a"])
        .await;
    app.assert_search("RiskAssessment?probability=0.500", &["ra-a"])
        .await;
    app.assert_search("RiskAssessment?probability=0.54", &["ra-b"])
        .await;
    app.assert_search("RiskAssessment?probability=0.449", &["ra-e"])
        .await;
    app.assert_search("RiskAssessment?probability=0.3", &[])
        .await;
    // Any of several values matches.
    app.assert_search("RiskAssessment?probability=0.9", &["ra-g"])
        .await;
    app.assert_search("RiskAssessment?probability=0.1,0.2", &["ra-f", "ra-g"])
        .await;
}

#[tokio::test]
async fn comparisons() {
    let app = app().await;
    app.assert_search(
        "RiskAssessment?probability=gt0.5",
        &["ra-b", "ra-c", "ra-g", "ra-edge-lo", "ra-edge-hi"],
    )
    .await;
    app.assert_search(
        "RiskAssessment?probability=lt0.5",
        &["ra-d", "ra-e", "ra-f", "ra-g"],
    )
    .await;
    app.assert_search(
        "RiskAssessment?probability=ge0.55",
        &["ra-c", "ra-g", "ra-edge-lo", "ra-edge-hi"],
    )
    .await;
    app.assert_search(
        "RiskAssessment?probability=le0.45",
        &["ra-d", "ra-e", "ra-f", "ra-g"],
    )
    .await;
    app.assert_search(
        "RiskAssessment?probability=ne0.5",
        &["ra-c", "ra-e", "ra-f", "ra-g", "ra-edge-lo", "ra-edge-hi"],
    )
    .await;
    app.assert_search(
        "RiskAssessment?probability=gt0.3&probability=lt0.5",
        &["ra-d", "ra-e", "ra-g"],
    )
    .await;
    // ap: about 10 %; 0.54 is within, 0.1 and 0.2/0.9 are not.
    let got = app
        .search_ids(&common::search_uri("RiskAssessment?probability=ap0.5"))
        .await;
    for id in ["ra-a", "ra-b"] {
        assert!(
            got.iter().any(|g| g == id),
            "ap0.5: {id} missing in {got:?}"
        );
    }
    for id in ["ra-f", "ra-g", "ra-none"] {
        assert!(!got.iter().any(|g| g == id), "ap0.5: {id} in {got:?}");
    }
}

#[tokio::test]
async fn integers() {
    let app = app().await;
    app.assert_search("MolecularSequence?variant-start=100", &["ms-100"])
        .await;
    app.assert_search("MolecularSequence?variant-start=100.0", &["ms-100"])
        .await;
    app.assert_search("MolecularSequence?variant-start=100.4", &[])
        .await;
    app.assert_search("MolecularSequence?variant-start=gt100", &["ms-101"])
        .await;
    app.assert_search("MolecularSequence?variant-start=lt100", &["ms-99"])
        .await;
    app.assert_search(
        "MolecularSequence?variant-start=ge100",
        &["ms-100", "ms-101"],
    )
    .await;
    app.assert_search(
        "MolecularSequence?variant-start=le100",
        &["ms-99", "ms-100"],
    )
    .await;
    app.assert_search(
        "MolecularSequence?variant-start=ne100",
        &["ms-99", "ms-101"],
    )
    .await;
    app.assert_search("MolecularSequence?variant-end=101", &["ms-100"])
        .await;
}

#[tokio::test]
async fn missing() {
    let app = app().await;
    app.assert_search("RiskAssessment?probability:missing=true", &["ra-none"])
        .await;
}

#[tokio::test]
async fn precision_range_edges_are_exact() {
    let app = app().await;
    // [1.05, 1.15): the lower edge is in, the upper edge is out.
    app.assert_search("RiskAssessment?probability=1.1", &["ra-edge-lo"])
        .await;
}

const MALFORMED: [&str; 10] = [
    "abc",
    "gt",
    "0.5.1",
    "0x10",
    "NaN",
    "inf",
    "1e400",
    "xx0.5",
    "' OR 1=1 --",
    "0,5,x",
];

#[tokio::test]
async fn malformed_numbers_are_400() {
    let app = app().await;
    for bad in MALFORMED {
        app.assert_rejected(&format!("RiskAssessment?probability={bad}"))
            .await;
    }
}

#[tokio::test]
async fn malformed_numbers_name_the_parameter() {
    let app = app().await;
    for bad in MALFORMED {
        app.assert_bad_search(&format!("RiskAssessment?probability={bad}"), "probability")
            .await;
    }
}
