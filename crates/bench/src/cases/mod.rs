//! Benchmark cases.

pub mod export;
pub mod nodes;
pub mod suite;
pub mod transactions;
