//! `$export` throughput: a store filled with MII-shaped resources (the transaction fixture) is
//! exported to NDJSON by the bulk engine, at system level and at Patient level, with the peak
//! RSS growth of each run. Baseline: the same system export through the ordinary parsed
//! search API (decompress, parse to `Value`, serialise again), which is what the raw-bytes path
//! (`ReadSession::search_raw`) avoids.

use std::io::{BufWriter, Write};
use std::time::Instant;

use medicus_bulk::export::{ExportLevel, ExportRequest, ExportSettings, export};
use medicus_bulk::jobs::{JobKind, JobRegistry};
use medicus_store::search::parse_search;
use medicus_store::{Precondition, SqliteStore, Store};

use crate::fixture::{RESOURCES_PER_BUNDLE, resources};
use crate::{BenchError, Report};

#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Resources to store and export (rounded up to a multiple of 100).
    pub resources: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { resources: 200_000 }
    }
}

const TENANT: &str = "bench";

/// A `VmHWM`/`VmRSS` line of `/proc/self/status`, in kB (0 where there is no procfs).
fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets the peak-RSS mark (Linux: `echo 5 > /proc/self/clear_refs`) and returns the current
/// RSS, so that `VmHWM` afterwards is the peak of what runs next.
fn reset_peak_kb() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    proc_status_kb("VmRSS:")
}

fn load(store: &SqliteStore, bundles: usize) -> Result<(), BenchError> {
    // 20 bundles (2,000 resources) per write session: like an import batch.
    for chunk in (0..bundles).collect::<Vec<_>>().chunks(20) {
        let mut s = store.write_session(TENANT)?;
        for &seed in chunk {
            for (rt, id, body) in resources(seed) {
                s.put(rt, &id, body, Precondition::None)?;
            }
        }
        s.commit()?;
    }
    Ok(())
}

struct Run {
    resources: u64,
    seconds: f64,
    bytes: u64,
    peak_growth_mb: f64,
}

fn run_export(
    store: &SqliteStore,
    jobs: &JobRegistry,
    level: ExportLevel,
) -> Result<Run, BenchError> {
    let request = ExportRequest::new(level);
    let job = jobs.create(TENANT, JobKind::Export, "bench")?;
    let settings = ExportSettings::new("http://bench/fhir/bench/$export-file/x");
    let rss = reset_peak_kb();
    let t = Instant::now();
    let manifest = export(store, &job, &request, &settings)
        .map_err(|e| BenchError::Unexpected(e.to_string()))?;
    let seconds = t.elapsed().as_secs_f64();
    let peak = proc_status_kb("VmHWM:");
    let resources = manifest["output"]
        .as_array()
        .map(|o| o.iter().filter_map(|f| f["count"].as_u64()).sum())
        .unwrap_or(0);
    let bytes = std::fs::read_dir(&job.dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let _ = std::fs::remove_dir_all(&job.dir);
    Ok(Run {
        resources,
        seconds,
        bytes,
        peak_growth_mb: peak.saturating_sub(rss) as f64 / 1024.0,
    })
}

/// The same system export through `search` (parsed bodies) and `serde_json` serialisation.
fn parsed_baseline(store: &SqliteStore, dir: &std::path::Path) -> Result<Run, BenchError> {
    let mut session = store.read_session(TENANT)?;
    let rss = reset_peak_kb();
    let t = Instant::now();
    let mut resources = 0u64;
    for rt in medicus_fhir::r4().resource_types() {
        let mut q = parse_search(medicus_fhir::r4(), Some(rt), &[])?;
        q.count = 1000;
        q.total = false;
        let mut out: Option<BufWriter<std::fs::File>> = None;
        loop {
            let page = session.search(Some(rt), &q)?;
            for r in &page.resources {
                let Some(body) = &r.body else { continue };
                let w = match &mut out {
                    Some(w) => w,
                    None => out.insert(BufWriter::with_capacity(
                        256 * 1024,
                        std::fs::File::create(dir.join(format!("{rt}.ndjson")))?,
                    )),
                };
                serde_json::to_writer(&mut *w, body)
                    .map_err(|e| BenchError::Unexpected(e.to_string()))?;
                w.write_all(b"\n")?;
                resources += 1;
            }
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        if let Some(mut w) = out {
            w.flush()?;
        }
    }
    let seconds = t.elapsed().as_secs_f64();
    let peak = proc_status_kb("VmHWM:");
    Ok(Run {
        resources,
        seconds,
        bytes: 0,
        peak_growth_mb: peak.saturating_sub(rss) as f64 / 1024.0,
    })
}

pub fn run(opts: &ExportOptions) -> Result<Report, BenchError> {
    let bundles = opts.resources.div_ceil(RESOURCES_PER_BUNDLE).max(1);
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("db"))?;
    store.create_tenant(TENANT)?;
    let t = Instant::now();
    load(&store, bundles)?;
    let load_s = t.elapsed().as_secs_f64();
    let n = bundles * RESOURCES_PER_BUNDLE;
    let detail =
        format!("{n} resources (10% Patient, 10% Encounter, 30% Condition, 50% Observation)");
    let jobs = JobRegistry::new(dir.path().join("bulk"));

    let mut report = Report::default();
    report.push(
        "load (store put, indexed)",
        "throughput",
        n as f64 / load_s,
        "resources/s",
        &detail,
    );
    for (case, level) in [
        ("$export system (raw bodies)", ExportLevel::System),
        ("$export Patient (compartment)", ExportLevel::Patient),
    ] {
        let r = run_export(&store, &jobs, level)?;
        if r.resources != n as u64 {
            return Err(BenchError::Unexpected(format!(
                "{case} exported {} of {n} resources",
                r.resources
            )));
        }
        report.push(
            case,
            "throughput",
            r.resources as f64 / r.seconds,
            "resources/s",
            &detail,
        );
        report.push(
            case,
            "output",
            r.bytes as f64 / r.seconds / 1e6,
            "MB/s",
            &detail,
        );
        report.push(case, "peak RSS growth", r.peak_growth_mb, "MB", &detail);
    }
    let out = dir.path().join("baseline");
    std::fs::create_dir_all(&out)?;
    let r = parsed_baseline(&store, &out)?;
    let case = "baseline: parsed search + serialise";
    report.push(
        case,
        "throughput",
        r.resources as f64 / r.seconds,
        "resources/s",
        &detail,
    );
    report.push(case, "peak RSS growth", r.peak_growth_mb, "MB", &detail);
    Ok(report)
}
