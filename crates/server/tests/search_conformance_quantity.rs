//! Conformance of quantity search parameters (FHIR R4 search §3.1.1.4.6): `[prefix]value`,
//! `value|system|code`, `value||code` (code or unit in any system), the implicit precision
//! range of the value, components vs. the Observation value, and UCUM conversion between
//! comparable units (mg/dL vs g/L, h vs d).

mod common;

use common::TestApp;
use serde_json::{Value, json};

const UCUM: &str = "http://unitsofmeasure.org";

fn obs(id: &str, value: Value) -> Value {
    let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
                       "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]}});
    if let Some(obj) = value.as_object() {
        for (k, v) in obj {
            o[k] = v.clone();
        }
    }
    o
}

fn fixtures() -> Vec<Value> {
    vec![
        obs(
            "q-mgdl-100",
            json!({"valueQuantity": {"value": 100, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"}}),
        ),
        obs(
            "q-gl-1",
            json!({"valueQuantity": {"value": 1, "unit": "g/L", "system": UCUM, "code": "g/L"}}),
        ),
        obs(
            "q-mgdl-5.4",
            json!({"valueQuantity": {"value": 5.4, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"}}),
        ),
        obs(
            "q-unit-only",
            json!({"valueQuantity": {"value": 5.4, "unit": "mg"}}),
        ),
        obs(
            "q-other-sys",
            json!({"valueQuantity": {"value": 5.4, "system": "http://example.org/units", "code": "mg"}}),
        ),
        obs(
            "q-mmol",
            json!({"valueQuantity": {"value": 5.4, "unit": "mmol/l", "system": UCUM, "code": "mmol/L"}}),
        ),
        obs("q-none", json!({"valueString": "n/a"})),
        obs(
            "comp-1",
            json!({"component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                 "valueQuantity": {"value": 120, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                 "valueQuantity": {"value": 80, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}}]}),
        ),
        json!({"resourceType": "Encounter", "id": "enc-len", "status": "finished",
               "class": {"code": "IMP"}, "length": {"value": 3, "unit": "d", "system": UCUM, "code": "d"}}),
    ]
}

async fn app() -> TestApp {
    let app = TestApp::new();
    app.put_all(&fixtures()).await;
    app
}

#[tokio::test]
async fn value_only_matches_any_unit() {
    let app = app().await;
    app.assert_search(
        "Observation?value-quantity=5.4",
        &["q-mgdl-5.4", "q-unit-only", "q-other-sys", "q-mmol"],
    )
    .await;
    app.assert_search("Observation?value-quantity=100", &["q-mgdl-100"])
        .await;
    app.assert_search("Observation?value-quantity=ge100", &["q-mgdl-100"])
        .await;
    app.assert_search("Observation?value-quantity=le1", &["q-gl-1"])
        .await;
    app.assert_search("Observation?value-quantity=5.5", &[])
        .await;
}

#[tokio::test]
async fn system_and_code() {
    let app = app().await;
    app.assert_search(
        &format!("Observation?value-quantity=5.4|{UCUM}|mmol/L"),
        &["q-mmol"],
    )
    .await;
    app.assert_search(
        &format!("Observation?value-quantity=5.40|{UCUM}|mmol/L"),
        &["q-mmol"],
    )
    .await;
    app.assert_search(
        &format!("Observation?value-quantity=5.41|{UCUM}|mmol/L"),
        &[],
    )
    .await;
    app.assert_search(
        &format!("Observation?value-quantity=lt6|{UCUM}|mmol/L"),
        &["q-mmol"],
    )
    .await;
    app.assert_search(
        &format!("Observation?value-quantity=gt6|{UCUM}|mmol/L"),
        &[],
    )
    .await;
    app.assert_search(
        &format!("Observation?value-quantity=5.4|{UCUM}|mg/dL"),
        &["q-mgdl-5.4"],
    )
    .await;
    // `||code`: the code or the unit, in any system.
    app.assert_search(
        "Observation?value-quantity=5.4||mg",
        &["q-unit-only", "q-other-sys"],
    )
    .await;
    app.assert_search(
        "Observation?value-quantity=5.4|http://example.org/units|mg",
        &["q-other-sys"],
    )
    .await;
    app.assert_search(&format!("Observation?value-quantity=5.4|{UCUM}|mg"), &[])
        .await;
    // Codes are case-sensitive.
    app.assert_search(
        &format!("Observation?value-quantity=5.4|{UCUM}|MMOL/L"),
        &[],
    )
    .await;
}

#[tokio::test]
async fn components_are_not_the_observation_value() {
    let app = app().await;
    app.assert_search("Observation?value-quantity=120", &[])
        .await;
    app.assert_search("Observation?component-value-quantity=120", &["comp-1"])
        .await;
    app.assert_search(
        &format!("Observation?component-value-quantity=lt100|{UCUM}|mm[Hg]"),
        &["comp-1"],
    )
    .await;
    app.assert_search("Observation?combo-value-quantity=80", &["comp-1"])
        .await;
    app.assert_search(
        "Observation?combo-value-quantity=5.4",
        &["q-mgdl-5.4", "q-unit-only", "q-other-sys", "q-mmol"],
    )
    .await;
    app.assert_search(
        "Observation?value-quantity:missing=true",
        &["q-none", "comp-1"],
    )
    .await;
    app.assert_search(&format!("Encounter?length=3|{UCUM}|d"), &["enc-len"])
        .await;
}

#[tokio::test]
async fn ucum_conversion_between_comparable_units() {
    let app = app().await;
    app.assert_search(
        &format!("Observation?value-quantity=100|{UCUM}|mg/dL"),
        &["q-mgdl-100", "q-gl-1"],
    )
    .await;
    app.assert_search(
        &format!("Observation?value-quantity=1|{UCUM}|g/L"),
        &["q-gl-1", "q-mgdl-100"],
    )
    .await;
    app.assert_search(
        &format!("Observation?value-quantity=gt5|{UCUM}|mg/dL"),
        &["q-mgdl-5.4", "q-mgdl-100", "q-gl-1"],
    )
    .await;
    app.assert_search(
        &format!("Observation?value-quantity=lt0.5|{UCUM}|g/L"),
        &["q-mgdl-5.4"],
    )
    .await;
    app.assert_search(
        &format!("Observation?value-quantity=0.054|{UCUM}|g/L"),
        &["q-mgdl-5.4"],
    )
    .await;
    app.assert_search(&format!("Encounter?length=72|{UCUM}|h"), &["enc-len"])
        .await;
    // Not comparable: mmol/L is an amount of substance, not a mass.
    app.assert_search(&format!("Observation?value-quantity=5.4|{UCUM}|g/L"), &[])
        .await;
}

const MALFORMED: [&str; 5] = [
    "abc|http://unitsofmeasure.org|mg",
    "|http://unitsofmeasure.org|mg",
    "xx5.4",
    "gt|http://unitsofmeasure.org|mg",
    "' OR 1=1 --",
];

#[tokio::test]
async fn malformed_quantities_are_400() {
    let app = app().await;
    for bad in MALFORMED {
        app.assert_rejected(&format!("Observation?value-quantity={bad}"))
            .await;
    }
}

#[tokio::test]
async fn malformed_quantities_name_the_parameter() {
    let app = app().await;
    for bad in MALFORMED {
        app.assert_bad_search(
            &format!("Observation?value-quantity={bad}"),
            "value-quantity",
        )
        .await;
    }
}
