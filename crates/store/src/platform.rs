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
    /// Deletes the document if `expect` holds; `Ok(false)` if there was none (whatever
    /// `expect`), `StoreError::DocConflict` if there is one that `expect` does not match.
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
    /// Unexpired documents of every namespace as `(namespace, document)`, in `(namespace, key)`
    /// order, after the position `after`: for copying a store whatever namespaces it has.
    fn doc_scan(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<(String, Doc)>, StoreError>;

    /// Appends to chain `chain` (a tenant name, or `_platform`) the entries `build` returns
    /// for the current head, in one transaction, holding the chain's lock across processes.
    /// Their `seq` must continue the head's without gaps (else `StoreError::Corrupt`, nothing
    /// written). Nothing is acknowledged before it is durable.
    ///
    /// `build` runs while the chain is locked and the backend's write transaction is open: it
    /// must not write to the store itself (on SQLite that deadlocks on the single writer).
    /// An empty result appends nothing.
    fn audit_append(&self, chain: &str, build: &mut AuditBuilder<'_>) -> Result<(), StoreError>;
    /// The chain's last entry, `None` when empty.
    fn audit_head(&self, chain: &str) -> Result<Option<AuditLink>, StoreError>;
    /// The entries of `chain` that `query` selects (`limit` 0 selects none).
    fn audit_query(&self, chain: &str, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
    /// The names of all chains that have entries.
    fn audit_chains(&self) -> Result<Vec<String>, StoreError>;
}

/// Where a listing of `prefix` starts: after `after` when that lies inside the prefix's range,
/// else at the prefix itself; as the comparison operator and its bound.
pub(crate) fn list_start<'a>(prefix: &'a str, after: Option<&'a str>) -> (&'static str, &'a str) {
    match after {
        Some(a) if a >= prefix => (">", a),
        _ => (">=", prefix),
    }
}

/// The smallest string above every string that starts with `prefix` (in code point order, which
/// is the byte order of UTF-8 and of both backends' key columns), `None` when there is none: a
/// prefix becomes the key range `prefix <= key < upper` that an index answers.
pub(crate) fn prefix_upper(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value; surrogates are not chars, so skip over them.
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Checks that `entries` continue `head` without gaps: the first has the head's `seq` + 1 (1 on
/// an empty chain), each next one more.
pub(crate) fn check_continues(
    chain: &str,
    head: Option<&AuditLink>,
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    let first = head.map_or(1, |h| h.seq + 1);
    for (expected, e) in (first..).zip(entries) {
        if e.seq != expected {
            return Err(StoreError::Corrupt(format!(
                "audit chain {chain}: entry with seq {} appended where {expected} comes next",
                e.seq
            )));
        }
    }
    Ok(())
}

/// The stored form of an entry's subjects (both backends keep them with the entry, so reading
/// an entry needs no second lookup): a JSON array of strings.
pub(crate) fn encode_subjects(subjects: &[String]) -> String {
    serde_json::Value::from(subjects.to_vec()).to_string()
}

pub(crate) fn decode_subjects(
    chain: &str,
    seq: i64,
    text: &str,
) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Corrupt(format!(
            "audit chain {chain}, entry {seq}: subjects are not a JSON list of strings: {e}"
        ))
    })
}

/// A value bound to a statement that both SQL backends build alike.
pub(crate) enum Arg<'a> {
    Text(&'a str),
    Int(i64),
}

/// The statement answering `audit_query` on both SQL backends, with `placeholder(n)` for the
/// n-th argument (1-based); columns `seq, at_us, hash, subjects, record`. With a subject it
/// walks that subject's rows of the chain in seq order and looks each entry up by its key;
/// otherwise it walks the chain's key range.
pub(crate) fn audit_query_sql<'a>(
    chain: &'a str,
    q: &'a AuditQuery,
    placeholder: impl Fn(usize) -> String,
) -> (String, Vec<Arg<'a>>) {
    let mut args = vec![Arg::Text(chain)];
    let (mut sql, seq) = match &q.subject {
        Some(subject) => {
            args.push(Arg::Text(subject));
            (
                // CROSS JOIN: SQLite keeps the subject rows as the outer loop.
                format!(
                    "SELECT a.seq, a.at_us, a.hash, a.subjects, a.record
                     FROM audit_subject s CROSS JOIN audit a
                     WHERE s.chain = {} AND s.subject = {} AND a.chain = s.chain AND a.seq = s.seq",
                    placeholder(1),
                    placeholder(2)
                ),
                "s.seq",
            )
        }
        None => (
            format!(
                "SELECT a.seq, a.at_us, a.hash, a.subjects, a.record FROM audit a WHERE a.chain = {}",
                placeholder(1)
            ),
            "a.seq",
        ),
    };
    let bounds = [
        (q.after_seq, seq, ">"),
        (q.before_seq, seq, "<"),
        (q.from_us, "a.at_us", ">="),
        (q.to_us, "a.at_us", "<"),
    ];
    for (value, column, op) in bounds {
        if let Some(v) = value {
            args.push(Arg::Int(v));
            sql.push_str(&format!(" AND {column} {op} {}", placeholder(args.len())));
        }
    }
    args.push(Arg::Int(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    sql.push_str(&format!(
        " ORDER BY {seq} {} LIMIT {}",
        if q.newest_first { "DESC" } else { "ASC" },
        placeholder(args.len())
    ));
    (sql, args)
}

/// The statement listing the chains: a skip scan over the `(chain, seq)` key, one seek per
/// chain, instead of reading every entry.
pub(crate) const AUDIT_CHAINS_SQL: &str = "
WITH RECURSIVE c (chain) AS (
  SELECT (SELECT chain FROM audit ORDER BY chain LIMIT 1)
  UNION ALL
  SELECT (SELECT a.chain FROM audit a WHERE a.chain > c.chain ORDER BY a.chain LIMIT 1)
  FROM c WHERE c.chain IS NOT NULL)
SELECT chain FROM c WHERE chain IS NOT NULL";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges() {
        assert_eq!(prefix_upper(""), None);
        assert_eq!(prefix_upper("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_upper("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_upper("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper("\u{10FFFF}"), None);
        let upper = prefix_upper("key/").unwrap();
        for inside in ["key/", "key/a", "key/\u{10FFFF}\u{10FFFF}"] {
            assert!(inside >= "key/" && inside < upper.as_str(), "{inside}");
        }
        assert!("key0" >= upper.as_str());
    }

    #[test]
    fn seqs_continue_the_head() {
        let e = |seq| AuditEntry {
            seq,
            at_us: 0,
            hash: vec![],
            subjects: vec![],
            record: vec![],
        };
        assert!(check_continues("c", None, &[e(1), e(2)]).is_ok());
        assert!(check_continues("c", None, &[e(2)]).is_err());
        let head = AuditLink {
            seq: 4,
            hash: vec![],
        };
        assert!(check_continues("c", Some(&head), &[e(5), e(6)]).is_ok());
        assert!(check_continues("c", Some(&head), &[e(5), e(7)]).is_err());
        assert!(check_continues("c", Some(&head), &[e(4)]).is_err());
        assert!(check_continues("c", Some(&head), &[]).is_ok());
        let subjects = vec!["Patient/1".to_owned(), "a\"b".to_owned()];
        assert_eq!(
            decode_subjects("c", 1, &encode_subjects(&subjects)).unwrap(),
            subjects
        );
    }
}
