//! Router-level tests of the instance and type interactions.

mod common;

use axum::http::StatusCode;
use common::{FHIR_JSON, TestApp};
use serde_json::{Value, json};

fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family}], "identifier": [{"system": "urn:sys", "value": family}]})
}

#[tokio::test]
async fn probes() {
    let app = TestApp::new();
    let r = app.get("/healthz").await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn create_read_update_delete_lifecycle() {
    let app = TestApp::new();
    let r = app
        .send_json(
            "POST",
            "/fhir/default/Patient",
            &json!({"resourceType": "Patient", "id": "client-chosen", "gender": "female"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    assert_ne!(id, "client-chosen", "a client id on POST is ignored");
    assert!(id.len() <= 64);
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert_eq!(
        r.header("location"),
        Some(format!("http://test.local/fhir/default/Patient/{id}/_history/1").as_str())
    );
    assert!(r.header("last-modified").unwrap().ends_with(" GMT"));
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/fhir+json")
    );
    assert_eq!(r.json["meta"]["versionId"], "1");

    let r = app.get(&format!("/fhir/default/Patient/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["gender"], "female");
    assert_eq!(r.header("etag"), Some("W/\"1\""));

    let update = json!({"resourceType": "Patient", "id": id, "gender": "male"});
    let r = app
        .send_json("PUT", &format!("/fhir/default/Patient/{id}"), &update)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    assert!(r.header("location").unwrap().ends_with("/_history/2"));

    // Stale If-Match → 412, nothing written.
    let r = app
        .request(
            "PUT",
            &format!("/fhir/default/Patient/{id}"),
            &[("content-type", FHIR_JSON), ("if-match", "W/\"1\"")],
            update.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    r.outcome_text();
    let r = app
        .request(
            "PUT",
            &format!("/fhir/default/Patient/{id}"),
            &[("content-type", FHIR_JSON), ("if-match", "W/\"2\"")],
            update.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("etag"), Some("W/\"3\""));

    let r = app
        .get(&format!("/fhir/default/Patient/{id}/_history/1"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["gender"], "female");
    assert_eq!(
        app.get(&format!("/fhir/default/Patient/{id}/_history/9"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/fhir/default/Patient/{id}/_history/x"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let r = app
        .request("DELETE", &format!("/fhir/default/Patient/{id}"), &[], "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.outcome_text();
    let r = app.get(&format!("/fhir/default/Patient/{id}")).await;
    assert_eq!(r.status, StatusCode::GONE);
    r.outcome_text();
    // Deleting again (or something absent) is fine.
    assert_eq!(
        app.request("DELETE", &format!("/fhir/default/Patient/{id}"), &[], "")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.request("DELETE", "/fhir/default/Patient/nope", &[], "")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/fhir/default/Patient/nope").await.status,
        StatusCode::NOT_FOUND
    );

    let r = app
        .get(&format!("/fhir/default/Patient/{id}/_history"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["type"], "history");
    assert_eq!(r.json["total"], 4);
    let entries = r.json["entry"].as_array().unwrap();
    assert_eq!(entries[0]["request"]["method"], "DELETE");
    assert!(entries[0].get("resource").is_none());
    assert_eq!(entries[3]["request"]["method"], "POST");
    assert_eq!(entries[3]["response"]["status"], "201 Created");
    assert_eq!(
        app.get("/fhir/default/Patient/nope/_history").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn update_creates_with_client_id_and_checks_ids() {
    let app = TestApp::new();
    let r = app
        .send_json(
            "PUT",
            "/fhir/default/Patient/p-1",
            &json!({"resourceType": "Patient", "id": "p-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.header("location"),
        Some("http://test.local/fhir/default/Patient/p-1/_history/1")
    );
    // `If-None-Match: *` makes a PUT create-only.
    let create_only = [("content-type", FHIR_JSON), ("if-none-match", "*")];
    let body = json!({"resourceType": "Patient", "id": "p-1"}).to_string();
    let r = app
        .request(
            "PUT",
            "/fhir/default/Patient/p-1",
            &create_only,
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let body = body.replace("p-1", "p-new");
    let r = app
        .request("PUT", "/fhir/default/Patient/p-new", &create_only, body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .send_json(
            "PUT",
            "/fhir/default/Patient/p-1",
            &json!({"resourceType": "Patient", "id": "p-2"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.outcome_text().contains("does not match"));
    let r = app
        .send_json(
            "PUT",
            "/fhir/default/Patient/p-1",
            &json!({"resourceType": "Patient"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .send_json(
            "PUT",
            "/fhir/default/Patient/p-1",
            &json!({"resourceType": "Observation", "id": "p-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .send_json(
            "PUT",
            "/fhir/default/Patient/bad_id!",
            &json!({"resourceType": "Patient", "id": "bad_id!"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn prefer_return_variants() {
    let app = TestApp::new();
    let body = patient("A").to_string();
    let r = app
        .request(
            "POST",
            "/fhir/default/Patient",
            &[("content-type", FHIR_JSON), ("prefer", "return=minimal")],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.text.is_empty());
    assert!(r.header("location").is_some());
    let r = app
        .request(
            "POST",
            "/fhir/default/Patient",
            &[
                ("content-type", FHIR_JSON),
                ("prefer", "return=OperationOutcome"),
            ],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    r.outcome_text();
}

#[tokio::test]
async fn conditional_create_update_delete() {
    let app = TestApp::new();
    let first = app.create(&patient("Smith")).await;
    let headers = [
        ("content-type", FHIR_JSON),
        ("if-none-exist", "identifier=urn:sys|Smith"),
    ];
    let r = app
        .request(
            "POST",
            "/fhir/default/Patient",
            &headers,
            patient("Smith").to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["id"], first.as_str());
    let r = app
        .request(
            "POST",
            "/fhir/default/Patient",
            &[
                ("content-type", FHIR_JSON),
                ("if-none-exist", "identifier=urn:sys|Jones"),
            ],
            patient("Jones").to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Two matches → 412.
    app.create(&json!({"resourceType": "Patient", "name": [{"family": "Twin"}]}))
        .await;
    app.create(&json!({"resourceType": "Patient", "name": [{"family": "Twin"}]}))
        .await;
    let r = app
        .request(
            "POST",
            "/fhir/default/Patient",
            &[
                ("content-type", FHIR_JSON),
                ("if-none-exist", "family=Twin"),
            ],
            patient("Twin").to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    // Unknown parameters in a condition are an error, not "match everything".
    let r = app
        .request(
            "POST",
            "/fhir/default/Patient",
            &[("content-type", FHIR_JSON), ("if-none-exist", "bogus=1")],
            patient("X").to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Conditional update: one match → update it; none → create; several → 412.
    let mut changed = patient("Smith");
    changed["gender"] = json!("other");
    let r = app
        .send_json(
            "PUT",
            "/fhir/default/Patient?identifier=urn:sys|Smith",
            &changed,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["id"], first.as_str());
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    let r = app
        .send_json(
            "PUT",
            "/fhir/default/Patient?identifier=urn:sys|New",
            &patient("New"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        app.send_json("PUT", "/fhir/default/Patient?family=Twin", &patient("Twin"))
            .await
            .status,
        StatusCode::PRECONDITION_FAILED
    );

    // Conditional delete.
    assert_eq!(
        app.request("DELETE", "/fhir/default/Patient?family=Twin", &[], "")
            .await
            .status,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(
        app.request(
            "DELETE",
            "/fhir/default/Patient?identifier=urn:sys|Smith",
            &[],
            ""
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/fhir/default/Patient/{first}"))
            .await
            .status,
        StatusCode::GONE
    );
    assert_eq!(
        app.request(
            "DELETE",
            "/fhir/default/Patient?identifier=urn:sys|Smith",
            &[],
            ""
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.request("DELETE", "/fhir/default/Patient", &[], "")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn json_patch() {
    let app = TestApp::new();
    let id = app.create(&patient("Doe")).await;
    let url = format!("/fhir/default/Patient/{id}");
    let ops = json!([{"op": "add", "path": "/gender", "value": "female"}]).to_string();
    let r = app
        .request(
            "PATCH",
            &url,
            &[("content-type", "application/json-patch+json")],
            ops.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["gender"], "female");
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    // Wrong content type, stale If-Match, invalid result, failing test op.
    assert_eq!(
        app.request("PATCH", &url, &[("content-type", FHIR_JSON)], ops.clone())
            .await
            .status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let r = app
        .request(
            "PATCH",
            &url,
            &[
                ("content-type", "application/json-patch+json"),
                ("if-match", "W/\"1\""),
            ],
            ops,
        )
        .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let bad = json!([{"op": "replace", "path": "/birthDate", "value": "not-a-date"}]).to_string();
    let r = app
        .request(
            "PATCH",
            &url,
            &[("content-type", "application/json-patch+json")],
            bad,
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    r.outcome_text();
    let failing = json!([{"op": "test", "path": "/gender", "value": "male"}]).to_string();
    let r = app
        .request(
            "PATCH",
            &url,
            &[("content-type", "application/json-patch+json")],
            failing,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .request(
            "PATCH",
            &url,
            &[("content-type", "application/json-patch+json")],
            "{\"op\":1}",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get(&url).await.header("etag"), Some("W/\"2\""));
    let r = app
        .request(
            "PATCH",
            "/fhir/default/Patient/missing",
            &[("content-type", "application/json-patch+json")],
            "[]",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tenants_are_isolated() {
    let app = TestApp::new();
    let id = app.create(&patient("Iso")).await;
    assert_eq!(
        app.get(&format!("/fhir/other/Patient/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let r = app.get(&format!("/fhir/nosuch/Patient/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.outcome_text().contains("tenant"));
    assert_eq!(
        app.send_json("POST", "/fhir/nosuch/Patient", &patient("X"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/fhir/nosuch/metadata").await.status,
        StatusCode::NOT_FOUND
    );
    let r = app.get("/fhir/other/Patient?identifier=urn:sys|Iso").await;
    assert_eq!(r.json["total"], 0);
}

#[tokio::test]
async fn history_levels_and_since() {
    let app = TestApp::new();
    let a = app.create(&patient("H1")).await;
    app.create(&json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}))
        .await;
    let r = app.get("/fhir/default/Patient/_history").await;
    assert_eq!(r.json["total"], 1);
    assert_eq!(
        r.json["entry"][0]["fullUrl"],
        format!("http://test.local/fhir/default/Patient/{a}")
    );
    let r = app.get("/fhir/default/_history?_count=1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["total"], 2);
    assert_eq!(r.json["entry"].as_array().unwrap().len(), 1);
    let next = r.json["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("next link")["url"]
        .as_str()
        .unwrap()
        .to_string();
    let next = next.strip_prefix("http://test.local").unwrap();
    let r2 = app.get(next).await;
    assert_eq!(r2.status, StatusCode::OK);
    assert_eq!(r2.json["entry"].as_array().unwrap().len(), 1);
    assert_ne!(
        r2.json["entry"][0]["fullUrl"],
        r.json["entry"][0]["fullUrl"]
    );
    let r = app
        .get("/fhir/default/_history?_since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(r.json["total"], 0);
    assert_eq!(
        app.get("/fhir/default/_history?_since=notadate")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn head_and_conditional_read() {
    let app = TestApp::new();
    let id = app.create(&patient("Head")).await;
    let r = app
        .request("HEAD", &format!("/fhir/default/Patient/{id}"), &[], "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.is_empty());
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    let r = app
        .request(
            "GET",
            &format!("/fhir/default/Patient/{id}"),
            &[("if-none-match", "W/\"1\"")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.text.is_empty());
    let r = app
        .request("HEAD", "/fhir/default/Patient/missing", &[], "")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn validate_operation_reports_without_writing() {
    let app = TestApp::new();
    let r = app
        .send_json(
            "POST",
            "/fhir/default/Patient/$validate",
            &json!({"resourceType": "Patient", "birthDate": "nope"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["issue"][0]["severity"], "error");
    assert!(
        r.json["issue"][0]["expression"][0]
            .as_str()
            .unwrap()
            .contains("birthDate")
    );
    let wrapped = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient"}}]});
    let r = app
        .send_json("POST", "/fhir/default/Patient/$validate", &wrapped)
        .await;
    assert_eq!(r.json["issue"][0]["severity"], "information", "{}", r.text);
    let r = app
        .send_json(
            "POST",
            "/fhir/default/Observation/$validate",
            &json!({"resourceType": "Patient"}),
        )
        .await;
    assert_eq!(r.json["issue"][0]["severity"], "error");
    assert_eq!(
        app.send_json(
            "POST",
            "/fhir/nosuch/Patient/$validate",
            &json!({"resourceType": "Patient"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/fhir/default/_history").await.json["total"], 0);
}
