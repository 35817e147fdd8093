//! Phase 4: the store served over loopback HTTP. Read by id under concurrent load (baseline:
//! `/healthz` under the same load), and three searches repeated one at a time (baseline:
//! `/healthz` one at a time, the floor of a sequential HTTP round trip).

use std::sync::Arc;
use std::time::Instant;

use medicus_store::Store;

use super::SuiteOptions;
use crate::loader::{self, LoadResult, LoadSpec};
use crate::stats::{median, percentile};
use crate::{BenchError, Report};

/// The searches of the suite: (case name, query under the tenant base, whether it is a count).
const SEARCHES: &[(&str, &str, bool)] = &[
    (
        "search token (Condition ICD-10-GM E11.90, first page)",
        "Condition?code=http://fhir.de/CodeSystem/bfarm/icd-10-gm|E11.90",
        false,
    ),
    (
        "search token+date (Observation HbA1c, date ≥ 2024, first page)",
        "Observation?code=http://loinc.org|4548-4&date=ge2024-01-01",
        false,
    ),
    (
        "count (Observation HbA1c, _summary=count)",
        "Observation?code=http://loinc.org|4548-4&_summary=count",
        true,
    ),
];

pub fn run(
    opts: &SuiteOptions,
    store: &Arc<dyn Store>,
    patient_ids: &[String],
    report: &mut Report,
    detail: &str,
) -> Result<(), BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (addr, server) = crate::server::spawn(Arc::clone(store)).await?;
        let result = measure(opts, addr, patient_ids, report, detail).await;
        server.abort();
        result
    })
}

async fn measure(
    opts: &SuiteOptions,
    addr: std::net::SocketAddr,
    patient_ids: &[String],
    report: &mut Report,
    detail: &str,
) -> Result<(), BenchError> {
    let client = loader::client(opts.concurrency)?;
    let spec = LoadSpec {
        concurrency: opts.concurrency,
        duration: opts.load_duration,
        max_requests: None,
    };
    let load_detail = format!(
        "{detail}; {} connections, {:.0} s",
        opts.concurrency,
        opts.load_duration.as_secs_f64()
    );

    opts.say(format_args!(
        "baseline: GET /healthz, {} connections",
        opts.concurrency
    ));
    let health = format!("http://{addr}/healthz");
    let r = loader::run(&client, &spec, move |_| health.clone()).await?;
    push_load(report, "baseline: GET /healthz", &r, &load_detail)?;

    opts.say(format_args!(
        "read Patient by id, {} connections",
        opts.concurrency
    ));
    let ids: Arc<Vec<String>> = Arc::new(patient_ids.to_vec());
    let base = format!("http://{addr}/fhir/{}", super::TENANT);
    let r = loader::run(&client, &spec, move |rng| {
        format!("{base}/Patient/{}", ids[rng.below(ids.len())])
    })
    .await?;
    push_load(report, "read Patient by id", &r, &load_detail)?;

    let seq_detail = format!("{detail}; {} runs, one at a time", opts.runs);
    opts.say(format_args!("baseline: GET /healthz, one at a time"));
    let (lat, _) = repeat(&client, &format!("http://{addr}/healthz"), opts.runs, false).await?;
    push_latency(
        report,
        "baseline: GET /healthz (sequential)",
        &lat,
        &seq_detail,
    );

    for (case, query, is_count) in SEARCHES {
        opts.say(format_args!("{case}"));
        let url = format!("http://{addr}/fhir/{}/{query}", super::TENANT);
        let (lat, matched) = repeat(&client, &url, opts.runs, *is_count).await?;
        push_latency(report, case, &lat, &seq_detail);
        let med = median(&lat);
        if *is_count {
            report.push(case, "matched", matched as f64, "resources", &seq_detail);
            report.push(
                case,
                "counted per second (median run)",
                matched as f64 / med.max(1e-9),
                "resources/s",
                &seq_detail,
            );
        } else {
            report.push(
                case,
                "entries on first page",
                matched as f64,
                "resources",
                &seq_detail,
            );
        }
    }
    Ok(())
}

fn push_load(
    report: &mut Report,
    case: &str,
    r: &LoadResult,
    detail: &str,
) -> Result<(), BenchError> {
    if r.ok == 0 {
        return Err(BenchError::Unexpected(format!(
            "{case}: no successful request ({} errors, first: {})",
            r.errors,
            r.first_error.as_deref().unwrap_or("none")
        )));
    }
    report.push(case, "throughput", r.req_per_sec(), "req/s", detail);
    report.push(case, "p50 latency", r.p50_ms(), "ms", detail);
    report.push(case, "p99 latency", r.p99_ms(), "ms", detail);
    report.push(case, "errors", r.errors as f64, "requests", detail);
    Ok(())
}

fn push_latency(report: &mut Report, case: &str, latencies: &[f64], detail: &str) {
    report.push(
        case,
        "median latency",
        median(latencies) * 1e3,
        "ms",
        detail,
    );
    report.push(
        case,
        "p99 latency",
        percentile(latencies, 99.0) * 1e3,
        "ms",
        detail,
    );
}

/// Sends `url` `runs` times one after another (after one unmeasured warm-up) and returns the
/// latencies in seconds and, from the last answer, the Bundle's `total` (for a count) or the
/// number of entries (for a page).
async fn repeat(
    client: &reqwest::Client,
    url: &str,
    runs: usize,
    is_count: bool,
) -> Result<(Vec<f64>, u64), BenchError> {
    let mut latencies = Vec::with_capacity(runs);
    let mut last = Vec::new();
    for i in 0..=runs {
        let t = Instant::now();
        let resp = client.get(url).send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let elapsed = t.elapsed().as_secs_f64();
        if !status.is_success() {
            return Err(BenchError::Unexpected(format!("{url} answered {status}")));
        }
        if i > 0 {
            latencies.push(elapsed);
        }
        last = body.to_vec();
    }
    if url.ends_with("/healthz") {
        return Ok((latencies, 0));
    }
    let bundle: serde_json::Value = serde_json::from_slice(&last)
        .map_err(|e| BenchError::Unexpected(format!("{url}: not JSON: {e}")))?;
    let matched = if is_count {
        bundle["total"].as_u64().ok_or_else(|| {
            BenchError::Unexpected(format!("{url}: the count Bundle has no total"))
        })?
    } else {
        bundle["entry"].as_array().map_or(0, |e| e.len() as u64)
    };
    Ok((latencies, matched))
}
