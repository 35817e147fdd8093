//! Time as the auth logic sees it: whole seconds since the Unix epoch, injectable for tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    fn now_s(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_s(&self) -> i64 {
        // A clock before 1970 is a broken machine; 0 makes every token look expired (fail closed).
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock tests move by hand. Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(now_s: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_s)))
    }
    pub fn set(&self, now_s: i64) {
        self.0.store(now_s, Ordering::SeqCst);
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_s(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
