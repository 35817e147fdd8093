//! Router-level tests of transaction and batch Bundles.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::{Value, json};

fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

fn post_entry(full_url: &str, resource: Value) -> Value {
    let ty = resource["resourceType"].as_str().unwrap().to_string();
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": ty}})
}

async fn total(app: &TestApp, query: &str) -> u64 {
    let r = app.get(&format!("/fhir/default/{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["total"].as_u64().unwrap()
}

#[tokio::test]
async fn transaction_resolves_placeholders_and_answers_in_bundle_order() {
    let app = TestApp::new();
    let patient_urn = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a";
    let bundle = transaction(vec![
        post_entry(
            "urn:uuid:0f3c6c47-0000-4000-8000-000000000001",
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "hb"},
                   "subject": {"reference": patient_urn},
                   "extension": [{"url": "http://x", "valueReference": {"reference": patient_urn}}]}),
        ),
        post_entry(
            patient_urn,
            json!({"resourceType": "Patient", "identifier": [{"system": "urn:sys", "value": "tx1"}]}),
        ),
        json!({"resource": {"resourceType": "Patient", "id": "fixed", "gender": "male"},
               "request": {"method": "PUT", "url": "Patient/fixed"}}),
        json!({"request": {"method": "GET", "url": "Patient?identifier=urn:sys|tx1"}}),
    ]);
    let r = app.send_json("POST", "/fhir/default", &bundle).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["type"], "transaction-response");
    let entries = r.json["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0]["response"]["status"], "201 Created");
    assert_eq!(entries[1]["response"]["status"], "201 Created");
    assert_eq!(entries[2]["response"]["status"], "201 Created");
    assert_eq!(
        entries[2]["response"]["location"],
        "Patient/fixed/_history/1"
    );
    assert_eq!(entries[2]["response"]["etag"], "W/\"1\"");
    assert!(entries[2]["response"]["lastModified"].is_string());
    let patient_id = entries[1]["resource"]["id"].as_str().unwrap();
    let subject = format!("Patient/{patient_id}");
    assert_eq!(
        entries[0]["resource"]["subject"]["reference"],
        subject.as_str()
    );
    assert_eq!(
        entries[0]["resource"]["extension"][0]["valueReference"]["reference"],
        subject.as_str()
    );
    // The GET ran after the writes, in the same transaction.
    assert_eq!(entries[3]["response"]["status"], "200 OK");
    assert_eq!(entries[3]["resource"]["total"], 1);
    let obs_id = entries[0]["resource"]["id"].as_str().unwrap();
    let stored = app
        .get(&format!("/fhir/default/Observation/{obs_id}"))
        .await;
    assert_eq!(stored.json["subject"]["reference"], subject.as_str());
    assert_eq!(
        total(&app, &format!("Observation?subject={subject}")).await,
        1
    );
}

#[tokio::test]
async fn failing_transactions_roll_back_everything() {
    let app = TestApp::new();
    let good = post_entry("urn:uuid:a", json!({"resourceType": "Patient"}));
    let cases = vec![
        (
            StatusCode::BAD_REQUEST,
            transaction(vec![
                good.clone(),
                post_entry(
                    "urn:uuid:b",
                    json!({"resourceType": "Patient", "birthDate": "nope"}),
                ),
            ]),
        ),
        (
            StatusCode::BAD_REQUEST,
            transaction(vec![
                good.clone(),
                post_entry(
                    "urn:uuid:c",
                    json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "urn:uuid:undefined"}}),
                ),
            ]),
        ),
        (
            StatusCode::PRECONDITION_FAILED,
            transaction(vec![
                good.clone(),
                post_entry(
                    "urn:uuid:d",
                    json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient?identifier=urn:sys|nobody"}}),
                ),
            ]),
        ),
        (
            StatusCode::BAD_REQUEST,
            transaction(vec![
                good.clone(),
                json!({"request": {"method": "POST", "url": "Patient"}}),
            ]),
        ),
        (
            StatusCode::NOT_FOUND,
            transaction(vec![
                good.clone(),
                json!({"resource": {"resourceType": "Foo"}, "request": {"method": "POST", "url": "Foo"}}),
            ]),
        ),
        (
            StatusCode::PRECONDITION_FAILED,
            transaction(vec![
                good.clone(),
                json!({"resource": {"resourceType": "Patient", "id": "p"}, "request": {"method": "PUT", "url": "Patient/p", "ifMatch": "W/\"4\""}}),
            ]),
        ),
        (
            StatusCode::BAD_REQUEST,
            transaction(vec![
                good.clone(),
                json!({"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=a|1"}}),
                json!({"resource": {"resourceType": "Patient"}, "request": {"method": "PUT", "url": "Patient?identifier=a%7C1"}}),
            ]),
        ),
        (
            StatusCode::BAD_REQUEST,
            transaction(vec![
                good.clone(),
                json!({"resource": {"resourceType": "Patient", "id": "x"}, "request": {"method": "PUT", "url": "Patient/x"}}),
                json!({"request": {"method": "DELETE", "url": "Patient/x"}}),
            ]),
        ),
    ];
    for (i, (expected, bundle)) in cases.into_iter().enumerate() {
        let r = app.send_json("POST", "/fhir/default", &bundle).await;
        assert_eq!(r.status, expected, "case {i}: {}", r.text);
        assert!(
            r.outcome_text().contains("Bundle.entry["),
            "case {i}: {}",
            r.text
        );
    }
    let r = app.get("/fhir/default/_history").await;
    assert_eq!(r.json["total"], 0, "nothing may be written: {}", r.text);
    // The failing entry's index is named in message and expression.
    let r = app
        .send_json(
            "POST",
            "/fhir/default",
            &transaction(vec![
                good,
                post_entry(
                    "urn:uuid:b",
                    json!({"resourceType": "Patient", "birthDate": "nope"}),
                ),
            ]),
        )
        .await;
    assert!(r.outcome_text().contains("Bundle.entry[1]"));
    assert!(
        r.json["issue"][0]["expression"][0]
            .as_str()
            .unwrap()
            .starts_with("Bundle.entry[1].resource"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn transaction_conditionals() {
    let app = TestApp::new();
    let existing = app.create(&json!({"resourceType": "Patient", "identifier": [{"system": "urn:sys", "value": "known"}]})).await;
    let bundle = transaction(vec![
        json!({"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:sys", "value": "known"}]},
               "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:sys|known"}}),
        post_entry(
            "urn:uuid:o1",
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "a"}, "subject": {"reference": "urn:uuid:p"}}),
        ),
        post_entry(
            "urn:uuid:o2",
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "b"}, "subject": {"reference": "Patient?identifier=urn:sys|known"}}),
        ),
        json!({"resource": {"resourceType": "Patient", "identifier": [{"system": "urn:sys", "value": "cond"}]},
               "request": {"method": "PUT", "url": "Patient?identifier=urn:sys|cond"}}),
    ]);
    let r = app.send_json("POST", "/fhir/default", &bundle).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let entries = r.json["entry"].as_array().unwrap();
    assert_eq!(entries[0]["response"]["status"], "200 OK");
    assert_eq!(entries[0]["resource"]["id"], existing.as_str());
    let subject = format!("Patient/{existing}");
    assert_eq!(
        entries[1]["resource"]["subject"]["reference"],
        subject.as_str()
    );
    assert_eq!(
        entries[2]["resource"]["subject"]["reference"],
        subject.as_str()
    );
    assert_eq!(entries[3]["response"]["status"], "201 Created");
    assert_eq!(total(&app, "Patient").await, 2);

    // DELETE runs before POST: delete + re-create of the same identifier in one transaction.
    let bundle = transaction(vec![
        json!({"resource": {"resourceType": "Patient", "identifier": [{"system": "urn:sys", "value": "known"}]},
               "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:sys|known"}}),
        json!({"request": {"method": "DELETE", "url": format!("Patient/{existing}")}}),
    ]);
    let r = app.send_json("POST", "/fhir/default", &bundle).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["entry"][0]["response"]["status"], "201 Created");
    assert_ne!(r.json["entry"][0]["resource"]["id"], existing.as_str());
    assert_eq!(r.json["entry"][1]["response"]["status"], "204 No Content");

    // ifNoneExist with several matches → 412.
    app.create(&json!({"resourceType": "Patient", "name": [{"family": "Dup"}]}))
        .await;
    app.create(&json!({"resourceType": "Patient", "name": [{"family": "Dup"}]}))
        .await;
    let bundle = transaction(vec![
        json!({"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient", "ifNoneExist": "family=Dup"}}),
    ]);
    assert_eq!(
        app.send_json("POST", "/fhir/default", &bundle).await.status,
        StatusCode::PRECONDITION_FAILED
    );
}

#[tokio::test]
async fn transaction_prefer_minimal_and_patch_entry() {
    let app = TestApp::new();
    let id = app.create(&json!({"resourceType": "Patient"})).await;
    // [{"op":"add","path":"/gender","value":"male"}]
    let data = "W3sib3AiOiJhZGQiLCJwYXRoIjoiL2dlbmRlciIsInZhbHVlIjoibWFsZSJ9XQ==";
    let bundle = transaction(vec![json!({
        "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data},
        "request": {"method": "PATCH", "url": format!("Patient/{id}")}
    })]);
    let r = app
        .request(
            "POST",
            "/fhir/default",
            &[
                ("content-type", "application/fhir+json"),
                ("prefer", "return=minimal"),
            ],
            bundle.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["entry"][0]["response"]["status"], "200 OK");
    assert!(r.json["entry"][0].get("resource").is_none());
    assert_eq!(
        app.get(&format!("/fhir/default/Patient/{id}")).await.json["gender"],
        "male"
    );
}

#[tokio::test]
async fn batch_entries_succeed_or_fail_alone() {
    let app = TestApp::new();
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "birthDate": "bad"}, "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient/missing"}},
        {"request": {"method": "BREW", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "id": "b1"}, "request": {"method": "PUT", "url": "Patient/b1"}},
    ]});
    let r = app.send_json("POST", "/fhir/default", &bundle).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["type"], "batch-response");
    let statuses: Vec<&str> = r.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        vec![
            "201 Created",
            "400 Bad Request",
            "404 Not Found",
            "400 Bad Request",
            "201 Created"
        ]
    );
    assert_eq!(
        r.json["entry"][1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(total(&app, "Patient").await, 2);
}

#[tokio::test]
async fn bundle_endpoint_rejects_other_input() {
    let app = TestApp::new();
    let r = app
        .send_json(
            "POST",
            "/fhir/default",
            &json!({"resourceType": "Bundle", "type": "collection"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .send_json("POST", "/fhir/default", &json!({"resourceType": "Patient"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .send_json("POST", "/fhir/nosuch", &transaction(vec![]))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .send_json("POST", "/fhir/default", &transaction(vec![]))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["type"], "transaction-response");
    let r = app
        .send_json(
            "POST",
            "/fhir/default",
            &json!({"resourceType": "Bundle", "type": "batch", "entry": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn conditional_reference_to_an_entry_of_the_same_transaction() {
    let app = TestApp::new();
    let bundle = transaction(vec![
        post_entry(
            "urn:uuid:o",
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "a"},
                                        "subject": {"reference": "Patient?identifier=urn:sys|new"}}),
        ),
        json!({"resource": {"resourceType": "Patient", "identifier": [{"system": "urn:sys", "value": "new"}]},
               "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:sys|new"}}),
        json!({"resource": {"resourceType": "Practitioner", "identifier": [{"system": "urn:sys", "value": "dr"}]},
               "request": {"method": "PUT", "url": "Practitioner?identifier=urn:sys|dr"}}),
        post_entry(
            "urn:uuid:o2",
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "b"},
                                         "performer": [{"reference": "Practitioner?identifier=urn:sys%7Cdr"}]}),
        ),
    ]);
    let r = app.send_json("POST", "/fhir/default", &bundle).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let e = r.json["entry"].as_array().unwrap();
    assert_eq!(
        e[0]["resource"]["subject"]["reference"],
        format!("Patient/{}", e[1]["resource"]["id"].as_str().unwrap())
    );
    assert_eq!(
        e[3]["resource"]["performer"][0]["reference"],
        format!("Practitioner/{}", e[2]["resource"]["id"].as_str().unwrap())
    );
}
