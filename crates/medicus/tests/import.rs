//! `medicus import` as a user runs it (exit codes, report file, summary line), and the data
//! afterwards through the FHIR API of `medicus serve` on the same data directory.

mod common;

use std::path::Path;

use common::{Server, TestDir, create_tenant, medicus};
use serde_json::Value;

fn patients(n: usize, prefix: &str) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"resourceType\":\"Patient\",\"id\":\"{prefix}{i}\",\"gender\":\"female\"}}\n"
            )
        })
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn imports_a_folder_reports_bad_lines_and_exits_1() {
    let dir = TestDir::new();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    std::fs::write(input.join("a.ndjson"), patients(20, "a")).unwrap();
    let mut bad = patients(3, "b");
    bad.push_str("{not json\n");
    bad.push_str(&patients(1, "c"));
    std::fs::write(input.join("sub/b.ndjson"), bad).unwrap();
    std::fs::write(input.join("notes.txt"), "ignored").unwrap();
    let report = dir.path().join("errors.ndjson");
    let data = dir.data();
    let out = medicus(&[
        "import",
        "--data",
        s(&data),
        "--report",
        s(&report),
        "--batch-size",
        "7",
        s(&input),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("imported 24 resources"), "{stdout}");
    assert!(stdout.contains("1 failed"), "{stdout}");
    let lines: Vec<Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["file"].as_str().unwrap().ends_with("b.ndjson"));
    assert_eq!(lines[0]["line"], 4);

    // A second run finds everything imported and changes nothing.
    let again = medicus(&["import", "--data", s(&data), s(&input)]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("imported 0 resources"), "{stdout}");

    let server = Server::start(&dir);
    let fhir = server.fhir();
    fhir.get("Patient/a19").expect(200);
    fhir.get("Patient/c0").expect(200);
    let found = fhir.get("Patient?_summary=count");
    assert_eq!(found.body["total"], 24);
}

#[test]
fn clean_import_exits_0_and_writes_no_report() {
    let dir = TestDir::new();
    create_tenant(&dir, "acme");
    let file = dir.path().join("p.ndjson");
    std::fs::write(&file, patients(5, "p")).unwrap();
    let data = dir.data();
    let out = medicus(&["import", "--data", s(&data), "--tenant", "acme", s(&file)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!data.join("import-reports").exists());
    let server = Server::start(&dir);
    server.tenant("acme").get("Patient/p4").expect(200);
    server.fhir().get("Patient/p4").expect(404);
}

#[test]
fn default_report_goes_under_the_data_directory() {
    let dir = TestDir::new();
    let file = dir.path().join("bad.ndjson");
    std::fs::write(&file, "{\"resourceType\":\"Unicorn\"}\n").unwrap();
    let data = dir.data();
    let out = medicus(&["import", "--data", s(&data), s(&file)]);
    assert_eq!(out.status.code(), Some(1));
    let reports: Vec<_> = std::fs::read_dir(data.join("import-reports"))
        .unwrap()
        .collect();
    assert_eq!(reports.len(), 1);
}

#[test]
fn usage_errors_exit_2() {
    let dir = TestDir::new();
    let data = dir.data();
    let file = dir.path().join("p.ndjson");
    std::fs::write(&file, patients(1, "p")).unwrap();
    let out = medicus(&["import", "--data", s(&data), "--tenant", "nope", s(&file)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown tenant 'nope'"));
    let missing = dir.path().join("missing.ndjson");
    let out = medicus(&["import", "--data", s(&data), s(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.ndjson"));
    assert_eq!(medicus(&["import"]).status.code(), Some(2));
    let out = medicus(&["import", "--batch-size", "0", s(&file)]);
    assert_eq!(out.status.code(), Some(2));
}

const NDJSON: (&str, &str) = ("content-type", "application/fhir+ndjson");

fn kick_off(fhir: &common::Fhir, body: String) -> String {
    let r = fhir.send_raw(
        reqwest::Method::POST,
        "$import",
        Some(body.into_bytes()),
        &[NDJSON],
    );
    assert_eq!(r.status, 202, "{}", r.text);
    let location = r.header("content-location").unwrap().to_owned();
    assert!(location.contains("/$import-poll-status/"), "{location}");
    location
}

#[test]
fn http_import_runs_as_a_job() {
    let dir = TestDir::new();
    create_tenant(&dir, "other");
    let server = Server::start(&dir);
    let fhir = server.fhir();
    let mut body = patients(10, "h");
    body.push_str("{\"resourceType\":\"Patient\",\"gender\":42}\n");
    let location = kick_off(&fhir, body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let done = loop {
        let r = fhir.get(&location);
        match r.status {
            200 => break r,
            202 => {
                assert!(r.header("x-progress").is_some());
                assert!(r.header("retry-after").is_some());
            }
            s => panic!("unexpected status {s}: {}", r.text),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "import did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(done.body["resources"], 10, "{}", done.text);
    assert_eq!(done.body["failed"], 1);
    let issue = &done.body["errors"]["issue"][0];
    assert!(
        issue["diagnostics"].as_str().unwrap().contains("line 11"),
        "{issue}"
    );
    assert_eq!(issue["expression"][0], "Patient.gender");
    fhir.get("Patient/h9").expect(200);

    // Unknown jobs, another tenant's job, wrong media type, unknown tenant.
    fhir.get("$import-poll-status/nope").expect_outcome(404);
    let id = location.rsplit('/').next().unwrap();
    server
        .tenant("other")
        .get(&format!("$import-poll-status/{id}"))
        .expect_outcome(404);
    let r = fhir.send_raw(
        reqwest::Method::POST,
        "$import",
        Some(b"{}".to_vec()),
        &[("content-type", "application/fhir+json")],
    );
    assert_eq!(r.status, 415);
    let r = server.tenant("ghost").send_raw(
        reqwest::Method::POST,
        "$import",
        Some(patients(1, "g").into_bytes()),
        &[NDJSON],
    );
    assert_eq!(r.status, 404);
}

#[test]
fn http_import_delete_cancels() {
    let dir = TestDir::new();
    let server = Server::start(&dir);
    let fhir = server.fhir();
    let location = kick_off(&fhir, patients(20_000, "big"));
    let r = fhir.send(reqwest::Method::DELETE, &location, None, &[]);
    assert_eq!(r.status, 202, "{}", r.text);
    fhir.get(&location).expect_outcome(404);
    let r = fhir.send(reqwest::Method::DELETE, &location, None, &[]);
    assert_eq!(r.status, 404);
}
