//! Single-writer throughput of FHIR transaction Bundles over HTTP, one synthetic patient (about
//! 100 resources) per Bundle, with the same resources written straight into the store (no HTTP,
//! no validation) as the baseline.

use std::time::Instant;

use medicus_store::{Precondition, SqliteStore, Store};

use crate::fixture::Fixture;
use crate::server::BenchServer;
use crate::stats::{median, percentile};
use crate::{BenchError, Report};

#[derive(Debug, Clone)]
pub struct TransactionOptions {
    /// Number of transaction Bundles to post (one patient each).
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

/// Writes the same patients straight into a fresh store: one write session per patient.
fn store_baseline(fixture: &Fixture, n: u64) -> Result<Vec<f64>, BenchError> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    store.create_tenant("bench")?;
    let mut s = store.write_session("bench")?;
    for (rt, id, body) in fixture.reference_resources()? {
        s.put(rt, &id, body, Precondition::None)?;
    }
    s.commit()?;
    let mut rates = Vec::with_capacity(n as usize);
    for i in 0..n {
        let data = fixture.patient_resources(i)?;
        let count = data.len() as f64;
        let t = Instant::now();
        let mut s = store.write_session("bench")?;
        for (rt, id, body) in data {
            s.put(rt, &id, body, Precondition::None)?;
        }
        s.commit()?;
        rates.push(count / t.elapsed().as_secs_f64());
    }
    Ok(rates)
}

async fn post(client: &reqwest::Client, base: &str, body: String) -> Result<(), BenchError> {
    let resp = client
        .post(base)
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=minimal")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let _ = resp.bytes().await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(BenchError::Unexpected(format!(
            "transaction answered {status}"
        )))
    }
}

pub fn run(opts: &TransactionOptions) -> Result<Report, BenchError> {
    let n = opts.transactions.max(1) as u64;
    let fixture = Fixture::new(n)?;
    let baseline = store_baseline(&fixture, n)?;
    let bodies: Vec<(String, usize)> = (0..n).map(|i| fixture.patient_bundle_json(i)).collect();
    let resources_total: usize = bodies.iter().map(|(_, k)| k).sum();
    let detail = format!("{n} tx, one patient each, {resources_total} resources");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (samples, total_s, disk) = runtime.block_on(async {
        let server = BenchServer::start().await?;
        let client = reqwest::Client::new();
        post(&client, &server.base(), fixture.reference_bundle_json()).await?;
        let mut samples = Vec::with_capacity(bodies.len());
        let start = Instant::now();
        for (body, count) in bodies {
            let t = Instant::now();
            post(&client, &server.base(), body).await?;
            samples.push((t.elapsed().as_secs_f64(), count));
        }
        let total_s = start.elapsed().as_secs_f64();
        Ok::<_, BenchError>((samples, total_s, disk_bytes(server.data_dir())))
    })?;

    let latencies: Vec<f64> = samples.iter().map(|(s, _)| *s).collect();
    let rates: Vec<f64> = samples.iter().map(|(s, k)| *k as f64 / s).collect();
    let total = resources_total as f64;
    let mut report = Report::default();
    let case = "transaction (HTTP, validated)";
    report.push(
        case,
        "median throughput",
        median(&rates),
        "resources/s",
        &detail,
    );
    report.push(
        case,
        "overall throughput",
        total / total_s,
        "resources/s",
        &detail,
    );
    report.push(case, "p50 latency", median(&latencies) * 1e3, "ms", &detail);
    report.push(
        case,
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
        case,
        "disk incl. WAL",
        disk as f64 / total,
        "bytes/resource",
        &detail,
    );
    Ok(report)
}
