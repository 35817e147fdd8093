//! The hash chain: how an entry's hash is computed, how entries are built for an append, and
//! how a stored chain is verified. The format is specified in docs/audit.md.

use medicus_store::{AuditEntry, AuditLink, AuditQuery, PlatformRecords, StoreError};
use sha2::{Digest, Sha256};

use crate::AuditEvent;

/// Domain separation for the genesis value, so a chain's first link is bound to its name.
const GENESIS_PREFIX: &[u8] = b"medicus-audit-chain-v1\0";

/// Entries read per page while verifying.
const VERIFY_PAGE: usize = 1000;

/// The value the first entry of `chain` links to: SHA-256("medicus-audit-chain-v1\0" ‖ chain).
pub fn genesis(chain: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(GENESIS_PREFIX);
    h.update(chain.as_bytes());
    h.finalize().to_vec()
}

/// SHA-256(prev ‖ be64(seq) ‖ be64(at_us) ‖ be32(n) ‖ n × (be32(len) ‖ subject) ‖
/// be64(len) ‖ record).
pub fn entry_hash(
    prev: &[u8],
    seq: i64,
    at_us: i64,
    subjects: &[String],
    record: &[u8],
) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(at_us.to_be_bytes());
    h.update(len32(subjects.len()).to_be_bytes());
    for s in subjects {
        h.update(len32(s.len()).to_be_bytes());
        h.update(s.as_bytes());
    }
    h.update((record.len() as u64).to_be_bytes());
    h.update(record);
    h.finalize().to_vec()
}

fn len32(n: usize) -> u32 {
    // Subjects are references of a few dozen bytes; a count beyond u32 cannot be built in memory.
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// An event encoded for appending: everything but its position.
#[derive(Debug, Clone)]
pub struct Pending {
    pub at_us: i64,
    pub subjects: Vec<String>,
    pub record: Vec<u8>,
}

impl Pending {
    pub fn from_event(event: &AuditEvent) -> Result<Pending, crate::AuditError> {
        Ok(Pending {
            at_us: event.at_us,
            subjects: event.subjects.clone(),
            record: event.encode()?,
        })
    }
}

/// The entries that continue `head` (of chain `chain`) with `pending`, hashes linked.
pub fn build_entries(
    chain: &str,
    head: Option<&AuditLink>,
    pending: &[Pending],
) -> Vec<AuditEntry> {
    let (mut seq, mut prev) = match head {
        Some(h) => (h.seq, h.hash.clone()),
        None => (0, genesis(chain)),
    };
    pending
        .iter()
        .map(|p| {
            seq += 1;
            let hash = entry_hash(&prev, seq, p.at_us, &p.subjects, &p.record);
            prev = hash.clone();
            AuditEntry {
                seq,
                at_us: p.at_us,
                hash,
                subjects: p.subjects.clone(),
                record: p.record.clone(),
            }
        })
        .collect()
}

/// The first problem found in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The entry at `seq` does not hash to its stored hash: its content or hash was changed
    /// (or an earlier entry was rewritten together with its hash).
    Modified { seq: i64 },
    /// The entry at `seq` is absent: the chain jumps from `seq - 1` to `next`.
    Missing { seq: i64, next: i64 },
    /// The entry stored at `seq` is intact but belongs at position `belongs_at`: entries were
    /// swapped or moved.
    Reordered { seq: i64, belongs_at: i64 },
    /// The entry at `seq` hashes correctly but its record cannot be decoded.
    Undecodable { seq: i64 },
    /// The chain's head (last entry) is not the last entry walked.
    HeadMismatch { seq: i64 },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Modified { seq } => write!(f, "entry {seq} modified (hash mismatch)"),
            Problem::Missing { seq, next } => {
                write!(f, "entry {seq} missing (the chain continues at {next})")
            }
            Problem::Reordered { seq, belongs_at } => write!(
                f,
                "entries reordered: entry {seq} holds the record of entry {belongs_at}"
            ),
            Problem::Undecodable { seq } => write!(f, "entry {seq} cannot be decoded"),
            Problem::HeadMismatch { seq } => {
                write!(f, "the chain head does not match entry {seq}")
            }
        }
    }
}

/// The result of verifying one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub chain: String,
    /// Entries read and checked (up to and including the first problem).
    pub checked: u64,
    /// The last intact entry's seq (0 when none).
    pub last_good_seq: i64,
    pub problem: Option<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Walks `chain` from its first entry in pages and checks every link: seq without gaps, each
/// hash over the previous one and the entry's content. Stops at the first problem.
pub fn verify<S: PlatformRecords + ?Sized>(
    store: &S,
    chain: &str,
) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport {
        chain: chain.to_string(),
        checked: 0,
        last_good_seq: 0,
        problem: None,
    };
    let mut prev = genesis(chain);
    let mut expected = 1_i64;
    let mut after = None;
    loop {
        let page = store.audit_query(
            chain,
            &AuditQuery {
                after_seq: after,
                limit: VERIFY_PAGE,
                ..AuditQuery::default()
            },
        )?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        for (i, e) in page.iter().enumerate() {
            report.checked += 1;
            if e.seq != expected {
                report.problem = Some(Problem::Missing {
                    seq: expected,
                    next: e.seq,
                });
                return Ok(report);
            }
            let computed = entry_hash(&prev, e.seq, e.at_us, &e.subjects, &e.record);
            if computed != e.hash {
                report.problem = Some(match misplaced(chain, store, &page, i)? {
                    Some(belongs_at) => Problem::Reordered {
                        seq: e.seq,
                        belongs_at,
                    },
                    None => Problem::Modified { seq: e.seq },
                });
                return Ok(report);
            }
            if AuditEvent::decode(&e.record, e.at_us, Vec::new()).is_err() {
                report.problem = Some(Problem::Undecodable { seq: e.seq });
                return Ok(report);
            }
            report.last_good_seq = e.seq;
            prev = e.hash.clone();
            expected += 1;
        }
    }
    if let Some(head) = store.audit_head(chain)?
        && (head.seq != report.last_good_seq || head.hash != prev)
    {
        report.problem = Some(Problem::HeadMismatch { seq: head.seq });
    }
    Ok(report)
}

/// Positions around a misplaced entry searched for where it belongs.
const REORDER_RADIUS: usize = 64;

/// Whether the content at `page[i]` (which does not fit its position) is an intact entry of
/// another nearby position M: hashed over M's seq and the stored hash of some nearby entry (its
/// true predecessor, wherever that now is), it gives the hash stored with it or the hash stored
/// at M. This recognises swapped rows (content and hash moved together) as well as swapped
/// contents under fixed hashes.
fn misplaced<S: PlatformRecords + ?Sized>(
    chain: &str,
    store: &S,
    page: &[AuditEntry],
    i: usize,
) -> Result<Option<i64>, StoreError> {
    let candidate = &page[i];
    let mut window: Vec<AuditEntry> = page[i.saturating_sub(REORDER_RADIUS)..].to_vec();
    window.truncate(2 * REORDER_RADIUS + 1);
    if window.len() < 2 * REORDER_RADIUS + 1
        && let Some(last) = page.last()
    {
        window.extend(store.audit_query(
            chain,
            &AuditQuery {
                after_seq: Some(last.seq),
                limit: REORDER_RADIUS,
                ..AuditQuery::default()
            },
        )?);
    }
    let mut prevs: Vec<Vec<u8>> = window.iter().map(|e| e.hash.clone()).collect();
    prevs.push(genesis(chain));
    if let Some(first) = window.first()
        && let Some(before) = store
            .audit_query(
                chain,
                &AuditQuery {
                    before_seq: Some(first.seq),
                    newest_first: true,
                    limit: 1,
                    ..AuditQuery::default()
                },
            )?
            .pop()
    {
        prevs.push(before.hash);
    }
    for slot in &window {
        if slot.seq == candidate.seq {
            continue;
        }
        for prev in &prevs {
            let h = entry_hash(
                prev,
                slot.seq,
                candidate.at_us,
                &candidate.subjects,
                &candidate.record,
            );
            if h == slot.hash || h == candidate.hash {
                return Ok(Some(slot.seq));
            }
        }
    }
    Ok(None)
}

/// Verifies every chain of the store, in name order.
pub fn verify_all<S: PlatformRecords + ?Sized>(store: &S) -> Result<Vec<VerifyReport>, StoreError> {
    let mut chains = store.audit_chains()?;
    chains.sort();
    chains.iter().map(|c| verify(store, c)).collect()
}
