//! Quantity search across UCUM units (FHIR R4 §3.1.1.4.6): stored values and search values in
//! the UCUM system are compared in canonical units, through a real SQLite store.

use medicus_store::search::parse_search;
use medicus_store::testing::TestStore;
use medicus_store::{Precondition, Store};
use serde_json::{Value, json};

const UCUM: &str = "http://unitsofmeasure.org";

fn observation(value: f64, system: Option<&str>, code: &str) -> Value {
    let mut quantity = json!({"value": value, "unit": code, "code": code});
    if let Some(s) = system {
        quantity["system"] = json!(s);
    }
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "valueQuantity": quantity
    })
}

fn put(store: &dyn Store, id: &str, body: Value) {
    let mut s = store.write_session("a").unwrap();
    s.put("Observation", id, body, Precondition::None).unwrap();
    s.commit().unwrap();
}

fn search_ids(store: &dyn Store, value: &str) -> Vec<String> {
    let pairs = vec![("value-quantity".to_owned(), value.to_owned())];
    let q = parse_search(medicus_fhir::r4(), Some("Observation"), &pairs).unwrap();
    let mut s = store.read_session("a").unwrap();
    let mut ids: Vec<String> = s
        .search(Some("Observation"), &q)
        .unwrap()
        .resources
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

fn store() -> (tempfile::TempDir, TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::open(dir.path()).unwrap();
    store.create_tenant("a").unwrap();
    let rows: &[(&str, f64, Option<&str>, &str)] = &[
        // mass concentration: 1000, 1200 and 800 g/m3
        ("g1", 100.0, Some(UCUM), "mg/dL"),
        ("g2", 1.2, Some(UCUM), "g/L"),
        ("g3", 80.0, Some(UCUM), "mg/dL"),
        // substance concentration: 5.5 and 6.1 mol/m3
        ("m1", 5.5, Some(UCUM), "mmol/L"),
        ("m2", 6100.0, Some(UCUM), "umol/L"),
        // cell counts: 4.2e12 and 7.5e12 per m3
        ("c1", 4.2, Some(UCUM), "10*9/L"),
        ("c2", 7500.0, Some(UCUM), "/uL"),
        // pressure: 15998.64 and 18000 Pa
        ("p1", 120.0, Some(UCUM), "mm[Hg]"),
        ("p2", 18.0, Some(UCUM), "kPa"),
        ("y1", 5.0, Some(UCUM), "%"),
        // not convertible (affine), no system, another system: no canonical rows
        ("t1", 37.0, Some(UCUM), "Cel"),
        ("x1", 100.0, None, "mg/dL"),
        ("z1", 100.0, Some("http://other.org/units"), "mg/dL"),
    ];
    for (id, value, system, code) in rows {
        put(&store, id, observation(*value, *system, code));
    }
    (dir, store)
}

fn ucum(prefix_and_number: &str, code: &str) -> String {
    format!("{prefix_and_number}|{UCUM}|{code}")
}

#[test]
fn quantities_match_across_units() {
    let (_d, store) = store();
    let cases: Vec<(String, &[&str])> = vec![
        // 1.0 g/L stands for [0.95, 1.05) g/L: only 100 mg/dL
        (ucum("1.0", "g/L"), &["g1"]),
        (ucum("100", "mg/dL"), &["g1"]),
        (ucum("0.1", "kg/L"), &[]),
        (ucum("1200", "mg/L"), &["g2"]),
        (ucum("5.5", "mmol/L"), &["m1"]),
        (ucum("5500", "umol/L"), &["m1"]),
        (ucum("6.1", "mmol/L"), &["m2"]),
        (ucum("6.1", "mol/m3"), &["m2"]),
        (ucum("4.2", "10*3/uL"), &["c1"]),
        (ucum("7.5", "10*9/L"), &["c2"]),
        (ucum("120", "mm[Hg]"), &["p1"]),
        (ucum("16", "kPa"), &["p1"]),
        (ucum("135", "mm[Hg]"), &["p2"]),
        (ucum("0.05", "1"), &["y1"]),
        (ucum("50", "[ppth]"), &["y1"]),
        // Mass and substance never convert into each other, nor counts into either.
        // (each of these equals a stored value numerically in canonical units).
        (ucum("5.5", "mg/L"), &[]),
        (ucum("1.0", "mol/L"), &[]),
        (ucum("4.2", "Gmol/L"), &[]),
        // OR-ed values, all convertible
        (
            format!("{},{}", ucum("1.0", "g/L"), ucum("5500", "umol/L")),
            &["g1", "m1"],
        ),
    ];
    for (value, expected) in &cases {
        assert_eq!(search_ids(&store, value), expected.to_vec(), "{value}");
    }
}

#[test]
fn comparison_prefixes_work_on_converted_values() {
    let (_d, store) = store();
    let cases: &[(&str, &[&str])] = &[
        // mass concentrations stored: g1 1000, g2 1200, g3 800 g/m3; search 1.0 g/L = [950, 1050)
        ("eq1.0", &["g1"]),
        ("ne1.0", &["g2", "g3"]),
        ("gt1.0", &["g2"]),
        ("lt1.0", &["g3"]),
        ("ge1.0", &["g1", "g2"]),
        ("le1.0", &["g1", "g3"]),
        ("sa1.0", &["g2"]),
        ("eb1.0", &["g3"]),
        ("ap1.0", &["g1"]),
        ("ap1.15", &["g2"]),
        ("gt0.7", &["g1", "g2", "g3"]),
        ("gt1.2", &[]),
    ];
    for (number, expected) in cases {
        let value = ucum(number, "g/L");
        assert_eq!(search_ids(&store, &value), expected.to_vec(), "{value}");
    }
    // The same comparisons written in other units.
    assert_eq!(search_ids(&store, &ucum("gt100", "mg/dL")), ["g2"]);
    assert_eq!(search_ids(&store, &ucum("lt1000", "mg/L")), ["g3"]);
    assert_eq!(search_ids(&store, &ucum("ge0.12", "g/dL")), ["g2"]);
    assert_eq!(search_ids(&store, &ucum("gt5.5", "mmol/L")), ["m2"]);
    assert_eq!(search_ids(&store, &ucum("lt6000", "umol/L")), ["m1"]);
    assert_eq!(search_ids(&store, &ucum("ge4.2", "10*9/L")), ["c1", "c2"]);
    // 120 mm[Hg] is 15.99864 kPa, just below 16
    assert_eq!(search_ids(&store, &ucum("gt16", "kPa")), ["p2"]);
    assert_eq!(search_ids(&store, &ucum("lt16", "kPa")), ["p1"]);
    assert_eq!(search_ids(&store, &ucum("gt4", "%")), ["y1"]);
}

#[test]
fn unconvertible_or_systemless_values_match_units_as_written() {
    let (_d, store) = store();
    // No system: the code matches as written in any system, without conversion.
    assert_eq!(search_ids(&store, "100||mg/dL"), ["g1", "x1", "z1"]);
    assert_eq!(search_ids(&store, "1.0||g/L"), Vec::<String>::new());
    assert_eq!(
        search_ids(&store, "100|http://other.org/units|mg/dL"),
        ["z1"]
    );
    // Affine units do not convert; they still match exactly.
    assert_eq!(search_ids(&store, &ucum("37", "Cel")), ["t1"]);
    assert_eq!(search_ids(&store, &ucum("310", "K")), Vec::<String>::new());
    // One unconvertible value keeps the whole criterion on units as written.
    let mixed = format!("{},{}", ucum("1.0", "g/L"), ucum("37", "Cel"));
    assert_eq!(search_ids(&store, &mixed), ["t1"]);
    // A number without a unit still compares the values as stored.
    assert_eq!(search_ids(&store, "1.2"), ["g2"]);
}

#[test]
fn canonical_rows_follow_updates_and_deletes() {
    let (_d, store) = store();
    assert_eq!(search_ids(&store, &ucum("1.0", "g/L")), ["g1"]);
    put(&store, "g1", observation(2.0, Some(UCUM), "g/L"));
    assert_eq!(
        search_ids(&store, &ucum("1.0", "g/L")),
        Vec::<String>::new()
    );
    assert_eq!(search_ids(&store, &ucum("200", "mg/dL")), ["g1"]);
    let mut s = store.write_session("a").unwrap();
    s.delete("Observation", "g1", Precondition::None).unwrap();
    s.commit().unwrap();
    assert_eq!(
        search_ids(&store, &ucum("200", "mg/dL")),
        Vec::<String>::new()
    );
}
