//! The object store: buckets of a tenant, versioned objects, multipart uploads. Data goes to
//! blobs (encrypted, durable before the metadata names them), metadata to the store in one
//! transaction per change. Synchronous: async callers run it on blocking threads.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use md5::{Digest as _, Md5};
use medicus_store::Store;
use medicus_store::objects::{
    BucketDeleted, BucketRecord, ListFrom, NULL_VERSION, PartRecord, UploadChange, UploadRecord,
    VersionRecord,
};
use serde::{Deserialize, Serialize};

use crate::blob::{BlobStore, BlobWriter, RangeReader, SealedBlob, Segment};
use crate::crypto;
use crate::error::{ObjectError, Result};
use crate::keys::{KeyProvider, Keyring, WrappedDataKey};
use crate::lock::{DefaultRetention, ObjectLock, Retention};
use crate::names::{ByteRange, validate_bucket_name, validate_key};
use crate::sse::CustomerKey;

/// Smallest part other than the last (S3's limit).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Most parts of one upload.
pub const MAX_PARTS: i32 = 10_000;
/// Largest single PUT (S3's limit).
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Versioning state of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    Unversioned,
    Enabled,
    Suspended,
}

impl Versioning {
    pub fn of(b: &BucketRecord) -> Versioning {
        match b.versioning {
            1 => Versioning::Enabled,
            2 => Versioning::Suspended,
            _ => Versioning::Unversioned,
        }
    }
    fn code(self) -> i32 {
        match self {
            Versioning::Unversioned => 0,
            Versioning::Enabled => 1,
            Versioning::Suspended => 2,
        }
    }
}

/// Bucket configuration kept with the bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BucketConfig {
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// Object lock is enabled (then versioning stays enabled).
    #[serde(default)]
    pub object_lock: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_retention: Option<DefaultRetention>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifecycle: Vec<crate::lifecycle::LifecycleRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cors: Vec<crate::cors::CorsRule>,
}

/// Checksums a client sent and the store verified (base64, as S3 shows them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksums {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc64nvme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// What a client says about an object when writing it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAttrs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// Retention and legal hold of the version.
    #[serde(default, skip_serializing_if = "ObjectLock::is_empty")]
    pub lock: ObjectLock,
}

/// One data file of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub blob: String,
    pub size: u64,
    pub key: WrappedDataKey,
}

/// The `meta` of a version row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    #[serde(flatten)]
    pub attrs: ObjectAttrs,
    #[serde(default)]
    pub checksums: Checksums,
    #[serde(default)]
    pub segments: Vec<SegmentMeta>,
    /// Number of parts of a multipart object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u32>,
    /// base64 MD5 of the customer key (SSE-C) that also seals the data keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse_c: Option<String>,
}

/// A version with its meta decoded.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub record: VersionRecord,
    pub meta: ObjectMeta,
}

impl ObjectInfo {
    fn decode(record: VersionRecord) -> Result<ObjectInfo> {
        let meta = if record.meta.is_empty() {
            ObjectMeta::default()
        } else {
            serde_json::from_slice(&record.meta)
                .map_err(|e| ObjectError::Corrupt(format!("object meta: {e}")))?
        };
        Ok(ObjectInfo { record, meta })
    }

    pub fn size(&self) -> u64 {
        u64::try_from(self.record.size).unwrap_or(0)
    }

    /// The version id as S3 shows it: none for objects of a never-versioned bucket.
    pub fn version_id(&self) -> &str {
        &self.record.version_id
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| ObjectError::Corrupt(e.to_string()))
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub objects: Vec<ObjectInfo>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or prefix returned, where the next page continues.
    pub next: Option<String>,
}

/// One page of a version listing.
#[derive(Debug, Clone, Default)]
pub struct VersionListing {
    pub versions: Vec<ObjectInfo>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    pub next_key: Option<String>,
    pub next_version: Option<String>,
}

/// A listing position a client gave back: a key (or a common prefix ending in the delimiter).
fn resume_from<'a>(
    marker: Option<&'a str>,
    delimiter: Option<&str>,
    upper: &'a mut String,
) -> ListFrom<'a> {
    match marker {
        None => ListFrom::Start,
        Some(m) => match delimiter {
            Some(d) if !d.is_empty() && m.ends_with(d) => match prefix_upper(m) {
                Some(u) => {
                    *upper = u;
                    ListFrom::AtOrAfter(upper.as_str())
                }
                None => ListFrom::After(m),
            },
            _ => ListFrom::After(m),
        },
    }
}

/// The smallest string above every string that starts with `prefix`.
pub fn prefix_upper(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The common prefix `key` rolls up into under `delimiter`, if any.
fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: Option<&str>) -> Option<&'k str> {
    let d = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.get(prefix.len()..)?;
    let at = rest.find(d)?;
    key.get(..prefix.len() + at + d.len())
}

pub struct Objects {
    store: Arc<dyn Store>,
    blobs: BlobStore,
    keys: Keyring,
}

impl Objects {
    /// Opens the object store with data under `data_dir/objects`.
    pub fn open(
        data_dir: &Path,
        store: Arc<dyn Store>,
        master: Arc<dyn KeyProvider>,
    ) -> Result<Objects> {
        let blobs = BlobStore::open(&data_dir.join("objects"))?;
        let records: Arc<dyn medicus_store::PlatformRecords + Send + Sync> = store.clone();
        Ok(Objects {
            keys: Keyring::new(master, records),
            store,
            blobs,
        })
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keys
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Removes what a crash left behind (temporary files, data files no row names) that is
    /// older than `older_than` (the process start).
    pub fn collect_orphans(&self, older_than: SystemTime) -> Result<usize> {
        self.blobs.collect_orphans(self.store.as_ref(), older_than)
    }

    // ---- buckets ----

    pub fn create_bucket(&self, tenant: &str, name: &str) -> Result<BucketRecord> {
        self.create_bucket_with(tenant, name, false)
    }

    /// Creates a bucket; with `object_lock`, lock-enabled and versioned from the start.
    pub fn create_bucket_with(
        &self,
        tenant: &str,
        name: &str,
        object_lock: bool,
    ) -> Result<BucketRecord> {
        validate_bucket_name(name)?;
        let record = BucketRecord {
            name: name.to_owned(),
            tenant: tenant.to_owned(),
            created_us: now_us(),
            versioning: if object_lock { 1 } else { 0 },
            config: encode(&BucketConfig {
                object_lock,
                ..BucketConfig::default()
            })?,
        };
        if self.store.bucket_create(&record)? {
            return Ok(record);
        }
        match self.store.bucket_get(name)? {
            Some(b) if b.tenant == tenant => Err(ObjectError::BucketAlreadyOwnedByYou),
            _ => Err(ObjectError::BucketAlreadyExists),
        }
    }

    /// The bucket, if `tenant` owns it. Another tenant's bucket reads as absent: names are
    /// global, but nothing of a bucket, not even that it exists, reaches another tenant.
    pub fn bucket(&self, tenant: &str, name: &str) -> Result<BucketRecord> {
        match self.store.bucket_get(name)? {
            Some(b) if b.tenant == tenant => Ok(b),
            _ => Err(ObjectError::NoSuchBucket),
        }
    }

    /// Whether a bucket of that name exists for another tenant (create answers 409 then).
    pub fn list_buckets(&self, tenant: &str) -> Result<Vec<BucketRecord>> {
        Ok(self.store.bucket_list(Some(tenant))?)
    }

    pub fn delete_bucket(&self, bucket: &BucketRecord) -> Result<()> {
        match self.store.bucket_delete(&bucket.name)? {
            BucketDeleted::Deleted => Ok(()),
            BucketDeleted::NotFound => Err(ObjectError::NoSuchBucket),
            BucketDeleted::NotEmpty => Err(ObjectError::BucketNotEmpty),
        }
    }

    pub fn bucket_config(bucket: &BucketRecord) -> Result<BucketConfig> {
        if bucket.config.is_empty() {
            return Ok(BucketConfig::default());
        }
        serde_json::from_slice(&bucket.config)
            .map_err(|e| ObjectError::Corrupt(format!("bucket config: {e}")))
    }

    pub fn set_versioning(&self, bucket: &BucketRecord, enabled: bool) -> Result<()> {
        if !enabled && Self::bucket_config(bucket)?.object_lock {
            return Err(ObjectError::InvalidBucketState(
                "versioning cannot be suspended on a bucket with object lock".into(),
            ));
        }
        let v = if enabled {
            Versioning::Enabled
        } else if Versioning::of(bucket) == Versioning::Unversioned {
            Versioning::Unversioned
        } else {
            Versioning::Suspended
        };
        if !self
            .store
            .bucket_update(&bucket.name, v.code(), &bucket.config)?
        {
            return Err(ObjectError::NoSuchBucket);
        }
        Ok(())
    }

    pub fn set_bucket_config(&self, bucket: &BucketRecord, config: &BucketConfig) -> Result<()> {
        if !self
            .store
            .bucket_update(&bucket.name, bucket.versioning, &encode(config)?)?
        {
            return Err(ObjectError::NoSuchBucket);
        }
        Ok(())
    }

    // ---- objects ----

    /// A writer for the data of a new object or part.
    pub fn writer(&self) -> Result<BlobWriter> {
        self.blobs.writer()
    }

    /// Checks a new version's lock against the bucket and applies the bucket's default
    /// retention when the client named none.
    fn apply_lock_defaults(bucket: &BucketRecord, attrs: &mut ObjectAttrs) -> Result<()> {
        let config = Self::bucket_config(bucket)?;
        if !config.object_lock {
            if !attrs.lock.is_empty() {
                return Err(ObjectError::InvalidRequest(
                    "the bucket has no object lock configuration".into(),
                ));
            }
            return Ok(());
        }
        if attrs.lock.retention.is_none()
            && let Some(d) = config.default_retention
        {
            attrs.lock.retention = Some(d.at(now_us()));
        }
        Ok(())
    }

    /// Enables object lock on a versioned bucket and sets (or clears) its default retention.
    pub fn set_lock_config(
        &self,
        bucket: &BucketRecord,
        default_retention: Option<DefaultRetention>,
    ) -> Result<()> {
        if Versioning::of(bucket) != Versioning::Enabled {
            return Err(ObjectError::InvalidBucketState(
                "object lock needs versioning enabled".into(),
            ));
        }
        let mut config = Self::bucket_config(bucket)?;
        config.object_lock = true;
        config.default_retention = default_retention;
        if !self
            .store
            .bucket_update(&bucket.name, bucket.versioning, &encode(&config)?)?
        {
            return Err(ObjectError::NoSuchBucket);
        }
        Ok(())
    }

    /// Changes the lock of a version: `f` gets the current lock and returns the new one (or an
    /// error); written with compare-and-set.
    pub fn update_lock(
        &self,
        bucket: &BucketRecord,
        key: &str,
        version_id: Option<&str>,
        f: impl Fn(&ObjectLock) -> Result<ObjectLock>,
    ) -> Result<ObjectInfo> {
        if !Self::bucket_config(bucket)?.object_lock {
            return Err(ObjectError::InvalidRequest(
                "the bucket has no object lock configuration".into(),
            ));
        }
        for _ in 0..5 {
            let mut info = self.head(bucket, key, version_id)?;
            let old = info.record.meta.clone();
            info.meta.attrs.lock = f(&info.meta.attrs.lock)?;
            let new = encode(&info.meta)?;
            if self.store.version_set_meta(
                &bucket.name,
                key,
                &info.record.version_id,
                &old,
                &new,
            )? {
                info.record.meta = new;
                return Ok(info);
            }
        }
        Err(ObjectError::Conflict)
    }

    /// Sets the retention of a version under the rules of `ObjectLock::check_retention_change`.
    pub fn set_retention(
        &self,
        bucket: &BucketRecord,
        key: &str,
        version_id: Option<&str>,
        retention: Option<Retention>,
        bypass: bool,
    ) -> Result<ObjectInfo> {
        self.update_lock(bucket, key, version_id, |lock| {
            lock.check_retention_change(retention, now_us(), bypass)?;
            Ok(ObjectLock {
                retention,
                legal_hold: lock.legal_hold,
            })
        })
    }

    pub fn set_legal_hold(
        &self,
        bucket: &BucketRecord,
        key: &str,
        version_id: Option<&str>,
        on: bool,
    ) -> Result<ObjectInfo> {
        self.update_lock(bucket, key, version_id, |lock| {
            Ok(ObjectLock {
                retention: lock.retention,
                legal_hold: on,
            })
        })
    }

    /// Deletes a finished blob that will not be committed (its checksum did not match).
    pub fn discard(&self, blob: SealedBlob) {
        self.blobs.remove([blob.id]);
    }

    fn new_version_id(bucket: &BucketRecord) -> Result<(String, Option<&'static str>)> {
        Ok(match Versioning::of(bucket) {
            Versioning::Enabled => (crypto::random_id()?, None),
            _ => (NULL_VERSION.to_owned(), Some(NULL_VERSION)),
        })
    }

    fn release(&self, removed: Vec<VersionRecord>) {
        for v in removed {
            match ObjectInfo::decode(v) {
                Ok(info) => self
                    .blobs
                    .remove(info.meta.segments.into_iter().map(|s| s.blob)),
                Err(e) => {
                    tracing::warn!(error = %e, "a removed version's data files are left to orphan collection")
                }
            }
        }
    }

    /// Commits a finished blob as the newest version of `key`.
    pub fn put(
        &self,
        bucket: &BucketRecord,
        key: &str,
        blob: SealedBlob,
        attrs: ObjectAttrs,
        checksums: Checksums,
    ) -> Result<ObjectInfo> {
        self.put_sse(bucket, key, blob, attrs, checksums, None)
    }

    /// `put`, the data key also sealed under a customer key (SSE-C) when one is given.
    pub fn put_sse(
        &self,
        bucket: &BucketRecord,
        key: &str,
        blob: SealedBlob,
        attrs: ObjectAttrs,
        checksums: Checksums,
        customer: Option<&CustomerKey>,
    ) -> Result<ObjectInfo> {
        validate_key(key)?;
        let mut attrs = attrs;
        if let Err(e) = Self::apply_lock_defaults(bucket, &mut attrs) {
            self.blobs.remove([blob.id]);
            return Err(e);
        }
        let wrapped =
            self.keys
                .wrap_data_key(&bucket.tenant, &blob.key, customer.map(|c| &c.key))?;
        let meta = ObjectMeta {
            sse_c: customer.map(|c| c.md5.clone()),
            attrs,
            checksums,
            segments: vec![SegmentMeta {
                blob: blob.id.clone(),
                size: blob.size,
                key: wrapped,
            }],
            parts: None,
        };
        let (version_id, replace) = Self::new_version_id(bucket)?;
        let record = VersionRecord {
            bucket: bucket.name.clone(),
            key: key.to_owned(),
            version_id,
            seq: 0,
            latest: true,
            delete_marker: false,
            size: i64::try_from(blob.size).unwrap_or(i64::MAX),
            etag: crypto::hex(&blob.md5),
            created_us: now_us(),
            blob: Some(blob.id.clone()),
            segments: vec![],
            meta: encode(&meta)?,
        };
        let removed = match self.store.version_put(&record, replace) {
            Ok(r) => r,
            Err(e) => {
                self.blobs.remove([blob.id]);
                return Err(e.into());
            }
        };
        self.release(removed);
        Ok(ObjectInfo { record, meta })
    }

    /// The version (latest for `None`). A latest delete marker is `NoSuchKey`; a delete marker
    /// asked for by id is `MethodNotAllowed`.
    pub fn head(
        &self,
        bucket: &BucketRecord,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectInfo> {
        validate_key(key)?;
        let found = self.store.version_get(&bucket.name, key, version_id)?;
        match found {
            None if version_id.is_some() => Err(ObjectError::NoSuchVersion),
            None => Err(ObjectError::NoSuchKey),
            Some(v) if v.delete_marker && version_id.is_some() => {
                Err(ObjectError::MethodNotAllowed)
            }
            Some(v) if v.delete_marker => Err(ObjectError::NoSuchKey),
            Some(v) => ObjectInfo::decode(v),
        }
    }

    /// A reader of the object's bytes in `range` (the whole object for `None`).
    pub fn reader(
        &self,
        bucket: &BucketRecord,
        info: &ObjectInfo,
        range: Option<ByteRange>,
    ) -> Result<RangeReader> {
        self.reader_sse(bucket, info, range, None)
    }

    /// `reader` of an object that may be SSE-C: the key must be the one it was stored with.
    pub fn reader_sse(
        &self,
        bucket: &BucketRecord,
        info: &ObjectInfo,
        range: Option<ByteRange>,
        customer: Option<&CustomerKey>,
    ) -> Result<RangeReader> {
        CustomerKey::check(&info.meta, customer)?;
        let mut segments = Vec::with_capacity(info.meta.segments.len());
        for s in &info.meta.segments {
            segments.push(Segment {
                path: self.blobs.path(&s.blob)?,
                size: s.size,
                key: self
                    .keys
                    .unwrap_data_key(&bucket.tenant, &s.key, customer.map(|c| &c.key))?,
            });
        }
        let size = info.size();
        let (start, end) = match range {
            Some(r) => (r.start, r.end),
            // An empty object reads as nothing (start past end).
            None if size == 0 => (1, 0),
            None => (0, size - 1),
        };
        RangeReader::new(segments, start, end)
    }

    /// Deletes as S3 does: a version by id is removed; without an id, a versioned bucket gets a
    /// delete marker and an unversioned one loses its object.
    pub fn delete(
        &self,
        bucket: &BucketRecord,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Deleted> {
        self.delete_with(bucket, key, version_id, false)
    }

    /// `delete`, with a GOVERNANCE bypass the caller is entitled to and asked for. A locked
    /// version is refused; the check and the removal are one compare-and-delete on the
    /// version's metadata, so a lock set in between is never overrun.
    pub fn delete_with(
        &self,
        bucket: &BucketRecord,
        key: &str,
        version_id: Option<&str>,
        bypass: bool,
    ) -> Result<Deleted> {
        validate_key(key)?;
        if let Some(id) = version_id {
            let Some(v) = self.store.version_get(&bucket.name, key, Some(id))? else {
                return Ok(Deleted {
                    version_id: Some(id.to_owned()),
                    delete_marker: false,
                });
            };
            let marker = v.delete_marker;
            if !marker {
                let info = ObjectInfo::decode(v.clone())?;
                info.meta.attrs.lock.check_delete(now_us(), bypass)?;
            }
            match self
                .store
                .version_delete_if(&bucket.name, key, id, &v.meta)?
            {
                Some(removed) => self.release(vec![removed]),
                None => {
                    if self
                        .store
                        .version_get(&bucket.name, key, Some(id))?
                        .is_some()
                    {
                        return Err(ObjectError::Conflict);
                    }
                }
            }
            return Ok(Deleted {
                version_id: Some(id.to_owned()),
                delete_marker: marker,
            });
        }
        match Versioning::of(bucket) {
            Versioning::Unversioned => {
                if let Some(v) = self.store.version_delete(&bucket.name, key, NULL_VERSION)? {
                    self.release(vec![v]);
                }
                Ok(Deleted {
                    version_id: None,
                    delete_marker: false,
                })
            }
            versioning => {
                let (id, replace) = if versioning == Versioning::Enabled {
                    (crypto::random_id()?, None)
                } else {
                    (NULL_VERSION.to_owned(), Some(NULL_VERSION))
                };
                let marker = VersionRecord {
                    bucket: bucket.name.clone(),
                    key: key.to_owned(),
                    version_id: id.clone(),
                    seq: 0,
                    latest: true,
                    delete_marker: true,
                    size: 0,
                    etag: String::new(),
                    created_us: now_us(),
                    blob: None,
                    segments: vec![],
                    meta: Vec::new(),
                };
                let removed = self.store.version_put(&marker, replace)?;
                self.release(removed);
                Ok(Deleted {
                    version_id: Some(id),
                    delete_marker: true,
                })
            }
        }
    }

    /// Replaces the tags of a version.
    pub fn set_tags(
        &self,
        bucket: &BucketRecord,
        key: &str,
        version_id: Option<&str>,
        tags: Vec<(String, String)>,
    ) -> Result<ObjectInfo> {
        for _ in 0..5 {
            let mut info = self.head(bucket, key, version_id)?;
            let old = info.record.meta.clone();
            info.meta.attrs.tags = tags.clone();
            let new = encode(&info.meta)?;
            if self.store.version_set_meta(
                &bucket.name,
                key,
                &info.record.version_id,
                &old,
                &new,
            )? {
                info.record.meta = new;
                return Ok(info);
            }
        }
        Err(ObjectError::Conflict)
    }

    /// Lists the current objects: keys starting with `prefix` after `marker`, rolled up into
    /// common prefixes at `delimiter`, at most `max` entries (objects and prefixes together).
    pub fn list(
        &self,
        bucket: &BucketRecord,
        prefix: &str,
        delimiter: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> Result<Listing> {
        let mut out = Listing::default();
        let mut upper = String::new();
        // The position as (key, inclusive).
        let mut pos: (String, bool) = match resume_from(marker, delimiter, &mut upper) {
            ListFrom::Start => (prefix.to_owned(), true),
            ListFrom::After(k) => (k.to_owned(), false),
            ListFrom::AtOrAfter(k) => (k.to_owned(), true),
        };
        let batch = max.clamp(1, 1000) + 1;
        loop {
            let from = if pos.1 {
                ListFrom::AtOrAfter(&pos.0)
            } else {
                ListFrom::After(&pos.0)
            };
            let page = self.store.list_latest(&bucket.name, prefix, from, batch)?;
            let full = page.len() == batch;
            let mut next_pos = None;
            for v in page {
                if out.objects.len() + out.prefixes.len() >= max {
                    out.truncated = true;
                    return Ok(out);
                }
                if let Some(cp) = common_prefix(&v.key, prefix, delimiter) {
                    let cp = cp.to_owned();
                    out.next = Some(cp.clone());
                    let Some(u) = prefix_upper(&cp) else {
                        out.prefixes.push(cp);
                        return Ok(out);
                    };
                    out.prefixes.push(cp);
                    // Skip the rest of the prefix with a fresh query.
                    next_pos = Some((u, true));
                    break;
                }
                out.next = Some(v.key.clone());
                next_pos = Some((v.key.clone(), false));
                out.objects.push(ObjectInfo::decode(v)?);
            }
            match next_pos {
                Some(p) if full || p.1 => pos = p,
                _ => return Ok(out),
            }
        }
    }

    /// Lists versions and delete markers, newest first per key, after `(key, version id)`.
    pub fn list_versions(
        &self,
        bucket: &BucketRecord,
        prefix: &str,
        delimiter: Option<&str>,
        key_marker: Option<&str>,
        version_marker: Option<&str>,
        max: usize,
    ) -> Result<VersionListing> {
        let mut out = VersionListing::default();
        // The position: after the marker version of the marker key, or after the whole key.
        let mut after: Option<(String, i64)> = match key_marker {
            None => None,
            Some(k) => match version_marker.filter(|v| !v.is_empty()) {
                Some(vid) => match self.store.version_get(&bucket.name, k, Some(vid))? {
                    Some(v) => Some((k.to_owned(), v.seq)),
                    None => Some((k.to_owned(), i64::MIN)),
                },
                None => Some((k.to_owned(), i64::MIN)),
            },
        };
        let batch = max.clamp(1, 1000) + 1;
        loop {
            let page = self.store.list_versions(
                &bucket.name,
                prefix,
                after.as_ref().map(|(k, s)| (k.as_str(), *s)),
                batch,
            )?;
            let full = page.len() == batch;
            if page.is_empty() {
                return Ok(out);
            }
            for v in page {
                if let Some(cp) = common_prefix(&v.key, prefix, delimiter) {
                    if out.prefixes.last().map(String::as_str) != Some(cp) {
                        if out.versions.len() + out.prefixes.len() >= max {
                            out.truncated = true;
                            return Ok(out);
                        }
                        out.prefixes.push(cp.to_owned());
                        out.next_key = Some(cp.to_owned());
                        out.next_version = None;
                    }
                    after = Some((v.key.clone(), i64::MIN));
                    continue;
                }
                if out.versions.len() + out.prefixes.len() >= max {
                    out.truncated = true;
                    return Ok(out);
                }
                after = Some((v.key.clone(), v.seq));
                out.next_key = Some(v.key.clone());
                out.next_version = Some(v.version_id.clone());
                out.versions.push(ObjectInfo::decode(v)?);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    // ---- multipart ----

    pub fn create_upload(
        &self,
        bucket: &BucketRecord,
        key: &str,
        attrs: ObjectAttrs,
    ) -> Result<UploadRecord> {
        self.create_upload_sse(bucket, key, attrs, None)
    }

    /// `create_upload` of an SSE-C object: every part must come with the same key.
    pub fn create_upload_sse(
        &self,
        bucket: &BucketRecord,
        key: &str,
        attrs: ObjectAttrs,
        customer: Option<&CustomerKey>,
    ) -> Result<UploadRecord> {
        validate_key(key)?;
        let upload = UploadRecord {
            upload_id: crypto::random_id()?,
            bucket: bucket.name.clone(),
            key: key.to_owned(),
            created_us: now_us(),
            meta: encode(&ObjectMeta {
                attrs,
                sse_c: customer.map(|c| c.md5.clone()),
                ..ObjectMeta::default()
            })?,
        };
        self.store.upload_create(&upload)?;
        Ok(upload)
    }

    /// The upload, if it belongs to `bucket` and `key`.
    pub fn upload(
        &self,
        bucket: &BucketRecord,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadRecord> {
        match self.store.upload_get(upload_id)? {
            Some(u) if u.bucket == bucket.name && u.key == key => Ok(u),
            _ => Err(ObjectError::NoSuchUpload),
        }
    }

    /// Stores a finished blob as part `number`; returns its ETag (hex MD5).
    pub fn put_part(
        &self,
        bucket: &BucketRecord,
        upload: &UploadRecord,
        number: i32,
        blob: SealedBlob,
        checksums: Checksums,
    ) -> Result<PartRecord> {
        self.put_part_sse(bucket, upload, number, blob, checksums, None)
    }

    /// `put_part` with the upload's customer key (SSE-C), if it has one.
    pub fn put_part_sse(
        &self,
        bucket: &BucketRecord,
        upload: &UploadRecord,
        number: i32,
        blob: SealedBlob,
        checksums: Checksums,
        customer: Option<&CustomerKey>,
    ) -> Result<PartRecord> {
        if !(1..=MAX_PARTS).contains(&number) {
            self.blobs.remove([blob.id]);
            return Err(ObjectError::InvalidArgument(
                "part numbers are 1 to 10000".into(),
            ));
        }
        let upload_meta: ObjectMeta = serde_json::from_slice(&upload.meta)
            .map_err(|e| ObjectError::Corrupt(format!("upload meta: {e}")))?;
        if let Err(e) = CustomerKey::check(&upload_meta, customer) {
            self.blobs.remove([blob.id]);
            return Err(e);
        }
        let key = self
            .keys
            .wrap_data_key(&bucket.tenant, &blob.key, customer.map(|c| &c.key))?;
        let part = PartRecord {
            upload_id: upload.upload_id.clone(),
            part_number: number,
            size: i64::try_from(blob.size).unwrap_or(i64::MAX),
            etag: crypto::hex(&blob.md5),
            created_us: now_us(),
            blob: blob.id.clone(),
            meta: encode(&ObjectMeta {
                checksums,
                segments: vec![SegmentMeta {
                    blob: blob.id.clone(),
                    size: blob.size,
                    key,
                }],
                ..ObjectMeta::default()
            })?,
        };
        match self.store.part_put(&part) {
            Ok(UploadChange::Done(old)) => {
                if let Some(old) = old {
                    self.blobs.remove([old.blob]);
                }
                Ok(part)
            }
            Ok(UploadChange::NoSuchUpload) => {
                self.blobs.remove([blob.id]);
                Err(ObjectError::NoSuchUpload)
            }
            Err(e) => {
                self.blobs.remove([blob.id]);
                Err(e.into())
            }
        }
    }

    pub fn list_parts(
        &self,
        upload: &UploadRecord,
        after: i32,
        max: usize,
    ) -> Result<Vec<PartRecord>> {
        Ok(self.store.part_list(&upload.upload_id, after, max)?)
    }

    pub fn list_uploads(
        &self,
        bucket: &BucketRecord,
        prefix: &str,
        after: Option<(&str, &str)>,
        max: usize,
    ) -> Result<Vec<UploadRecord>> {
        Ok(self.store.upload_list(&bucket.name, prefix, after, max)?)
    }

    pub fn abort_upload(&self, upload: &UploadRecord) -> Result<()> {
        match self.store.upload_abort(&upload.upload_id)? {
            Some(parts) => {
                self.blobs.remove(parts.into_iter().map(|p| p.blob));
                Ok(())
            }
            None => Err(ObjectError::NoSuchUpload),
        }
    }

    /// Completes an upload from the parts the client names, in ascending order, each with the
    /// ETag it was given; every part but the last has at least 5 MiB.
    pub fn complete_upload(
        &self,
        bucket: &BucketRecord,
        upload: &UploadRecord,
        chosen: &[(i32, String)],
    ) -> Result<ObjectInfo> {
        if chosen.is_empty() {
            return Err(ObjectError::InvalidPart);
        }
        if chosen.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(ObjectError::InvalidPartOrder);
        }
        let mut stored = BTreeMap::new();
        let mut after = 0;
        loop {
            let page = self.store.part_list(&upload.upload_id, after, 1000)?;
            let Some(last) = page.last() else { break };
            after = last.part_number;
            for p in page {
                stored.insert(p.part_number, p);
            }
        }
        let mut segments = Vec::with_capacity(chosen.len());
        let mut md5s = Md5::new();
        let mut size: u64 = 0;
        for (i, (number, etag)) in chosen.iter().enumerate() {
            let part = stored.get(number).ok_or(ObjectError::InvalidPart)?;
            if part.etag != etag.trim_matches('"') {
                return Err(ObjectError::InvalidPart);
            }
            let psize = u64::try_from(part.size).unwrap_or(0);
            if i + 1 < chosen.len() && psize < MIN_PART_SIZE {
                return Err(ObjectError::EntityTooSmall);
            }
            let meta: ObjectMeta = serde_json::from_slice(&part.meta)
                .map_err(|e| ObjectError::Corrupt(format!("part meta: {e}")))?;
            segments.extend(meta.segments);
            let digest = hex_decode(&part.etag)
                .ok_or_else(|| ObjectError::Corrupt("part ETag is not hex".into()))?;
            md5s.update(&digest);
            size += psize;
        }
        let mut meta: ObjectMeta = serde_json::from_slice(&upload.meta)
            .map_err(|e| ObjectError::Corrupt(format!("upload meta: {e}")))?;
        meta.segments = segments;
        meta.parts = Some(u32::try_from(chosen.len()).unwrap_or(u32::MAX));
        Self::apply_lock_defaults(bucket, &mut meta.attrs)?;
        let digest: [u8; 16] = md5s.finalize().into();
        let (version_id, replace) = Self::new_version_id(bucket)?;
        let record = VersionRecord {
            bucket: bucket.name.clone(),
            key: upload.key.clone(),
            version_id,
            seq: 0,
            latest: true,
            delete_marker: false,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            etag: format!("{}-{}", crypto::hex(&digest), chosen.len()),
            created_us: now_us(),
            blob: None,
            segments: meta.segments.iter().map(|s| s.blob.clone()).collect(),
            meta: encode(&meta)?,
        };
        match self
            .store
            .upload_complete(&upload.upload_id, &record, replace)?
        {
            UploadChange::Done((removed, unused)) => {
                self.release(removed);
                self.blobs.remove(unused.into_iter().map(|p| p.blob));
                Ok(ObjectInfo { record, meta })
            }
            UploadChange::NoSuchUpload => Err(ObjectError::NoSuchUpload),
        }
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix("a/b/c", "", Some("/")), Some("a/"));
        assert_eq!(common_prefix("a/b/c", "a/", Some("/")), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", Some("/")), None);
        assert_eq!(common_prefix("a/b", "", None), None);
        assert_eq!(common_prefix("a--b--c", "", Some("--")), Some("a--"));
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(
            hex_decode(&crypto::hex(&[0, 255, 16])).unwrap(),
            [0, 255, 16]
        );
        assert!(hex_decode("abc").is_none());
        assert!(hex_decode("zz").is_none());
    }
}
