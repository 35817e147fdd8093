//! Engine errors as S3 errors. Messages say what was wrong with the request; internal details
//! (paths, database errors) stay in the server log.

use medicus_objects::ObjectError;
use s3s::{S3Error, S3ErrorCode, s3_error};

pub fn to_s3(e: ObjectError) -> S3Error {
    match e {
        ObjectError::NoSuchBucket => s3_error!(NoSuchBucket),
        ObjectError::BucketAlreadyExists => s3_error!(BucketAlreadyExists),
        ObjectError::BucketAlreadyOwnedByYou => s3_error!(BucketAlreadyOwnedByYou),
        ObjectError::BucketNotEmpty => s3_error!(BucketNotEmpty),
        ObjectError::InvalidBucketName(m) => {
            S3Error::with_message(S3ErrorCode::InvalidBucketName, m)
        }
        ObjectError::NoSuchKey => s3_error!(NoSuchKey),
        ObjectError::NoSuchVersion => s3_error!(NoSuchVersion),
        ObjectError::NoSuchUpload => s3_error!(NoSuchUpload),
        ObjectError::InvalidKey(m) if m.contains("1024") => S3Error::with_message(
            S3ErrorCode::KeyTooLongError,
            format!("invalid object key: {m}"),
        ),
        ObjectError::InvalidKey(m) => S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("invalid object key: {m}"),
        ),
        ObjectError::InvalidArgument(m) => S3Error::with_message(S3ErrorCode::InvalidArgument, m),
        ObjectError::InvalidRange => s3_error!(InvalidRange),
        ObjectError::InvalidPart => s3_error!(InvalidPart),
        ObjectError::InvalidPartOrder => s3_error!(InvalidPartOrder),
        ObjectError::EntityTooSmall => s3_error!(EntityTooSmall),
        ObjectError::EntityTooLarge => s3_error!(EntityTooLarge),
        ObjectError::BadDigest(m) => S3Error::with_message(S3ErrorCode::BadDigest, m),
        ObjectError::IncompleteBody => s3_error!(IncompleteBody),
        ObjectError::PreconditionFailed => s3_error!(PreconditionFailed),
        ObjectError::NotModified => s3_error!(NotModified),
        ObjectError::MethodNotAllowed => s3_error!(MethodNotAllowed),
        ObjectError::AccessDenied => s3_error!(AccessDenied),
        ObjectError::InvalidRequest(m) => S3Error::with_message(S3ErrorCode::InvalidRequest, m),
        ObjectError::InvalidBucketState(m) => {
            S3Error::with_message(S3ErrorCode::InvalidBucketState, m)
        }
        ObjectError::ObjectLocked(m) => S3Error::with_message(S3ErrorCode::AccessDenied, m),
        ObjectError::Conflict => s3_error!(OperationAborted),
        other => {
            tracing::error!(error = %other, "S3 operation failed");
            S3Error::with_message(S3ErrorCode::InternalError, "internal error")
        }
    }
}
