//! Benchmark cases.

pub mod export;
pub mod suite;
pub mod transactions;
