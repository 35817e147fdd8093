//! `ReadSession::search_raw`: the stored JSON bytes of current versions, paged by key, with the
//! same criteria, compartment and tenant filtering as `search`.

use medicus_store::search::{CompartmentFilter, parse_search};
use medicus_store::{Precondition, SqliteStore, Store};
use serde_json::{Value, json};

fn put(store: &SqliteStore, tenant: &str, rt: &str, id: &str, body: Value) {
    let mut s = store.write_session(tenant).unwrap();
    s.put(rt, id, body, Precondition::None).unwrap();
    s.commit().unwrap();
}

#[test]
fn raw_pages_equal_parsed_search_and_respect_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store.create_tenant("a").unwrap();
    store.create_tenant("b").unwrap();
    for i in 0..7 {
        put(
            &store,
            "a",
            "Patient",
            &format!("p{i}"),
            json!({"resourceType": "Patient", "gender": if i % 2 == 0 { "female" } else { "male" }}),
        );
        put(
            &store,
            "a",
            "Observation",
            &format!("o{i}"),
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": format!("Patient/p{i}")}}),
        );
    }
    put(
        &store,
        "b",
        "Patient",
        "other",
        json!({"resourceType": "Patient"}),
    );
    // A deleted resource is not returned.
    let mut w = store.write_session("a").unwrap();
    w.delete("Patient", "p6", Precondition::None).unwrap();
    w.commit().unwrap();

    let mut s = store.read_session("a").unwrap();
    let mut q = parse_search(medicus_fhir::r4(), Some("Patient"), &[]).unwrap();
    q.count = 2;
    q.total = false;
    let mut seen = Vec::new();
    loop {
        let page = s.search_raw(Some("Patient"), &q).unwrap();
        for r in &page.resources {
            let body: Value = serde_json::from_slice(&r.json).unwrap();
            let stored = s.read("Patient", &r.id).unwrap().unwrap().body.unwrap();
            assert_eq!(body, stored);
            assert!(!r.json.contains(&b'\n'));
            assert!(seen.last().is_none_or(|(k, _)| *k < r.key));
            seen.push((r.key, r.id.clone()));
        }
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids, ["p0", "p1", "p2", "p3", "p4", "p5"]);

    let pairs = vec![("gender".to_string(), "female".to_string())];
    let q = parse_search(medicus_fhir::r4(), Some("Patient"), &pairs).unwrap();
    let ids: Vec<String> = s
        .search_raw(Some("Patient"), &q)
        .unwrap()
        .resources
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["p0", "p2", "p4"]);

    let mut q = parse_search(medicus_fhir::r4(), Some("Observation"), &[]).unwrap();
    q.compartment = Some(CompartmentFilter {
        patients: Some(vec!["p1".into(), "p3".into()]),
    });
    let ids: Vec<String> = s
        .search_raw(Some("Observation"), &q)
        .unwrap()
        .resources
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["o1", "o3"]);

    let q = parse_search(medicus_fhir::r4(), Some("NoSuchType"), &[]).unwrap();
    assert!(
        s.search_raw(Some("NoSuchType"), &q)
            .unwrap()
            .resources
            .is_empty()
    );
    let mut other = store.read_session("b").unwrap();
    let q = parse_search(medicus_fhir::r4(), Some("Patient"), &[]).unwrap();
    let ids: Vec<String> = other
        .search_raw(Some("Patient"), &q)
        .unwrap()
        .resources
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["other"]);
}

#[test]
fn scan_raw_streams_every_match_in_key_order_and_stops_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store.create_tenant("a").unwrap();
    for i in 0..2500 {
        put(
            &store,
            "a",
            "Observation",
            &format!("o{i}"),
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": format!("Patient/p{}", i % 3)}}),
        );
    }
    let mut s = store.read_session("a").unwrap();
    let mut q = parse_search(medicus_fhir::r4(), Some("Observation"), &[]).unwrap();
    q.compartment = Some(CompartmentFilter {
        patients: Some(vec!["p0".into(), "p2".into()]),
    });
    let mut keys = Vec::new();
    s.scan_raw(Some("Observation"), &q, &mut |r| {
        let body: Value = serde_json::from_slice(&r.json).unwrap();
        assert_eq!(body["id"], r.id.as_str());
        assert_ne!(body["subject"]["reference"], "Patient/p1");
        keys.push(r.key);
        Ok(true)
    })
    .unwrap();
    assert_eq!(keys.len(), 2500 - 833);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    // Continuing after a key, and stopping early.
    q.cursor = Some(keys[99]);
    let mut seen = 0;
    s.scan_raw(Some("Observation"), &q, &mut |r| {
        assert!(r.key > keys[99]);
        seen += 1;
        Ok(seen < 10)
    })
    .unwrap();
    assert_eq!(seen, 10);
}
