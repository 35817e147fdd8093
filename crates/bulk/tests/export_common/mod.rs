//! Shared helpers of the export tests: a store with data, running an export job, reading its
//! files back.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use medicus_bulk::export::{ExportLevel, ExportRequest, ExportSettings, run};
use medicus_bulk::jobs::{Job, JobKind, JobRegistry, JobState};
use medicus_store::search::parse_search;
use medicus_store::testing::TestStore;
use medicus_store::{Precondition, Store};
use serde_json::{Value, json};

pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub jobs: JobRegistry,
    _test_store: TestStore,
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let test_store = TestStore::open(&dir.path().join("db")).unwrap();
        let store = test_store.store.clone();
        store.create_tenant("t").unwrap();
        store.create_tenant("fresh").unwrap();
        let jobs = JobRegistry::new(dir.path().join("bulk"));
        Fixture {
            store,
            jobs,
            _test_store: test_store,
            _dir: dir,
        }
    }

    pub fn put_all(&self, tenant: &str, resources: &[(String, String, Value)]) {
        let mut s = self.store.write_session(tenant).unwrap();
        for (rt, id, body) in resources {
            s.put(rt, id, body.clone(), Precondition::None).unwrap();
        }
        s.commit().unwrap();
    }

    /// Runs an export of tenant `t` to completion; returns the job and its manifest.
    pub fn export(
        &self,
        level: ExportLevel,
        params: &[(&str, &str)],
    ) -> (std::sync::Arc<Job>, Value) {
        self.export_with(level, params, |_| {})
    }

    pub fn export_with(
        &self,
        level: ExportLevel,
        params: &[(&str, &str)],
        tune: impl FnOnce(&mut ExportSettings),
    ) -> (std::sync::Arc<Job>, Value) {
        let pairs: Vec<(String, String)> = params
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let request = ExportRequest::parse(medicus_fhir::r4(), level, &pairs).unwrap();
        let job = self
            .jobs
            .create("t", JobKind::Export, "http://h/fhir/t/$export")
            .unwrap();
        let mut settings = ExportSettings::new(format!("http://h/fhir/t/$export-file/{}", job.id));
        tune(&mut settings);
        run(&*self.store, &job, &request, &settings);
        match job.state() {
            JobState::Completed { manifest } => (job, manifest),
            other => panic!("export did not complete: {other:?}"),
        }
    }

    /// Current resources of a tenant by `Type/id`, through the ordinary search API.
    pub fn stored(&self, tenant: &str) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let mut s = self.store.read_session(tenant).unwrap();
        for rt in medicus_fhir::r4().resource_types() {
            let mut q = parse_search(medicus_fhir::r4(), Some(rt), &[]).unwrap();
            q.count = 1000;
            q.total = false;
            loop {
                let page = s.search(Some(rt), &q).unwrap();
                for r in page.resources {
                    out.insert(format!("{rt}/{}", r.id), r.body.unwrap());
                }
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
        }
        out
    }
}

/// Every resource of a finished export, by `Type/id`, read from the files the manifest lists;
/// checks that each line is one JSON resource of the file's type and that counts match.
pub fn exported(job: &Job, manifest: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for o in manifest["output"].as_array().unwrap() {
        let url = o["url"].as_str().unwrap();
        let name = url.rsplit('/').next().unwrap();
        let text = std::fs::read_to_string(job.dir.join(name)).unwrap();
        let mut lines = 0;
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["resourceType"], o["type"]);
            let key = format!(
                "{}/{}",
                o["type"].as_str().unwrap(),
                v["id"].as_str().unwrap()
            );
            assert!(out.insert(key, v).is_none(), "duplicate in export");
            lines += 1;
        }
        assert!(text.ends_with('\n'));
        assert_eq!(o["count"], lines);
    }
    out
}

pub fn ids_of(map: &BTreeMap<String, Value>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

pub fn file_exists(dir: &Path, name: &str) -> bool {
    dir.join(name).is_file()
}

/// A small clinical data set: `n` patients with an encounter, two observations and a condition
/// each, plus an organization and an observation without a subject.
pub fn clinical(n: usize) -> Vec<(String, String, Value)> {
    let mut out = vec![
        (
            "Organization".into(),
            "org".into(),
            json!({"resourceType": "Organization", "name": "Klinikum"}),
        ),
        (
            "Observation".into(),
            "orphan".into(),
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "no subject"}}),
        ),
    ];
    for i in 0..n {
        let pid = format!("p{i}");
        out.push((
            "Patient".into(),
            pid.clone(),
            json!({"resourceType": "Patient", "gender": if i % 2 == 0 { "female" } else { "male" },
                   "birthDate": format!("19{:02}-01-01", 50 + i % 40), "managingOrganization": {"reference": "Organization/org"},
                   "name": [{"family": format!("Fam{i}"), "given": ["Ünal", "Zoë"]}]}),
        ));
        out.push((
            "Encounter".into(),
            format!("e{i}"),
            json!({"resourceType": "Encounter", "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                   "subject": {"reference": format!("Patient/{pid}")}}),
        ));
        for (k, (code, status)) in [
            ("4548-4", "final"),
            ("718-7", if i % 3 == 0 { "amended" } else { "final" }),
        ]
        .into_iter()
        .enumerate()
        {
            out.push((
                "Observation".into(),
                format!("o{i}-{k}"),
                json!({"resourceType": "Observation", "status": status,
                       "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                       "subject": {"reference": format!("Patient/{pid}")},
                       "encounter": {"reference": format!("Encounter/e{i}")},
                       "valueQuantity": {"value": 5.5 + i as f64, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}),
            ));
        }
        out.push((
            "Condition".into(),
            format!("c{i}"),
            json!({"resourceType": "Condition",
                   "code": {"coding": [{"system": "http://fhir.de/CodeSystem/bfarm/icd-10-gm", "code": "E11.9"}]},
                   "subject": {"reference": format!("Patient/{pid}")}}),
        ));
    }
    out
}

/// A resource without the server-owned `meta.versionId` / `meta.lastUpdated` (and without an
/// empty `meta` left behind), for comparing across tenants.
pub fn without_server_meta(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            v.as_object_mut().unwrap().remove("meta");
        }
    }
    v
}
