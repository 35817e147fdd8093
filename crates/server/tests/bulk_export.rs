//! `$export` over HTTP: kick-off, polling, manifest, file download, cancel, tenant isolation
//! and bad input, driven through the router.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use common::{TestApp, TestResponse};
use medicus_store::{Precondition, Store};
use serde_json::{Value, json};

const ASYNC: (&str, &str) = ("prefer", "respond-async");
const ACCEPT: (&str, &str) = ("accept", "application/fhir+json");

fn seed(app: &TestApp, tenant: &str) {
    app.with_store(|store| seed_store(store, tenant));
}

fn seed_store(store: &dyn Store, tenant: &str) {
    let mut s = store.write_session(tenant).unwrap();
    for i in 0..6 {
        let pid = format!("p{i}");
        s.put("Patient", &pid, json!({"resourceType": "Patient", "gender": if i % 2 == 0 { "female" } else { "male" }}), Precondition::None).unwrap();
        s.put("Observation", &format!("o{i}"), json!({"resourceType": "Observation", "status": if i < 2 { "amended" } else { "final" }, "code": {"text": "x"}, "subject": {"reference": format!("Patient/{pid}")}}), Precondition::None).unwrap();
    }
    s.put(
        "Organization",
        "org",
        json!({"resourceType": "Organization", "name": "K"}),
        Precondition::None,
    )
    .unwrap();
    s.put("Group", "g", json!({"resourceType": "Group", "type": "person", "actual": true,
        "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2"}}]}), Precondition::None).unwrap();
    s.commit().unwrap();
}

async fn kick_off(app: &TestApp, uri: &str) -> TestResponse {
    app.request("GET", uri, &[ASYNC, ACCEPT], Body::empty())
        .await
}

/// Kicks off, checks the 202, and polls until the manifest is there.
async fn export(app: &TestApp, uri: &str) -> (String, Value) {
    let r = kick_off(app, uri).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let status_url = r
        .header("content-location")
        .expect("Content-Location")
        .to_owned();
    let path = status_url
        .strip_prefix("http://test.local")
        .expect("absolute URL")
        .to_owned();
    assert!(
        path.starts_with("/fhir/default/$export-poll-status/"),
        "{path}"
    );
    for _ in 0..600 {
        let r = app.get(&path).await;
        match r.status {
            StatusCode::ACCEPTED => {
                assert!(r.header("retry-after").is_some());
                assert!(r.header("x-progress").is_some());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            StatusCode::OK => {
                assert_eq!(r.header("content-type"), Some("application/json"));
                return (path, r.json);
            }
            other => panic!("status {other}: {}", r.text),
        }
    }
    panic!("export did not finish");
}

/// Downloads every file of a manifest through the file endpoint; `Type/id` → resource.
async fn download(app: &TestApp, manifest: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for o in manifest["output"].as_array().unwrap() {
        let url = o["url"].as_str().unwrap();
        let path = url.strip_prefix("http://test.local").unwrap();
        let r = app
            .request(
                "GET",
                path,
                &[("accept", "application/fhir+ndjson")],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.header("content-type"), Some("application/fhir+ndjson"));
        let mut n = 0;
        for line in r.text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            out.insert(
                format!(
                    "{}/{}",
                    v["resourceType"].as_str().unwrap(),
                    v["id"].as_str().unwrap()
                ),
                v,
            );
            n += 1;
        }
        assert_eq!(o["count"], n);
    }
    out
}

fn stored(app: &TestApp, keys: &[&str]) -> BTreeMap<String, Value> {
    app.with_store(|store| {
        let mut s = store.read_session("default").unwrap();
        keys.iter()
            .map(|k| {
                let (t, id) = k.split_once('/').unwrap();
                (k.to_string(), s.read(t, id).unwrap().unwrap().body.unwrap())
            })
            .collect()
    })
}

#[tokio::test]
async fn system_export_round_trip_over_http() {
    let app = TestApp::new();
    seed(&app, "default");
    let (_, manifest) = export(
        &app,
        "/fhir/default/$export?_outputFormat=application%2Ffhir%2Bndjson",
    )
    .await;
    assert_eq!(manifest["requiresAccessToken"], true);
    assert_eq!(
        manifest["request"],
        "http://test.local/fhir/default/$export?_outputFormat=application%2Ffhir%2Bndjson"
    );
    assert!(manifest["transactionTime"].is_string());
    assert_eq!(manifest["error"], json!([]));
    let got = download(&app, &manifest).await;
    let keys: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6 + 6 + 2);
    assert_eq!(got, stored(&app, &keys));
}

#[tokio::test]
async fn patient_and_group_exports_with_type_and_type_filter() {
    let app = TestApp::new();
    seed(&app, "default");
    let (_, manifest) = export(&app, "/fhir/default/Patient/$export?_type=Observation&_typeFilter=Observation%3Fstatus%3Damended").await;
    let got = download(&app, &manifest).await;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["Observation/o0", "Observation/o1"]
    );

    let (_, manifest) = export(
        &app,
        "/fhir/default/Group/g/$export?_type=Patient,Observation",
    )
    .await;
    let got = download(&app, &manifest).await;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        [
            "Observation/o1",
            "Observation/o2",
            "Patient/p1",
            "Patient/p2"
        ]
    );

    // `_since` after everything: a valid export with no files.
    let (_, manifest) = export(&app, "/fhir/default/$export?_since=2999-01-01T00:00:00Z").await;
    assert_eq!(manifest["output"], json!([]));
}

#[tokio::test]
async fn post_kick_off_with_parameters() {
    let app = TestApp::new();
    seed(&app, "default");
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Observation"},
        {"name": "_typeFilter", "valueString": "Observation?status=amended"},
        {"name": "_since", "valueInstant": "2000-01-01T00:00:00Z"},
        {"name": "_outputFormat", "valueString": "application/fhir+ndjson"},
    ]});
    let r = app
        .request(
            "POST",
            "/fhir/default/Group/g/$export",
            &[ASYNC, ("content-type", "application/fhir+json")],
            body.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let status = r
        .header("content-location")
        .unwrap()
        .strip_prefix("http://test.local")
        .unwrap()
        .to_owned();
    let manifest = loop {
        let r = app.get(&status).await;
        if r.status == StatusCode::OK {
            break r.json;
        }
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let got = download(&app, &manifest).await;
    assert_eq!(got.keys().collect::<Vec<_>>(), ["Observation/o1"]);

    let bad = json!({"resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "Nope"}]});
    let r = app
        .request(
            "POST",
            "/fhir/default/$export",
            &[ASYNC, ("content-type", "application/fhir+json")],
            bad.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .request(
            "POST",
            "/fhir/default/$export",
            &[ASYNC, ("content-type", "application/fhir+json")],
            json!({"resourceType": "Patient"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cancel_removes_the_job_and_its_files() {
    let app = TestApp::new();
    seed(&app, "default");
    let (status, manifest) = export(&app, "/fhir/default/$export?_type=Patient").await;
    let file = manifest["output"][0]["url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://test.local")
        .unwrap()
        .to_owned();
    // Another tenant sees nothing of the job.
    let other_status = status.replace("/fhir/default/", "/fhir/other/");
    assert_eq!(app.get(&other_status).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&file.replace("/fhir/default/", "/fhir/other/"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = app
        .request("DELETE", &other_status, &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = app.request("DELETE", &status, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let r = app.get(&status).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.outcome_text();
    assert_eq!(app.get(&file).await.status, StatusCode::NOT_FOUND);
    let r = app.request("DELETE", &status, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn files_outside_the_manifest_are_not_served() {
    let app = TestApp::new();
    seed(&app, "default");
    let (status, _) = export(&app, "/fhir/default/$export?_type=Patient").await;
    let id = status.rsplit('/').next().unwrap();
    for name in [
        "Observation.ndjson",
        "..%2F..%2Fmedicus.db",
        "%2E%2E",
        "Patient.ndjson%00",
    ] {
        let r = app
            .get(&format!("/fhir/default/$export-file/{id}/{name}"))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{name}: {}", r.text);
    }
    let r = app
        .get(&format!("/fhir/default/$export-file/{id}/Patient.ndjson"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_kick_offs_and_unknown_jobs() {
    let app = TestApp::new();
    seed(&app, "default");
    let r = app.get("/fhir/default/$export").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.outcome_text().contains("respond-async"));
    for (uri, status) in [
        (
            "/fhir/default/$export?_type=Patient,NoSuchType",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/fhir/default/$export?_outputFormat=text/csv",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/fhir/default/$export?_since=yesterday",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/fhir/default/$export?_typeFilter=Observation%3Fnonsense%3D1",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/fhir/default/$export?_elements=id",
            StatusCode::BAD_REQUEST,
        ),
        ("/fhir/default/Group/nope/$export", StatusCode::NOT_FOUND),
        ("/fhir/default/Observation/$export", StatusCode::NOT_FOUND),
        ("/fhir/nosuchtenant/$export", StatusCode::NOT_FOUND),
    ] {
        let r = kick_off(&app, uri).await;
        assert_eq!(r.status, status, "{uri}: {}", r.text);
        r.outcome_text();
    }
    for uri in [
        "/fhir/default/$export-poll-status/0123456789abcdef",
        "/fhir/default/$export-file/0123456789abcdef/Patient.ndjson",
    ] {
        let r = app.get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        r.outcome_text();
    }
    let r = app
        .request(
            "DELETE",
            "/fhir/default/$export-poll-status/0123456789abcdef",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Ordinary reads of the same types still route as before.
    assert_eq!(
        app.get("/fhir/default/Patient/p1").await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/fhir/default/Group/g").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn capability_statement_declares_export() {
    let app = TestApp::new();
    let r = app.get("/fhir/default/metadata").await;
    let rest = &r.json["rest"][0];
    assert!(
        rest["operation"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "export"
                && o["definition"] == "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export")
    );
    let ops_of = |t: &str| {
        rest["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == t)
            .unwrap()["operation"]
            .clone()
    };
    assert!(ops_of("Patient").to_string().contains("patient-export"));
    assert!(ops_of("Group").to_string().contains("group-export"));
    assert!(!ops_of("Observation").to_string().contains("export"));
}
