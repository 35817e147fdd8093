//! Benchmark cases.

pub mod transactions;
