//! `medicus bench cohort`: the feasibility engine on synthetic data. Generates patients, imports
//! them into an SQLite store, builds the cohort index from the store (facts/s, memory), runs a
//! one-criterion and a five-criterion query many times (p50/p95), checks the exact counts
//! against the reference evaluator's scan of the NDJSON, measures the snapshot and how fast a
//! new write counts. Optionally the same queries in DuckDB over Parquet (`--duckdb PYTHON`, a
//! Python with the `duckdb` module, e.g. from `python3 -m venv v && v/bin/pip install duckdb`;
//! DuckDB is not a dependency of medicus).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use medicus_bulk::import::{ImportOptions, Importer, NoProgress};
use medicus_cohort::reference::ReferenceData;
use medicus_cohort::{CohortEngine, MiiBroadConsent, Plan, parse_query};
use medicus_store::{Precondition, SqliteStore, Store};
use medicus_synth::{GeneratorConfig, write_ndjson};

use crate::rss::PeakTracker;
use crate::{BenchError, Report};

const TENANT: &str = "default";

/// The queries: (name, text form, DuckDB SQL over the Parquet views).
pub const ONE: (&str, &str) = ("1 criterion", "icd:E11");
pub const FIVE: (&str, &str) = (
    "5 criteria",
    "icd:E11 AND loinc:4548-4=6.5..20[%]@2020-01-01..2025-12-31 AND (atc:A10B OR atc:A10A) AND gender:female,male AND NOT ops:8-93*",
);

#[derive(Debug, Clone)]
pub struct CohortOptions {
    pub patients: u64,
    pub runs: usize,
    pub work_dir: Option<PathBuf>,
    /// A Python interpreter with `duckdb` for the comparison.
    pub duckdb_python: Option<PathBuf>,
    /// Also check the exact counts against the reference evaluator (a full scan of the NDJSON).
    pub verify: bool,
}

impl Default for CohortOptions {
    fn default() -> Self {
        CohortOptions {
            patients: 10_000,
            runs: 200,
            work_dir: None,
            duckdb_python: None,
            verify: true,
        }
    }
}

fn say(msg: std::fmt::Arguments) {
    eprintln!("bench cohort: {msg}");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn time_query(engine: &CohortEngine, plan: &Plan, today: i32, runs: usize) -> (u64, Vec<f64>) {
    let mut times = Vec::with_capacity(runs);
    let mut count = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        count = engine.count(TENANT, plan, today);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (count, times)
}

pub fn run(opts: &CohortOptions) -> Result<Report, BenchError> {
    let tmp;
    let work: PathBuf = match &opts.work_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let ndjson = work.join("ndjson");
    let data = work.join("store");
    let mut report = Report::default();
    let size = format!("{} patients", opts.patients);

    let config = GeneratorConfig {
        patients: opts.patients,
        seed: 42,
        ..GeneratorConfig::default()
    };
    if !ndjson.join("Patient.ndjson").exists() {
        say(format_args!("generating {size}"));
        write_ndjson(&config, &ndjson, |_| {})?;
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data)?);
    if store.create_tenant(TENANT)? {
        let files = medicus_bulk::import::expand(std::slice::from_ref(&ndjson))?;
        say(format_args!("importing {} files", files.len()));
        let t = Instant::now();
        let importer = Importer::new(Arc::clone(&store), TENANT, ImportOptions::default());
        let summary = importer.import_files(&files, &NoProgress)?;
        say(format_args!(
            "imported {} resources in {:.1} s",
            summary.resources,
            t.elapsed().as_secs_f64()
        ));
    }

    let mut rss = PeakTracker::default();
    rss.start_phase();
    let before = rss.current_mib();
    let eligibility = Arc::new(MiiBroadConsent::default());
    let engine = CohortEngine::new(eligibility.clone());
    say(format_args!("building the cohort index from the store"));
    let build = engine
        .build(&*store)
        .map_err(|e| BenchError::Unexpected(e.to_string()))?;
    let after = rss.current_mib();
    let stats = engine.stats(TENANT).unwrap_or_default();
    let detail = format!(
        "{size}, {} resources read, {} facts, {} codes",
        build.resources, stats.facts, stats.keys
    );
    report.push(
        "index build from the store",
        "facts/s",
        build.facts as f64 / build.seconds.max(1e-9),
        "facts/s",
        &detail,
    );
    report.push(
        "index build from the store",
        "resources/s",
        build.resources as f64 / build.seconds.max(1e-9),
        "res/s",
        &detail,
    );
    report.push(
        "index build from the store",
        "time",
        build.seconds,
        "s",
        &detail,
    );
    report.push(
        "memory",
        "RSS growth of the build",
        after - before,
        "MiB",
        &detail,
    );

    let today = medicus_cohort::date::today();
    let limits = medicus_cohort::Limits::default();
    let mut counts = Vec::new();
    for (name, text) in [ONE, FIVE] {
        let plan = parse_query(text, limits).map_err(|e| BenchError::Invalid(e.to_string()))?;
        let (count, times) = time_query(&engine, &plan, today, opts.runs);
        let d = format!(
            "{size}; `{text}`; exact count {count}; {} runs",
            times.len()
        );
        report.push(
            &format!("query, {name}"),
            "p50",
            percentile(&times, 0.5),
            "ms",
            &d,
        );
        report.push(
            &format!("query, {name}"),
            "p95",
            percentile(&times, 0.95),
            "ms",
            &d,
        );
        counts.push((name, text, plan, count));
    }

    if opts.verify {
        say(format_args!("checking counts against the reference scan"));
        let t = Instant::now();
        let reference =
            ReferenceData::load_dir(&ndjson).map_err(|e| BenchError::Unexpected(e.to_string()))?;
        for (name, text, plan, count) in &counts {
            let want = reference.count(plan, today, &*eligibility);
            if want != *count {
                return Err(BenchError::Unexpected(format!(
                    "{name} `{text}`: engine {count}, reference {want}"
                )));
            }
        }
        report.note(format!(
            "Exact counts equal the reference evaluator's NDJSON scan ({:.1} s for the scan).",
            t.elapsed().as_secs_f64()
        ));
    }

    // Snapshot: write, size, load.
    let snap = medicus_cohort::snapshot_path(&work);
    let t = Instant::now();
    engine
        .save_snapshot(&snap)
        .map_err(|e| BenchError::Unexpected(e.to_string()))?;
    let save_s = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&snap).map(|m| m.len()).unwrap_or(0);
    let restarted = CohortEngine::new(eligibility.clone());
    let t = Instant::now();
    restarted
        .load_snapshot(&snap)
        .map_err(|e| BenchError::Unexpected(e.to_string()))?;
    let load_s = t.elapsed().as_secs_f64();
    report.push(
        "snapshot",
        "save",
        save_s,
        "s",
        &format!("{:.1} MB", bytes as f64 / 1e6),
    );
    report.push(
        "snapshot",
        "load (restart)",
        load_s,
        "s",
        &format!("{:.1} MB", bytes as f64 / 1e6),
    );
    drop(restarted);

    // A new diagnosis counts after one catch-up of the change feed.
    let new_code = medicus_cohort::parse_query("icd:Z99.9", limits)
        .map_err(|e| BenchError::Invalid(e.to_string()))?;
    let before_count = engine.count(TENANT, &new_code, today);
    let patient = first_consented_patient(&ndjson)?;
    let t = Instant::now();
    {
        let mut s = store.write_session(TENANT)?;
        s.put(
            "Condition",
            "bench-cohort-new",
            serde_json::json!({
                "resourceType": "Condition",
                "code": {"coding": [{"system": "http://fhir.de/CodeSystem/bfarm/icd-10-gm", "code": "Z99.9"}]},
                "subject": {"reference": format!("Patient/{patient}")},
                "recordedDate": "2025-01-01"
            }),
            Precondition::None,
        )?;
        s.commit()?;
    }
    engine
        .catch_up(&*store)
        .map_err(|e| BenchError::Unexpected(e.to_string()))?;
    let visible_ms = t.elapsed().as_secs_f64() * 1000.0;
    let after_count = engine.count(TENANT, &new_code, today);
    report.push(
        "change feed",
        "write to counted",
        visible_ms,
        "ms",
        &format!("commit + one catch-up; count {before_count} → {after_count}"),
    );

    if let Some(python) = &opts.duckdb_python {
        duckdb(
            python,
            &ndjson,
            &work,
            &counts,
            opts.runs.min(50),
            &mut report,
        )?;
    }
    report.note(format!(
        "Queries: 1 criterion `{}`; 5 criteria `{}`.",
        ONE.1, FIVE.1
    ));
    Ok(report)
}

fn first_consented_patient(ndjson: &Path) -> Result<String, BenchError> {
    use std::io::BufRead;
    let f = std::fs::File::open(ndjson.join("Consent.ndjson"))?;
    for line in std::io::BufReader::new(f).lines() {
        let v: serde_json::Value =
            serde_json::from_str(&line?).map_err(|e| BenchError::Unexpected(e.to_string()))?;
        if let Some(r) = v["patient"]["reference"].as_str()
            && let Some(id) = r.strip_prefix("Patient/")
        {
            return Ok(id.to_owned());
        }
    }
    Err(BenchError::Unexpected("no Consent in the data".into()))
}

/// The same two queries in DuckDB over the data as Parquet, without the consent mask (DuckDB
/// gets the easier job); reports its p50 and the ratio.
fn duckdb(
    python: &Path,
    ndjson: &Path,
    work: &Path,
    counts: &[(&str, &str, Plan, u64)],
    runs: usize,
    report: &mut Report,
) -> Result<(), BenchError> {
    let script = work.join("duckdb_cohort.py");
    std::fs::write(&script, DUCKDB_SCRIPT)?;
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(ndjson)
        .arg(work.join("parquet"))
        .arg(runs.to_string())
        .output()?;
    if !out.status.success() {
        return Err(BenchError::Unexpected(format!(
            "duckdb script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        // "<name>\t<p50 ms>\t<count>" or "export\t<seconds>"
        let parts: Vec<&str> = line.split('\t').collect();
        match parts.as_slice() {
            ["export", s] => {
                let s: f64 = s.parse().unwrap_or(0.0);
                report.push("DuckDB", "NDJSON → Parquet", s, "s", "");
            }
            [name, p50, count] => {
                let p50: f64 = p50.parse().unwrap_or(0.0);
                let ours = report
                    .value(&format!("query, {name}"), "p50", "")
                    .unwrap_or(0.0);
                report.push(
                    &format!("DuckDB, {name}"),
                    "p50",
                    p50,
                    "ms",
                    &format!(
                        "count {count} (no consent mask); DuckDB / medicus = {:.0}×",
                        p50 / ours.max(1e-9)
                    ),
                );
                let _ = counts;
            }
            _ => {}
        }
    }
    Ok(())
}

const DUCKDB_SCRIPT: &str = r#"
import sys, time, os, duckdb
src, out, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out, exist_ok=True)
con = duckdb.connect()
t = time.time()
def export(name, sql):
    path = os.path.join(out, name + ".parquet")
    if not os.path.exists(path):
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT PARQUET)")
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
j = lambda t: f"read_json_auto('{src}/{t}.ndjson', maximum_object_size=100000000, format='newline_delimited')"
export("patient", f"SELECT id, gender, CAST(substr(CAST(birthDate AS VARCHAR),1,10) AS DATE) AS birth FROM {j('Patient')}")
export("condition", f"SELECT split_part(subject.reference,'/',2) AS pid, code.coding[1].code AS code, CAST(substr(CAST(onsetDateTime AS VARCHAR),1,10) AS DATE) AS onset FROM {j('Condition')}")
export("procedure", f"SELECT split_part(subject.reference,'/',2) AS pid, code.coding[1].code AS code FROM {j('Procedure')}")
export("obs", f"SELECT split_part(subject.reference,'/',2) AS pid, code.coding[1].code AS code, valueQuantity.value AS v, valueQuantity.code AS unit, CAST(substr(CAST(effectiveDateTime AS VARCHAR),1,10) AS DATE) AS eff FROM {j('Observation')}")
export("med", f"SELECT id, code.coding[1].code AS atc FROM {j('Medication')}")
export("medstmt", f"SELECT split_part(subject.reference,'/',2) AS pid, split_part(medicationReference.reference,'/',2) AS mref FROM {j('MedicationStatement')}")
export("medadm", f"SELECT split_part(subject.reference,'/',2) AS pid, split_part(medicationReference.reference,'/',2) AS mref FROM {j('MedicationAdministration')}")
print(f"export\t{time.time()-t:.2f}")
q1 = "SELECT count(DISTINCT pid) FROM condition WHERE code LIKE 'E11%'"
q5 = """
SELECT count(*) FROM patient p WHERE p.gender IN ('female','male')
 AND EXISTS (SELECT 1 FROM condition c WHERE c.pid = p.id AND c.code LIKE 'E11%')
 AND EXISTS (SELECT 1 FROM obs o WHERE o.pid = p.id AND o.code = '4548-4' AND o.v BETWEEN 6.5 AND 20 AND o.unit = '%'
             AND o.eff BETWEEN DATE '2020-01-01' AND DATE '2025-12-31')
 AND EXISTS (SELECT 1 FROM (SELECT pid, mref FROM medstmt UNION ALL SELECT pid, mref FROM medadm) s JOIN med m ON m.id = s.mref
             WHERE s.pid = p.id AND (m.atc LIKE 'A10B%' OR m.atc LIKE 'A10A%'))
 AND NOT EXISTS (SELECT 1 FROM procedure x WHERE x.pid = p.id AND x.code LIKE '8-93%')
"""
for name, q in (("1 criterion", q1), ("5 criteria", q5)):
    times = []
    for _ in range(runs):
        t = time.perf_counter(); n = con.execute(q).fetchone()[0]; times.append((time.perf_counter()-t)*1000)
    times.sort()
    print(f"{name}\t{times[len(times)//2]:.3f}\t{n}")
"#;
