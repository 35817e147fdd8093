//! The 22 real MII core data set test Bundles (shared/reference/mii-kds-testdata): each posts as a
//! transaction without error, every resource reads back as sent (apart from `meta`), and searches
//! over them find what the data says they should.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use common::{Fhir, Server, TestDir, strip_meta};
use serde_json::Value;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/reference/mii-kds-testdata"
);

struct TestBundle {
    name: String,
    bundle: Value,
}

fn load_bundles() -> Vec<TestBundle> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(DATA)
        .unwrap_or_else(|e| panic!("{DATA}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 22, "expected the 22 MII Bundles in {DATA}");
    paths
        .into_iter()
        .map(|p| TestBundle {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            bundle: serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap(),
        })
        .collect()
}

/// `Type/id` of an entry, from its request URL (PUT) or, failing that, its resource.
fn entry_key(entry: &Value) -> String {
    let url = entry["request"]["url"].as_str().unwrap_or_default();
    if entry["request"]["method"] == "PUT" && url.contains('/') && !url.contains('?') {
        return url.to_owned();
    }
    let r = &entry["resource"];
    format!(
        "{}/{}",
        r["resourceType"].as_str().unwrap(),
        r["id"].as_str().unwrap()
    )
}

/// What the server should store for an entry: references to other entries' fullUrls are
/// rewritten to the local `Type/id`.
fn expected_resource(entry: &Value, full_urls: &HashMap<String, String>) -> Value {
    fn rewrite(value: &mut Value, map: &HashMap<String, String>) {
        match value {
            Value::Object(obj) => {
                for (k, v) in obj.iter_mut() {
                    if k == "reference"
                        && let Some(target) = v.as_str().and_then(|s| map.get(s))
                    {
                        *v = Value::String(target.clone());
                        continue;
                    }
                    rewrite(v, map);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, map)),
            _ => {}
        }
    }
    let mut resource = entry["resource"].clone();
    rewrite(&mut resource, full_urls);
    resource
}

/// The first place where two JSON values differ, for readable failures.
fn first_diff(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => first_diff(x, y, &format!("{path}.{k}")),
                (Some(x), None) => Some(format!("{path}.{k}: missing, sent {x}")),
                (None, Some(y)) => Some(format!("{path}.{k}: not sent, got {y}")),
                (None, None) => None,
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_diff(x, y, &format!("{path}[{i}]"))),
        _ if expected == actual => None,
        _ => Some(format!("{path}: sent {expected}, got {actual}")),
    }
}

/// Post every Bundle; return the failures (empty when all is well) and what each `Type/id`
/// should hold now (the last version sent).
fn post_all(fhir: &Fhir, bundles: &[TestBundle]) -> (Vec<String>, BTreeMap<String, Value>) {
    let mut failures = Vec::new();
    let mut current = BTreeMap::new();
    for tb in bundles {
        let entries = tb.bundle["entry"].as_array().unwrap();
        let resp = fhir.post("", &tb.bundle);
        if resp.status != 200 || resp.body["type"] != "transaction-response" {
            let text: String = resp.text.chars().take(600).collect();
            failures.push(format!("{}: POST -> {} {text}", tb.name, resp.status));
            continue;
        }
        let answers = resp.body["entry"].as_array().map_or(0, Vec::len);
        if answers != entries.len() {
            failures.push(format!(
                "{}: {answers} response entries for {} entries",
                tb.name,
                entries.len()
            ));
        }
        let full_urls: HashMap<String, String> = entries
            .iter()
            .filter_map(|e| Some((e["fullUrl"].as_str()?.to_owned(), entry_key(e))))
            .collect();
        for (i, e) in entries.iter().enumerate() {
            let status = resp.body["entry"][i]["response"]["status"]
                .as_str()
                .unwrap_or("");
            if !(status.starts_with("200") || status.starts_with("201")) {
                failures.push(format!(
                    "{}: entry {i} ({}) answered {status:?}",
                    tb.name,
                    entry_key(e)
                ));
            }
            current.insert(entry_key(e), expected_resource(e, &full_urls));
        }
        // Read every resource of this Bundle back now: a later Bundle may overwrite shared ones.
        for e in entries {
            let key = entry_key(e);
            let expected = expected_resource(e, &full_urls);
            let got = fhir.get(&key);
            if got.status != 200 {
                failures.push(format!(
                    "{}: GET {key} -> {} {}",
                    tb.name, got.status, got.text
                ));
                continue;
            }
            if let Some(diff) = first_diff(&strip_meta(&expected), &strip_meta(&got.body), &key) {
                failures.push(format!("{}: {diff}", tb.name));
            }
        }
    }
    (failures, current)
}

#[track_caller]
fn assert_no_failures(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{what}: {} failures:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn all_bundles_post_and_read_back_equal() {
    let dir = TestDir::new();
    let server = Server::start(&dir);
    let fhir = server.fhir();
    let bundles = load_bundles();
    let (failures, current) = post_all(&fhir, &bundles);
    assert_no_failures("MII import", &failures);

    // Posting everything again is an update of each resource: still no error, same content.
    let (failures, _) = post_all(&fhir, &bundles);
    assert_no_failures("MII re-import", &failures);

    // Type counts agree with the distinct resources sent.
    let mut per_type: BTreeMap<&str, usize> = BTreeMap::new();
    for key in current.keys() {
        *per_type.entry(key.split('/').next().unwrap()).or_default() += 1;
    }
    let mut count_failures = Vec::new();
    for (rt, n) in &per_type {
        let resp = fhir.get(&format!("{rt}?_summary=count"));
        if resp.body["total"].as_u64() != Some(*n as u64) {
            count_failures.push(format!(
                "{rt}: sent {n} distinct, server counts {}",
                resp.body["total"]
            ));
        }
    }
    assert_no_failures("MII counts", &count_failures);
}

#[test]
fn meta_profile_and_security_are_kept() {
    let dir = TestDir::new();
    let server = Server::start(&dir);
    let fhir = server.fhir();
    let bundles = load_bundles();
    let (_, current) = post_all(&fhir, &bundles);
    let mut failures = Vec::new();
    for (key, sent) in &current {
        let got = fhir.get(key).body;
        for field in ["profile", "security", "tag"] {
            if sent["meta"][field] != got["meta"][field] {
                failures.push(format!(
                    "{key}: meta.{field} sent {} got {}",
                    sent["meta"][field], got["meta"][field]
                ));
            }
        }
    }
    assert_no_failures("MII meta", &failures);
}

/// R4 types whose `subject` search parameter is their `subject` element.
const HAS_SUBJECT_PARAM: [&str; 18] = [
    "CarePlan",
    "ClinicalImpression",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "ImagingStudy",
    "Media",
    "MedicationAdministration",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
    "QuestionnaireResponse",
    "RiskAssessment",
    "ServiceRequest",
    "Specimen",
    "Goal",
];

#[test]
fn searches_find_what_the_data_says() {
    let dir = TestDir::new();
    let server = Server::start(&dir);
    let fhir = server.fhir();
    let bundles = load_bundles();
    let (_, current) = post_all(&fhir, &bundles);

    let mut failures = Vec::new();
    // Expected from the data itself: every coded Condition/Observation/Procedure is found by
    // `code=system|code`, everything with a Patient subject by `subject=Patient/x`, every Patient
    // by its identifiers and gender, and resources by their own dates.
    let mut by_code: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by_subject: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, r) in &current {
        let (rt, id) = key.split_once('/').unwrap();
        if matches!(rt, "Condition" | "Observation" | "Procedure") {
            for c in r["code"]["coding"].as_array().into_iter().flatten() {
                if let (Some(s), Some(code)) = (c["system"].as_str(), c["code"].as_str()) {
                    by_code
                        .entry(format!("{rt}?code={s}|{code}"))
                        .or_default()
                        .insert(id.to_owned());
                }
            }
        }
        if let Some(subject) = r["subject"]["reference"].as_str()
            && subject.starts_with("Patient/")
            && HAS_SUBJECT_PARAM.contains(&rt)
        {
            by_subject
                .entry(format!("{rt}?subject={subject}"))
                .or_default()
                .insert(id.to_owned());
        }
    }
    // Exact as well: Patient identifiers and gender.
    let mut exact_patient: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Inclusion only (other resources may share or overlap the instant): every resource is found
    // by its own date.
    let mut by_date: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (key, r) in &current {
        let (rt, id) = key.split_once('/').unwrap();
        let mut date_query = |param: &str, prefix: &str, value: &Value| {
            if let Some(v) = value.as_str() {
                by_date
                    .entry(format!("{rt}?{param}={prefix}{v}"))
                    .or_default()
                    .insert(id.to_owned());
            }
        };
        match rt {
            "Patient" => {
                for i in r["identifier"].as_array().into_iter().flatten() {
                    if let (Some(s), Some(v)) = (i["system"].as_str(), i["value"].as_str()) {
                        let q = format!("Patient?identifier={s}|{v}");
                        exact_patient.entry(q).or_default().insert(id.to_owned());
                    }
                }
                if let Some(g) = r["gender"].as_str() {
                    let q = format!("Patient?gender={g}");
                    exact_patient.entry(q).or_default().insert(id.to_owned());
                }
                date_query("birthdate", "", &r["birthDate"]);
            }
            "Observation" => date_query("date", "", &r["effectiveDateTime"]),
            "Procedure" => date_query("date", "", &r["performedDateTime"]),
            "Condition" => date_query("recorded-date", "", &r["recordedDate"]),
            "Encounter" => date_query("date", "ge", &r["period"]["start"]),
            _ => {}
        }
    }
    assert!(
        by_code.len() > 50
            && by_subject.len() > 50
            && exact_patient.len() > 10
            && by_date.len() > 50,
        "the data should give many searches"
    );
    let search = |query: &str| -> BTreeSet<String> {
        let encoded = query.replace('+', "%2B").replace('#', "%23");
        fhir.search_ids(&format!("{encoded}&_count=1000"))
            .into_iter()
            .collect()
    };
    // Exact: only these Bundles are loaded, so nothing else may match.
    for (query, expected) in by_code.iter().chain(&by_subject).chain(&exact_patient) {
        let found = search(query);
        if &found != expected {
            let missing: Vec<_> = expected.difference(&found).collect();
            let extra: Vec<_> = found.difference(expected).collect();
            failures.push(format!("{query}: missing {missing:?}, extra {extra:?}"));
        }
    }
    for (query, expected) in &by_date {
        let found = search(query);
        let missing: Vec<_> = expected.difference(&found).collect();
        if !missing.is_empty() {
            failures.push(format!("{query}: missing {missing:?}"));
        }
    }
    assert_no_failures("MII searches", &failures);
}
