//! `$export` throughput: a store filled with the synthetic MII pilot (the bench fixture) is
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

use crate::fixture::Fixture;
use crate::rss::PeakTracker;
use crate::{BenchError, Report};

#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Resources to store and export (about 100 per synthetic patient).
    pub resources: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { resources: 200_000 }
    }
}

const TENANT: &str = "bench";

/// The fixture's reference data and `patients` patients, 20 patients (about 2,000 resources) per
/// write session, like an import batch. Returns the number of resources, and of those the
/// shared ones (Organizations, Medications), which are in no patient's compartment.
fn load(
    store: &SqliteStore,
    fixture: &Fixture,
    patients: u64,
) -> Result<(usize, usize), BenchError> {
    let mut s = store.write_session(TENANT)?;
    let mut n = 0;
    for (rt, id, body) in fixture.reference_resources()? {
        s.put(rt, &id, body, Precondition::None)?;
        n += 1;
    }
    s.commit()?;
    let shared = n;
    for first in (0..patients).step_by(20) {
        let mut s = store.write_session(TENANT)?;
        for i in first..(first + 20).min(patients) {
            for (rt, id, body) in fixture.patient_resources(i)? {
                s.put(rt, &id, body, Precondition::None)?;
                n += 1;
            }
        }
        s.commit()?;
    }
    Ok((n, shared))
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
    let mut rss = PeakTracker::default();
    rss.start_phase();
    let before = rss.current_mib();
    let t = Instant::now();
    let manifest = export(store, &job, &request, &settings)
        .map_err(|e| BenchError::Unexpected(e.to_string()))?;
    let seconds = t.elapsed().as_secs_f64();
    let peak_growth_mb = rss.phase_peak_mib() - before;
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
        peak_growth_mb,
    })
}

/// The same system export through `search` (parsed bodies) and `serde_json` serialisation.
fn parsed_baseline(store: &SqliteStore, dir: &std::path::Path) -> Result<Run, BenchError> {
    let mut session = store.read_session(TENANT)?;
    let mut rss = PeakTracker::default();
    rss.start_phase();
    let before = rss.current_mib();
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
    Ok(Run {
        resources,
        seconds,
        bytes: 0,
        peak_growth_mb: rss.phase_peak_mib() - before,
    })
}

pub fn run(opts: &ExportOptions) -> Result<Report, BenchError> {
    let patients = (opts.resources as u64).div_ceil(100).max(1);
    let fixture = Fixture::new(patients)?;
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("db"))?;
    store.create_tenant(TENANT)?;
    let t = Instant::now();
    let (n, shared) = load(&store, &fixture, patients)?;
    let load_s = t.elapsed().as_secs_f64();
    let detail = format!("{n} resources of {patients} synthetic patients");
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
        let expected = match level {
            ExportLevel::Patient => n - shared,
            _ => n,
        };
        let r = run_export(&store, &jobs, level)?;
        if r.resources != expected as u64 {
            return Err(BenchError::Unexpected(format!(
                "{case} exported {} of {expected} resources",
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
