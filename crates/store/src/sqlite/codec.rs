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

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let v =
            serde_json::json!({"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"});
        assert_eq!(super::decode(&super::encode(&v).unwrap()).unwrap(), v);
        assert!(super::decode(b"garbage").is_err());
    }
}
