//! `$export` engine on a real SqliteStore: levels, `_type`, `_since`, `_typeFilter`, file
//! splitting, cancellation, and the round trip export → import into a fresh tenant → compare.

mod export_common;

use export_common::*;
use medicus_bulk::export::{
    ExportError, ExportLevel, ExportRequest, ExportSettings, export, parse_instant,
};
use medicus_bulk::import::{ImportOptions, Importer, NoProgress};
use medicus_bulk::jobs::{JobKind, JobState};
use medicus_store::{Precondition, Store};
use serde_json::{Value, json};
use std::sync::Arc;

#[test]
fn system_export_equals_the_stored_resources() {
    let f = Fixture::new();
    f.put_all("t", &clinical(20));
    // Another tenant's data never leaks into the export.
    f.put_all(
        "fresh",
        &[(
            "Patient".into(),
            "intruder".into(),
            json!({"resourceType": "Patient"}),
        )],
    );
    let (job, manifest) = f.export(ExportLevel::System, &[]);
    let got = exported(&job, &manifest);
    let stored = f.stored("t");
    assert_eq!(got.len(), 20 * 5 + 2);
    assert_eq!(got, stored);
    assert_eq!(manifest["requiresAccessToken"], true);
    assert_eq!(manifest["request"], "http://h/fhir/t/$export");
    let t = parse_instant(manifest["transactionTime"].as_str().unwrap()).unwrap();
    assert!(
        stored
            .values()
            .all(|v| { parse_instant(v["meta"]["lastUpdated"].as_str().unwrap()).unwrap() <= t })
    );
    let types: Vec<&str> = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    // Types come in the registry's order; empty types have no file.
    let mut sorted = types.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "Condition",
            "Encounter",
            "Observation",
            "Organization",
            "Patient"
        ]
    );
    assert!(
        manifest["output"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://h/fhir/t/$export-file/{}/", job.id))
    );
}

#[test]
fn type_and_since_chain_exports_without_gaps() {
    let f = Fixture::new();
    f.put_all("t", &clinical(5));
    let (_, first) = f.export(ExportLevel::System, &[("_type", "Patient,Observation")]);
    let since = first["transactionTime"].as_str().unwrap().to_owned();
    // Changes after the first export: one update, one new patient, one new condition.
    f.put_all(
        "t",
        &[
            (
                "Patient".into(),
                "p1".into(),
                json!({"resourceType": "Patient", "gender": "other"}),
            ),
            (
                "Patient".into(),
                "p99".into(),
                json!({"resourceType": "Patient"}),
            ),
            (
                "Condition".into(),
                "c99".into(),
                json!({"resourceType": "Condition", "subject": {"reference": "Patient/p99"}}),
            ),
        ],
    );
    let (job, second) = f.export(
        ExportLevel::System,
        &[("_type", "Patient,Observation"), ("_since", &since)],
    );
    let got = exported(&job, &second);
    assert_eq!(ids_of(&got), ["Patient/p1", "Patient/p99"]);
    assert_eq!(got["Patient/p1"]["gender"], "other");
    let (job, all) = f.export(ExportLevel::System, &[("_type", "Patient,Observation")]);
    let got = exported(&job, &all);
    // 6 patients, 10 observations and the one without a subject.
    assert_eq!(got.len(), 6 + 10 + 1);
    assert!(
        got.keys()
            .all(|k| k.starts_with("Patient/") || k.starts_with("Observation/"))
    );
}

#[test]
fn type_filters_are_ored_and_deduplicated() {
    let f = Fixture::new();
    f.put_all("t", &clinical(9));
    let (job, manifest) = f.export(
        ExportLevel::System,
        &[
            ("_type", "Observation,Patient"),
            // o{i}-1 is amended for i in 0, 3, 6; code 718-7 matches all o{i}-1: the union is
            // every o{i}-1 once, plus o{i}-0 never.
            (
                "_typeFilter",
                "Observation?status=amended,Observation?code=http://loinc.org|718-7",
            ),
            ("_typeFilter", "Patient?gender=female"),
        ],
    );
    let got = exported(&job, &manifest);
    let obs: Vec<&str> = got
        .keys()
        .filter(|k| k.starts_with("Observation/"))
        .map(String::as_str)
        .collect();
    assert_eq!(obs.len(), 9);
    assert!(obs.iter().all(|k| k.ends_with("-1")));
    let patients = got.keys().filter(|k| k.starts_with("Patient/")).count();
    assert_eq!(patients, 5);

    let (job, manifest) = f.export(
        ExportLevel::System,
        &[("_typeFilter", "Observation?status=amended")],
    );
    let got = exported(&job, &manifest);
    // Types without a filter are exported whole.
    assert_eq!(got.keys().filter(|k| k.starts_with("Patient/")).count(), 9);
    assert_eq!(
        got.keys().filter(|k| k.starts_with("Observation/")).count(),
        3
    );
}

#[test]
fn overlapping_type_filters_merge_across_many_pages() {
    let f = Fixture::new();
    f.put_all("t", &clinical(30));
    let (job, manifest) = f.export_with(
        ExportLevel::Patient,
        &[
            ("_type", "Observation"),
            (
                "_typeFilter",
                "Observation?status=amended,Observation?code=718-7,Observation?code=4548-4",
            ),
        ],
        // Ten resources per query page: every filter needs several pages.
        |s| s.compartment_page_size = 3,
    );
    let got = exported(&job, &manifest);
    assert_eq!(got.len(), 60);
    assert_eq!(got, {
        let mut all = f.stored("t");
        all.retain(|k, _| k.starts_with("Observation/") && k != "Observation/orphan");
        all
    });
}

#[test]
fn patient_level_is_the_patient_compartment() {
    let f = Fixture::new();
    f.put_all("t", &clinical(4));
    let (job, manifest) = f.export(ExportLevel::Patient, &[]);
    let got = exported(&job, &manifest);
    assert!(!got.contains_key("Organization/org"));
    assert!(!got.contains_key("Observation/orphan"));
    assert_eq!(got.len(), 4 * 5);
    let (job, manifest) = f.export(ExportLevel::Patient, &[("_type", "Condition")]);
    assert_eq!(exported(&job, &manifest).len(), 4);
}

#[test]
fn group_level_exports_the_members_compartments() {
    let f = Fixture::new();
    f.put_all("t", &clinical(6));
    f.put_all(
        "t",
        &[(
            "Group".into(),
            "g".into(),
            json!({"resourceType": "Group", "type": "person", "actual": true, "member": [
                {"entity": {"reference": "Patient/p1"}},
                {"entity": {"reference": "Patient/p4"}},
                {"entity": {"reference": "Patient/p5"}, "inactive": true},
                {"entity": {"reference": "Organization/org"}},
            ]}),
        )],
    );
    let (job, manifest) = f.export(ExportLevel::Group("g".into()), &[]);
    let got = exported(&job, &manifest);
    assert_eq!(
        ids_of(&got),
        [
            "Condition/c1",
            "Condition/c4",
            "Encounter/e1",
            "Encounter/e4",
            // The Group is in its members' compartments (Group.member).
            "Group/g",
            "Observation/o1-0",
            "Observation/o1-1",
            "Observation/o4-0",
            "Observation/o4-1",
            "Patient/p1",
            "Patient/p4",
        ]
    );
    let (job, manifest) = f.export(
        ExportLevel::Group("g".into()),
        &[
            ("_type", "Observation"),
            ("_typeFilter", "Observation?code=718-7"),
        ],
    );
    assert_eq!(
        ids_of(&exported(&job, &manifest)),
        ["Observation/o1-1", "Observation/o4-1"]
    );

    let job = f.jobs.create("t", JobKind::Export, "x").unwrap();
    let request = ExportRequest::new(ExportLevel::Group("nope".into()));
    let err = export(&*f.store, &job, &request, &ExportSettings::new("http://h")).unwrap_err();
    assert!(matches!(err, ExportError::UnknownGroup(_)));
}

#[test]
fn large_types_are_split_into_parts() {
    let f = Fixture::new();
    f.put_all("t", &clinical(25));
    let (job, manifest) = f.export_with(ExportLevel::System, &[("_type", "Patient")], |s| {
        s.page_size = 7;
        s.limits.max_resources = 10;
    });
    let names: Vec<&str> = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["url"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Patient-1.ndjson", "Patient-2.ndjson", "Patient-3.ndjson"]
    );
    assert!(!file_exists(&job.dir, "Patient.ndjson"));
    assert_eq!(exported(&job, &manifest).len(), 25);
}

#[test]
fn a_cancelled_job_stops_and_leaves_no_files() {
    let f = Fixture::new();
    f.put_all("t", &clinical(3));
    let job = f.jobs.create("t", JobKind::Export, "x").unwrap();
    assert!(f.jobs.cancel("t", &job.id));
    let request = ExportRequest::new(ExportLevel::System);
    let err = export(&*f.store, &job, &request, &ExportSettings::new("http://h")).unwrap_err();
    assert!(matches!(err, ExportError::Cancelled));
    medicus_bulk::export::run(&*f.store, &job, &request, &ExportSettings::new("http://h"));
    assert_eq!(job.state(), JobState::Cancelled);
    assert!(!job.dir.exists());
    assert!(f.jobs.get("t", &job.id).is_none());
}

#[test]
fn deleted_resources_are_not_exported() {
    let f = Fixture::new();
    f.put_all("t", &clinical(2));
    let mut s = f.store.write_session("t").unwrap();
    s.delete("Patient", "p0", Precondition::None).unwrap();
    s.commit().unwrap();
    let (job, manifest) = f.export(ExportLevel::System, &[("_type", "Patient")]);
    assert_eq!(ids_of(&exported(&job, &manifest)), ["Patient/p1"]);
}

/// Export a tenant, import the NDJSON files into a fresh tenant with the bulk importer, and
/// compare: the resources are the same apart from the server-owned `meta.versionId` /
/// `meta.lastUpdated`.
#[test]
fn round_trip_into_a_fresh_tenant() {
    let f = Fixture::new();
    f.put_all("t", &clinical(30));
    f.put_all(
        "t",
        &[(
            "Patient".into(),
            "meta".into(),
            serde_json::from_str(
                r#"{"resourceType": "Patient", "meta": {"profile": ["http://example.org/p"], "tag": [{"code": "x"}]},
                    "extension": [{"url": "http://example.org/e", "valueDecimal": 1.10}]}"#,
            )
            .unwrap(),
        )],
    );
    // Small parts, so the import also reads a type split over several files.
    let (job, manifest) = f.export_with(ExportLevel::System, &[], |s| {
        s.limits.max_resources = 40;
    });
    assert!(file_exists(&job.dir, "Observation-2.ndjson"));
    let store: Arc<dyn Store> = f.store.clone();
    let importer = Importer::new(store, "fresh", ImportOptions::default());
    let summary = importer
        .import_paths(std::slice::from_ref(&job.dir), &NoProgress)
        .unwrap();
    assert_eq!(summary.failed, 0, "{:?}", summary.errors);
    assert_eq!(summary.resources, exported(&job, &manifest).len() as u64);

    let original: Vec<(String, Value)> = f
        .stored("t")
        .into_iter()
        .map(|(k, v)| (k, without_server_meta(v)))
        .collect();
    let copy: Vec<(String, Value)> = f
        .stored("fresh")
        .into_iter()
        .map(|(k, v)| (k, without_server_meta(v)))
        .collect();
    assert_eq!(original.len(), 30 * 5 + 3);
    assert_eq!(original, copy);
    // Decimal precision survives (1.10 stays 1.10).
    let p = &copy.iter().find(|(k, _)| k == "Patient/meta").unwrap().1;
    assert_eq!(p["extension"][0]["valueDecimal"].to_string(), "1.10");
}
