//! Router-level tests of search, capabilities, format negotiation and bad input.

mod common;

use axum::http::StatusCode;
use common::{FHIR_JSON, TestApp};
use medicus_server::ServerConfig;
use serde_json::json;

async fn seed(app: &TestApp, n: usize) {
    for i in 0..n {
        app.create(&json!({"resourceType": "Patient", "name": [{"family": "Search", "given": [format!("G{i}")]}], "gender": "female"}))
            .await;
    }
}

#[tokio::test]
async fn search_pages_with_cursor_links() {
    let app = TestApp::new();
    seed(&app, 5).await;
    app.create(&json!({"resourceType": "Patient", "name": [{"family": "Other"}]}))
        .await;
    let r = app
        .get("/fhir/default/Patient?family=Search&_count=2")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["type"], "searchset");
    assert_eq!(r.json["total"], 5);
    let entries = r.json["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["search"]["mode"], "match");
    assert!(
        entries[0]["fullUrl"]
            .as_str()
            .unwrap()
            .starts_with("http://test.local/fhir/default/Patient/")
    );
    let links = r.json["link"].as_array().unwrap();
    assert_eq!(links[0]["relation"], "self");
    assert_eq!(
        links[0]["url"],
        "http://test.local/fhir/default/Patient?family=Search&_count=2"
    );
    let mut next = links
        .iter()
        .find(|l| l["relation"] == "next")
        .map(|l| l["url"].as_str().unwrap().to_string());
    let mut seen = entries.len();
    while let Some(url) = next {
        assert!(
            url.contains("family=Search") && url.contains("_count=2") && url.contains("_cursor="),
            "{url}"
        );
        let page = app
            .get(url.strip_prefix("http://test.local").unwrap())
            .await;
        assert_eq!(page.status, StatusCode::OK);
        seen += page.json["entry"].as_array().map_or(0, Vec::len);
        next = page.json["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, 5);

    let r = app
        .get("/fhir/default/Patient?family=Search&_summary=count")
        .await;
    assert_eq!(r.json["total"], 5);
    assert!(r.json.get("entry").is_none());

    let r = app
        .request(
            "POST",
            "/fhir/default/Patient/_search",
            &[("content-type", "application/x-www-form-urlencoded")],
            "family=Search&_count=1",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["total"], 5);

    let r = app
        .get("/fhir/default/Patient?family=Search&_elements=gender&_count=1")
        .await;
    assert!(r.json["entry"][0]["resource"].get("name").is_none());
    assert_eq!(r.json["entry"][0]["resource"]["gender"], "female");

    let r = app.get("/fhir/default?_id=nonexistent").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["type"], "searchset");
}

#[tokio::test]
async fn unknown_parameters_lenient_or_strict() {
    let app = TestApp::new();
    seed(&app, 1).await;
    let r = app.get("/fhir/default/Patient?bogus=1&family=Search").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["total"], 1);
    assert_eq!(
        r.json["link"][0]["url"],
        "http://test.local/fhir/default/Patient?family=Search"
    );
    let r = app
        .request(
            "GET",
            "/fhir/default/Patient?bogus=1",
            &[("prefer", "handling=strict")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.outcome_text().contains("bogus"));
    assert_eq!(
        app.get("/fhir/default/Patient?_count=abc").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/fhir/default/Patient?birthdate=notadate")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn capability_statement() {
    let app = TestApp::new();
    let r = app.get("/fhir/default/metadata").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["resourceType"], "CapabilityStatement");
    assert_eq!(r.json["fhirVersion"], "4.0.1");
    assert_eq!(r.json["patchFormat"][0], "application/json-patch+json");
    let rest = &r.json["rest"][0];
    let patient = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|res| res["type"] == "Patient")
        .unwrap();
    assert_eq!(patient["versioning"], "versioned-update");
    assert_eq!(patient["conditionalDelete"], "single");
    assert!(
        patient["searchInclude"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "Patient:general-practitioner")
    );
    assert!(
        patient["searchRevInclude"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "Observation:subject")
    );
    assert!(
        patient["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "family" && p["type"] == "string")
    );
    let system: Vec<&str> = rest["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert!(system.contains(&"transaction") && system.contains(&"batch"));
}

#[tokio::test]
async fn format_negotiation() {
    let app = TestApp::new();
    let r = app.get("/fhir/default/metadata?_format=xml").await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    r.outcome_text();
    let r = app
        .request(
            "GET",
            "/fhir/default/metadata",
            &[("accept", "application/fhir+xml")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    for accept in ["application/fhir+json", "application/json", "*/*"] {
        let r = app
            .request("GET", "/fhir/default/metadata", &[("accept", accept)], "")
            .await;
        assert_eq!(r.status, StatusCode::OK, "{accept}");
    }
    let r = app
        .get("/fhir/default/metadata?_format=application/json")
        .await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let r = app
        .get("/fhir/default/metadata?_format=json&_pretty=true")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("\n  "), "pretty output is indented");
    assert_eq!(r.json["resourceType"], "CapabilityStatement");
    let r = app.get("/fhir/default/metadata").await;
    assert!(!r.text.contains('\n'));
}

#[tokio::test]
async fn bad_input_is_a_4xx_operation_outcome_and_writes_nothing() {
    let app = TestApp::with_config(ServerConfig {
        max_body_bytes: 200_000,
        ..ServerConfig::default()
    });
    let post = |body: String, ct: &'static str| {
        let app = &app;
        async move {
            app.request(
                "POST",
                "/fhir/default/Patient",
                &[("content-type", ct)],
                body,
            )
            .await
        }
    };
    let cases: Vec<(StatusCode, String, &str)> = vec![
        (
            StatusCode::BAD_REQUEST,
            "{\"resourceType\": \"Patient\",".into(),
            FHIR_JSON,
        ),
        (StatusCode::BAD_REQUEST, "[".repeat(100_000), FHIR_JSON),
        (
            StatusCode::BAD_REQUEST,
            format!("{}{}", "[".repeat(65), "]".repeat(65)),
            FHIR_JSON,
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{{\"resourceType\":\"Patient\",\"x\":\"{}\"}}",
                "a".repeat(300_000)
            ),
            FHIR_JSON,
        ),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"resourceType": "Patient"}).to_string(),
            "application/xml",
        ),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"resourceType": "Patient"}).to_string(),
            "text/plain",
        ),
        (
            StatusCode::BAD_REQUEST,
            json!({"resourceType": "Patient", "birthDate": "1999-13-45"}).to_string(),
            FHIR_JSON,
        ),
        (
            StatusCode::BAD_REQUEST,
            json!({"resourceType": "Patient", "unknownElement": 1}).to_string(),
            FHIR_JSON,
        ),
        (
            StatusCode::BAD_REQUEST,
            json!({"resourceType": "Observation"}).to_string(),
            FHIR_JSON,
        ),
        (
            StatusCode::BAD_REQUEST,
            json!({"name": "no type"}).to_string(),
            FHIR_JSON,
        ),
        (
            StatusCode::BAD_REQUEST,
            "\"just a string\"".into(),
            FHIR_JSON,
        ),
        (StatusCode::BAD_REQUEST, String::new(), FHIR_JSON),
    ];
    for (expected, body, ct) in cases {
        let r = post(body.clone(), ct).await;
        assert_eq!(
            r.status,
            expected,
            "body starting {:?}: {}",
            &body.chars().take(40).collect::<String>(),
            r.text
        );
        r.outcome_text();
    }
    let r = post(
        json!({"resourceType": "Patient", "birthDate": "1999-13-45"}).to_string(),
        FHIR_JSON,
    )
    .await;
    assert!(
        r.json["issue"][0]["expression"][0]
            .as_str()
            .unwrap()
            .contains("birthDate"),
        "{}",
        r.text
    );
    // application/json with a charset parameter is fine.
    assert_eq!(
        post(
            json!({"resourceType": "Patient"}).to_string(),
            "application/json; charset=utf-8"
        )
        .await
        .status,
        StatusCode::CREATED
    );

    let r = app
        .send_json(
            "POST",
            "/fhir/default/NotAType",
            &json!({"resourceType": "NotAType"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.outcome_text();
    let r = app.get("/fhir/default/NotAType/1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Axum's own rejections are OperationOutcomes too.
    let r = app
        .request("DELETE", "/fhir/default/metadata", &[], "")
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    r.outcome_text();
    let r = app.get("/fhir/default/Patient/1/_history/1/extra").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.outcome_text();
    let r = app.get("/nothing-here").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    r.outcome_text();
    let r = app
        .request(
            "PUT",
            "/fhir/default/Patient/1",
            &[("content-type", FHIR_JSON), ("if-match", "garbage")],
            json!({"resourceType": "Patient", "id": "1"}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Exactly one resource was written in all of the above.
    let r = app.get("/fhir/default/_history").await;
    assert_eq!(r.json["total"], 1, "{}", r.text);
    assert!(r.header("x-request-id").is_some());
}

#[tokio::test]
async fn include_and_revinclude() {
    let app = TestApp::new();
    let p1 = app
        .create(&json!({"resourceType": "Patient", "name": [{"family": "Inc"}]}))
        .await;
    let p2 = app
        .create(&json!({"resourceType": "Patient", "name": [{"family": "Other"}]}))
        .await;
    for (code, patient) in [("a", &p1), ("b", &p1), ("c", &p2)] {
        app.create(
            &json!({"resourceType": "Observation", "status": "final", "code": {"text": code},
                           "subject": {"reference": format!("Patient/{patient}")}}),
        )
        .await;
    }
    let r = app
        .get(&format!(
            "/fhir/default/Observation?subject=Patient/{p1}&_include=Observation:subject"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let entries = r.json["entry"].as_array().unwrap();
    let modes: Vec<&str> = entries
        .iter()
        .map(|e| e["search"]["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, vec!["match", "match", "include"], "{}", r.text);
    assert_eq!(entries[2]["resource"]["id"], p1.as_str());
    assert_eq!(r.json["total"], 2, "included resources do not count");

    let r = app
        .get("/fhir/default/Patient?family=Inc&_revinclude=Observation:subject")
        .await;
    let entries = r.json["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{}", r.text);
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["search"]["mode"] == "include")
            .count(),
        2
    );

    // A typed include that does not fit adds nothing; a bad one is ignored (or 400 when strict).
    let r = app
        .get("/fhir/default/Observation?_include=Observation:subject:Group")
        .await;
    assert!(
        r.json["entry"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["search"]["mode"] != "include")
    );
    let r = app
        .get("/fhir/default/Observation?_include=Observation:status")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .request(
            "GET",
            "/fhir/default/Observation?_include=Nope:x",
            &[("prefer", "handling=strict")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sorted_pages_follow_next_links_and_explain_reports_the_plan() {
    let app = TestApp::new();
    for (i, birth) in ["1990-05-01", "1970-01-01", "2000-12-31", "1985-06-15"]
        .iter()
        .enumerate()
    {
        app.create(&json!({"resourceType": "Patient", "id": format!("s{i}"), "birthDate": birth, "name": [{"family": "Sorted"}]}))
            .await;
    }
    let mut url = "/fhir/default/Patient?family=Sorted&_sort=-birthdate&_count=1".to_string();
    let mut births = Vec::new();
    loop {
        let r = app.get(&url).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["total"], 4);
        for e in r.json["entry"].as_array().unwrap() {
            assert_eq!(e["search"]["mode"], "match", "{}", r.text);
            births.push(e["resource"]["birthDate"].as_str().unwrap().to_string());
        }
        match r.json["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
        {
            Some(next) => {
                let next = next["url"].as_str().unwrap();
                assert!(next.contains("_sort=-birthdate"), "{next}");
                url = next.strip_prefix("http://test.local").unwrap().to_string();
            }
            None => break,
        }
    }
    assert_eq!(
        births,
        ["2000-12-31", "1990-05-01", "1985-06-15", "1970-01-01"]
    );

    let r = app
        .get("/fhir/default/Patient?family=Sorted&birthdate=ge1980&_explain=true")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let plan = r.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .map(|e| {
            e["resource"]["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap();
    assert!(plan.starts_with("plan: drive: "), "{plan}");
    assert!(plan.contains("check: "), "{plan}");

    let r = app.get("/fhir/default/Patient?_cursor=s1~zz").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

#[tokio::test]
async fn in_and_not_in_use_a_stored_value_set_and_chains_have_a_configured_depth() {
    let app = TestApp::with_config(ServerConfig {
        base_url: Some("http://test.local".into()),
        max_chain_depth: 1,
        ..ServerConfig::default()
    });
    app.create(&json!({"resourceType": "ValueSet", "url": "http://example.org/vs/diabetes", "status": "active",
        "compose": {"include": [{"system": "http://fhir.de/CodeSystem/bfarm/icd-10-gm",
            "concept": [{"code": "E11.90"}, {"code": "E10.90"}]}]}}))
        .await;
    for (id, code) in [("c1", "E11.90"), ("c2", "I25.19"), ("c3", "E10.90")] {
        app.create(&json!({"resourceType": "Condition", "id": id,
            "code": {"coding": [{"system": "http://fhir.de/CodeSystem/bfarm/icd-10-gm", "code": code}]},
            "subject": {"reference": "Patient/p1"}}))
            .await;
    }
    let mut found = app
        .search_ids("/fhir/default/Condition?code:in=http://example.org/vs/diabetes")
        .await;
    found.sort();
    let mut ids = Vec::new();
    for id in &found {
        let r = app.get(&format!("/fhir/default/Condition/{id}")).await;
        ids.push(
            r.json["code"]["coding"][0]["code"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    ids.sort();
    assert_eq!(ids, ["E10.90", "E11.90"]);
    let not_in = app
        .search_ids("/fhir/default/Condition?code:not-in=http://example.org/vs/diabetes")
        .await;
    assert_eq!(not_in.len(), 1);
    let r = app
        .get("/fhir/default/Condition?code:in=http://example.org/vs/unknown")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    // ValueSets of another tenant are not visible.
    let r = app
        .get("/fhir/other/Condition?code:in=http://example.org/vs/diabetes")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    let r = app
        .get("/fhir/default/Condition?subject:Patient.birthdate=1990")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .get("/fhir/default/Condition?subject:Patient.general-practitioner:Practitioner.name=x")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.text.contains("subject:Patient.general-practitioner"),
        "{}",
        r.text
    );
}
