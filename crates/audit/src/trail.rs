//! The batching writer: request paths hand events over and never wait for the database.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use medicus_store::{AuditEntry, AuditLink, PlatformRecords, StoreError};

use crate::chain::{Pending, build_entries};
use crate::{AuditError, AuditEvent};

/// Events waiting in the channel before `record` blocks.
pub const DEFAULT_CAPACITY: usize = 16 * 1024;

/// Events taken from the channel for one round of appends.
const MAX_BATCH: usize = 4096;

/// Backoff between failed appends: doubles from the first to the last value.
const RETRY_FIRST: Duration = Duration::from_millis(20);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Attempts per batch once the trail is shutting down (while running: until it succeeds).
const SHUTDOWN_ATTEMPTS: u32 = 8;

enum Msg {
    Event(Box<AuditEvent>),
    Flush(SyncSender<()>),
}

struct Inner {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the thread drain what is queued, append it and end.
        self.tx.take();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("audit writer thread panicked");
        }
    }
}

/// The audit trail writer. Cloning shares one background thread; the last clone dropped
/// flushes and stops it.
#[derive(Clone)]
pub struct AuditTrail {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditTrail")
    }
}

impl AuditTrail {
    /// A trail appending to `store` with the default channel capacity.
    pub fn new<S>(store: Arc<S>) -> AuditTrail
    where
        S: PlatformRecords + Send + Sync + ?Sized + 'static,
    {
        AuditTrail::with_capacity(store, DEFAULT_CAPACITY)
    }

    pub fn with_capacity<S>(store: Arc<S>, capacity: usize) -> AuditTrail
    where
        S: PlatformRecords + Send + Sync + ?Sized + 'static,
    {
        let (tx, rx) = sync_channel(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer(&*store, rx))
            .ok();
        if thread.is_none() {
            tracing::error!("could not start the audit writer thread");
        }
        AuditTrail {
            inner: Arc::new(Inner {
                tx: Some(tx),
                thread,
            }),
        }
    }

    fn sender(&self) -> Result<&SyncSender<Msg>, AuditError> {
        self.inner.tx.as_ref().ok_or(AuditError::Stopped)
    }

    /// Hands `event` to the writer. Blocks while the channel is full: an event is never
    /// dropped. Call from a blocking context (see [`AuditTrail::try_record`] for async code).
    pub fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        self.sender()?
            .send(Msg::Event(Box::new(event)))
            .map_err(|_| AuditError::Stopped)
    }

    /// Hands `event` over without blocking; gives it back when the channel is full, for the
    /// caller to [`record`](AuditTrail::record) from a blocking thread.
    pub fn try_record(&self, event: AuditEvent) -> Result<(), TryRecord> {
        let tx = self.sender().map_err(TryRecord::Failed)?;
        match tx.try_send(Msg::Event(Box::new(event))) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Msg::Event(e))) => Err(TryRecord::Full(e)),
            Err(_) => Err(TryRecord::Failed(AuditError::Stopped)),
        }
    }

    /// Waits until every event recorded before this call is durable in the store.
    pub fn flush(&self) -> Result<(), AuditError> {
        let (ack_tx, ack_rx) = sync_channel(1);
        self.sender()?
            .send(Msg::Flush(ack_tx))
            .map_err(|_| AuditError::Stopped)?;
        ack_rx.recv().map_err(|_| AuditError::Stopped)
    }
}

/// Why [`AuditTrail::try_record`] did not take the event.
#[derive(Debug)]
pub enum TryRecord {
    /// The channel is full; the event is handed back.
    Full(Box<AuditEvent>),
    Failed(AuditError),
}

fn writer<S: PlatformRecords + ?Sized>(store: &S, rx: Receiver<Msg>) {
    let mut open = true;
    while open {
        // Wait for work, then take whatever else is already queued: under load one append
        // carries many events, idle it carries one without delay.
        let first = match rx.recv() {
            Ok(m) => m,
            Err(_) => break,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.recv_timeout(Duration::ZERO) {
                Ok(m) => batch.push(m),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let mut chains: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
        let mut acks = Vec::new();
        for m in batch {
            match m {
                Msg::Event(e) => match Pending::from_event(&e) {
                    Ok(p) => chains.entry(e.chain().to_string()).or_default().push(p),
                    // Unreachable for our own types; logged without the event's content.
                    Err(err) => tracing::error!(error = %err, "audit event could not be encoded"),
                },
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        for (chain, pending) in &chains {
            append_with_retry(store, chain, pending, open);
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

fn append_with_retry<S: PlatformRecords + ?Sized>(
    store: &S,
    chain: &str,
    pending: &[Pending],
    running: bool,
) {
    let mut delay = RETRY_FIRST;
    let mut attempt = 0_u32;
    loop {
        attempt += 1;
        match append(store, chain, pending) {
            Ok(()) => return,
            Err(e) => {
                // The error comes from the store and names no event content; the chain is a
                // tenant name.
                tracing::warn!(chain, attempt, events = pending.len(), error = %e, "audit append failed; retrying");
                if !running && attempt >= SHUTDOWN_ATTEMPTS {
                    tracing::error!(
                        chain,
                        events = pending.len(),
                        "audit events lost at shutdown: the store kept failing"
                    );
                    return;
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Appends `pending` to `chain` in one store call.
pub(crate) fn append<S: PlatformRecords + ?Sized>(
    store: &S,
    chain: &str,
    pending: &[Pending],
) -> Result<(), StoreError> {
    let mut build = |head: Option<&AuditLink>| -> Result<Vec<AuditEntry>, StoreError> {
        Ok(build_entries(chain, head, pending))
    };
    store.audit_append(chain, &mut build)
}
