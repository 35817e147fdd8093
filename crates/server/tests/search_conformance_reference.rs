//! Conformance of reference search parameters (FHIR R4 search §3.1.1.4.8) and of chaining
//! (§3.1.1.4.13) and reverse chaining (`_has`, §3.1.1.4.14): `Type/id`, a bare id, absolute URLs,
//! the `:[type]` and `:identifier` modifiers, `:missing`, chains over one and several links,
//! nested `_has`, and the limits on chain depth.

mod common;

use common::TestApp;
use serde_json::{Value, json};

fn obs(id: &str, code: &str, subject: Option<Value>) -> Value {
    let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
                       "code": {"coding": [{"system": "http://loinc.org", "code": code}]}});
    if let Some(s) = subject {
        o["subject"] = s;
    }
    o
}

fn r(reference: &str) -> Option<Value> {
    Some(json!({ "reference": reference }))
}

fn fixtures() -> Vec<Value> {
    vec![
        json!({"resourceType": "Organization", "id": "org-top", "name": "Universitätsmedizin"}),
        json!({"resourceType": "Organization", "id": "org-1", "name": "Klinikum Nord",
               "partOf": {"reference": "Organization/org-top"}}),
        json!({"resourceType": "Practitioner", "id": "pr-1", "name": [{"family": "Smith"}]}),
        json!({"resourceType": "Patient", "id": "pat-1", "birthDate": "1970-05-05",
               "name": [{"family": "Meier"}],
               "managingOrganization": {"reference": "Organization/org-1"},
               "generalPractitioner": [{"reference": "Practitioner/pr-1"}]}),
        json!({"resourceType": "Patient", "id": "pat-2", "birthDate": "1985-01-01",
               "name": [{"family": "Schulz"}]}),
        json!({"resourceType": "Group", "id": "grp-1", "type": "person", "actual": true}),
        json!({"resourceType": "Group", "id": "pat-1", "type": "person", "actual": true}),
        obs("o-p1", "1234-5", r("Patient/pat-1")),
        obs("o-p2", "9999-9", r("Patient/pat-2")),
        obs("o-grp", "1234-5", r("Group/grp-1")),
        obs("o-grp-same-id", "1234-5", r("Group/pat-1")),
        obs("o-ext", "1234-5", r("http://other.org/fhir/Patient/pat-1")),
        obs("o-none", "1234-5", None),
        json!({"resourceType": "Encounter", "id": "enc-1", "status": "finished", "class": {"code": "IMP"},
               "subject": {"reference": "Patient/pat-1"}}),
        json!({"resourceType": "Encounter", "id": "enc-ident", "status": "finished", "class": {"code": "IMP"},
               "subject": {"identifier": {"system": "urn:mrn", "value": "42"}}}),
        // An Observation of patient 2 recorded during patient 1's encounter: the paths differ.
        json!({"resourceType": "Observation", "id": "o-enc", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "5555-5"}]},
               "subject": {"reference": "Patient/pat-2"}, "encounter": {"reference": "Encounter/enc-1"}}),
    ]
}

async fn app() -> TestApp {
    let app = TestApp::new();
    app.put_all(&fixtures()).await;
    app
}

#[tokio::test]
async fn type_and_id_forms() {
    let app = app().await;
    app.assert_search("Observation?subject=Patient/pat-1", &["o-p1"])
        .await;
    // A bare id matches any target type.
    app.assert_search("Observation?subject=pat-1", &["o-p1", "o-grp-same-id"])
        .await;
    app.assert_search("Observation?subject:Patient=pat-1", &["o-p1"])
        .await;
    app.assert_search("Observation?subject:Group=pat-1", &["o-grp-same-id"])
        .await;
    // `patient` has the single target type Patient.
    app.assert_search("Observation?patient=pat-1", &["o-p1"])
        .await;
    app.assert_search("Observation?subject=Group/grp-1", &["o-grp"])
        .await;
    app.assert_search(
        "Observation?subject=Patient/pat-1,Patient/pat-2",
        &["o-p1", "o-p2", "o-enc"],
    )
    .await;
    app.assert_search("Observation?subject=Patient/nobody", &[])
        .await;
    app.assert_search("Observation?encounter=Encounter/enc-1", &["o-enc"])
        .await;
}

#[tokio::test]
async fn absolute_urls() {
    let app = app().await;
    // This server's own base means the local resource.
    app.assert_search(
        "Observation?subject=http://test.local/fhir/default/Patient/pat-1",
        &["o-p1"],
    )
    .await;
    // Another server's resource is not the local one with the same id.
    app.assert_search(
        "Observation?subject=http://other.org/fhir/Patient/pat-1",
        &["o-ext"],
    )
    .await;
}

#[tokio::test]
async fn identifier_modifier() {
    let app = app().await;
    app.assert_search("Encounter?subject:identifier=urn:mrn|42", &["enc-ident"])
        .await;
    app.assert_search("Encounter?subject:identifier=urn:mrn|43", &[])
        .await;
    app.assert_search("Encounter?subject:identifier=42", &["enc-ident"])
        .await;
}

#[tokio::test]
async fn missing() {
    let app = app().await;
    app.assert_search("Observation?subject:missing=true", &["o-none"])
        .await;
    app.assert_search(
        "Observation?subject:missing=false",
        &["o-p1", "o-p2", "o-grp", "o-grp-same-id", "o-ext", "o-enc"],
    )
    .await;
    app.assert_search("Observation?encounter:missing=false", &["o-enc"])
        .await;
}

#[tokio::test]
async fn forward_chains() {
    let app = app().await;
    app.assert_search("Observation?subject:Patient.birthdate=1970", &["o-p1"])
        .await;
    app.assert_search("Observation?subject.family=schulz", &["o-p2", "o-enc"])
        .await;
    app.assert_search("Observation?patient.birthdate=lt1980", &["o-p1"])
        .await;
    app.assert_search(
        "Observation?subject:Patient.family=meier,schulz",
        &["o-p1", "o-p2", "o-enc"],
    )
    .await;
    app.assert_search(
        "Observation?subject:Patient.birthdate=1970&code=1234-5",
        &["o-p1"],
    )
    .await;
    app.assert_search("Observation?subject:Patient.birthdate=1971", &[])
        .await;
    // A chain through an encounter.
    app.assert_search(
        "Observation?encounter.subject:Patient.family=meier",
        &["o-enc"],
    )
    .await;
}

#[tokio::test]
async fn multi_level_chains() {
    let app = app().await;
    app.assert_search(
        "Observation?subject:Patient.organization.name=klinikum",
        &["o-p1"],
    )
    .await;
    app.assert_search(
        "Observation?subject:Patient.general-practitioner:Practitioner.name=smith",
        &["o-p1"],
    )
    .await;
    app.assert_search(
        "Observation?subject:Patient.organization.partof.name=universitätsmedizin",
        &["o-p1"],
    )
    .await;
    // Four links are allowed.
    app.assert_search(
        "Observation?encounter.subject:Patient.organization.partof.name=univ",
        &["o-enc"],
    )
    .await;
}

#[tokio::test]
async fn reverse_chains() {
    let app = app().await;
    app.assert_search("Patient?_has:Observation:patient:code=1234-5", &["pat-1"])
        .await;
    app.assert_search("Patient?_has:Observation:subject:code=9999-9", &["pat-2"])
        .await;
    app.assert_search("Patient?_has:Observation:subject:code=5555-5", &["pat-2"])
        .await;
    app.assert_search("Patient?_has:Observation:subject:code=0000-0", &[])
        .await;
    // Nested: patients with an encounter during which an observation 5555-5 was made.
    app.assert_search(
        "Patient?_has:Encounter:subject:_has:Observation:encounter:code=5555-5",
        &["pat-1"],
    )
    .await;
    // _has combined with a plain parameter and with a chain.
    app.assert_search(
        "Patient?_has:Observation:subject:code=1234-5&birthdate=1970",
        &["pat-1"],
    )
    .await;
    app.assert_search(
        "Practitioner?_has:Patient:general-practitioner:_has:Observation:subject:code=1234-5",
        &["pr-1"],
    )
    .await;
}

#[tokio::test]
async fn chain_limits_and_errors() {
    let app = app().await;
    // Five links.
    app.assert_rejected(
        "Observation?encounter:Encounter.subject:Patient.organization.partof.partof.name=x",
    )
    .await;
    // An unknown parameter inside a chain cannot be ignored.
    app.assert_bad_search("Observation?subject:Patient.bogus=x", "bogus")
        .await;
    // Chaining needs a reference parameter.
    app.assert_rejected("Observation?code.name=x").await;
    app.assert_rejected("Patient?_has:Observation:code=x").await;
    app.assert_rejected("Patient?_has:Nope:subject:code=x")
        .await;
    // Malformed reference values.
    app.assert_rejected("Observation?subject=Patient/").await;
}

#[tokio::test]
async fn sql_metacharacters_are_data() {
    let app = app().await;
    app.assert_search("Observation?subject=Patient/' OR 1=1 --", &[])
        .await;
    app.assert_search("Observation?subject=%", &[]).await;
    app.assert_search("Observation?subject:Patient.family=%", &[])
        .await;
    app.assert_search("Observation?subject:Patient.family=' OR 1=1 --", &[])
        .await;
}

#[tokio::test]
async fn too_deep_chain_names_the_parameter() {
    let app = app().await;
    app.assert_bad_search(
        "Observation?encounter:Encounter.subject:Patient.organization.partof.partof.name=x",
        "encounter:Encounter.subject:Patient.organization.partof.partof.name",
    )
    .await;
}
