//! `medicus migrate`: a pilot's SQLite store copied into another store (PostgreSQL in the
//! PostgreSQL pass, a second SQLite directory otherwise) keeps every tenant, resource, version,
//! `lastUpdated` and deletion; the command verifies the copy, refuses a target that already holds
//! data, and copies what was committed since when run again.

mod common;

use common::{Server, TestDir, create_tenant, medicus, medicus_command};
use medicus_store::platform::{AuditEntry, AuditQuery, DocExpect, PlatformRecords};
use medicus_store::{PostgresOptions, PostgresStore, SqliteStore, Store};
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
    drop(server);

    let target = TestDir::new();
    let to = target_store(&target);
    let out = migrate(&source, &to);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("verified"), "{}", stdout(&out));

    // A second run copies only what is new; a target with foreign data is refused.
    let server = sqlite_server(&source);
    server
        .tenant("default")
        .put(
            "Patient/p2",
            &json!({"resourceType": "Patient", "id": "p2"}),
        )
        .expect(201);
    let before = snapshot(&server, &["default", "second"]);
    drop(server);
    let out = migrate(&source, &to);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("copied 1 versions"),
        "{}",
        stdout(&out)
    );

    // The target serves the same data: versions, lastUpdated, deletions, search indexes (only
    // now: serving it records accesses in its audit trail, after which a further run refuses
    // it, which the end of this test shows).
    // Sign-in records are copied sealed: the target runs with the source's server key.
    let mut options = database(&to);
    options.args.extend([
        "--server-key-file".to_owned(),
        source.data().join("server.key").display().to_string(),
    ]);
    let copy = Server::start_with(&target, options);
    assert_eq!(snapshot(&copy, &["default", "second"]), before);
    let found = copy
        .tenant("default")
        .get("Observation?code=http://loinc.org|718-7&subject=Patient/p1");
    found.expect(200);
    assert_eq!(found.resources().len(), 1);
    copy.tenant("default").get("Patient/gone").expect(410);
    // A graceful stop writes every access it recorded.
    let mut copy = copy;
    assert!(copy.signal_and_wait(libc::SIGTERM).success());
    let out = migrate(&source, &to);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("serve it only after"),
        "{}",
        stderr(&out)
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

/// The store behind `store` (a `migrate` argument), opened in the test process.
fn open_store(store: &str) -> Box<dyn Store> {
    match store.strip_prefix("sqlite:") {
        Some(dir) => Box::new(SqliteStore::open(std::path::Path::new(dir)).unwrap()),
        None => Box::new(PostgresStore::connect(store, PostgresOptions::default()).unwrap()),
    }
}

fn audit_entries(chain: &str, first: i64, n: usize, subject: &str) -> Vec<AuditEntry> {
    (0..n)
        .map(|i| {
            let seq = first + i64::try_from(i).unwrap();
            AuditEntry {
                seq,
                at_us: 1_700_000_000_000_000 + seq,
                hash: format!("{chain}-{seq}").into_bytes(),
                subjects: vec![subject.to_owned(), "Organization/o".to_owned()],
                record: format!("{{\"event\":{seq}}}").into_bytes(),
            }
        })
        .collect()
}

fn append(s: &dyn Store, chain: &str, n: usize, subject: &str) {
    s.audit_append(chain, &mut |head| {
        Ok(audit_entries(
            chain,
            head.map_or(1, |h| h.seq + 1),
            n,
            subject,
        ))
    })
    .unwrap();
}

/// Every entry of `chain`, in order.
fn chain(s: &dyn Store, chain: &str) -> Vec<AuditEntry> {
    s.audit_query(
        chain,
        &AuditQuery {
            limit: usize::MAX,
            ..AuditQuery::default()
        },
    )
    .unwrap()
}

/// Every unexpired document as `(namespace, key, value, expiry)`.
fn documents(s: &dyn Store) -> Vec<(String, String, Vec<u8>, Option<i64>)> {
    s.doc_scan(None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(ns, d)| (ns, d.key, d.value, d.expires_us))
        .collect()
}

#[test]
fn platform_documents_and_audit_chains_are_copied_verbatim() {
    let source = TestDir::new();
    let later = 4_000_000_000_000_000; // 2096
    {
        let s = SqliteStore::open(&source.data()).unwrap();
        s.doc_put(
            "client",
            "c1",
            b"{\"name\":\"app\"}",
            None,
            DocExpect::Absent,
        )
        .unwrap();
        s.doc_put(
            "client",
            "c1",
            b"{\"name\":\"app2\"}",
            None,
            DocExpect::Version(1),
        )
        .unwrap();
        s.doc_put("identity", "u/1", b"alice", None, DocExpect::Absent)
            .unwrap();
        s.doc_put("grant", "g1", b"refresh", Some(later), DocExpect::Absent)
            .unwrap();
        s.doc_put("grant", "expired", b"code", Some(1), DocExpect::Any)
            .unwrap();
        // More than one page of the copy (1000 entries).
        append(&s, "default", 1_500, "Patient/p1");
        append(&s, "_platform", 3, "Patient/p2");
    }
    let target = TestDir::new();
    let to = target_store(&target);
    let out = migrate(&source, &to);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("copied 3 platform documents"), "{text}");
    assert!(
        text.contains("copied 1503 audit entries of 2 chains"),
        "{text}"
    );
    assert!(
        text.contains("verified: 3 platform documents and 1503 audit entries of 2 chains"),
        "{text}"
    );
    {
        let (s, t) = (
            open_store(&format!("sqlite:{}", source.data().display())),
            open_store(&to),
        );
        assert_eq!(documents(&*t), documents(&*s));
        assert_eq!(documents(&*t).len(), 3);
        for c in ["default", "_platform"] {
            assert_eq!(chain(&*t, c), chain(&*s, c), "{c}");
        }
        assert_eq!(chain(&*t, "default").len(), 1_500);
        assert_eq!(t.audit_chains().unwrap(), ["_platform", "default"]);
        let patient_log = t
            .audit_query(
                "_platform",
                &AuditQuery {
                    subject: Some("Patient/p2".into()),
                    limit: 10,
                    ..AuditQuery::default()
                },
            )
            .unwrap();
        assert_eq!(patient_log.len(), 3);

        // The source goes on: a changed, a removed and a new document, new entries.
        s.doc_put("client", "c1", b"{\"name\":\"app3\"}", None, DocExpect::Any)
            .unwrap();
        s.doc_delete("identity", "u/1", DocExpect::Any).unwrap();
        s.doc_put("identity", "u/2", b"bob", None, DocExpect::Absent)
            .unwrap();
        append(&*s, "default", 2, "Patient/p3");
        append(&*s, "t2", 1, "Patient/p3");
    }
    let out = migrate(&source, &to);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("copied 2 platform documents, removed 1"),
        "{text}"
    );
    assert!(
        text.contains("copied 3 audit entries of 3 chains"),
        "{text}"
    );
    {
        let (s, t) = (
            open_store(&format!("sqlite:{}", source.data().display())),
            open_store(&to),
        );
        assert_eq!(documents(&*t), documents(&*s));
        for c in ["default", "_platform", "t2"] {
            assert_eq!(chain(&*t, c), chain(&*s, c), "{c}");
        }
    }

    // A target whose chain is not a beginning of the source's is refused; verification alone
    // notices a difference.
    let other = TestDir::new();
    let elsewhere = target_store(&other);
    {
        let t = open_store(&elsewhere);
        t.audit_append("default", &mut |_| {
            let mut e = audit_entries("default", 1, 1, "Patient/p1");
            e[0].hash = b"another chain".to_vec();
            Ok(e)
        })
        .unwrap();
    }
    let out = migrate(&source, &elsewhere);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a part of the source's"),
        "{}",
        stderr(&out)
    );
    {
        let t = open_store(&to);
        t.doc_put("client", "c1", b"tampered", None, DocExpect::Any)
            .unwrap();
    }
    let out = medicus_command()
        .args([
            "migrate",
            "--from",
            &format!("sqlite:{}", source.data().display()),
            "--to",
            &to,
            "--verify-only",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("platform documents") && stderr(&out).contains("different contents"),
        "{}",
        stderr(&out)
    );
}
