//! The database goes away while `medicus serve` runs on PostgreSQL: requests answer 503 with an
//! OperationOutcome (no 500, no hang), and the server recovers on its own when the database is
//! back. The test runs a cluster of its own (`scripts/pg-test-cluster` in a private directory) so
//! that stopping it disturbs no other test; it runs when `MEDICUS_TEST_DATABASE` is set (the
//! PostgreSQL pass of `.ci/run`).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Options, Server, TestDir};
use serde_json::json;

/// A private cluster, stopped and deleted on drop.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-cluster")
    }

    fn run(&self, action: &str) -> String {
        let out = Command::new("bash")
            .arg(Self::script())
            .arg(action)
            .env("MEDICUS_PG_TEST_DIR", self.dir.path().join("pg"))
            .env("PG_TEST_OPTS", "-c fsync=off")
            .output()
            .expect("pg-test-cluster");
        assert!(
            out.status.success(),
            "pg-test-cluster {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn start() -> (Cluster, String) {
        let dir = tempfile::tempdir().unwrap();
        // The server runs as `postgres` when we are root: it must be able to enter the directory.
        let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
        let cluster = Cluster { dir };
        let url = cluster.run("start");
        (cluster, url)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .env("MEDICUS_PG_TEST_DIR", self.dir.path().join("pg"))
            .output();
    }
}

#[test]
fn requests_answer_503_while_the_database_is_down_and_recover_after() {
    if std::env::var("MEDICUS_TEST_DATABASE").is_err() {
        println!("skipped: MEDICUS_TEST_DATABASE is not set (the PostgreSQL pass of .ci/run)");
        return;
    }
    let (cluster, url) = Cluster::start();
    let dir = TestDir::new();
    let server = Server::start_with(&dir, Options::default().env("MEDICUS_DATABASE", &url));
    let fhir = server.fhir();
    fhir.put(
        "Patient/p1",
        &json!({"resourceType": "Patient", "id": "p1", "gender": "female"}),
    )
    .expect(201);
    fhir.get("Patient/p1").expect(200);

    cluster.run("pause");
    let started = Instant::now();
    for path in ["Patient/p1", "Patient?gender=female", "Patient/p1/_history"] {
        let r = fhir.get(path);
        r.expect_outcome(503);
        assert_eq!(r.body["issue"][0]["code"], "transient", "{}", r.text);
        assert!(r.header("retry-after").is_some());
    }
    let r = fhir.put(
        "Patient/p2",
        &json!({"resourceType": "Patient", "id": "p2"}),
    );
    r.expect_outcome(503);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "answers while down took {:?}",
        started.elapsed()
    );

    cluster.run("resume");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = fhir.get("Patient/p1");
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after the database came back: {} {}",
            r.status,
            r.text
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Nothing of the failed write is left, and writes work again.
    fhir.get("Patient/p2").expect(404);
    fhir.put(
        "Patient/p2",
        &json!({"resourceType": "Patient", "id": "p2"}),
    )
    .expect(201);
    let bundle = fhir.get("Patient?gender=female");
    bundle.expect(200);
    assert_eq!(bundle.resources().len(), 1);
}
