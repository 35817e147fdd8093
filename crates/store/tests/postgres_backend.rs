//! The PostgreSQL backend through the `Store` contract: versions, history, atomicity, tenants and
//! partitions, the change feed under concurrent writers in two stores (= two processes), lost
//! updates, schema versions, unreachable servers and the COPY bulk path.
//!
//! Needs `MEDICUS_TEST_DATABASE=postgres://…` (a server URL; `scripts/pg-test-cluster start`
//! prints one). Each test creates its own database and drops it at the end; without the variable
//! the tests say they were skipped and pass. Tests that need no server always run.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use medicus_store::index::extract_entries;
use medicus_store::postgres::ScratchDatabase;
use medicus_store::{
    Change, HistoryQuery, HistoryScope, PostgresOptions, PostgresStore, Precondition, Store,
    StoreError,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// A database per test

struct TestDb {
    url: String,
    /// Dropped (with the database) after the test.
    _scratch: ScratchDatabase,
}

/// Runs `sql` on `url` with a connection of its own; returns the rows of the last statement.
fn sql(url: &str, statement: &str) -> Vec<tokio_postgres::Row> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client.query(statement, &[]).await.unwrap()
    })
}

fn count(url: &str, statement: &str) -> i64 {
    sql(url, statement)[0].get(0)
}

/// A fresh database on the server named by `MEDICUS_TEST_DATABASE`, or `None` (test skipped).
fn test_db(test: &str) -> Option<TestDb> {
    let Some(scratch) = ScratchDatabase::from_env().unwrap() else {
        println!(
            "{test}: skipped, MEDICUS_TEST_DATABASE is not set (scripts/pg-test-cluster start)"
        );
        return None;
    };
    Some(TestDb {
        url: scratch.url().to_owned(),
        _scratch: scratch,
    })
}

impl TestDb {
    fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url, PostgresOptions::default()).unwrap()
    }

    /// A store with tenants `a` and `b`.
    fn store_ab(&self) -> PostgresStore {
        let store = self.store();
        store.create_tenant("a").unwrap();
        store.create_tenant("b").unwrap();
        store
    }

    fn tid(&self, tenant: &str) -> i32 {
        sql(
            &self.url,
            &format!("SELECT tid FROM tenant WHERE name = '{tenant}'"),
        )[0]
        .get(0)
    }
}

macro_rules! db {
    ($name:literal) => {
        match test_db($name) {
            Some(db) => db,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn patient(family: &str, birth: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "http://hospital.example/mrn", "value": format!("mrn-{family}")}],
        "name": [{"family": family, "given": ["Anna"]}],
        "gender": "female",
        "birthDate": birth
    })
}

fn put(store: &dyn Store, tenant: &str, rt: &str, id: &str, body: Value) -> i64 {
    let mut s = store.write_session(tenant).unwrap();
    let out = s.put(rt, id, body, Precondition::None).unwrap();
    s.commit().unwrap();
    out.version.version
}

fn all_history(store: &dyn Store, tenant: &str, scope: HistoryScope<'_>) -> (u64, Vec<String>) {
    let mut r = store.read_session(tenant).unwrap();
    let h = r
        .history(
            scope,
            &HistoryQuery {
                count: 1000,
                ..Default::default()
            },
        )
        .unwrap();
    (
        h.total,
        h.entries
            .iter()
            .map(|e| format!("{}/{}", e.id, e.version))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// CRUD, versions, history

#[test]
fn versions_meta_vread_delete_and_recreate() {
    let db = db!("versions_meta_vread_delete_and_recreate");
    let store = db.store_ab();
    assert_eq!(
        put(
            &store,
            "a",
            "Patient",
            "p1",
            patient("Müller", "1970-05-01")
        ),
        1
    );
    assert_eq!(
        put(&store, "a", "Patient", "p1", patient("Meier", "1970-05-01")),
        2
    );
    let mut r = store.read_session("a").unwrap();
    let cur = r.read("Patient", "p1").unwrap().unwrap();
    assert_eq!(cur.version, 2);
    let body = cur.body.unwrap();
    assert_eq!(body["meta"]["versionId"], "2");
    assert_eq!(body["id"], "p1");
    assert_eq!(body["name"][0]["family"], "Meier");
    assert!(body["meta"]["lastUpdated"].as_str().unwrap().ends_with('Z'));
    let v1 = r.vread("Patient", "p1", 1).unwrap().unwrap();
    assert_eq!(v1.body.unwrap()["name"][0]["family"], "Müller");
    assert!(v1.last_updated_us < cur.last_updated_us);
    assert!(r.vread("Patient", "p1", 3).unwrap().is_none());
    assert!(r.read("Patient", "nope").unwrap().is_none());
    assert!(r.read("NoSuchType", "p1").unwrap().is_none());
    drop(r);

    let mut w = store.write_session("a").unwrap();
    let deleted = w
        .delete("Patient", "p1", Precondition::None)
        .unwrap()
        .unwrap();
    assert_eq!(deleted.version, 3);
    assert!(
        w.delete("Patient", "p1", Precondition::None)
            .unwrap()
            .is_none()
    );
    assert!(
        w.delete("Patient", "p9", Precondition::None)
            .unwrap()
            .is_none()
    );
    w.commit().unwrap();
    let mut r = store.read_session("a").unwrap();
    assert!(r.read("Patient", "p1").unwrap().unwrap().is_deleted());
    drop(r);
    // A write after a deletion creates again.
    let mut w = store.write_session("a").unwrap();
    let out = w
        .put("Patient", "p1", patient("B", "1980"), Precondition::None)
        .unwrap();
    assert!(out.created);
    assert_eq!(out.version.version, 4);
    w.commit().unwrap();
    let (total, versions) = all_history(&store, "a", HistoryScope::Instance("Patient", "p1"));
    assert_eq!(total, 4);
    assert_eq!(versions, ["p1/4", "p1/3", "p1/2", "p1/1"]);
}

#[test]
fn history_pages_since_and_scopes() {
    let db = db!("history_pages_since_and_scopes");
    let store = db.store_ab();
    for i in 0..5 {
        put(
            &store,
            "a",
            "Patient",
            &format!("p{i}"),
            patient("X", "1990"),
        );
    }
    put(
        &store,
        "a",
        "Observation",
        "o1",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
    );
    // Several versions in one session share its position; the cursor still pages through them.
    let mut w = store.write_session("a").unwrap();
    for i in 5..8 {
        w.put(
            "Patient",
            &format!("p{i}"),
            patient("Y", "1991"),
            Precondition::None,
        )
        .unwrap();
    }
    w.commit().unwrap();
    let mut r = store.read_session("a").unwrap();
    let mut q = HistoryQuery {
        count: 2,
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = r.history(HistoryScope::Type("Patient"), &q).unwrap();
        assert_eq!(page.total, 8);
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.iter().map(|e| e.id.clone()));
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["p7", "p6", "p5", "p4", "p3", "p2", "p1", "p0"]);
    let all = r
        .history(
            HistoryScope::System,
            &HistoryQuery {
                count: 100,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(all.total, 9);
    assert!(all.next.is_none());
    let newest = all.entries[0].last_updated_us;
    let since = r
        .history(
            HistoryScope::System,
            &HistoryQuery {
                count: 100,
                since_us: Some(newest),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(since.total, 3);
    let before = r
        .history(
            HistoryScope::System,
            &HistoryQuery {
                count: 100,
                before_us: Some(newest - 1),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(before.total, 6);
    assert_eq!(before.entries.len(), 6);
    let unknown = r.history(HistoryScope::Type("NoSuchType"), &q).unwrap();
    assert_eq!(unknown.total, 0);
    let absent = r
        .history(HistoryScope::Instance("Patient", "zz"), &q)
        .unwrap();
    assert_eq!(absent.total, 0);
}

#[test]
fn version_preconditions() {
    let db = db!("version_preconditions");
    let store = db.store_ab();
    put(&store, "a", "Patient", "p1", patient("A", "1980"));
    let mut w = store.write_session("a").unwrap();
    let err = w
        .put(
            "Patient",
            "p1",
            patient("B", "1980"),
            Precondition::VersionIs(7),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::VersionConflict {
                expected: 7,
                current: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
    // A conflict is not a database error: the session goes on.
    let ok = w
        .put(
            "Patient",
            "p1",
            patient("B", "1980"),
            Precondition::VersionIs(1),
        )
        .unwrap();
    assert!(!ok.created);
    assert_eq!(ok.version.version, 2);
    let err = w
        .put(
            "Patient",
            "nope",
            patient("B", "1980"),
            Precondition::VersionIs(1),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::VersionConflict { current: None, .. }
    ));
    let err = w
        .delete("Patient", "p1", Precondition::VersionIs(1))
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::VersionConflict {
            current: Some(2),
            ..
        }
    ));
    w.commit().unwrap();
    let mut r = store.read_session("a").unwrap();
    assert_eq!(r.read("Patient", "p1").unwrap().unwrap().version, 2);
    assert!(r.read("Patient", "nope").unwrap().is_none());
}

/// A copying store (`medicus migrate`) keeps each version's time: writes after
/// `set_timestamp_us` carry it, on both the INSERT and the COPY path.
#[test]
fn set_timestamp_us_stamps_the_following_writes() {
    let db = db!("set_timestamp_us_stamps_the_following_writes");
    let store = db.store_ab();
    let t1 = 1_600_000_000_000_000; // 2020-09-13T12:26:40Z
    let mut w = store.write_session("a").unwrap();
    let own = w.timestamp_us();
    w.put("Patient", "own", patient("O", "1980"), Precondition::None)
        .unwrap();
    w.set_timestamp_us(t1).unwrap();
    assert_eq!(w.timestamp_us(), t1);
    let out = w
        .put("Patient", "p1", patient("A", "1980"), Precondition::None)
        .unwrap();
    assert_eq!(out.version.last_updated_us, t1);
    assert_eq!(
        out.version.body.unwrap()["meta"]["lastUpdated"],
        "2020-09-13T12:26:40.000Z"
    );
    w.set_timestamp_us(t1 + 1_000_000).unwrap();
    w.delete("Patient", "p1", Precondition::None).unwrap();
    for i in 0..300 {
        w.put(
            "Patient",
            &format!("bulk{i}"),
            patient("B", "1980"),
            Precondition::None,
        )
        .unwrap();
    }
    w.commit().unwrap();
    let mut r = store.read_session("a").unwrap();
    assert_eq!(
        r.read("Patient", "own").unwrap().unwrap().last_updated_us,
        own
    );
    assert_eq!(
        r.vread("Patient", "p1", 1)
            .unwrap()
            .unwrap()
            .last_updated_us,
        t1
    );
    let deleted = r.read("Patient", "p1").unwrap().unwrap();
    assert!(deleted.is_deleted());
    assert_eq!(deleted.last_updated_us, t1 + 1_000_000);
    let bulk = r.read("Patient", "bulk299").unwrap().unwrap();
    assert_eq!(bulk.last_updated_us, t1 + 1_000_000);
    assert_eq!(
        bulk.body.unwrap()["meta"]["lastUpdated"],
        "2020-09-13T12:26:41.000Z"
    );
    let since = r
        .history(
            HistoryScope::System,
            &HistoryQuery {
                count: 1,
                before_us: Some(t1 + 1_000_000),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(since.total, 302);
}

// ---------------------------------------------------------------------------------------------
// Tenants and partitions

#[test]
fn tenants_are_isolated_and_partitioned() {
    let db = db!("tenants_are_isolated_and_partitioned");
    let store = db.store_ab();
    put(&store, "a", "Patient", "p1", patient("Schmidt", "1980"));
    let mut rb = store.read_session("b").unwrap();
    assert!(rb.read("Patient", "p1").unwrap().is_none());
    assert!(rb.vread("Patient", "p1", 1).unwrap().is_none());
    assert_eq!(all_history(&store, "b", HistoryScope::System).0, 0);
    drop(rb);
    assert_eq!(
        put(&store, "b", "Patient", "p1", patient("Other", "1980")),
        1
    );
    assert!(matches!(
        store.read_session("zzz"),
        Err(StoreError::UnknownTenant(_))
    ));
    assert!(matches!(
        store.write_session("zzz"),
        Err(StoreError::UnknownTenant(_))
    ));
    assert!(matches!(
        store.create_tenant("bad/id"),
        Err(StoreError::InvalidTenantId(_))
    ));
    assert!(!store.create_tenant("a").unwrap());
    assert!(store.create_tenant("B-upper").unwrap());
    assert_eq!(store.list_tenants().unwrap(), ["B-upper", "a", "b"]);
    assert!(store.tenant_exists("a").unwrap());
    assert!(!store.tenant_exists("zzz").unwrap());

    // Every partitioned table has one partition per tenant, holding only that tenant's rows.
    let partitions = count(
        &db.url,
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent
         WHERE c.relname = 'resource'",
    );
    assert_eq!(partitions, 3);
    let per_table = sql(
        &db.url,
        "SELECT c.relname::text, count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent
         WHERE c.relkind = 'p' GROUP BY c.relname",
    );
    assert!(
        per_table.len() >= 14,
        "{} partitioned tables",
        per_table.len()
    );
    for row in &per_table {
        assert_eq!(row.get::<_, i64>(1), 3, "{}", row.get::<_, String>(0));
    }
    let (ta, tb) = (db.tid("a"), db.tid("b"));
    assert_eq!(
        count(&db.url, &format!("SELECT count(*) FROM resource_t{ta}")),
        1
    );
    assert_eq!(
        count(&db.url, &format!("SELECT count(*) FROM version_t{tb}")),
        1
    );
    assert!(count(&db.url, &format!("SELECT count(*) FROM idx_string_t{ta}")) > 0);

    // A tenant created by another process is found without a restart.
    let other = db.store();
    assert!(other.create_tenant("late").unwrap());
    assert!(store.tenant_exists("late").unwrap());
    put(&store, "late", "Patient", "p1", patient("Late", "1980"));
}

// ---------------------------------------------------------------------------------------------
// Atomicity

#[test]
fn uncommitted_and_failed_sessions_leave_nothing() {
    let db = db!("uncommitted_and_failed_sessions_leave_nothing");
    let store = db.store_ab();
    {
        let mut w = store.write_session("a").unwrap();
        w.put("Patient", "p1", patient("A", "1980"), Precondition::None)
            .unwrap();
        w.set_checkpoint("import:x", "10").unwrap();
        // dropped without commit
    }
    let mut r = store.read_session("a").unwrap();
    assert!(r.read("Patient", "p1").unwrap().is_none());
    drop(r);
    assert!(store.changes(0, 10).unwrap().is_empty());
    assert_eq!(store.checkpoint("import:x").unwrap(), None);
    // A statement that fails aborts the PostgreSQL transaction: the session refuses to commit
    // (COMMIT would quietly roll back) and nothing of it remains.
    let mut w = store.write_session("a").unwrap();
    w.put("Patient", "p2", patient("B", "1980"), Precondition::None)
        .unwrap();
    let err = w
        .put(
            "Patient",
            "bad\0id",
            patient("C", "1980"),
            Precondition::None,
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(w.read("Patient", "p2").is_err());
    assert!(w.commit().is_err());
    let mut r = store.read_session("a").unwrap();
    assert!(r.read("Patient", "p2").unwrap().is_none());
    drop(r);
    for table in ["resource", "version", "idx_token", "idx_string", "tx_log"] {
        assert_eq!(
            count(&db.url, &format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    // The pool hands out clean connections afterwards.
    put(&store, "a", "Patient", "p3", patient("D", "1980"));
    let mut w = store.write_session("a").unwrap();
    w.put("Patient", "p4", patient("E", "1980"), Precondition::None)
        .unwrap();
    w.set_checkpoint("import:x", "20").unwrap();
    w.commit().unwrap();
    assert_eq!(store.checkpoint("import:x").unwrap().as_deref(), Some("20"));
    assert_eq!(count(&db.url, "SELECT count(*) FROM resource"), 2);
}

#[test]
fn a_session_sees_its_own_writes_and_rewrites_index_rows() {
    let db = db!("a_session_sees_its_own_writes_and_rewrites_index_rows");
    let store = db.store_ab();
    let strings = |value: &str| {
        count(
            &db.url,
            &format!("SELECT count(*) FROM idx_string WHERE value = '{value}'"),
        )
    };
    let mut w = store.write_session("a").unwrap();
    w.put(
        "Patient",
        "p1",
        patient("Alpha", "1980"),
        Precondition::None,
    )
    .unwrap();
    assert_eq!(w.read("Patient", "p1").unwrap().unwrap().version, 1);
    // Rewritten in the same session, before and after its rows reached the database.
    w.put("Patient", "p1", patient("Beta", "1980"), Precondition::None)
        .unwrap();
    w.put(
        "Patient",
        "p2",
        patient("Alpha", "1990"),
        Precondition::None,
    )
    .unwrap();
    w.put(
        "Patient",
        "p2",
        patient("Gamma", "1990"),
        Precondition::None,
    )
    .unwrap();
    let h = w
        .history(
            HistoryScope::Instance("Patient", "p2"),
            &HistoryQuery {
                count: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(h.total, 2);
    w.delete("Patient", "p2", Precondition::None).unwrap();
    w.commit().unwrap();
    assert_eq!(strings("alpha"), 0);
    assert_eq!(strings("gamma"), 0);
    assert!(strings("beta") > 0);
    // Index rows exist only for the current version of live resources.
    let p1_rows = count(
        &db.url,
        "SELECT count(*) FROM idx_token t JOIN resource r ON r.tenant = t.tenant AND r.rid = t.rid
         WHERE r.id = 'p1'",
    );
    let p2_rows = count(
        &db.url,
        "SELECT count(*) FROM idx_token t JOIN resource r ON r.tenant = t.tenant AND r.rid = t.rid
         WHERE r.id = 'p2'",
    );
    assert!(p1_rows > 0);
    assert_eq!(p2_rows, 0);
    let mut r = store.read_session("a").unwrap();
    assert_eq!(r.read("Patient", "p1").unwrap().unwrap().version, 2);
    assert!(r.read("Patient", "p2").unwrap().unwrap().is_deleted());
    drop(r);
    // Search reads the same rows: the committed state, and in a session its own writes.
    let q = |family: &str| {
        let pairs = vec![("family".to_string(), family.to_string())];
        medicus_store::search::parse_search(medicus_fhir::r4(), Some("Patient"), &pairs).unwrap()
    };
    let ids = |page: medicus_store::search::SearchPage| {
        page.resources.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    let mut r = store.read_session("a").unwrap();
    assert_eq!(ids(r.search(Some("Patient"), &q("beta")).unwrap()), ["p1"]);
    assert!(ids(r.search(Some("Patient"), &q("alpha")).unwrap()).is_empty());
    drop(r);
    let mut w = store.write_session("a").unwrap();
    w.put(
        "Patient",
        "p3",
        patient("Alpha", "1970"),
        Precondition::None,
    )
    .unwrap();
    assert_eq!(ids(w.search(Some("Patient"), &q("alpha")).unwrap()), ["p3"]);
}

// ---------------------------------------------------------------------------------------------
// Change feed

#[test]
fn change_feed_is_ordered_resumable_and_never_splits_a_session() {
    let db = db!("change_feed_is_ordered_resumable_and_never_splits_a_session");
    let store = db.store_ab();
    put(&store, "a", "Patient", "p1", patient("A", "1980"));
    put(&store, "b", "Patient", "p2", patient("B", "1980"));
    let mut w = store.write_session("a").unwrap();
    w.delete("Patient", "p1", Precondition::None).unwrap();
    w.commit().unwrap();
    let all = store.changes(0, 100).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].tx < w[1].tx));
    assert_eq!((all[1].tenant.as_str(), all[1].id.as_str()), ("b", "p2"));
    assert!(all[2].deleted);
    assert_eq!(all[2].version, 2);
    let rest = store.changes(all[0].tx, 100).unwrap();
    assert_eq!(rest, all[1..].to_vec());

    // A session of three changes after one of two.
    let mut w = store.write_session("a").unwrap();
    for id in ["x1", "x2"] {
        w.put("Patient", id, patient("X", "1980"), Precondition::None)
            .unwrap();
    }
    w.commit().unwrap();
    let mut w = store.write_session("a").unwrap();
    for id in ["y1", "y2", "y3"] {
        w.put("Patient", id, patient("Y", "1980"), Precondition::None)
            .unwrap();
    }
    w.commit().unwrap();
    let after = all[2].tx;
    assert_eq!(store.changes(after, 100).unwrap().len(), 5);
    let page = store.changes(after, 3).unwrap();
    assert_eq!(
        page.len(),
        2,
        "the second session does not fit and is not split"
    );
    let page2 = store.changes(page[1].tx, 2).unwrap();
    assert_eq!(
        page2.len(),
        3,
        "a session larger than the limit comes whole"
    );
    assert!(page2.iter().all(|c| c.tx == page2[0].tx));
    assert!(store.changes(page2[0].tx, 10).unwrap().is_empty());
    assert!(store.changes(after, 0).unwrap().is_empty());
}

/// Writers in two stores (two processes) commit concurrently, some slowly, while a reader polls
/// the feed: every committed change arrives exactly once, and positions never go backwards.
#[test]
fn change_feed_stays_monotonic_under_concurrent_writers() {
    let db = db!("change_feed_stays_monotonic_under_concurrent_writers");
    let stores = [Arc::new(db.store_ab()), Arc::new(db.store())];
    let done = Arc::new(AtomicBool::new(false));
    let expected_len = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
    let reader = {
        let store = Arc::new(db.store());
        let (done, expected_len) = (done.clone(), expected_len.clone());
        std::thread::spawn(move || {
            let mut seen: Vec<Change> = Vec::new();
            let mut after = 0;
            let mut deadline = None;
            loop {
                let finished = done.load(Ordering::SeqCst);
                if finished && deadline.is_none() {
                    deadline = Some(Instant::now() + Duration::from_secs(60));
                }
                let page = store.changes(after, 7).unwrap();
                for c in &page {
                    assert!(c.tx >= after, "position {} after {after}", c.tx);
                    if let Some(last) = seen.last() {
                        assert!(c.tx >= last.tx, "position {} after {}", c.tx, last.tx);
                    }
                }
                if let Some(last) = page.last() {
                    assert!(last.tx > after);
                    after = last.tx;
                }
                let empty = page.is_empty();
                seen.extend(page);
                // Once the writers are done, read until everything arrived, then once more: a
                // duplicate or a late straggler would show.
                let complete = seen.len() >= expected_len.load(Ordering::SeqCst);
                if finished && empty && (complete || deadline.is_some_and(|d| Instant::now() > d)) {
                    return seen;
                }
                if empty {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = stores[w % 2].clone();
            std::thread::spawn(move || {
                let mut committed = Vec::new();
                for i in 0..20 {
                    let tenant = if (w + i) % 3 == 0 { "b" } else { "a" };
                    let mut s = store.write_session(tenant).unwrap();
                    let mut outcomes = Vec::new();
                    for k in 0..(1 + i % 3) {
                        // Shared ids make writers wait for each other's row locks.
                        let id = if k == 0 {
                            format!("shared{}", i % 4)
                        } else {
                            format!("w{w}i{i}k{k}")
                        };
                        let out = s
                            .put("Patient", &id, patient("F", "1980"), Precondition::None)
                            .unwrap();
                        outcomes.push((tenant.to_owned(), id, out.version.version));
                    }
                    // Slow sessions hold a low position while later ones commit.
                    if (w + i) % 5 == 0 {
                        std::thread::sleep(Duration::from_millis(30));
                    }
                    s.commit().unwrap();
                    committed.extend(outcomes);
                }
                committed
            })
        })
        .collect();
    let mut expected = HashSet::new();
    for w in writers {
        for c in w.join().unwrap() {
            assert!(expected.insert(c), "a version was written twice");
        }
    }
    expected_len.store(expected.len(), Ordering::SeqCst);
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().unwrap();
    let got: Vec<(String, String, i64)> = seen
        .iter()
        .map(|c| (c.tenant.clone(), c.id.clone(), c.version))
        .collect();
    let unique: HashSet<_> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "a change was delivered twice");
    assert_eq!(unique, expected);
    assert!(seen.windows(2).all(|w| w[0].tx <= w[1].tx));
    // Versions of one resource arrive in version order.
    let mut last: HashMap<(String, String), i64> = HashMap::new();
    for (tenant, id, version) in got {
        let prev = last.insert((tenant, id), version).unwrap_or(0);
        assert_eq!(version, prev + 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency across processes

/// Read-modify-write with If-Match from two stores (two processes) and several threads each:
/// with retries on conflicts, N increments end at exactly N.
#[test]
fn no_lost_updates_across_two_stores() {
    let db = db!("no_lost_updates_across_two_stores");
    let stores = [Arc::new(db.store_ab()), Arc::new(db.store())];
    let counter = |n: i64| json!({"resourceType": "Patient", "multipleBirthInteger": n});
    put(stores[0].as_ref(), "a", "Patient", "c", counter(0));
    const THREADS: usize = 6;
    const EACH: i64 = 15;
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = stores[t % 2].clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut conflicts = 0;
                for _ in 0..EACH {
                    loop {
                        let current = {
                            let mut r = store.read_session("a").unwrap();
                            r.read("Patient", "c").unwrap().unwrap()
                        };
                        let n = current.body.unwrap()["multipleBirthInteger"]
                            .as_i64()
                            .unwrap();
                        let mut w = store.write_session("a").unwrap();
                        match w.put(
                            "Patient",
                            "c",
                            counter(n + 1),
                            Precondition::VersionIs(current.version),
                        ) {
                            Ok(_) => {
                                w.commit().unwrap();
                                break;
                            }
                            Err(StoreError::VersionConflict { .. }) => conflicts += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let mut r = stores[1].read_session("a").unwrap();
    let last = r.read("Patient", "c").unwrap().unwrap();
    let total = THREADS as i64 * EACH;
    assert_eq!(last.body.unwrap()["multipleBirthInteger"], total);
    assert_eq!(last.version, total + 1);
    println!("{total} increments, {conflicts} conflicts retried");
}

/// Creates of one new id race in two stores: exactly one creates, the others update it.
#[test]
fn concurrent_creates_of_one_id_make_one_resource() {
    let db = db!("concurrent_creates_of_one_id_make_one_resource");
    let stores = [Arc::new(db.store_ab()), Arc::new(db.store())];
    const THREADS: usize = 8;
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = stores[t % 2].clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut w = store.write_session("a").unwrap();
                barrier.wait();
                let out = w
                    .put("Patient", "new", patient("N", "1980"), Precondition::None)
                    .unwrap();
                // Hold the row lock a moment so the others queue behind it.
                std::thread::sleep(Duration::from_millis(20));
                w.commit().unwrap();
                (out.created, out.version.version)
            })
        })
        .collect();
    let results: Vec<(bool, i64)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.0).count(), 1, "{results:?}");
    let mut versions: Vec<i64> = results.iter().map(|r| r.1).collect();
    versions.sort();
    assert_eq!(versions, (1..=THREADS as i64).collect::<Vec<_>>());
    assert_eq!(count(&db.url, "SELECT count(*) FROM resource"), 1);
}

/// The synchronous API blocks on the store's own runtime: from a plain thread, from a
/// `spawn_blocking` thread of another runtime, and the store may be dropped inside async code.
#[test]
fn usable_from_plain_threads_and_other_runtimes() {
    let db = db!("usable_from_plain_threads_and_other_runtimes");
    let store = Arc::new(db.store_ab());
    let s = store.clone();
    std::thread::spawn(move || put(s.as_ref(), "a", "Patient", "plain", patient("P", "1980")))
        .join()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = store.clone();
    let version = rt.block_on(async move {
        tokio::task::spawn_blocking(move || {
            put(s.as_ref(), "a", "Patient", "plain", patient("Q", "1980"))
        })
        .await
        .unwrap()
    });
    assert_eq!(version, 2);
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = store.clone();
    let read = current.block_on(async move {
        tokio::task::spawn_blocking(move || {
            let mut r = s.read_session("a").unwrap();
            r.read("Patient", "plain").unwrap().unwrap().version
        })
        .await
        .unwrap()
    });
    assert_eq!(read, 2);
    // The last reference dies on an async worker thread.
    rt.block_on(async move {
        tokio::spawn(async move { drop(store) }).await.unwrap();
    });
}

/// More threads than pooled connections, all calling at once: the thread that drives the
/// runtime's I/O while it waits for a connection also completes the others' statements, so
/// nobody waits forever.
#[test]
fn many_threads_share_a_small_pool() {
    let db = db!("many_threads_share_a_small_pool");
    drop(db.store_ab());
    let store = Arc::new(
        PostgresStore::connect(
            &db.url,
            PostgresOptions {
                pool_size: 3,
                acquire_timeout: Duration::from_secs(60),
                ..PostgresOptions::default()
            },
        )
        .unwrap(),
    );
    put(store.as_ref(), "a", "Patient", "p", patient("P", "1980"));
    let started = Instant::now();
    let threads: Vec<_> = (0..24)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    let mut r = store.read_session("a").unwrap();
                    assert!(r.read("Patient", "p").unwrap().is_some());
                    drop(r);
                    put(
                        store.as_ref(),
                        "a",
                        "Patient",
                        &format!("t{t}i{i}"),
                        patient("T", "1980"),
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    println!("480 sessions on 3 connections: {:?}", started.elapsed());
    assert_eq!(count(&db.url, "SELECT count(*) FROM resource"), 241);
}

// ---------------------------------------------------------------------------------------------
// Schema and connections

#[test]
fn schema_newer_than_the_binary_is_refused() {
    let db = db!("schema_newer_than_the_binary_is_refused");
    drop(db.store());
    let version: String = sql(
        &db.url,
        "SELECT value FROM meta WHERE key = 'schema_version'",
    )[0]
    .get(0);
    assert_eq!(version, medicus_store::postgres::SCHEMA_VERSION.to_string());
    // Reconnecting at the same version migrates nothing and keeps the data.
    let store = db.store_ab();
    put(&store, "a", "Patient", "p1", patient("A", "1980"));
    drop(store);
    let store = db.store();
    assert_eq!(store.list_tenants().unwrap(), ["a", "b"]);
    drop(store);
    sql(
        &db.url,
        "UPDATE meta SET value = '999' WHERE key = 'schema_version'",
    );
    let err = PostgresStore::connect(&db.url, PostgresOptions::default())
        .err()
        .unwrap();
    let message = err.to_string();
    assert!(
        message.contains("999") && message.contains("newer"),
        "{message}"
    );
}

#[test]
fn processes_starting_together_migrate_once() {
    let db = db!("processes_starting_together_migrate_once");
    let url = Arc::new(db.url.clone());
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let store = PostgresStore::connect(&url, PostgresOptions::default()).unwrap();
                store.create_tenant("t").map(|_| ())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    assert_eq!(count(&db.url, "SELECT count(*) FROM tenant"), 1);
    assert_eq!(
        count(&db.url, "SELECT count(*) FROM rtype"),
        medicus_fhir::r4().resource_types().len() as i64
    );
}

fn quick_options() -> PostgresOptions {
    PostgresOptions {
        connect_timeout: Duration::from_secs(1),
        acquire_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    }
}

#[test]
fn a_closed_port_fails_fast_as_unavailable() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = PostgresStore::connect(
        &format!("postgres://medicus:secret@127.0.0.1:{port}/medicus"),
        quick_options(),
    )
    .err()
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Accepts TCP connections (the kernel completes them) but never speaks.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let err = PostgresStore::connect(
        &format!("postgres://medicus@127.0.0.1:{port}/medicus"),
        quick_options(),
    )
    .err()
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    drop(listener);
}

#[test]
fn invalid_urls_are_configuration_errors() {
    let err = PostgresStore::connect("postgres://host:notaport/db", quick_options())
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(err.to_string().contains("URL"), "{err}");
}

/// Connections the server drops (a restart, a failover) fail the request in flight as
/// `Unavailable`; the pool replaces them and the next request works.
#[test]
fn lost_connections_are_unavailable_and_recover() {
    let db = db!("lost_connections_are_unavailable_and_recover");
    let store = db.store_ab();
    put(&store, "a", "Patient", "p1", patient("A", "1980"));
    let mut r = store.read_session("a").unwrap();
    sql(
        &db.url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    // The backend needs a moment to go.
    std::thread::sleep(Duration::from_millis(200));
    let err = r.read("Patient", "p1").unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    drop(r);
    let mut ok = false;
    for _ in 0..3 {
        if let Ok(mut r) = store.read_session("a")
            && r.read("Patient", "p1").is_ok()
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "the store did not recover");
    put(&store, "a", "Patient", "p2", patient("B", "1980"));
}

// ---------------------------------------------------------------------------------------------
// The bulk path

/// MII-shaped synthetic resources, about `n` of them.
fn synthetic(n: usize) -> Vec<Value> {
    let generator = medicus_synth::Generator::new(medicus_synth::GeneratorConfig {
        hospitals: 2,
        ..Default::default()
    })
    .unwrap();
    let mut out = Vec::with_capacity(n + 200);
    let mut i = 0;
    while out.len() < n {
        out.extend(generator.patient(i).values().unwrap());
        i += 1;
    }
    out.truncate(n);
    out
}

fn id_type(v: &Value) -> (String, String) {
    (
        v["resourceType"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    )
}

/// Index tables and their columns without tenant and rid.
const INDEX_COLUMNS: &[(&str, &str)] = &[
    ("idx_token", "param, code, system"),
    ("idx_string", "param, value, exact"),
    ("idx_date", "param, lo, hi"),
    ("idx_number", "param, value, lo, hi"),
    ("idx_quantity", "param, code, system, value, lo, hi"),
    ("idx_reference", "param, target, target_type"),
    ("idx_uri", "param, value"),
    ("idx_composite", "param, key"),
    ("idx_composite_range", "param, key, lo, hi"),
    ("idx_code_date", "param, code, lo, hi"),
    ("fts", "narrative, content"),
];

/// 10,000 resources in one write session go in by COPY; the session reads its own writes half
/// way; the index rows equal those the row-by-row path writes for the same resources.
#[test]
fn bulk_session_copies_and_matches_the_small_path() {
    let db = db!("bulk_session_copies_and_matches_the_small_path");
    let store = db.store_ab();
    let resources = synthetic(10_000);
    let defs = medicus_fhir::r4();
    let started = Instant::now();
    let mut w = store.write_session("a").unwrap();
    for (i, body) in resources.iter().enumerate() {
        let (rt, id) = id_type(body);
        let entries = extract_entries(defs, &rt, body);
        let out = w
            .put_extracted(&rt, &id, body.clone(), entries, Precondition::None)
            .unwrap();
        assert!(out.created);
        if i == 5_000 {
            let (rt0, id0) = id_type(&resources[0]);
            assert_eq!(w.read(&rt0, &id0).unwrap().unwrap().version, 1);
        }
    }
    w.set_checkpoint("bulk", "done").unwrap();
    w.commit().unwrap();
    println!("10,000 resources in one session: {:?}", started.elapsed());
    assert_eq!(store.checkpoint("bulk").unwrap().as_deref(), Some("done"));
    let ta = db.tid("a");
    assert_eq!(
        count(&db.url, &format!("SELECT count(*) FROM version_t{ta}")),
        10_000
    );
    let mut r = store.read_session("a").unwrap();
    for body in resources.iter().step_by(997) {
        let (rt, id) = id_type(body);
        let got = r.read(&rt, &id).unwrap().unwrap();
        assert_eq!(got.version, 1);
        let mut expected = body.clone();
        let got = got.body.unwrap();
        expected["meta"] = got["meta"].clone();
        assert_eq!(got, expected);
    }
    let (rt0, _) = id_type(&resources[0]);
    let mut q = HistoryQuery {
        count: 1,
        ..Default::default()
    };
    let by_type = resources
        .iter()
        .filter(|v| v["resourceType"] == rt0.as_str())
        .count();
    assert_eq!(
        r.history(HistoryScope::Type(&rt0), &q).unwrap().total,
        by_type as u64
    );
    q.count = 10;
    assert_eq!(r.history(HistoryScope::System, &q).unwrap().total, 10_000);
    drop(r);

    // The first 1,000 in sessions of 10 (the INSERT path) into tenant b: the same index rows.
    for chunk in resources[..1000].chunks(10) {
        let mut w = store.write_session("b").unwrap();
        for body in chunk {
            let (rt, id) = id_type(body);
            w.put(&rt, &id, body.clone(), Precondition::None).unwrap();
        }
        w.commit().unwrap();
    }
    let ids: Vec<String> = resources[..1000]
        .iter()
        .map(|v| format!("'{}'", id_type(v).1))
        .collect();
    let ids = ids.join(",");
    let tb = db.tid("b");
    for (table, columns) in INDEX_COLUMNS {
        let rows_of = |tenant: i32| {
            format!(
                "SELECT r.rtype, r.id, {cols} FROM {table} i
                 JOIN resource r ON r.tenant = i.tenant AND r.rid = i.rid
                 WHERE i.tenant = {tenant} AND r.id IN ({ids})",
                cols = columns
                    .split(", ")
                    .map(|c| format!("i.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let a = rows_of(ta);
        let b = rows_of(tb);
        let total = count(&db.url, &format!("SELECT count(*) FROM ({a}) x"));
        let only_a = count(
            &db.url,
            &format!("SELECT count(*) FROM ({a} EXCEPT ALL {b}) x"),
        );
        let only_b = count(
            &db.url,
            &format!("SELECT count(*) FROM ({b} EXCEPT ALL {a}) x"),
        );
        assert_eq!(
            (only_a, only_b),
            (0, 0),
            "{table}: COPY and INSERT rows differ"
        );
        if !matches!(*table, "idx_number" | "idx_composite" | "idx_uri" | "fts") {
            assert!(total > 0, "{table} has no rows for the sample");
        }
    }
    let below = |t: i32| count(&db.url, &format!("SELECT count(*) FROM uri_below_t{t}"));
    assert!(below(ta) >= below(tb));

    // A second bulk pass over the same ids updates every resource (the locking path).
    let mut w = store.write_session("a").unwrap();
    for body in &resources[..2000] {
        let (rt, id) = id_type(body);
        let out = w.put(&rt, &id, body.clone(), Precondition::None).unwrap();
        assert!(!out.created);
        assert_eq!(out.version.version, 2);
    }
    w.commit().unwrap();
    for (table, _) in INDEX_COLUMNS {
        let dup = count(
            &db.url,
            &format!(
                "SELECT count(*) FROM (SELECT rid FROM {table} i WHERE tenant = {ta}
                 AND NOT EXISTS (SELECT 1 FROM resource r WHERE r.tenant = i.tenant AND r.rid = i.rid)) x"
            ),
        );
        assert_eq!(dup, 0, "{table}: rows of no resource");
    }
}

/// A search that runs longer than `search_timeout` is stopped by the database and reported as
/// too costly, and the connection serves the next search. The search is held up by a lock
/// another connection holds, so the test does not depend on the machine's speed.
#[test]
fn a_search_past_the_timeout_is_too_costly() {
    let db = db!("a_search_past_the_timeout_is_too_costly");
    drop(db.store_ab());
    let store = PostgresStore::connect(
        &db.url,
        PostgresOptions {
            search_timeout: Duration::from_millis(300),
            pool_size: 1,
            ..PostgresOptions::default()
        },
    )
    .unwrap();
    put(&store, "a", "Patient", "p1", patient("Alpha", "1980"));
    let pairs = vec![("family".to_owned(), "alpha".to_owned())];
    let q =
        medicus_store::search::parse_search(medicus_fhir::r4(), Some("Patient"), &pairs).unwrap();
    let ta = db.tid("a");
    let locked = Arc::new(Barrier::new(2));
    // Without the timeout the search would wait for the lock: the holder gives up after 20 s,
    // so a broken timeout fails the assertions below instead of hanging the suite.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = {
        let (url, locked) = (db.url.clone(), locked.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                client
                    .batch_execute(&format!(
                        "BEGIN; LOCK TABLE idx_string_t{ta} IN ACCESS EXCLUSIVE MODE"
                    ))
                    .await
                    .unwrap();
                locked.wait();
                let _ = released.recv_timeout(Duration::from_secs(20));
                client.batch_execute("ROLLBACK").await.unwrap();
            });
        })
    };
    locked.wait();
    let started = Instant::now();
    let err = store
        .read_session("a")
        .unwrap()
        .search(Some("Patient"), &q)
        .unwrap_err();
    assert!(matches!(err, StoreError::TooCostly(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let _ = release.send(());
    holder.join().unwrap();
    // The same (only) pooled connection answers the next search.
    let page = store
        .read_session("a")
        .unwrap()
        .search(Some("Patient"), &q)
        .unwrap();
    assert_eq!(page.resources.len(), 1);
    // Writes are not limited by the search timeout.
    put(&store, "a", "Patient", "p2", patient("Alpha", "1990"));
}

/// After a bulk load the tenant's partitions are vacuumed and analysed (and only its own).
#[test]
fn refresh_statistics_vacuums_and_analyses_the_tenants_partitions() {
    let db = db!("refresh_statistics_vacuums_and_analyses_the_tenants_partitions");
    let store = db.store_ab();
    put(&store, "a", "Patient", "p1", patient("Alpha", "1980"));
    store.refresh_statistics("a").unwrap();
    let (ta, tb) = (db.tid("a"), db.tid("b"));
    let done = |tid: i32| {
        count(
            &db.url,
            &format!(
                "SELECT count(*) FROM pg_stat_user_tables WHERE relname LIKE '%\\_t{tid}'
                 AND last_vacuum IS NOT NULL AND last_analyze IS NOT NULL"
            ),
        )
    };
    assert_eq!(done(ta), 14, "every partition of tenant a");
    assert_eq!(done(tb), 0, "nothing of tenant b");
    assert!(matches!(
        store.refresh_statistics("nobody"),
        Err(StoreError::UnknownTenant(_))
    ));
}

/// A database whose index was built by another release (`index_version` differs) gets its
/// index rebuilt from the bodies when a store connects: the same rows as before, for every
/// tenant, and the version set to the current one.
#[test]
fn a_stale_index_is_rebuilt_at_connect() {
    let db = db!("a_stale_index_is_rebuilt_at_connect");
    let store = db.store_ab();
    for i in 0..30 {
        let (tenant, family) = if i % 3 == 0 {
            ("b", "Beta")
        } else {
            ("a", "Alpha")
        };
        put(
            &store,
            tenant,
            "Patient",
            &format!("p{i}"),
            patient(family, "1980"),
        );
    }
    drop(store);
    let (ta, tb) = (db.tid("a"), db.tid("b"));
    let rows = |tid: i32| -> Vec<i64> {
        INDEX_COLUMNS
            .iter()
            .map(|(t, _)| count(&db.url, &format!("SELECT count(*) FROM {t}_t{tid}")))
            .collect()
    };
    let before = (rows(ta), rows(tb));
    assert!(before.0.iter().sum::<i64>() > 0 && before.1.iter().sum::<i64>() > 0);
    for statement in [
        "UPDATE meta SET value = '0' WHERE key = 'index_version'".to_owned(),
        format!("DELETE FROM idx_string_t{ta}"),
        format!("DELETE FROM idx_token_t{tb}"),
        format!("DELETE FROM fts_t{ta}"),
    ] {
        sql(&db.url, &statement);
    }
    assert_ne!(rows(ta), before.0);
    let store = db.store();
    assert_eq!((rows(ta), rows(tb)), before);
    let version = sql(
        &db.url,
        "SELECT value FROM meta WHERE key = 'index_version'",
    )[0]
    .get::<_, String>(0);
    assert_eq!(version, medicus_store::index::INDEX_VERSION.to_string());
    let pairs = vec![("family".to_owned(), "alpha".to_owned())];
    let q =
        medicus_store::search::parse_search(medicus_fhir::r4(), Some("Patient"), &pairs).unwrap();
    let mut q = q;
    q.count = 100;
    let page = store
        .read_session("a")
        .unwrap()
        .search(Some("Patient"), &q)
        .unwrap();
    assert_eq!(page.resources.len(), 20);
}
