//! Metadata of the object storage (the `objects` crate, behind the S3 listener): buckets,
//! object versions, multipart uploads and their parts. The bytes live in files under the data
//! directory; the store keeps what names them, in transactions, so an object becomes visible
//! exactly when its row commits.
//!
//! The store does not interpret a version's `meta` (content type, user metadata, checksums,
//! encryption layout, tags, lock) nor a bucket's `config`: the `objects` crate owns those bytes.
//! It keeps what only a database can keep consistent: one latest version per key, the
//! replacement of the `null` version, atomic completion of a multipart upload, and which data
//! files (blobs) rows still reference, for collecting orphans.

use crate::error::StoreError;

/// The version id of objects written while versioning is off or suspended.
pub const NULL_VERSION: &str = "null";

/// A bucket and its owning tenant. Names are global, as in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRecord {
    pub name: String,
    pub tenant: String,
    pub created_us: i64,
    /// 0 never enabled, 1 enabled, 2 suspended.
    pub versioning: i32,
    /// Bucket configuration (owned by the `objects` crate).
    pub config: Vec<u8>,
}

/// One version of an object, or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    /// Order of the versions of a key (higher is newer); assigned by the store on insert.
    pub seq: i64,
    /// Whether this is the key's newest version; set by the store.
    pub latest: bool,
    pub delete_marker: bool,
    pub size: i64,
    pub etag: String,
    pub created_us: i64,
    /// The version's own data file, if any.
    pub blob: Option<String>,
    /// Further data files the version references (the parts of a multipart object), kept so
    /// that orphan collection knows them; returned empty by reads.
    pub segments: Vec<String>,
    /// Owned by the `objects` crate.
    pub meta: Vec<u8>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub created_us: i64,
    pub meta: Vec<u8>,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub upload_id: String,
    pub part_number: i32,
    pub size: i64,
    pub etag: String,
    pub created_us: i64,
    pub blob: String,
    pub meta: Vec<u8>,
}

/// What `bucket_delete` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketDeleted {
    Deleted,
    NotFound,
    /// It still holds versions (delete markers included) or uploads.
    NotEmpty,
}

/// Where a listing starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFrom<'a> {
    Start,
    /// Keys strictly after this one.
    After(&'a str),
    /// Keys from this one on (inclusive).
    AtOrAfter(&'a str),
}

/// What `part_put` and `upload_complete` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadChange<T> {
    Done(T),
    /// The upload does not exist (never created, aborted or completed).
    NoSuchUpload,
}

/// What a completed upload removed: the versions it replaced and the parts it did not use.
pub type Completed = (Vec<VersionRecord>, Vec<PartRecord>);

/// The object metadata of a backend. Every `Store` provides it.
pub trait ObjectRecords {
    /// Creates the bucket; `Ok(false)` if the name is taken (by any tenant).
    fn bucket_create(&self, bucket: &BucketRecord) -> Result<bool, StoreError>;
    fn bucket_get(&self, name: &str) -> Result<Option<BucketRecord>, StoreError>;
    /// The buckets of `tenant` (all buckets for `None`), by name.
    fn bucket_list(&self, tenant: Option<&str>) -> Result<Vec<BucketRecord>, StoreError>;
    /// Sets versioning and configuration; `Ok(false)` for an unknown bucket.
    fn bucket_update(&self, name: &str, versioning: i32, config: &[u8])
    -> Result<bool, StoreError>;
    /// Deletes an empty bucket.
    fn bucket_delete(&self, name: &str) -> Result<BucketDeleted, StoreError>;

    /// Inserts `version` as the key's latest (its `seq` and `latest` are ignored). When
    /// `replace` names a version id (the `null` version), that version of the key is removed
    /// in the same transaction. Returns the removed versions, whose data files the caller
    /// deletes after this returned.
    fn version_put(
        &self,
        version: &VersionRecord,
        replace: Option<&str>,
    ) -> Result<Vec<VersionRecord>, StoreError>;
    /// A version by id, or the latest (which may be a delete marker) for `None`.
    fn version_get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<VersionRecord>, StoreError>;
    /// Removes one version; the next newer-than-all remaining one becomes the latest.
    fn version_delete(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<VersionRecord>, StoreError>;
    /// Removes one version only if its `meta` is still `expect_meta` (what a lock check read):
    /// `None` when it is absent or changed.
    fn version_delete_if(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        expect_meta: &[u8],
    ) -> Result<Option<VersionRecord>, StoreError>;
    /// Replaces a version's `meta` (tags, retention, legal hold) if it still has `expect_meta`
    /// (compare-and-set); `Ok(false)` otherwise.
    fn version_set_meta(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        expect_meta: &[u8],
        meta: &[u8],
    ) -> Result<bool, StoreError>;
    /// Latest versions that are not delete markers, keys starting with `prefix`, in key order.
    fn list_latest(
        &self,
        bucket: &str,
        prefix: &str,
        from: ListFrom<'_>,
        limit: usize,
    ) -> Result<Vec<VersionRecord>, StoreError>;
    /// All versions of keys starting with `prefix`, by key and newest first, after
    /// `(key, seq)` in that order.
    fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, i64)>,
        limit: usize,
    ) -> Result<Vec<VersionRecord>, StoreError>;

    fn upload_create(&self, upload: &UploadRecord) -> Result<(), StoreError>;
    fn upload_get(&self, upload_id: &str) -> Result<Option<UploadRecord>, StoreError>;
    /// Uploads of `bucket` with keys starting with `prefix`, by `(key, upload_id)`, after `after`.
    fn upload_list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<UploadRecord>, StoreError>;
    /// Removes the upload and its parts; returns the parts (whose files the caller deletes),
    /// `None` when there was no such upload.
    fn upload_abort(&self, upload_id: &str) -> Result<Option<Vec<PartRecord>>, StoreError>;
    /// Stores a part; returns the part it replaced (same number), if any.
    fn part_put(&self, part: &PartRecord) -> Result<UploadChange<Option<PartRecord>>, StoreError>;
    /// Parts with numbers above `after`, in order.
    fn part_list(
        &self,
        upload_id: &str,
        after: i32,
        limit: usize,
    ) -> Result<Vec<PartRecord>, StoreError>;
    /// Completes an upload in one transaction: inserts `version` as in `version_put` (its
    /// `segments` are the data files of the parts it uses) and removes the upload and its
    /// parts. Returns the removed versions and the parts that `version.segments` does not
    /// name (their files are the caller's to delete).
    fn upload_complete(
        &self,
        upload_id: &str,
        version: &VersionRecord,
        replace: Option<&str>,
    ) -> Result<UploadChange<Completed>, StoreError>;

    /// Which of `blobs` a version or a part still references (as its blob or a segment).
    fn blobs_referenced(&self, blobs: &[String]) -> Result<Vec<String>, StoreError>;
}

/// The columns both backends read a version from, in this order.
pub(crate) const VERSION_COLUMNS: &str =
    "bucket, key, version_id, seq, latest, delete_marker, size, etag, created_us, blob, meta";
pub(crate) const UPLOAD_COLUMNS: &str = "upload_id, bucket, key, created_us, meta";
pub(crate) const PART_COLUMNS: &str = "upload_id, part_number, size, etag, created_us, blob, meta";
pub(crate) const BUCKET_COLUMNS: &str = "name, tenant, created_us, versioning, config";

/// The upper bound of a prefix's key range (`crate::platform::prefix_upper`).
pub(crate) use crate::platform::prefix_upper;

/// The test store delegates object metadata to the store it wraps.
impl ObjectRecords for crate::testing::TestStore {
    fn bucket_create(&self, bucket: &BucketRecord) -> Result<bool, StoreError> {
        self.store.bucket_create(bucket)
    }
    fn bucket_get(&self, name: &str) -> Result<Option<BucketRecord>, StoreError> {
        self.store.bucket_get(name)
    }
    fn bucket_list(&self, tenant: Option<&str>) -> Result<Vec<BucketRecord>, StoreError> {
        self.store.bucket_list(tenant)
    }
    fn bucket_update(
        &self,
        name: &str,
        versioning: i32,
        config: &[u8],
    ) -> Result<bool, StoreError> {
        self.store.bucket_update(name, versioning, config)
    }
    fn bucket_delete(&self, name: &str) -> Result<BucketDeleted, StoreError> {
        self.store.bucket_delete(name)
    }
    fn version_put(
        &self,
        version: &VersionRecord,
        replace: Option<&str>,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        self.store.version_put(version, replace)
    }
    fn version_get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.store.version_get(bucket, key, version_id)
    }
    fn version_delete(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.store.version_delete(bucket, key, version_id)
    }
    fn version_delete_if(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        expect_meta: &[u8],
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.store
            .version_delete_if(bucket, key, version_id, expect_meta)
    }
    fn version_set_meta(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        expect_meta: &[u8],
        meta: &[u8],
    ) -> Result<bool, StoreError> {
        self.store
            .version_set_meta(bucket, key, version_id, expect_meta, meta)
    }
    fn list_latest(
        &self,
        bucket: &str,
        prefix: &str,
        from: ListFrom<'_>,
        limit: usize,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        self.store.list_latest(bucket, prefix, from, limit)
    }
    fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, i64)>,
        limit: usize,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        self.store.list_versions(bucket, prefix, after, limit)
    }
    fn upload_create(&self, upload: &UploadRecord) -> Result<(), StoreError> {
        self.store.upload_create(upload)
    }
    fn upload_get(&self, upload_id: &str) -> Result<Option<UploadRecord>, StoreError> {
        self.store.upload_get(upload_id)
    }
    fn upload_list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<UploadRecord>, StoreError> {
        self.store.upload_list(bucket, prefix, after, limit)
    }
    fn upload_abort(&self, upload_id: &str) -> Result<Option<Vec<PartRecord>>, StoreError> {
        self.store.upload_abort(upload_id)
    }
    fn part_put(&self, part: &PartRecord) -> Result<UploadChange<Option<PartRecord>>, StoreError> {
        self.store.part_put(part)
    }
    fn part_list(
        &self,
        upload_id: &str,
        after: i32,
        limit: usize,
    ) -> Result<Vec<PartRecord>, StoreError> {
        self.store.part_list(upload_id, after, limit)
    }
    fn upload_complete(
        &self,
        upload_id: &str,
        version: &VersionRecord,
        replace: Option<&str>,
    ) -> Result<UploadChange<Completed>, StoreError> {
        self.store.upload_complete(upload_id, version, replace)
    }
    fn blobs_referenced(&self, blobs: &[String]) -> Result<Vec<String>, StoreError> {
        self.store.blobs_referenced(blobs)
    }
}
