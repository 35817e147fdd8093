//! SSE-C: a key the client sends with each request. It seals the object's data key on top of
//! the tenant key (encryption at rest stays on either way); the store keeps only its MD5, to
//! tell a wrong key from a missing one. Without the key the object cannot be read, not even
//! by the platform.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use md5::{Digest as _, Md5};

use crate::crypto::SecretKey;
use crate::engine::ObjectMeta;
use crate::error::ObjectError;

pub struct CustomerKey {
    pub key: SecretKey,
    /// base64 of the key's MD5, as S3 shows it.
    pub md5: String,
}

impl CustomerKey {
    /// From the base64 key of `x-amz-server-side-encryption-customer-key`, checked against the
    /// base64 MD5 the client claims.
    pub fn parse(key_b64: &str, md5_b64: Option<&str>) -> Result<CustomerKey, ObjectError> {
        let bad = |m: &str| ObjectError::InvalidArgument(m.to_owned());
        let bytes = B64
            .decode(key_b64.trim())
            .map_err(|_| bad("the SSE-C key is not base64"))?;
        let key =
            SecretKey::from_bytes(&bytes).map_err(|_| bad("the SSE-C key must be 256 bits"))?;
        let md5 = B64.encode(Md5::digest(&bytes));
        if let Some(claimed) = md5_b64
            && claimed.trim() != md5
        {
            return Err(bad("the SSE-C key MD5 does not match the key"));
        }
        Ok(CustomerKey { key, md5 })
    }

    /// Whether `customer` fits an object stored with `meta`.
    pub fn check(meta: &ObjectMeta, customer: Option<&CustomerKey>) -> Result<(), ObjectError> {
        match (&meta.sse_c, customer) {
            (None, None) => Ok(()),
            (Some(_), None) => Err(ObjectError::InvalidRequest(
                "the object is encrypted with a customer key (SSE-C): send it".into(),
            )),
            (None, Some(_)) => Err(ObjectError::InvalidRequest(
                "the object is not encrypted with a customer key".into(),
            )),
            (Some(stored), Some(c)) if *stored == c.md5 => Ok(()),
            (Some(_), Some(_)) => Err(ObjectError::AccessDenied),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_checks() {
        let raw = [7u8; 32];
        let b64 = B64.encode(raw);
        let md5 = B64.encode(Md5::digest(raw));
        let k = CustomerKey::parse(&b64, Some(&md5)).unwrap();
        assert_eq!(k.md5, md5);
        assert!(CustomerKey::parse(&b64, Some("AAAA")).is_err());
        assert!(CustomerKey::parse(&B64.encode([1u8; 16]), None).is_err());
        assert!(CustomerKey::parse("not base64!", None).is_err());
        let plain = ObjectMeta::default();
        let sealed = ObjectMeta {
            sse_c: Some(md5.clone()),
            ..ObjectMeta::default()
        };
        let other = CustomerKey::parse(&B64.encode([8u8; 32]), None).unwrap();
        assert!(CustomerKey::check(&plain, None).is_ok());
        assert!(CustomerKey::check(&sealed, Some(&k)).is_ok());
        assert!(matches!(
            CustomerKey::check(&sealed, None),
            Err(ObjectError::InvalidRequest(_))
        ));
        assert!(matches!(
            CustomerKey::check(&sealed, Some(&other)),
            Err(ObjectError::AccessDenied)
        ));
        assert!(CustomerKey::check(&plain, Some(&k)).is_err());
    }
}
