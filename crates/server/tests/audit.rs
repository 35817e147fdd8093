//! The audit trail through the HTTP API: one AuditEvent per interaction (successes and
//! failures), the read-only `AuditEvent` endpoint with its filters, and a patient's
//! `$access-log`. Runs on SQLite and (with `MEDICUS_TEST_DATABASE`) PostgreSQL.

mod common;

use axum::http::StatusCode;
use common::TestApp;
use serde_json::{Value, json};

/// All AuditEvents of a search, newest first, following next links.
async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    app.search_pages(&format!("/fhir/default/AuditEvent{query}"))
        .await
        .iter()
        .flat_map(|page| page["entry"].as_array().cloned().unwrap_or_default())
        .map(|e| e["resource"].clone())
        .collect()
}

fn subtype(e: &Value) -> &str {
    e["subtype"][0]["code"].as_str().unwrap_or("")
}

fn entity_refs(e: &Value) -> Vec<String> {
    e["entity"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["what"]["reference"].as_str().map(str::to_string))
        .collect()
}

/// Whether the event names `patient` (as the entity acted on, or as a patient whose data it
/// touched).
fn has_patient(e: &Value, patient: &str) -> bool {
    e["entity"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|x| x["what"]["reference"] == patient)
}

#[tokio::test]
async fn interactions_are_audited_with_their_fields() {
    let app = TestApp::new();
    let pid = app
        .create(&json!({"resourceType": "Patient", "name": [{"family": "A"}]}))
        .await;
    let oid = app
        .create(
            &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": format!("Patient/{pid}")}}),
        )
        .await;
    let r = app
        .request(
            "GET",
            &format!("/fhir/default/Observation/{oid}"),
            &[("x-request-id", "req-read-1")],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        app.get("/fhir/default/Observation?code:text=x")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/fhir/default/Observation/missing").await.status,
        StatusCode::NOT_FOUND
    );

    let all = events(&app, "").await;
    // Newest first; the AuditEvent search itself is recorded after it answered.
    let kinds: Vec<&str> = all.iter().map(subtype).collect();
    assert_eq!(
        kinds,
        ["read", "search-type", "read", "create", "create"],
        "{all:#?}"
    );
    let ids: Vec<i64> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, [5, 4, 3, 2, 1]);

    let failed = &all[0];
    assert_eq!(failed["outcome"], "4");
    assert!(failed["outcomeDesc"].as_str().unwrap().contains("404"));
    assert_eq!(entity_refs(failed), ["Observation/missing"]);

    let search = &all[1];
    assert_eq!(search["action"], "R");
    assert_eq!(search["outcome"], "0");
    let query = search["entity"][0]["query"].as_str().unwrap();
    assert_eq!(query, "Y29kZTp0ZXh0PXg="); // base64("code:text=x")
    assert!(has_patient(search, &format!("Patient/{pid}")), "{search}");

    let read = &all[2];
    assert_eq!(read["type"]["code"], "rest");
    assert_eq!(
        read["type"]["system"],
        "http://terminology.hl7.org/CodeSystem/audit-event-type"
    );
    assert_eq!(
        read["subtype"][0]["system"],
        "http://hl7.org/fhir/restful-interaction"
    );
    assert_eq!(read["action"], "R");
    assert_eq!(read["extension"][0]["valueString"], "req-read-1");
    assert_eq!(read["agent"][0]["who"]["display"], "anonymous");
    assert_eq!(read["agent"][0]["requestor"], true);
    assert_eq!(read["source"]["observer"]["display"], "medicus");
    let refs = entity_refs(read);
    assert!(refs.contains(&format!("Observation/{oid}")), "{refs:?}");
    assert!(refs.contains(&format!("Patient/{pid}")), "{refs:?}");
    assert!(read["recorded"].as_str().unwrap().ends_with('Z'));
    assert_eq!(read["meta"]["lastUpdated"], read["recorded"]);

    let created = &all[3];
    assert_eq!(created["action"], "C");
    assert_eq!(created["outcome"], "0");
    assert!(entity_refs(created).contains(&format!("Observation/{oid}")));
    assert!(has_patient(created, &format!("Patient/{pid}")));

    // Reading the trail was audited too, and a single entry reads by its seq.
    let again = events(&app, "?_count=1").await;
    assert_eq!(subtype(&again[0]), "search-type");
    // The five interactions and the first trail search (this one is recorded after it answered).
    assert_eq!(again.len(), 6);
    let one = app.get("/fhir/default/AuditEvent/3").await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json["id"], "3");
    assert_eq!(
        app.get("/fhir/default/AuditEvent/999").await.status,
        StatusCode::NOT_FOUND
    );
    // Tenants have chains of their own.
    assert!(events(&app, "").await.len() > 6);
    let other = app.search_pages("/fhir/other/AuditEvent").await;
    assert!(other[0]["entry"].as_array().is_none_or(|e| e.is_empty()));
}

#[tokio::test]
async fn server_failures_and_bad_requests_are_audited() {
    let app = TestApp::new();
    let r = app
        .request(
            "POST",
            "/fhir/default/Patient",
            &[("content-type", "application/fhir+json")],
            "{not json",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let all = events(&app, "").await;
    assert_eq!(all.len(), 1);
    assert_eq!(subtype(&all[0]), "create");
    assert_eq!(all[0]["outcome"], "4");
    assert!(all[0]["outcomeDesc"].as_str().unwrap().contains("400"));
}

#[tokio::test]
async fn audit_events_cannot_be_written() {
    let app = TestApp::new();
    let ev = json!({"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"requestor": true}], "source": {"observer": {"display": "x"}}});
    for (method, uri) in [
        ("POST", "/fhir/default/AuditEvent"),
        ("PUT", "/fhir/default/AuditEvent/1"),
        ("DELETE", "/fhir/default/AuditEvent/1"),
        ("PATCH", "/fhir/default/AuditEvent/1"),
        ("DELETE", "/fhir/default/AuditEvent"),
    ] {
        let r = app.send_json(method, uri, &ev).await;
        assert_eq!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}: {}",
            r.text
        );
        assert!(r.outcome_text().contains("read-only"));
    }
    // The refusals are audited, as failures.
    let all = events(&app, "?outcome=4").await;
    assert_eq!(all.len(), 5);
}

#[tokio::test]
async fn access_log_lists_reads_of_a_patients_data() {
    let app = TestApp::new();
    let p1 = app
        .create(&json!({"resourceType": "Patient", "name": [{"family": "One"}]}))
        .await;
    let p2 = app
        .create(&json!({"resourceType": "Patient", "name": [{"family": "Two"}]}))
        .await;
    let obs = |p: &str| {
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "hb"},
        "subject": {"reference": format!("Patient/{p}")}})
    };
    let o1 = app.create(&obs(&p1)).await;
    let o2 = app.create(&obs(&p2)).await;
    for _ in 0..3 {
        assert_eq!(
            app.get(&format!("/fhir/default/Observation/{o1}"))
                .await
                .status,
            StatusCode::OK
        );
    }
    assert_eq!(
        app.get(&format!("/fhir/default/Observation/{o2}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/fhir/default/Patient/{p1}/Observation"))
            .await
            .status,
        StatusCode::OK
    );

    let pages = app
        .search_pages(&format!("/fhir/default/Patient/{p1}/$access-log?_count=2"))
        .await;
    assert!(pages.len() >= 3, "paged by 2");
    let log: Vec<Value> = pages
        .iter()
        .flat_map(|p| p["entry"].as_array().cloned().unwrap_or_default())
        .map(|e| e["resource"].clone())
        .collect();
    let kinds: Vec<&str> = log.iter().map(subtype).collect();
    // Newest first: compartment search, three reads, the Observation's and the Patient's creation.
    assert_eq!(
        kinds,
        ["search-type", "read", "read", "read", "create", "create"],
        "{log:#?}"
    );
    for e in &log[1..4] {
        assert!(entity_refs(e).contains(&format!("Observation/{o1}")));
    }
    assert!(
        log.iter()
            .all(|e| !entity_refs(e).contains(&format!("Observation/{o2}")))
    );
    // The same through the AuditEvent search.
    let by_patient = events(&app, &format!("?patient=Patient/{p2}")).await;
    assert_eq!(
        by_patient.iter().map(subtype).collect::<Vec<_>>(),
        ["read", "create", "create"]
    );
}

#[tokio::test]
async fn audit_event_search_filters() {
    let app = TestApp::new();
    let pid = app.create(&json!({"resourceType": "Patient"})).await;
    assert_eq!(
        app.get(&format!("/fhir/default/Patient/{pid}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/fhir/default/Patient/nope").await.status,
        StatusCode::NOT_FOUND
    );
    let r = app
        .send_json(
            "PUT",
            &format!("/fhir/default/Patient/{pid}"),
            &json!({"resourceType": "Patient", "id": pid, "gender": "male"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let deleted = app
        .request(
            "DELETE",
            &format!("/fhir/default/Patient/{pid}"),
            &[],
            axum::body::Body::empty(),
        )
        .await;
    assert!(deleted.status.is_success(), "{}", deleted.text);

    let ids = |v: Vec<Value>| {
        v.iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(events(&app, "?action=C").await), ["1"]);
    assert_eq!(ids(events(&app, "?action=U,D").await), ["5", "4"]);
    assert_eq!(ids(events(&app, "?subtype=read").await), ["3", "2"]);
    assert_eq!(
        ids(events(
            &app,
            "?subtype=http://hl7.org/fhir/restful-interaction|update"
        )
        .await),
        ["4"]
    );
    let by_outcome = ids(events(&app, "?outcome=4&type=rest").await);
    assert_eq!(by_outcome[by_outcome.len() - 1], "3");
    assert_eq!(
        ids(events(
            &app,
            &format!("?entity=Patient/{pid}&action=R&outcome=0&subtype=read")
        )
        .await),
        ["2"]
    );
    // Dates: everything happened today; nothing before 2020 or after 2999.
    assert!(events(&app, "?date=lt2020-01-01").await.is_empty());
    assert!(events(&app, "?date=gt2999").await.is_empty());
    assert!(
        events(&app, "?date=ge2020-01-01&date=le2999-12-31&action=C")
            .await
            .len()
            == 1
    );
    let one = app.get("/fhir/default/AuditEvent?action=C").await;
    let recorded = one.json["entry"][0]["resource"]["recorded"]
        .as_str()
        .unwrap()
        .to_string();
    let day = &recorded[..10];
    assert_eq!(
        ids(events(&app, &format!("?date={day}&action=C")).await),
        ["1"]
    );
    assert_eq!(
        app.get("/fhir/default/AuditEvent?date=garbage")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/fhir/default/AuditEvent?action=X").await.status,
        StatusCode::BAD_REQUEST
    );
    // _count pages with next links.
    let first = app.get("/fhir/default/AuditEvent?_count=2").await;
    assert_eq!(first.json["entry"].as_array().unwrap().len(), 2);
    let next = first.json["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap();
    assert!(next["url"].as_str().unwrap().contains("_before="));
}

#[tokio::test]
async fn other_routes_still_match_beside_the_audit_routes() {
    let app = TestApp::new();
    let pid = app.create(&json!({"resourceType": "Patient"})).await;
    assert_eq!(
        app.get(&format!("/fhir/default/Patient/{pid}/$everything"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/fhir/default/Patient/{pid}/Observation"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/fhir/default/Patient/{pid}/_history"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/fhir/nope/AuditEvent").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_bulk_export_kick_off_is_one_event() {
    let app = TestApp::new();
    for _ in 0..3 {
        app.create(&json!({"resourceType": "Patient"})).await;
    }
    let r = app
        .request(
            "GET",
            "/fhir/default/$export?_type=Patient",
            &[("prefer", "respond-async")],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let ops = events(&app, "?subtype=operation").await;
    assert_eq!(ops.len(), 1, "{ops:#?}");
    assert_eq!(ops[0]["action"], "E");
    let query = ops[0]["entity"][0]["query"].as_str().unwrap();
    assert_eq!(query, "JGV4cG9ydD9fdHlwZT1QYXRpZW50"); // base64("$export?_type=Patient")
}
