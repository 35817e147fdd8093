//! Search modifiers answered by derived index rows, through a real SQLite store: token `:text`
//! `:of-type` `:below` `:above` `:in` `:not-in`, uri `:below` `:above`, reference `:identifier`,
//! `:[type]`, `:missing` and absolute URLs, and the Resource-level `_tag` `_profile` `_security`
//! `_source`. Each case checks the exact result set.

use std::collections::HashMap;

use medicus_store::search::{SearchResolver, parse_search_with};
use medicus_store::testing::TestStore;
use medicus_store::{Precondition, Store, StoreError};
use serde_json::{Value, json};

const ICD_BFARM: &str = "http://fhir.de/CodeSystem/bfarm/icd-10-gm";
const ICD_DIMDI: &str = "http://fhir.de/CodeSystem/dimdi/icd-10-gm";
const OPS_BFARM: &str = "http://fhir.de/CodeSystem/bfarm/ops";
const OPS_DIMDI: &str = "http://fhir.de/CodeSystem/dimdi/ops";
const ATC_BFARM: &str = "http://fhir.de/CodeSystem/bfarm/atc";
const ATC_WHO: &str = "http://www.whocc.no/atc";
const SCT: &str = "http://snomed.info/sct";
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// ValueSets by canonical URL, as the server's resolver reads them from the store.
struct ValueSets(HashMap<String, Value>);

impl SearchResolver for ValueSets {
    fn value_set(&self, url: &str) -> Result<Option<Value>, StoreError> {
        Ok(self.0.get(url).cloned())
    }
}

fn value_sets() -> ValueSets {
    let sets = [
        (
            "http://x/vs/concepts",
            json!({"resourceType": "ValueSet", "compose": {"include": [
                // Stored under the DIMDI URI: the family's URIs are one system.
                {"system": ICD_BFARM, "concept": [{"code": "E11.90"}]},
                {"system": SCT, "concept": [{"code": "44054006"}, {"code": "73211009"}]}
            ], "exclude": [{"system": SCT, "concept": [{"code": "73211009"}]}]}}),
        ),
        (
            "http://x/vs/diabetes",
            json!({"resourceType": "ValueSet", "compose": {"include": [
                {"system": ICD_DIMDI, "filter": [{"property": "concept", "op": "is-a", "value": "E10"}]},
                {"system": ICD_BFARM, "filter": [{"property": "concept", "op": "is-a", "value": "E11"}]}
            ]}}),
        ),
        (
            "http://x/vs/hypertension",
            json!({"resourceType": "ValueSet", "expansion": {"contains": [
                {"system": ICD_BFARM, "code": "I10", "abstract": true, "contains": [
                    {"system": ICD_BFARM, "code": "I10.00"}]}
            ]}}),
        ),
        (
            "http://x/vs/ops",
            json!({"resourceType": "ValueSet", "compose": {"include": [{"system": OPS_BFARM}]}}),
        ),
        (
            "http://x/vs/empty",
            json!({"resourceType": "ValueSet", "expansion": {"total": 0, "contains": []}}),
        ),
    ];
    ValueSets(
        sets.into_iter()
            .map(|(url, vs)| (url.to_owned(), vs))
            .collect(),
    )
}

fn store() -> (tempfile::TempDir, TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::open(dir.path()).unwrap();
    store.create_tenant("a").unwrap();
    (dir, store)
}

fn put(store: &dyn Store, rt: &str, id: &str, body: Value) {
    let mut s = store.write_session("a").unwrap();
    s.put(rt, id, body, Precondition::None).unwrap();
    s.commit().unwrap();
}

fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
    query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn search_ids(store: &dyn Store, rt: &str, query: &[(&str, &str)]) -> Vec<String> {
    let q = parse_search_with(medicus_fhir::r4(), Some(rt), &pairs(query), &value_sets())
        .unwrap_or_else(|e| panic!("{rt}?{query:?}: {e}"));
    let mut s = store.read_session("a").unwrap();
    let mut ids: Vec<String> = s
        .search(Some(rt), &q)
        .unwrap()
        .resources
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

fn refused(rt: &str, query: &[(&str, &str)]) -> String {
    match parse_search_with(medicus_fhir::r4(), Some(rt), &pairs(query), &value_sets()) {
        Err(StoreError::InvalidSearch(m)) => m,
        other => panic!("{rt}?{query:?} must be refused, got {other:?}"),
    }
}

fn condition(system: &str, code: &str, display: &str, subject: Option<Value>) -> Value {
    let mut c = json!({
        "resourceType": "Condition",
        "code": {"coding": [{"system": system, "code": code, "display": display}]}
    });
    if let Some(s) = subject {
        c["subject"] = s;
    }
    c
}

fn coded(rt: &str, system: &str, code: &str) -> Value {
    json!({"resourceType": rt, "status": "completed", "code": {"coding": [{"system": system, "code": code}]}})
}

fn seed(store: &dyn Store) {
    let mut c1 = condition(
        ICD_DIMDI,
        "E11.90",
        "Diabetes mellitus, Typ 2, ohne Komplikationen",
        Some(
            json!({"reference": "Patient/p1", "identifier": {"system": "urn:mrn", "value": "42"}}),
        ),
    );
    c1["code"]["text"] = json!("Zuckerkrankheit");
    put(store, "Condition", "c1", c1);
    put(
        store,
        "Condition",
        "c2",
        condition(
            ICD_BFARM,
            "E10.40†",
            "Diabetes Typ 1 mit Neuropathie",
            Some(json!({"reference": "http://other.org/fhir/Patient/9"})),
        ),
    );
    put(
        store,
        "Condition",
        "c3",
        condition(
            ICD_BFARM,
            "I10.00",
            "Benigne essentielle Hypertonie",
            Some(
                json!({"reference": "Patient/p2", "identifier": {"system": "urn:mrn", "value": "43"}}),
            ),
        ),
    );
    put(
        store,
        "Condition",
        "c4",
        condition(
            SCT,
            "44054006",
            "Diabetes mellitus type 2",
            Some(json!({"reference": "Patient/p1"})),
        ),
    );
    put(
        store,
        "Condition",
        "c5",
        condition(ICD_BFARM, "E11", "Diabetes mellitus, Typ 2", None),
    );

    put(
        store,
        "Procedure",
        "pr1",
        coded("Procedure", OPS_DIMDI, "5-470.11"),
    );
    put(
        store,
        "Procedure",
        "pr2",
        coded("Procedure", OPS_BFARM, "5-471.0"),
    );
    put(
        store,
        "Procedure",
        "pr3",
        coded("Procedure", OPS_BFARM, "1-632.0"),
    );

    put(
        store,
        "Medication",
        "m1",
        coded("Medication", ATC_WHO, "A10BA02"),
    );
    put(
        store,
        "Medication",
        "m2",
        coded("Medication", ATC_BFARM, "A10BB01"),
    );
    put(
        store,
        "Medication",
        "m3",
        coded("Medication", ATC_BFARM, "C09AA05"),
    );

    put(
        store,
        "Patient",
        "p1",
        json!({"resourceType": "Patient", "identifier": [{
            "type": {"text": "Medical record number", "coding": [{"system": V2_0203, "code": "MR"}]},
            "system": "urn:mrn", "value": "42"
        }]}),
    );
    put(
        store,
        "Patient",
        "p2",
        json!({"resourceType": "Patient", "identifier": [
            {"type": {"coding": [{"system": V2_0203, "code": "MR", "display": "Patientennummer"}]},
             "system": "urn:mrn", "value": "43"},
            {"type": {"coding": [{"system": "http://fhir.de/CodeSystem/identifier-type-de-basis", "code": "GKV"}]},
             "system": "http://fhir.de/sid/gkv/kvid-10", "value": "A123456789"}
        ]}),
    );

    put(
        store,
        "Observation",
        "o1",
        json!({"resourceType": "Observation", "status": "final",
            "meta": {
                "profile": ["http://a.org/fhir/StructureDefinition/lab"],
                "tag": [{"system": "http://x/tags", "code": "t1"}],
                "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
                "source": "http://a.org/sources/lis#abc"
            },
            "code": {"text": "HbA1c"}}),
    );
    put(
        store,
        "Observation",
        "o2",
        json!({"resourceType": "Observation", "status": "final",
            "meta": {
                "profile": ["http://a.org/fhir/StructureDefinition/labx"],
                "tag": [{"system": "http://x/tags", "code": "t2"}],
                "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}],
                "source": "urn:uuid:3f1c8a2e-1b4d-4c6e-9f0a-2d5e8b1c3a47"
            },
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]}}),
    );
}

/// A search on a type, its query pairs and the ids it must find.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);

fn run(store: &dyn Store, cases: &[Case]) {
    for (rt, query, expected) in cases {
        assert_eq!(
            search_ids(store, rt, query),
            expected.to_vec(),
            "{rt}?{query:?}"
        );
    }
}

#[test]
fn token_text() {
    let (_d, store) = store();
    seed(&store);
    run(
        &store,
        &[
            // Coding.display and CodeableConcept.text, starts-with, case and accent insensitive
            (
                "Condition",
                &[("code:text", "diab")],
                &["c1", "c2", "c4", "c5"],
            ),
            ("Condition", &[("code:text", "ZUCKER")], &["c1"]),
            ("Condition", &[("code:text", "diabetes typ")], &["c2"]),
            ("Condition", &[("code:text", "mellitus")], &[]),
            (
                "Condition",
                &[("code:text", "benigne,zucker")],
                &["c1", "c3"],
            ),
            ("Observation", &[("code:text", "hba1c")], &["o1"]),
            ("Observation", &[("code:text", "hemoglobin")], &["o2"]),
            // Identifier.type.text, and the display of an identifier's type coding is not it
            ("Patient", &[("identifier:text", "medical")], &["p1"]),
            ("Patient", &[("identifier:text", "patientennummer")], &[]),
            // the plain token search is unaffected
            ("Condition", &[("code", "zuckerkrankheit")], &[]),
        ],
    );
}

#[test]
fn identifier_of_type() {
    let (_d, store) = store();
    seed(&store);
    let mr42 = format!("{V2_0203}|MR|42");
    let mr43 = format!("{V2_0203}|MR|43");
    let mr_kvid = format!("{V2_0203}|MR|A123456789");
    let gkv = "http://fhir.de/CodeSystem/identifier-type-de-basis|GKV|A123456789";
    let other_system = "http://other/types|MR|42";
    run(
        &store,
        &[
            ("Patient", &[("identifier:of-type", &mr42)], &["p1"]),
            ("Patient", &[("identifier:of-type", &mr43)], &["p2"]),
            ("Patient", &[("identifier:of-type", &mr_kvid)], &[]),
            ("Patient", &[("identifier:of-type", gkv)], &["p2"]),
            ("Patient", &[("identifier:of-type", other_system)], &[]),
            ("Patient", &[("identifier:of-type", "|MR|42")], &["p1"]),
            (
                "Patient",
                &[("identifier:of-type", "|MR|42,|MR|43")],
                &["p1", "p2"],
            ),
        ],
    );
    assert!(refused("Patient", &[("identifier:of-type", "MR|42")]).contains("identifier:of-type"));
    assert!(refused("Patient", &[("gender:of-type", "a|b|c")]).contains("Identifier"));
}

#[test]
fn token_below_and_above_by_code_structure() {
    let (_d, store) = store();
    seed(&store);
    let q = |system: &str, code: &str| format!("{system}|{code}");
    let (e11_d, e11_b) = (q(ICD_DIMDI, "E11"), q(ICD_BFARM, "E11"));
    let e10 = q(ICD_BFARM, "E10");
    let e1 = q(ICD_BFARM, "E1");
    let e11_9 = q(ICD_DIMDI, "E11.9");
    let e11_90 = q(ICD_BFARM, "E11.90");
    let e10_40 = q(ICD_DIMDI, "E10.40");
    let i10 = q(ICD_BFARM, "I10");
    let ops_547 = q(OPS_BFARM, "5-47");
    let ops_5470 = q(OPS_DIMDI, "5-470");
    let ops_5 = q(OPS_BFARM, "5");
    let ops_1 = q(OPS_BFARM, "1");
    let ops_54 = q(OPS_BFARM, "5-4");
    let atc_a10b = q(ATC_BFARM, "A10B");
    let atc_a10ba = q(ATC_WHO, "A10BA");
    let atc_c = q(ATC_WHO, "C");
    let atc_above = q(ATC_BFARM, "A10BA02");
    let above_e11_90 = q(ICD_DIMDI, "E11.90");
    let above_e11_901 = q(ICD_BFARM, "E11.901");
    let above_e11 = q(ICD_DIMDI, "E11");
    run(
        &store,
        &[
            // either URI of the family finds codes stored under either
            ("Condition", &[("code:below", &e11_d)], &["c1", "c5"]),
            ("Condition", &[("code:below", &e11_b)], &["c1", "c5"]),
            // the ICD marker (†) is not part of the code
            ("Condition", &[("code:below", &e10)], &["c2"]),
            ("Condition", &[("code:below", &e10_40)], &["c2"]),
            ("Condition", &[("code:below", &e1)], &[]),
            ("Condition", &[("code:below", &e11_9)], &["c1"]),
            ("Condition", &[("code:below", &e11_90)], &["c1"]),
            ("Condition", &[("code:below", &i10)], &["c3"]),
            (
                "Condition",
                &[("code:below", &format!("{e10},{i10}"))],
                &["c2", "c3"],
            ),
            // :above: the code itself and its ancestors
            ("Condition", &[("code:above", &above_e11_90)], &["c1", "c5"]),
            (
                "Condition",
                &[("code:above", &above_e11_901)],
                &["c1", "c5"],
            ),
            ("Condition", &[("code:above", &above_e11)], &["c5"]),
            // OPS: 5-470.11 → 5-470.1, 5-470, 5-47, 5 (5-4 is no OPS level)
            ("Procedure", &[("code:below", &ops_547)], &["pr1", "pr2"]),
            ("Procedure", &[("code:below", &ops_5470)], &["pr1"]),
            ("Procedure", &[("code:below", &ops_5)], &["pr1", "pr2"]),
            ("Procedure", &[("code:below", &ops_1)], &["pr3"]),
            ("Procedure", &[("code:below", &ops_54)], &[]),
            // ATC
            ("Medication", &[("code:below", &atc_a10b)], &["m1", "m2"]),
            ("Medication", &[("code:below", &atc_a10ba)], &["m1"]),
            ("Medication", &[("code:below", &atc_c)], &["m3"]),
            ("Medication", &[("code:above", &atc_above)], &["m1"]),
        ],
    );
    let m = refused("Condition", &[("code:below", "E11")]);
    assert!(m.contains("system|code"), "{m}");
    let m = refused("Condition", &[("code:below", &format!("{SCT}|73211009"))]);
    assert!(m.contains("ICD-10-GM, OPS and ATC"), "{m}");
    // An update moves the derived rows with the resource.
    put(
        &store,
        "Condition",
        "c1",
        condition(ICD_BFARM, "I10.00", "Hypertonie", None),
    );
    run(
        &store,
        &[
            ("Condition", &[("code:below", &e11_d)], &["c5"]),
            ("Condition", &[("code:below", &i10)], &["c1", "c3"]),
            ("Condition", &[("code:text", "zucker")], &[]),
        ],
    );
}

#[test]
fn uri_below_and_above() {
    let (_d, store) = store();
    seed(&store);
    run(
        &store,
        &[
            (
                "Observation",
                &[(
                    "_profile:below",
                    "http://a.org/fhir/StructureDefinition/lab",
                )],
                &["o1"],
            ),
            (
                "Observation",
                &[("_profile:below", "http://a.org/fhir/")],
                &["o1", "o2"],
            ),
            (
                "Observation",
                &[("_profile:below", "http://a.org/fhi")],
                &[],
            ),
            (
                "Observation",
                &[("_profile:below", "https://a.org/fhir")],
                &[],
            ),
            (
                "Observation",
                &[(
                    "_profile:above",
                    "http://a.org/fhir/StructureDefinition/lab/v2",
                )],
                &["o1"],
            ),
            (
                "Observation",
                &[(
                    "_profile:above",
                    "http://a.org/fhir/StructureDefinition/labx",
                )],
                &["o2"],
            ),
            (
                "Observation",
                &[("_profile:above", "http://a.org/fhir/StructureDefinition")],
                &[],
            ),
            (
                "Observation",
                &[("_source:below", "http://a.org/sources")],
                &["o1"],
            ),
        ],
    );
    assert!(refused("Observation", &[("_profile:below", "lab")]).contains("absolute"));
}

#[test]
fn reference_identifier_type_missing_and_urls() {
    let (_d, store) = store();
    seed(&store);
    let other = "http://other.org/fhir/Patient/9";
    run(
        &store,
        &[
            (
                "Condition",
                &[("subject:identifier", "urn:mrn|42")],
                &["c1"],
            ),
            (
                "Condition",
                &[("subject:identifier", "urn:mrn|43")],
                &["c3"],
            ),
            (
                "Condition",
                &[("subject:identifier", "urn:mrn|")],
                &["c1", "c3"],
            ),
            ("Condition", &[("subject:identifier", "42")], &["c1"]),
            ("Condition", &[("subject:identifier", "urn:other|42")], &[]),
            (
                "Condition",
                &[("patient:identifier", "urn:mrn|43")],
                &["c3"],
            ),
            // another server's resource is found by its URL, also on a single-target parameter
            ("Condition", &[("subject", other)], &["c2"]),
            ("Condition", &[("patient", other)], &["c2"]),
            (
                "Condition",
                &[("subject", "http://other.org/fhir/Patient/1")],
                &[],
            ),
            // :[type]
            ("Condition", &[("subject:Patient", "p1")], &["c1", "c4"]),
            ("Condition", &[("subject:Group", "p1")], &[]),
            ("Condition", &[("subject", "p1")], &["c1", "c4"]),
            // :missing
            ("Condition", &[("subject:missing", "true")], &["c5"]),
            (
                "Condition",
                &[("subject:missing", "false")],
                &["c1", "c2", "c3", "c4"],
            ),
        ],
    );
}

#[test]
fn token_in_and_not_in() {
    let (_d, store) = store();
    seed(&store);
    run(
        &store,
        &[
            (
                "Condition",
                &[("code:in", "http://x/vs/concepts")],
                &["c1", "c4"],
            ),
            (
                "Condition",
                &[("code:in", "http://x/vs/diabetes")],
                &["c1", "c2", "c5"],
            ),
            (
                "Condition",
                &[("code:not-in", "http://x/vs/diabetes")],
                &["c3", "c4"],
            ),
            (
                "Condition",
                &[("code:not-in", "http://x/vs/concepts")],
                &["c2", "c3", "c5"],
            ),
            (
                "Condition",
                &[("code:in", "http://x/vs/hypertension")],
                &["c3"],
            ),
            (
                "Condition",
                &[("code:in", "http://x/vs/hypertension,http://x/vs/concepts")],
                &["c1", "c3", "c4"],
            ),
            ("Condition", &[("code:in", "http://x/vs/empty")], &[]),
            (
                "Condition",
                &[("code:not-in", "http://x/vs/empty")],
                &["c1", "c2", "c3", "c4", "c5"],
            ),
            // a whole system, under both URIs of the family
            (
                "Procedure",
                &[("code:in", "http://x/vs/ops")],
                &["pr1", "pr2", "pr3"],
            ),
            ("Medication", &[("code:in", "http://x/vs/ops")], &[]),
        ],
    );
    let m = refused("Condition", &[("code:in", "http://x/vs/unknown")]);
    assert!(m.contains("is not stored"), "{m}");
}

#[test]
fn resource_level_meta_parameters() {
    let (_d, store) = store();
    seed(&store);
    run(
        &store,
        &[
            ("Observation", &[("_tag", "http://x/tags|t1")], &["o1"]),
            ("Observation", &[("_tag", "t2")], &["o2"]),
            ("Observation", &[("_tag", "http://x/tags|")], &["o1", "o2"]),
            ("Observation", &[("_tag:not", "http://x/tags|t1")], &["o2"]),
            ("Observation", &[("_tag", "http://other|t1")], &[]),
            (
                "Observation",
                &[(
                    "_security",
                    "http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R",
                )],
                &["o1"],
            ),
            ("Observation", &[("_security", "N")], &["o2"]),
            (
                "Observation",
                &[("_profile", "http://a.org/fhir/StructureDefinition/labx")],
                &["o2"],
            ),
            (
                "Observation",
                &[("_source", "http://a.org/sources/lis#abc")],
                &["o1"],
            ),
            (
                "Observation",
                &[("_source", "urn:uuid:3f1c8a2e-1b4d-4c6e-9f0a-2d5e8b1c3a47")],
                &["o2"],
            ),
            (
                "Observation",
                &[("_source", "http://a.org/sources/lis")],
                &[],
            ),
            ("Observation", &[("_tag:missing", "true")], &[]),
            ("Patient", &[("_tag:missing", "true")], &["p1", "p2"]),
        ],
    );
}
