//! Resource bodies as stored by every backend: JSON compressed with zstd and a dictionary.
//!
//! FHIR resources are small and share most of their text (element names, profile canonicals,
//! code-system URIs), which per-resource compression cannot exploit; a dictionary trained on
//! MII-shaped resources (`data/body.zdict`, `examples/train_body_dictionary.rs`) can. Measured on
//! the real MII test data, which it was not trained on: 566 B → 367 B per body.
//! Frames record the dictionary id, so a future dictionary can be added beside this one.

use std::cell::RefCell;
use std::io::Read;

use serde_json::Value;

use crate::error::StoreError;

/// Level 3 is zstd's default: most of the size gain at a fraction of the cost of higher levels.
const LEVEL: i32 = 3;

static DICTIONARY: &[u8] = include_bytes!("../data/body.zdict");

/// A corrupt frame header must not make us allocate gigabytes.
const MAX_BODY: u64 = 1 << 30;

thread_local! {
    // Creating a zstd context (and loading the dictionary into it) costs more than compressing a
    // typical resource: reuse one per thread.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn corrupt(e: std::io::Error) -> StoreError {
    StoreError::Corrupt(format!("decompress: {e}"))
}

pub fn encode(body: &Value) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let compress_error = |e: std::io::Error| StoreError::Database(format!("compress: {e}"));
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let compressor = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(
                zstd::bulk::Compressor::with_dictionary(LEVEL, DICTIONARY)
                    .map_err(compress_error)?,
            ),
        };
        compressor.compress(&json).map_err(compress_error)
    })
}

pub fn decode(blob: &[u8]) -> Result<Value, StoreError> {
    let json = decode_raw(blob)?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}

/// The stored JSON bytes of a body, decompressed but not parsed (exports copy them as they are).
pub fn decode_raw(blob: &[u8]) -> Result<Vec<u8>, StoreError> {
    // The frame header records the content size (the bulk compressor writes it); fall back to
    // streaming when it does not.
    let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(blob) else {
        let mut out = Vec::new();
        zstd::stream::Decoder::with_dictionary(blob, DICTIONARY)
            .and_then(|mut d| d.read_to_end(&mut out))
            .map_err(corrupt)?;
        return Ok(out);
    };
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
            None => {
                slot.insert(zstd::bulk::Decompressor::with_dictionary(DICTIONARY).map_err(corrupt)?)
            }
        };
        d.decompress(blob, size).map_err(corrupt)
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

    #[test]
    fn the_dictionary_pays_off_on_fhir() {
        let v = serde_json::json!({"resourceType": "Observation", "id": "o1",
            "meta": {"profile": ["https://www.medizininformatik-initiative.de/fhir/core/modul-labor/StructureDefinition/ObservationLab"]},
            "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-01-03T07:30:00+01:00",
            "valueQuantity": {"value": 7.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}});
        let json = serde_json::to_vec(&v).unwrap();
        let plain = zstd::bulk::compress(&json, super::LEVEL).unwrap();
        let with_dictionary = super::encode(&v).unwrap();
        assert!(
            with_dictionary.len() < plain.len(),
            "{} vs {}",
            with_dictionary.len(),
            plain.len()
        );
    }
}
