//! Benchmark cases.

pub mod cohort;
pub mod export;
pub mod nodes;
pub mod suite;
pub mod transactions;
