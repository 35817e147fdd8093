//! The trust centre's master key and the per-project keys derived from it.
//!
//! The master key is 32 random bytes in a key file of its own (base64 on one line), readable
//! only by the medicus process of the trust centre: it is never stored in the database, so no
//! database dump, tenant-admin or researcher can read it, and nothing here logs it
//! (`Debug` prints a placeholder). Per project and purpose a subkey is derived with
//! HMAC-SHA256(master, "medicus-research/v1" ‖ purpose ‖ project); projects' keys are
//! independent pseudo-random functions, which is what makes their pseudonyms unlinkable.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{ResearchError, Result};

/// What a derived key is for; one project never uses a key for two purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Patient pseudonyms.
    Pseudonym,
    /// Sealing the pseudonym → identity mapping (AES-256-GCM).
    Seal,
    /// Per-patient date offsets.
    DateShift,
    /// Tokens for other identifiers and resource ids.
    Token,
}

impl KeyPurpose {
    fn label(self) -> &'static str {
        match self {
            KeyPurpose::Pseudonym => "pseudonym",
            KeyPurpose::Seal => "seal",
            KeyPurpose::DateShift => "date-shift",
            KeyPurpose::Token => "token",
        }
    }
}

/// The trust centre's master key.
pub struct TrustCentreKey {
    key: hmac::Key,
}

impl std::fmt::Debug for TrustCentreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrustCentreKey(<secret>)")
    }
}

impl TrustCentreKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> TrustCentreKey {
        TrustCentreKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// Reads the key file. On Unix the file must not be readable by group or others.
    pub fn load(path: &Path) -> Result<TrustCentreKey> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path)
                .map_err(|e| ResearchError::Key(format!("{}: {e}", path.display())))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(ResearchError::Key(format!(
                    "{} is readable by others; chmod 600 it",
                    path.display()
                )));
            }
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| ResearchError::Key(format!("{}: {e}", path.display())))?;
        let mut bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| ResearchError::Key(format!("{} is not base64", path.display())))?;
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            ResearchError::Key(format!("{} does not hold 32 bytes", path.display()))
        })?;
        let out = TrustCentreKey::from_bytes(&key);
        bytes.fill(0);
        Ok(out)
    }

    /// Creates a new key file (never overwrites one) with mode 600, and returns the key.
    pub fn generate(path: &Path) -> Result<TrustCentreKey> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| ResearchError::Crypto("no randomness"))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(|e| ResearchError::Key(format!("{}: {e}", path.display())))?;
        file.write_all(format!("{}\n", STANDARD.encode(bytes)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| ResearchError::Key(format!("{}: {e}", path.display())))?;
        let out = TrustCentreKey::from_bytes(&bytes);
        bytes.fill(0);
        Ok(out)
    }

    /// The 32-byte subkey for `purpose` in `project`.
    pub(crate) fn derive(&self, purpose: KeyPurpose, project: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"medicus-research/v1\0");
        ctx.update(purpose.label().as_bytes());
        ctx.update(b"\0");
        ctx.update(project.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The keys of one project.
    pub fn project(&self, project: &str) -> ProjectKeys {
        let mut seal = self.derive(KeyPurpose::Seal, project);
        let keys = ProjectKeys {
            project: project.to_string(),
            pseudonym: hmac::Key::new(
                hmac::HMAC_SHA256,
                &self.derive(KeyPurpose::Pseudonym, project),
            ),
            date_shift: hmac::Key::new(
                hmac::HMAC_SHA256,
                &self.derive(KeyPurpose::DateShift, project),
            ),
            token: hmac::Key::new(hmac::HMAC_SHA256, &self.derive(KeyPurpose::Token, project)),
            seal,
        };
        seal.fill(0);
        keys
    }
}

/// One project's keys. Held by the trust-centre component only (extraction runs there).
pub struct ProjectKeys {
    pub(crate) project: String,
    pub(crate) pseudonym: hmac::Key,
    pub(crate) date_shift: hmac::Key,
    pub(crate) token: hmac::Key,
    pub(crate) seal: [u8; 32],
}

impl Drop for ProjectKeys {
    fn drop(&mut self) {
        self.seal.fill(0);
    }
}

impl std::fmt::Debug for ProjectKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProjectKeys({}, <secret>)", self.project)
    }
}

impl ProjectKeys {
    pub fn project(&self) -> &str {
        &self.project
    }

    /// HMAC of length-prefixed parts (no two part lists give the same input).
    pub(crate) fn mac(key: &hmac::Key, parts: &[&str]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(key);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip_refuses_overwrite_and_loose_permissions() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("tc.key");
        let a = TrustCentreKey::generate(&path).unwrap_or_else(|e| panic!("{e}"));
        let b = TrustCentreKey::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a.derive(KeyPurpose::Pseudonym, "p1"),
            b.derive(KeyPurpose::Pseudonym, "p1")
        );
        assert!(
            TrustCentreKey::generate(&path).is_err(),
            "never overwrites a key"
        );
        assert_eq!(format!("{a:?}"), "TrustCentreKey(<secret>)");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(TrustCentreKey::load(&path).is_err());
        }
    }

    #[test]
    fn subkeys_differ_per_project_and_purpose() {
        let k = TrustCentreKey::from_bytes(&[7; 32]);
        assert_ne!(
            k.derive(KeyPurpose::Pseudonym, "p1"),
            k.derive(KeyPurpose::Pseudonym, "p2")
        );
        assert_ne!(
            k.derive(KeyPurpose::Pseudonym, "p1"),
            k.derive(KeyPurpose::Token, "p1")
        );
        assert_ne!(
            k.derive(KeyPurpose::Seal, "p1"),
            TrustCentreKey::from_bytes(&[8; 32]).derive(KeyPurpose::Seal, "p1")
        );
    }
}
