//! Router-level tests of the search entry points beyond a plain type search: compartment
//! search, `$everything`, `_summary` views, strict handling, the `_count` cap, `_include` /
//! `_revinclude` with `:iterate` and `*`, `_list`, `POST _search` and the CapabilityStatement.

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use common::{TestApp, entry_keys};
use medicus_server::ServerConfig;
use medicus_store::api::Precondition;
use serde_json::{Value, json};

const BASE: &str = "http://test.local/fhir/default";

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn keys(bundle: &Value, mode: &str) -> BTreeSet<String> {
    entry_keys(bundle, mode, true).into_iter().collect()
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str())
        .map(str::to_string)
}

/// The OperationOutcome entries of a searchset (`search.mode = outcome`).
fn outcomes(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "outcome")
        .map(|e| e["resource"].clone())
        .collect()
}

fn diagnostics(bundle: &Value) -> String {
    outcomes(bundle)
        .iter()
        .flat_map(|o| o["issue"].as_array().cloned().unwrap_or_default())
        .map(|i| {
            format!(
                "{}: {}",
                i["severity"].as_str().unwrap_or(""),
                i["diagnostics"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Two patients, their clinical resources and the shared resources they refer to.
async fn seed_compartments(app: &TestApp) {
    app.put_all(&[
        json!({"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Doc"}]}),
        json!({"resourceType": "Practitioner", "id": "dr2", "name": [{"family": "Other"}]}),
        json!({"resourceType": "Organization", "id": "org", "name": "Hospital"}),
        json!({"resourceType": "Location", "id": "loc", "name": "Ward 1"}),
        json!({"resourceType": "Medication", "id": "med", "code": {"text": "aspirin"}}),
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "One"}],
               "generalPractitioner": [{"reference": "Practitioner/dr"}],
               "managingOrganization": {"reference": "Organization/org"}}),
        json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Two"}]}),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"code": "IMP"}, "subject": {"reference": "Patient/p1"},
               "period": {"start": "2019-05-01", "end": "2019-05-03"},
               "location": [{"location": {"reference": "Location/loc"}}]}),
        json!({"resourceType": "MedicationRequest", "id": "mr", "status": "active",
               "intent": "order", "subject": {"reference": "Patient/p1"},
               "medicationReference": {"reference": "Medication/med"}}),
        json!({"resourceType": "Observation", "id": "o1", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}]},
               "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2020-02-02",
               "performer": [{"reference": "Practitioner/dr"}]}),
        json!({"resourceType": "Observation", "id": "o3", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}]},
               "subject": {"reference": "Patient/p2"},
               "performer": [{"reference": "Practitioner/dr2"}]}),
    ])
    .await;
    // Written last and apart: the `_since` test relies on it being the only resource of p1's
    // compartment changed at or after its `lastUpdated` (`_since` resolves milliseconds).
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.put_all(&[
        json!({"resourceType": "Observation", "id": "o2", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "2-6"}]},
               "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2023-03-03"}),
    ])
    .await;
}

/// Follows `next` links from `uri`; returns the pages.
async fn pages(app: &TestApp, uri: &str) -> Vec<Value> {
    app.search_pages(uri).await
}

#[tokio::test]
async fn compartment_search_of_one_type() {
    let app = TestApp::new();
    seed_compartments(&app).await;
    let r = app.get("/fhir/default/Patient/p1/Observation").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["type"], "searchset");
    assert_eq!(r.json["total"], 2);
    assert_eq!(
        keys(&r.json, "match"),
        set(&["Observation/o1", "Observation/o2"])
    );
    assert_eq!(
        link(&r.json, "self").unwrap(),
        format!("{BASE}/Patient/p1/Observation")
    );

    // Ordinary search parameters narrow the compartment.
    let r = app
        .get("/fhir/default/Patient/p1/Observation?code=http://loinc.org|1-8")
        .await;
    assert_eq!(keys(&r.json, "match"), set(&["Observation/o1"]));
    let r = app
        .get("/fhir/default/Patient/p2/Observation?code=http://loinc.org|1-8")
        .await;
    assert_eq!(keys(&r.json, "match"), set(&["Observation/o3"]));

    // Everything a type search supports: sorting, ValueSets of the tenant for `:in`.
    let r = app
        .get("/fhir/default/Patient/p1/Observation?_sort=-date")
        .await;
    assert_eq!(
        entry_keys(&r.json, "match", false),
        ["o2", "o1"],
        "{}",
        r.text
    );
    app.put_all(&[json!({"resourceType": "ValueSet", "id": "vs", "status": "active",
        "url": "http://example.org/fhir/ValueSet/first",
        "expansion": {"timestamp": "2024-01-01", "contains": [{"system": "http://loinc.org", "code": "1-8"}]}})])
        .await;
    let r = app
        .get("/fhir/default/Patient/p1/Observation?code:in=http://example.org/fhir/ValueSet/first")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(keys(&r.json, "match"), set(&["Observation/o1"]));

    // Paging stays inside the compartment, with links on the compartment URL.
    let all = pages(&app, "/fhir/default/Patient/p1/Observation?_count=1").await;
    assert_eq!(all.len(), 2);
    let next = link(&all[0], "next").unwrap();
    assert!(
        next.starts_with(&format!("{BASE}/Patient/p1/Observation?_count=1&_cursor=")),
        "{next}"
    );
    let ids: BTreeSet<String> = all.iter().flat_map(|p| keys(p, "match")).collect();
    assert_eq!(ids, set(&["Observation/o1", "Observation/o2"]));
    assert!(link(&all[1], "next").is_none());

    // Types outside the compartment and unknown patients have empty compartments.
    let r = app.get("/fhir/default/Patient/p1/Practitioner").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["total"], 0);
    let r = app.get("/fhir/default/Patient/nobody/Observation").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["total"], 0);
    assert!(r.json.get("entry").is_none());
    // Another tenant sees its own (empty) compartment, never this tenant's resources.
    let r = app.get("/fhir/other/Patient/p1/Observation").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["total"], 0);

    // Other compartments are not implemented; unknown types are 404.
    let r = app.get("/fhir/default/Encounter/e1/Observation").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.outcome_text().contains("compartment"), "{}", r.text);
    assert_eq!(
        app.get("/fhir/default/Patient/p1/Nope").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/fhir/default/Patient/p1/_history").await.status,
        StatusCode::OK,
        "static routes keep precedence"
    );
}

#[tokio::test]
async fn compartment_search_of_every_type() {
    let app = TestApp::new();
    seed_compartments(&app).await;
    let all = pages(&app, "/fhir/default/Patient/p1/*?_count=2").await;
    assert_eq!(all[0]["total"], 5);
    // Patient first, and no page is empty.
    assert_eq!(all[0]["entry"][0]["resource"]["id"], "p1");
    assert!(all.iter().all(|p| !keys(p, "match").is_empty()));
    assert_eq!(all.len(), 3);
    let ids: BTreeSet<String> = all.iter().flat_map(|p| keys(p, "match")).collect();
    assert_eq!(
        ids,
        set(&[
            "Patient/p1",
            "Encounter/e1",
            "MedicationRequest/mr",
            "Observation/o1",
            "Observation/o2"
        ])
    );
    assert_eq!(
        link(&all[0], "self").unwrap(),
        format!("{BASE}/Patient/p1/*?_count=2")
    );
    // Common parameters select in every type.
    let r = app.get("/fhir/default/Patient/p1/*?_id=o2,e1").await;
    assert_eq!(
        keys(&r.json, "match"),
        set(&["Encounter/e1", "Observation/o2"])
    );
    let r = app.get("/fhir/default/Patient/p1/*?_cursor=Nope:1").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn patient_everything() {
    let app = TestApp::new();
    seed_compartments(&app).await;
    let r = app.get("/fhir/default/Patient/p1/$everything").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["type"], "searchset");
    assert!(r.json.get("total").is_none(), "no total unless asked for");
    assert_eq!(r.json["entry"][0]["resource"]["id"], "p1");
    assert_eq!(
        keys(&r.json, "match"),
        set(&[
            "Patient/p1",
            "Encounter/e1",
            "MedicationRequest/mr",
            "Observation/o1",
            "Observation/o2"
        ])
    );
    assert_eq!(
        keys(&r.json, "include"),
        set(&[
            "Practitioner/dr",
            "Organization/org",
            "Location/loc",
            "Medication/med"
        ])
    );

    // Paging: every compartment resource once; referenced ones come with their referrers.
    let all = pages(&app, "/fhir/default/Patient/p1/$everything?_count=2").await;
    assert_eq!(all.len(), 3);
    let next = link(&all[0], "next").unwrap();
    assert!(
        next.starts_with(&format!("{BASE}/Patient/p1/$everything?_count=2&_cursor=")),
        "{next}"
    );
    let matches: Vec<String> = all
        .iter()
        .flat_map(|p| entry_keys(p, "match", true))
        .collect();
    assert_eq!(matches.len(), 5, "{matches:?}");
    assert_eq!(
        matches.iter().cloned().collect::<BTreeSet<_>>(),
        keys(&r.json, "match")
    );
    let included: BTreeSet<String> = all.iter().flat_map(|p| keys(p, "include")).collect();
    assert_eq!(included, keys(&r.json, "include"));

    // `_type` limits the compartment and the referenced resources.
    let r = app
        .get("/fhir/default/Patient/p1/$everything?_type=Observation,Practitioner")
        .await;
    assert_eq!(
        keys(&r.json, "match"),
        set(&["Observation/o1", "Observation/o2"])
    );
    assert_eq!(keys(&r.json, "include"), set(&["Practitioner/dr"]));

    // `_since`: only what changed since then (o2 was written last).
    let o2 = app.get("/fhir/default/Observation/o2").await;
    let since = o2.json["meta"]["lastUpdated"].as_str().unwrap().to_string();
    let r = app
        .get(&format!(
            "/fhir/default/Patient/p1/$everything?_since={}",
            since.replace('+', "%2B")
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(keys(&r.json, "match"), set(&["Observation/o2"]));

    // `start`/`end`: care dates of the types that have a `date` parameter.
    let r = app
        .get("/fhir/default/Patient/p1/$everything?_type=Patient,Observation,Encounter&start=2022-01-01")
        .await;
    assert_eq!(
        keys(&r.json, "match"),
        set(&["Patient/p1", "Observation/o2"])
    );
    let r = app
        .get("/fhir/default/Patient/p1/$everything?_type=Observation,Encounter&end=2020-12-31")
        .await;
    assert_eq!(
        keys(&r.json, "match"),
        set(&["Encounter/e1", "Observation/o1"])
    );

    // `_total=accurate` counts the compartment.
    let r = app
        .get("/fhir/default/Patient/p1/$everything?_total=accurate&_count=1")
        .await;
    assert_eq!(r.json["total"], 5);
}

#[tokio::test]
async fn everything_by_post_at_type_level_and_errors() {
    let app = TestApp::new();
    seed_compartments(&app).await;
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueCode": "Observation"}
    ]});
    let r = app
        .send_json("POST", "/fhir/default/Patient/p1/$everything", &body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        keys(&r.json, "match"),
        set(&["Observation/o1", "Observation/o2"])
    );
    assert_eq!(
        link(&r.json, "self").unwrap(),
        format!("{BASE}/Patient/p1/$everything?_type=Observation")
    );
    let r = app
        .request(
            "POST",
            "/fhir/default/Patient/p1/$everything",
            &[("content-type", "application/x-www-form-urlencoded")],
            "_type=Encounter",
        )
        .await;
    assert_eq!(keys(&r.json, "match"), set(&["Encounter/e1"]));

    // Type level: every patient's compartment.
    let r = app
        .get("/fhir/default/Patient/$everything?_type=Patient,Observation")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        keys(&r.json, "match"),
        set(&[
            "Patient/p1",
            "Patient/p2",
            "Observation/o1",
            "Observation/o2",
            "Observation/o3"
        ])
    );
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueCode": "Observation,Practitioner"}
    ]});
    let r = app
        .send_json("POST", "/fhir/default/Patient/$everything", &body)
        .await;
    assert_eq!(
        keys(&r.json, "match"),
        set(&["Observation/o1", "Observation/o2", "Observation/o3"])
    );
    assert_eq!(
        keys(&r.json, "include"),
        set(&["Practitioner/dr", "Practitioner/dr2"])
    );

    // Unknown and deleted patients; other types; bad parameters.
    let r = app.get("/fhir/default/Patient/nobody/$everything").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .request("DELETE", "/fhir/default/Patient/p2", &[], "")
        .await;
    assert!(r.status.is_success());
    let r = app.get("/fhir/default/Patient/p2/$everything").await;
    assert_eq!(r.status, StatusCode::GONE);
    let r = app.get("/fhir/default/Observation/o1/$everything").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .get("/fhir/default/Patient/p1/$everything?_type=Nope")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .request(
            "GET",
            "/fhir/default/Patient/p1/$everything?bogus=1",
            &[("prefer", "handling=strict")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.outcome_text().contains("bogus"));
    let r = app
        .send_json(
            "POST",
            "/fhir/default/Patient/p1/$everything",
            &json!({"resourceType": "Patient"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

fn has_subsetted_tag(resource: &Value) -> bool {
    resource["meta"]["tag"]
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t["code"] == "SUBSETTED"))
}

#[tokio::test]
async fn summary_views() {
    let app = TestApp::new();
    app.put_all(&[
        json!({"resourceType": "Organization", "id": "org", "name": "Hospital",
               "telecom": [{"system": "phone", "value": "1"}]}),
        json!({"resourceType": "Patient", "id": "s1",
               "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">S</div>"},
               "name": [{"family": "Sum"}], "gender": "female",
               "maritalStatus": {"text": "single"},
               "photo": [{"contentType": "image/png", "data": "AAAA"}],
               "managingOrganization": {"reference": "Organization/org"}}),
    ])
    .await;
    let r = app
        .get("/fhir/default/Patient?_id=s1&_summary=true&_include=Patient:organization")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = &r.json["entry"][0]["resource"];
    assert_eq!(p["name"][0]["family"], "Sum");
    assert_eq!(p["gender"], "female");
    for absent in ["text", "photo", "maritalStatus"] {
        assert!(p.get(absent).is_none(), "{absent}: {p}");
    }
    assert!(has_subsetted_tag(p));
    assert_eq!(
        link(&r.json, "self").unwrap(),
        format!("{BASE}/Patient?_id=s1&_summary=true&_include=Patient:organization")
    );
    // Included resources get the summary view too (Organization.telecom is not a summary element).
    let org = &r.json["entry"][1]["resource"];
    assert_eq!(r.json["entry"][1]["search"]["mode"], "include");
    assert_eq!(org["name"], "Hospital");
    assert!(org.get("telecom").is_none() && has_subsetted_tag(org));

    let r = app.get("/fhir/default/Patient?_id=s1&_summary=text").await;
    let p = &r.json["entry"][0]["resource"];
    assert!(p.get("text").is_some() && p.get("name").is_none() && p.get("gender").is_none());
    assert_eq!(p["id"], "s1");
    assert!(has_subsetted_tag(p));

    let r = app.get("/fhir/default/Patient?_id=s1&_summary=data").await;
    let p = &r.json["entry"][0]["resource"];
    assert!(p.get("text").is_none() && p.get("photo").is_some() && p.get("name").is_some());
    assert!(has_subsetted_tag(p));

    let r = app.get("/fhir/default/Patient?_id=s1&_summary=false").await;
    let p = &r.json["entry"][0]["resource"];
    assert!(p.get("text").is_some() && p.get("photo").is_some() && !has_subsetted_tag(p));

    // Read applies the same views.
    let r = app.get("/fhir/default/Patient/s1?_summary=true").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json.get("photo").is_none() && r.json.get("name").is_some());
    assert!(has_subsetted_tag(&r.json));
    assert!(r.header("etag").is_some());
    let r = app.get("/fhir/default/Patient/s1?_elements=gender").await;
    assert!(r.json.get("name").is_none() && r.json["gender"] == "female");
    let r = app.get("/fhir/default/Patient/s1").await;
    assert!(r.json.get("photo").is_some() && !has_subsetted_tag(&r.json));

    // `$everything` too.
    let r = app
        .get("/fhir/default/Patient/s1/$everything?_summary=true")
        .await;
    let p = &r.json["entry"][0]["resource"];
    assert!(p.get("photo").is_none() && has_subsetted_tag(p));
}

#[tokio::test]
async fn strict_and_lenient_handling() {
    let app = TestApp::new();
    app.put_all(&[json!({"resourceType": "Patient", "id": "h1", "name": [{"family": "Handle"}]})])
        .await;
    let query = "/fhir/default/Patient?bogus=1&family=Handle&_include=Nope:x&_summary=nonsense";
    let r = app
        .request("GET", query, &[("prefer", "handling=strict")], "")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let issues = r.json["issue"].as_array().unwrap();
    assert_eq!(issues.len(), 3, "{}", r.text);
    let text = r.outcome_text();
    for name in ["bogus", "_include", "_summary"] {
        assert!(text.contains(&format!("'{name}'")), "{text}");
    }
    assert!(issues.iter().all(|i| i["code"] == "not-supported"));

    // Lenient: applied parameters only in the links, the rest named in an outcome entry.
    let r = app.get(query).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(keys(&r.json, "match"), set(&["Patient/h1"]));
    assert_eq!(
        link(&r.json, "self").unwrap(),
        format!("{BASE}/Patient?family=Handle")
    );
    let d = diagnostics(&r.json);
    assert!(
        d.starts_with("warning:") && d.contains("bogus") && d.contains("_include"),
        "{d}"
    );
}

#[tokio::test]
async fn count_above_the_maximum_is_capped_and_said() {
    let app = TestApp::with_config(ServerConfig {
        base_url: Some("http://test.local".into()),
        max_page_size: 3,
        default_page_size: 2,
        ..ServerConfig::default()
    });
    for i in 0..5 {
        app.put_all(&[
            json!({"resourceType": "Patient", "id": format!("c{i}"), "name": [{"family": "Cap"}]}),
        ])
        .await;
    }
    let r = app.get("/fhir/default/Patient?family=Cap&_count=10").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(keys(&r.json, "match").len(), 3);
    assert_eq!(
        link(&r.json, "self").unwrap(),
        format!("{BASE}/Patient?family=Cap&_count=3")
    );
    assert!(
        link(&r.json, "next")
            .unwrap()
            .contains("family=Cap&_count=3&_cursor=")
    );
    let d = diagnostics(&r.json);
    assert!(
        d.starts_with("information:") && d.contains("_count=10"),
        "{d}"
    );
    // Within the maximum: no note.
    let r = app.get("/fhir/default/Patient?family=Cap&_count=3").await;
    assert!(outcomes(&r.json).is_empty());
    let r = app
        .get("/fhir/default/Patient/c0/$everything?_count=10")
        .await;
    assert!(diagnostics(&r.json).contains("_count=10"));
}

#[tokio::test]
async fn include_iterate_and_wildcards() {
    let app = TestApp::new();
    app.put_all(&[
        json!({"resourceType": "Practitioner", "id": "dr"}),
        json!({"resourceType": "Patient", "id": "p", "generalPractitioner": [{"reference": "Practitioner/dr"}]}),
        json!({"resourceType": "Encounter", "id": "e", "status": "finished", "class": {"code": "AMB"},
               "subject": {"reference": "Patient/p"}}),
        json!({"resourceType": "Observation", "id": "o3", "status": "final", "code": {"text": "3"}}),
        json!({"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "2"},
               "hasMember": [{"reference": "Observation/o3"}]}),
        json!({"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "1"},
               "subject": {"reference": "Patient/p"}, "performer": [{"reference": "Practitioner/dr"}],
               "encounter": {"reference": "Encounter/e"},
               "hasMember": [{"reference": "Observation/o2"}]}),
    ])
    .await;
    let includes = |q: &'static str| {
        let app = &app;
        async move {
            let r = app.get(&format!("/fhir/default/{q}")).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text);
            (keys(&r.json, "match"), keys(&r.json, "include"))
        }
    };
    let (m, i) = includes("Observation?_id=o1&_include=Observation:has-member").await;
    assert_eq!(m, set(&["Observation/o1"]));
    assert_eq!(i, set(&["Observation/o2"]));
    let (_, i) = includes("Observation?_id=o1&_include:iterate=Observation:has-member").await;
    assert_eq!(i, set(&["Observation/o2", "Observation/o3"]));
    // `*`: every reference parameter of the source type.
    let (_, i) = includes("Observation?_id=o1&_include=Observation:*").await;
    assert_eq!(
        i,
        set(&[
            "Patient/p",
            "Practitioner/dr",
            "Encounter/e",
            "Observation/o2"
        ])
    );
    let (_, i) = includes("Observation?_id=o1&_include=*").await;
    assert!(i.contains("Patient/p") && i.contains("Observation/o2"));
    // Iterate from the included Patient to its practitioner.
    let (_, i) = includes(
        "Observation?_id=o1&_include=Observation:subject&_include:iterate=Patient:general-practitioner",
    )
    .await;
    assert_eq!(i, set(&["Patient/p", "Practitioner/dr"]));
    // Reverse: Encounters of the patient, then (iterating) Observations of those Encounters.
    let (_, i) =
        includes("Patient?_id=p&_revinclude=Encounter:subject&_revinclude=Observation:encounter")
            .await;
    assert_eq!(i, set(&["Encounter/e"]));
    let (_, i) = includes(
        "Patient?_id=p&_revinclude=Encounter:subject&_revinclude:iterate=Observation:encounter",
    )
    .await;
    assert_eq!(i, set(&["Encounter/e", "Observation/o1"]));
    let (_, i) = includes("Patient?_id=p&_revinclude=Observation:*").await;
    assert_eq!(i, set(&["Observation/o1"]));
    // A typed include that cannot point there is not applied (and is named when strict).
    let r = app
        .request(
            "GET",
            "/fhir/default/Observation?_include=Observation:subject:Practitioner",
            &[("prefer", "handling=strict")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn included_resources_are_bounded_and_truncation_is_said() {
    let app = TestApp::new();
    app.put_all(&[json!({"resourceType": "Patient", "id": "many"})])
        .await;
    // Straight into the store: 1001 HTTP creates would only slow the test down.
    app.with_store(|store| {
        let mut s = store.write_session("default").unwrap();
        for i in 0..1001 {
            s.put(
                "Observation",
                &format!("m{i}"),
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "m"},
                       "subject": {"reference": "Patient/many"}}),
                Precondition::None,
            )
            .unwrap();
        }
        s.commit().unwrap();
    });
    let r = app
        .get("/fhir/default/Patient?_id=many&_revinclude=Observation:subject")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(keys(&r.json, "include").len(), 1000);
    let d = diagnostics(&r.json);
    assert!(d.starts_with("warning:") && d.contains("incomplete"), "{d}");
    let r = app
        .get("/fhir/default/Patient?_id=many&_revinclude=Observation:subject&_count=1")
        .await;
    assert_eq!(keys(&r.json, "match"), set(&["Patient/many"]));
}

#[tokio::test]
async fn list_restricts_the_search() {
    let app = TestApp::new();
    app.put_all(&[
        json!({"resourceType": "Patient", "id": "l1", "name": [{"family": "Listed"}]}),
        json!({"resourceType": "Patient", "id": "l2", "name": [{"family": "Listed"}]}),
        json!({"resourceType": "Patient", "id": "l3", "name": [{"family": "Unlisted"}]}),
        json!({"resourceType": "Observation", "id": "lo", "status": "final", "code": {"text": "x"}}),
        json!({"resourceType": "List", "id": "mine", "status": "current", "mode": "working",
               "entry": [
                   {"item": {"reference": "Patient/l1"}},
                   {"item": {"reference": format!("{BASE}/Patient/l2")}},
                   {"item": {"reference": "Patient/gone"}},
                   {"item": {"reference": "Observation/lo"}},
                   {"deleted": true, "item": {"reference": "Patient/l3"}}
               ]}),
    ])
    .await;
    let r = app.get("/fhir/default/Patient?_list=mine").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(keys(&r.json, "match"), set(&["Patient/l1", "Patient/l2"]));
    assert_eq!(r.json["total"], 2);
    assert_eq!(
        link(&r.json, "self").unwrap(),
        format!("{BASE}/Patient?_list=mine")
    );
    let r = app.get("/fhir/default/Patient?_list=mine&_id=l2,l3").await;
    assert_eq!(keys(&r.json, "match"), set(&["Patient/l2"]));
    let r = app.get("/fhir/default/Observation?_list=mine").await;
    assert_eq!(keys(&r.json, "match"), set(&["Observation/lo"]));
    let r = app.get("/fhir/default/Encounter?_list=mine").await;
    assert_eq!(r.json["total"], 0);
    // A missing List (or one of another tenant) selects nothing.
    let r = app.get("/fhir/default/Patient?_list=nolist").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["total"], 0);
    assert!(r.json.get("entry").is_none());
    let r = app.get("/fhir/other/Patient?_list=mine").await;
    assert_eq!(r.json["total"], 0);
    // Functional lists are not supported: ignored, or 400 when strict.
    let r = app
        .request(
            "GET",
            "/fhir/default/Patient?_list=$current-allergies",
            &[("prefer", "handling=strict")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn post_search_merges_form_and_query() {
    let app = TestApp::new();
    app.put_all(&[
        json!({"resourceType": "Patient", "id": "f1", "name": [{"family": "Form", "given": ["Ann"]}]}),
        json!({"resourceType": "Patient", "id": "f2", "name": [{"family": "Form", "given": ["Bob"]}]}),
        json!({"resourceType": "Patient", "id": "f3", "name": [{"family": "Other", "given": ["Ann"]}]}),
    ])
    .await;
    let r = app
        .request(
            "POST",
            "/fhir/default/Patient/_search?family=Form",
            &[("content-type", "application/x-www-form-urlencoded")],
            "given=Ann&_count=5",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(keys(&r.json, "match"), set(&["Patient/f1"]));
    // The self link is a GET that repeats both.
    assert_eq!(
        link(&r.json, "self").unwrap(),
        format!("{BASE}/Patient?family=Form&given=Ann&_count=5")
    );
    let r = app
        .request(
            "POST",
            "/fhir/default/Patient/_search",
            &[("content-type", "application/json")],
            "{}",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn capability_statement_describes_search() {
    let app = TestApp::new();
    let r = app.get("/fhir/default/metadata").await;
    assert_eq!(r.status, StatusCode::OK);
    let rest = &r.json["rest"][0];
    assert_eq!(
        rest["compartment"][0],
        "http://hl7.org/fhir/CompartmentDefinition/patient"
    );
    let patient = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|res| res["type"] == "Patient")
        .unwrap();
    let everything = patient["operation"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "everything")
        .unwrap();
    assert_eq!(
        everything["definition"],
        "http://hl7.org/fhir/OperationDefinition/Patient-everything"
    );
    let params = patient["searchParam"].as_array().unwrap();
    let family = params.iter().find(|p| p["name"] == "family").unwrap();
    assert_eq!(family["type"], "string");
    assert!(
        family["documentation"]
            .as_str()
            .unwrap()
            .contains("`:exact`")
    );
    for name in [
        "_count",
        "_summary",
        "_elements",
        "_list",
        "_id",
        "_lastUpdated",
    ] {
        assert!(params.iter().any(|p| p["name"] == name), "{name}");
    }
    let includes = patient["searchInclude"].as_array().unwrap();
    assert!(includes.iter().any(|i| i == "Patient:*"));
    assert!(includes.iter().any(|i| i == "Patient:general-practitioner"));
    assert!(
        patient["searchRevInclude"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "Observation:subject")
    );
}
