//! Object storage engine behind the S3 listener: buckets owned by a tenant, versioned objects,
//! multipart uploads, encryption at rest that is always on.
//!
//! - [`blob`]: data files of sealed chunks, durable before anything names them; orphan
//!   collection.
//! - [`crypto`]: AES-256-GCM per chunk (range reads decrypt only what they touch), key wrapping.
//! - [`keys`]: master key ([`keys::KeyProvider`]: file, environment, or a KMS), tenant keys,
//!   data keys; rotation re-wraps keys and never rewrites data.
//! - [`engine`]: buckets, versions, delete markers, listings, multipart, over the store's
//!   `ObjectRecords` metadata.
//! - [`cors`]: CORS rules of a bucket and their matching.
//! - [`lifecycle`]: expiration, noncurrent-version expiration, aborting stale uploads.
//! - [`lock`]: object lock (retention in GOVERNANCE or COMPLIANCE mode, legal hold).
//! - [`access`]: S3 access keys of a tenant with per-bucket permissions.
//! - [`sse`]: SSE-C, a client's key sealing the data keys on top of the tenant key.
//! - [`names`]: what bucket names, keys and ranges may be.

pub mod access;
pub mod blob;
pub mod cors;
pub mod crypto;
pub mod engine;
pub mod error;
pub mod keys;
pub mod lifecycle;
pub mod lock;
pub mod names;
pub mod sse;

pub use engine::{
    BucketConfig, Checksums, Deleted, Listing, ObjectAttrs, ObjectInfo, ObjectMeta, Objects,
    VersionListing, Versioning,
};
pub use error::ObjectError;
pub use keys::{KeyProvider, Keyring, LocalMasterKey};
