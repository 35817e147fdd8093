//! JWS compact serialisation (RFC 7515) and JWK (RFC 7517), limited to what medicus needs:
//! RS256 for its own tokens; RS384 / ES384 (and RS256 / ES256) for client assertions.
//! `alg=none`, HMAC algorithms and anything else are refused at parsing.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use serde::{Deserialize, Serialize};

use crate::crypto::{b64url, b64url_decode};
use crate::error::AuthError;

/// Longest compact JWS accepted; real tokens are around 1 KiB.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    RS384,
    ES256,
    ES384,
}

impl Alg {
    pub fn parse(text: &str) -> Option<Alg> {
        match text {
            "RS256" => Some(Alg::RS256),
            "RS384" => Some(Alg::RS384),
            "ES256" => Some(Alg::ES256),
            "ES384" => Some(Alg::ES384),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// A public JSON Web Key (RSA or EC). Private members are never serialised by medicus.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// A JWKS document (`{"keys": [...]}`); every key must be a usable public key.
    pub fn from_json(text: &str) -> Result<Jwks, AuthError> {
        let jwks: Jwks =
            serde_json::from_str(text).map_err(|e| AuthError::Invalid(format!("JWKS: {e}")))?;
        for key in &jwks.keys {
            PublicKey::from_jwk(key)?;
        }
        Ok(jwks)
    }
}

/// A compact JWS split and decoded, signature not yet checked.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub header: Header,
    pub alg: Alg,
    pub signing_input: &'a str,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

fn bad(reason: &'static str) -> AuthError {
    AuthError::InvalidToken(reason)
}

pub fn parse(token: &str) -> Result<Parsed<'_>, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(bad("token too long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a compact JWS"));
    };
    let header_bytes = b64url_decode(h).map_err(|_| bad("header is not base64url"))?;
    let header: Header =
        serde_json::from_slice(&header_bytes).map_err(|_| bad("header is not JSON"))?;
    // Refuse `none` and every algorithm we do not implement before looking further.
    let alg = Alg::parse(&header.alg).ok_or(bad("algorithm not accepted"))?;
    let payload = b64url_decode(p).map_err(|_| bad("payload is not base64url"))?;
    let signature = b64url_decode(s).map_err(|_| bad("signature is not base64url"))?;
    if signature.is_empty() {
        return Err(bad("empty signature"));
    }
    Ok(Parsed {
        header,
        alg,
        signing_input: &token[..h.len() + 1 + p.len()],
        payload,
        signature,
    })
}

/// A public key able to verify signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed SEC1 points (0x04 ‖ x ‖ y).
    P256(Vec<u8>),
    P384(Vec<u8>),
}

fn member(jwk: &Jwk, value: &Option<String>, name: &'static str) -> Result<Vec<u8>, AuthError> {
    let _ = jwk;
    let text = value
        .as_deref()
        .ok_or(AuthError::Invalid(format!("JWK without '{name}'")))?;
    b64url_decode(text).map_err(|_| AuthError::Invalid(format!("JWK '{name}' is not base64url")))
}

impl PublicKey {
    pub fn from_jwk(jwk: &Jwk) -> Result<PublicKey, AuthError> {
        match jwk.kty.as_str() {
            "RSA" => {
                let n = member(jwk, &jwk.n, "n")?;
                let e = member(jwk, &jwk.e, "e")?;
                if n.len() < 256 {
                    return Err(AuthError::Invalid(
                        "RSA keys need at least 2048 bits".into(),
                    ));
                }
                Ok(PublicKey::Rsa { n, e })
            }
            "EC" => {
                let x = member(jwk, &jwk.x, "x")?;
                let y = member(jwk, &jwk.y, "y")?;
                let len = match jwk.crv.as_deref() {
                    Some("P-256") => 32,
                    Some("P-384") => 48,
                    _ => return Err(AuthError::Invalid("unsupported EC curve".into())),
                };
                if x.len() != len || y.len() != len {
                    return Err(AuthError::Invalid(
                        "EC coordinates of the wrong length".into(),
                    ));
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Ok(if len == 32 {
                    PublicKey::P256(point)
                } else {
                    PublicKey::P384(point)
                })
            }
            _ => Err(AuthError::Invalid("unsupported key type".into())),
        }
    }

    /// Checks `signature` over `message`; the algorithm must fit the key type.
    pub fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> Result<(), AuthError> {
        let ok = match (self, alg) {
            (PublicKey::Rsa { n, e }, Alg::RS256 | Alg::RS384) => {
                let params = if alg == Alg::RS256 {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PKCS1_2048_8192_SHA384
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            (PublicKey::P256(point), Alg::ES256) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            (PublicKey::P384(point), Alg::ES384) => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            _ => return Err(bad("algorithm does not fit the key")),
        };
        if ok {
            Ok(())
        } else {
            Err(bad("bad signature"))
        }
    }
}

/// A generated RSA key: the key, its PKCS#8 DER, modulus and public exponent (big-endian).
pub type GeneratedRsa = (SigningKey, Vec<u8>, Vec<u8>, Vec<u8>);

enum Inner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key that signs compact JWS.
pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    inner: Inner,
    public: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

impl SigningKey {
    /// An RSA key from PKCS#8 DER, with its public components.
    pub fn rsa(
        kid: &str,
        alg: Alg,
        pkcs8: &[u8],
        n: &[u8],
        e: &[u8],
    ) -> Result<SigningKey, AuthError> {
        if !matches!(alg, Alg::RS256 | Alg::RS384) {
            return Err(AuthError::Invalid("not an RSA algorithm".into()));
        }
        let pair = RsaKeyPair::from_pkcs8(pkcs8)
            .map_err(|_| AuthError::Corrupt("RSA key rejected".into()))?;
        Ok(SigningKey {
            kid: kid.to_owned(),
            alg,
            inner: Inner::Rsa(pair),
            public: Jwk {
                kty: "RSA".into(),
                kid: Some(kid.to_owned()),
                alg: Some(alg.as_str().into()),
                use_: Some("sig".into()),
                n: Some(b64url(n)),
                e: Some(b64url(e)),
                ..Jwk::default()
            },
        })
    }

    /// A fresh 2048-bit RSA key: (key, PKCS#8 DER, n, e). Generation uses the `rsa` crate
    /// (ring cannot generate RSA keys); signing uses ring.
    pub fn generate_rsa(kid: &str, alg: Alg) -> Result<GeneratedRsa, AuthError> {
        use rsa::pkcs8::EncodePrivateKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
            .map_err(|_| AuthError::Crypto("RSA key generation failed"))?;
        let der = key
            .to_pkcs8_der()
            .map_err(|_| AuthError::Crypto("PKCS#8 encoding failed"))?;
        let n = key.n().to_bytes_be();
        let e = key.e().to_bytes_be();
        let pkcs8 = der.as_bytes().to_vec();
        Ok((SigningKey::rsa(kid, alg, &pkcs8, &n, &e)?, pkcs8, n, e))
    }

    /// An EC key from PKCS#8 DER (ES256 or ES384).
    pub fn ec(kid: &str, alg: Alg, pkcs8: &[u8]) -> Result<SigningKey, AuthError> {
        let (ring_alg, crv, len) = match alg {
            Alg::ES256 => (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
            Alg::ES384 => (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
            _ => return Err(AuthError::Invalid("not an EC algorithm".into())),
        };
        let pair = EcdsaKeyPair::from_pkcs8(ring_alg, pkcs8, &SystemRandom::new())
            .map_err(|_| AuthError::Corrupt("EC key rejected".into()))?;
        let point = pair.public_key().as_ref();
        let (x, y) = (&point[1..1 + len], &point[1 + len..]);
        let public = Jwk {
            kty: "EC".into(),
            kid: Some(kid.to_owned()),
            alg: Some(alg.as_str().into()),
            use_: Some("sig".into()),
            crv: Some(crv.into()),
            x: Some(b64url(x)),
            y: Some(b64url(y)),
            ..Jwk::default()
        };
        Ok(SigningKey {
            kid: kid.to_owned(),
            alg,
            inner: Inner::Ec(pair),
            public,
        })
    }

    /// A fresh EC key and its PKCS#8 DER.
    pub fn generate_ec(kid: &str, alg: Alg) -> Result<(SigningKey, Vec<u8>), AuthError> {
        let ring_alg = match alg {
            Alg::ES256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Alg::ES384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            _ => return Err(AuthError::Invalid("not an EC algorithm".into())),
        };
        let doc = EcdsaKeyPair::generate_pkcs8(ring_alg, &SystemRandom::new())
            .map_err(|_| AuthError::Crypto("EC key generation failed"))?;
        let pkcs8 = doc.as_ref().to_vec();
        Ok((SigningKey::ec(kid, alg, &pkcs8)?, pkcs8))
    }

    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, AuthError> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Rsa(pair) => {
                let params = if self.alg == Alg::RS256 {
                    &signature::RSA_PKCS1_SHA256
                } else {
                    &signature::RSA_PKCS1_SHA384
                };
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(params, &rng, message, &mut sig)
                    .map_err(|_| AuthError::Crypto("RSA signing failed"))?;
                Ok(sig)
            }
            Inner::Ec(pair) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| AuthError::Crypto("ECDSA signing failed")),
        }
    }

    /// A compact JWS of `claims` with this key's `alg` and `kid`.
    pub fn sign<T: Serialize>(&self, typ: Option<&str>, claims: &T) -> Result<String, AuthError> {
        let header = Header {
            alg: self.alg.as_str().into(),
            kid: Some(self.kid.clone()),
            typ: typ.map(Into::into),
        };
        let header =
            serde_json::to_vec(&header).map_err(|_| AuthError::Crypto("header encoding"))?;
        let payload =
            serde_json::to_vec(claims).map_err(|_| AuthError::Crypto("claims encoding"))?;
        let mut out = b64url(&header);
        out.push('.');
        out.push_str(&b64url(&payload));
        let sig = self.sign_bytes(out.as_bytes())?;
        out.push('.');
        out.push_str(&b64url(&sig));
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::OnceLock;

    /// One RSA key per test binary: generation takes a while in debug builds.
    pub(crate) fn rsa_pkcs8() -> &'static (Vec<u8>, Vec<u8>, Vec<u8>) {
        static KEY: OnceLock<(Vec<u8>, Vec<u8>, Vec<u8>)> = OnceLock::new();
        KEY.get_or_init(|| {
            let (_, der, n, e) = SigningKey::generate_rsa("k", Alg::RS256).unwrap();
            (der, n, e)
        })
    }

    pub(crate) fn rsa_key(kid: &str, alg: Alg) -> SigningKey {
        let (der, n, e) = rsa_pkcs8();
        SigningKey::rsa(kid, alg, der, n, e).unwrap()
    }

    fn verify(token: &str, jwk: &Jwk) -> Result<Vec<u8>, AuthError> {
        let parsed = parse(token)?;
        PublicKey::from_jwk(jwk)?.verify(
            parsed.alg,
            parsed.signing_input.as_bytes(),
            &parsed.signature,
        )?;
        Ok(parsed.payload)
    }

    #[test]
    fn sign_and_verify_each_algorithm() {
        let claims = serde_json::json!({"sub": "x"});
        let mut keys = vec![rsa_key("r256", Alg::RS256), rsa_key("r384", Alg::RS384)];
        keys.push(SigningKey::generate_ec("e256", Alg::ES256).unwrap().0);
        keys.push(SigningKey::generate_ec("e384", Alg::ES384).unwrap().0);
        for key in &keys {
            let token = key.sign(Some("JWT"), &claims).unwrap();
            let jwk = key.public_jwk().clone();
            let json: serde_json::Value = serde_json::to_value(&jwk).unwrap();
            assert!(json.get("d").is_none());
            assert_eq!(verify(&token, &jwk).unwrap(), br#"{"sub":"x"}"#);
            // Any flipped payload byte breaks it.
            let mut parts: Vec<String> = token.split('.').map(Into::into).collect();
            parts[1] = b64url(br#"{"sub":"y"}"#);
            assert!(verify(&parts.join("."), &jwk).is_err(), "{:?}", key.alg);
        }
        // A token verified with another key fails; an ES384 signature under an RSA key fails.
        let other = SigningKey::generate_ec("e384b", Alg::ES384).unwrap().0;
        let token = keys[3].sign(None, &claims).unwrap();
        assert!(verify(&token, other.public_jwk()).is_err());
        assert!(verify(&token, keys[0].public_jwk()).is_err());
    }

    #[test]
    fn refuses_none_and_malformed() {
        let none = format!("{}.{}.", b64url(br#"{"alg":"none"}"#), b64url(b"{}"));
        assert!(parse(&none).is_err());
        let none_sig = format!(
            "{}.{}.{}",
            b64url(br#"{"alg":"none"}"#),
            b64url(b"{}"),
            b64url(b"x")
        );
        assert!(parse(&none_sig).is_err());
        let hs = format!(
            "{}.{}.{}",
            b64url(br#"{"alg":"HS256"}"#),
            b64url(b"{}"),
            b64url(b"x")
        );
        assert!(parse(&hs).is_err());
        for bad in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "!!.b.c",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(parse(bad).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "[A-Za-z0-9_.=-]{0,200}") {
            let _ = parse(&text);
        }
    }
}
