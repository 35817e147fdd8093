//! Password hashing with argon2id (PHC string format, parameters stored with the hash).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;

use crate::crypto::random_bytes;
use crate::error::AuthError;

/// argon2id cost. The default follows OWASP's recommendation (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
}

impl Default for PasswordCost {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            lanes: 1,
        }
    }
}

impl PasswordCost {
    /// A cheap cost for tests only (hashes stay argon2id and verifiable).
    pub const TEST: PasswordCost = PasswordCost {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    };
}

pub const MIN_PASSWORD_LEN: usize = 10;
pub const MAX_PASSWORD_LEN: usize = 1024;

pub fn check_password_policy(password: &str) -> Result<(), AuthError> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(AuthError::Invalid(format!(
            "password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AuthError::Invalid("password too long".into()));
    }
    Ok(())
}

pub fn hash_password(password: &str, cost: PasswordCost) -> Result<String, AuthError> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.lanes, None)
        .map_err(|_| AuthError::Invalid("bad argon2 parameters".into()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|_| AuthError::Crypto("salt encoding"))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AuthError::Crypto("argon2 hashing failed"))
}

/// Verifies against a stored PHC string; the comparison is constant-time (password-hash's
/// `Output` equality). Only argon2id hashes are accepted.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    if hash.algorithm.as_str() != "argon2id" || password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

/// Spends the time of one verification when there is no user, so a login's timing does not
/// tell whether a login name exists.
pub fn verify_dummy(password: &str, cost: PasswordCost) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    if let Some(hash) =
        DUMMY.get_or_init(|| hash_password("dummy password, never matches", cost).ok())
    {
        let _ = verify_password(password, hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let hash = hash_password("correct horse battery", PasswordCost::TEST).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("", &hash));
        assert!(!verify_password("x", "not a hash"));
        // Same password, different salt.
        assert_ne!(
            hash,
            hash_password("correct horse battery", PasswordCost::TEST).unwrap()
        );
    }

    #[test]
    fn default_cost_is_argon2id_owasp() {
        let hash = hash_password("correct horse battery", PasswordCost::default()).unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse battery", &hash));
    }

    #[test]
    fn policy() {
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("long enough password").is_ok());
    }
}
