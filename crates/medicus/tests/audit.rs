//! `medicus audit verify` on a trail produced through the HTTP server, before and after
//! tampering directly in the database (SQLite file, or the PostgreSQL scratch database in the
//! PostgreSQL pass): an edited, a deleted and two swapped entries are each named.

mod common;

use std::path::Path;

use common::{Server, TestDir, medicus};
use serde_json::json;

/// Runs SQL against the test's database with the append-only triggers dropped.
enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(tokio::runtime::Runtime, tokio_postgres::Client),
}

impl Db {
    fn open(dir: &TestDir) -> Db {
        match dir.database() {
            None => Db::Sqlite(rusqlite::Connection::open(dir.data().join("medicus.db")).unwrap()),
            Some(url) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let client = rt.block_on(async {
                    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                    tokio::spawn(connection);
                    client
                });
                Db::Postgres(rt, client)
            }
        }
    }

    /// Runs `sql` after dropping the append-only triggers (opening the store, as `audit
    /// verify` does, may create them again).
    fn exec(&self, sql: &str) {
        match self {
            Db::Sqlite(c) => c
                .execute_batch(&format!(
                    "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete; {sql}"
                ))
                .unwrap(),
            Db::Postgres(rt, c) => rt
                .block_on(c.batch_execute(&format!(
                    "DROP TRIGGER IF EXISTS audit_append_only ON audit; {sql}"
                )))
                .unwrap(),
        }
    }

    /// `replace` over the record bytes of one entry, in each dialect.
    fn replace_in_record(&self, seq: i64, from: &str, to: &str) {
        let sql = match self {
            Db::Sqlite(_) => format!(
                "UPDATE audit SET record = CAST(replace(CAST(record AS TEXT), '{from}', '{to}') AS BLOB)
                 WHERE chain = 'default' AND seq = {seq}"
            ),
            Db::Postgres(..) => format!(
                "UPDATE audit SET record = convert_to(replace(convert_from(record, 'UTF8'), '{from}', '{to}'), 'UTF8')
                 WHERE chain = 'default' AND seq = {seq}"
            ),
        };
        self.exec(&sql);
    }
}

fn verify(data: &Path) -> (bool, String) {
    let out = medicus(&["audit", "verify", "--data", data.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn verify_names_edited_deleted_and_swapped_entries() {
    let dir = TestDir::new();
    let mut server = Server::start(&dir);
    let fhir = server.fhir();
    let patient = fhir.post(
        "Patient",
        &json!({"resourceType": "Patient", "gender": "female"}),
    );
    patient.expect(201);
    let pid = patient.body["id"].as_str().unwrap().to_string();
    for i in 0..4 {
        fhir.post(
            "Observation",
            &json!({"resourceType": "Observation", "status": "final", "code": {"text": format!("x{i}")},
                "subject": {"reference": format!("Patient/{pid}")}}),
        )
        .expect(201);
    }
    fhir.get(&format!("Patient/{pid}")).expect(200);
    fhir.get("Observation?code:text=x1").expect(200);
    fhir.get("Patient/unknown").expect(404);
    // Stopping flushes the trail.
    assert!(server.signal_and_wait(libc::SIGTERM).success());
    drop(server);

    let data = dir.data();
    let (ok, text) = verify(&data);
    assert!(ok, "{text}");
    // 8 FHIR interactions and the issuing of the test client's token (`medicus admin token`).
    assert!(
        text.contains("chain default: 9 entries checked, OK"),
        "{text}"
    );
    let (ok, text) = {
        let out = medicus(&[
            "audit",
            "verify",
            "--tenant",
            "default",
            "--data",
            data.to_str().unwrap(),
        ]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(ok && text.contains("9 entries checked, OK"), "{text}");

    let db = Db::open(&dir);

    // Edit a record.
    db.replace_in_record(3, r#""v":1"#, r#""v":2"#);
    let (ok, text) = verify(&data);
    assert!(!ok, "{text}");
    assert!(text.contains("entry 3 modified"), "{text}");
    db.replace_in_record(3, r#""v":2"#, r#""v":1"#);
    assert!(verify(&data).0, "restored");

    // Delete a record.
    db.exec(
        "CREATE TABLE saved AS SELECT * FROM audit WHERE chain = 'default' AND seq = 5;
         DELETE FROM audit WHERE chain = 'default' AND seq = 5;",
    );
    let (ok, text) = verify(&data);
    assert!(!ok, "{text}");
    assert!(text.contains("entry 5 missing"), "{text}");
    db.exec("INSERT INTO audit SELECT * FROM saved; DROP TABLE saved;");
    assert!(verify(&data).0, "restored");

    // Swap two records.
    db.exec(
        "UPDATE audit SET seq = -1 WHERE chain = 'default' AND seq = 6;
         UPDATE audit SET seq = 6 WHERE chain = 'default' AND seq = 7;
         UPDATE audit SET seq = 7 WHERE chain = 'default' AND seq = -1;",
    );
    let (ok, text) = verify(&data);
    assert!(!ok, "{text}");
    assert!(
        text.contains("entries reordered: entry 6 holds the record of entry 7"),
        "{text}"
    );
}
