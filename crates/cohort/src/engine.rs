//! The engine over a store: builds every tenant's index from the current resources, follows the
//! change feed, answers counts and keeps a snapshot for restarts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use medicus_store::search::SearchQuery;
use medicus_store::{Store, TxId};
use serde_json::Value;

use crate::consent::{MiiBroadConsent, ResearchEligibility};
use crate::error::EngineError;
use crate::facts::Extracted;
use crate::index::{IndexStats, TenantIndex};
use crate::plan::{Domain, Plan};
use crate::snapshot;

/// The resource types the engine reads.
pub const TYPES: &[&str] = &[
    "Patient",
    "Medication",
    "Consent",
    "Condition",
    "Procedure",
    "Observation",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationAdministration",
    "Specimen",
];

/// The snapshot file under a data directory.
pub fn snapshot_path(data_dir: &Path) -> PathBuf {
    data_dir.join("cohort").join("index.snapshot")
}

#[derive(Default)]
struct State {
    position: TxId,
    tenants: HashMap<String, TenantIndex>,
}

/// What a build did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BuildStats {
    pub resources: u64,
    pub facts: u64,
    pub seconds: f64,
}

/// The feasibility engine of one medicus node.
pub struct CohortEngine {
    state: RwLock<State>,
    eligibility: Arc<dyn ResearchEligibility>,
}

impl Default for CohortEngine {
    fn default() -> Self {
        CohortEngine::new(Arc::new(MiiBroadConsent::default()))
    }
}

const FEED_PAGE: usize = 10_000;
const BATCH: usize = 256;

impl CohortEngine {
    pub fn new(eligibility: Arc<dyn ResearchEligibility>) -> CohortEngine {
        CohortEngine {
            state: RwLock::new(State::default()),
            eligibility,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A writer that panicked leaves indexes that are at worst behind; counting on stays safe.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The change-feed position the indexes reflect.
    pub fn position(&self) -> TxId {
        self.read().position
    }

    pub fn stats(&self, tenant: &str) -> Option<IndexStats> {
        self.read().tenants.get(tenant).map(TenantIndex::stats)
    }

    /// The exact number of patients of `tenant` meeting `plan` that research may count on
    /// `today` (days since 1970-01-01). Unknown tenants have none.
    pub fn count(&self, tenant: &str, plan: &Plan, today: i32) -> u64 {
        self.read()
            .tenants
            .get(tenant)
            .map_or(0, |ix| ix.count(plan, today, &*self.eligibility))
    }

    /// The codes present in `tenant` (per domain, system and code), without counts.
    pub fn catalogue(&self, tenant: &str) -> Vec<(Domain, String, String)> {
        self.read()
            .tenants
            .get(tenant)
            .map(TenantIndex::catalogue)
            .unwrap_or_default()
    }

    /// The newest position of the change feed.
    fn head(store: &dyn Store, mut after: TxId) -> Result<TxId, EngineError> {
        loop {
            let page = store.changes(after, FEED_PAGE)?;
            match page.last() {
                None => return Ok(after),
                Some(c) => after = c.tx,
            }
        }
    }

    /// Builds every tenant's index from the store's current resources, then follows the feed
    /// from the position taken before the scan (a change during the scan is applied again
    /// afterwards, which replacing contributions makes harmless).
    pub fn build(&self, store: &dyn Store) -> Result<BuildStats, EngineError> {
        let started = Instant::now();
        let position = Self::head(store, 0)?;
        let mut tenants = HashMap::new();
        let mut resources = 0u64;
        for tenant in store.list_tenants()? {
            let mut ix = TenantIndex::new();
            resources += self.scan_tenant(store, &tenant, &mut ix)?;
            ix.refresh();
            tenants.insert(tenant, ix);
        }
        let facts = tenants.values().map(|t| t.stats().facts).sum();
        {
            let mut st = self.write();
            st.tenants = tenants;
            st.position = position;
        }
        self.catch_up(store)?;
        Ok(BuildStats {
            resources,
            facts,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Reads every resource of the engine's types in one tenant: the store streams raw JSON,
    /// workers parse and extract, this thread applies.
    fn scan_tenant(
        &self,
        store: &dyn Store,
        tenant: &str,
        ix: &mut TenantIndex,
    ) -> Result<u64, EngineError> {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8);
        type Raw = (&'static str, Vec<(String, Vec<u8>)>);
        type Done = Vec<(&'static str, String, Extracted)>;
        let (raw_tx, raw_rx) = sync_channel::<Raw>(workers * 4);
        let raw_rx: Arc<Mutex<Receiver<Raw>>> = Arc::new(Mutex::new(raw_rx));
        let (done_tx, done_rx) = sync_channel::<Done>(workers * 4);
        let eligibility = &*self.eligibility;
        let mut count = 0u64;
        std::thread::scope(|s| -> Result<(), EngineError> {
            for _ in 0..workers {
                let rx = Arc::clone(&raw_rx);
                let tx: SyncSender<Done> = done_tx.clone();
                s.spawn(move || {
                    loop {
                        let batch = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok((rt, items)) = batch else { return };
                        let out: Done = items
                            .into_iter()
                            .map(|(id, json)| {
                                let e = crate::facts::extract_bytes(&json)
                                    .unwrap_or(Extracted::Nothing);
                                (rt, id, e)
                            })
                            .collect();
                        if tx.send(out).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(done_tx);
            let applier = s.spawn(move || {
                for batch in done_rx {
                    for (rt, id, e) in batch {
                        ix.apply_extracted(rt, &id, e, eligibility);
                    }
                }
            });
            let mut session = store.read_session(tenant)?;
            let query = SearchQuery::default();
            let mut failed = None;
            for &rt in TYPES {
                let mut batch = Vec::with_capacity(BATCH);
                session
                    .scan_raw(Some(rt), &query, &mut |r| {
                        count += 1;
                        batch.push((r.id, r.json));
                        if batch.len() == BATCH
                            && raw_tx
                                .send((
                                    rt,
                                    std::mem::replace(&mut batch, Vec::with_capacity(BATCH)),
                                ))
                                .is_err()
                        {
                            return Ok(false);
                        }
                        Ok(true)
                    })
                    .unwrap_or_else(|e| failed = Some(e));
                if !batch.is_empty() {
                    let _ = raw_tx.send((rt, batch));
                }
                if failed.is_some() {
                    break;
                }
            }
            drop(raw_tx);
            drop(session);
            let _ = applier.join();
            match failed {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        })?;
        Ok(count)
    }

    /// Applies every committed change after the current position; returns how many.
    pub fn catch_up(&self, store: &dyn Store) -> Result<usize, EngineError> {
        let mut applied = 0;
        loop {
            let after = self.position();
            let page = store.changes(after, FEED_PAGE)?;
            let Some(last) = page.last().map(|c| c.tx) else {
                return Ok(applied);
            };
            // Read the current bodies outside the lock; the index is replaced per resource,
            // so reading a newer version than the change named is harmless (its own change
            // follows and reads it again).
            let mut bodies: Vec<(String, String, String, Option<Value>)> = Vec::new();
            let mut by_tenant: HashMap<&str, Vec<&medicus_store::Change>> = HashMap::new();
            for c in &page {
                if TYPES.contains(&c.resource_type.as_str()) {
                    by_tenant.entry(c.tenant.as_str()).or_default().push(c);
                }
            }
            for (tenant, changes) in by_tenant {
                let mut session = match store.read_session(tenant) {
                    Ok(s) => s,
                    Err(medicus_store::StoreError::UnknownTenant(_)) => continue,
                    Err(e) => return Err(e.into()),
                };
                for c in changes {
                    let body = session.read(&c.resource_type, &c.id)?.and_then(|v| v.body);
                    bodies.push((
                        tenant.to_owned(),
                        c.resource_type.clone(),
                        c.id.clone(),
                        body,
                    ));
                }
            }
            let mut st = self.write();
            let eligibility = &*self.eligibility;
            let mut touched: Vec<String> = Vec::new();
            for (tenant, rt, id, body) in &bodies {
                let ix = st.tenants.entry(tenant.clone()).or_default();
                ix.apply(rt, id, body.as_ref(), eligibility);
                if !touched.contains(tenant) {
                    touched.push(tenant.clone());
                }
            }
            for t in touched {
                if let Some(ix) = st.tenants.get_mut(&t) {
                    ix.refresh();
                }
            }
            st.position = last;
            applied += page.len();
        }
    }

    /// Follows the change feed on a thread of its own, every `every`, until `stop` is set.
    pub fn follow(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        every: Duration,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let engine = Arc::clone(self);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = engine.catch_up(&*store) {
                    tracing::warn!(error = %e, "cohort index: following the change feed failed");
                }
                std::thread::sleep(every);
            }
        })
    }

    /// Writes the snapshot (indexes and feed position).
    pub fn save_snapshot(&self, path: &Path) -> Result<(), EngineError> {
        let st = self.read();
        snapshot::save(path, st.position, &st.tenants)
    }

    /// Replaces the indexes with a snapshot's; the caller then follows the feed with
    /// [`CohortEngine::catch_up`].
    pub fn load_snapshot(&self, path: &Path) -> Result<TxId, EngineError> {
        let (position, mut tenants) = snapshot::load(path)?;
        for ix in tenants.values_mut() {
            ix.recompile_all(&*self.eligibility);
        }
        let mut st = self.write();
        st.tenants = tenants;
        st.position = position;
        Ok(position)
    }

    /// Loads the snapshot when there is a usable one, else builds from the store; then catches
    /// up with the feed. The usual way to start.
    pub fn open(&self, store: &dyn Store, snapshot: &Path) -> Result<(), EngineError> {
        match self.load_snapshot(snapshot) {
            Ok(_) => {
                self.catch_up(store)?;
            }
            Err(e) => {
                if snapshot.exists() {
                    tracing::warn!(error = %e, "cohort snapshot unusable; rebuilding from the store");
                }
                self.build(store)?;
            }
        }
        Ok(())
    }
}
