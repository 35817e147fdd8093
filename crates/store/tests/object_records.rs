//! The object-metadata contract (`medicus_store::objects`) on every backend: buckets owned by a
//! tenant, one latest version per key, the `null` version replaced in place, delete markers,
//! listings by prefix and position, multipart uploads completed atomically, and which data
//! files rows reference. Runs on SQLite, and on PostgreSQL in the second pass of `scripts/test`.

use std::sync::{Arc, Barrier};

use medicus_store::ObjectRecords;
use medicus_store::objects::{
    BucketDeleted, BucketRecord, ListFrom, NULL_VERSION, PartRecord, UploadChange, UploadRecord,
    VersionRecord,
};
use medicus_store::testing::TestStore;

fn open() -> (tempfile::TempDir, TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::open(dir.path()).unwrap();
    (dir, store)
}

fn bucket(name: &str, tenant: &str) -> BucketRecord {
    BucketRecord {
        name: name.into(),
        tenant: tenant.into(),
        created_us: 1,
        versioning: 0,
        config: b"{}".to_vec(),
    }
}

fn version(bucket: &str, key: &str, id: &str, blob: Option<&str>) -> VersionRecord {
    VersionRecord {
        bucket: bucket.into(),
        key: key.into(),
        version_id: id.into(),
        seq: 0,
        latest: false,
        delete_marker: blob.is_none(),
        size: 3,
        etag: format!("etag-{id}"),
        created_us: 5,
        blob: blob.map(Into::into),
        segments: vec![],
        meta: format!("meta-{id}").into_bytes(),
    }
}

fn keys(v: &[VersionRecord]) -> Vec<&str> {
    v.iter().map(|v| v.key.as_str()).collect()
}

#[test]
fn buckets_belong_to_a_tenant_and_names_are_global() {
    let (_dir, s) = open();
    assert!(s.bucket_create(&bucket("b1", "t1")).unwrap());
    assert!(!s.bucket_create(&bucket("b1", "t2")).unwrap());
    assert!(s.bucket_create(&bucket("b2", "t2")).unwrap());
    assert!(s.bucket_create(&bucket("a0", "t1")).unwrap());
    assert_eq!(s.bucket_get("b1").unwrap().unwrap().tenant, "t1");
    assert!(s.bucket_get("zz").unwrap().is_none());
    let names = |t| {
        s.bucket_list(t)
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(Some("t1")), ["a0", "b1"]);
    assert_eq!(names(Some("t2")), ["b2"]);
    assert_eq!(names(None), ["a0", "b1", "b2"]);
    assert!(s.bucket_update("b1", 1, b"{\"x\":1}").unwrap());
    assert!(!s.bucket_update("nope", 1, b"{}").unwrap());
    let b = s.bucket_get("b1").unwrap().unwrap();
    assert_eq!((b.versioning, b.config.as_slice()), (1, &b"{\"x\":1}"[..]));

    s.version_put(&version("b1", "k", "v1", Some("blob1")), None)
        .unwrap();
    assert_eq!(s.bucket_delete("b1").unwrap(), BucketDeleted::NotEmpty);
    s.version_delete("b1", "k", "v1").unwrap().unwrap();
    assert_eq!(s.bucket_delete("b1").unwrap(), BucketDeleted::Deleted);
    assert_eq!(s.bucket_delete("b1").unwrap(), BucketDeleted::NotFound);
    // An upload in progress also keeps a bucket.
    s.upload_create(&upload("u1", "b2", "k")).unwrap();
    assert_eq!(s.bucket_delete("b2").unwrap(), BucketDeleted::NotEmpty);
}

#[test]
fn versions_latest_null_replacement_and_delete_markers() {
    let (_dir, s) = open();
    s.bucket_create(&bucket("b", "t")).unwrap();
    // Unversioned writes replace the null version.
    let removed = s
        .version_put(
            &version("b", "k", NULL_VERSION, Some("n1")),
            Some(NULL_VERSION),
        )
        .unwrap();
    assert!(removed.is_empty());
    let removed = s
        .version_put(
            &version("b", "k", NULL_VERSION, Some("n2")),
            Some(NULL_VERSION),
        )
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].blob.as_deref(), Some("n1"));
    let latest = s.version_get("b", "k", None).unwrap().unwrap();
    assert_eq!((latest.blob.as_deref(), latest.latest), (Some("n2"), true));

    // Versioned writes keep the old ones; the newest is latest.
    s.version_put(&version("b", "k", "v2", Some("x2")), None)
        .unwrap();
    s.version_put(&version("b", "k", "v3", Some("x3")), None)
        .unwrap();
    let latest = s.version_get("b", "k", None).unwrap().unwrap();
    assert_eq!(latest.version_id, "v3");
    let old = s.version_get("b", "k", Some("v2")).unwrap().unwrap();
    assert!(!old.latest);
    assert_eq!(old.meta, b"meta-v2");
    // A delete marker becomes latest and hides the key from listings.
    s.version_put(&version("b", "k", "dm", None), None).unwrap();
    let latest = s.version_get("b", "k", None).unwrap().unwrap();
    assert!(latest.delete_marker && latest.latest);
    assert!(
        s.list_latest("b", "", ListFrom::Start, 10)
            .unwrap()
            .is_empty()
    );
    let all = s.list_versions("b", "", None, 10).unwrap();
    let ids: Vec<_> = all.iter().map(|v| v.version_id.as_str()).collect();
    assert_eq!(ids, ["dm", "v3", "v2", NULL_VERSION]);
    // Removing the marker brings back the newest remaining version.
    s.version_delete("b", "k", "dm").unwrap().unwrap();
    assert_eq!(
        s.version_get("b", "k", None).unwrap().unwrap().version_id,
        "v3"
    );
    // Removing a non-latest version leaves the latest alone.
    s.version_delete("b", "k", "v2").unwrap().unwrap();
    assert!(s.version_delete("b", "k", "v2").unwrap().is_none());
    assert_eq!(
        s.version_get("b", "k", None).unwrap().unwrap().version_id,
        "v3"
    );
    // A conditional delete removes nothing once the meta changed.
    s.version_put(&version("b", "k", "v4", Some("x4")), None)
        .unwrap();
    assert!(
        s.version_delete_if("b", "k", "v4", b"other")
            .unwrap()
            .is_none()
    );
    assert!(s.version_get("b", "k", Some("v4")).unwrap().is_some());
    assert!(
        s.version_delete_if("b", "k", "v4", b"meta-v4")
            .unwrap()
            .is_some()
    );
    // Compare-and-set on the meta.
    assert!(
        !s.version_set_meta("b", "k", "v3", b"wrong", b"new")
            .unwrap()
    );
    assert!(
        s.version_set_meta("b", "k", "v3", b"meta-v3", b"new")
            .unwrap()
    );
    assert_eq!(
        s.version_get("b", "k", Some("v3")).unwrap().unwrap().meta,
        b"new"
    );
}

#[test]
fn listings_by_prefix_and_position() {
    let (_dir, s) = open();
    s.bucket_create(&bucket("b", "t")).unwrap();
    s.bucket_create(&bucket("other", "t")).unwrap();
    for k in ["a/1", "a/2", "a/3", "b/1", "a", "a0", "é"] {
        s.version_put(&version("b", k, NULL_VERSION, Some(k)), Some(NULL_VERSION))
            .unwrap();
    }
    s.version_put(&version("other", "a/9", "x", Some("o")), None)
        .unwrap();
    let all = s.list_latest("b", "", ListFrom::Start, 100).unwrap();
    // Byte order: "a" < "a/1" < "a0" < "b/1" < "é".
    assert_eq!(keys(&all), ["a", "a/1", "a/2", "a/3", "a0", "b/1", "é"]);
    let page = s.list_latest("b", "a/", ListFrom::Start, 2).unwrap();
    assert_eq!(keys(&page), ["a/1", "a/2"]);
    let page = s.list_latest("b", "a/", ListFrom::After("a/2"), 2).unwrap();
    assert_eq!(keys(&page), ["a/3"]);
    let page = s
        .list_latest("b", "", ListFrom::AtOrAfter("a0"), 10)
        .unwrap();
    assert_eq!(keys(&page), ["a0", "b/1", "é"]);
    // A position before the prefix starts at the prefix.
    let page = s.list_latest("b", "b", ListFrom::After("a"), 10).unwrap();
    assert_eq!(keys(&page), ["b/1"]);

    // Versions: key order, newest first, resumable at (key, seq).
    for id in ["v1", "v2"] {
        s.version_put(&version("b", "a/2", id, Some(id)), None)
            .unwrap();
    }
    let first = s.list_versions("b", "a/", None, 2).unwrap();
    let ids: Vec<_> = first
        .iter()
        .map(|v| (v.key.as_str(), v.version_id.as_str()))
        .collect();
    assert_eq!(ids, [("a/1", NULL_VERSION), ("a/2", "v2")]);
    let last = first.last().unwrap();
    let rest = s
        .list_versions("b", "a/", Some((&last.key, last.seq)), 10)
        .unwrap();
    let ids: Vec<_> = rest
        .iter()
        .map(|v| (v.key.as_str(), v.version_id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [("a/2", "v1"), ("a/2", NULL_VERSION), ("a/3", NULL_VERSION)]
    );
}

fn upload(id: &str, bucket: &str, key: &str) -> UploadRecord {
    UploadRecord {
        upload_id: id.into(),
        bucket: bucket.into(),
        key: key.into(),
        created_us: 7,
        meta: b"um".to_vec(),
    }
}

fn part(upload: &str, n: i32, blob: &str) -> PartRecord {
    PartRecord {
        upload_id: upload.into(),
        part_number: n,
        size: 10,
        etag: format!("p{n}"),
        created_us: 8,
        blob: blob.into(),
        meta: vec![],
    }
}

#[test]
fn multipart_uploads_complete_atomically() {
    let (_dir, s) = open();
    s.bucket_create(&bucket("b", "t")).unwrap();
    assert_eq!(
        s.part_put(&part("nope", 1, "x")).unwrap(),
        UploadChange::NoSuchUpload
    );
    s.upload_create(&upload("u1", "b", "big")).unwrap();
    s.upload_create(&upload("u2", "b", "big")).unwrap();
    s.upload_create(&upload("u3", "b", "other")).unwrap();
    assert_eq!(s.upload_get("u1").unwrap().unwrap().meta, b"um");
    let listed: Vec<_> = s
        .upload_list("b", "b", None, 10)
        .unwrap()
        .into_iter()
        .map(|u| u.upload_id)
        .collect();
    assert_eq!(listed, ["u1", "u2"]);
    let listed: Vec<_> = s
        .upload_list("b", "", Some(("big", "u1")), 10)
        .unwrap()
        .into_iter()
        .map(|u| u.upload_id)
        .collect();
    assert_eq!(listed, ["u2", "u3"]);

    assert_eq!(
        s.part_put(&part("u1", 1, "p1a")).unwrap(),
        UploadChange::Done(None)
    );
    // A part uploaded again replaces the earlier one, which is returned.
    let UploadChange::Done(Some(old)) = s.part_put(&part("u1", 1, "p1b")).unwrap() else {
        panic!("the replaced part is returned");
    };
    assert_eq!(old.blob, "p1a");
    s.part_put(&part("u1", 2, "p2")).unwrap();
    s.part_put(&part("u1", 3, "p3")).unwrap();
    let parts = s.part_list("u1", 0, 10).unwrap();
    assert_eq!(
        parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(s.part_list("u1", 1, 1).unwrap()[0].part_number, 2);

    // Complete with parts 1 and 2: part 3 comes back unused, the upload is gone.
    let mut v = version("b", "big", "mv", Some("owner"));
    v.segments = vec!["p1b".into(), "p2".into()];
    let UploadChange::Done((removed, unused)) = s.upload_complete("u1", &v, None).unwrap() else {
        panic!("the upload exists");
    };
    assert!(removed.is_empty());
    assert_eq!(
        unused.iter().map(|p| p.blob.as_str()).collect::<Vec<_>>(),
        ["p3"]
    );
    assert!(s.upload_get("u1").unwrap().is_none());
    assert!(s.part_list("u1", 0, 10).unwrap().is_empty());
    assert_eq!(
        s.upload_complete("u1", &v, None).unwrap(),
        UploadChange::NoSuchUpload
    );
    assert_eq!(
        s.version_get("b", "big", None).unwrap().unwrap().version_id,
        "mv"
    );

    // Blob references: the version's own, its segments, parts of open uploads.
    s.part_put(&part("u2", 1, "q1")).unwrap();
    let asked: Vec<String> = ["owner", "p1b", "p2", "p3", "p1a", "q1", "zz"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut found = s.blobs_referenced(&asked).unwrap();
    found.sort();
    assert_eq!(found, ["owner", "p1b", "p2", "q1"]);
    // Deleting the version releases its segments.
    s.version_delete("b", "big", "mv").unwrap().unwrap();
    let found = s.blobs_referenced(&asked).unwrap();
    assert_eq!(found, ["q1"]);
    // Abort returns the parts.
    let parts = s.upload_abort("u2").unwrap().unwrap();
    assert_eq!(parts.len(), 1);
    assert!(s.upload_abort("u2").unwrap().is_none());
    assert!(s.blobs_referenced(&asked).unwrap().is_empty());
}

/// Concurrent writers of one key leave exactly one latest version (on PostgreSQL the per-key
/// lock; on SQLite the single writer).
#[test]
fn concurrent_puts_leave_one_latest() {
    let (_dir, s) = open();
    s.bucket_create(&bucket("b", "t")).unwrap();
    let store: Arc<TestStore> = Arc::new(s);
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..10 {
                    let id = format!("v{t}-{i}");
                    store
                        .version_put(&version("b", "k", &id, Some(&id)), None)
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let all = store.list_versions("b", "", None, 100).unwrap();
    assert_eq!(all.len(), 40);
    assert_eq!(all.iter().filter(|v| v.latest).count(), 1);
    assert!(all[0].latest, "the newest is the latest");
}

/// A SQLite store of schema version 3 (before object storage) gets the object tables at open.
#[test]
fn a_sqlite_store_of_schema_version_three_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    drop(medicus_store::SqliteStore::open(dir.path()).unwrap());
    {
        let conn = rusqlite::Connection::open(dir.path().join("medicus.db")).unwrap();
        conn.execute_batch(
            "DROP TABLE obj_bucket; DROP TABLE obj_version; DROP TABLE obj_segment;
             DROP TABLE obj_upload; DROP TABLE obj_part;
             UPDATE meta SET value = '3' WHERE key = 'schema_version';",
        )
        .unwrap();
    }
    let store = medicus_store::SqliteStore::open(dir.path()).unwrap();
    assert!(store.bucket_create(&bucket("b", "t")).unwrap());
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
}
