//! Resource bodies on disk: JSON compressed with zstd.

use std::cell::RefCell;

use serde_json::Value;

use crate::error::StoreError;

/// Level 3 is zstd's default: most of the size gain at a fraction of the cost of higher levels.
const LEVEL: i32 = 3;

thread_local! {
    // Creating a zstd context costs more than compressing a typical resource: reuse one per thread.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

pub fn encode(body: &Value) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let compress_error = |e: std::io::Error| StoreError::Database(format!("compress: {e}"));
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressor = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::new(LEVEL).map_err(compress_error)?),
        };
        compressor.compress(&json).map_err(compress_error)
    })
}

pub fn decode(blob: &[u8]) -> Result<Value, StoreError> {
    let json = zstd::stream::decode_all(blob)
        .map_err(|e| StoreError::Corrupt(format!("decompress: {e}")))?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}

/// The stored JSON bytes of a body, decompressed but not parsed (exports copy them as they are).
pub fn decode_raw(blob: &[u8]) -> Result<Vec<u8>, StoreError> {
    thread_local! {
        static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    }
    let error = |e: std::io::Error| StoreError::Corrupt(format!("decompress: {e}"));
    // The frame header records the content size (the bulk compressor writes it); fall back to
    // streaming when it does not.
    let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(blob) else {
        return zstd::stream::decode_all(blob).map_err(error);
    };
    // A corrupt header must not make us allocate gigabytes.
    const MAX_BODY: u64 = 1 << 30;
    if size > MAX_BODY {
        return Err(StoreError::Corrupt(
            "stored body claims more than 1 GiB".into(),
        ));
    }
    let size = usize::try_from(size).map_err(|_| StoreError::Corrupt("body too large".into()))?;
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let d = match slot.as_mut() {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new().map_err(error)?),
        };
        d.decompress(blob, size).map_err(error)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let v =
            serde_json::json!({"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"});
        assert_eq!(super::decode(&super::encode(&v).unwrap()).unwrap(), v);
        assert!(super::decode(b"garbage").is_err());
        let raw = super::decode_raw(&super::encode(&v).unwrap()).unwrap();
        assert_eq!(raw, serde_json::to_vec(&v).unwrap());
        assert!(super::decode_raw(b"garbage").is_err());
    }
}
