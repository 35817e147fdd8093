//! Hostile and odd input never yields a 5xx, and every error is an OperationOutcome.

mod common;

use common::{FHIR_JSON, TestApp};
use proptest::strategy::Strategy;

fn assert_client_error_or_ok(what: &str, r: &common::TestResponse) {
    assert!(r.status.as_u16() < 500, "{what}: {} {}", r.status, r.text);
    if r.status.is_client_error() {
        assert_eq!(
            r.json["resourceType"], "OperationOutcome",
            "{what}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn nasty_bodies() {
    let app = TestApp::new();
    let deep_extension = {
        let mut v = serde_json::json!({"url": "x", "valueString": "leaf"});
        for _ in 0..20 {
            v = serde_json::json!({"url": "x", "extension": [v]});
        }
        serde_json::json!({"resourceType": "Patient", "extension": [v]}).to_string()
    };
    let bodies = [
        r#"{"resourceType":"Patient","multipleBirthInteger":1e999999}"#.to_string(),
        r#"{"resourceType":"Patient","multipleBirthInteger":123456789012345678901234567890}"#
            .to_string(),
        r#"{"resourceType":"Patient","name":null}"#.to_string(),
        r#"{"resourceType":"Patient","name":[null]}"#.to_string(),
        r#"{"resourceType":"Patient","name":[{"family":"\u0000\ud83d\ude00"}]}"#.to_string(),
        r#"{"resourceType":"Patient","id":"ü"}"#.to_string(),
        r#"{"resourceType":"Patient","birthDate":"0000-01-01"}"#.to_string(),
        r#"{"resourceType":"Patient","birthDate":"9999-12-31"}"#.to_string(),
        r#"{"resourceType":"Patient","meta":{"versionId":"x","lastUpdated":"garbage"}}"#
            .to_string(),
        r#"{"resourceType":"Patient","resourceType":"Observation"}"#.to_string(),
        r#"{"resourceType":7}"#.to_string(),
        r#"{"resourceType":"Patient","contained":[{"resourceType":"Patient","contained":[{}]}]}"#
            .to_string(),
        format!(
            r#"{{"resourceType":"Patient","name":[{{"family":"{}"}}]}}"#,
            "x".repeat(100_000)
        ),
        deep_extension,
        "\u{feff}{}".to_string(),
        "null".to_string(),
        "{\"a\":\"\\uZZZZ\"}".to_string(),
        String::from_utf8_lossy(&[0xff, 0xfe, 0x00]).into_owned(),
    ];
    for body in bodies {
        let what = body.chars().take(60).collect::<String>();
        let r = app
            .request(
                "POST",
                "/fhir/default/Patient",
                &[("content-type", FHIR_JSON)],
                body.clone(),
            )
            .await;
        assert_client_error_or_ok(&what, &r);
        let r = app
            .request(
                "PUT",
                "/fhir/default/Patient/x",
                &[("content-type", FHIR_JSON)],
                body.clone(),
            )
            .await;
        assert_client_error_or_ok(&what, &r);
        let r = app
            .request(
                "POST",
                "/fhir/default",
                &[("content-type", FHIR_JSON)],
                body.clone(),
            )
            .await;
        assert_client_error_or_ok(&what, &r);
        let r = app
            .request(
                "PATCH",
                "/fhir/default/Patient/x",
                &[("content-type", "application/json-patch+json")],
                body,
            )
            .await;
        assert_client_error_or_ok(&what, &r);
    }
}

#[tokio::test]
async fn nasty_urls_and_headers() {
    let app = TestApp::new();
    app.create(&serde_json::json!({"resourceType": "Patient", "birthDate": "2000-01-01"}))
        .await;
    let urls = [
        "/fhir/default/Patient?_count=99999999999999999999999",
        "/fhir/default/Patient?_count=-1",
        "/fhir/default/Patient?_cursor=-1",
        "/fhir/default/Patient?_cursor=abc",
        "/fhir/default/Patient?birthdate=ge",
        "/fhir/default/Patient?birthdate=ge2000-99",
        "/fhir/default/Patient?_lastUpdated=gt9999999",
        "/fhir/default/Patient?identifier=%FF%FE",
        "/fhir/default/Patient?name:exact=&name:contains=%00",
        "/fhir/default/Patient?general-practitioner.name=x",
        "/fhir/default/Patient?_has:Observation:subject:code=1",
        "/fhir/default/Patient?gender:bogus=male",
        "/fhir/default/Patient?birthdate=2000-01-01,2001,ne2002,sa2003,eb2004,ap2005",
        "/fhir/default/Observation?value-quantity=5.4|http://unitsofmeasure.org|mg",
        "/fhir/default/Observation?value-quantity=abc",
        "/fhir/default/Observation?code-value-quantity=x$5",
        "/fhir/default/Patient/%2e%2e/%2e%2e/etc",
        "/fhir/default/Patient/x/_history/99999999999999999999999",
        "/fhir/default/_history?_since=2020-01-01T00:00:00%2B25:00",
        "/fhir/default/_history?_count=x",
        "/fhir/default/_history?_cursor=1.x",
        "/fhir/%20/Patient",
        "/fhir/default/Patient?_format=text/turtle",
        "/fhir/default/Patient?_elements=,,,",
        "/fhir/default?_type=Patient",
        "/fhir/default?_lastUpdated=ge2000",
    ];
    for url in urls {
        let r = app.get(url).await;
        assert_client_error_or_ok(url, &r);
    }
    for (name, value) in [
        ("if-match", "W/\"99999999999999999999999\""),
        ("prefer", "return=;;;,,"),
        ("accept", ";;;"),
        ("if-none-match", "x"),
    ] {
        let r = app
            .request("GET", "/fhir/default/Patient", &[(name, value)], "")
            .await;
        assert_client_error_or_ok(name, &r);
        let r = app
            .request(
                "PUT",
                "/fhir/default/Patient/a",
                &[("content-type", FHIR_JSON), (name, value)],
                r#"{"resourceType":"Patient","id":"a"}"#,
            )
            .await;
        assert_client_error_or_ok(name, &r);
    }
}

/// Random query strings (generated by proptest, one shared store so it stays fast).
#[tokio::test]
async fn random_search_queries_never_fail_the_server() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let app = TestApp::new();
    app.create(&serde_json::json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})).await;
    let mut runner = TestRunner::deterministic();
    let strategy = "[a-z_:.\\-=&%0-9|,$]{0,40}";
    for _ in 0..200 {
        let query = strategy.new_tree(&mut runner).expect("value").current();
        let r = app.get(&format!("/fhir/default/Observation?{query}")).await;
        assert_client_error_or_ok(&query, &r);
    }
}
