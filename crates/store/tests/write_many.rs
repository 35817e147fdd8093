//! `WriteSession::put_extracted_many` (the bulk importer's write): new resources, existing ones,
//! an id twice in one call and a bad item, in order and with the same results as one
//! `put_extracted` each, on SQLite and (in the PostgreSQL pass) on PostgreSQL, where new
//! resources are created by one statement.

use medicus_store::index::extract_entries;
use medicus_store::testing::TestStore;
use medicus_store::{ExtractedPut, Precondition, Store};
use serde_json::{Value, json};

fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family}]})
}

fn item(rt: &str, id: &str, body: Value) -> ExtractedPut {
    ExtractedPut {
        resource_type: rt.to_owned(),
        id: id.to_owned(),
        entries: extract_entries(medicus_fhir::r4(), rt, &body),
        body,
    }
}

fn family_search(store: &TestStore, family: &str) -> Vec<String> {
    let pairs = vec![("family".to_owned(), family.to_owned())];
    let q =
        medicus_store::search::parse_search(medicus_fhir::r4(), Some("Patient"), &pairs).unwrap();
    let mut ids: Vec<String> = store
        .read_session("a")
        .unwrap()
        .search(Some("Patient"), &q)
        .unwrap()
        .resources
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn many_puts_create_update_and_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::open(dir.path()).unwrap();
    store.create_tenant("a").unwrap();
    let mut w = store.write_session("a").unwrap();
    w.put("Patient", "old", patient("Before"), Precondition::None)
        .unwrap();
    w.commit().unwrap();

    let mut w = store.write_session("a").unwrap();
    let results = w
        .put_extracted_many(vec![
            item("Patient", "n1", patient("Alpha")),
            item("Patient", "old", patient("Alpha")),
            item("Patient", "n2", patient("Alpha")),
            // The same id again in the same call: a second version.
            item("Patient", "n1", patient("Gamma")),
            item("NotAType", "x", json!({"resourceType": "NotAType"})),
            item(
                "Observation",
                "n1",
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "t"}}),
            ),
        ])
        .unwrap();
    w.commit().unwrap();
    let summary: Vec<Option<(bool, i64)>> = results
        .iter()
        .map(|r| r.as_ref().ok().map(|o| (o.created, o.version.version)))
        .collect();
    assert_eq!(
        summary,
        [
            Some((true, 1)),
            Some((false, 2)),
            Some((true, 1)),
            Some((false, 2)),
            None,
            Some((true, 1)),
        ]
    );
    assert!(results[4].is_err());
    let mut r = store.read_session("a").unwrap();
    let n1 = r.read("Patient", "n1").unwrap().unwrap();
    assert_eq!(n1.version, 2);
    assert_eq!(n1.body.unwrap()["name"][0]["family"], "Gamma");
    assert_eq!(r.read("Patient", "old").unwrap().unwrap().version, 2);
    assert_eq!(r.read("Observation", "n1").unwrap().unwrap().version, 1);
    drop(r);
    // The index follows the last version of each: n1's first version left no rows behind.
    assert_eq!(family_search(&store, "alpha"), ["n2", "old"]);
    assert_eq!(family_search(&store, "gamma"), ["n1"]);
    assert!(family_search(&store, "before").is_empty());
    // History has both versions of n1, in order.
    let changes = store.changes(0, 100).unwrap();
    let n1_versions: Vec<i64> = changes
        .iter()
        .filter(|c| c.resource_type == "Patient" && c.id == "n1")
        .map(|c| c.version)
        .collect();
    assert_eq!(n1_versions, [1, 2]);
}
