//! The S3 operations over the object engine. Every engine call runs on a blocking thread (the
//! store is synchronous); bodies stream through `body.rs`. Each operation first resolves the
//! access key, checks its permission on the bucket, then resolves the bucket within the key's
//! tenant: another tenant's bucket is `NoSuchBucket`, whatever the key's grants say.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use medicus_objects::access::{AccessKey, Permission};
use medicus_objects::cors::CorsRule;
use medicus_objects::engine::MAX_PUT_SIZE;
use medicus_objects::lifecycle::LifecycleRule;
use medicus_objects::lock::{DefaultRetention, LockMode, ObjectLock, Retention};
use medicus_objects::names::{ByteRange, RangeSpec, parse_range, validate_key};
use medicus_objects::sse::CustomerKey;
use medicus_objects::{Checksums, ObjectAttrs, ObjectError, ObjectInfo, Objects};
use medicus_store::objects::{BucketRecord, NULL_VERSION, UploadRecord};
use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::auth::KeyCache;
use super::body::{self, Wanted};
use super::errors::to_s3;

pub struct MedicusS3 {
    objects: Arc<Objects>,
    keys: Arc<KeyCache>,
}

impl MedicusS3 {
    pub fn new(objects: Arc<Objects>, keys: Arc<KeyCache>) -> MedicusS3 {
        MedicusS3 { objects, keys }
    }

    async fn key<T>(&self, req: &S3Request<T>) -> S3Result<Arc<AccessKey>> {
        let creds = req
            .credentials
            .as_ref()
            .ok_or_else(|| s3_error!(AccessDenied, "a signature is required"))?;
        self.keys.get(&creds.access_key).await
    }

    /// Runs `f` with the engine on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Objects) -> Result<T, ObjectError> + Send + 'static,
    ) -> S3Result<T> {
        let objects = self.objects.clone();
        tokio::task::spawn_blocking(move || f(&objects))
            .await
            .map_err(|_| s3_error!(InternalError, "operation failed"))?
            .map_err(to_s3)
    }

    /// The bucket `name` of the key's tenant, if the key holds `need` on it.
    async fn bucket(
        &self,
        key: &AccessKey,
        name: &str,
        need: Permission,
    ) -> S3Result<BucketRecord> {
        if !key.allows(name, need) {
            return Err(s3_error!(AccessDenied));
        }
        let (tenant, name) = (key.tenant.clone(), name.to_owned());
        self.run(move |o| o.bucket(&tenant, &name)).await
    }
}

fn ts(us: i64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_micros(u64::try_from(us).unwrap_or(0)))
}

fn etag(s: &str) -> ETag {
    ETag::Strong(s.to_owned())
}

fn version_out(info: &ObjectInfo, bucket: &BucketRecord) -> Option<String> {
    // A never-versioned bucket shows no version ids.
    (bucket.versioning != 0 || info.version_id() != NULL_VERSION)
        .then(|| info.version_id().to_owned())
}

fn b64_md5_matches(header: &str, md5: &[u8; 16]) -> Result<(), ObjectError> {
    let sent = B64
        .decode(header.trim())
        .map_err(|_| ObjectError::InvalidArgument("Content-MD5 is not base64".into()))?;
    if sent.as_slice() != md5 {
        return Err(ObjectError::BadDigest(
            "the Content-MD5 you specified did not match what we received".into(),
        ));
    }
    Ok(())
}

/// The checksums a client claims, from the input fields or (streaming uploads) the trailer.
#[derive(Default)]
struct Claimed {
    crc32: Option<String>,
    crc32c: Option<String>,
    crc64nvme: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
    algorithm: Option<String>,
}

impl Claimed {
    fn wanted(&self, headers: &axum::http::HeaderMap) -> Wanted {
        let trailer = headers
            .get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let alg = self.algorithm.as_deref().unwrap_or("").to_ascii_uppercase();
        Wanted {
            crc32: self.crc32.is_some()
                || alg == "CRC32"
                || trailer.contains("crc32") && !trailer.contains("crc32c"),
            crc32c: self.crc32c.is_some() || alg == "CRC32C" || trailer.contains("crc32c"),
            crc64nvme: self.crc64nvme.is_some()
                || alg == "CRC64NVME"
                || trailer.contains("crc64nvme"),
            sha1: self.sha1.is_some() || alg == "SHA1" || trailer.contains("sha1"),
            sha256: self.sha256.is_some() || alg == "SHA256" || trailer.contains("sha256"),
        }
    }

    fn with_trailer(mut self, trailers: Option<axum::http::HeaderMap>) -> Claimed {
        if let Some(t) = trailers {
            let get = |n: &str| t.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
            self.crc32 = self.crc32.or_else(|| get("x-amz-checksum-crc32"));
            self.crc32c = self.crc32c.or_else(|| get("x-amz-checksum-crc32c"));
            self.crc64nvme = self.crc64nvme.or_else(|| get("x-amz-checksum-crc64nvme"));
            self.sha1 = self.sha1.or_else(|| get("x-amz-checksum-sha1"));
            self.sha256 = self.sha256.or_else(|| get("x-amz-checksum-sha256"));
        }
        self
    }

    /// Compares with what was computed; returns what to keep with the object.
    fn verify(&self, computed: &Checksum) -> Result<Checksums, ObjectError> {
        let pairs = [
            ("CRC32", &self.crc32, &computed.checksum_crc32),
            ("CRC32C", &self.crc32c, &computed.checksum_crc32c),
            ("CRC64NVME", &self.crc64nvme, &computed.checksum_crc64nvme),
            ("SHA1", &self.sha1, &computed.checksum_sha1),
            ("SHA256", &self.sha256, &computed.checksum_sha256),
        ];
        for (name, claimed, actual) in pairs {
            if let Some(c) = claimed
                && Some(c) != actual.as_ref()
            {
                return Err(ObjectError::BadDigest(format!(
                    "the {name} you specified did not match the calculated checksum"
                )));
            }
        }
        Ok(Checksums {
            crc32: computed.checksum_crc32.clone(),
            crc32c: computed.checksum_crc32c.clone(),
            crc64nvme: computed.checksum_crc64nvme.clone(),
            sha1: computed.checksum_sha1.clone(),
            sha256: computed.checksum_sha256.clone(),
        })
    }
}

fn parse_tagging(header: Option<&str>) -> S3Result<Vec<(String, String)>> {
    let Some(h) = header.filter(|h| !h.is_empty()) else {
        return Ok(vec![]);
    };
    let tags: Vec<(String, String)> = url_pairs(h);
    check_tags(&tags)?;
    Ok(tags)
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn check_tags(tags: &[(String, String)]) -> S3Result<()> {
    if tags.len() > 10 {
        return Err(s3_error!(InvalidTag, "at most 10 tags"));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(s3_error!(
                InvalidTag,
                "tag keys have 1-128 characters, values up to 256"
            ));
        }
    }
    Ok(())
}

fn tag_set(tags: &[(String, String)]) -> TagSet {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// `If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since` as RFC 9110 orders
/// them; `read` is true for GET/HEAD (a failed `If-None-Match` is 304 there, 412 elsewhere).
fn check_conditions(
    info: &ObjectInfo,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let current = &info.record.etag;
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == current,
    };
    let modified = u64::try_from(info.record.created_us / 1_000_000).unwrap_or(0);
    let secs = |t: &Timestamp| {
        let t: time::OffsetDateTime = t.clone().into();
        u64::try_from(t.unix_timestamp()).unwrap_or(0)
    };
    if let Some(c) = if_match {
        if !matches(c) {
            return Err(s3_error!(PreconditionFailed));
        }
    } else if let Some(t) = if_unmodified_since
        && modified > secs(t)
    {
        return Err(s3_error!(PreconditionFailed));
    }
    if let Some(c) = if_none_match {
        if matches(c) {
            return Err(s3_error!(NotModified));
        }
    } else if let Some(t) = if_modified_since
        && modified <= secs(t)
    {
        return Err(s3_error!(NotModified));
    }
    Ok(())
}

fn attrs_of(
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    metadata: Option<Metadata>,
    tags: Vec<(String, String)>,
) -> S3Result<ObjectAttrs> {
    let user: std::collections::BTreeMap<String, String> = metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let size: usize = user.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > 2048 {
        return Err(s3_error!(MetadataTooLarge));
    }
    Ok(ObjectAttrs {
        content_type,
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        user,
        tags,
        lock: ObjectLock::default(),
    })
}

/// The lock a client asks for on a new object.
fn lock_in(
    mode: Option<&ObjectLockMode>,
    until: Option<&Timestamp>,
    hold: Option<&ObjectLockLegalHoldStatus>,
) -> S3Result<ObjectLock> {
    let retention = match (mode, until) {
        (Some(m), Some(t)) => Some(Retention {
            mode: LockMode::parse(m.as_str()).map_err(to_s3)?,
            until_us: ts_us(t),
        }),
        (None, None) => None,
        _ => {
            return Err(s3_error!(
                InvalidArgument,
                "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date go together"
            ));
        }
    };
    Ok(ObjectLock {
        retention,
        legal_hold: hold.is_some_and(|h| h.as_str() == ObjectLockLegalHoldStatus::ON),
    })
}

/// The SSE-C key of a request, if it sends one (algorithm AES256, 256-bit key, matching MD5).
fn customer(
    algorithm: Option<&String>,
    key: Option<&String>,
    md5: Option<&String>,
) -> S3Result<Option<Arc<CustomerKey>>> {
    match (algorithm, key) {
        (None, None) => Ok(None),
        (Some(a), Some(k)) if a == "AES256" => CustomerKey::parse(k, md5.map(String::as_str))
            .map(|c| Some(Arc::new(c)))
            .map_err(to_s3),
        (Some(_), Some(_)) => Err(s3_error!(
            InvalidArgument,
            "the SSE-C algorithm must be AES256"
        )),
        _ => Err(s3_error!(
            InvalidArgument,
            "SSE-C needs both the algorithm and the key"
        )),
    }
}

fn sse_out(info: &ObjectInfo) -> (Option<String>, Option<String>) {
    match &info.meta.sse_c {
        Some(md5) => (Some("AES256".to_owned()), Some(md5.clone())),
        None => (None, None),
    }
}

fn ts_us(t: &Timestamp) -> i64 {
    let t: time::OffsetDateTime = t.clone().into();
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn lock_out(
    info: &ObjectInfo,
) -> (
    Option<ObjectLockMode>,
    Option<Timestamp>,
    Option<ObjectLockLegalHoldStatus>,
) {
    let l = &info.meta.attrs.lock;
    (
        l.retention
            .map(|r| ObjectLockMode::from_static(r.mode.as_str())),
        l.retention.map(|r| ts(r.until_us)),
        l.legal_hold
            .then(|| ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON)),
    )
}

fn metadata_out(info: &ObjectInfo) -> Option<Metadata> {
    let m = &info.meta.attrs.user;
    (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn resolve_range(range: Option<&Range>, size: u64) -> S3Result<Option<ByteRange>> {
    let Some(r) = range else { return Ok(None) };
    let spec = match *r {
        Range::Int { first, last } => RangeSpec::From {
            start: first,
            end: last,
        },
        Range::Suffix { length } => RangeSpec::Suffix(length),
    };
    spec.resolve(size).map(Some).map_err(to_s3)
}

fn max_keys(n: Option<i32>) -> usize {
    n.map_or(1000, |n| usize::try_from(n.clamp(0, 1000)).unwrap_or(1000))
}

fn object_entry(info: &ObjectInfo) -> Object {
    Object {
        key: Some(info.record.key.clone()),
        e_tag: Some(etag(&info.record.etag)),
        last_modified: Some(ts(info.record.created_us)),
        size: Some(info.record.size),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        ..Default::default()
    }
}

fn common_prefixes(p: Vec<String>) -> Option<CommonPrefixList> {
    (!p.is_empty()).then(|| {
        p.into_iter()
            .map(|prefix| CommonPrefix {
                prefix: Some(prefix),
            })
            .collect()
    })
}

fn copy_source(src: &CopySource) -> S3Result<(String, String, Option<String>)> {
    match src {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((
            bucket.to_string(),
            key.to_string(),
            version_id.as_ref().map(|v| v.to_string()),
        )),
        _ => Err(s3_error!(
            NotImplemented,
            "access point sources are not supported"
        )),
    }
}

fn parse_copy_range(r: &str, size: u64) -> S3Result<ByteRange> {
    parse_range(r)
        .and_then(|s| match s {
            RangeSpec::From { end: Some(_), .. } => s.resolve(size),
            _ => Err(ObjectError::InvalidArgument(
                "x-amz-copy-source-range must be bytes=first-last".into(),
            )),
        })
        .map_err(to_s3)
}

impl MedicusS3 {
    /// Streams an object's bytes (or a range) into a new, unfinished blob.
    async fn copy_data(
        &self,
        src_bucket: BucketRecord,
        info: ObjectInfo,
        range: Option<ByteRange>,
        src_customer: Option<Arc<CustomerKey>>,
    ) -> S3Result<medicus_objects::blob::SealedBlob> {
        self.run(move |o| {
            let mut reader = o.reader_sse(&src_bucket, &info, range, src_customer.as_deref())?;
            let mut w = o.writer()?;
            while let Some(c) = reader.next_chunk()? {
                w.write(&c)?;
            }
            w.finish()
        })
        .await
    }

    async fn source(
        &self,
        key: &AccessKey,
        src: &CopySource,
    ) -> S3Result<(BucketRecord, ObjectInfo)> {
        let (sb, sk, sv) = copy_source(src)?;
        let src_bucket = self.bucket(key, &sb, Permission::Read).await?;
        let b = src_bucket.clone();
        let info = self.run(move |o| o.head(&b, &sk, sv.as_deref())).await?;
        Ok((src_bucket, info))
    }
}

#[async_trait::async_trait]
impl S3 for MedicusS3 {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let key = self.key(&req).await?;
        let tenant = key.tenant.clone();
        let all = self.run(move |o| o.list_buckets(&tenant)).await?;
        let buckets = all
            .into_iter()
            .filter(|b| key.permission(&b.name).is_some())
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(ts(b.created_us)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Owner {
                display_name: Some(key.tenant.clone()),
                id: Some(key.tenant.clone()),
            }),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let key = self.key(&req).await?;
        let name = req.input.bucket.clone();
        if !key.allows(&name, Permission::Admin) {
            return Err(s3_error!(
                AccessDenied,
                "creating a bucket needs the admin permission"
            ));
        }
        let tenant = key.tenant.clone();
        let n = name.clone();
        let lock = req.input.object_lock_enabled_for_bucket.unwrap_or(false);
        self.run(move |o| o.create_bucket_with(&tenant, &n, lock))
            .await?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Admin)
            .await?;
        self.run(move |o| o.delete_bucket(&b)).await?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let key = self.key(&req).await?;
        self.bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some("us-east-1".into()),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let key = self.key(&req).await?;
        self.bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let status = match b.versioning {
            1 => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::ENABLED,
            )),
            2 => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::SUSPENDED,
            )),
            _ => None,
        };
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            ..Default::default()
        }))
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Admin)
            .await?;
        let enabled = match req
            .input
            .versioning_configuration
            .status
            .as_ref()
            .map(|s| s.as_str())
        {
            Some(BucketVersioningStatus::ENABLED) => true,
            Some(BucketVersioningStatus::SUSPENDED) => false,
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "Status must be Enabled or Suspended"
                ));
            }
        };
        self.run(move |o| o.set_versioning(&b, enabled)).await?;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let S3Request {
            input,
            headers,
            trailing_headers,
            ..
        } = req;
        validate_key(&input.key).map_err(to_s3)?;
        let sse = customer(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )?;
        let claimed = Claimed {
            crc32: input.checksum_crc32,
            crc32c: input.checksum_crc32c,
            crc64nvme: input.checksum_crc64nvme,
            sha1: input.checksum_sha1,
            sha256: input.checksum_sha256,
            algorithm: input.checksum_algorithm.map(|a| a.as_str().to_owned()),
        };
        let tags = parse_tagging(input.tagging.as_deref())?;
        let mut attrs = attrs_of(
            input.content_type.map(|c| c.to_string()),
            input.content_encoding,
            input.content_disposition,
            input.content_language,
            input.cache_control,
            input.metadata,
            tags,
        )?;
        attrs.lock = lock_in(
            input.object_lock_mode.as_ref(),
            input.object_lock_retain_until_date.as_ref(),
            input.object_lock_legal_hold_status.as_ref(),
        )?;
        let wanted = claimed.wanted(&headers);
        let received = body::receive(
            self.objects.clone(),
            input.body,
            input.content_length,
            MAX_PUT_SIZE,
            wanted,
        )
        .await?;
        let claimed = claimed.with_trailer(trailing_headers.and_then(|t| t.take()));
        let content_md5 = input.content_md5;
        let object_key = input.key;
        let sse = sse;
        let bucket = b.clone();
        let info = self
            .run(move |o| {
                let checksums = claimed.verify(&received.checksums)?;
                let blob = received.writer.finish()?;
                if let Some(md5) = &content_md5
                    && let Err(e) = b64_md5_matches(md5, &blob.md5)
                {
                    o.discard(blob);
                    return Err(e);
                }
                o.put_sse(&bucket, &object_key, blob, attrs, checksums, sse.as_deref())
            })
            .await?;
        let c = &info.meta.checksums;
        Ok(S3Response::new(PutObjectOutput {
            sse_customer_algorithm: sse_out(&info).0,
            sse_customer_key_md5: sse_out(&info).1,
            e_tag: Some(etag(&info.record.etag)),
            version_id: version_out(&info, &b),
            checksum_crc32: c.crc32.clone(),
            checksum_crc32c: c.crc32c.clone(),
            checksum_crc64nvme: c.crc64nvme.clone(),
            checksum_sha1: c.sha1.clone(),
            checksum_sha256: c.sha256.clone(),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let input = req.input;
        let (bucket, k, v) = (b.clone(), input.key.clone(), input.version_id.clone());
        let info = self.run(move |o| o.head(&bucket, &k, v.as_deref())).await?;
        check_conditions(
            &info,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        let size = info.size();
        let range = resolve_range(input.range.as_ref(), size)?;
        let len = range.map_or(size, |r| r.len());
        let sse = customer(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )?;
        let (bucket, i) = (b.clone(), info.clone());
        let reader = self
            .run(move |o| o.reader_sse(&bucket, &i, range, sse.as_deref()))
            .await?;
        let body = body::send(reader, len).await?;
        let a = &info.meta.attrs;
        let c = &info.meta.checksums;
        let whole = range.is_none();
        Ok(S3Response::new(GetObjectOutput {
            sse_customer_algorithm: sse_out(&info).0,
            sse_customer_key_md5: sse_out(&info).1,
            body: Some(body),
            accept_ranges: Some("bytes".into()),
            content_length: Some(i64::try_from(len).unwrap_or(i64::MAX)),
            content_range: range.map(|r| format!("bytes {}-{}/{}", r.start, r.end, size)),
            content_type: input
                .response_content_type
                .or_else(|| a.content_type.clone())
                .and_then(|t| t.parse().ok()),
            content_encoding: input
                .response_content_encoding
                .or_else(|| a.content_encoding.clone()),
            content_disposition: input
                .response_content_disposition
                .or_else(|| a.content_disposition.clone()),
            content_language: input
                .response_content_language
                .or_else(|| a.content_language.clone()),
            cache_control: input
                .response_cache_control
                .or_else(|| a.cache_control.clone()),
            e_tag: Some(etag(&info.record.etag)),
            last_modified: Some(ts(info.record.created_us)),
            metadata: metadata_out(&info),
            version_id: version_out(&info, &b),
            parts_count: info.meta.parts.and_then(|p| i32::try_from(p).ok()),
            object_lock_mode: lock_out(&info).0,
            object_lock_retain_until_date: lock_out(&info).1,
            object_lock_legal_hold_status: lock_out(&info).2,
            tag_count: (!a.tags.is_empty()).then(|| i32::try_from(a.tags.len()).unwrap_or(0)),
            checksum_crc32: c.crc32.clone().filter(|_| whole),
            checksum_crc32c: c.crc32c.clone().filter(|_| whole),
            checksum_crc64nvme: c.crc64nvme.clone().filter(|_| whole),
            checksum_sha1: c.sha1.clone().filter(|_| whole),
            checksum_sha256: c.sha256.clone().filter(|_| whole),
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let input = req.input;
        let (bucket, k, v) = (b.clone(), input.key.clone(), input.version_id.clone());
        let info = self.run(move |o| o.head(&bucket, &k, v.as_deref())).await?;
        check_conditions(
            &info,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        let size = info.size();
        let range = resolve_range(input.range.as_ref(), size)?;
        let a = &info.meta.attrs;
        let c = &info.meta.checksums;
        let sse = customer(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )?;
        CustomerKey::check(&info.meta, sse.as_deref()).map_err(to_s3)?;
        Ok(S3Response::new(HeadObjectOutput {
            sse_customer_algorithm: sse_out(&info).0,
            sse_customer_key_md5: sse_out(&info).1,
            accept_ranges: Some("bytes".into()),
            content_length: Some(i64::try_from(range.map_or(size, |r| r.len())).unwrap_or(0)),
            content_range: range.map(|r| format!("bytes {}-{}/{}", r.start, r.end, size)),
            content_type: a.content_type.clone().and_then(|t| t.parse().ok()),
            content_encoding: a.content_encoding.clone(),
            content_disposition: a.content_disposition.clone(),
            content_language: a.content_language.clone(),
            cache_control: a.cache_control.clone(),
            e_tag: Some(etag(&info.record.etag)),
            last_modified: Some(ts(info.record.created_us)),
            metadata: metadata_out(&info),
            version_id: version_out(&info, &b),
            parts_count: info.meta.parts.and_then(|p| i32::try_from(p).ok()),
            object_lock_mode: lock_out(&info).0,
            object_lock_retain_until_date: lock_out(&info).1,
            object_lock_legal_hold_status: lock_out(&info).2,
            checksum_crc32: c.crc32.clone(),
            checksum_crc32c: c.crc32c.clone(),
            checksum_crc64nvme: c.crc64nvme.clone(),
            checksum_sha1: c.sha1.clone(),
            checksum_sha256: c.sha256.clone(),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let bypass = req.input.bypass_governance_retention.unwrap_or(false)
            && key.allows(&b.name, Permission::Admin);
        let (k, v) = (req.input.key, req.input.version_id);
        let bucket = b.clone();
        let d = self
            .run(move |o| o.delete_with(&bucket, &k, v.as_deref(), bypass))
            .await?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: d.delete_marker.then_some(true),
            version_id: d.version_id.filter(|_| b.versioning != 0),
            ..Default::default()
        }))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let quiet = req.input.delete.quiet.unwrap_or(false);
        let bypass = req.input.bypass_governance_retention.unwrap_or(false)
            && key.allows(&b.name, Permission::Admin);
        let items = req.input.delete.objects;
        if items.len() > 1000 {
            return Err(s3_error!(MalformedXML, "at most 1000 keys per request"));
        }
        let bucket = b.clone();
        let results = self
            .run(move |o| {
                Ok(items
                    .into_iter()
                    .map(|i| {
                        let r = o.delete_with(&bucket, &i.key, i.version_id.as_deref(), bypass);
                        (i.key, i.version_id, r)
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        let (mut deleted, mut errors) = (vec![], vec![]);
        for (k, v, r) in results {
            match r {
                Ok(d) => {
                    if !quiet {
                        deleted.push(DeletedObject {
                            key: Some(k),
                            version_id: v,
                            delete_marker: d.delete_marker.then_some(true),
                            delete_marker_version_id: d
                                .version_id
                                .filter(|_| d.delete_marker && b.versioning != 0),
                        });
                    }
                }
                Err(e) => {
                    let e = to_s3(e);
                    errors.push(Error {
                        code: Some(e.code().as_str().to_owned()),
                        message: e.message().map(str::to_owned),
                        key: Some(k),
                        version_id: v,
                    });
                }
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let key = self.key(&req).await?;
        let dest = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let input = req.input;
        validate_key(&input.key).map_err(to_s3)?;
        let (src_bucket, info) = self.source(&key, &input.copy_source).await?;
        check_conditions(
            &info,
            input.copy_source_if_match.as_ref(),
            input.copy_source_if_none_match.as_ref(),
            input.copy_source_if_modified_since.as_ref(),
            input.copy_source_if_unmodified_since.as_ref(),
        )
        .map_err(|e| {
            if *e.code() == S3ErrorCode::NotModified {
                s3_error!(PreconditionFailed)
            } else {
                e
            }
        })?;
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        if !replace
            && src_bucket.name == dest.name
            && info.record.key == input.key
            && dest.versioning == 0
        {
            return Err(s3_error!(
                InvalidRequest,
                "copying an object onto itself needs a change of metadata (x-amz-metadata-directive: REPLACE)"
            ));
        }
        let tags = match input.tagging_directive.as_ref().map(|d| d.as_str()) {
            Some(TaggingDirective::REPLACE) => parse_tagging(input.tagging.as_deref())?,
            _ => info.meta.attrs.tags.clone(),
        };
        let attrs = if replace {
            attrs_of(
                input.content_type.map(|c| c.to_string()),
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.metadata,
                tags,
            )?
        } else {
            // The copy is a new version: the source's lock does not come along.
            ObjectAttrs {
                tags,
                lock: ObjectLock::default(),
                ..info.meta.attrs.clone()
            }
        };
        let checksums = info.meta.checksums.clone();
        let src_version = info.record.version_id.clone();
        let src_sse = customer(
            input.copy_source_sse_customer_algorithm.as_ref(),
            input.copy_source_sse_customer_key.as_ref(),
            input.copy_source_sse_customer_key_md5.as_ref(),
        )?;
        let sse = customer(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )?;
        let blob = self
            .copy_data(src_bucket.clone(), info, None, src_sse)
            .await?;
        let (d, k) = (dest.clone(), input.key);
        let new = self
            .run(move |o| o.put_sse(&d, &k, blob, attrs, checksums, sse.as_deref()))
            .await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&new.record.etag)),
                last_modified: Some(ts(new.record.created_us)),
                ..Default::default()
            }),
            copy_source_version_id: (src_bucket.versioning != 0).then_some(src_version),
            version_id: version_out(&new, &dest),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let marker = match &input.continuation_token {
            Some(t) => Some(
                B64.decode(t)
                    .ok()
                    .and_then(|v| String::from_utf8(v).ok())
                    .ok_or_else(|| s3_error!(InvalidArgument, "invalid continuation token"))?,
            ),
            None => input.start_after.clone().filter(|s| !s.is_empty()),
        };
        let (p, d, bucket) = (prefix.clone(), input.delimiter.clone(), b.clone());
        let page = self
            .run(move |o| {
                o.list(
                    &bucket,
                    &p,
                    d.as_deref().filter(|d| !d.is_empty()),
                    marker.as_deref(),
                    max,
                )
            })
            .await?;
        let count = page.objects.len() + page.prefixes.len();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(b.name),
            prefix: Some(prefix),
            delimiter: input.delimiter,
            max_keys: Some(i32::try_from(max).unwrap_or(1000)),
            key_count: Some(i32::try_from(count).unwrap_or(0)),
            continuation_token: input.continuation_token,
            start_after: input.start_after,
            is_truncated: Some(page.truncated),
            next_continuation_token: page
                .next
                .filter(|_| page.truncated)
                .map(|n| B64.encode(n.as_bytes())),
            contents: Some(page.objects.iter().map(object_entry).collect()),
            common_prefixes: common_prefixes(page.prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let (p, d, m, bucket) = (
            prefix.clone(),
            input.delimiter.clone(),
            input.marker.clone().filter(|m| !m.is_empty()),
            b.clone(),
        );
        let page = self
            .run(move |o| {
                o.list(
                    &bucket,
                    &p,
                    d.as_deref().filter(|d| !d.is_empty()),
                    m.as_deref(),
                    max,
                )
            })
            .await?;
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(b.name),
            prefix: Some(prefix),
            marker: input.marker,
            delimiter: input.delimiter.clone(),
            max_keys: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(page.truncated),
            next_marker: page
                .next
                .filter(|_| page.truncated && input.delimiter.is_some()),
            contents: Some(page.objects.iter().map(object_entry).collect()),
            common_prefixes: common_prefixes(page.prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let (p, d, km, vm, bucket) = (
            prefix.clone(),
            input.delimiter.clone(),
            input.key_marker.clone().filter(|m| !m.is_empty()),
            input.version_id_marker.clone(),
            b.clone(),
        );
        let page = self
            .run(move |o| {
                o.list_versions(
                    &bucket,
                    &p,
                    d.as_deref().filter(|d| !d.is_empty()),
                    km.as_deref(),
                    vm.as_deref(),
                    max,
                )
            })
            .await?;
        let (mut versions, mut markers) = (vec![], vec![]);
        for v in &page.versions {
            let r = &v.record;
            if r.delete_marker {
                markers.push(DeleteMarkerEntry {
                    key: Some(r.key.clone()),
                    version_id: Some(r.version_id.clone()),
                    is_latest: Some(r.latest),
                    last_modified: Some(ts(r.created_us)),
                    ..Default::default()
                });
            } else {
                versions.push(ObjectVersion {
                    key: Some(r.key.clone()),
                    version_id: Some(r.version_id.clone()),
                    is_latest: Some(r.latest),
                    last_modified: Some(ts(r.created_us)),
                    e_tag: Some(etag(&r.etag)),
                    size: Some(r.size),
                    storage_class: Some(ObjectVersionStorageClass::from_static(
                        ObjectVersionStorageClass::STANDARD,
                    )),
                    ..Default::default()
                });
            }
        }
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(b.name),
            prefix: Some(prefix),
            delimiter: input.delimiter,
            key_marker: input.key_marker,
            version_id_marker: input.version_id_marker,
            max_keys: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(page.truncated),
            next_key_marker: page.next_key.filter(|_| page.truncated),
            next_version_id_marker: page.next_version.filter(|_| page.truncated),
            versions: Some(versions),
            delete_markers: (!markers.is_empty()).then_some(markers),
            common_prefixes: common_prefixes(page.prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let (k, v, bucket) = (req.input.key, req.input.version_id, b.clone());
        let info = self.run(move |o| o.head(&bucket, &k, v.as_deref())).await?;
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: tag_set(&info.meta.attrs.tags),
            version_id: version_out(&info, &b),
        }))
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let tags: Vec<(String, String)> = req
            .input
            .tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect();
        check_tags(&tags)?;
        let (k, v, bucket) = (req.input.key, req.input.version_id, b.clone());
        let info = self
            .run(move |o| o.set_tags(&bucket, &k, v.as_deref(), tags))
            .await?;
        Ok(S3Response::new(PutObjectTaggingOutput {
            version_id: version_out(&info, &b),
        }))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let (k, v, bucket) = (req.input.key, req.input.version_id, b.clone());
        let info = self
            .run(move |o| o.set_tags(&bucket, &k, v.as_deref(), vec![]))
            .await?;
        Ok(S3Response::new(DeleteObjectTaggingOutput {
            version_id: version_out(&info, &b),
        }))
    }

    async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Admin)
            .await?;
        let config = req
            .input
            .object_lock_configuration
            .ok_or_else(|| s3_error!(MalformedXML, "ObjectLockConfiguration is required"))?;
        let default = match config.rule.and_then(|r| r.default_retention) {
            None => None,
            Some(d) => {
                let mode = d
                    .mode
                    .ok_or_else(|| s3_error!(MalformedXML, "DefaultRetention needs a Mode"))?;
                let days = match (d.days, d.years) {
                    (Some(days), None) if days > 0 => days,
                    (None, Some(years)) if years > 0 => years.saturating_mul(365),
                    _ => {
                        return Err(s3_error!(
                            MalformedXML,
                            "DefaultRetention needs a positive Days or Years, not both"
                        ));
                    }
                };
                Some(DefaultRetention {
                    mode: LockMode::parse(mode.as_str()).map_err(to_s3)?,
                    days: u32::try_from(days).unwrap_or(u32::MAX),
                })
            }
        };
        self.run(move |o| o.set_lock_config(&b, default)).await?;
        Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let config = Objects::bucket_config(&b).map_err(to_s3)?;
        if !config.object_lock {
            return Err(s3_error!(ObjectLockConfigurationNotFoundError));
        }
        Ok(S3Response::new(GetObjectLockConfigurationOutput {
            object_lock_configuration: Some(ObjectLockConfiguration {
                object_lock_enabled: Some(ObjectLockEnabled::from_static(
                    ObjectLockEnabled::ENABLED,
                )),
                rule: config.default_retention.map(|d| ObjectLockRule {
                    default_retention: Some(s3s::dto::DefaultRetention {
                        days: i32::try_from(d.days).ok(),
                        mode: Some(ObjectLockRetentionMode::from_static(d.mode.as_str())),
                        years: None,
                    }),
                }),
            }),
        }))
    }

    async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let bypass = req.input.bypass_governance_retention.unwrap_or(false)
            && key.allows(&b.name, Permission::Admin);
        let retention = match req.input.retention {
            Some(ObjectLockRetention {
                mode: Some(m),
                retain_until_date: Some(t),
            }) => Some(Retention {
                mode: LockMode::parse(m.as_str()).map_err(to_s3)?,
                until_us: ts_us(&t),
            }),
            Some(ObjectLockRetention {
                mode: None,
                retain_until_date: None,
            })
            | None => None,
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "Retention needs Mode and RetainUntilDate"
                ));
            }
        };
        let (k, v) = (req.input.key, req.input.version_id);
        self.run(move |o| o.set_retention(&b, &k, v.as_deref(), retention, bypass))
            .await?;
        Ok(S3Response::new(PutObjectRetentionOutput::default()))
    }

    async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let (k, v) = (req.input.key, req.input.version_id);
        let info = self.run(move |o| o.head(&b, &k, v.as_deref())).await?;
        let r = info
            .meta
            .attrs
            .lock
            .retention
            .ok_or_else(|| s3_error!(NoSuchObjectLockConfiguration))?;
        Ok(S3Response::new(GetObjectRetentionOutput {
            retention: Some(ObjectLockRetention {
                mode: Some(ObjectLockRetentionMode::from_static(r.mode.as_str())),
                retain_until_date: Some(ts(r.until_us)),
            }),
        }))
    }

    async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let on = match req.input.legal_hold.and_then(|h| h.status) {
            Some(s) if s.as_str() == ObjectLockLegalHoldStatus::ON => true,
            Some(s) if s.as_str() == ObjectLockLegalHoldStatus::OFF => false,
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "LegalHold Status must be ON or OFF"
                ));
            }
        };
        let (k, v) = (req.input.key, req.input.version_id);
        self.run(move |o| o.set_legal_hold(&b, &k, v.as_deref(), on))
            .await?;
        Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
    }

    async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let (k, v) = (req.input.key, req.input.version_id);
        let info = self.run(move |o| o.head(&b, &k, v.as_deref())).await?;
        let status = if info.meta.attrs.lock.legal_hold {
            ObjectLockLegalHoldStatus::ON
        } else {
            ObjectLockLegalHoldStatus::OFF
        };
        Ok(S3Response::new(GetObjectLegalHoldOutput {
            legal_hold: Some(ObjectLockLegalHold {
                status: Some(ObjectLockLegalHoldStatus::from_static(status)),
            }),
        }))
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Admin)
            .await?;
        let rules = req
            .input
            .lifecycle_configuration
            .map(|c| c.rules)
            .unwrap_or_default();
        if rules.len() > 1000 {
            return Err(s3_error!(MalformedXML, "at most 1000 rules"));
        }
        let days = |d: Option<i32>, what: &str| -> S3Result<Option<u32>> {
            match d {
                None => Ok(None),
                Some(n) if n > 0 => Ok(u32::try_from(n).ok()),
                Some(_) => Err(S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    format!("{what} must be a positive number of days"),
                )),
            }
        };
        let mut out = Vec::with_capacity(rules.len());
        for r in rules {
            if r.transitions.is_some() || r.noncurrent_version_transitions.is_some() {
                return Err(s3_error!(NotImplemented, "transitions are not supported"));
            }
            let prefix = r
                .filter
                .as_ref()
                .and_then(|f| f.prefix.clone())
                .or(r.prefix)
                .unwrap_or_default();
            out.push(LifecycleRule {
                id: r.id.unwrap_or_default(),
                prefix,
                enabled: r.status.as_str() == ExpirationStatus::ENABLED,
                expiration_days: days(r.expiration.and_then(|e| e.days), "Expiration Days")?,
                noncurrent_days: days(
                    r.noncurrent_version_expiration
                        .and_then(|e| e.noncurrent_days),
                    "NoncurrentDays",
                )?,
                abort_multipart_days: days(
                    r.abort_incomplete_multipart_upload
                        .and_then(|a| a.days_after_initiation),
                    "DaysAfterInitiation",
                )?,
            });
        }
        self.run(move |o| {
            let mut config = Objects::bucket_config(&b)?;
            config.lifecycle = out;
            o.set_bucket_config(&b, &config)
        })
        .await?;
        Ok(S3Response::new(
            PutBucketLifecycleConfigurationOutput::default(),
        ))
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let config = Objects::bucket_config(&b).map_err(to_s3)?;
        if config.lifecycle.is_empty() {
            return Err(s3_error!(NoSuchLifecycleConfiguration));
        }
        let days = |d: Option<u32>| d.and_then(|d| i32::try_from(d).ok());
        let rules = config
            .lifecycle
            .into_iter()
            .map(|r| s3s::dto::LifecycleRule {
                id: (!r.id.is_empty()).then_some(r.id),
                status: ExpirationStatus::from_static(if r.enabled {
                    ExpirationStatus::ENABLED
                } else {
                    ExpirationStatus::DISABLED
                }),
                filter: Some(LifecycleRuleFilter {
                    prefix: Some(r.prefix),
                    ..Default::default()
                }),
                expiration: r.expiration_days.map(|d| LifecycleExpiration {
                    days: days(Some(d)),
                    ..Default::default()
                }),
                noncurrent_version_expiration: r.noncurrent_days.map(|d| {
                    NoncurrentVersionExpiration {
                        noncurrent_days: days(Some(d)),
                        ..Default::default()
                    }
                }),
                abort_incomplete_multipart_upload: r.abort_multipart_days.map(|d| {
                    AbortIncompleteMultipartUpload {
                        days_after_initiation: days(Some(d)),
                    }
                }),
                prefix: None,
                transitions: None,
                noncurrent_version_transitions: None,
            })
            .collect();
        Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
            rules: Some(rules),
            ..Default::default()
        }))
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Admin)
            .await?;
        self.run(move |o| {
            let mut config = Objects::bucket_config(&b)?;
            config.lifecycle.clear();
            o.set_bucket_config(&b, &config)
        })
        .await?;
        Ok(S3Response::new(DeleteBucketLifecycleOutput::default()))
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Admin)
            .await?;
        let rules = req.input.cors_configuration.cors_rules;
        if rules.is_empty() || rules.len() > 100 {
            return Err(s3_error!(MalformedXML, "1 to 100 CORS rules"));
        }
        let rules: Vec<CorsRule> = rules
            .into_iter()
            .map(|r| CorsRule {
                id: r.id.unwrap_or_default(),
                allowed_origins: r.allowed_origins,
                allowed_methods: r.allowed_methods,
                allowed_headers: r.allowed_headers.unwrap_or_default(),
                expose_headers: r.expose_headers.unwrap_or_default(),
                max_age_seconds: r.max_age_seconds.and_then(|m| u32::try_from(m).ok()),
            })
            .collect();
        self.run(move |o| {
            let mut config = Objects::bucket_config(&b)?;
            config.cors = rules;
            o.set_bucket_config(&b, &config)
        })
        .await?;
        Ok(S3Response::new(PutBucketCorsOutput::default()))
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let config = Objects::bucket_config(&b).map_err(to_s3)?;
        if config.cors.is_empty() {
            return Err(s3_error!(NoSuchCORSConfiguration));
        }
        Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(
                config
                    .cors
                    .into_iter()
                    .map(|r| CORSRule {
                        id: (!r.id.is_empty()).then_some(r.id),
                        allowed_origins: r.allowed_origins,
                        allowed_methods: r.allowed_methods,
                        allowed_headers: (!r.allowed_headers.is_empty())
                            .then_some(r.allowed_headers),
                        expose_headers: (!r.expose_headers.is_empty()).then_some(r.expose_headers),
                        max_age_seconds: r.max_age_seconds.and_then(|m| i32::try_from(m).ok()),
                    })
                    .collect(),
            ),
        }))
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Admin)
            .await?;
        self.run(move |o| {
            let mut config = Objects::bucket_config(&b)?;
            config.cors.clear();
            o.set_bucket_config(&b, &config)
        })
        .await?;
        Ok(S3Response::new(DeleteBucketCorsOutput::default()))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let input = req.input;
        let tags = parse_tagging(input.tagging.as_deref())?;
        let mut attrs = attrs_of(
            input.content_type.map(|c| c.to_string()),
            input.content_encoding,
            input.content_disposition,
            input.content_language,
            input.cache_control,
            input.metadata,
            tags,
        )?;
        attrs.lock = lock_in(
            input.object_lock_mode.as_ref(),
            input.object_lock_retain_until_date.as_ref(),
            input.object_lock_legal_hold_status.as_ref(),
        )?;
        let sse = customer(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )?;
        let (k, bucket) = (input.key.clone(), b.clone());
        let upload = self
            .run(move |o| o.create_upload_sse(&bucket, &k, attrs, sse.as_deref()))
            .await?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(b.name),
            key: Some(input.key),
            upload_id: Some(upload.upload_id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let S3Request {
            input,
            headers,
            trailing_headers,
            ..
        } = req;
        let upload = self.upload(&b, &input.key, &input.upload_id).await?;
        let sse = customer(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )?;
        let claimed = Claimed {
            crc32: input.checksum_crc32,
            crc32c: input.checksum_crc32c,
            crc64nvme: input.checksum_crc64nvme,
            sha1: input.checksum_sha1,
            sha256: input.checksum_sha256,
            algorithm: input.checksum_algorithm.map(|a| a.as_str().to_owned()),
        };
        let received = body::receive(
            self.objects.clone(),
            input.body,
            input.content_length,
            MAX_PUT_SIZE,
            claimed.wanted(&headers),
        )
        .await?;
        let claimed = claimed.with_trailer(trailing_headers.and_then(|t| t.take()));
        let (content_md5, number) = (input.content_md5, input.part_number);
        let part = self
            .run(move |o| {
                let checksums = claimed.verify(&received.checksums)?;
                let blob = received.writer.finish()?;
                if let Some(md5) = &content_md5
                    && let Err(e) = b64_md5_matches(md5, &blob.md5)
                {
                    o.discard(blob);
                    return Err(e);
                }
                let part =
                    o.put_part_sse(&b, &upload, number, blob, checksums.clone(), sse.as_deref())?;
                Ok((part, checksums))
            })
            .await?;
        let (part, c) = part;
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(etag(&part.etag)),
            checksum_crc32: c.crc32,
            checksum_crc32c: c.crc32c,
            checksum_crc64nvme: c.crc64nvme,
            checksum_sha1: c.sha1,
            checksum_sha256: c.sha256,
            ..Default::default()
        }))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let input = req.input;
        let upload = self.upload(&b, &input.key, &input.upload_id).await?;
        let (src_bucket, info) = self.source(&key, &input.copy_source).await?;
        check_conditions(
            &info,
            input.copy_source_if_match.as_ref(),
            input.copy_source_if_none_match.as_ref(),
            input.copy_source_if_modified_since.as_ref(),
            input.copy_source_if_unmodified_since.as_ref(),
        )
        .map_err(|e| {
            if *e.code() == S3ErrorCode::NotModified {
                s3_error!(PreconditionFailed)
            } else {
                e
            }
        })?;
        let range = match &input.copy_source_range {
            Some(r) => Some(parse_copy_range(r, info.size())?),
            None if info.size() == 0 => None,
            None => Some(ByteRange {
                start: 0,
                end: info.size() - 1,
            }),
        };
        let src_version = info.record.version_id.clone();
        let src_sse = customer(
            input.copy_source_sse_customer_algorithm.as_ref(),
            input.copy_source_sse_customer_key.as_ref(),
            input.copy_source_sse_customer_key_md5.as_ref(),
        )?;
        let sse = customer(
            input.sse_customer_algorithm.as_ref(),
            input.sse_customer_key.as_ref(),
            input.sse_customer_key_md5.as_ref(),
        )?;
        let blob = self
            .copy_data(src_bucket.clone(), info, range, src_sse)
            .await?;
        let number = input.part_number;
        let part = self
            .run(move |o| {
                o.put_part_sse(
                    &b,
                    &upload,
                    number,
                    blob,
                    Checksums::default(),
                    sse.as_deref(),
                )
            })
            .await?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(etag(&part.etag)),
                last_modified: Some(ts(part.created_us)),
                ..Default::default()
            }),
            copy_source_version_id: (src_bucket.versioning != 0).then_some(src_version),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let input = req.input;
        let upload = self.upload(&b, &input.key, &input.upload_id).await?;
        let parts: Vec<(i32, String)> = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                Ok((
                    p.part_number
                        .ok_or_else(|| s3_error!(MalformedXML, "a part without PartNumber"))?,
                    p.e_tag
                        .map(|e| e.value().to_owned())
                        .ok_or_else(|| s3_error!(MalformedXML, "a part without ETag"))?,
                ))
            })
            .collect::<S3Result<_>>()?;
        let bucket = b.clone();
        let info = self
            .run(move |o| o.complete_upload(&bucket, &upload, &parts))
            .await?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(b.name.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(etag(&info.record.etag)),
            location: Some(format!("/{}/{}", b.name, input.key)),
            version_id: version_out(&info, &b),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Write)
            .await?;
        let upload = self
            .upload(&b, &req.input.key, &req.input.upload_id)
            .await?;
        self.run(move |o| o.abort_upload(&upload)).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let input = req.input;
        let upload = self.upload(&b, &input.key, &input.upload_id).await?;
        let max = max_keys(input.max_parts);
        let after = input.part_number_marker.unwrap_or(0);
        let mut parts = self
            .run(move |o| o.list_parts(&upload, after, max + 1))
            .await?;
        let truncated = parts.len() > max;
        parts.truncate(max);
        let next = parts.last().map(|p| p.part_number);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(b.name),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(i32::try_from(max).unwrap_or(1000)),
            part_number_marker: input.part_number_marker,
            is_truncated: Some(truncated),
            next_part_number_marker: next.filter(|_| truncated),
            parts: Some(
                parts
                    .into_iter()
                    .map(|p| Part {
                        part_number: Some(p.part_number),
                        e_tag: Some(etag(&p.etag)),
                        size: Some(p.size),
                        last_modified: Some(ts(p.created_us)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let key = self.key(&req).await?;
        let b = self
            .bucket(&key, &req.input.bucket, Permission::Read)
            .await?;
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_uploads);
        let (p, km, um, bucket) = (
            prefix.clone(),
            input.key_marker.clone().filter(|k| !k.is_empty()),
            input.upload_id_marker.clone().unwrap_or_default(),
            b.clone(),
        );
        let mut uploads = self
            .run(move |o| {
                o.list_uploads(
                    &bucket,
                    &p,
                    km.as_deref().map(|k| (k, um.as_str())),
                    max + 1,
                )
            })
            .await?;
        let truncated = uploads.len() > max;
        uploads.truncate(max);
        let last = uploads.last().map(|u| (u.key.clone(), u.upload_id.clone()));
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(b.name),
            prefix: Some(prefix),
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(truncated),
            next_key_marker: last.as_ref().filter(|_| truncated).map(|l| l.0.clone()),
            next_upload_id_marker: last.filter(|_| truncated).map(|l| l.1),
            uploads: Some(
                uploads
                    .into_iter()
                    .map(|u| MultipartUpload {
                        key: Some(u.key),
                        upload_id: Some(u.upload_id),
                        initiated: Some(ts(u.created_us)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }
}

impl MedicusS3 {
    async fn upload(
        &self,
        bucket: &BucketRecord,
        key: &str,
        upload_id: &str,
    ) -> S3Result<UploadRecord> {
        let (b, k, u) = (bucket.clone(), key.to_owned(), upload_id.to_owned());
        self.run(move |o| o.upload(&b, &k, &u)).await
    }
}
