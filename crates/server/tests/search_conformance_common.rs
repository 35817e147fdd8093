//! Conformance of the parameters common to all resources (`_id`, `_lastUpdated`, `_tag`,
//! `_profile`, `_security`, `_source`) and of the result parameters and search forms that apply
//! to every type: `_sort`, `_include`/`_revinclude` (with `:iterate` and `*`), `_total`,
//! `_summary`, `_elements`, `_count`, compartment search (`Patient/[id]/[type]`),
//! `Patient/[id]/$everything`, `Prefer: handling=strict`, and bad input (400, never 500).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use common::{TestApp, entry_keys, search_uri};
use medicus_server::ServerConfig;
use serde_json::{Value, json};

const TAGS: &str = "http://example.org/tags";
const CONF: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const MII_PATIENT: &str = "https://www.medizininformatik-initiative.de/fhir/core/modul-person/StructureDefinition/Patient";
const MII_PSEUDO: &str = "https://www.medizininformatik-initiative.de/fhir/core/modul-person/StructureDefinition/PatientPseudonymisiert";

fn fixtures() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "p-a",
               "meta": {"tag": [{"system": TAGS, "code": "study-1"}], "profile": [MII_PATIENT],
                        "security": [{"system": CONF, "code": "R"}],
                        "source": "http://sender.example.org/fhir#abc"},
               "name": [{"family": "Alpha"}], "birthDate": "1990-01-01", "gender": "female",
               "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "de"}]}}],
               "managingOrganization": {"reference": "Organization/org-1"},
               "generalPractitioner": [{"reference": "Practitioner/pr-1"}]}),
        json!({"resourceType": "Patient", "id": "p-b",
               "meta": {"tag": [{"system": TAGS, "code": "study-2"}], "profile": [MII_PSEUDO],
                        "security": [{"system": CONF, "code": "N"}],
                        "source": "http://other.example.org"},
               "name": [{"family": "Beta"}], "birthDate": "1985-06-15", "gender": "male"}),
        json!({"resourceType": "Patient", "id": "p-c",
               "name": [{"family": "Gamma"}], "birthDate": "1990-01-01", "gender": "female"}),
        json!({"resourceType": "Patient", "id": "p-d",
               "meta": {"tag": [{"system": TAGS, "code": "study-1"}, {"system": TAGS, "code": "study-2"}]},
               "name": [{"family": "Delta"}], "birthDate": "2000-02-02", "gender": "other"}),
        json!({"resourceType": "Patient", "id": "p-e", "gender": "unknown"}),
        json!({"resourceType": "Organization", "id": "org-top", "name": "Universitätsmedizin"}),
        json!({"resourceType": "Organization", "id": "org-1", "name": "Klinikum",
               "partOf": {"reference": "Organization/org-top"}}),
        json!({"resourceType": "Practitioner", "id": "pr-1", "name": [{"family": "Smith"}]}),
        json!({"resourceType": "Encounter", "id": "enc-1", "status": "finished", "class": {"code": "IMP"},
               "subject": {"reference": "Patient/p-a"}}),
        json!({"resourceType": "Observation", "id": "o-1", "status": "final", "code": {"text": "a"},
               "subject": {"reference": "Patient/p-a"}, "performer": [{"reference": "Practitioner/pr-1"}]}),
        json!({"resourceType": "Observation", "id": "o-enc", "status": "final", "code": {"text": "b"},
               "subject": {"reference": "Patient/p-a"}, "encounter": {"reference": "Encounter/enc-1"}}),
        json!({"resourceType": "Observation", "id": "o-2", "status": "final", "code": {"text": "c"},
               "subject": {"reference": "Patient/p-b"}}),
        json!({"resourceType": "RiskAssessment", "id": "ra-1", "status": "final",
               "subject": {"reference": "Patient/p-a"}, "prediction": [{"probabilityDecimal": 0.3}]}),
        json!({"resourceType": "RiskAssessment", "id": "ra-2", "status": "final",
               "subject": {"reference": "Patient/p-b"}, "prediction": [{"probabilityDecimal": 0.1}]}),
        json!({"resourceType": "RiskAssessment", "id": "ra-3", "status": "final",
               "subject": {"reference": "Patient/p-c"}, "prediction": [{"probabilityDecimal": 0.2}]}),
    ]
}

async fn app() -> TestApp {
    let app = TestApp::new();
    app.put_all(&fixtures()).await;
    app
}

async fn get(app: &TestApp, query: &str) -> common::TestResponse {
    let r = app.get(&search_uri(query)).await;
    assert_eq!(r.status, StatusCode::OK, "GET {query}: {}", r.text);
    r
}

fn sorted(v: Vec<String>) -> Vec<String> {
    let mut v = v;
    v.sort();
    v
}

fn strs(v: &[&str]) -> Vec<String> {
    sorted(v.iter().map(|s| (*s).to_owned()).collect())
}

#[tokio::test]
async fn id() {
    let app = app().await;
    app.assert_search("Patient?_id=p-a", &["p-a"]).await;
    app.assert_search("Patient?_id=p-a,p-c,nope", &["p-a", "p-c"])
        .await;
    app.assert_search("Patient?_id=P-A", &[]).await;
    app.assert_search("Patient?_id=p", &[]).await;
    app.assert_search("Patient?_id=p-%", &[]).await;
    app.assert_search("Patient?_id=p-_", &[]).await;
    app.assert_search("Patient?_id=' OR 1=1 --", &[]).await;
    app.assert_search("Patient?_id=p-a&_id=p-b", &[]).await;
    // The id of another type is not a Patient.
    app.assert_search("Patient?_id=o-1", &[]).await;
    // System-level search over all types.
    let r = get(&app, "?_id=o-1,p-b").await;
    assert_eq!(
        sorted(entry_keys(&r.json, "match", true)),
        strs(&["Observation/o-1", "Patient/p-b"])
    );
}

#[tokio::test]
async fn last_updated() {
    let app = TestApp::new();
    let mut stamps = Vec::new();
    for (i, id) in ["lu-1", "lu-2", "lu-3"].iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        app.put_all(&[json!({"resourceType": "Patient", "id": id})])
            .await;
        let r = app.get(&format!("/fhir/default/Patient/{id}")).await;
        stamps.push(r.json["meta"]["lastUpdated"].as_str().unwrap().to_owned());
    }
    let second = &stamps[1];
    app.assert_search(
        &format!("Patient?_lastUpdated=ge{second}"),
        &["lu-2", "lu-3"],
    )
    .await;
    app.assert_search(&format!("Patient?_lastUpdated=lt{second}"), &["lu-1"])
        .await;
    app.assert_search(&format!("Patient?_lastUpdated=gt{}", stamps[2]), &[])
        .await;
    app.assert_search(&format!("Patient?_lastUpdated=le{}", stamps[0]), &["lu-1"])
        .await;
    app.assert_search(&format!("Patient?_lastUpdated={}", stamps[0]), &["lu-1"])
        .await;
    app.assert_search(
        "Patient?_lastUpdated=gt2000-01-01",
        &["lu-1", "lu-2", "lu-3"],
    )
    .await;
    app.assert_search("Patient?_lastUpdated=lt2000", &[]).await;
    app.assert_search(
        &format!(
            "Patient?_lastUpdated=ge{}&_lastUpdated=le{}",
            stamps[0], stamps[1]
        ),
        &["lu-1", "lu-2"],
    )
    .await;
    app.assert_rejected("Patient?_lastUpdated=yesterday").await;
}

#[tokio::test]
async fn tag_profile_security_source() {
    let app = app().await;
    app.assert_search(&format!("Patient?_tag={TAGS}|study-1"), &["p-a", "p-d"])
        .await;
    app.assert_search("Patient?_tag=study-2", &["p-b", "p-d"])
        .await;
    app.assert_search(
        &format!("Patient?_tag={TAGS}|study-1&_tag={TAGS}|study-2"),
        &["p-d"],
    )
    .await;
    app.assert_search(
        &format!("Patient?_tag:not={TAGS}|study-1"),
        &["p-b", "p-c", "p-e"],
    )
    .await;
    app.assert_search("Patient?_tag:missing=true", &["p-c", "p-e"])
        .await;
    app.assert_search(&format!("Patient?_profile={MII_PATIENT}"), &["p-a"])
        .await;
    app.assert_search(&format!("Patient?_profile={MII_PSEUDO}"), &["p-b"])
        .await;
    app.assert_search(&format!("Patient?_security={CONF}|R"), &["p-a"])
        .await;
    app.assert_search("Patient?_security=N", &["p-b"]).await;
    app.assert_search(
        "Patient?_source=http://sender.example.org/fhir#abc",
        &["p-a"],
    )
    .await;
    app.assert_search("Patient?_source=http://other.example.org", &["p-b"])
        .await;
    app.assert_search("Patient?_source=http://sender.example.org/fhir", &[])
        .await;
}

/// The ids of a sorted search without `p-e`, which has no name and no birth date: it comes
/// after the others (where exactly is up to the server), so the order is checked on the others.
async fn order(app: &TestApp, q: &str) -> Vec<String> {
    let ids = app.search_ids(&search_uri(q)).await;
    assert_eq!(ids.len(), 5, "{q}: {ids:?}");
    ids.into_iter().filter(|id| id != "p-e").collect()
}

#[tokio::test]
async fn sort_by_string_date_token_number_and_id() {
    let app = app().await;
    assert_eq!(
        order(&app, "Patient?_sort=family").await,
        ["p-a", "p-b", "p-d", "p-c"]
    );
    assert_eq!(
        order(&app, "Patient?_sort=-family").await,
        ["p-c", "p-d", "p-b", "p-a"]
    );
    assert_eq!(
        order(&app, "Patient?_sort=birthdate,family").await,
        ["p-b", "p-a", "p-c", "p-d"]
    );
    assert_eq!(
        order(&app, "Patient?_sort=birthdate,-family").await,
        ["p-b", "p-c", "p-a", "p-d"]
    );
    assert_eq!(
        order(&app, "Patient?_sort=-birthdate,family").await,
        ["p-d", "p-a", "p-c", "p-b"]
    );
    assert_eq!(
        order(&app, "Patient?_sort=gender,family").await,
        ["p-a", "p-c", "p-b", "p-d"]
    );
    assert_eq!(
        order(&app, "Patient?_sort=-gender,family").await,
        ["p-d", "p-b", "p-a", "p-c"]
    );
    assert_eq!(
        order(&app, "Patient?_sort=_id").await,
        ["p-a", "p-b", "p-c", "p-d"]
    );
    assert_eq!(
        order(&app, "Patient?_sort=-_id").await,
        ["p-d", "p-c", "p-b", "p-a"]
    );
    let ids = app
        .search_ids(&search_uri("RiskAssessment?_sort=probability"))
        .await;
    assert_eq!(ids, ["ra-2", "ra-3", "ra-1"]);
    let ids = app
        .search_ids(&search_uri("RiskAssessment?_sort=-probability"))
        .await;
    assert_eq!(ids, ["ra-1", "ra-3", "ra-2"]);
    // Sorted paging: every page continues where the last one stopped.
    assert_eq!(
        order(&app, "Patient?_sort=family&_count=1").await,
        ["p-a", "p-b", "p-d", "p-c"]
    );
    assert_eq!(
        order(&app, "Patient?_sort=-birthdate,family&_count=2").await,
        ["p-d", "p-a", "p-c", "p-b"]
    );
    // Sorting and filtering.
    let ids = app
        .search_ids(&search_uri("Patient?gender=female&_sort=-family"))
        .await;
    assert_eq!(ids, ["p-c", "p-a"]);
}

async fn includes(app: &TestApp, query: &str) -> (Vec<String>, Vec<String>) {
    let r = get(app, query).await;
    (
        sorted(entry_keys(&r.json, "match", true)),
        sorted(entry_keys(&r.json, "include", true)),
    )
}

#[tokio::test]
async fn include_and_revinclude() {
    let app = app().await;
    let (m, i) = includes(&app, "Observation?_id=o-1&_include=Observation:subject").await;
    assert_eq!(m, strs(&["Observation/o-1"]));
    assert_eq!(i, strs(&["Patient/p-a"]));
    let (_, i) = includes(
        &app,
        "Observation?_id=o-1&_include=Observation:subject&_include=Observation:performer",
    )
    .await;
    assert_eq!(i, strs(&["Patient/p-a", "Practitioner/pr-1"]));
    // Without :iterate an include applies to the matches only.
    let (_, i) = includes(
        &app,
        "Observation?_id=o-1&_include=Observation:subject&_include=Patient:organization",
    )
    .await;
    assert_eq!(i, strs(&["Patient/p-a"]));
    let (m, i) = includes(&app, "Patient?_id=p-a&_revinclude=Observation:subject").await;
    assert_eq!(m, strs(&["Patient/p-a"]));
    assert_eq!(i, strs(&["Observation/o-1", "Observation/o-enc"]));
    // Included resources are not counted.
    let r = get(&app, "Patient?_id=p-a&_revinclude=Observation:subject").await;
    assert_eq!(r.json["total"], 1);
}

#[tokio::test]
async fn include_iterate() {
    let app = app().await;
    let (_, i) = includes(
        &app,
        "Observation?_id=o-1&_include=Observation:subject&_include:iterate=Patient:organization\
         &_include:iterate=Organization:partof",
    )
    .await;
    assert_eq!(
        i,
        strs(&["Patient/p-a", "Organization/org-1", "Organization/org-top"])
    );
    let (_, i) = includes(
        &app,
        "Patient?_id=p-a&_revinclude=Encounter:subject&_revinclude:iterate=Observation:encounter",
    )
    .await;
    assert_eq!(i, strs(&["Encounter/enc-1", "Observation/o-enc"]));
}

#[tokio::test]
async fn include_wildcard() {
    let app = app().await;
    let (_, i) = includes(&app, "Observation?_id=o-1&_include=Observation:*").await;
    assert_eq!(i, strs(&["Patient/p-a", "Practitioner/pr-1"]));
    let (_, i) = includes(&app, "Observation?_id=o-1&_include=*").await;
    assert_eq!(i, strs(&["Patient/p-a", "Practitioner/pr-1"]));
}

#[tokio::test]
async fn revinclude_wildcard() {
    let app = app().await;
    let (_, i) = includes(&app, "Patient?_id=p-a&_revinclude=*").await;
    assert_eq!(
        i,
        strs(&[
            "Encounter/enc-1",
            "Observation/o-1",
            "Observation/o-enc",
            "RiskAssessment/ra-1"
        ])
    );
}

#[tokio::test]
async fn total_summary_elements() {
    let app = app().await;
    let r = get(&app, "Patient?gender=female&_total=none").await;
    assert!(r.json.get("total").is_none(), "{}", r.text);
    assert_eq!(entry_keys(&r.json, "match", false).len(), 2);
    let r = get(&app, "Patient?gender=female&_total=accurate").await;
    assert_eq!(r.json["total"], 2);
    let r = get(&app, "Patient?gender=female&_total=estimate").await;
    assert_eq!(r.status, StatusCode::OK);
    app.assert_rejected("Patient?_total=bogus").await;

    let r = get(&app, "Patient?gender=female&_summary=count").await;
    assert_eq!(r.json["total"], 2);
    assert!(r.json.get("entry").is_none(), "{}", r.text);

    let r = get(&app, "Patient?_id=p-a&_elements=gender").await;
    let p = &r.json["entry"][0]["resource"];
    assert_eq!(p["gender"], "female");
    assert!(
        p.get("name").is_none() && p.get("birthDate").is_none(),
        "{p}"
    );
    assert_eq!(p["id"], "p-a");
}

fn has_subsetted(resource: &Value) -> bool {
    resource["meta"]["tag"]
        .as_array()
        .is_some_and(|t| t.iter().any(|c| c["code"] == "SUBSETTED"))
}

#[tokio::test]
async fn summary_views() {
    let app = app().await;
    // `communication` is not a summary element of Patient; name, gender and birthDate are.
    let r = get(&app, "Patient?_id=p-a&_summary=true").await;
    let p = &r.json["entry"][0]["resource"];
    assert!(p.get("communication").is_none(), "{p}");
    assert_eq!(p["gender"], "female");
    assert_eq!(p["name"][0]["family"], "Alpha");
    assert!(has_subsetted(p), "{p}");
    let r = get(&app, "Patient?_id=p-a&_summary=data").await;
    let p = &r.json["entry"][0]["resource"];
    assert!(p.get("communication").is_some(), "{p}");
    assert!(p.get("text").is_none(), "{p}");
    let r = get(&app, "Patient?_id=p-a&_summary=false").await;
    let p = &r.json["entry"][0]["resource"];
    assert!(p.get("communication").is_some() && !has_subsetted(p), "{p}");
    let r = get(&app, "Patient?_id=p-a&_summary=text").await;
    let p = &r.json["entry"][0]["resource"];
    assert!(
        p.get("communication").is_none() && p.get("gender").is_none(),
        "{p}"
    );
}

#[tokio::test]
async fn count_is_capped_at_the_maximum() {
    let app = TestApp::with_config(ServerConfig {
        base_url: Some("http://test.local".into()),
        max_page_size: 3,
        ..ServerConfig::default()
    });
    app.put_all(&fixtures()).await;
    let r = get(&app, "Patient?_count=100").await;
    assert_eq!(entry_keys(&r.json, "match", false).len(), 3, "{}", r.text);
    assert_eq!(r.json["total"], 5);
    assert!(
        r.json["link"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["relation"] == "next"),
        "{}",
        r.text
    );
    let all = app.search_ids(&search_uri("Patient?_count=100")).await;
    assert_eq!(sorted(all), strs(&["p-a", "p-b", "p-c", "p-d", "p-e"]));
    let r = get(&app, "Patient?_count=0").await;
    assert_eq!(r.json["total"], 5);
    assert!(r.json.get("entry").is_none());
    for bad in ["abc", "-1", "1.5", "' OR 1=1 --"] {
        app.assert_bad_search(&format!("Patient?_count={bad}"), "_count")
            .await;
    }
}

#[tokio::test]
async fn compartment_search() {
    let app = app().await;
    let ids = sorted(
        app.search_ids("/fhir/default/Patient/p-a/Observation")
            .await,
    );
    assert_eq!(ids, strs(&["o-1", "o-enc"]));
    let ids = sorted(
        app.search_ids(&search_uri(
            "Patient/p-a/Observation?encounter=Encounter/enc-1",
        ))
        .await,
    );
    assert_eq!(ids, strs(&["o-enc"]));
    let ids = sorted(app.search_ids("/fhir/default/Patient/p-a/Encounter").await);
    assert_eq!(ids, strs(&["enc-1"]));
    let ids = sorted(
        app.search_ids("/fhir/default/Patient/p-b/Observation")
            .await,
    );
    assert_eq!(ids, strs(&["o-2"]));
    let ids = app
        .search_ids("/fhir/default/Patient/nobody/Observation")
        .await;
    assert!(ids.is_empty(), "{ids:?}");
}

#[tokio::test]
async fn patient_everything() {
    let app = app().await;
    let pages = app
        .search_pages("/fhir/default/Patient/p-a/$everything")
        .await;
    let keys: BTreeSet<String> = pages
        .iter()
        .flat_map(|p| {
            p["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["resource"]["resourceType"].as_str().unwrap_or(""),
                        e["resource"]["id"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for must in [
        "Patient/p-a",
        "Observation/o-1",
        "Observation/o-enc",
        "Encounter/enc-1",
        "RiskAssessment/ra-1",
    ] {
        assert!(keys.contains(must), "{must} missing from {keys:?}");
    }
    for other in [
        "Patient/p-b",
        "Observation/o-2",
        "RiskAssessment/ra-2",
        "Patient/p-c",
    ] {
        assert!(!keys.contains(other), "{other} in {keys:?}");
    }
}

#[tokio::test]
async fn strict_handling_refuses_what_lenient_ignores() {
    let app = app().await;
    let strict = [("prefer", "handling=strict")];
    for (query, name) in [
        ("Patient?bogus=1", "bogus"),
        ("Patient?family=Alpha&nonsense:exact=x", "nonsense"),
        ("Patient?_include=Nope:x", "_include"),
    ] {
        let r = app.request("GET", &search_uri(query), &strict, "").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.text);
        assert!(r.outcome_text().contains(name), "{query}: {}", r.text);
        let lenient = app.get(&search_uri(query)).await;
        assert_eq!(lenient.status, StatusCode::OK, "{query}: {}", lenient.text);
    }
    let r = app
        .request("GET", &search_uri("Patient?family=Alpha"), &strict, "")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .request(
            "GET",
            &search_uri("Patient?family=Alpha"),
            &[("prefer", "handling=lenient")],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_input_is_never_a_500() {
    let app = app().await;
    let queries = [
        "Patient?birthdate=ge",
        "Patient?birthdate=2020-02-30T10:00:00Z",
        "Patient?_sort=' OR 1=1 --",
        "Patient?_sort=-",
        "Patient?_sort=,",
        "Patient?_sort=bogus",
        "Patient?_count=99999999999999999999999",
        "Patient?_cursor=garbage",
        "Patient?_cursor=s1~zz",
        "Patient?_include=Observation",
        "Patient?_include=:::",
        "Patient?_revinclude=*:*:*",
        "Patient?_has=x",
        "Patient?_has:Observation=x",
        "Patient?_has:Observation:subject=x",
        "Patient?_elements=%00",
        "Patient?_summary=bogus",
        "Patient?name:contains=%00",
        "Patient?name=\u{1F600}\u{0301}",
        "Patient?identifier=|||",
        "Patient?identifier:of-type=a",
        "Patient?general-practitioner=Practitioner/%2F..%2F",
        "Patient?general-practitioner:identifier=|",
        "Patient?organization.name.family=x",
        "Patient?organization:Nope.name=x",
        "Observation?code-value-quantity=$",
        "Observation?code-value-quantity=$$$$",
        "Observation?value-quantity=1e999999",
        "Observation?value-quantity=5|||",
        "Observation?subject._id=x",
        "Observation?subject:Patient._lastUpdated=notadate",
        "Patient?_lastUpdated=ge99999-01-01",
        "Patient?birthdate=ge0000-01-01",
        "Patient?birthdate=9999-12-31T23:59:59.9999999999Z",
        "Patient?_id:missing=true",
        "Patient?_id:exact=p-a",
        "Patient?_tag:text=x",
        "Patient?_source:below=http://",
        "ValueSet?url:above=",
        "Condition?code:below=|",
        "Condition?code:above=nosuchsystem|X",
        "Condition?code:in=",
        "Condition?code:in=' OR 1=1 --",
    ];
    for q in queries {
        let r = app.get(&search_uri(q)).await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST,
            "GET {q}: {} {}",
            r.status,
            r.text
        );
        if r.status == StatusCode::BAD_REQUEST {
            r.outcome_text();
        }
    }
    // Nothing was changed by any of it.
    assert_eq!(app.search_ids("/fhir/default/Patient").await.len(), 5);
}
