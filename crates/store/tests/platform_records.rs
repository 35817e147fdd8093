//! The platform-records contract (`medicus_store::platform`) on every backend: versioned
//! documents with compare-and-set, single-use take, expiry, prefix listing and purge; audit
//! chains with a locked append, head, filtered queries, and append-only tables. Runs on SQLite,
//! and on PostgreSQL in the second pass of `scripts/test`.

use std::sync::Barrier;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medicus_store::testing::TestStore;
use medicus_store::{
    AuditEntry, AuditLink, AuditQuery, Doc, DocExpect, PlatformRecords, PostgresOptions,
    PostgresStore, SqliteStore, Store, StoreError,
};
use xxhash_rust::xxh3::xxh3_64;

fn open() -> (tempfile::TempDir, TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::open(dir.path()).unwrap();
    (dir, store)
}

fn now_us() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

const HOUR_US: i64 = 3_600_000_000;

fn is_conflict(r: Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(r, Err(StoreError::DocConflict { .. }))
}

fn keys(docs: &[Doc]) -> Vec<&str> {
    docs.iter().map(|d| d.key.as_str()).collect()
}

#[test]
fn documents_compare_and_set() {
    let (_d, s) = open();
    assert_eq!(
        s.doc_put("client", "c1", b"v1", None, DocExpect::Absent)
            .unwrap(),
        1
    );
    assert!(is_conflict(s.doc_put(
        "client",
        "c1",
        b"x",
        None,
        DocExpect::Absent
    )));
    assert_eq!(
        s.doc_put("client", "c1", b"v2", None, DocExpect::Version(1))
            .unwrap(),
        2
    );
    // A stale version loses and changes nothing.
    assert!(is_conflict(s.doc_put(
        "client",
        "c1",
        b"x",
        None,
        DocExpect::Version(1)
    )));
    assert!(is_conflict(s.doc_put(
        "client",
        "c1",
        b"x",
        None,
        DocExpect::Version(3)
    )));
    let doc = s.doc_get("client", "c1").unwrap().unwrap();
    assert_eq!(
        doc,
        Doc {
            key: "c1".into(),
            version: 2,
            value: b"v2".to_vec(),
            expires_us: None
        }
    );
    assert_eq!(
        s.doc_put("client", "c1", b"v3", None, DocExpect::Any)
            .unwrap(),
        3
    );
    assert_eq!(
        s.doc_put("client", "new", b"n", None, DocExpect::Any)
            .unwrap(),
        1
    );
    // A version cannot create.
    assert!(is_conflict(s.doc_put(
        "client",
        "none",
        b"x",
        None,
        DocExpect::Version(1)
    )));
    assert_eq!(s.doc_get("client", "none").unwrap(), None);
    // Namespaces are separate.
    assert_eq!(s.doc_get("identity", "c1").unwrap(), None);
    assert_eq!(
        s.doc_put("identity", "c1", b"i", None, DocExpect::Absent)
            .unwrap(),
        1
    );
    assert_eq!(s.doc_get("client", "c1").unwrap().unwrap().value, b"v3");

    // Deletes: a wrong expectation is a conflict, nothing there is `false`.
    assert!(is_conflict(s.doc_delete(
        "client",
        "c1",
        DocExpect::Version(2)
    )));
    assert!(is_conflict(s.doc_delete("client", "c1", DocExpect::Absent)));
    assert!(s.doc_delete("client", "c1", DocExpect::Version(3)).unwrap());
    assert_eq!(s.doc_get("client", "c1").unwrap(), None);
    assert!(!s.doc_delete("client", "c1", DocExpect::Any).unwrap());
    assert!(!s.doc_delete("client", "c1", DocExpect::Version(3)).unwrap());
    assert!(!s.doc_delete("client", "c1", DocExpect::Absent).unwrap());
    assert!(s.doc_delete("client", "new", DocExpect::Any).unwrap());
    // A deleted document comes back as a new one.
    assert_eq!(
        s.doc_put("client", "c1", b"again", None, DocExpect::Absent)
            .unwrap(),
        1
    );
    assert_eq!(s.doc_get("identity", "c1").unwrap().unwrap().value, b"i");
    // An empty value is a value.
    s.doc_put("client", "empty", b"", None, DocExpect::Absent)
        .unwrap();
    assert_eq!(s.doc_get("client", "empty").unwrap().unwrap().value, b"");
}

#[test]
fn expired_documents_read_as_absent() {
    let (_d, s) = open();
    let past = now_us() - 1_000;
    let future = now_us() + HOUR_US;
    s.doc_put("grant", "old", b"o", Some(past), DocExpect::Any)
        .unwrap();
    s.doc_put("grant", "live", b"l", Some(future), DocExpect::Any)
        .unwrap();
    assert_eq!(s.doc_get("grant", "old").unwrap(), None);
    assert_eq!(
        s.doc_get("grant", "live").unwrap().unwrap().expires_us,
        Some(future)
    );
    assert_eq!(keys(&s.doc_list("grant", "", None, 10).unwrap()), ["live"]);
    assert_eq!(s.doc_take("grant", "old").unwrap(), None);
    assert!(!s.doc_delete("grant", "old", DocExpect::Any).unwrap());
    assert_eq!(s.doc_scan(None, 10).unwrap().len(), 1);
    // Its version is not there to compare with; it is absent for a create.
    assert!(is_conflict(s.doc_put(
        "grant",
        "old",
        b"x",
        None,
        DocExpect::Version(1)
    )));
    assert_eq!(
        s.doc_put("grant", "old", b"new", None, DocExpect::Absent)
            .unwrap(),
        1
    );
    assert_eq!(s.doc_get("grant", "old").unwrap().unwrap().value, b"new");
    // An unconditional write over an expired document starts a new one.
    s.doc_put("grant", "gone", b"g", None, DocExpect::Any)
        .unwrap();
    assert_eq!(
        s.doc_put("grant", "gone", b"g", Some(past), DocExpect::Any)
            .unwrap(),
        2
    );
    assert_eq!(
        s.doc_put("grant", "gone", b"g2", None, DocExpect::Any)
            .unwrap(),
        1
    );

    // A document that expires while it is stored.
    let soon = now_us() + 300_000;
    s.doc_put("grant", "code", b"c", Some(soon), DocExpect::Absent)
        .unwrap();
    assert!(s.doc_get("grant", "code").unwrap().is_some());
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(s.doc_get("grant", "code").unwrap(), None);
    assert_eq!(s.doc_take("grant", "code").unwrap(), None);
    assert!(!keys(&s.doc_list("grant", "", None, 10).unwrap()).contains(&"code"));
}

#[test]
fn take_returns_the_document_once() {
    let (_d, s) = open();
    let exp = now_us() + HOUR_US;
    s.doc_put("code", "abc", b"grant", Some(exp), DocExpect::Absent)
        .unwrap();
    let taken = s.doc_take("code", "abc").unwrap().unwrap();
    assert_eq!(
        taken,
        Doc {
            key: "abc".into(),
            version: 1,
            value: b"grant".to_vec(),
            expires_us: Some(exp)
        }
    );
    assert_eq!(s.doc_take("code", "abc").unwrap(), None);
    assert_eq!(s.doc_get("code", "abc").unwrap(), None);
}

#[test]
fn of_eight_concurrent_takers_exactly_one_wins() {
    let (_d, s) = open();
    for round in 0..20 {
        let key = format!("code-{round}");
        s.doc_put("code", &key, b"g", None, DocExpect::Absent)
            .unwrap();
        let barrier = Barrier::new(8);
        let winners: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        s.doc_take("code", &key).unwrap().is_some() as usize
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(winners, 1, "round {round}");
    }
}

#[test]
fn concurrent_compare_and_set_loses_no_update() {
    let (_d, s) = open();
    s.doc_put("counter", "n", b"0", None, DocExpect::Absent)
        .unwrap();
    // Read-modify-write with retries: every increment lands once.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..10 {
                    loop {
                        let d = s.doc_get("counter", "n").unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(&d.value).unwrap().parse().unwrap();
                        let next = (n + 1).to_string();
                        match s.doc_put(
                            "counter",
                            "n",
                            next.as_bytes(),
                            None,
                            DocExpect::Version(d.version),
                        ) {
                            Ok(_) => break,
                            Err(StoreError::DocConflict { .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let d = s.doc_get("counter", "n").unwrap().unwrap();
    assert_eq!(d.value, b"40");
    assert_eq!(d.version, 41);
}

#[test]
fn list_by_prefix_pages_in_key_order() {
    let (_d, s) = open();
    let keys_in = [
        "client/b",
        "client/a",
        "client/é",
        "client/\u{10FFFF}",
        "client0",
        "clientx",
        "clien",
        "other",
        "client/c",
    ];
    for k in keys_in {
        s.doc_put("ns", k, k.as_bytes(), None, DocExpect::Absent)
            .unwrap();
    }
    s.doc_put("ns2", "client/zz", b"x", None, DocExpect::Absent)
        .unwrap();
    s.doc_put(
        "ns",
        "client/expired",
        b"x",
        Some(now_us() - 1),
        DocExpect::Any,
    )
    .unwrap();
    let expected = [
        "client/a",
        "client/b",
        "client/c",
        "client/é",
        "client/\u{10FFFF}",
    ];
    assert_eq!(
        keys(&s.doc_list("ns", "client/", None, 100).unwrap()),
        expected
    );
    // Pages continue after the last key.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.doc_list("ns", "client/", after.as_deref(), 2).unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        paged.extend(page.iter().map(|d| d.key.clone()));
    }
    assert_eq!(paged, expected);
    let page = s.doc_list("ns", "client/", Some("client/b"), 10).unwrap();
    assert_eq!(keys(&page), ["client/c", "client/é", "client/\u{10FFFF}"]);
    assert_eq!(page[0].value, b"client/c");
    // A position before the prefix starts at the prefix.
    assert_eq!(
        keys(&s.doc_list("ns", "client/", Some("a"), 1).unwrap()),
        ["client/a"]
    );
    assert!(
        s.doc_list("ns", "client/", Some("client/\u{10FFFF}"), 10)
            .unwrap()
            .is_empty()
    );
    // The empty prefix lists the namespace.
    assert_eq!(
        s.doc_list("ns", "", None, 100).unwrap().len(),
        keys_in.len()
    );
    assert_eq!(
        keys(
            &s.doc_list("ns", "client", Some("client/\u{10FFFF}"), 10)
                .unwrap()
        ),
        ["client0", "clientx"]
    );
    assert!(s.doc_list("ns", "client/", None, 0).unwrap().is_empty());
}

#[test]
fn scan_pages_over_every_namespace() {
    let (_d, s) = open();
    for (ns, key) in [("b", "1"), ("a", "2"), ("a", "1"), ("c", "0"), ("b", "0")] {
        s.doc_put(
            ns,
            key,
            format!("{ns}{key}").as_bytes(),
            None,
            DocExpect::Any,
        )
        .unwrap();
    }
    s.doc_put("a", "3", b"x", Some(now_us() - 1), DocExpect::Any)
        .unwrap();
    let mut all = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let page = s
            .doc_scan(after.as_ref().map(|(n, k)| (n.as_str(), k.as_str())), 2)
            .unwrap();
        let Some((ns, doc)) = page.last() else { break };
        after = Some((ns.clone(), doc.key.clone()));
        for (ns, doc) in &page {
            assert_eq!(doc.value, format!("{ns}{}", doc.key).as_bytes());
        }
        all.extend(page.into_iter().map(|(ns, d)| format!("{ns}/{}", d.key)));
    }
    assert_eq!(all, ["a/1", "a/2", "b/0", "b/1", "c/0"]);
}

#[test]
fn purge_removes_only_expired_documents() {
    let (_d, s) = open();
    let now = now_us();
    for (i, offset) in [-3 * HOUR_US, -HOUR_US, -1].into_iter().enumerate() {
        s.doc_put(
            "grant",
            &format!("old{i}"),
            b"x",
            Some(now + offset),
            DocExpect::Any,
        )
        .unwrap();
    }
    for (i, offset) in [HOUR_US, 2 * HOUR_US].into_iter().enumerate() {
        s.doc_put(
            "grant",
            &format!("new{i}"),
            b"x",
            Some(now + offset),
            DocExpect::Any,
        )
        .unwrap();
    }
    s.doc_put("client", "forever", b"x", None, DocExpect::Any)
        .unwrap();
    assert_eq!(s.doc_purge_expired(now).unwrap(), 3);
    assert_eq!(s.doc_purge_expired(now).unwrap(), 0);
    assert_eq!(
        keys(&s.doc_list("grant", "", None, 10).unwrap()),
        ["new0", "new1"]
    );
    // The future ones stay until they have expired; documents without expiry stay for good.
    assert_eq!(s.doc_purge_expired(now + HOUR_US + 1).unwrap(), 1);
    assert_eq!(s.doc_purge_expired(i64::MAX).unwrap(), 1);
    assert!(s.doc_get("client", "forever").unwrap().is_some());
}

/// The entries after `head` that a builder would make: each hash covers the previous one, so
/// a chain shows whether every builder saw the true head.
fn link(prev: &[u8], seq: i64, record: &[u8]) -> Vec<u8> {
    let mut bytes = prev.to_vec();
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(record);
    xxh3_64(&bytes).to_be_bytes().to_vec()
}

fn entries(head: Option<&AuditLink>, n: usize, at_us: i64, subjects: &[&str]) -> Vec<AuditEntry> {
    let (mut seq, mut prev) = head.map_or((0, Vec::new()), |h| (h.seq, h.hash.clone()));
    (0..n)
        .map(|_| {
            seq += 1;
            let record = format!("event {seq}").into_bytes();
            let hash = link(&prev, seq, &record);
            prev = hash.clone();
            AuditEntry {
                seq,
                at_us,
                hash,
                subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
                record,
            }
        })
        .collect()
}

fn append(s: &dyn Store, chain: &str, n: usize, at_us: i64, subjects: &[&str]) {
    s.audit_append(chain, &mut |head| Ok(entries(head, n, at_us, subjects)))
        .unwrap();
}

/// Checks that `chain` holds seqs 1..=n, each hash linking to the previous entry's.
fn assert_linked(s: &dyn Store, chain: &str, n: usize) {
    let all = s
        .audit_query(
            chain,
            &AuditQuery {
                limit: usize::MAX,
                ..AuditQuery::default()
            },
        )
        .unwrap();
    assert_eq!(all.len(), n);
    let mut prev = Vec::new();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1);
        assert_eq!(e.hash, link(&prev, e.seq, &e.record), "entry {}", e.seq);
        prev = e.hash.clone();
    }
    let head = s.audit_head(chain).unwrap().unwrap();
    assert_eq!((head.seq, head.hash), (n as i64, prev));
}

fn seqs(entries: &[AuditEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.seq).collect()
}

#[test]
fn audit_append_head_and_queries() {
    let (_d, s) = open();
    assert_eq!(s.audit_head("t1").unwrap(), None);
    assert!(s.audit_chains().unwrap().is_empty());
    let mut seen = Vec::new();
    s.audit_append("t1", &mut |head| {
        seen.push(head.cloned());
        Ok(entries(head, 3, 1_000, &["Patient/1"]))
    })
    .unwrap();
    assert_eq!(seen, [None]);
    // Entries 4..=6 at 2000, 7..=10 at 3000 with two subjects (one named twice).
    append(&*s.store, "t1", 3, 2_000, &["Patient/2"]);
    append(
        &*s.store,
        "t1",
        4,
        3_000,
        &["Patient/1", "Organization/o", "Patient/1"],
    );
    append(&*s.store, "_platform", 2, 500, &[]);
    assert_linked(&*s.store, "t1", 10);
    assert_linked(&*s.store, "_platform", 2);
    assert_eq!(s.audit_chains().unwrap(), ["_platform", "t1"]);

    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut query = AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        };
        f(&mut query);
        seqs(&s.audit_query("t1", &query).unwrap())
    };
    assert_eq!(q(&|_| {}), (1..=10).collect::<Vec<_>>());
    assert_eq!(
        q(&|q| q.newest_first = true),
        (1..=10).rev().collect::<Vec<_>>()
    );
    assert_eq!(q(&|q| q.limit = 3), [1, 2, 3]);
    assert!(q(&|q| q.limit = 0).is_empty());
    assert_eq!(q(&|q| q.after_seq = Some(8)), [9, 10]);
    assert_eq!(
        q(&|q| {
            q.before_seq = Some(4);
            q.newest_first = true
        }),
        [3, 2, 1]
    );
    assert_eq!(
        q(&|q| {
            q.after_seq = Some(2);
            q.before_seq = Some(5)
        }),
        [3, 4]
    );
    assert_eq!(
        q(&|q| q.from_us = Some(2_000)),
        (4..=10).collect::<Vec<_>>()
    );
    assert_eq!(q(&|q| q.to_us = Some(2_000)), [1, 2, 3]);
    assert_eq!(
        q(&|q| {
            q.from_us = Some(1_500);
            q.to_us = Some(3_000)
        }),
        [4, 5, 6]
    );
    assert_eq!(
        q(&|q| q.subject = Some("Patient/1".into())),
        [1, 2, 3, 7, 8, 9, 10]
    );
    assert_eq!(
        q(&|q| q.subject = Some("Organization/o".into())),
        [7, 8, 9, 10]
    );
    assert!(q(&|q| q.subject = Some("Patient/3".into())).is_empty());
    assert_eq!(
        q(&|q| {
            q.subject = Some("Patient/1".into());
            q.newest_first = true;
            q.before_seq = Some(9);
            q.limit = 3;
        }),
        [8, 7, 3]
    );
    assert_eq!(
        q(&|q| {
            q.subject = Some("Patient/1".into());
            q.from_us = Some(1_000);
            q.to_us = Some(2_000);
            q.after_seq = Some(1);
        }),
        [2, 3]
    );
    // Entries come back as stored.
    let e = s
        .audit_query(
            "t1",
            &AuditQuery {
                after_seq: Some(6),
                limit: 1,
                ..AuditQuery::default()
            },
        )
        .unwrap();
    assert_eq!(e[0].seq, 7);
    assert_eq!(e[0].at_us, 3_000);
    assert_eq!(e[0].record, b"event 7");
    assert_eq!(e[0].subjects, ["Patient/1", "Organization/o", "Patient/1"]);
    // Paging the subject's log backwards by seq.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .audit_query(
                "t1",
                &AuditQuery {
                    subject: Some("Patient/1".into()),
                    newest_first: true,
                    before_seq: before,
                    limit: 2,
                    ..AuditQuery::default()
                },
            )
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.seq);
        pages.push(seqs(&page));
    }
    assert_eq!(pages, [vec![10, 9], vec![8, 7], vec![3, 2], vec![1]]);
    // Chains are separate.
    assert!(
        s.audit_query(
            "t2",
            &AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            }
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn an_append_with_a_gap_writes_nothing() {
    let (_d, s) = open();
    append(&*s.store, "t", 2, 1, &["Patient/1"]);
    let refuse = |make: &dyn Fn(Option<&AuditLink>) -> Vec<AuditEntry>| {
        let r = s.audit_append("t", &mut |head| Ok(make(head)));
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    };
    // A gap after valid entries, a repeated seq, a chain that starts over.
    refuse(&|head| {
        let mut e = entries(head, 3, 1, &["Patient/9"]);
        e[2].seq = 6;
        e
    });
    refuse(&|head| {
        let mut e = entries(head, 1, 1, &["Patient/9"]);
        e[0].seq = 2;
        e
    });
    refuse(&|_| entries(None, 1, 1, &["Patient/9"]));
    // A builder's own error is returned, and nothing written either.
    let r = s.audit_append("t", &mut |_| {
        Err(StoreError::Database("builder failed".into()))
    });
    assert!(matches!(r, Err(StoreError::Database(m)) if m == "builder failed"));
    assert_linked(&*s.store, "t", 2);
    assert!(
        s.audit_query(
            "t",
            &AuditQuery {
                subject: Some("Patient/9".into()),
                limit: 10,
                ..AuditQuery::default()
            }
        )
        .unwrap()
        .is_empty()
    );
    // An empty batch appends nothing; the store stays usable for the next append.
    s.audit_append("t", &mut |_| Ok(Vec::new())).unwrap();
    append(&*s.store, "t", 100, 5, &["Patient/1", "Practitioner/x"]);
    assert_linked(&*s.store, "t", 102);
    assert_eq!(
        s.audit_query(
            "t",
            &AuditQuery {
                subject: Some("Practitioner/x".into()),
                limit: 1000,
                ..AuditQuery::default()
            }
        )
        .unwrap()
        .len(),
        100
    );
}

#[test]
fn a_panicking_builder_leaves_the_store_usable() {
    let (_d, s) = open();
    append(&*s.store, "t", 1, 1, &[]);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = s.audit_append("t", &mut |_| panic!("builder bug"));
    }));
    assert!(r.is_err());
    append(&*s.store, "t", 2, 1, &[]);
    assert_linked(&*s.store, "t", 3);
    s.doc_put("ns", "k", b"v", None, DocExpect::Absent).unwrap();
}

/// Appends to `chain` from `stores` on 8 threads at once: the chain comes out gapless and
/// linked, so every builder saw the true head.
fn append_concurrently(stores: &[&dyn Store], chain: &str) {
    let barrier = Barrier::new(8);
    let batch = |t: usize, i: usize| 1 + (t + i) % 3;
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (store, barrier) = (stores[t % stores.len()], &barrier);
            scope.spawn(move || {
                barrier.wait();
                for i in 0..25 {
                    let subject = format!("Patient/{t}");
                    append(
                        store,
                        chain,
                        batch(t, i),
                        i64::try_from(i).unwrap(),
                        &[&subject],
                    );
                }
            });
        }
    });
    let total: usize = (0..8)
        .map(|t| (0..25).map(|i| batch(t, i)).sum::<usize>())
        .sum();
    for store in stores {
        assert_linked(*store, chain, total);
    }
    let of_one = s_query_subject(stores[0], chain, "Patient/3");
    assert_eq!(of_one, (0..25).map(|i| batch(3, i)).sum::<usize>());
}

fn s_query_subject(s: &dyn Store, chain: &str, subject: &str) -> usize {
    s.audit_query(
        chain,
        &AuditQuery {
            subject: Some(subject.into()),
            limit: usize::MAX,
            ..AuditQuery::default()
        },
    )
    .unwrap()
    .len()
}

#[test]
fn concurrent_appenders_make_one_gapless_chain() {
    let (dir, s) = open();
    append_concurrently(&[&*s.store], "one-store");
    // A second store on the same database: another process as far as locking goes (a pool of
    // its own on PostgreSQL, a writer connection of its own on SQLite).
    let second: Box<dyn Store> = match s.database_url() {
        Some(url) => Box::new(PostgresStore::connect(url, PostgresOptions::default()).unwrap()),
        None => Box::new(SqliteStore::open(dir.path()).unwrap()),
    };
    append_concurrently(&[&*s.store, &*second], "two-stores");
}

/// Runs `sql` on the test database directly (as a database superuser could), bypassing the
/// store; the error text when the database refuses it.
fn run_sql(s: &TestStore, dir: &std::path::Path, sql: &str) -> Result<(), String> {
    match s.database_url() {
        None => {
            let conn =
                rusqlite::Connection::open(dir.join("medicus.db")).map_err(|e| e.to_string())?;
            conn.busy_timeout(Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            conn.execute_batch(sql).map_err(|e| e.to_string())
        }
        Some(url) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                let driver = tokio::spawn(conn);
                let r = client.batch_execute(sql).await.map_err(|e| {
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_owned())
                });
                drop(client);
                let _ = driver.await;
                r
            })
        }
    }
}

#[test]
fn the_audit_tables_refuse_updates_and_deletes() {
    let (dir, s) = open();
    append(&*s.store, "t", 3, 1, &["Patient/1"]);
    for sql in [
        "UPDATE audit SET record = hash WHERE seq = 2",
        "DELETE FROM audit WHERE seq = 3",
        "DELETE FROM audit",
        "UPDATE audit_subject SET subject = 'Patient/2'",
        "DELETE FROM audit_subject WHERE seq = 1",
    ] {
        let r = run_sql(&s, dir.path(), sql);
        assert!(
            r.as_ref().is_err_and(|e| e.contains("append-only")),
            "{sql}: {r:?}"
        );
    }
    if s.is_postgres() {
        for sql in ["TRUNCATE audit", "TRUNCATE audit_subject"] {
            let r = run_sql(&s, dir.path(), sql);
            assert!(
                r.as_ref().is_err_and(|e| e.contains("append-only")),
                "{sql}: {r:?}"
            );
        }
    }
    assert_linked(&*s.store, "t", 3);
    // What stops it is the trigger: without it, a superuser could edit the trail (and the audit
    // crate's hash chain is what notices).
    let drop_trigger = if s.is_postgres() {
        "ALTER TABLE audit DISABLE TRIGGER audit_append_only"
    } else {
        "DROP TRIGGER audit_no_update"
    };
    run_sql(&s, dir.path(), drop_trigger).unwrap();
    run_sql(
        &s,
        dir.path(),
        "UPDATE audit SET record = hash WHERE seq = 2",
    )
    .unwrap();
    let e = s
        .audit_query(
            "t",
            &AuditQuery {
                after_seq: Some(1),
                limit: 1,
                ..AuditQuery::default()
            },
        )
        .unwrap();
    assert_eq!(e[0].record, e[0].hash);
}

#[test]
fn a_sqlite_store_of_schema_version_two_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.create_tenant("a").unwrap();
        let mut w = store.write_session("a").unwrap();
        w.put(
            "Patient",
            "p1",
            serde_json::json!({"resourceType": "Patient"}),
            medicus_store::Precondition::None,
        )
        .unwrap();
        w.commit().unwrap();
    }
    // Back to the version 2 layout: no platform tables.
    {
        let conn = rusqlite::Connection::open(dir.path().join("medicus.db")).unwrap();
        conn.execute_batch(
            "DROP TABLE doc; DROP TABLE audit; DROP TABLE audit_subject;
             UPDATE meta SET value = '2' WHERE key = 'schema_version';",
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert!(
        store
            .read_session("a")
            .unwrap()
            .read("Patient", "p1")
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .doc_put("ns", "k", b"v", None, DocExpect::Absent)
            .unwrap(),
        1
    );
    append(&store, "a", 2, 1, &["Patient/p1"]);
    assert_linked(&store, "a", 2);
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("medicus.db")).unwrap();
    let version: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, "4");
    // The migration brought the triggers too.
    let r = conn.execute_batch("DELETE FROM audit");
    assert!(r.is_err_and(|e| e.to_string().contains("append-only")));
}

#[test]
fn a_postgres_database_of_schema_version_one_is_migrated() {
    let (dir, s) = open();
    if !s.is_postgres() {
        return;
    }
    run_sql(
        &s,
        dir.path(),
        "DROP TABLE doc, audit, audit_subject; DROP FUNCTION audit_append_only();
         DROP TABLE obj_bucket, obj_version, obj_segment, obj_upload, obj_part;
         UPDATE meta SET value = '1' WHERE key = 'schema_version';",
    )
    .unwrap();
    let url = s.database_url().unwrap();
    let store = PostgresStore::connect(url, PostgresOptions::default()).unwrap();
    assert_eq!(
        store
            .doc_put("ns", "k", b"v", None, DocExpect::Absent)
            .unwrap(),
        1
    );
    append(&store, "a", 2, 1, &["Patient/p1"]);
    assert_linked(&store, "a", 2);
    let r = run_sql(&s, dir.path(), "DELETE FROM audit");
    assert!(r.is_err_and(|e| e.contains("append-only")));
}
