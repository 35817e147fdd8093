//! Benchmark cases.

pub mod export;
pub mod transactions;
