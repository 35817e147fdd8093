//! The object engine over a real store (SQLite, or PostgreSQL when `MEDICUS_TEST_DATABASE` is
//! set): data round trips encrypted, versions and delete markers, listings with delimiters,
//! multipart, tenant isolation of buckets, orphan collection and key rotation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use medicus_objects::crypto::{CHUNK, SecretKey};
use medicus_objects::engine::MIN_PART_SIZE;
use medicus_objects::names::ByteRange;
use medicus_objects::{
    Checksums, KeyProvider, LocalMasterKey, ObjectAttrs, ObjectError, ObjectInfo, Objects,
};
use medicus_store::objects::BucketRecord;
use medicus_store::testing::TestStore;

struct Env {
    dir: tempfile::TempDir,
    _store: TestStore,
    objects: Objects,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::open(&dir.path().join("db")).unwrap();
    let master: Arc<dyn KeyProvider> =
        Arc::new(LocalMasterKey::load_or_create(&dir.path().join("master.key")).unwrap());
    let objects = Objects::open(dir.path(), store.store.clone(), master).unwrap();
    Env {
        dir,
        _store: store,
        objects,
    }
}

fn put(o: &Objects, b: &BucketRecord, key: &str, data: &[u8]) -> ObjectInfo {
    let mut w = o.writer().unwrap();
    for piece in data.chunks(10_000) {
        w.write(piece).unwrap();
    }
    let blob = w.finish().unwrap();
    o.put(b, key, blob, ObjectAttrs::default(), Checksums::default())
        .unwrap()
}

fn get(
    o: &Objects,
    b: &BucketRecord,
    key: &str,
    version: Option<&str>,
    range: Option<ByteRange>,
) -> Vec<u8> {
    let info = o.head(b, key, version).unwrap();
    let mut r = o.reader(b, &info, range).unwrap();
    let mut out = Vec::new();
    while let Some(c) = r.next_chunk().unwrap() {
        out.extend_from_slice(&c);
    }
    out
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Every file under the objects directory, read whole.
fn files_contain(root: &std::path::Path, needle: &[u8]) -> bool {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                return true;
            }
        }
    }
    false
}

#[test]
fn objects_round_trip_encrypted_with_ranges() {
    let e = env();
    let o = &e.objects;
    let b = o.create_bucket("t1", "photos").unwrap();
    let body = data(3 * CHUNK + 17, 1);
    let info = put(o, &b, "a/b.bin", &body);
    assert_eq!(info.size(), body.len() as u64);
    assert_eq!(info.version_id(), "null");
    assert_eq!(get(o, &b, "a/b.bin", None, None), body);
    let r = ByteRange {
        start: CHUNK as u64 - 5,
        end: 2 * CHUNK as u64 + 5,
    };
    assert_eq!(
        get(o, &b, "a/b.bin", None, Some(r)),
        body[r.start as usize..=r.end as usize]
    );
    // Nothing of the plaintext is on disk.
    let marker = b"PLAINTEXT-MARKER-0123456789";
    let mut secret = marker.to_vec();
    secret.extend(data(100, 9));
    put(o, &b, "secret.txt", &secret);
    assert!(!files_contain(&e.dir.path().join("objects"), marker));
    // An empty object.
    put(o, &b, "empty", b"");
    assert!(get(o, &b, "empty", None, None).is_empty());
    // Unversioned overwrite replaces the data file.
    put(o, &b, "a/b.bin", b"new");
    assert_eq!(get(o, &b, "a/b.bin", None, None), b"new");
    // Delete.
    o.delete(&b, "a/b.bin", None).unwrap();
    assert!(matches!(
        o.head(&b, "a/b.bin", None),
        Err(ObjectError::NoSuchKey)
    ));
    assert!(matches!(
        o.head(&b, "a/../x", None),
        Err(ObjectError::InvalidKey(_))
    ));
}

#[test]
fn buckets_do_not_cross_tenants() {
    let e = env();
    let o = &e.objects;
    o.create_bucket("t1", "shared-name").unwrap();
    assert!(matches!(
        o.create_bucket("t2", "shared-name"),
        Err(ObjectError::BucketAlreadyExists)
    ));
    assert!(matches!(
        o.create_bucket("t1", "shared-name"),
        Err(ObjectError::BucketAlreadyOwnedByYou)
    ));
    assert!(matches!(
        o.bucket("t2", "shared-name"),
        Err(ObjectError::NoSuchBucket)
    ));
    assert!(o.bucket("t1", "shared-name").is_ok());
    assert!(o.list_buckets("t2").unwrap().is_empty());
    assert!(matches!(
        o.create_bucket("t1", "Bad_Name"),
        Err(ObjectError::InvalidBucketName(_))
    ));
    let b = o.bucket("t1", "shared-name").unwrap();
    put(o, &b, "k", b"x");
    assert!(matches!(
        o.delete_bucket(&b),
        Err(ObjectError::BucketNotEmpty)
    ));
    o.delete(&b, "k", None).unwrap();
    o.delete_bucket(&b).unwrap();
}

#[test]
fn versions_and_delete_markers() {
    let e = env();
    let o = &e.objects;
    let b = o.create_bucket("t", "ver").unwrap();
    put(o, &b, "k", b"before versioning");
    o.set_versioning(&b, true).unwrap();
    let b = o.bucket("t", "ver").unwrap();
    let v1 = put(o, &b, "k", b"one");
    let v2 = put(o, &b, "k", b"two");
    assert_ne!(v1.version_id(), v2.version_id());
    assert_eq!(get(o, &b, "k", None, None), b"two");
    assert_eq!(get(o, &b, "k", Some(v1.version_id()), None), b"one");
    assert_eq!(get(o, &b, "k", Some("null"), None), b"before versioning");
    let del = o.delete(&b, "k", None).unwrap();
    assert!(del.delete_marker);
    assert!(matches!(o.head(&b, "k", None), Err(ObjectError::NoSuchKey)));
    assert!(o.list(&b, "", None, None, 100).unwrap().objects.is_empty());
    let versions = o.list_versions(&b, "", None, None, None, 100).unwrap();
    assert_eq!(versions.versions.len(), 4);
    assert!(versions.versions[0].record.delete_marker);
    // Removing the marker restores the object.
    o.delete(&b, "k", del.version_id.as_deref()).unwrap();
    assert_eq!(get(o, &b, "k", None, None), b"two");
    // Paging the versions one at a time visits each once.
    let mut seen = vec![];
    let (mut km, mut vm) = (None::<String>, None::<String>);
    loop {
        let page = o
            .list_versions(&b, "", None, km.as_deref(), vm.as_deref(), 1)
            .unwrap();
        seen.extend(page.versions.iter().map(|v| v.version_id().to_owned()));
        if !page.truncated {
            break;
        }
        km = page.next_key;
        vm = page.next_version;
    }
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0], v2.version_id());
    // Suspended: writes replace the null version.
    o.set_versioning(&b, false).unwrap();
    let b = o.bucket("t", "ver").unwrap();
    put(o, &b, "k", b"suspended");
    assert_eq!(get(o, &b, "k", Some("null"), None), b"suspended");
    assert_eq!(
        o.list_versions(&b, "", None, None, None, 100)
            .unwrap()
            .versions
            .len(),
        3
    );
}

#[test]
fn listings_with_delimiters_and_pages() {
    let e = env();
    let o = &e.objects;
    let b = o.create_bucket("t", "list").unwrap();
    for k in ["a/1", "a/2", "a/x/1", "b", "c/1", "c/2", "d"] {
        put(o, &b, k, k.as_bytes());
    }
    let all = o.list(&b, "", Some("/"), None, 100).unwrap();
    let keys: Vec<_> = all.objects.iter().map(|i| i.record.key.as_str()).collect();
    assert_eq!(keys, ["b", "d"]);
    assert_eq!(all.prefixes, ["a/", "c/"]);
    assert!(!all.truncated);
    let sub = o.list(&b, "a/", Some("/"), None, 100).unwrap();
    let keys: Vec<_> = sub.objects.iter().map(|i| i.record.key.as_str()).collect();
    assert_eq!(keys, ["a/1", "a/2"]);
    assert_eq!(sub.prefixes, ["a/x/"]);
    // Pages of two, resumed from `next`, visit everything once.
    let mut entries = vec![];
    let mut marker: Option<String> = None;
    loop {
        let page = o.list(&b, "", Some("/"), marker.as_deref(), 2).unwrap();
        entries.extend(page.objects.iter().map(|i| i.record.key.clone()));
        entries.extend(page.prefixes.iter().cloned());
        if !page.truncated {
            break;
        }
        marker = page.next;
    }
    entries.sort();
    assert_eq!(entries, ["a/", "b", "c/", "d"]);
    let flat = o.list(&b, "", None, Some("a/2"), 3).unwrap();
    let keys: Vec<_> = flat.objects.iter().map(|i| i.record.key.as_str()).collect();
    assert_eq!(keys, ["a/x/1", "b", "c/1"]);
    assert!(flat.truncated);
}

#[test]
fn multipart_uploads() {
    let e = env();
    let o = &e.objects;
    let b = o.create_bucket("t", "mpu").unwrap();
    let up = o
        .create_upload(
            &b,
            "big",
            ObjectAttrs {
                content_type: Some("application/x-test".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let p1 = data(MIN_PART_SIZE as usize, 1);
    let p2 = data(1000, 2);
    let mut etags = vec![];
    for (n, body) in [(1, &p1), (2, &p2)] {
        let mut w = o.writer().unwrap();
        w.write(body).unwrap();
        let part = o
            .put_part(&b, &up, n, w.finish().unwrap(), Checksums::default())
            .unwrap();
        etags.push((n, part.etag));
    }
    assert_eq!(o.list_parts(&up, 0, 100).unwrap().len(), 2);
    assert_eq!(o.list_uploads(&b, "", None, 100).unwrap().len(), 1);
    // Wrong ETag, wrong order.
    assert!(matches!(
        o.complete_upload(&b, &up, &[(1, "bad".into())]),
        Err(ObjectError::InvalidPart)
    ));
    assert!(matches!(
        o.complete_upload(&b, &up, &[etags[1].clone(), etags[0].clone()]),
        Err(ObjectError::InvalidPartOrder)
    ));
    let info = o.complete_upload(&b, &up, &etags).unwrap();
    assert!(info.record.etag.ends_with("-2"));
    assert_eq!(
        info.meta.attrs.content_type.as_deref(),
        Some("application/x-test")
    );
    let mut whole = p1.clone();
    whole.extend(&p2);
    assert_eq!(get(o, &b, "big", None, None), whole);
    let r = ByteRange {
        start: MIN_PART_SIZE - 10,
        end: MIN_PART_SIZE + 10,
    };
    assert_eq!(
        get(o, &b, "big", None, Some(r)),
        whole[r.start as usize..=r.end as usize]
    );
    assert!(o.list_uploads(&b, "", None, 100).unwrap().is_empty());

    // A small part that is not the last is refused.
    let up = o
        .create_upload(&b, "small", ObjectAttrs::default())
        .unwrap();
    let mut tags = vec![];
    for n in 1..=2 {
        let mut w = o.writer().unwrap();
        w.write(b"tiny").unwrap();
        tags.push((
            n,
            o.put_part(&b, &up, n, w.finish().unwrap(), Checksums::default())
                .unwrap()
                .etag,
        ));
    }
    assert!(matches!(
        o.complete_upload(&b, &up, &tags),
        Err(ObjectError::EntityTooSmall)
    ));
    o.abort_upload(&up).unwrap();
    assert!(matches!(
        o.upload(&b, "small", &up.upload_id),
        Err(ObjectError::NoSuchUpload)
    ));
}

#[test]
fn orphans_are_collected_and_referenced_data_kept() {
    let e = env();
    let o = &e.objects;
    let b = o.create_bucket("t", "gcb").unwrap();
    put(o, &b, "kept", b"kept data");
    // A finished blob that no row names (a crash between rename and commit), and a temp file.
    let mut w = o.writer().unwrap();
    w.write(b"orphan").unwrap();
    let _orphan = w.finish().unwrap();
    std::fs::write(e.dir.path().join("objects/tmp/leftover"), b"x").unwrap();
    let later = SystemTime::now() + Duration::from_secs(1);
    assert_eq!(o.collect_orphans(later).unwrap(), 2);
    assert_eq!(get(o, &b, "kept", None, None), b"kept data");
    assert_eq!(o.collect_orphans(later).unwrap(), 0);
}

#[test]
fn key_rotation_rewraps_without_rewriting_data() {
    let e = env();
    let o = &e.objects;
    let b = o.create_bucket("t", "rot").unwrap();
    put(o, &b, "old", b"old data");
    let file_before = snapshot(&e.dir.path().join("objects/data"));
    // A new tenant key version: new data uses it, old data still opens.
    assert_eq!(o.keyring().rotate_tenant_key("t").unwrap(), 2);
    put(o, &b, "new", b"new data");
    assert_eq!(get(o, &b, "old", None, None), b"old data");
    // A new master key: tenant keys re-wrapped; the data files are untouched.
    let new_master = LocalMasterKey::from_bytes(SecretKey::random().unwrap().bytes()).unwrap();
    assert_eq!(o.keyring().rewrap_all(&new_master).unwrap(), 1);
    let store = o.store().clone();
    let reopened = Objects::open(e.dir.path(), store, Arc::new(new_master)).unwrap();
    assert_eq!(get(&reopened, &b, "old", None, None), b"old data");
    assert_eq!(get(&reopened, &b, "new", None, None), b"new data");
    let file_after = snapshot(&e.dir.path().join("objects/data"));
    assert!(file_before.iter().all(|f| file_after.contains(f)));
    // The old master key no longer opens anything.
    let old_master = LocalMasterKey::load_or_create(&e.dir.path().join("master.key")).unwrap();
    let stale = Objects::open(e.dir.path(), o.store().clone(), Arc::new(old_master)).unwrap();
    let info = stale.head(&b, "old", None).unwrap();
    assert!(matches!(
        stale.reader(&b, &info, None),
        Err(ObjectError::Crypto(_))
    ));
}

fn snapshot(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    for d in std::fs::read_dir(root).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[test]
fn locked_versions_cannot_be_deleted() {
    use medicus_objects::lock::{DefaultRetention, LockMode, ObjectLock, Retention};
    let e = env();
    let o = &e.objects;
    let day = 86_400_000_000i64;
    let now = medicus_objects::engine::now_us();
    let b = o.create_bucket_with("t", "vault", true).unwrap();
    // Versioning is on and cannot be suspended.
    assert_eq!(b.versioning, 1);
    assert!(matches!(
        o.set_versioning(&b, false),
        Err(ObjectError::InvalidBucketState(_))
    ));
    let put_locked = |key: &str, lock: ObjectLock| {
        let mut w = o.writer().unwrap();
        w.write(b"record").unwrap();
        let attrs = ObjectAttrs {
            lock,
            ..Default::default()
        };
        o.put(&b, key, w.finish().unwrap(), attrs, Checksums::default())
            .unwrap()
    };
    let retained = |mode| ObjectLock {
        retention: Some(Retention {
            mode,
            until_us: now + 30 * 365 * day,
        }),
        legal_hold: false,
    };
    // COMPLIANCE: no delete, not even with the bypass; the date can only move later.
    let c = put_locked("compliance", retained(LockMode::Compliance));
    let id = c.version_id().to_owned();
    for bypass in [false, true] {
        assert!(matches!(
            o.delete_with(&b, "compliance", Some(&id), bypass),
            Err(ObjectError::ObjectLocked(_))
        ));
    }
    assert!(
        o.set_retention(&b, "compliance", Some(&id), None, true)
            .is_err()
    );
    let shorter = Retention {
        mode: LockMode::Compliance,
        until_us: now + day,
    };
    assert!(
        o.set_retention(&b, "compliance", Some(&id), Some(shorter), true)
            .is_err()
    );
    // A delete without a version id only adds a delete marker; the version stays.
    assert!(o.delete(&b, "compliance", None).unwrap().delete_marker);
    assert_eq!(get(o, &b, "compliance", Some(&id), None), b"record");
    // GOVERNANCE: only with the bypass.
    let g = put_locked("governance", retained(LockMode::Governance));
    let gid = g.version_id().to_owned();
    assert!(o.delete_with(&b, "governance", Some(&gid), false).is_err());
    o.delete_with(&b, "governance", Some(&gid), true).unwrap();
    assert!(matches!(
        o.head(&b, "governance", Some(&gid)),
        Err(ObjectError::NoSuchVersion)
    ));
    // Legal hold: no delete until it is lifted.
    let h = put_locked(
        "held",
        ObjectLock {
            retention: None,
            legal_hold: true,
        },
    );
    let hid = h.version_id().to_owned();
    assert!(o.delete_with(&b, "held", Some(&hid), true).is_err());
    o.set_legal_hold(&b, "held", Some(&hid), false).unwrap();
    o.delete_with(&b, "held", Some(&hid), false).unwrap();
    // The bucket's default retention applies to new versions.
    o.set_lock_config(
        &b,
        Some(DefaultRetention {
            mode: LockMode::Compliance,
            days: 10 * 365,
        }),
    )
    .unwrap();
    let b = o.bucket("t", "vault").unwrap();
    let mut w = o.writer().unwrap();
    w.write(b"x").unwrap();
    let d = o
        .put(
            &b,
            "defaulted",
            w.finish().unwrap(),
            ObjectAttrs::default(),
            Checksums::default(),
        )
        .unwrap();
    let r = d.meta.attrs.lock.retention.unwrap();
    assert_eq!(r.mode, LockMode::Compliance);
    assert!(r.until_us > now + 9 * 365 * day);
    assert!(
        o.delete_with(&b, "defaulted", Some(d.version_id()), true)
            .is_err()
    );
    // A bucket without lock refuses locked objects.
    let plain = o.create_bucket("t", "plain").unwrap();
    let mut w = o.writer().unwrap();
    w.write(b"x").unwrap();
    let attrs = ObjectAttrs {
        lock: retained(LockMode::Governance),
        ..Default::default()
    };
    assert!(matches!(
        o.put(
            &plain,
            "k",
            w.finish().unwrap(),
            attrs,
            Checksums::default()
        ),
        Err(ObjectError::InvalidRequest(_))
    ));
}

#[test]
fn lifecycle_rules_expire_but_never_remove_locked_versions() {
    use medicus_objects::BucketConfig;
    use medicus_objects::lifecycle::LifecycleRule;
    use medicus_objects::lock::{LockMode, ObjectLock, Retention};
    let e = env();
    let o = &e.objects;
    let day = 86_400_000_000i64;
    let b = o.create_bucket_with("t", "lcb", true).unwrap();
    put(o, &b, "logs/old", b"v1");
    put(o, &b, "logs/old", b"v2");
    put(o, &b, "keep/x", b"other prefix");
    let mut w = o.writer().unwrap();
    w.write(b"locked").unwrap();
    let locked = o
        .put(
            &b,
            "logs/locked",
            w.finish().unwrap(),
            ObjectAttrs {
                lock: ObjectLock {
                    retention: Some(Retention {
                        mode: LockMode::Compliance,
                        until_us: medicus_objects::engine::now_us() + 3650 * day,
                    }),
                    legal_hold: false,
                },
                ..Default::default()
            },
            Checksums::default(),
        )
        .unwrap();
    put(o, &b, "logs/locked", b"newer");
    let up = o
        .create_upload(&b, "logs/stale", ObjectAttrs::default())
        .unwrap();
    let mut config = Objects::bucket_config(&b).unwrap();
    config.lifecycle = vec![LifecycleRule {
        id: "logs".into(),
        prefix: "logs/".into(),
        enabled: true,
        expiration_days: Some(30),
        noncurrent_days: Some(1),
        abort_multipart_days: Some(7),
    }];
    o.set_bucket_config(&b, &config).unwrap();
    let b = o.bucket("t", "lcb").unwrap();
    // Nothing is due yet.
    let now = medicus_objects::engine::now_us();
    assert_eq!(
        o.apply_lifecycle(&b, now).unwrap(),
        medicus_objects::lifecycle::LifecycleReport::default()
    );
    // Forty days later: current objects under logs/ get delete markers, the superseded versions
    // go, except the locked one; the stale upload is aborted; keep/ is untouched.
    let report = o.apply_lifecycle(&b, now + 40 * day).unwrap();
    assert_eq!(report.expired, 2, "{report:?}");
    assert_eq!(report.uploads_aborted, 1, "{report:?}");
    assert!(report.locked_kept >= 1, "{report:?}");
    assert!(matches!(
        o.head(&b, "logs/old", None),
        Err(ObjectError::NoSuchKey)
    ));
    assert_eq!(get(o, &b, "keep/x", None, None), b"other prefix");
    assert_eq!(
        get(o, &b, "logs/locked", Some(locked.version_id()), None),
        b"locked"
    );
    assert!(matches!(
        o.upload(&b, "logs/stale", &up.upload_id),
        Err(ObjectError::NoSuchUpload)
    ));
    let left: Vec<_> = o
        .list_versions(&b, "logs/old", None, None, None, 100)
        .unwrap()
        .versions
        .into_iter()
        .filter(|v| !v.record.delete_marker)
        .collect();
    assert!(
        left.is_empty(),
        "noncurrent versions of logs/old remain: {left:?}"
    );
    // Disabled rules do nothing.
    let _ = BucketConfig::default();
}
