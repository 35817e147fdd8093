//! Conformance of token search parameters (FHIR R4 search §3.1.1.4.10 and the token
//! modifiers): `system|code`, `code`, `|code`, `system|`, case-sensitive codes, `:not`,
//! `:missing`, `:text`, `:of-type`, `:above`/`:below` over ICD-10-GM, `:in`/`:not-in` against a
//! stored ValueSet, and escaping.

mod common;

use common::TestApp;
use serde_json::{Value, json};

const ICD: &str = "http://fhir.de/CodeSystem/bfarm/icd-10-gm";
const SCT: &str = "http://snomed.info/sct";
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

fn condition(id: &str, codings: Value, text: Option<&str>) -> Value {
    let mut code = json!({ "coding": codings });
    if let Some(t) = text {
        code["text"] = json!(t);
    }
    json!({"resourceType": "Condition", "id": id, "subject": {"reference": "Patient/pat-mr"}, "code": code})
}

fn icd(code: &str, display: &str) -> Value {
    json!([{ "system": ICD, "code": code, "display": display }])
}

fn fixtures() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "pat-mr", "gender": "female", "active": true,
               "identifier": [{"type": {"coding": [{"system": V2_0203, "code": "MR"}], "text": "Medical record number"},
                               "system": "urn:mrn", "value": "123"}]}),
        json!({"resourceType": "Patient", "id": "pat-an", "gender": "male", "active": false,
               "identifier": [{"type": {"coding": [{"system": V2_0203, "code": "AN"}], "text": "Account number"},
                               "system": "urn:acc", "value": "123"}]}),
        json!({"resourceType": "Patient", "id": "pat-bar",
               "identifier": [{"system": "urn:mrn", "value": "a|b"}]}),
        json!({"resourceType": "Patient", "id": "pat-nosys", "gender": "other",
               "identifier": [{"value": "777"}]}),
        condition("c-e11", icd("E11", "Diabetes mellitus, Typ 2"), None),
        condition(
            "c-e119",
            icd("E11.9", "Diabetes mellitus, Typ 2: Ohne Komplikationen"),
            None,
        ),
        condition(
            "c-e1190",
            icd(
                "E11.90",
                "Diabetes mellitus, Typ 2: Ohne Komplikationen: Nicht als entgleist bezeichnet",
            ),
            None,
        ),
        condition(
            "c-e109",
            icd("E10.9", "Diabetes mellitus, Typ 1: Ohne Komplikationen"),
            None,
        ),
        condition(
            "c-i10",
            json!([{"system": ICD, "code": "I10.00", "display": "Benigne essentielle Hypertonie"},
                   {"system": SCT, "code": "38341003", "display": "Hypertensive disorder"}]),
            Some("Bluthochdruck"),
        ),
        condition("c-nosys", json!([{"code": "E11"}]), None),
        json!({"resourceType": "Condition", "id": "c-absent", "subject": {"reference": "Patient/pat-mr"}}),
        json!({"resourceType": "Encounter", "id": "enc-imp", "status": "finished",
               "class": {"system": ACT_CODE, "code": "IMP", "display": "inpatient encounter"}}),
        json!({"resourceType": "Encounter", "id": "enc-amb", "status": "finished",
               "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"}}),
        json!({"resourceType": "ValueSet", "id": "vs-diabetes", "status": "active",
               "url": "http://example.org/fhir/ValueSet/diabetes-ohne-komplikationen",
               "compose": {"include": [{"system": ICD, "concept": [{"code": "E11.9"}, {"code": "E10.9"}]}]}}),
        json!({"resourceType": "ValueSet", "id": "vs-snomed", "status": "active",
               "url": "http://example.org/fhir/ValueSet/all-snomed",
               "compose": {"include": [{"system": SCT}]}}),
    ]
}

async fn app() -> TestApp {
    let app = TestApp::new();
    app.put_all(&fixtures()).await;
    app
}

const ALL_CONDITIONS: [&str; 7] = [
    "c-e11", "c-e119", "c-e1190", "c-e109", "c-i10", "c-nosys", "c-absent",
];

#[tokio::test]
async fn system_and_code_forms() {
    let app = app().await;
    app.assert_search(&format!("Condition?code={ICD}|E11"), &["c-e11"])
        .await;
    // Any system (and none).
    app.assert_search("Condition?code=E11", &["c-e11", "c-nosys"])
        .await;
    // Explicitly no system.
    app.assert_search("Condition?code=|E11", &["c-nosys"]).await;
    // Any code of the system.
    app.assert_search(
        &format!("Condition?code={ICD}|"),
        &["c-e11", "c-e119", "c-e1190", "c-e109", "c-i10"],
    )
    .await;
    app.assert_search(&format!("Condition?code={SCT}|38341003"), &["c-i10"])
        .await;
    // A code of one system does not match under another.
    app.assert_search(&format!("Condition?code={SCT}|E11"), &[])
        .await;
    // Codes are case-sensitive.
    app.assert_search("Condition?code=e11", &[]).await;
    // A prefix of a code is not the code.
    app.assert_search(&format!("Condition?code={ICD}|E1"), &[])
        .await;
}

#[tokio::test]
async fn or_and_and() {
    let app = app().await;
    app.assert_search(
        &format!("Condition?code={ICD}|E11,{ICD}|E10.9"),
        &["c-e11", "c-e109"],
    )
    .await;
    app.assert_search(
        &format!("Condition?code={ICD}|I10.00&code={SCT}|38341003"),
        &["c-i10"],
    )
    .await;
    app.assert_search(
        &format!("Condition?code={ICD}|E11&code={SCT}|38341003"),
        &[],
    )
    .await;
}

#[tokio::test]
async fn identifier_coding_code_and_boolean_elements() {
    let app = app().await;
    app.assert_search("Patient?identifier=123", &["pat-mr", "pat-an"])
        .await;
    app.assert_search("Patient?identifier=urn:mrn|123", &["pat-mr"])
        .await;
    app.assert_search("Patient?identifier=urn:mrn|", &["pat-mr", "pat-bar"])
        .await;
    app.assert_search("Patient?identifier=|777", &["pat-nosys"])
        .await;
    app.assert_search("Patient?identifier=urn:acc|777", &[])
        .await;
    // Coding (not CodeableConcept).
    app.assert_search("Encounter?class=IMP", &["enc-imp"]).await;
    app.assert_search(&format!("Encounter?class={ACT_CODE}|AMB"), &["enc-amb"])
        .await;
    // `code` elements: the system is the one of their binding.
    app.assert_search("Patient?gender=female", &["pat-mr"])
        .await;
    app.assert_search(
        "Patient?gender=http://hl7.org/fhir/administrative-gender|male",
        &["pat-an"],
    )
    .await;
    app.assert_search("Patient?gender=female,other", &["pat-mr", "pat-nosys"])
        .await;
    // boolean
    app.assert_search("Patient?active=true", &["pat-mr"]).await;
    app.assert_search("Patient?active=false", &["pat-an"]).await;
}

#[tokio::test]
async fn not_includes_resources_without_a_value() {
    let app = app().await;
    app.assert_search(
        &format!("Condition?code:not={ICD}|E11"),
        &[
            "c-e119", "c-e1190", "c-e109", "c-i10", "c-nosys", "c-absent",
        ],
    )
    .await;
    app.assert_search(
        "Condition?code:not=E11",
        &["c-e119", "c-e1190", "c-e109", "c-i10", "c-absent"],
    )
    .await;
    app.assert_search(
        "Patient?gender:not=male",
        &["pat-mr", "pat-bar", "pat-nosys"],
    )
    .await;
    // OR inside :not: none of the values.
    app.assert_search("Patient?gender:not=male,female", &["pat-bar", "pat-nosys"])
        .await;
}

#[tokio::test]
async fn missing() {
    let app = app().await;
    app.assert_search("Condition?code:missing=true", &["c-absent"])
        .await;
    let mut present: Vec<&str> = ALL_CONDITIONS.to_vec();
    present.retain(|c| *c != "c-absent");
    app.assert_search("Condition?code:missing=false", &present)
        .await;
    app.assert_search("Patient?gender:missing=true", &["pat-bar"])
        .await;
    app.assert_search("Patient?active:missing=true", &["pat-bar", "pat-nosys"])
        .await;
}

#[tokio::test]
async fn text_searches_display_and_text() {
    let app = app().await;
    app.assert_search("Condition?code:text=bluthoch", &["c-i10"])
        .await;
    app.assert_search("Condition?code:text=hypertensive", &["c-i10"])
        .await;
    app.assert_search(
        "Condition?code:text=Diabetes Mellitus",
        &["c-e11", "c-e119", "c-e1190", "c-e109"],
    )
    .await;
    app.assert_search("Condition?code:text=E11", &[]).await;
    app.assert_search("Patient?identifier:text=medical", &["pat-mr"])
        .await;
    app.assert_search("Encounter?class:text=inpatient", &["enc-imp"])
        .await;
}

#[tokio::test]
async fn of_type_matches_identifier_type_and_value() {
    let app = app().await;
    app.assert_search(
        &format!("Patient?identifier:of-type={V2_0203}|MR|123"),
        &["pat-mr"],
    )
    .await;
    app.assert_search(
        &format!("Patient?identifier:of-type={V2_0203}|AN|123"),
        &["pat-an"],
    )
    .await;
    app.assert_search(&format!("Patient?identifier:of-type={V2_0203}|MR|999"), &[])
        .await;
    app.assert_search(&format!("Patient?identifier:of-type={V2_0203}|PN|123"), &[])
        .await;
}

#[tokio::test]
async fn below_and_above_follow_the_icd10gm_hierarchy() {
    let app = app().await;
    app.assert_search(
        &format!("Condition?code:below={ICD}|E11"),
        &["c-e11", "c-e119", "c-e1190"],
    )
    .await;
    app.assert_search(
        &format!("Condition?code:below={ICD}|E11.9"),
        &["c-e119", "c-e1190"],
    )
    .await;
    app.assert_search(&format!("Condition?code:below={ICD}|E11.90"), &["c-e1190"])
        .await;
    app.assert_search(
        &format!("Condition?code:above={ICD}|E11.90"),
        &["c-e11", "c-e119", "c-e1190"],
    )
    .await;
    app.assert_search(
        &format!("Condition?code:above={ICD}|E11.9"),
        &["c-e11", "c-e119"],
    )
    .await;
    // E10.9 is neither above nor below E11.
    app.assert_search(&format!("Condition?code:below={ICD}|E10"), &["c-e109"])
        .await;
}

#[tokio::test]
async fn in_and_not_in_a_stored_value_set() {
    let app = app().await;
    let vs = "http://example.org/fhir/ValueSet/diabetes-ohne-komplikationen";
    app.assert_search(&format!("Condition?code:in={vs}"), &["c-e119", "c-e109"])
        .await;
    app.assert_search(
        &format!("Condition?code:not-in={vs}"),
        &["c-e11", "c-e1190", "c-i10", "c-nosys", "c-absent"],
    )
    .await;
    // A value set that includes a whole code system.
    app.assert_search(
        "Condition?code:in=http://example.org/fhir/ValueSet/all-snomed",
        &["c-i10"],
    )
    .await;
}

#[tokio::test]
async fn escaped_bar_is_part_of_the_code() {
    let app = app().await;
    app.assert_search(r"Patient?identifier=urn:mrn|a\|b", &["pat-bar"])
        .await;
}

#[tokio::test]
async fn escaped_bar_without_system_is_part_of_the_code() {
    let app = app().await;
    app.assert_search(r"Patient?identifier=a\|b", &["pat-bar"])
        .await;
}

#[tokio::test]
async fn sql_metacharacters_are_data_and_bad_modifiers_refused() {
    let app = app().await;
    app.assert_search("Condition?code=' OR 1=1 --", &[]).await;
    app.assert_search("Condition?code=%", &[]).await;
    app.assert_search("Condition?code=E1_", &[]).await;
    app.assert_search(&format!("Condition?code={ICD}%|E11"), &[])
        .await;
    assert_eq!(
        app.search_ids("/fhir/default/Condition").await.len(),
        ALL_CONDITIONS.len()
    );
    // :contains and :exact are string modifiers.
    app.assert_bad_search("Condition?code:exact=E11", "code")
        .await;
    app.assert_bad_search("Condition?code:bogus=E11", "code")
        .await;
}
