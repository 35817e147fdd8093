//! Small cryptographic helpers: the server key that seals recoverable secrets (AES-256-GCM),
//! randomness, hashing and base64url.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::AuthError;

/// The server's 256-bit key for secrets that must be recoverable (TOTP seeds, signing keys).
/// Supplied by the caller (configuration, a secret file); never stored by this crate.
#[derive(Clone)]
pub struct ServerKey {
    key: [u8; 32],
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(..)")
    }
}

impl ServerKey {
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// A key from its standard or URL-safe base64 form (44/43 characters).
    pub fn from_base64(text: &str) -> Result<Self, AuthError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| AuthError::Invalid("server key is not base64".into()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| AuthError::Invalid("server key must be 32 bytes".into()))?;
        Ok(Self { key })
    }

    /// A fresh random key (for `medicus` to create one on first start, and for tests).
    pub fn generate() -> Result<Self, AuthError> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| AuthError::Crypto("no randomness"))?;
        Ok(Self { key })
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key)
    }

    fn aead(&self) -> Result<LessSafeKey, AuthError> {
        let key = UnboundKey::new(&AES_256_GCM, &self.key)
            .map_err(|_| AuthError::Crypto("bad AES key"))?;
        Ok(LessSafeKey::new(key))
    }

    /// Encrypts `plain`, bound to `context` (e.g. `totp:<user id>`) so a sealed value cannot be
    /// moved to another record. Output: random 96-bit nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<Vec<u8>, AuthError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| AuthError::Crypto("no randomness"))?;
        let mut data = plain.to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut data,
            )
            .map_err(|_| AuthError::Crypto("seal failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(AuthError::Corrupt("sealed value too short".into()));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| AuthError::Corrupt("bad nonce".into()))?;
        let mut data = rest.to_vec();
        let plain = self
            .aead()?
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| {
                AuthError::Corrupt(
                    "sealed value does not open with this server key (every node of a database needs the same --server-key-file)".into(),
                )
            })?;
        Ok(plain.to_vec())
    }
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| AuthError::Crypto("no randomness"))?;
    Ok(out)
}

/// 256 random bits, base64url: authorization codes, refresh tokens, client secrets.
pub fn random_token() -> Result<String, AuthError> {
    Ok(b64url(&random_bytes::<32>()?))
}

/// 128 random bits, base64url: ids (jti, grant families, user and client ids).
pub fn random_id() -> Result<String, AuthError> {
    Ok(b64url(&random_bytes::<16>()?))
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The storage key of a bearer secret: its SHA-256 in base64url. A database reader learns
/// nothing usable, and lookups need no constant-time comparison (the hash is not the secret).
pub fn secret_key(secret: &str) -> String {
    b64url(&sha256(secret.as_bytes()))
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Strict base64url without padding (RFC 7515 §2).
pub fn b64url_decode(text: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| AuthError::Invalid("not base64url".into()))
}

pub fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

pub fn b64_decode(text: &str) -> Result<Vec<u8>, AuthError> {
    STANDARD
        .decode(text)
        .map_err(|_| AuthError::Corrupt("not base64".into()))
}

/// Equality whose time does not depend on where the inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_context_binding() {
        let key = ServerKey::generate().unwrap();
        let sealed = key.seal("totp:u1", b"secret").unwrap();
        assert_eq!(key.open("totp:u1", &sealed).unwrap(), b"secret");
        assert!(
            key.open("totp:u2", &sealed).is_err(),
            "moved to another record"
        );
        let other = ServerKey::generate().unwrap();
        assert!(other.open("totp:u1", &sealed).is_err(), "wrong server key");
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(key.open("totp:u1", &tampered).is_err());
        assert!(key.open("totp:u1", &sealed[..10]).is_err());
    }

    #[test]
    fn server_key_base64() {
        let key = ServerKey::generate().unwrap();
        let again = ServerKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(key.key, again.key);
        assert!(ServerKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
