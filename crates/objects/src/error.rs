//! The errors of the object store. The S3 edge maps each to an S3 error code.

use medicus_store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ObjectError {
    #[error("the bucket does not exist")]
    NoSuchBucket,
    #[error("the bucket name is taken")]
    BucketAlreadyExists,
    #[error("you already own this bucket")]
    BucketAlreadyOwnedByYou,
    #[error("the bucket is not empty")]
    BucketNotEmpty,
    #[error("invalid bucket name: {0}")]
    InvalidBucketName(String),
    #[error("the key does not exist")]
    NoSuchKey,
    #[error("the version does not exist")]
    NoSuchVersion,
    #[error("the multipart upload does not exist")]
    NoSuchUpload,
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("the requested range is not satisfiable")]
    InvalidRange,
    #[error("a part is missing or its ETag does not match")]
    InvalidPart,
    #[error("the parts are not in ascending order")]
    InvalidPartOrder,
    #[error("a part other than the last is smaller than 5 MiB")]
    EntityTooSmall,
    #[error("the object is larger than allowed")]
    EntityTooLarge,
    #[error("the data does not match its checksum: {0}")]
    BadDigest(String),
    #[error("the body is not as long as its Content-Length")]
    IncompleteBody,
    #[error("a precondition failed")]
    PreconditionFailed,
    #[error("not modified")]
    NotModified,
    #[error("the method is not allowed on a delete marker")]
    MethodNotAllowed,
    #[error("access denied")]
    AccessDenied,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("the bucket is not in a state for this: {0}")]
    InvalidBucketState(String),
    #[error("the object is locked: {0}")]
    ObjectLocked(String),
    #[error("the object was changed concurrently; retry")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Keys that cannot be unwrapped, data that fails its authentication tag.
    #[error("encryption: {0}")]
    Crypto(String),
    #[error("corrupt object data or metadata: {0}")]
    Corrupt(String),
}

pub type Result<T, E = ObjectError> = std::result::Result<T, E>;
