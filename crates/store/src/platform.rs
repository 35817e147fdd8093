//! Records the platform keeps beside clinical data, on the same backend and in the same
//! database: small versioned documents (identities, OAuth clients, signing keys, grants such as
//! authorization codes and refresh tokens) and the append-only audit trail.
//!
//! Both are deliberately schema-less for the store: the `auth` and `audit` crates own the
//! meaning of the bytes. The store guarantees what only a database can: compare-and-set on a
//! document, single-use take, expiry, and a per-chain append that sees the chain's head under a
//! lock, so several medicus processes on one PostgreSQL database extend one linear chain.

use crate::error::StoreError;

/// One stored document of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub key: String,
    /// 1 for a new document, +1 on every write; the compare-and-set token.
    pub version: i64,
    pub value: Vec<u8>,
    /// Microseconds since the Unix epoch after which the document reads as absent.
    pub expires_us: Option<i64>,
}

/// The condition a document write or delete requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocExpect {
    /// Unconditional.
    Any,
    /// Only if no (unexpired) document has the key: create-only.
    Absent,
    /// Only if the current document has exactly this version.
    Version(i64),
}

/// The head of an audit chain: the last appended entry's position and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLink {
    pub seq: i64,
    pub hash: Vec<u8>,
}

/// One audit trail entry as stored. `seq` starts at 1 and has no gaps within a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    /// When the audited event happened, microseconds since the Unix epoch.
    pub at_us: i64,
    /// The chain hash of this entry (computed by the `audit` crate over the previous hash and
    /// this entry); the store keeps it, it never computes it.
    pub hash: Vec<u8>,
    /// References the event concerns (e.g. `Patient/123`), for a patient's access log.
    pub subjects: Vec<String>,
    /// The encoded event (owned by the `audit` crate).
    pub record: Vec<u8>,
}

/// Which entries of one chain to read. Results are in `seq` order (descending when
/// `newest_first`), at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries with `seq > after_seq` (ascending) or `seq < before_seq` (descending).
    pub after_seq: Option<i64>,
    pub before_seq: Option<i64>,
    /// Only entries with `from_us <= at_us < to_us`.
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    /// Only entries whose `subjects` contain this reference.
    pub subject: Option<String>,
    pub newest_first: bool,
    pub limit: usize,
}

/// Builds the entries to append from the chain's current head (`None` for an empty chain).
/// Called inside the append's transaction, with the chain locked against other appenders.
pub type AuditBuilder<'a> =
    dyn FnMut(Option<&AuditLink>) -> Result<Vec<AuditEntry>, StoreError> + 'a;

/// The platform records of a backend. Every `Store` provides them.
pub trait PlatformRecords {
    /// The unexpired document under `key` in namespace `ns`.
    fn doc_get(&self, ns: &str, key: &str) -> Result<Option<Doc>, StoreError>;
    /// Writes `value` if `expect` holds and returns the new version; otherwise
    /// `StoreError::DocConflict`. An expired document counts as absent.
    fn doc_put(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires_us: Option<i64>,
        expect: DocExpect,
    ) -> Result<i64, StoreError>;
    /// Deletes the document if `expect` holds; `Ok(false)` if there was none.
    fn doc_delete(&self, ns: &str, key: &str, expect: DocExpect) -> Result<bool, StoreError>;
    /// Reads and deletes the unexpired document atomically: of concurrent takers (in any
    /// process) exactly one gets it. For single-use grants such as authorization codes.
    fn doc_take(&self, ns: &str, key: &str) -> Result<Option<Doc>, StoreError>;
    /// Unexpired documents whose key starts with `prefix`, in key order, after `after`.
    fn doc_list(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Doc>, StoreError>;
    /// Removes documents that expired before `now_us`; returns how many.
    fn doc_purge_expired(&self, now_us: i64) -> Result<u64, StoreError>;

    /// Appends to chain `chain` (a tenant name, or `_platform`) the entries `build` returns
    /// for the current head, in one transaction, holding the chain's lock across processes.
    /// Their `seq` must continue the head's without gaps (else `StoreError::Corrupt`, nothing
    /// written). Nothing is acknowledged before it is durable.
    fn audit_append(&self, chain: &str, build: &mut AuditBuilder<'_>) -> Result<(), StoreError>;
    /// The chain's last entry, `None` when empty.
    fn audit_head(&self, chain: &str) -> Result<Option<AuditLink>, StoreError>;
    fn audit_query(&self, chain: &str, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
    /// The names of all chains that have entries.
    fn audit_chains(&self) -> Result<Vec<String>, StoreError>;
}
