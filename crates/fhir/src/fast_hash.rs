//! A small, fast, non-cryptographic hasher for the static lookup tables.
//!
//! The tables are keyed by short type and element names that come from the embedded definitions or
//! from JSON keys; SipHash's DoS resistance buys nothing here (an attacker can only cause lookups,
//! not insertions) and costs most of the lookup time. This is the FxHash mixing step used by rustc.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguishes_keys_of_shared_prefix() {
        let mut map: FastMap<&str, u32> = FastMap::default();
        map.insert("valueQuantity", 1);
        map.insert("valueQuantit", 2);
        map.insert("value", 3);
        assert_eq!(map.get("valueQuantity"), Some(&1));
        assert_eq!(map.get("valueQuantit"), Some(&2));
        assert_eq!(map.get("value"), Some(&3));
        assert_eq!(map.get("valueString"), None);
    }
}
