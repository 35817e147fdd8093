//! Conformance of composite search parameters (FHIR R4 search §3.1.1.4.11): `a$b`, where
//! every component matches by the rules of its own type within the same element (an Observation,
//! or one of its components), prefixes on the value component, and OR over pairs.

mod common;

use common::TestApp;
use serde_json::{Value, json};

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

fn obs(id: &str, code: &str, extra: Value) -> Value {
    let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
                       "code": {"coding": [{"system": LOINC, "code": code}]}});
    if let Some(obj) = extra.as_object() {
        for (k, v) in obj {
            o[k] = v.clone();
        }
    }
    o
}

fn mmol(value: f64) -> Value {
    json!({"valueQuantity": {"value": value, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}})
}

fn bp(id: &str, systolic: i64, diastolic: i64) -> Value {
    let component = |code: &str, v: i64| {
        json!({"code": {"coding": [{"system": LOINC, "code": code}]},
               "valueQuantity": {"value": v, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}})
    };
    obs(
        id,
        "85354-9",
        json!({"component": [component("8480-6", systolic), component("8462-4", diastolic)]}),
    )
}

fn fixtures() -> Vec<Value> {
    vec![
        obs("cv-q", "2339-0", mmol(5.4)),
        obs("cv-q2", "2339-0", mmol(7.1)),
        obs("cv-q3", "2345-7", mmol(5.4)),
        obs(
            "cv-c",
            "882-1",
            json!({"valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "112144000"}]}}),
        ),
        obs("cv-d", "21112-8", json!({"valueDateTime": "2020-05-17"})),
        obs("cv-s", "8251-1", json!({"valueString": "Schmerz im Knie"})),
        bp("bp", 120, 80),
        // Swapped values: (8480-6, 80) and (8462-4, 120) exist, (8480-6, 120) does not.
        bp("bp-swapped", 80, 120),
    ]
}

async fn app() -> TestApp {
    let app = TestApp::new();
    app.put_all(&fixtures()).await;
    app
}

#[tokio::test]
async fn token_and_quantity_pairs() {
    let app = app().await;
    app.assert_search(
        &format!("Observation?code-value-quantity={LOINC}|2339-0$5.4|{UCUM}|mmol/L"),
        &["cv-q"],
    )
    .await;
    app.assert_search("Observation?code-value-quantity=2339-0$5.4", &["cv-q"])
        .await;
    app.assert_search("Observation?code-value-quantity=2339-0$7.1", &["cv-q2"])
        .await;
    app.assert_search("Observation?code-value-quantity=2345-7$5.4", &["cv-q3"])
        .await;
    app.assert_search("Observation?code-value-quantity=2339-0$6.3", &[])
        .await;
    // OR over pairs.
    app.assert_search(
        "Observation?code-value-quantity=2339-0$5.4,2345-7$5.4",
        &["cv-q", "cv-q3"],
    )
    .await;
    // AND of two composite criteria.
    app.assert_search(
        "Observation?code-value-quantity=2339-0$5.4&code-value-quantity=2345-7$5.4",
        &[],
    )
    .await;
}

#[tokio::test]
async fn components_pair_within_the_same_component() {
    let app = app().await;
    app.assert_search(
        "Observation?component-code-value-quantity=8480-6$120",
        &["bp"],
    )
    .await;
    app.assert_search(
        "Observation?component-code-value-quantity=8480-6$80",
        &["bp-swapped"],
    )
    .await;
    app.assert_search(
        &format!("Observation?component-code-value-quantity={LOINC}|8462-4$80|{UCUM}|mm[Hg]"),
        &["bp"],
    )
    .await;
    // combo: the Observation's own value or a component's.
    app.assert_search(
        "Observation?combo-code-value-quantity=2339-0$5.4",
        &["cv-q"],
    )
    .await;
    app.assert_search("Observation?combo-code-value-quantity=8462-4$80", &["bp"])
        .await;
    // The Observation's own code with a component's value is not a pair.
    app.assert_search("Observation?combo-code-value-quantity=85354-9$120", &[])
        .await;
}

#[tokio::test]
async fn concept_date_and_string_values() {
    let app = app().await;
    app.assert_search(
        &format!("Observation?code-value-concept={LOINC}|882-1$http://snomed.info/sct|112144000"),
        &["cv-c"],
    )
    .await;
    app.assert_search("Observation?code-value-concept=882-1$112144000", &["cv-c"])
        .await;
    app.assert_search("Observation?code-value-concept=882-1$999", &[])
        .await;
    app.assert_search("Observation?code-value-date=21112-8$2020-05-17", &["cv-d"])
        .await;
    app.assert_search(
        "Observation?code-value-string=8251-1$Schmerz im Knie",
        &["cv-s"],
    )
    .await;
    app.assert_search(
        "Observation?code-value-string=8251-1$SCHMERZ IM KNIE",
        &["cv-s"],
    )
    .await;
}

#[tokio::test]
async fn value_components_follow_their_own_type_rules() {
    let app = app().await;
    // Quantity precision: 5.40 is [5.395, 5.405), 5 is [4.5, 5.5).
    app.assert_search("Observation?code-value-quantity=2339-0$5.40", &["cv-q"])
        .await;
    app.assert_search("Observation?code-value-quantity=2339-0$5", &["cv-q"])
        .await;
    // Date precision: the year contains the day.
    app.assert_search("Observation?code-value-date=21112-8$2020", &["cv-d"])
        .await;
    app.assert_search("Observation?code-value-date=21112-8$2020-05", &["cv-d"])
        .await;
}

#[tokio::test]
async fn string_components_match_by_starts_with() {
    let app = app().await;
    app.assert_search("Observation?code-value-string=8251-1$schmerz", &["cv-s"])
        .await;
    app.assert_search("Observation?code-value-string=8251-1$Schmerz im", &["cv-s"])
        .await;
    app.assert_search("Observation?code-value-string=8251-1$knie", &[])
        .await;
}

#[tokio::test]
async fn prefixes_on_the_value_component() {
    let app = app().await;
    app.assert_search("Observation?code-value-quantity=2339-0$gt6", &["cv-q2"])
        .await;
    app.assert_search("Observation?code-value-quantity=2339-0$lt6", &["cv-q"])
        .await;
    app.assert_search(
        "Observation?code-value-quantity=2339-0$ge5.4",
        &["cv-q", "cv-q2"],
    )
    .await;
    app.assert_search(
        &format!("Observation?code-value-quantity=2339-0$le7.1|{UCUM}|mmol/L"),
        &["cv-q", "cv-q2"],
    )
    .await;
    app.assert_search(
        "Observation?component-code-value-quantity=8480-6$gt100",
        &["bp"],
    )
    .await;
    app.assert_search(
        "Observation?component-code-value-quantity=8462-4$gt100",
        &["bp-swapped"],
    )
    .await;
    app.assert_search(
        "Observation?code-value-date=21112-8$ge2020-01-01",
        &["cv-d"],
    )
    .await;
    app.assert_search("Observation?code-value-date=21112-8$lt2020-01-01", &[])
        .await;
}

#[tokio::test]
async fn malformed_composites_are_400_naming_the_parameter() {
    let app = app().await;
    for bad in ["2339-0", "2339-0$abc", "a$b$c", "2339-0$xx5"] {
        app.assert_bad_search(
            &format!("Observation?code-value-quantity={bad}"),
            "code-value-quantity",
        )
        .await;
    }
}
