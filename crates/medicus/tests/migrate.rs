//! `medicus migrate`: a pilot's SQLite store copied into another store (PostgreSQL in the
//! PostgreSQL pass, a second SQLite directory otherwise) keeps every tenant, resource, version,
//! `lastUpdated` and deletion; the command verifies the copy, refuses a target that already holds
//! data, and copies what was committed since when run again.

mod common;

use common::{Server, TestDir, create_tenant, medicus, medicus_command};
use serde_json::{Value, json};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The target store: the PostgreSQL scratch database of `target`, or SQLite in its directory.
fn target_store(target: &TestDir) -> String {
    match target.database() {
        Some(url) => url.to_owned(),
        None => format!("sqlite:{}", target.data().display()),
    }
}

/// A `medicus migrate` from a SQLite directory (never the PostgreSQL pass's database: the
/// source is the pilot on SQLite).
fn migrate(source: &TestDir, target: &str) -> std::process::Output {
    medicus_command()
        .args([
            "migrate",
            "--from",
            &format!("sqlite:{}", source.data().display()),
            "--to",
            target,
        ])
        .output()
        .unwrap()
}

/// Everything a client sees of the data: history entries with versions and times, and bodies.
fn snapshot(server: &Server, tenants: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for t in tenants {
        let fhir = server.tenant(t);
        let history = fhir.get("_history?_count=1000");
        history.expect(200);
        for e in history.body["entry"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            out.push(json!({
                "tenant": t,
                // The path only: the two servers listen on different ports.
                "url": e["fullUrl"].as_str().and_then(|u| u.split_once("/fhir/")).map(|(_, p)| p.to_owned()),
                "method": e["request"]["method"],
                "resource": e["resource"],
            }));
        }
    }
    out.sort_by_key(|v| v.to_string());
    out
}

/// Server options with `--database store`.
fn database(store: &str) -> common::Options {
    common::Options {
        args: vec!["--database".into(), store.to_owned()],
        ..common::Options::default()
    }
}

/// A pilot on SQLite whatever the pass: the source of a migration.
fn sqlite_server(dir: &TestDir) -> Server {
    Server::start_with(dir, database(&format!("sqlite:{}", dir.data().display())))
}

#[test]
fn a_pilot_is_copied_with_every_version_and_verified() {
    let source = TestDir::new();
    let server = sqlite_server(&source);
    let fhir = server.tenant("default");
    fhir.put(
        "Patient/p1",
        &json!({"resourceType": "Patient", "id": "p1", "gender": "female"}),
    )
    .expect(201);
    fhir.put(
        "Patient/p1",
        &json!({"resourceType": "Patient", "id": "p1", "gender": "male"}),
    )
    .expect(200);
    fhir.post(
        "Observation",
        &json!({"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-01-02"}),
    )
    .expect(201);
    fhir.put(
        "Patient/gone",
        &json!({"resourceType": "Patient", "id": "gone"}),
    )
    .expect(201);
    fhir.delete("Patient/gone").expect(200);
    drop(server);
    let out = medicus(&[
        "admin",
        "tenant",
        "create",
        "second",
        "--database",
        &format!("sqlite:{}", source.data().display()),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let server = sqlite_server(&source);
    server
        .tenant("second")
        .put(
            "Patient/s1",
            &json!({"resourceType": "Patient", "id": "s1"}),
        )
        .expect(201);
    let before = snapshot(&server, &["default", "second"]);
    drop(server);

    let target = TestDir::new();
    let to = target_store(&target);
    let out = migrate(&source, &to);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("verified"), "{}", stdout(&out));

    // The target serves the same data: versions, lastUpdated, deletions, search indexes.
    let copy = Server::start_with(&target, database(&to));
    assert_eq!(snapshot(&copy, &["default", "second"]), before);
    let found = copy
        .tenant("default")
        .get("Observation?code=http://loinc.org|718-7&subject=Patient/p1");
    found.expect(200);
    assert_eq!(found.resources().len(), 1);
    copy.tenant("default").get("Patient/gone").expect(410);
    drop(copy);

    // A second run copies only what is new; a target with foreign data is refused.
    let server = sqlite_server(&source);
    server
        .tenant("default")
        .put(
            "Patient/p2",
            &json!({"resourceType": "Patient", "id": "p2"}),
        )
        .expect(201);
    drop(server);
    let out = migrate(&source, &to);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("copied 1 versions"),
        "{}",
        stdout(&out)
    );

    let other = TestDir::new();
    create_tenant(&other, "default");
    let busy = Server::start_with(&other, database(&target_store(&other)));
    busy.tenant("default")
        .put("Patient/x", &json!({"resourceType": "Patient", "id": "x"}))
        .expect(201);
    drop(busy);
    let out = migrate(&source, &target_store(&other));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already holds data"),
        "{}",
        stderr(&out)
    );
}
