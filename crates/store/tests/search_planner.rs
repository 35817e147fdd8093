//! The SQLite planner end to end: chained and reverse-chained parameters, `_sort` with keyset
//! paging under concurrent writes, the plan report, and `_total=estimate`.

use medicus_store::search::{SearchQuery, parse_search, parse_search_opts};
use medicus_store::testing::TestStore;
use medicus_store::{Precondition, SqliteStore, Store, StoreError};
use serde_json::{Value, json};

fn open() -> (tempfile::TempDir, TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::open(dir.path()).unwrap();
    store.create_tenant("a").unwrap();
    store.create_tenant("b").unwrap();
    (dir, store)
}

fn put_all(store: &dyn Store, tenant: &str, items: &[(&str, &str, Value)]) {
    let mut s = store.write_session(tenant).unwrap();
    for (rt, id, body) in items {
        s.put(rt, id, body.clone(), Precondition::None).unwrap();
    }
    s.commit().unwrap();
}

fn query(rt: &str, q: &[(&str, &str)]) -> Result<SearchQuery, StoreError> {
    let pairs: Vec<(String, String)> = q
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    parse_search(medicus_fhir::r4(), Some(rt), &pairs)
}

/// Ids of every match, following the pages.
fn ids_paged(store: &dyn Store, tenant: &str, rt: &str, q: &[(&str, &str)]) -> Vec<String> {
    let mut q = query(rt, q).unwrap();
    let mut out = Vec::new();
    loop {
        let mut s = store.read_session(tenant).unwrap();
        let page = s.search(Some(rt), &q).unwrap();
        out.extend(page.resources.iter().map(|r| r.id.clone()));
        match page.next_token() {
            Some(t) => q.set_cursor(&t).unwrap(),
            None => return out,
        }
    }
}

fn ids(store: &dyn Store, tenant: &str, rt: &str, q: &[(&str, &str)]) -> Vec<String> {
    let mut v = ids_paged(store, tenant, rt, q);
    v.sort();
    v
}

fn patient(id: &str, birth: &str, gender: &str, gp: Option<&str>) -> (&'static str, String, Value) {
    let mut p = json!({"resourceType": "Patient", "birthDate": birth, "gender": gender,
        "name": [{"family": format!("Fam-{id}")}]});
    if let Some(gp) = gp {
        p["generalPractitioner"] = json!([{"reference": format!("Practitioner/{gp}")}]);
    }
    ("Patient", id.to_owned(), p)
}

fn observation(
    id: &str,
    patient: &str,
    code: &str,
    date: &str,
    enc: Option<&str>,
) -> (&'static str, String, Value) {
    let mut o = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": date});
    if let Some(e) = enc {
        o["encounter"] = json!({"reference": format!("Encounter/{e}")});
    }
    ("Observation", id.to_owned(), o)
}

fn fixture(store: &dyn Store) {
    let mut items = vec![
        (
            "Practitioner",
            "dr-smith".to_owned(),
            json!({"resourceType": "Practitioner", "name": [{"family": "Smith"}]}),
        ),
        (
            "Practitioner",
            "dr-jones".to_owned(),
            json!({"resourceType": "Practitioner", "name": [{"family": "Jones"}]}),
        ),
        patient("p1", "1990-03-01", "female", Some("dr-smith")),
        patient("p2", "1990-11-20", "male", Some("dr-jones")),
        patient("p3", "1985-01-01", "female", Some("dr-smith")),
        patient("p4", "2001-07-07", "male", None),
        (
            "Encounter",
            "e1".to_owned(),
            json!({"resourceType": "Encounter", "status": "finished",
            "class": {"code": "IMP"}, "subject": {"reference": "Patient/p1"}}),
        ),
        (
            "Encounter",
            "e2".to_owned(),
            json!({"resourceType": "Encounter", "status": "finished",
            "class": {"code": "AMB"}, "subject": {"reference": "Patient/p3"}}),
        ),
        observation("o1", "p1", "4548-4", "2024-01-10", Some("e1")),
        observation("o2", "p1", "2345-7", "2024-02-10", Some("e1")),
        observation("o3", "p2", "4548-4", "2023-05-01", None),
        observation("o4", "p3", "2345-7", "2022-01-01", Some("e2")),
        observation("o5", "p4", "4548-4", "2024-06-30", None),
    ];
    // An observation without a date sorts last.
    items.push((
        "Observation",
        "o6".to_owned(),
        json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": "Patient/p2"}}),
    ));
    let refs: Vec<(&str, &str, Value)> = items
        .iter()
        .map(|(t, i, b)| (*t, i.as_str(), b.clone()))
        .collect();
    put_all(store, "a", &refs);
    // The same ids in another tenant, with other data: never visible from tenant a.
    put_all(
        store,
        "b",
        &[
            (
                "Patient",
                "p1",
                json!({"resourceType": "Patient", "birthDate": "1990-03-01"}),
            ),
            (
                "Observation",
                "x1",
                json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-01-01"}),
            ),
        ],
    );
}

#[test]
fn forward_chains_one_and_two_levels() {
    let (_d, store) = open();
    fixture(&store);
    assert_eq!(
        ids(
            &store,
            "a",
            "Observation",
            &[("subject:Patient.birthdate", "1990")]
        ),
        ["o1", "o2", "o3", "o6"]
    );
    // Without the type modifier: every target type of `subject` that has `birthdate`.
    assert_eq!(
        ids(&store, "a", "Observation", &[("subject.birthdate", "1985")]),
        ["o4"]
    );
    assert_eq!(
        ids(
            &store,
            "a",
            "Observation",
            &[(
                "subject:Patient.general-practitioner:Practitioner.name",
                "smith"
            )]
        ),
        ["o1", "o2", "o4"]
    );
    // Chains combine with other criteria, and OR inside the chained value.
    assert_eq!(
        ids(
            &store,
            "a",
            "Observation",
            &[
                ("subject:Patient.birthdate", "1990,2001"),
                ("code", "4548-4")
            ]
        ),
        ["o1", "o3", "o5", "o6"]
    );
    assert_eq!(
        ids(
            &store,
            "b",
            "Observation",
            &[("subject:Patient.birthdate", "1990")]
        ),
        ["x1"]
    );
}

#[test]
fn reverse_chains_and_nesting() {
    let (_d, store) = open();
    fixture(&store);
    assert_eq!(
        ids(
            &store,
            "a",
            "Patient",
            &[("_has:Observation:subject:code", "2345-7")]
        ),
        ["p1", "p3"]
    );
    assert_eq!(
        ids(
            &store,
            "a",
            "Patient",
            &[
                ("_has:Observation:subject:code", "2345-7"),
                ("gender", "female")
            ]
        ),
        ["p1", "p3"]
    );
    assert_eq!(
        ids(
            &store,
            "a",
            "Patient",
            &[("_has:Observation:subject:date", "lt2023")]
        ),
        ["p3"]
    );
    // Nested: patients with an encounter that has an observation of 4548-4.
    assert_eq!(
        ids(
            &store,
            "a",
            "Patient",
            &[(
                "_has:Encounter:subject:_has:Observation:encounter:code",
                "4548-4"
            )]
        ),
        ["p1"]
    );
    assert_eq!(
        ids(
            &store,
            "a",
            "Practitioner",
            &[("_has:Patient:general-practitioner:gender", "male")]
        ),
        ["dr-jones"]
    );
    assert_eq!(
        ids(
            &store,
            "b",
            "Patient",
            &[("_has:Observation:subject:code", "4548-4")]
        ),
        ["p1"]
    );
}

#[test]
fn bad_chains_are_refused() {
    for (rt, name) in [
        ("Observation", "code.birthdate"),
        ("Observation", "subject:Medication.code"),
        ("Observation", "subject:Patient.nonsense"),
        ("Patient", "_has:Observation:code:status"),
        ("Patient", "_has:Nope:subject:code"),
        ("Patient", "_has:Observation"),
    ] {
        assert!(
            matches!(query(rt, &[(name, "x")]), Err(StoreError::InvalidSearch(_))),
            "{rt}?{name}"
        );
    }
    let deep = [(
        "subject:Patient.general-practitioner:Practitioner.name".to_string(),
        "x".to_string(),
    )];
    assert!(matches!(
        parse_search_opts(medicus_fhir::r4(), Some("Observation"), &deep, &medicus_store::search::NoResolver, 1),
        Err(StoreError::InvalidSearch(m)) if m.contains("limited")
    ));
}

#[test]
fn sort_by_date_both_ways_with_missing_last() {
    let (_d, store) = open();
    fixture(&store);
    assert_eq!(
        ids_paged(
            &store,
            "a",
            "Observation",
            &[("_sort", "date"), ("_count", "2")]
        ),
        ["o4", "o3", "o1", "o2", "o5", "o6"]
    );
    assert_eq!(
        ids_paged(
            &store,
            "a",
            "Observation",
            &[("_sort", "-date"), ("_count", "2")]
        ),
        ["o5", "o2", "o1", "o3", "o4", "o6"]
    );
    assert_eq!(
        ids_paged(
            &store,
            "a",
            "Observation",
            &[("_sort", "-date"), ("code", "4548-4"), ("_count", "1")]
        ),
        ["o5", "o1", "o3", "o6"]
    );
    assert_eq!(
        ids_paged(&store, "a", "Patient", &[("_sort", "birthdate")]),
        ["p3", "p1", "p2", "p4"]
    );
    assert_eq!(
        ids_paged(&store, "a", "Patient", &[("_sort", "family")]),
        ["p1", "p2", "p3", "p4"]
    );
}

#[test]
fn sort_by_several_keys_and_tokens() {
    let (_d, store) = open();
    fixture(&store);
    assert_eq!(
        ids_paged(
            &store,
            "a",
            "Patient",
            &[("_sort", "gender,-birthdate"), ("_count", "3")]
        ),
        ["p1", "p3", "p4", "p2"]
    );
    assert_eq!(
        ids_paged(
            &store,
            "a",
            "Observation",
            &[("_sort", "code,date"), ("_count", "2")]
        ),
        ["o4", "o2", "o3", "o1", "o5", "o6"]
    );
    assert_eq!(
        ids_paged(&store, "a", "Observation", &[("_sort", "-_id")]),
        ["o6", "o5", "o4", "o3", "o2", "o1"]
    );
}

#[test]
fn sorted_paging_is_stable_while_writes_continue() {
    let (_d, store) = open();
    fixture(&store);
    let mut q = query("Observation", &[("_sort", "date"), ("_count", "2")]).unwrap();
    let mut seen = Vec::new();
    let mut round = 0;
    loop {
        let page = store
            .read_session("a")
            .unwrap()
            .search(Some("Observation"), &q)
            .unwrap();
        seen.extend(page.resources.iter().map(|r| r.id.clone()));
        // Between pages: a new observation before the cursor, one after it, and an update.
        round += 1;
        put_all(
            &store,
            "a",
            &[
                observation(&format!("early{round}"), "p1", "1111-1", "2000-01-01", None),
                observation(&format!("late{round}"), "p1", "1111-1", "2030-01-01", None),
            ]
            .map(|(t, i, b)| (t, Box::leak(i.into_boxed_str()) as &str, b)),
        );
        match page.next_token() {
            Some(t) => q.set_cursor(&t).unwrap(),
            None => break,
        }
    }
    // Nothing seen twice, none of the original ones skipped, and later pages pick up rows
    // inserted after the cursor (no offsets, no drift).
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "{seen:?}");
    for id in ["o1", "o2", "o3", "o4", "o5", "o6"] {
        assert!(seen.contains(&id.to_string()), "{id} missing from {seen:?}");
    }
    assert!(!seen.iter().any(|i| i.starts_with("early")), "{seen:?}");
    assert!(seen.iter().any(|i| i.starts_with("late")), "{seen:?}");
}

#[test]
fn plan_names_the_most_selective_clause() {
    let (_d, store) = open();
    fixture(&store);
    let mut q = query(
        "Observation",
        &[
            ("code", "4548-4"),
            ("subject", "Patient/p4"),
            ("_explain", "true"),
        ],
    )
    .unwrap();
    q.explain = true;
    let page = store
        .read_session("a")
        .unwrap()
        .search(Some("Observation"), &q)
        .unwrap();
    let plan = page.plan.unwrap();
    assert!(plan.starts_with("drive: subject (1 rows"), "{plan}");
    assert!(plan.contains("check: code"), "{plan}");
    assert_eq!(page.resources.len(), 1);
    let q = query(
        "Observation",
        &[("code", "4548-4"), ("_total", "estimate"), ("_count", "0")],
    )
    .unwrap();
    let page = store
        .read_session("a")
        .unwrap()
        .search(Some("Observation"), &q)
        .unwrap();
    assert_eq!(page.total, Some(4));
}

#[test]
fn cursors_are_validated() {
    let mut q = query("Observation", &[]).unwrap();
    for bad in ["x", "s", "s1~q", "s1~t0", "s1~tzz", "s1~rzz"] {
        assert!(q.set_cursor(bad).is_err(), "{bad}");
    }
    assert!(q.set_cursor("s12~i5~i6").is_ok());
    assert!(q.set_cursor("17").is_ok());
}

fn condition(id: &str, narrative: &str, code_text: &str) -> (&'static str, String, Value) {
    (
        "Condition",
        id.to_owned(),
        json!({"resourceType": "Condition",
            "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{narrative}</p></div>")},
            "code": {"text": code_text},
            "subject": {"reference": "Patient/p1"}}),
    )
}

#[test]
fn full_text_over_narrative_and_content() {
    let (_d, store) = open();
    let items = [
        condition(
            "c1",
            "Diabetische <b>Neuropathie</b> beidseits",
            "Typ-2-Diabetes",
        ),
        condition("c2", "Z.n. Myokardinfarkt", "Koronare Herzkrankheit"),
        condition("c3", "Befund von Dr. Müller", "Hypertonie"),
    ];
    let refs: Vec<(&str, &str, Value)> = items
        .iter()
        .map(|(t, i, b)| (*t, i.as_str(), b.clone()))
        .collect();
    put_all(&store, "a", &refs);
    put_all(
        &store,
        "b",
        &[condition("c9", "Neuropathie", "x")]
            .map(|(t, i, b)| (t, Box::leak(i.into_boxed_str()) as &str, b)),
    );
    assert_eq!(
        ids(&store, "a", "Condition", &[("_text", "neuropathie")]),
        ["c1"]
    );
    // `_text` is the narrative only; `_content` every string, narrative included.
    assert!(ids(&store, "a", "Condition", &[("_text", "herzkrankheit")]).is_empty());
    assert_eq!(
        ids(
            &store,
            "a",
            "Condition",
            &[("_content", "koronare herzkrankheit")]
        ),
        ["c2"]
    );
    assert_eq!(
        ids(&store, "a", "Condition", &[("_content", "myokardinfarkt")]),
        ["c2"]
    );
    // Every word must occur; values are OR-ed; case and diacritics are ignored.
    assert!(
        ids(
            &store,
            "a",
            "Condition",
            &[("_content", "diabetes herzkrankheit")]
        )
        .is_empty()
    );
    assert_eq!(
        ids(
            &store,
            "a",
            "Condition",
            &[("_content", "hypertonie,neuropathie")]
        ),
        ["c1", "c3"]
    );
    assert_eq!(
        ids(&store, "a", "Condition", &[("_text", "MULLER")]),
        ["c3"]
    );
    // FTS syntax and SQL in a value are data.
    assert!(ids(&store, "a", "Condition", &[("_content", "x\" OR 1=1 --")]).is_empty());
    assert!(
        ids(
            &store,
            "a",
            "Condition",
            &[("_content", "NEAR(diabetes neuropathie)")]
        )
        .is_empty()
    );
    // With other criteria, and updates and deletes keep the words current.
    assert_eq!(
        ids(
            &store,
            "a",
            "Condition",
            &[("_text", "neuropathie"), ("_id", "c1")]
        ),
        ["c1"]
    );
    put_all(
        &store,
        "a",
        &[(
            "Condition",
            "c1",
            condition("c1", "ausgeheilt", "Typ-2-Diabetes").2,
        )],
    );
    assert!(ids(&store, "a", "Condition", &[("_text", "neuropathie")]).is_empty());
    assert_eq!(
        ids(&store, "a", "Condition", &[("_text", "ausgeheilt")]),
        ["c1"]
    );
    let mut s = store.write_session("a").unwrap();
    s.delete("Condition", "c1", Precondition::None).unwrap();
    s.commit().unwrap();
    assert!(ids(&store, "a", "Condition", &[("_text", "ausgeheilt")]).is_empty());
    assert!(matches!(
        query("Condition", &[("_text:exact", "x")]),
        Err(StoreError::InvalidSearch(_))
    ));
    assert!(matches!(
        query("Condition", &[("_content", "--")]),
        Err(StoreError::InvalidSearch(_))
    ));
}

#[test]
fn reindex_rebuilds_every_index_row() {
    // SQLite's reindex (PostgreSQL has none yet).
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store.create_tenant("a").unwrap();
    store.create_tenant("b").unwrap();
    fixture(&store);
    let before = ids(
        &store,
        "a",
        "Observation",
        &[("subject:Patient.birthdate", "1990"), ("code", "4548-4")],
    );
    let mut calls = 0;
    let n = store.reindex(&mut |_, _| calls += 1).unwrap();
    assert!(n >= 13 && calls >= 1, "{n} {calls}");
    assert_eq!(
        ids(
            &store,
            "a",
            "Observation",
            &[("subject:Patient.birthdate", "1990"), ("code", "4548-4")]
        ),
        before
    );
    // Full-text rows are rebuilt too (and `status` values are not content).
    assert_eq!(
        ids(&store, "a", "Patient", &[("_content", "fam p3")]),
        ["p3"]
    );
    assert!(ids(&store, "a", "Observation", &[("_content", "final")]).is_empty());
    // Nothing is indexed twice: every search answers as before.
    assert_eq!(
        ids(
            &store,
            "a",
            "Patient",
            &[("_has:Observation:subject:code", "2345-7")]
        ),
        ["p1", "p3"]
    );
}

#[test]
fn a_version_one_store_is_migrated_and_reindexed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.create_tenant("a").unwrap();
        store.create_tenant("b").unwrap();
        fixture(&store);
    }
    // Turn it back into the version 1 layout: no id hash, the old unique index, old metadata.
    {
        let conn = rusqlite::Connection::open(dir.path().join("medicus.db")).unwrap();
        conn.execute_batch(
            "DROP INDEX resource_by_id;
             ALTER TABLE resource DROP COLUMN idh;
             CREATE UNIQUE INDEX resource_by_id ON resource (tenant, rtype, id);
             UPDATE meta SET value = '1' WHERE key = 'schema_version';
             DELETE FROM meta WHERE key = 'index_version';",
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        ids(
            &store,
            "a",
            "Observation",
            &[("subject:Patient.birthdate", "1990")]
        ),
        ["o1", "o2", "o3", "o6"]
    );
    assert_eq!(
        ids(
            &store,
            "a",
            "Patient",
            &[("_has:Observation:subject:code", "2345-7")]
        ),
        ["p1", "p3"]
    );
    let mut s = store.read_session("a").unwrap();
    assert!(s.read("Patient", "p1").unwrap().is_some());
    drop(s);
    drop(store);
    // A newer schema is refused.
    {
        let conn = rusqlite::Connection::open(dir.path().join("medicus.db")).unwrap();
        conn.execute_batch("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
            .unwrap();
    }
    assert!(SqliteStore::open(dir.path()).is_err());
}

#[test]
fn composites_compare_their_last_component() {
    let (_d, store) = open();
    let bp = |id: &str, sys: f64, dia: f64| {
        (
            "Observation",
            id.to_owned(),
            json!({"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                "component": [
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                     "valueQuantity": {"value": sys, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                     "valueQuantity": {"value": dia, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]}),
        )
    };
    let items = [
        bp("bp1", 120.0, 80.0),
        bp("bp2", 165.0, 95.0),
        bp("bp3", 90.0, 60.0),
        (
            "Observation",
            "hba1c".to_owned(),
            json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "valueQuantity": {"value": 7.4, "system": "http://unitsofmeasure.org", "code": "%"},
            "effectiveDateTime": "2024-03-01"}),
        ),
        (
            "Observation",
            "smoker".to_owned(),
            json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "77176002"}]}}),
        ),
    ];
    let refs: Vec<(&str, &str, Value)> = items
        .iter()
        .map(|(t, i, b)| (*t, i.as_str(), b.clone()))
        .collect();
    put_all(&store, "a", &refs);
    let sys = "component-code-value-quantity";
    assert_eq!(
        ids(
            &store,
            "a",
            "Observation",
            &[(sys, "http://loinc.org|8480-6$gt130")]
        ),
        ["bp2"]
    );
    assert_eq!(
        ids(
            &store,
            "a",
            "Observation",
            &[(sys, "http://loinc.org|8480-6$le120")]
        ),
        ["bp1", "bp3"]
    );
    assert_eq!(
        ids(
            &store,
            "a",
            "Observation",
            &[(sys, "http://loinc.org|8480-6$120")]
        ),
        ["bp1"]
    );
    // The comparison applies to the component whose code matched, not to any component.
    assert!(
        ids(
            &store,
            "a",
            "Observation",
            &[(sys, "http://loinc.org|8462-4$gt100")]
        )
        .is_empty()
    );
    assert_eq!(
        ids(
            &store,
            "a",
            "Observation",
            &[(sys, "8462-4$ge95|http://unitsofmeasure.org|mm[Hg]")]
        ),
        ["bp2"]
    );
    assert_eq!(
        ids(
            &store,
            "a",
            "Observation",
            &[("code-value-quantity", "http://loinc.org|4548-4$ap7.5")]
        ),
        ["hba1c"]
    );
    assert!(
        ids(
            &store,
            "a",
            "Observation",
            &[("code-value-quantity", "http://loinc.org|4548-4$lt7")]
        )
        .is_empty()
    );
    // Composites of tokens stay exact.
    assert_eq!(
        ids(
            &store,
            "a",
            "Observation",
            &[(
                "code-value-concept",
                "http://loinc.org|72166-2$http://snomed.info/sct|77176002"
            )]
        ),
        ["smoker"]
    );
    assert!(matches!(
        query("Observation", &[(sys, "http://loinc.org|8480-6$gtx")]),
        Err(StoreError::InvalidSearch(_))
    ));
    assert!(matches!(
        query("Observation", &[(sys, "http://loinc.org|8480-6")]),
        Err(StoreError::InvalidSearch(_))
    ));
}

#[test]
fn sort_by_last_updated_walks_commit_order() {
    let (_d, store) = open();
    // Enough resources that the walk, not the in-memory sort, answers.
    for batch in 0..5 {
        let items: Vec<(&str, String, Value)> = (0..600)
            .map(|i| patient(&format!("b{batch}-{i:03}"), "1990-01-01", "female", None))
            .collect();
        let refs: Vec<(&str, &str, Value)> = items
            .iter()
            .map(|(t, i, b)| (*t, i.as_str(), b.clone()))
            .collect();
        put_all(&store, "a", &refs);
    }
    // Updating a resource moves it to the end of `_lastUpdated` order.
    put_all(
        &store,
        "a",
        &[patient("b0-000", "1991-01-01", "male", None)]
            .map(|(t, i, b)| (t, Box::leak(i.into_boxed_str()) as &str, b)),
    );
    let mut q = query(
        "Patient",
        &[
            ("_sort", "-_lastUpdated"),
            ("_count", "700"),
            ("_explain", "true"),
        ],
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut plans = Vec::new();
    loop {
        let page = store
            .read_session("a")
            .unwrap()
            .search(Some("Patient"), &q)
            .unwrap();
        plans.push(page.plan.clone().unwrap_or_default());
        seen.extend(
            page.resources
                .iter()
                .map(|r| (r.id.clone(), r.last_updated_us)),
        );
        match page.next_token() {
            Some(t) => q.set_cursor(&t).unwrap(),
            None => break,
        }
    }
    assert!(plans[0].contains("walk of versions"), "{plans:?}");
    assert_eq!(seen.len(), 3000);
    assert_eq!(seen[0].0, "b0-000");
    assert!(seen.windows(2).all(|w| w[0].1 >= w[1].1));
    let mut ids: Vec<&String> = seen.iter().map(|(i, _)| i).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3000);
    // The same order from the in-memory sort of a small result.
    let small = ids_paged(
        &store,
        "a",
        "Patient",
        &[("_sort", "-_lastUpdated"), ("gender", "male")],
    );
    assert_eq!(small, ["b0-000"]);
}

/// `code=…&_sort=-date` walks the searched code's own dates (`idx_code_date`), so newer results
/// of other codes are never read; pages, systems and updates stay correct.
#[test]
fn sort_by_date_within_one_code() {
    let (_d, store) = open();
    let obs = |id: String, system: &str, code: &str, day: u32| {
        let date = format!(
            "{}-{:02}-{:02}",
            2000 + day / 300,
            1 + (day / 28) % 12,
            1 + day % 28
        );
        let body = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": date});
        (id, date, body)
    };
    // 2,400 of code A spread over the years, 3,000 of code B all newer than every A, and 30 of
    // code A in another system.
    let mut all = Vec::new();
    for i in 0..2400 {
        all.push(obs(
            format!("a{i:04}"),
            "http://loinc.org",
            "A",
            (i * 7) % 6000,
        ));
    }
    for i in 0..3000 {
        all.push(obs(
            format!("b{i:04}"),
            "http://loinc.org",
            "B",
            6100 + i % 500,
        ));
    }
    for i in 0..30 {
        all.push(obs(format!("x{i:02}"), "urn:other", "A", i * 100));
    }
    for chunk in all.chunks(1000) {
        let items: Vec<(&str, &str, Value)> = chunk
            .iter()
            .map(|(id, _, b)| ("Observation", id.as_str(), b.clone()))
            .collect();
        put_all(&store, "a", &items);
    }
    // One A becomes a B: its code-date rows move with it.
    let (_, _, mut moved) = obs("a0001".into(), "http://loinc.org", "B", 7);
    moved["id"] = json!("a0001");
    put_all(&store, "a", &[("Observation", "a0001", moved)]);

    let expected = |pred: &dyn Fn(&str) -> bool| {
        let mut v: Vec<(&str, &str)> = all
            .iter()
            .filter(|(id, _, _)| id != "a0001" && pred(id))
            .map(|(id, date, _)| (date.as_str(), id.as_str()))
            .collect();
        // Newest first; equal dates by surrogate key descending = insertion order reversed.
        v.sort_by(|a, b| b.0.cmp(a.0).then(b.1.cmp(a.1)));
        v.into_iter()
            .map(|(_, id)| id.to_owned())
            .collect::<Vec<_>>()
    };
    for (code, pred) in [
        (
            "http://loinc.org|A",
            &(|id: &str| id.starts_with('a')) as &dyn Fn(&str) -> bool,
        ),
        ("A", &|id: &str| id.starts_with('a') || id.starts_with('x')),
    ] {
        let q = [("code", code), ("_sort", "-date"), ("_count", "500")];
        let got = ids_paged(&store, "a", "Observation", &q);
        let want = expected(pred);
        assert_eq!(got.len(), want.len(), "{code}");
        // Ties in date come in surrogate-key order; compare the dates and the id sets.
        let date_of = |id: &str| all.iter().find(|(i, _, _)| i == id).unwrap().1.clone();
        let got_dates: Vec<String> = got.iter().map(|i| date_of(i)).collect();
        let want_dates: Vec<String> = want.iter().map(|i| date_of(i)).collect();
        assert_eq!(got_dates, want_dates, "{code}");
        let (mut g, mut w) = (got.clone(), want.clone());
        g.sort();
        w.sort();
        assert_eq!(g, w, "{code}");
    }
    let q = query(
        "Observation",
        &[
            ("code", "A"),
            ("_sort", "-date"),
            ("_count", "10"),
            ("_explain", "true"),
        ],
    )
    .unwrap();
    let page = store
        .read_session("a")
        .unwrap()
        .search(Some("Observation"), &q)
        .unwrap();
    assert!(
        page.plan
            .as_deref()
            .unwrap_or("")
            .contains("within the searched code"),
        "{:?}",
        page.plan
    );
    // Ascending, across the same rows.
    let asc = ids_paged(
        &store,
        "a",
        "Observation",
        &[
            ("code", "http://loinc.org|B"),
            ("_sort", "date"),
            ("_count", "700"),
        ],
    );
    assert_eq!(asc.len(), 3001);
    assert_eq!(asc[0], "a0001");
}
