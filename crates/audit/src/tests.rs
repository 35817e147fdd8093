//! Unit tests over an in-memory `PlatformRecords` that implements only the audit half.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use medicus_store::{
    AuditBuilder, AuditEntry, AuditLink, AuditQuery, Doc, DocExpect, PlatformRecords, StoreError,
};

use crate::chain::{Pending, build_entries};
use crate::{AuditEvent, AuditTrail, Kind, Problem, verify, verify_all};

#[derive(Default)]
pub(crate) struct MemAudit {
    pub chains: Mutex<BTreeMap<String, Vec<AuditEntry>>>,
    pub appends: Mutex<usize>,
    /// Fail this many appends before succeeding.
    pub fail: Mutex<usize>,
}

fn unsupported() -> StoreError {
    StoreError::Database("documents are not part of this fake".into())
}

impl PlatformRecords for MemAudit {
    fn doc_get(&self, _: &str, _: &str) -> Result<Option<Doc>, StoreError> {
        Err(unsupported())
    }
    fn doc_put(
        &self,
        _: &str,
        _: &str,
        _: &[u8],
        _: Option<i64>,
        _: DocExpect,
    ) -> Result<i64, StoreError> {
        Err(unsupported())
    }
    fn doc_delete(&self, _: &str, _: &str, _: DocExpect) -> Result<bool, StoreError> {
        Err(unsupported())
    }
    fn doc_take(&self, _: &str, _: &str) -> Result<Option<Doc>, StoreError> {
        Err(unsupported())
    }
    fn doc_list(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<Doc>, StoreError> {
        Err(unsupported())
    }
    fn doc_purge_expired(&self, _: i64) -> Result<u64, StoreError> {
        Err(unsupported())
    }
    fn doc_scan(
        &self,
        _: Option<(&str, &str)>,
        _: usize,
    ) -> Result<Vec<(String, Doc)>, StoreError> {
        Err(unsupported())
    }
    fn audit_append(&self, chain: &str, build: &mut AuditBuilder<'_>) -> Result<(), StoreError> {
        {
            let mut fail = self.fail.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(StoreError::Unavailable("down".into()));
            }
        }
        let mut chains = self.chains.lock().unwrap();
        let entries = chains.entry(chain.to_string()).or_default();
        let head = entries.last().map(|e| AuditLink {
            seq: e.seq,
            hash: e.hash.clone(),
        });
        let new = build(head.as_ref())?;
        let first = head.map_or(1, |h| h.seq + 1);
        for (i, e) in new.iter().enumerate() {
            if e.seq != first + i as i64 {
                return Err(StoreError::Corrupt("gap".into()));
            }
        }
        entries.extend(new);
        *self.appends.lock().unwrap() += 1;
        Ok(())
    }
    fn audit_head(&self, chain: &str) -> Result<Option<AuditLink>, StoreError> {
        Ok(self
            .chains
            .lock()
            .unwrap()
            .get(chain)
            .and_then(|c| c.last())
            .map(|e| AuditLink {
                seq: e.seq,
                hash: e.hash.clone(),
            }))
    }
    fn audit_query(&self, chain: &str, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let chains = self.chains.lock().unwrap();
        let mut all: Vec<AuditEntry> = chains.get(chain).cloned().unwrap_or_default();
        // Like the SQL backends: ordered by the stored seq, whatever the insertion order.
        all.sort_by_key(|e| e.seq);
        if q.newest_first {
            all.reverse();
        }
        Ok(all
            .into_iter()
            .filter(|e| q.after_seq.is_none_or(|s| e.seq > s))
            .filter(|e| q.before_seq.is_none_or(|s| e.seq < s))
            .filter(|e| q.from_us.is_none_or(|t| e.at_us >= t))
            .filter(|e| q.to_us.is_none_or(|t| e.at_us < t))
            .filter(|e| q.subject.as_ref().is_none_or(|s| e.subjects.contains(s)))
            .take(q.limit)
            .collect())
    }
    fn audit_chains(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.chains.lock().unwrap().keys().cloned().collect())
    }
}

fn event(tenant: &str, i: i64) -> AuditEvent {
    let mut e = AuditEvent::new(Some(tenant.into()), Kind::Read);
    e.entities.push(format!("Observation/{i}"));
    e.subjects.push(format!("Patient/{}", i % 3));
    e.at_us = 1_700_000_000_000_000 + i;
    e.status = 200;
    e
}

fn filled(n: i64) -> MemAudit {
    let mem = MemAudit::default();
    let pending: Vec<Pending> = (1..=n)
        .map(|i| Pending::from_event(&event("t", i)).unwrap())
        .collect();
    mem.chains
        .lock()
        .unwrap()
        .insert("t".into(), build_entries("t", None, &pending));
    mem
}

fn edit(mem: &MemAudit, f: impl FnOnce(&mut Vec<AuditEntry>)) {
    f(mem.chains.lock().unwrap().get_mut("t").unwrap());
}

#[test]
fn an_intact_chain_verifies() {
    let mem = filled(2500);
    let r = verify(&mem, "t").unwrap();
    assert!(r.ok(), "{:?}", r.problem);
    assert_eq!(r.checked, 2500);
    assert_eq!(r.last_good_seq, 2500);
    assert!(verify(&mem, "empty").unwrap().ok());
}

#[test]
fn a_modified_record_is_named() {
    let mem = filled(1500);
    edit(&mem, |c| {
        let rec = String::from_utf8(c[1199].record.clone())
            .unwrap()
            .replace("Observation/1200", "Observation/9999");
        c[1199].record = rec.into_bytes();
    });
    assert_eq!(
        verify(&mem, "t").unwrap().problem,
        Some(Problem::Modified { seq: 1200 })
    );
}

#[test]
fn changed_time_or_subjects_are_modifications() {
    let mem = filled(10);
    edit(&mem, |c| c[3].at_us += 1);
    assert_eq!(
        verify(&mem, "t").unwrap().problem,
        Some(Problem::Modified { seq: 4 })
    );
    let mem = filled(10);
    edit(&mem, |c| c[6].subjects.clear());
    assert_eq!(
        verify(&mem, "t").unwrap().problem,
        Some(Problem::Modified { seq: 7 })
    );
}

#[test]
fn a_deleted_entry_is_named() {
    let mem = filled(10);
    edit(&mem, |c| {
        c.remove(4);
    });
    assert_eq!(
        verify(&mem, "t").unwrap().problem,
        Some(Problem::Missing { seq: 5, next: 6 })
    );
}

#[test]
fn a_rewritten_entry_with_a_recomputed_hash_breaks_the_next_link() {
    let mem = filled(10);
    edit(&mem, |c| {
        let mut e = event("t", 99);
        e.at_us = c[4].at_us;
        let p = Pending::from_event(&e).unwrap();
        let prev = c[3].hash.clone();
        c[4].record = p.record;
        c[4].subjects = p.subjects;
        c[4].hash = crate::chain::entry_hash(&prev, 5, c[4].at_us, &c[4].subjects, &c[4].record);
    });
    assert_eq!(
        verify(&mem, "t").unwrap().problem,
        Some(Problem::Modified { seq: 6 })
    );
}

#[test]
fn swapped_entries_are_reordering() {
    // Whole rows swapped (seq values exchanged).
    let mem = filled(10);
    edit(&mem, |c| {
        c[2].seq = 4;
        c[3].seq = 3;
    });
    assert_eq!(
        verify(&mem, "t").unwrap().problem,
        Some(Problem::Reordered {
            seq: 3,
            belongs_at: 4
        })
    );
    // Contents swapped under fixed positions and hashes.
    let mem = filled(10);
    edit(&mem, |c| {
        let (a, b) = (c[6].clone(), c[7].clone());
        c[6].record = b.record;
        c[6].at_us = b.at_us;
        c[6].subjects = b.subjects;
        c[7].record = a.record;
        c[7].at_us = a.at_us;
        c[7].subjects = a.subjects;
    });
    assert_eq!(
        verify(&mem, "t").unwrap().problem,
        Some(Problem::Reordered {
            seq: 7,
            belongs_at: 8
        })
    );
}

#[test]
fn the_trail_batches_per_chain_and_flush_makes_events_durable() {
    let mem = Arc::new(MemAudit::default());
    let trail = AuditTrail::new(mem.clone());
    for i in 0..500 {
        trail
            .record(event(if i % 2 == 0 { "a" } else { "b" }, i))
            .unwrap();
    }
    let mut platform = AuditEvent::new(None, Kind::Login);
    platform.at_us = 5;
    trail.record(platform).unwrap();
    trail.flush().unwrap();
    {
        let chains = mem.chains.lock().unwrap();
        assert_eq!(chains["a"].len(), 250);
        assert_eq!(chains["b"].len(), 250);
        assert_eq!(chains["_platform"].len(), 1);
        // In recording order within a chain.
        assert!(chains["a"].windows(2).all(|w| w[0].at_us < w[1].at_us));
    }
    // Fewer appends than events: the writer groups what is queued.
    assert!(
        *mem.appends.lock().unwrap() < 501,
        "{}",
        mem.appends.lock().unwrap()
    );
    let reports = verify_all(&*mem).unwrap();
    assert_eq!(reports.len(), 3);
    assert!(reports.iter().all(|r| r.ok()));
}

#[test]
fn failed_appends_are_retried_not_dropped() {
    let mem = Arc::new(MemAudit::default());
    *mem.fail.lock().unwrap() = 3;
    let trail = AuditTrail::new(mem.clone());
    trail.record(event("t", 1)).unwrap();
    trail.flush().unwrap();
    assert_eq!(mem.chains.lock().unwrap()["t"].len(), 1);
}

#[test]
fn dropping_the_trail_flushes() {
    let mem = Arc::new(MemAudit::default());
    let trail = AuditTrail::with_capacity(mem.clone(), 4);
    for i in 0..100 {
        trail.record(event("t", i)).unwrap();
    }
    drop(trail);
    assert_eq!(mem.chains.lock().unwrap()["t"].len(), 100);
}

#[test]
fn fhir_rendering_and_search() {
    let mem = Arc::new(MemAudit::default());
    let trail = AuditTrail::new(mem.clone());
    for i in 1..=30 {
        let mut e = event("t", i);
        if i % 10 == 0 {
            e.kind = Kind::SearchType;
            e.action = e.kind.action();
            e.entities.clear();
            e.query = Some("code=x".into());
            e.status = 404;
            e.outcome = crate::OutcomeCode::Minor;
        }
        e.address = Some("10.0.0.1".into());
        e.request_id = Some(format!("r{i}"));
        trail.record(e).unwrap();
    }
    trail.flush().unwrap();
    let entries = mem
        .audit_query(
            "t",
            &AuditQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .unwrap();
    let r = crate::fhir::to_fhir(&entries[9], "medicus").unwrap();
    assert_eq!(r["id"], "10");
    assert_eq!(r["subtype"][0]["code"], "search-type");
    assert_eq!(
        r["subtype"][0]["system"],
        "http://hl7.org/fhir/restful-interaction"
    );
    assert_eq!(r["type"]["code"], "rest");
    assert_eq!(r["action"], "R");
    assert_eq!(r["outcome"], "4");
    assert_eq!(r["agent"][0]["network"]["address"], "10.0.0.1");
    assert_eq!(r["entity"][0]["query"], "Y29kZT14");
    assert_eq!(r["entity"][1]["what"]["reference"], "Patient/1");
    assert_eq!(r["recorded"], "2023-11-14T22:13:20.00001Z");

    let filter = crate::fhir::EventFilter {
        outcome: vec![crate::OutcomeCode::Minor],
        ..Default::default()
    };
    let page = crate::fhir::search(&*mem, "t", &filter, 2, None).unwrap();
    let seqs: Vec<i64> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [30, 20]);
    let next = crate::fhir::search(&*mem, "t", &filter, 2, page.next_before).unwrap();
    assert_eq!(next.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [10]);
    assert_eq!(next.next_before, None);
    let filter = crate::fhir::EventFilter {
        subject: Some("Patient/2".into()),
        ..Default::default()
    };
    let page = crate::fhir::search(&*mem, "t", &filter, 100, None).unwrap();
    assert_eq!(page.entries.len(), 10);
}
