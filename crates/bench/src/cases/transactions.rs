//! Single-writer throughput of FHIR transaction Bundles of 100 resources over HTTP, with the same
//! resources written straight into the store (no HTTP, no validation) as the baseline.

use std::time::Instant;

use medicus_store::{Precondition, SqliteStore, Store};

use crate::fixture::{RESOURCES_PER_BUNDLE, resources, transaction_bundle};
use crate::server::BenchServer;
use crate::stats::{median, percentile};
use crate::{BenchError, Report};

#[derive(Debug, Clone)]
pub struct TransactionOptions {
    /// Number of transaction Bundles to post.
    pub transactions: usize,
}

impl Default for TransactionOptions {
    fn default() -> Self {
        TransactionOptions { transactions: 200 }
    }
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    ["medicus.db", "medicus.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Writes the bundles' resources straight into a fresh store: one write session per bundle.
fn store_baseline(n: usize) -> Result<Vec<f64>, BenchError> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    store.create_tenant("bench")?;
    let mut rates = Vec::with_capacity(n);
    for seed in 0..n {
        let data = resources(seed);
        let t = Instant::now();
        let mut s = store.write_session("bench")?;
        for (rt, id, body) in data {
            s.put(rt, &id, body, Precondition::None)?;
        }
        s.commit()?;
        rates.push(RESOURCES_PER_BUNDLE as f64 / t.elapsed().as_secs_f64());
    }
    Ok(rates)
}

pub fn run(opts: &TransactionOptions) -> Result<Report, BenchError> {
    let n = opts.transactions.max(1);
    let detail = format!("{n} tx × {RESOURCES_PER_BUNDLE} resources");
    let baseline = store_baseline(n)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (latencies, total_s, disk) = runtime.block_on(async {
        let server = BenchServer::start().await?;
        let client = reqwest::Client::new();
        let bodies: Vec<Vec<u8>> = (0..n)
            .map(|i| serde_json::to_vec(&transaction_bundle(i + 1_000_000)))
            .collect::<Result<_, _>>()
            .map_err(|e| BenchError::Unexpected(e.to_string()))?;
        let mut latencies = Vec::with_capacity(n);
        let start = Instant::now();
        for body in bodies {
            let t = Instant::now();
            let resp = client
                .post(server.base())
                .header("content-type", "application/fhir+json")
                .header("prefer", "return=minimal")
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            let _ = resp.bytes().await?;
            if !status.is_success() {
                return Err(BenchError::Unexpected(format!(
                    "transaction answered {status}"
                )));
            }
            latencies.push(t.elapsed().as_secs_f64());
        }
        let total_s = start.elapsed().as_secs_f64();
        Ok::<_, BenchError>((latencies, total_s, disk_bytes(server.data_dir())))
    })?;

    let rates: Vec<f64> = latencies
        .iter()
        .map(|s| RESOURCES_PER_BUNDLE as f64 / s)
        .collect();
    let resources_total = (n * RESOURCES_PER_BUNDLE) as f64;
    let mut report = Report::default();
    report.push(
        "transaction (HTTP, validated)",
        "median throughput",
        median(&rates),
        "resources/s",
        &detail,
    );
    report.push(
        "transaction (HTTP, validated)",
        "overall throughput",
        resources_total / total_s,
        "resources/s",
        &detail,
    );
    report.push(
        "transaction (HTTP, validated)",
        "p50 latency",
        median(&latencies) * 1e3,
        "ms",
        &detail,
    );
    report.push(
        "transaction (HTTP, validated)",
        "p99 latency",
        percentile(&latencies, 99.0) * 1e3,
        "ms",
        &detail,
    );
    report.push(
        "baseline: store write session",
        "median throughput",
        median(&baseline),
        "resources/s",
        &detail,
    );
    report.push(
        "transaction (HTTP, validated)",
        "disk incl. WAL",
        disk as f64 / resources_total,
        "bytes/resource",
        &detail,
    );
    Ok(report)
}
