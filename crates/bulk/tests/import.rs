//! Import integration tests on a real SQLite store: a 10k-resource synthetic set with corrupted
//! lines, gzip and truncated gzip, Bundles with `urn:uuid` and conditional references, resuming
//! after an interruption, and tenant isolation.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use medicus_bulk::import::{
    ImportError, ImportOptions, ImportSummary, Importer, NoProgress, Progress, ProgressSink,
};
use medicus_store::api::{HistoryQuery, HistoryScope, Store};
use medicus_store::search::parse_search;
use medicus_store::testing::TestStore;
use serde_json::{Value, json};
use tempfile::TempDir;

struct Env {
    store: Arc<dyn Store>,
    _test_store: TestStore,
    dir: TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let test_store = TestStore::open(&dir.path().join("data")).unwrap();
    let store = test_store.store.clone();
    store.create_tenant("t1").unwrap();
    Env {
        store,
        _test_store: test_store,
        dir,
    }
}

impl Env {
    fn input(&self) -> PathBuf {
        let p = self.dir.path().join("in");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn importer(&self, tenant: &str, options: ImportOptions) -> Importer {
        Importer::new(self.store.clone(), tenant, options)
    }

    fn import(&self, paths: &[PathBuf]) -> ImportSummary {
        self.importer("t1", ImportOptions::default())
            .import_paths(paths, &NoProgress)
            .unwrap()
    }

    fn count(&self, tenant: &str, rt: &str, query: &[(&str, &str)]) -> u64 {
        let mut params: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        params.push(("_count".into(), "0".into()));
        let q = parse_search(medicus_fhir::r4(), Some(rt), &params).unwrap();
        let mut s = self.store.read_session(tenant).unwrap();
        s.search(Some(rt), &q).unwrap().total.unwrap()
    }

    fn versions(&self, tenant: &str) -> u64 {
        let mut s = self.store.read_session(tenant).unwrap();
        let q = HistoryQuery {
            count: 1,
            ..HistoryQuery::default()
        };
        s.history(HistoryScope::System, &q).unwrap().total
    }

    fn read(&self, rt: &str, id: &str) -> Option<Value> {
        let mut s = self.store.read_session("t1").unwrap();
        s.read(rt, id).unwrap().and_then(|v| v.body)
    }
}

/// About 10,000 resources of 100 synthetic patients, one NDJSON file per type.
fn synth(dir: &Path, patients: u64) -> u64 {
    let config = medicus_synth::GeneratorConfig {
        patients,
        hospitals: 2,
        ..Default::default()
    };
    medicus_synth::write_ndjson(&config, dir, |_| {})
        .unwrap()
        .resources
        + medicus_synth::Generator::new(config)
            .unwrap()
            .reference_resources()
            .len() as u64
}

fn synth_total(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count() as u64
        })
        .sum()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn ten_thousand_resources_with_corrupted_lines() {
    let env = env();
    let input = env.input();
    synth(&input, 100);
    let total = synth_total(&input);
    assert!(total >= 9000, "synthetic set too small: {total}");
    // Corrupt the observations at known lines.
    let obs_path = input.join("Observation.ndjson");
    let text = std::fs::read(&obs_path).unwrap();
    let mut lines: Vec<Vec<u8>> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let bad: [(usize, &[u8], &str); 4] = [
        (
            10,
            br#"{"resourceType": "Observation", "status": "#,
            "invalid JSON",
        ),
        (
            200,
            b"{\"resourceType\":\"Patient\",\"id\":\"utf\",\"name\":[{\"family\":\"M\xfcller\"}]}",
            "invalid UTF-8",
        ),
        (
            300,
            br#"{"resourceType":"Patient","id":"bad-gender","gender":12}"#,
            "Patient.gender",
        ),
        (
            400,
            br#"{"resourceType":"Unicorn","id":"u1"}"#,
            "unknown resourceType",
        ),
    ];
    for (at, line, _) in bad {
        lines.insert(at - 1, line.to_vec());
    }
    std::fs::write(&obs_path, lines.join(&b'\n')).unwrap();

    let report = env.dir.path().join("report.ndjson");
    let options = ImportOptions {
        report_path: Some(report.clone()),
        batch_size: 1000,
        ..ImportOptions::default()
    };
    let summary = env
        .importer("t1", options)
        .import_paths(std::slice::from_ref(&input), &NoProgress)
        .unwrap();
    assert_eq!(summary.resources, total);
    assert_eq!(summary.failed, 4);
    assert_eq!(summary.report.as_deref(), Some(report.as_path()));

    let reported: Vec<Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reported.len(), 4);
    for ((at, _, expected), got) in bad.iter().zip(&reported) {
        assert_eq!(got["line"], json!(at), "{got}");
        assert!(
            got["file"]
                .as_str()
                .unwrap()
                .ends_with("Observation.ndjson")
        );
        assert!(got["error"].as_str().unwrap().contains(expected), "{got}");
    }
    assert_eq!(reported[2]["expression"], "Patient.gender");

    // Everything else is there and searchable.
    let patients = synth_total_of(&input, "Patient");
    assert_eq!(env.count("t1", "Patient", &[]), patients);
    assert!(env.read("Patient", "bad-gender").is_none());
    let first: Value = serde_json::from_str(
        String::from_utf8_lossy(&std::fs::read(input.join("Observation.ndjson")).unwrap())
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let subject = first["subject"]["reference"].as_str().unwrap().to_owned();
    assert!(env.count("t1", "Observation", &[("subject", &subject)]) > 0);
    assert_eq!(env.versions("t1"), total);

    // Running it again skips every (unchanged) file.
    let again = env.import(std::slice::from_ref(&input));
    assert_eq!(again.skipped_files, again.files);
    assert_eq!(again.resources, 0);
    assert_eq!(env.versions("t1"), total);
}

fn synth_total_of(dir: &Path, rt: &str) -> u64 {
    std::fs::read_to_string(dir.join(format!("{rt}.ndjson")))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .count() as u64
}

fn patient_lines(n: usize, prefix: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"resourceType\":\"Patient\",\"id\":\"{prefix}{i}\",\"gender\":\"female\",\"birthDate\":\"1980-01-01\"}}\n"
            )
        })
        .collect()
}

#[test]
fn gzip_and_truncated_gzip() {
    let env = env();
    let input = env.input();
    std::fs::write(
        input.join("a.ndjson.gz"),
        gzip(patient_lines(300, "a").as_bytes()),
    )
    .unwrap();
    // A random-looking payload compresses badly, so cutting the file loses only the tail.
    let big: String = (0..3000)
        .map(|i| {
            format!(
                "{{\"resourceType\":\"Patient\",\"id\":\"b{i}\",\"name\":[{{\"family\":\"{:x}\"}}]}}\n",
                (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            )
        })
        .collect();
    let full = gzip(big.as_bytes());
    std::fs::write(input.join("b.ndjson.gz"), &full[..full.len() * 2 / 3]).unwrap();
    let summary = env.import(std::slice::from_ref(&input));
    assert_eq!(summary.failed, 1, "{:?}", summary.errors);
    let err = &summary.errors[0];
    assert!(err.file.ends_with("b.ndjson.gz"));
    let imported_b = summary.resources - 300;
    assert!(imported_b > 100 && imported_b < 3000, "{imported_b}");
    // Everything before the truncation is imported: the error names the line after the last good one.
    assert_eq!(err.line, Some(imported_b + 1), "{err:?}");
    assert!(env.read("Patient", "a299").is_some());
    assert!(
        env.read("Patient", &format!("b{}", imported_b - 1))
            .is_some()
    );
    assert_eq!(env.count("t1", "Patient", &[]), 300 + imported_b);
}

#[test]
fn bundle_references_are_resolved() {
    let env = env();
    let input = env.input();
    let pid = "3f1c9c1e-7a55-4e0e-9d35-0123456789ab";
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": format!("urn:uuid:{pid}"),
         "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:sys", "value": "123"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:0b6a2d0e-1111-4e0e-9d35-0123456789ab",
         "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "hb"},
                      "subject": {"reference": format!("urn:uuid:{pid}")}},
         "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": "urn:uuid:0b6a2d0e-2222-4e0e-9d35-0123456789ab",
         "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "hb"},
                      "subject": {"reference": "Patient?identifier=urn:sys|123"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": "urn:uuid:0b6a2d0e-3333-4e0e-9d35-0123456789ab",
         "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "hb"},
                      "subject": {"reference": "Patient?identifier=urn:sys|nobody"}},
         "request": {"method": "POST", "url": "Observation"}}
    ]});
    let path = input.join("bundle.json");
    std::fs::write(&path, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let summary = env.import(std::slice::from_ref(&path));
    assert_eq!(summary.resources, 3);
    assert_eq!(summary.failed, 1);
    assert_eq!(summary.errors[0].entry, Some(3));
    assert!(summary.errors[0].error.contains("matches no resource"));
    let obs = env
        .read("Observation", "0b6a2d0e-1111-4e0e-9d35-0123456789ab")
        .unwrap();
    assert_eq!(obs["subject"]["reference"], format!("Patient/{pid}"));
    assert_eq!(
        env.count(
            "t1",
            "Observation",
            &[("subject", &format!("Patient/{pid}"))]
        ),
        2
    );
    // Re-importing a changed copy of the same Bundle updates the same resources.
    std::fs::write(
        input.join("copy.json"),
        serde_json::to_vec(&bundle).unwrap(),
    )
    .unwrap();
    env.import(&[input.join("copy.json")]);
    assert_eq!(env.count("t1", "Observation", &[]), 2);
    assert_eq!(env.count("t1", "Patient", &[]), 1);
}

/// Cancels the import after `after` committed batches.
struct StopAfter {
    after: u64,
    options: ImportOptions,
}

impl ProgressSink for StopAfter {
    fn update(&self, p: &Progress) {
        if p.batches >= self.after {
            self.options.cancel.store(true, Ordering::Relaxed);
        }
    }
}

#[test]
fn resumes_after_an_interruption() {
    let env = env();
    let input = env.input();
    synth(&input, 60);
    let total = synth_total(&input);
    let options = ImportOptions {
        batch_size: 500,
        ..ImportOptions::default()
    };
    let stop = StopAfter {
        after: 4,
        options: options.clone(),
    };
    let first = env
        .importer("t1", options)
        .import_paths(std::slice::from_ref(&input), &stop)
        .unwrap();
    assert!(first.cancelled);
    assert!(
        first.resources >= 2000 && first.resources < total,
        "{}",
        first.resources
    );
    assert_eq!(env.versions("t1"), first.resources);

    let second = env.import(std::slice::from_ref(&input));
    assert!(!second.cancelled);
    // The checkpoint skipped exactly what was committed: no resource was written twice.
    assert_eq!(first.resources + second.resources, total);
    assert_eq!(env.versions("t1"), total);

    // The result equals a one-shot import into a fresh tenant.
    env.store.create_tenant("t2").unwrap();
    env.importer("t2", ImportOptions::default())
        .import_paths(std::slice::from_ref(&input), &NoProgress)
        .unwrap();
    for rt in ["Patient", "Encounter", "Observation", "Condition"] {
        assert_eq!(env.count("t1", rt, &[]), env.count("t2", rt, &[]), "{rt}");
    }
}

#[test]
fn tenants_are_respected() {
    let env = env();
    env.store.create_tenant("other").unwrap();
    let input = env.input();
    let file = input.join("p.ndjson");
    std::fs::write(&file, patient_lines(50, "p")).unwrap();
    let summary = env
        .importer("other", ImportOptions::default())
        .import_paths(std::slice::from_ref(&file), &NoProgress)
        .unwrap();
    assert_eq!(summary.resources, 50);
    assert_eq!(env.count("other", "Patient", &[]), 50);
    assert_eq!(env.count("t1", "Patient", &[]), 0);
    // The checkpoint is per tenant: the same file still imports into t1.
    assert_eq!(env.import(std::slice::from_ref(&file)).resources, 50);
    assert!(matches!(
        env.importer("nope", ImportOptions::default())
            .import_paths(&[file], &NoProgress),
        Err(ImportError::UnknownTenant(_))
    ));
    assert!(matches!(
        env.importer("t1", ImportOptions::default())
            .import_paths(&[input.join("missing.ndjson")], &NoProgress),
        Err(ImportError::NoSuchPath { .. })
    ));
}

#[test]
fn lines_without_id_get_stable_ids() {
    let env = env();
    let input = env.input();
    let file = input.join("noid.ndjson");
    std::fs::write(
        &file,
        "{\"resourceType\":\"Patient\"}\n{\"resourceType\":\"Patient\",\"gender\":\"male\"}\n",
    )
    .unwrap();
    let ids: BTreeSet<String> = {
        env.import(std::slice::from_ref(&file));
        let q = parse_search(medicus_fhir::r4(), Some("Patient"), &[]).unwrap();
        let mut s = env.store.read_session("t1").unwrap();
        s.search(Some("Patient"), &q)
            .unwrap()
            .resources
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids.len(), 2);
}
