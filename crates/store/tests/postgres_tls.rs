//! TLS to PostgreSQL against a throwaway cluster with TLS on (`PG_TEST_SSL=1
//! scripts/pg-test-cluster`): a connection naming the cluster's CA is encrypted and verified; one
//! that does not trust the CA fails instead of connecting unverified; `sslmode=disable` stays
//! plain. Runs in the PostgreSQL pass (`MEDICUS_TEST_DATABASE` set), skipped otherwise.

use std::path::PathBuf;
use std::process::Command;

use medicus_store::{PostgresOptions, PostgresStore, Store};

/// A TLS cluster of its own, stopped and deleted on drop.
struct TlsCluster {
    dir: PathBuf,
    url: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-cluster")
}

impl TlsCluster {
    fn start() -> TlsCluster {
        // Under /tmp itself: the server runs as `postgres` and must reach its certificate files.
        let dir = std::env::temp_dir().join(format!("medicus-pg-tls-{}", std::process::id()));
        let out = Command::new(script())
            .arg("start")
            .env("MEDICUS_PG_TEST_DIR", &dir)
            .env("PG_TEST_SSL", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        TlsCluster { dir, url }
    }

    /// The cluster's URL with another query string.
    fn url_with(&self, query: &str) -> String {
        let base = self
            .url
            .split_once('?')
            .map_or(self.url.as_str(), |(b, _)| b);
        format!("{base}?{query}")
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .env("MEDICUS_PG_TEST_DIR", &self.dir)
            .status();
    }
}

/// Encrypted connections of the `medicus` application, seen by a plain monitoring connection.
fn encrypted_medicus_connections(cluster: &TlsCluster) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) =
            tokio_postgres::connect(&cluster.url_with("sslmode=disable"), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE a.application_name = 'medicus' AND s.ssl",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    })
}

#[test]
fn connections_are_encrypted_and_the_server_certificate_is_verified() {
    if std::env::var("MEDICUS_TEST_DATABASE").map_or(true, |v| v.trim().is_empty()) {
        println!("skipped: MEDICUS_TEST_DATABASE is not set (no PostgreSQL to start)");
        return;
    }
    let cluster = TlsCluster::start();
    assert!(cluster.url.contains("sslrootcert="), "{}", cluster.url);

    // The CA named in the URL: encrypted, verified, working.
    let store = PostgresStore::connect(&cluster.url, PostgresOptions::default()).unwrap();
    store.create_tenant("t").unwrap();
    assert!(store.tenant_exists("t").unwrap());
    assert!(encrypted_medicus_connections(&cluster) >= 1);
    drop(store);

    // A CA nobody named: refused, never connected unverified (also under the default `prefer`).
    for query in ["sslmode=require", "sslmode=prefer"] {
        let Err(e) = PostgresStore::connect(&cluster.url_with(query), PostgresOptions::default())
        else {
            panic!("{query}: a server certificate of an unknown CA was accepted");
        };
        assert!(e.to_string().contains("certificate"), "{query}: {e}");
    }

    // Plain text only when asked for.
    let plain = PostgresStore::connect(
        &cluster.url_with("sslmode=disable"),
        PostgresOptions::default(),
    )
    .unwrap();
    assert!(plain.tenant_exists("t").unwrap());
}
