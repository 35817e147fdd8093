//! `--database postgres://…`: an unreachable database at start is one clear error line and a
//! non-zero exit for every command; with `MEDICUS_TEST_DATABASE` set, two servers and `import`
//! share one PostgreSQL database.

mod common;

use std::net::TcpListener;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Options, Server, TestDir, medicus_command};
use medicus_store::postgres::ScratchDatabase;
use serde_json::json;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_database_at_start_is_a_clear_error() {
    let dir = TestDir::new();
    let port = closed_port();
    let url = format!("postgres://medicus:secret@127.0.0.1:{port}/medicus");
    let ndjson = dir.path().join("p.ndjson");
    std::fs::write(&ndjson, "{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n").unwrap();
    let data = dir.data();
    let data = data.to_str().unwrap();
    let ndjson = ndjson.to_str().unwrap();
    let commands: [&[&str]; 4] = [
        &["serve", "--listen", "127.0.0.1:0"],
        &["import", ndjson],
        &["admin", "tenant", "create", "t1"],
        &["admin", "tenant", "list"],
    ];
    for args in commands {
        let started = Instant::now();
        let out = medicus_command()
            .args(args)
            .args(["--data", data, "--database", &url])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert!(
            err.contains(&format!(
                "cannot connect to PostgreSQL at 127.0.0.1:{port}/medicus"
            )),
            "{args:?}: {err}"
        );
        assert!(err.contains("database unavailable"), "{args:?}: {err}");
        assert!(!err.contains("secret"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Nothing fell back to a local store.
    assert!(!dir.data().join("medicus.db").exists());
}

#[test]
fn an_unknown_database_url_is_a_usage_error() {
    let dir = TestDir::new();
    for url in ["mysql://h/db", "/var/lib/medicus"] {
        let out = medicus_command()
            .args(["admin", "tenant", "create", "t1", "--database", url])
            .arg("--data")
            .arg(dir.data())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert!(err.contains("invalid setting database"), "{url}: {err}");
    }
    // The variable works as the flag does.
    let out = medicus_command()
        .args(["admin", "tenant", "list"])
        .env("MEDICUS_DATABASE", "mysql://h/db")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn two_servers_and_import_share_one_postgres_database() {
    // A database of its own (dropped at the end), shared by both servers and the import.
    let Some(db) = ScratchDatabase::from_env().unwrap() else {
        println!("skipped: MEDICUS_TEST_DATABASE is not set");
        return;
    };
    let (dir1, dir2) = (TestDir::new(), TestDir::new());
    // Every node of a database shares the server key (the first creates it).
    let options = Options {
        args: vec![
            "--database".into(),
            db.url().to_owned(),
            "--server-key-file".into(),
            dir1.path().join("server.key").display().to_string(),
        ],
        ..Options::default()
    };
    let one = Server::start_with(&dir1, options.clone());
    let two = Server::start_with(&dir2, options);
    let patient = json!({"resourceType": "Patient", "id": "p1", "gender": "female"});
    one.fhir().put("Patient/p1", &patient).expect(201);
    let read = two.fhir().get("Patient/p1");
    read.expect(200);
    assert_eq!(read.body["gender"], "female");
    // If-Match holds across the two processes.
    two.fhir()
        .put_with("Patient/p1", &patient, &[("if-match", "W/\"1\"")])
        .expect(200);
    one.fhir()
        .put_with("Patient/p1", &patient, &[("if-match", "W/\"1\"")])
        .expect_outcome(412);
    assert_eq!(one.fhir().get("Patient/p1").etag_version(), Some(2));

    // `import` and `admin` use the same database.
    let ndjson = dir1.path().join("in.ndjson");
    std::fs::write(
        &ndjson,
        "{\"resourceType\":\"Patient\",\"id\":\"i1\"}\n{\"resourceType\":\"Patient\",\"id\":\"i2\"}\n",
    )
    .unwrap();
    let out = medicus_command()
        .args(["import", "--database", db.url(), "--data"])
        .arg(dir1.data())
        .arg(&ndjson)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    two.fhir().get("Patient/i2").expect(200);
    let out = medicus_command()
        .args([
            "admin",
            "tenant",
            "create",
            "second",
            "--database",
            db.url(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = medicus_command()
        .args(["admin", "tenant", "list"])
        .env("MEDICUS_DATABASE", db.url())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "default\nsecond\n");
    one.tenant("second").get("Patient/p1").expect_outcome(404);
    drop((one, two));
}
