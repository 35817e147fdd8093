//! Per-project pseudonyms and the trust centre's sealed pseudonym → identity mapping.
//!
//! Design (see docs/research.md):
//! - A patient's pseudonym in a project is `psn-` + 24 base32 characters of
//!   HMAC-SHA256(project pseudonym key, tenant ‖ patient id), 120 bits: deterministic, so the
//!   same permit and data give the same extraction, and without per-patient state; unlinkable
//!   across projects because every project has an independent key.
//! - An HMAC cannot be inverted, and the trust centre must be able to de-pseudonymise. So
//!   pseudonymising records `(tenant, id)` sealed with AES-256-GCM under the project's seal key
//!   (bound to project and pseudonym) in the platform records (namespace
//!   [`NS_MAPPING`]). Re-identification needs both that record and the key file: a database dump
//!   holds only ciphertext, and the key alone re-identifies nobody.
//! - Deleting a project's mapping records (or its key) makes its pseudonyms permanently
//!   anonymous.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use medicus_store::StoreError;
use medicus_store::platform::{DocExpect, PlatformRecords};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::{ResearchError, Result};
use crate::keys::ProjectKeys;

/// Platform-record namespace of the sealed mapping, keyed `{project}/{pseudonym}`.
pub const NS_MAPPING: &str = "research-tc-mapping";

/// The prefix of every patient pseudonym.
pub const PSEUDONYM_PREFIX: &str = "psn-";

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Lowercase RFC 4648 base32 without padding (valid in FHIR ids and URLs).
pub(crate) fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut buf: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A random id (128 bits, base32): for records that need one.
pub(crate) fn random_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ResearchError::Crypto("no randomness"))?;
    Ok(base32(&bytes))
}

/// An identity a pseudonym stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub tenant: String,
    pub patient_id: String,
}

impl ProjectKeys {
    /// The patient's pseudonym in this project.
    pub fn patient_pseudonym(&self, tenant: &str, patient_id: &str) -> String {
        let mac = Self::mac(&self.pseudonym, &[tenant, patient_id]);
        format!("{PSEUDONYM_PREFIX}{}", base32(&mac[..15]))
    }

    /// A token replacing another identifier or a resource id in this project (FTSnext: a
    /// keyed hash), `kind` separating the uses (e.g. a resource type or an identifier system).
    pub fn token(&self, kind: &str, value: &str) -> String {
        let mac = Self::mac(&self.token, &[kind, value]);
        base32(&mac[..15])
    }

    /// The patient's date offset in days, in `-max_days..=max_days` without 0 (a zero shift
    /// would publish the true dates of some patients); 0 only when `max_days` is 0.
    pub fn date_offset(&self, tenant: &str, patient_id: &str, max_days: u32) -> i32 {
        if max_days == 0 {
            return 0;
        }
        let mac = Self::mac(&self.date_shift, &[tenant, patient_id]);
        let n = u64::from_be_bytes([
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7],
        ]);
        let span = 2 * u64::from(max_days);
        // 2^64 mod span is negligible bias for spans of days.
        let pick = i64::try_from(n % span).unwrap_or(0);
        let max = i64::from(max_days);
        let offset = if pick < max {
            pick - max
        } else {
            pick - max + 1
        };
        i32::try_from(offset).unwrap_or(0)
    }

    fn aead(&self) -> Result<LessSafeKey> {
        UnboundKey::new(&AES_256_GCM, &self.seal)
            .map(LessSafeKey::new)
            .map_err(|_| ResearchError::Crypto("seal key"))
    }

    fn aad(&self, pseudonym: &str) -> String {
        format!("medicus-research/v1/mapping\0{}\0{pseudonym}", self.project)
    }

    /// The identity sealed for the mapping record of `pseudonym`.
    pub fn seal_identity(&self, pseudonym: &str, identity: &Identity) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ResearchError::Crypto("no randomness"))?;
        let mut data =
            serde_json::to_vec(identity).map_err(|_| ResearchError::Crypto("encode identity"))?;
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.aad(pseudonym).as_bytes()),
                &mut data,
            )
            .map_err(|_| ResearchError::Crypto("seal failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// Opens a sealed identity; fails for another project, another pseudonym or tampering.
    pub fn open_identity(&self, pseudonym: &str, sealed: &[u8]) -> Result<Identity> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(ResearchError::Corrupt("sealed identity too short".into()));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| ResearchError::Crypto("nonce"))?;
        let mut data = rest.to_vec();
        let plain = self
            .aead()?
            .open_in_place(nonce, Aad::from(self.aad(pseudonym).as_bytes()), &mut data)
            .map_err(|_| {
                ResearchError::Crypto("sealed identity does not open with this project's key")
            })?;
        serde_json::from_slice(plain).map_err(|_| ResearchError::Corrupt("sealed identity".into()))
    }
}

#[derive(Serialize, Deserialize)]
struct MappingDoc {
    sealed: String,
}

fn mapping_key(project: &str, pseudonym: &str) -> String {
    format!("{project}/{pseudonym}")
}

/// Pseudonymises a patient for the project and records the sealed mapping (idempotent).
pub fn pseudonymize(
    records: &dyn PlatformRecords,
    keys: &ProjectKeys,
    identity: &Identity,
) -> Result<String> {
    let pseudonym = keys.patient_pseudonym(&identity.tenant, &identity.patient_id);
    let key = mapping_key(keys.project(), &pseudonym);
    if let Some(doc) = records.doc_get(NS_MAPPING, &key)? {
        return check_existing(keys, &pseudonym, &doc.value, identity).map(|()| pseudonym);
    }
    let doc = MappingDoc {
        sealed: STANDARD.encode(keys.seal_identity(&pseudonym, identity)?),
    };
    let bytes = serde_json::to_vec(&doc).map_err(|_| ResearchError::Crypto("encode mapping"))?;
    match records.doc_put(NS_MAPPING, &key, &bytes, None, DocExpect::Absent) {
        Ok(_) => Ok(pseudonym),
        // A concurrent pseudonymisation of the same patient wrote it first.
        Err(StoreError::DocConflict { .. }) => match records.doc_get(NS_MAPPING, &key)? {
            Some(doc) => check_existing(keys, &pseudonym, &doc.value, identity).map(|()| pseudonym),
            None => Err(ResearchError::Conflict(
                "pseudonym mapping changed concurrently".into(),
            )),
        },
        Err(e) => Err(e.into()),
    }
}

fn check_existing(
    keys: &ProjectKeys,
    pseudonym: &str,
    value: &[u8],
    identity: &Identity,
) -> Result<()> {
    let existing = open_doc(keys, pseudonym, value)?;
    if &existing == identity {
        Ok(())
    } else {
        // 120-bit collision: practically impossible, but never merge two people.
        Err(ResearchError::Conflict("pseudonym collision".into()))
    }
}

fn open_doc(keys: &ProjectKeys, pseudonym: &str, value: &[u8]) -> Result<Identity> {
    let doc: MappingDoc = serde_json::from_slice(value)
        .map_err(|_| ResearchError::Corrupt("mapping record".into()))?;
    let sealed = STANDARD
        .decode(doc.sealed)
        .map_err(|_| ResearchError::Corrupt("mapping record".into()))?;
    keys.open_identity(pseudonym, &sealed)
}

/// The identity behind a pseudonym. Crate-private: the only way in is an executed four-eyes
/// request ([`crate::depseudo::de_pseudonymize`]).
pub(crate) fn resolve(
    records: &dyn PlatformRecords,
    keys: &ProjectKeys,
    pseudonym: &str,
) -> Result<Option<Identity>> {
    match records.doc_get(NS_MAPPING, &mapping_key(keys.project(), pseudonym))? {
        Some(doc) => open_doc(keys, pseudonym, &doc.value).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::TrustCentreKey;

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "my");
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn pseudonyms_are_stable_per_project_and_unlinkable_across() {
        let tc = TrustCentreKey::from_bytes(&[1; 32]);
        let (a, b) = (tc.project("proj-a"), tc.project("proj-b"));
        let pa = a.patient_pseudonym("t", "patient-1");
        assert_eq!(pa, tc.project("proj-a").patient_pseudonym("t", "patient-1"));
        assert_eq!(pa.len(), PSEUDONYM_PREFIX.len() + 24);
        assert!(!pa.contains("patient"));
        assert_ne!(pa, b.patient_pseudonym("t", "patient-1"));
        assert_ne!(pa, a.patient_pseudonym("t", "patient-2"));
        assert_ne!(pa, a.patient_pseudonym("t2", "patient-1"));
        assert_ne!(a.token("Encounter", "e1"), b.token("Encounter", "e1"));
    }

    #[test]
    fn date_offsets_are_bounded_nonzero_and_spread() {
        let keys = TrustCentreKey::from_bytes(&[2; 32]).project("p");
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..2000 {
            let o = keys.date_offset("t", &format!("p{i}"), 14);
            assert!((-14..=14).contains(&o) && o != 0, "{o}");
            seen.insert(o);
        }
        assert_eq!(seen.len(), 28);
        assert_eq!(
            keys.date_offset("t", "p1", 14),
            keys.date_offset("t", "p1", 14)
        );
        assert_eq!(keys.date_offset("t", "p1", 0), 0);
    }

    #[test]
    fn sealed_identity_is_bound_to_project_and_pseudonym() {
        let tc = TrustCentreKey::from_bytes(&[3; 32]);
        let keys = tc.project("p");
        let id = Identity {
            tenant: "t".into(),
            patient_id: "123".into(),
        };
        let sealed = keys
            .seal_identity("psn-x", &id)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys.open_identity("psn-x", &sealed).ok(), Some(id));
        assert!(keys.open_identity("psn-y", &sealed).is_err());
        assert!(tc.project("q").open_identity("psn-x", &sealed).is_err());
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(keys.open_identity("psn-x", &bad).is_err());
    }
}
