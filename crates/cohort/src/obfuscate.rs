//! Result obfuscation as the MII sites do it: Laplace noise (sensitivity 1, ε = 0.5), rounded
//! to the nearest 10, floored at 0, and cached per true count so that repeating a query (or
//! asking equivalent ones) cannot average the noise away. Small results say only "too small".

use std::collections::HashMap;
use std::sync::Mutex;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// Obfuscation settings (MII defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ObfuscationConfig {
    pub epsilon: f64,
    pub sensitivity: f64,
    /// Round to a multiple of this (1: no rounding).
    pub round_to: u64,
    /// Obfuscated results below this are reported as too small.
    pub threshold: u64,
}

impl Default for ObfuscationConfig {
    fn default() -> Self {
        ObfuscationConfig {
            epsilon: 0.5,
            sensitivity: 1.0,
            round_to: 10,
            threshold: 20,
        }
    }
}

/// What a researcher sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Obfuscated {
    Count { count: u64 },
    TooSmall,
}

/// Obfuscates counts, remembering the noisy value of each (scope, true count).
pub struct Obfuscator {
    config: ObfuscationConfig,
    rng: SystemRandom,
    cache: Mutex<HashMap<(String, u64), u64>>,
}

impl Obfuscator {
    pub fn new(config: ObfuscationConfig) -> Obfuscator {
        Obfuscator {
            config,
            rng: SystemRandom::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> ObfuscationConfig {
        self.config
    }

    /// A uniform sample in (0, 1), never 0 or 1.
    fn uniform(&self) -> f64 {
        let mut b = [0u8; 8];
        // The system RNG does not fail on supported platforms; if it ever did, 0.5 (no noise)
        // would leak the count, so answer the largest noise instead.
        if self.rng.fill(&mut b).is_err() {
            return 1e-12;
        }
        let bits = u64::from_le_bytes(b) >> 11; // 53 random bits
        (bits as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// One Laplace(0, sensitivity/ε) sample.
    pub fn laplace(&self) -> f64 {
        let scale = self.config.sensitivity / self.config.epsilon;
        let u = self.uniform() - 0.5;
        -scale * u.signum() * (1.0 - 2.0 * u.abs()).ln()
    }

    /// The noisy value of `true_count` within `scope` (e.g. the tenant): the same every time.
    pub fn noisy(&self, scope: &str, true_count: u64) -> u64 {
        let key = (scope.to_owned(), true_count);
        if let Ok(c) = self.cache.lock()
            && let Some(&v) = c.get(&key)
        {
            return v;
        }
        let round = self.config.round_to.max(1) as f64;
        let v = ((true_count as f64 + self.laplace()) / round).round() * round;
        let v = if v.is_finite() && v > 0.0 {
            v as u64
        } else {
            0
        };
        match self.cache.lock() {
            // Another thread may have drawn first: keep one value per count.
            Ok(mut c) => *c.entry(key).or_insert(v),
            Err(_) => v,
        }
    }

    pub fn obfuscate(&self, scope: &str, true_count: u64) -> Obfuscated {
        let v = self.noisy(scope, true_count);
        if v < self.config.threshold {
            Obfuscated::TooSmall
        } else {
            Obfuscated::Count { count: v }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_cached_rounded_and_laplace_shaped() {
        let o = Obfuscator::new(ObfuscationConfig::default());
        let first = o.noisy("t", 1234);
        for _ in 0..20 {
            assert_eq!(o.noisy("t", 1234), first);
        }
        assert_eq!(first % 10, 0);
        // Mean absolute deviation of Laplace(b) is b = 2 for ε = 0.5.
        let n = 20_000;
        let mad: f64 = (0..n).map(|_| o.laplace().abs()).sum::<f64>() / n as f64;
        assert!((mad - 2.0).abs() < 0.15, "mean |noise| {mad}");
        let below = (0..n).filter(|_| o.laplace() < 0.0).count() as f64 / n as f64;
        assert!((below - 0.5).abs() < 0.03);
    }

    #[test]
    fn small_counts_are_too_small() {
        let o = Obfuscator::new(ObfuscationConfig::default());
        assert_eq!(o.obfuscate("t", 0), Obfuscated::TooSmall);
        assert_eq!(o.obfuscate("t", 3), Obfuscated::TooSmall);
        match o.obfuscate("t", 10_000) {
            Obfuscated::Count { count } => assert!(count.abs_diff(10_000) <= 100),
            other => panic!("{other:?}"),
        }
        let exact = Obfuscator::new(ObfuscationConfig {
            epsilon: f64::INFINITY,
            round_to: 1,
            threshold: 0,
            ..Default::default()
        });
        assert_eq!(exact.noisy("t", 17), 17);
    }
}
