//! Conformance of string search parameters (FHIR R4 search §3.1.1.4.9 and the string modifiers):
//! starts-with ignoring case and accents by default, `:exact`, `:contains`, the parts of
//! HumanName and Address, OR/AND, `:missing`, and values that look like SQL treated as data.

mod common;

use common::TestApp;
use serde_json::{Value, json};

fn fixtures() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "mueller",
               "name": [{"family": "Müller", "given": ["Jürgen"]}]}),
        json!({"resourceType": "Patient", "id": "muller",
               "name": [{"family": "Muller", "given": ["Anna"]}]}),
        json!({"resourceType": "Patient", "id": "mueller-ue",
               "name": [{"family": "Mueller", "given": ["Till"]}]}),
        json!({"resourceType": "Patient", "id": "smith",
               "name": [{"family": "Smith", "given": ["John", "Jacob"], "prefix": ["Dr."], "suffix": ["Jr"]},
                        {"use": "nickname", "given": ["Jack"]}]}),
        json!({"resourceType": "Patient", "id": "text-only",
               "name": [{"text": "Anna-Lena Smyth"}]}),
        json!({"resourceType": "Patient", "id": "koeln",
               "address": [{"line": ["Hauptstraße 1"], "city": "Köln", "postalCode": "50667", "country": "DE"}]}),
        json!({"resourceType": "Patient", "id": "obrien",
               "name": [{"family": "O'Brien", "given": ["100%"]}]}),
        json!({"resourceType": "Patient", "id": "underscore",
               "name": [{"family": "under_score"}]}),
        json!({"resourceType": "Observation", "id": "obs-string", "status": "final",
               "code": {"text": "influenza"}, "valueString": "Positiv für Influenza A"}),
        json!({"resourceType": "Observation", "id": "obs-cc", "status": "final",
               "code": {"text": "influenza"}, "valueCodeableConcept": {"text": "Negativ"}}),
    ]
}

async fn app() -> TestApp {
    let app = TestApp::new();
    app.put_all(&fixtures()).await;
    app
}

#[tokio::test]
async fn default_is_starts_with_ignoring_case_and_accents() {
    let app = app().await;
    app.assert_search("Patient?family=mül", &["mueller", "muller"])
        .await;
    app.assert_search("Patient?family=MUL", &["mueller", "muller"])
        .await;
    app.assert_search("Patient?family=MÜLLER", &["mueller", "muller"])
        .await;
    app.assert_search("Patient?family=muller", &["mueller", "muller"])
        .await;
    // `ue` is a spelling, not an accent: Mueller is a different string.
    app.assert_search("Patient?family=mue", &["mueller-ue"])
        .await;
    // Starts-with, not contains.
    app.assert_search("Patient?family=ller", &[]).await;
    app.assert_search("Patient?given=jürg", &["mueller"]).await;
    app.assert_search("Patient?given=jurgen", &["mueller"])
        .await;
    // A longer search value than the stored one does not match.
    app.assert_search("Patient?family=Müllerin", &[]).await;
}

#[tokio::test]
async fn name_searches_every_part_of_human_name() {
    let app = app().await;
    // given (also of a second name), prefix, suffix, text
    app.assert_search("Patient?name=jac", &["smith"]).await;
    app.assert_search("Patient?name=jack", &["smith"]).await;
    app.assert_search("Patient?name=dr", &["smith"]).await;
    app.assert_search("Patient?name=jr", &["smith"]).await;
    app.assert_search("Patient?name=anna", &["muller", "text-only"])
        .await;
    app.assert_search("Patient?name=anna-lena", &["text-only"])
        .await;
    // The text is one string: a word in its middle is not its start.
    app.assert_search("Patient?name=smyth", &[]).await;
    app.assert_search("Patient?name=smi", &["smith"]).await;
    // family/given do not look at the text.
    app.assert_search("Patient?family=anna", &[]).await;
}

#[tokio::test]
async fn exact_is_case_and_accent_sensitive_equality() {
    let app = app().await;
    app.assert_search("Patient?family:exact=Müller", &["mueller"])
        .await;
    app.assert_search("Patient?family:exact=Muller", &["muller"])
        .await;
    app.assert_search("Patient?family:exact=müller", &[]).await;
    app.assert_search("Patient?family:exact=MÜLLER", &[]).await;
    app.assert_search("Patient?family:exact=Mül", &[]).await;
    app.assert_search("Patient?name:exact=Anna-Lena Smyth", &["text-only"])
        .await;
    app.assert_search("Patient?given:exact=Jacob", &["smith"])
        .await;
    app.assert_search("Patient?family:exact=Müller,Smith", &["mueller", "smith"])
        .await;
}

#[tokio::test]
async fn contains_matches_anywhere_ignoring_case_and_accents() {
    let app = app().await;
    app.assert_search("Patient?family:contains=ULL", &["mueller", "muller"])
        .await;
    app.assert_search("Patient?family:contains=üll", &["mueller", "muller"])
        .await;
    app.assert_search("Patient?given:contains=ürg", &["mueller"])
        .await;
    app.assert_search("Patient?family:contains=ith", &["smith"])
        .await;
    app.assert_search("Patient?name:contains=smyth", &["text-only"])
        .await;
    app.assert_search("Patient?name:contains=xyz", &[]).await;
}

#[tokio::test]
async fn address_searches_every_part() {
    let app = app().await;
    app.assert_search("Patient?address=köln", &["koeln"]).await;
    app.assert_search("Patient?address=KOLN", &["koeln"]).await;
    app.assert_search("Patient?address=hauptstr", &["koeln"])
        .await;
    app.assert_search("Patient?address=5066", &["koeln"]).await;
    app.assert_search("Patient?address=de", &["koeln"]).await;
    app.assert_search("Patient?address-city=Kö", &["koeln"])
        .await;
    app.assert_search("Patient?address-postalcode=50667", &["koeln"])
        .await;
    // The city parameter does not look at the street.
    app.assert_search("Patient?address-city=haupt", &[]).await;
}

#[tokio::test]
async fn comma_is_or_and_repetition_is_and() {
    let app = app().await;
    app.assert_search(
        "Patient?family=smith,muller",
        &["smith", "mueller", "muller"],
    )
    .await;
    // Both values must match, each possibly on a different given name.
    app.assert_search("Patient?given=john&given=jac", &["smith"])
        .await;
    app.assert_search("Patient?given=john&given=anna", &[])
        .await;
    app.assert_search("Patient?family=mül&given=anna", &["muller"])
        .await;
    // An escaped comma is part of the value, not a separator.
    app.assert_search(r"Patient?family=smith\,x", &[]).await;
}

#[tokio::test]
async fn missing() {
    let app = app().await;
    app.assert_search("Patient?family:missing=true", &["text-only", "koeln"])
        .await;
    app.assert_search(
        "Patient?family:missing=false",
        &[
            "mueller",
            "muller",
            "mueller-ue",
            "smith",
            "obrien",
            "underscore",
        ],
    )
    .await;
    app.assert_search("Patient?address:missing=false", &["koeln"])
        .await;
}

#[tokio::test]
async fn string_values_of_other_elements() {
    let app = app().await;
    // Observation.value as string, and CodeableConcept.text.
    app.assert_search("Observation?value-string=posi", &["obs-string"])
        .await;
    app.assert_search("Observation?value-string=neg", &["obs-cc"])
        .await;
    app.assert_search("Observation?value-string:contains=FÜR", &["obs-string"])
        .await;
}

#[tokio::test]
async fn sql_metacharacters_and_wildcards_are_data() {
    let app = app().await;
    app.assert_search("Patient?family=O'Brien", &["obrien"])
        .await;
    app.assert_search("Patient?family=o'b", &["obrien"]).await;
    app.assert_search("Patient?family=' OR 1=1 --", &[]).await;
    app.assert_search("Patient?family:exact=' OR '1'='1", &[])
        .await;
    app.assert_search("Patient?name:contains=') OR ('a'='a", &[])
        .await;
    app.assert_search("Patient?given:contains=%", &["obrien"])
        .await;
    app.assert_search("Patient?given=100%", &["obrien"]).await;
    app.assert_search("Patient?family=%", &[]).await;
    app.assert_search("Patient?family:contains=_", &["underscore"])
        .await;
    app.assert_search("Patient?family=under_", &["underscore"])
        .await;
    // `_` is not a single-character wildcard, `%` not a multi-character one.
    app.assert_search("Patient?family=u_der", &[]).await;
    app.assert_search("Patient?family:contains=u%e", &[]).await;
    app.assert_search("Patient?family:exact=under%", &[]).await;
    // Nothing was harmed: every patient is still there.
    assert_eq!(app.search_ids("/fhir/default/Patient").await.len(), 8);
}

#[tokio::test]
async fn empty_value_is_ignored_and_unknown_modifier_refused() {
    let app = app().await;
    app.assert_search(
        "Patient?family=",
        &[
            "mueller",
            "muller",
            "mueller-ue",
            "smith",
            "text-only",
            "koeln",
            "obrien",
            "underscore",
        ],
    )
    .await;
    app.assert_bad_search("Patient?family:bogus=x", "family")
        .await;
    app.assert_bad_search("Patient?family:missing=maybe", "family")
        .await;
}
