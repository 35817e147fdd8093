//! The SQLite backend through the `Store` contract: versions, history, atomicity, tenants,
//! change feed and search over real index extraction.

use medicus_store::search::parse_search;
use medicus_store::{HistoryQuery, HistoryScope, Precondition, SqliteStore, Store, StoreError};
use serde_json::{Value, json};

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store.create_tenant("a").unwrap();
    store.create_tenant("b").unwrap();
    (dir, store)
}

fn patient(family: &str, birth: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "http://hospital.example/mrn", "value": format!("mrn-{family}")}],
        "name": [{"family": family, "given": ["Anna"]}],
        "gender": "female",
        "birthDate": birth
    })
}

fn put(store: &SqliteStore, tenant: &str, rt: &str, id: &str, body: Value) -> i64 {
    let mut s = store.write_session(tenant).unwrap();
    let out = s.put(rt, id, body, Precondition::None).unwrap();
    s.commit().unwrap();
    out.version.version
}

fn search_ids(store: &SqliteStore, tenant: &str, rt: &str, query: &[(&str, &str)]) -> Vec<String> {
    let pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let q = parse_search(medicus_fhir::r4(), Some(rt), &pairs).unwrap();
    let mut s = store.read_session(tenant).unwrap();
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

#[test]
fn versions_meta_and_vread() {
    let (_d, store) = store();
    assert_eq!(
        put(
            &store,
            "a",
            "Patient",
            "p1",
            patient("Müller", "1970-05-01")
        ),
        1
    );
    assert_eq!(
        put(&store, "a", "Patient", "p1", patient("Meier", "1970-05-01")),
        2
    );
    let mut r = store.read_session("a").unwrap();
    let cur = r.read("Patient", "p1").unwrap().unwrap();
    assert_eq!(cur.version, 2);
    let body = cur.body.unwrap();
    assert_eq!(body["meta"]["versionId"], "2");
    assert_eq!(body["id"], "p1");
    assert_eq!(body["name"][0]["family"], "Meier");
    let v1 = r.vread("Patient", "p1", 1).unwrap().unwrap().body.unwrap();
    assert_eq!(v1["name"][0]["family"], "Müller");
    assert!(r.vread("Patient", "p1", 3).unwrap().is_none());
}

#[test]
fn delete_history_and_recreate() {
    let (_d, store) = store();
    put(&store, "a", "Patient", "p1", patient("A", "1980"));
    let mut w = store.write_session("a").unwrap();
    let deleted = w
        .delete("Patient", "p1", Precondition::None)
        .unwrap()
        .unwrap();
    assert_eq!(deleted.version, 2);
    assert!(
        w.delete("Patient", "p1", Precondition::None)
            .unwrap()
            .is_none()
    );
    w.commit().unwrap();
    let mut r = store.read_session("a").unwrap();
    assert!(r.read("Patient", "p1").unwrap().unwrap().is_deleted());
    drop(r);
    assert_eq!(put(&store, "a", "Patient", "p1", patient("B", "1980")), 3);
    let mut r = store.read_session("a").unwrap();
    let q = HistoryQuery {
        count: 10,
        ..Default::default()
    };
    let h = r
        .history(HistoryScope::Instance("Patient", "p1"), &q)
        .unwrap();
    assert_eq!(h.total, 3);
    let versions: Vec<i64> = h.entries.iter().map(|e| e.version).collect();
    assert_eq!(versions, vec![3, 2, 1]);
    assert!(h.entries[1].is_deleted());
}

#[test]
fn history_pages_and_since() {
    let (_d, store) = store();
    for i in 0..5 {
        put(
            &store,
            "a",
            "Patient",
            &format!("p{i}"),
            patient("X", "1990"),
        );
    }
    put(
        &store,
        "a",
        "Observation",
        "o1",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
    );
    let mut r = store.read_session("a").unwrap();
    let mut q = HistoryQuery {
        count: 2,
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = r.history(HistoryScope::Type("Patient"), &q).unwrap();
        assert_eq!(page.total, 5);
        seen.extend(page.entries.iter().map(|e| e.id.clone()));
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, vec!["p4", "p3", "p2", "p1", "p0"]);
    let all = r
        .history(
            HistoryScope::System,
            &HistoryQuery {
                count: 100,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(all.total, 6);
    let newest = all.entries[0].last_updated_us;
    let since = r
        .history(
            HistoryScope::System,
            &HistoryQuery {
                count: 100,
                since_us: Some(newest),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(since.total, 1);
}

#[test]
fn uncommitted_session_leaves_nothing() {
    let (_d, store) = store();
    {
        let mut w = store.write_session("a").unwrap();
        w.put("Patient", "p1", patient("A", "1980"), Precondition::None)
            .unwrap();
        // dropped without commit
    }
    let mut r = store.read_session("a").unwrap();
    assert!(r.read("Patient", "p1").unwrap().is_none());
    assert!(search_ids(&store, "a", "Patient", &[("family", "a")]).is_empty());
    assert!(store.changes(0, 10).unwrap().is_empty());
}

#[test]
fn version_preconditions() {
    let (_d, store) = store();
    put(&store, "a", "Patient", "p1", patient("A", "1980"));
    let mut w = store.write_session("a").unwrap();
    let err = w
        .put(
            "Patient",
            "p1",
            patient("B", "1980"),
            Precondition::VersionIs(7),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::VersionConflict {
            expected: 7,
            current: Some(1),
            ..
        }
    ));
    assert!(
        w.put(
            "Patient",
            "p1",
            patient("B", "1980"),
            Precondition::VersionIs(1)
        )
        .is_ok()
    );
    let err = w
        .put(
            "Patient",
            "nope",
            patient("B", "1980"),
            Precondition::VersionIs(1),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::VersionConflict { current: None, .. }
    ));
}

#[test]
fn tenants_are_isolated() {
    let (_d, store) = store();
    put(&store, "a", "Patient", "p1", patient("Schmidt", "1980"));
    let mut rb = store.read_session("b").unwrap();
    assert!(rb.read("Patient", "p1").unwrap().is_none());
    assert!(rb.vread("Patient", "p1", 1).unwrap().is_none());
    let h = rb
        .history(
            HistoryScope::System,
            &HistoryQuery {
                count: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(h.total, 0);
    drop(rb);
    assert!(search_ids(&store, "b", "Patient", &[("family", "schmidt")]).is_empty());
    assert_eq!(
        search_ids(&store, "a", "Patient", &[("family", "schmidt")]),
        vec!["p1"]
    );
    // The same id in another tenant is another resource.
    assert_eq!(
        put(&store, "b", "Patient", "p1", patient("Other", "1980")),
        1
    );
    assert!(matches!(
        store.read_session("zzz"),
        Err(StoreError::UnknownTenant(_))
    ));
    assert!(matches!(
        store.create_tenant("bad/id"),
        Err(StoreError::InvalidTenantId(_))
    ));
    assert!(!store.create_tenant("a").unwrap());
    assert_eq!(store.list_tenants().unwrap(), vec!["a", "b"]);
}

#[test]
fn change_feed_is_ordered_and_resumable() {
    let (_d, store) = store();
    put(&store, "a", "Patient", "p1", patient("A", "1980"));
    put(&store, "b", "Patient", "p2", patient("B", "1980"));
    let mut w = store.write_session("a").unwrap();
    w.delete("Patient", "p1", Precondition::None).unwrap();
    w.commit().unwrap();
    let all = store.changes(0, 100).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].tx < w[1].tx));
    assert_eq!((all[1].tenant.as_str(), all[1].id.as_str()), ("b", "p2"));
    assert!(all[2].deleted);
    let rest = store.changes(all[0].tx, 100).unwrap();
    assert_eq!(rest, all[1..].to_vec());
}

#[test]
fn a_change_feed_page_never_ends_inside_a_transaction() {
    let (_d, store) = store();
    put(&store, "a", "Patient", "p0", patient("Z", "1970"));
    let mut w = store.write_session("a").unwrap();
    for i in 1..=5 {
        w.put(
            "Patient",
            &format!("p{i}"),
            patient("A", "1980"),
            Precondition::None,
        )
        .unwrap();
    }
    w.commit().unwrap();
    put(&store, "a", "Patient", "p9", patient("Y", "1990"));
    // Two asked for: the first transaction, then all five of the second.
    let first = store.changes(0, 2).unwrap();
    assert_eq!(first.len(), 6, "{first:?}");
    assert!(first[1..].iter().all(|c| c.tx == first[1].tx));
    // Reading on after the last position seen misses nothing.
    let next = store.changes(first[5].tx, 2).unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].id, "p9");
}

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.create_tenant("a").unwrap();
        put(&store, "a", "Patient", "p1", patient("Keep", "1980"));
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert!(store.tenant_exists("a").unwrap());
    assert_eq!(
        search_ids(&store, "a", "Patient", &[("family", "keep")]),
        vec!["p1"]
    );
}

/// A search on a type, its query pairs and the ids it must find.
type SearchCase<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn search_by_each_parameter_type() {
    let (_d, store) = store();
    put(
        &store,
        "a",
        "Patient",
        "p1",
        patient("Müller", "1970-05-01"),
    );
    put(
        &store,
        "a",
        "Patient",
        "p2",
        patient("Muster", "1985-12-24"),
    );
    put(&store, "a", "Patient", "p3", patient("Schulz", "2001"));
    put(
        &store,
        "a",
        "Observation",
        "o1",
        json!({
            "resourceType": "Observation", "status": "final",
            "meta": {"profile": ["https://www.medizininformatik-initiative.de/fhir/core/modul-labor/StructureDefinition/ObservationLab"]},
            "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-03-01T10:00:00+01:00",
            "valueQuantity": {"value": 7.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
        }),
    );
    let profile = "https://www.medizininformatik-initiative.de/fhir/core/modul-labor/StructureDefinition/ObservationLab";
    let all = ["p1", "p2", "p3"];
    // (type, query, expected ids)
    let cases: &[SearchCase] = &[
        // string: starts-with, case and accent insensitive; :exact; :contains
        ("Patient", &[("family", "mu")], &["p1", "p2"]),
        ("Patient", &[("family", "MÜLL")], &["p1"]),
        ("Patient", &[("family:exact", "Müller")], &["p1"]),
        ("Patient", &[("family:exact", "müller")], &[]),
        ("Patient", &[("family:contains", "HUL")], &["p3"]),
        // token forms
        (
            "Patient",
            &[("identifier", "http://hospital.example/mrn|mrn-Muster")],
            &["p2"],
        ),
        ("Patient", &[("identifier", "mrn-Muster")], &["p2"]),
        ("Patient", &[("identifier", "|mrn-Muster")], &[]),
        (
            "Patient",
            &[("identifier", "http://hospital.example/mrn|")],
            &all,
        ),
        ("Patient", &[("gender", "female")], &all),
        // `code` elements carry the implicit system of their binding
        (
            "Patient",
            &[("gender", "http://hl7.org/fhir/administrative-gender|female")],
            &all,
        ),
        // Known limitation: without the R4 bindings in the definitions, the implicit system is not
        // known, so any system is accepted for a `code` element.
        ("Patient", &[("gender", "http://other|female")], &all),
        ("Patient", &[("gender", "|female")], &[]),
        (
            "Observation",
            &[("code", "http://loinc.org|4548-4")],
            &["o1"],
        ),
        (
            "Observation",
            &[("code:not", "http://loinc.org|4548-4")],
            &[],
        ),
        // dates with precision and prefixes
        ("Patient", &[("birthdate", "1970")], &["p1"]),
        ("Patient", &[("birthdate", "lt1980")], &["p1"]),
        ("Patient", &[("birthdate", "ge1985-12-24")], &["p2", "p3"]),
        ("Patient", &[("birthdate", "ne1970-05-01")], &["p2", "p3"]),
        ("Patient", &[("birthdate", "gt2001-06")], &["p3"]),
        ("Observation", &[("date", "2024-03-01")], &["o1"]),
        // AND by repetition, OR by comma
        (
            "Patient",
            &[("family", "mu"), ("birthdate", "ge1980")],
            &["p2"],
        ),
        ("Patient", &[("family", "schulz,muster")], &["p2", "p3"]),
        // reference by Type/id and id
        ("Observation", &[("subject", "Patient/p1")], &["o1"]),
        ("Observation", &[("patient", "p1")], &["o1"]),
        ("Observation", &[("subject", "Patient/p2")], &[]),
        // quantity and _id
        (
            "Observation",
            &[("value-quantity", "gt7|http://unitsofmeasure.org|%")],
            &["o1"],
        ),
        ("Observation", &[("value-quantity", "lt7")], &[]),
        ("Patient", &[("_id", "p1,p3")], &["p1", "p3"]),
        // uri (hashed, equality) and composite (exact values)
        ("Observation", &[("_profile", profile)], &["o1"]),
        ("Observation", &[("_profile", "https://other/profile")], &[]),
        (
            "Observation",
            &[("code-value-quantity", "http://loinc.org|4548-4$7.1")],
            &["o1"],
        ),
        (
            "Observation",
            &[(
                "code-value-quantity",
                "4548-4$7.1|http://unitsofmeasure.org|%",
            )],
            &["o1"],
        ),
        ("Observation", &[("code-value-quantity", "4548-4$7.2")], &[]),
        // :missing; `deceased` is computed (`deceased.exists() and deceased != false`): false when absent
        ("Patient", &[("death-date:missing", "true")], &all),
        ("Patient", &[("death-date:missing", "false")], &[]),
        ("Patient", &[("deceased", "false")], &all),
    ];
    for (rt, query, expected) in cases {
        assert_eq!(
            search_ids(&store, "a", rt, query),
            expected.to_vec(),
            "{rt}?{query:?}"
        );
    }
    // A composite's numeric last component takes comparison prefixes.
    assert_eq!(
        search_ids(
            &store,
            "a",
            "Observation",
            &[("code-value-quantity", "4548-4$gt7")]
        ),
        search_ids(
            &store,
            "a",
            "Observation",
            &[("code-value-quantity", "4548-4$7.1")]
        )
    );
    assert!(
        search_ids(
            &store,
            "a",
            "Observation",
            &[("code-value-quantity", "4548-4$gt8")]
        )
        .is_empty()
    );
    // Every prefix binds exactly the SQL arguments it uses (a stray one is an SQLite error).
    for prefix in ["eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap"] {
        let future = format!("{prefix}2100-01-01");
        let before_2100 = matches!(prefix, "ne" | "lt" | "le" | "eb");
        let ids = search_ids(&store, "a", "Patient", &[("_lastUpdated", &future)]);
        assert_eq!(
            ids.len(),
            if before_2100 { 3 } else { 0 },
            "_lastUpdated={future}"
        );
        let ids = search_ids(&store, "a", "Patient", &[("birthdate", &future)]);
        assert_eq!(
            ids.len(),
            if before_2100 { 3 } else { 0 },
            "birthdate={future}"
        );
        let number = format!("{prefix}7.1");
        let ids = search_ids(&store, "a", "Observation", &[("value-quantity", &number)]);
        let matches_7_1 = matches!(prefix, "eq" | "le" | "ge" | "ap");
        assert_eq!(
            ids.len(),
            usize::from(matches_7_1),
            "value-quantity={number}"
        );
    }
    // updating a resource moves it in the index
    put(&store, "a", "Patient", "p1", patient("Neu", "1970-05-01"));
    assert_eq!(
        search_ids(&store, "a", "Patient", &[("family", "mu")]),
        vec!["p2"]
    );
    assert_eq!(
        search_ids(&store, "a", "Patient", &[("family", "neu")]),
        vec!["p1"]
    );
}

#[test]
fn search_pages_with_cursor_and_total() {
    let (_d, store) = store();
    for i in 0..7 {
        put(
            &store,
            "a",
            "Patient",
            &format!("p{i}"),
            patient("Page", "1990"),
        );
    }
    let pairs = vec![
        ("family".to_string(), "page".to_string()),
        ("_count".to_string(), "3".to_string()),
    ];
    let mut q = parse_search(medicus_fhir::r4(), Some("Patient"), &pairs).unwrap();
    let mut r = store.read_session("a").unwrap();
    let mut ids = Vec::new();
    loop {
        let page = r.search(Some("Patient"), &q).unwrap();
        assert_eq!(page.total, Some(7));
        ids.extend(page.resources.into_iter().map(|x| x.id));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(ids.len(), 7);
}

#[test]
fn compartment_filter_follows_the_compartment_definition() {
    use medicus_store::search::CompartmentFilter;
    let (_d, store) = store();
    put(&store, "a", "Patient", "p1", patient("A", "1980"));
    put(&store, "a", "Patient", "p2", patient("B", "1980"));
    let obs = |pid: &str| json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": format!("Patient/{pid}")}});
    put(&store, "a", "Observation", "o1", obs("p1"));
    put(&store, "a", "Observation", "o2", obs("p2"));
    put(
        &store,
        "a",
        "Observation",
        "o3",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
    );
    put(
        &store,
        "a",
        "Organization",
        "org",
        json!({"resourceType": "Organization", "name": "Klinikum"}),
    );
    let run = |rt: &str, patients: Option<Vec<String>>| {
        let q = medicus_store::search::SearchQuery {
            count: 100,
            compartment: Some(CompartmentFilter { patients }),
            ..Default::default()
        };
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
    };
    assert_eq!(run("Observation", Some(vec!["p1".into()])), vec!["o1"]);
    assert_eq!(run("Observation", None), vec!["o1", "o2"]);
    assert_eq!(run("Patient", Some(vec!["p2".into()])), vec!["p2"]);
    assert!(run("Organization", None).is_empty());
    assert!(run("Observation", Some(vec![])).is_empty());
}

#[test]
fn checkpoints_commit_with_the_data() {
    let (_d, store) = store();
    {
        let mut w = store.write_session("a").unwrap();
        w.put("Patient", "p1", patient("A", "1980"), Precondition::None)
            .unwrap();
        w.set_checkpoint("import:x", "10").unwrap();
        // rolled back
    }
    assert_eq!(store.checkpoint("import:x").unwrap(), None);
    let mut w = store.write_session("a").unwrap();
    let body = patient("A", "1980");
    let entries = medicus_store::index::extract_entries(medicus_fhir::r4(), "Patient", &body);
    w.put_extracted("Patient", "p1", body, entries, Precondition::None)
        .unwrap();
    w.set_checkpoint("import:x", "20").unwrap();
    w.commit().unwrap();
    assert_eq!(store.checkpoint("import:x").unwrap().as_deref(), Some("20"));
    assert_eq!(
        search_ids(&store, "a", "Patient", &[("family", "a")]),
        vec!["p1"]
    );
}

#[test]
fn a_session_sees_its_own_index_rows_and_rewrites_them() {
    let (_d, store) = store();
    let q = |family: &str| {
        let pairs = vec![("family".to_string(), family.to_string())];
        parse_search(medicus_fhir::r4(), Some("Patient"), &pairs).unwrap()
    };
    let mut w = store.write_session("a").unwrap();
    w.put(
        "Patient",
        "p1",
        patient("Alpha", "1980"),
        Precondition::None,
    )
    .unwrap();
    assert_eq!(
        w.search(Some("Patient"), &q("alpha"))
            .unwrap()
            .resources
            .len(),
        1
    );
    // Rewritten in the same session: the first version's rows must not survive.
    w.put("Patient", "p1", patient("Beta", "1980"), Precondition::None)
        .unwrap();
    w.put(
        "Patient",
        "p2",
        patient("Alpha", "1990"),
        Precondition::None,
    )
    .unwrap();
    let ids = |page: medicus_store::search::SearchPage| {
        page.resources.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(w.search(Some("Patient"), &q("alpha")).unwrap()),
        vec!["p2"]
    );
    w.delete("Patient", "p2", Precondition::None).unwrap();
    w.commit().unwrap();
    assert!(search_ids(&store, "a", "Patient", &[("family", "alpha")]).is_empty());
    assert_eq!(
        search_ids(&store, "a", "Patient", &[("family", "beta")]),
        vec!["p1"]
    );
    assert_eq!(
        search_ids(&store, "a", "Patient", &[("birthdate", "1990")]),
        Vec::<String>::new()
    );
}
