//! Per-IP limit on login attempts: a fixed window per client address, in memory on each node.
//! It slows down guessing spread over many accounts (which the per-account lockout of the
//! core cannot see); with several nodes an attacker gets the limit once per node.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Addresses remembered before stale windows are dropped.
const MAX_TRACKED: usize = 100_000;

pub(crate) struct RateLimiter {
    limit: u32,
    window_s: u64,
    windows: Mutex<HashMap<Option<IpAddr>, (u64, u32)>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: u32, window_s: u64) -> Self {
        RateLimiter {
            limit,
            window_s: window_s.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt from `ip` (`None`: no peer address known, one shared bucket). `Err`
    /// carries the seconds until the window ends when the attempt is over the limit.
    pub(crate) fn attempt(&self, ip: Option<IpAddr>) -> Result<(), u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.attempt_at(ip, now)
    }

    fn attempt_at(&self, ip: Option<IpAddr>, now: u64) -> Result<(), u64> {
        let window = now / self.window_s;
        // A poisoned lock only means another request panicked mid-count: keep counting.
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, (w, _)| *w == window);
        }
        let entry = windows.entry(ip).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= self.limit {
            return Err((window + 1) * self.window_s - now);
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_window() {
        let limiter = RateLimiter::new(2, 60);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.attempt_at(Some(a), 120).is_ok());
        assert!(limiter.attempt_at(Some(a), 121).is_ok());
        assert_eq!(limiter.attempt_at(Some(a), 130), Err(50));
        assert!(limiter.attempt_at(Some(b), 130).is_ok());
        assert!(limiter.attempt_at(Some(a), 180).is_ok());
    }
}
