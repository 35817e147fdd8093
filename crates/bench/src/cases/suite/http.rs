//! Phase 4: the store served over loopback HTTP. Read by id under concurrent load (baseline:
//! `/healthz` under the same load), and three searches repeated one at a time (baseline:
//! `/healthz` one at a time, the floor of a sequential HTTP round trip).

use std::sync::Arc;
use std::time::Instant;

use medicus_store::Store;
use medicus_synth::catalog::loinc;

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
    let read_base = format!("http://{addr}/fhir/{}", super::TENANT);
    let r = loader::run(&client, &spec, move |rng| {
        format!("{read_base}/Patient/{}", ids[rng.below(ids.len())])
    })
    .await?;
    push_load(report, "read Patient by id", &r, &load_detail)?;

    let seq_detail = format!("{detail}; {} runs, one at a time", opts.runs);
    opts.say(format_args!("baseline: GET /healthz, one at a time"));
    let health = format!("http://{addr}/healthz");
    let lat = repeat(&client, &health, opts.runs).await?.latencies;
    push_latency(
        report,
        "baseline: GET /healthz (sequential)",
        &lat,
        &seq_detail,
    );

    let base = format!("http://{addr}/fhir/{}", super::TENANT);
    for (case, query, is_count) in SEARCHES {
        search_case(
            opts,
            &client,
            &base,
            case,
            query,
            *is_count,
            report,
            &seq_detail,
        )
        .await?;
    }

    let resources = patient_ids.len() as u64 * super::RESOURCES_PER_PATIENT;
    let picked = pick(opts, &client, &base, resources).await?;
    let code = format!("code={}|{}", loinc::SYSTEM, picked.code);
    let frequent = format!(
        "frequent lab code LOINC {} ({} matches)",
        picked.code, picked.matched
    );

    search_case(
        opts,
        &client,
        &base,
        &format!(
            "search token+date+patient (Observation LOINC {}, date ≥ 2020, one subject)",
            picked.code
        ),
        &format!(
            "Observation?{code}&date=ge2020-01-01&subject=Patient/{}",
            picked.patient
        ),
        false,
        report,
        &seq_detail,
    )
    .await?;
    search_case(
        opts,
        &client,
        &base,
        &format!("count ({frequent}, _summary=count)"),
        &format!("Observation?{code}&_summary=count"),
        true,
        report,
        &seq_detail,
    )
    .await?;
    search_case(
        opts,
        &client,
        &base,
        &format!("sort ({frequent}, _sort=-date, first page)"),
        &format!("Observation?{code}&_sort=-date"),
        false,
        report,
        &seq_detail,
    )
    .await?;

    let plain = search_case(
        opts,
        &client,
        &base,
        &format!("plain page ({frequent}, first page)"),
        &format!("Observation?{code}"),
        false,
        report,
        &seq_detail,
    )
    .await?;
    let case = format!("_include ({frequent}, _include=Observation:subject, first page)");
    let with = search_case(
        opts,
        &client,
        &base,
        &case,
        &format!("Observation?{code}&_include=Observation:subject"),
        false,
        report,
        &seq_detail,
    )
    .await?;
    include_ratios(report, &case, plain, with, &seq_detail);

    let plain = search_case(
        opts,
        &client,
        &base,
        "plain page (Patient gender=female, first page)",
        "Patient?gender=female",
        false,
        report,
        &seq_detail,
    )
    .await?;
    let case = "_revinclude (Patient gender=female, _revinclude=Observation:subject, first page)";
    let with = search_case(
        opts,
        &client,
        &base,
        case,
        "Patient?gender=female&_revinclude=Observation:subject",
        false,
        report,
        &seq_detail,
    )
    .await?;
    include_ratios(report, case, plain, with, &seq_detail);
    Ok(())
}

/// An include page against its plain page: the ratio of the medians, and of the median time
/// per returned resource (an `_revinclude` page can carry up to 1000 included resources for 50
/// matches, so the first ratio mostly counts resources).
fn include_ratios(
    report: &mut Report,
    case: &str,
    (plain, plain_n): (f64, usize),
    (with, with_n): (f64, usize),
    detail: &str,
) {
    report.push(
        case,
        "median vs. plain page",
        with / plain.max(1e-9),
        "ratio",
        detail,
    );
    let per = |t: f64, n: usize| t / n.max(1) as f64;
    report.push(
        case,
        "median per returned resource vs. plain page",
        per(with, with_n) / per(plain, plain_n).max(1e-12),
        "ratio",
        detail,
    );
}

/// Query values picked from the generated data, so every query has matches.
struct Picked {
    /// The LOINC code of the catalogue whose count is nearest a tenth of all resources (about
    /// 1M at 10M resources).
    code: &'static str,
    matched: u64,
    /// The subject of the first match of that code with a date from 2020 on.
    patient: String,
}

/// Asks the server for the count of every lab code of the synthetic catalogue and picks the one
/// nearest a tenth of the resources (by ratio), then a patient with such results since 2020.
/// The counts are deterministic for a size and seed, so is the pick.
async fn pick(
    opts: &SuiteOptions,
    client: &reqwest::Client,
    base: &str,
    resources: u64,
) -> Result<Picked, BenchError> {
    let target = (resources / 10).max(1) as f64;
    let mut best: Option<(&'static str, u64)> = None;
    for test in loinc::TESTS {
        let url = format!(
            "{base}/Observation?code={}|{}&_summary=count",
            loinc::SYSTEM,
            test.loinc
        );
        let n = bundle(&get(client, &url).await?, &url)?["total"]
            .as_u64()
            .unwrap_or(0);
        let distance = |n: u64| (n.max(1) as f64 / target).ln().abs();
        if n > 0 && best.is_none_or(|(_, b)| distance(n) < distance(b)) {
            best = Some((test.loinc, n));
        }
    }
    let Some((code, matched)) = best else {
        return Err(BenchError::Unexpected(
            "no lab code of the catalogue has an Observation".into(),
        ));
    };
    let url = format!(
        "{base}/Observation?code={}|{code}&date=ge2020-01-01&_count=1",
        loinc::SYSTEM
    );
    let page = bundle(&get(client, &url).await?, &url)?;
    // A tiny data set may have no such match: then any patient (the case reports 0 matches).
    let patient = page["entry"][0]["resource"]["subject"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Patient/"))
        .map_or_else(|| "pat-0-0".to_owned(), str::to_owned);
    opts.say(format_args!(
        "picked LOINC {code} ({matched} Observations, target {target:.0}) and Patient/{patient}"
    ));
    Ok(Picked {
        code,
        matched,
        patient,
    })
}

/// One search case: `runs` timed requests one at a time after a warm-up, median and p99, the
/// page's matches and included resources (or the count), and the plan of one `_explain=true`
/// request as a note with the query. Returns the median in seconds and the resources of the
/// page (matches and included).
#[allow(clippy::too_many_arguments)] // one call site per case; a struct would only rename them
async fn search_case(
    opts: &SuiteOptions,
    client: &reqwest::Client,
    base: &str,
    case: &str,
    query: &str,
    is_count: bool,
    report: &mut Report,
    detail: &str,
) -> Result<(f64, usize), BenchError> {
    opts.say(format_args!("{case}: {query}"));
    let url = format!("{base}/{query}");
    let r = repeat(client, &url, opts.runs).await?;
    push_latency(report, case, &r.latencies, detail);
    let med = median(&r.latencies);
    let last = bundle(&r.last, &url)?;
    let mut returned = 0;
    if is_count {
        let matched = last["total"].as_u64().ok_or_else(|| {
            BenchError::Unexpected(format!("{url}: the count Bundle has no total"))
        })?;
        report.push(case, "matched", matched as f64, "resources", detail);
        report.push(
            case,
            "counted per second (median run)",
            matched as f64 / med.max(1e-9),
            "resources/s",
            detail,
        );
    } else {
        let (matches, included) = entries(&last);
        // A tiny data set may have no match; the row says 0 and the latency still counts.
        if matches == 0 {
            opts.say(format_args!("{case}: no match"));
        }
        report.push(
            case,
            "entries on first page",
            matches as f64,
            "resources",
            detail,
        );
        if included > 0 {
            report.push(case, "included", included as f64, "resources", detail);
        }
        returned = matches + included;
    }
    let sep = if query.contains('?') { '&' } else { '?' };
    let explain_url = format!("{url}{sep}_explain=true");
    let plan = plan_of(&bundle(&get(client, &explain_url).await?, &explain_url)?);
    opts.say(format_args!(
        "  plan: {}",
        plan.as_deref().unwrap_or("(none)")
    ));
    report.note(format!(
        "{case}: `{query}` — plan: {}",
        plan.as_deref().unwrap_or("(not reported)")
    ));
    Ok((med, returned))
}

/// Matched and included entries of a search Bundle.
fn entries(bundle: &serde_json::Value) -> (usize, usize) {
    let Some(entries) = bundle["entry"].as_array() else {
        return (0, 0);
    };
    let mode = |m: &str| {
        entries
            .iter()
            .filter(|e| e["search"]["mode"].as_str() == Some(m))
            .count()
    };
    (mode("match"), mode("include"))
}

/// The planner's description that the server puts in an OperationOutcome for `_explain=true`.
fn plan_of(bundle: &serde_json::Value) -> Option<String> {
    bundle["entry"]
        .as_array()?
        .iter()
        .filter(|e| e["search"]["mode"].as_str() == Some("outcome"))
        .filter_map(|e| e["resource"]["issue"].as_array())
        .flatten()
        .filter_map(|i| i["diagnostics"].as_str())
        .find_map(|d| d.strip_prefix("plan: "))
        .map(str::to_owned)
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

/// Latencies of repeated requests and the last answer's body.
struct Repeated {
    latencies: Vec<f64>,
    last: Vec<u8>,
}

/// Sends `url` `runs` times one after another after one unmeasured warm-up; latencies in
/// seconds.
async fn repeat(client: &reqwest::Client, url: &str, runs: usize) -> Result<Repeated, BenchError> {
    let mut latencies = Vec::with_capacity(runs);
    let mut last = Vec::new();
    for i in 0..=runs {
        let t = Instant::now();
        let body = get(client, url).await?;
        let elapsed = t.elapsed().as_secs_f64();
        if i > 0 {
            latencies.push(elapsed);
        }
        last = body;
    }
    Ok(Repeated { latencies, last })
}

/// The body of a successful GET.
async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, BenchError> {
    let resp = client.get(url).send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        return Err(BenchError::Unexpected(format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(500)])
        )));
    }
    Ok(body.to_vec())
}

fn bundle(body: &[u8], url: &str) -> Result<serde_json::Value, BenchError> {
    serde_json::from_slice(body)
        .map_err(|e| BenchError::Unexpected(format!("{url}: not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_are_counted_by_search_mode_and_the_plan_is_found() {
        let page = json!({
            "resourceType": "Bundle",
            "entry": [
                { "search": { "mode": "match" } },
                { "search": { "mode": "match" } },
                { "search": { "mode": "include" } },
                { "resource": { "resourceType": "OperationOutcome", "issue": [
                    { "diagnostics": "ignored unknown or unsupported parameters: x" }
                ] }, "search": { "mode": "outcome" } },
                { "resource": { "resourceType": "OperationOutcome", "issue": [
                    { "diagnostics": "plan: drive: code (12 rows)" }
                ] }, "search": { "mode": "outcome" } },
            ],
        });
        assert_eq!(entries(&page), (2, 1));
        assert_eq!(plan_of(&page).as_deref(), Some("drive: code (12 rows)"));
        let empty = json!({ "resourceType": "Bundle", "total": 3 });
        assert_eq!(entries(&empty), (0, 0));
        assert_eq!(plan_of(&empty), None);
    }

    #[test]
    fn include_ratios_compare_medians_and_time_per_resource() {
        let mut report = Report::default();
        include_ratios(&mut report, "c", (0.002, 50), (0.008, 1050), "d");
        let value = |metric: &str| {
            report
                .rows
                .iter()
                .find(|r| r.metric == metric)
                .map(|r| r.value)
        };
        let whole = value("median vs. plain page").expect("ratio");
        assert!((whole - 4.0).abs() < 1e-9, "{whole}");
        let per = value("median per returned resource vs. plain page").expect("ratio");
        assert!((per - 4.0 * 50.0 / 1050.0).abs() < 1e-9, "{per}");
    }
}
