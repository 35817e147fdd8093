//! Encryption of object data: AES-256-GCM over fixed-size chunks, each sealed on its own, so a
//! range read decrypts only the chunks it touches.
//!
//! Each data file has a fresh random key, so (key, nonce) pairs never repeat: the nonce is the
//! chunk index. The additional data binds the index and whether the chunk is the last one, so
//! reordered, dropped or appended chunks and a file cut at a chunk boundary all fail to open.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::ObjectError;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// The authentication tag after each chunk.
pub const TAG: usize = 16;
/// Bytes of one full chunk on disk.
pub const SEALED_CHUNK: usize = CHUNK + TAG;

/// A 256-bit key whose bytes are wiped when dropped.
pub struct SecretKey(pub(crate) [u8; 32]);

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the wipe from being dropped as a dead store.
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

impl SecretKey {
    pub fn random() -> Result<SecretKey, ObjectError> {
        let mut k = [0u8; 32];
        random_bytes(&mut k)?;
        Ok(SecretKey(k))
    }

    pub fn from_bytes(b: &[u8]) -> Result<SecretKey, ObjectError> {
        let k: [u8; 32] = b
            .try_into()
            .map_err(|_| ObjectError::Crypto("a key must be 32 bytes".into()))?;
        Ok(SecretKey(k))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn aead(&self) -> Result<LessSafeKey, ObjectError> {
        UnboundKey::new(&AES_256_GCM, &self.0)
            .map(LessSafeKey::new)
            .map_err(|_| ObjectError::Crypto("bad key".into()))
    }
}

pub fn random_bytes(out: &mut [u8]) -> Result<(), ObjectError> {
    SystemRandom::new()
        .fill(out)
        .map_err(|_| ObjectError::Crypto("no randomness available".into()))
}

/// A random identifier: 16 bytes as 32 lower-case hex digits.
pub fn random_id() -> Result<String, ObjectError> {
    let mut b = [0u8; 16];
    random_bytes(&mut b)?;
    Ok(hex(&b))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn chunk_nonce(index: u64) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

fn chunk_aad(index: u64, last: bool) -> [u8; 9] {
    let mut a = [0u8; 9];
    a[..8].copy_from_slice(&index.to_be_bytes());
    a[8] = u8::from(last);
    a
}

/// Seals and opens the chunks of one data file.
pub struct ChunkCipher {
    key: LessSafeKey,
}

impl ChunkCipher {
    pub fn new(key: &SecretKey) -> Result<ChunkCipher, ObjectError> {
        Ok(ChunkCipher { key: key.aead()? })
    }

    /// Encrypts `buf` (at most `CHUNK` bytes) in place and appends its tag.
    pub fn seal(&self, index: u64, last: bool, buf: &mut Vec<u8>) -> Result<(), ObjectError> {
        let aad = chunk_aad(index, last);
        let tag = self
            .key
            .seal_in_place_separate_tag(chunk_nonce(index), Aad::from(aad), buf)
            .map_err(|_| ObjectError::Crypto("sealing a chunk failed".into()))?;
        buf.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Decrypts a sealed chunk in place; returns the plaintext's length.
    pub fn open(&self, index: u64, last: bool, buf: &mut [u8]) -> Result<usize, ObjectError> {
        let aad = chunk_aad(index, last);
        let plain = self
            .key
            .open_in_place(chunk_nonce(index), Aad::from(aad), buf)
            .map_err(|_| {
                ObjectError::Corrupt(format!("chunk {index} fails its authentication tag"))
            })?;
        Ok(plain.len())
    }
}

/// Number of chunks of a data file holding `size` plaintext bytes (an empty one has one empty
/// chunk, so that even it is authenticated).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK as u64).max(1)
}

/// Bytes on disk of a data file holding `size` plaintext bytes.
pub fn sealed_size(size: u64) -> u64 {
    size + chunk_count(size) * TAG as u64
}

/// Seals a small secret (a key) under `key` with a random nonce: `nonce ‖ ciphertext ‖ tag`.
/// `context` is bound as additional data, so a wrapped key moved to another record fails.
pub fn wrap(key: &SecretKey, context: &[u8], secret: &[u8]) -> Result<Vec<u8>, ObjectError> {
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let mut buf = secret.to_vec();
    let tag = key
        .aead()?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context),
            &mut buf,
        )
        .map_err(|_| ObjectError::Crypto("wrapping failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens what `wrap` sealed.
pub fn unwrap(key: &SecretKey, context: &[u8], wrapped: &[u8]) -> Result<Vec<u8>, ObjectError> {
    if wrapped.len() < NONCE_LEN + TAG {
        return Err(ObjectError::Crypto("wrapped key too short".into()));
    }
    let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| ObjectError::Crypto("bad nonce".into()))?;
    let mut buf = sealed.to_vec();
    let len = key
        .aead()?
        .open_in_place(nonce, Aad::from(context), &mut buf)
        .map_err(|_| ObjectError::Crypto("a wrapped key does not open under this key".into()))?
        .len();
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_bound_to_their_position_and_finality() {
        let key = SecretKey::random().unwrap();
        let c = ChunkCipher::new(&key).unwrap();
        let mut a = b"hello".to_vec();
        c.seal(3, false, &mut a).unwrap();
        assert_eq!(a.len(), 5 + TAG);
        let mut ok = a.clone();
        assert_eq!(c.open(3, false, &mut ok).unwrap(), 5);
        assert_eq!(&ok[..5], b"hello");
        // Wrong index (reordered) or claimed last (truncated after it) fails.
        assert!(c.open(4, false, &mut a.clone()).is_err());
        assert!(c.open(3, true, &mut a.clone()).is_err());
        let mut flipped = a.clone();
        flipped[0] ^= 1;
        assert!(c.open(3, false, &mut flipped).is_err());
        // Another key fails.
        let other = ChunkCipher::new(&SecretKey::random().unwrap()).unwrap();
        assert!(other.open(3, false, &mut a).is_err());
    }

    #[test]
    fn wrapped_keys_open_only_with_their_key_and_context() {
        let kek = SecretKey::random().unwrap();
        let w = wrap(&kek, b"ctx", b"secret").unwrap();
        assert_eq!(unwrap(&kek, b"ctx", &w).unwrap(), b"secret");
        assert!(unwrap(&kek, b"other", &w).is_err());
        assert!(unwrap(&SecretKey::random().unwrap(), b"ctx", &w).is_err());
        assert!(unwrap(&kek, b"ctx", &w[..10]).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(chunk_count(0), 1);
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(CHUNK as u64), 1);
        assert_eq!(chunk_count(CHUNK as u64 + 1), 2);
        assert_eq!(sealed_size(0), TAG as u64);
        assert_eq!(
            sealed_size(CHUNK as u64 + 1),
            CHUNK as u64 + 1 + 2 * TAG as u64
        );
    }
}
