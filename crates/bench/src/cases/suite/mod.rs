//! The whole suite in one invocation (`medicus bench suite --resources N`): generate synthetic
//! MII-shaped NDJSON, import it with full validation and indexing into a fresh store, measure the
//! disk per resource, serve the store over loopback HTTP and measure read by id, a token search,
//! a token+date search and a count, export it, and record peak RSS per phase.
//!
//! Every family has a baseline measured in the same run (NDJSON parse for import, `/healthz`
//! for HTTP), because these machines are small and shared: absolute numbers move with the
//! neighbours, ratios much less.

mod data;
mod http;
mod storage;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::rss::PeakTracker;
use crate::{BenchError, Report};

/// The synthetic generator's mean resources per patient (its default).
pub const RESOURCES_PER_PATIENT: u64 = 100;
/// Smallest data size: one patient's worth, so every phase has something to measure.
pub const MIN_RESOURCES: u64 = 100;
/// Largest data size: far beyond what one disk of these machines holds.
pub const MAX_RESOURCES: u64 = 1_000_000_000;

/// The tenant the data is imported into.
const TENANT: &str = "bench";

#[derive(Debug, Clone, PartialEq)]
pub struct SuiteOptions {
    /// Target number of resources; the generator produces about this many (±5 %).
    pub resources: u64,
    /// Concurrent connections of the HTTP loader.
    pub concurrency: usize,
    /// Duration of each HTTP load run (read by id and its `/healthz` baseline).
    pub load_duration: Duration,
    /// Repetitions of each search (median and p99 are reported).
    pub runs: usize,
    /// Generator seed.
    pub seed: u64,
    /// Where the temporary work directory is created (default: the system temp dir).
    pub work_dir: Option<PathBuf>,
    /// A kept data directory instead of a temporary one: the first run generates and imports
    /// into it and keeps the store (the NDJSON is removed after the import, only the Patient
    /// ids stay); later runs with the same size and seed skip generate and import.
    pub data_dir: Option<PathBuf>,
    /// Skip the `$export` phase (at 10M it writes as much again as the NDJSON).
    pub skip_export: bool,
    /// One line per phase (and bars on a terminal) on stderr.
    pub progress: bool,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            resources: 100_000,
            concurrency: 64,
            load_duration: Duration::from_secs(10),
            runs: 30,
            seed: 42,
            work_dir: None,
            data_dir: None,
            skip_export: false,
            progress: true,
        }
    }
}

impl SuiteOptions {
    /// Checks the data size and the load settings.
    pub fn validate(&self) -> Result<(), BenchError> {
        if !(MIN_RESOURCES..=MAX_RESOURCES).contains(&self.resources) {
            return Err(BenchError::Invalid(format!(
                "--resources must be between {MIN_RESOURCES} and {MAX_RESOURCES}, not {}",
                self.resources
            )));
        }
        if self.concurrency == 0 || self.concurrency > 4096 {
            return Err(BenchError::Invalid(format!(
                "concurrency must be between 1 and 4096, not {}",
                self.concurrency
            )));
        }
        if self.runs == 0 {
            return Err(BenchError::Invalid("runs must be at least 1".into()));
        }
        Ok(())
    }

    /// Patients to generate for the target resource count (at least one).
    pub fn patients(&self) -> u64 {
        self.resources.div_ceil(RESOURCES_PER_PATIENT).max(1)
    }

    fn say(&self, msg: std::fmt::Arguments<'_>) {
        if self.progress {
            eprintln!("bench suite: {msg}");
        }
    }
}

/// The work directory: a temporary one (removed at the end) or the kept `--data` directory.
enum Work {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Work {
    fn path(&self) -> &Path {
        match self {
            Work::Temp(t) => t.path(),
            Work::Kept(p) => p,
        }
    }
}

/// Runs the suite and returns its report rows.
pub fn run(opts: &SuiteOptions) -> Result<Report, BenchError> {
    opts.validate()?;
    let work = match (&opts.data_dir, &opts.work_dir) {
        (Some(dir), _) => {
            std::fs::create_dir_all(dir)?;
            Work::Kept(dir.clone())
        }
        (None, Some(dir)) => {
            std::fs::create_dir_all(dir)?;
            Work::Temp(tempfile::tempdir_in(dir)?)
        }
        (None, None) => Work::Temp(tempfile::tempdir()?),
    };
    let ndjson_dir = work.path().join("ndjson");
    let data_dir = work.path().join("data");
    let mut report = Report::default();
    let mut rss = PeakTracker::default();

    let kept = match &work {
        Work::Kept(dir) => data::Kept::load(dir, opts)?,
        Work::Temp(_) => None,
    };
    let (resources, patient_ids) = match kept {
        Some(k) => {
            opts.say(format_args!(
                "reusing the store in {} ({} resources): generate and import skipped",
                work.path().display(),
                k.resources
            ));
            (k.resources, k.patient_ids)
        }
        None => {
            if let Work::Kept(dir) = &work {
                data::Kept::forget(dir)?;
            }
            rss.start_phase();
            let generated = data::generate(opts, &ndjson_dir)?;
            let detail = format!(
                "{} resources, {} patients",
                generated.resources,
                opts.patients()
            );
            generated.report(&mut report, &detail);
            data::parse_baseline(opts, &generated, &mut report, &detail)?;

            rss.start_phase();
            // A half-written store of an earlier, interrupted run is not reused.
            if data_dir.exists() {
                std::fs::remove_dir_all(&data_dir)?;
            }
            let imported = storage::import(opts, &ndjson_dir, &data_dir)?;
            imported.report(&mut report, &detail, rss.phase_peak_mib());
            let disk = storage::disk_after_close(&data_dir)?;
            disk.report(&mut report, &detail, imported.resources, generated.bytes);
            if let Work::Kept(dir) = &work {
                data::Kept {
                    resources: generated.resources,
                    patient_ids: generated.patient_ids.clone(),
                }
                .save(dir, opts)?;
                // The store is what later runs need; the NDJSON is as large again.
                std::fs::remove_dir_all(&ndjson_dir)?;
            }
            (generated.resources, generated.patient_ids)
        }
    };
    let detail = format!("{resources} resources, {} patients", patient_ids.len());

    rss.start_phase();
    let store = storage::open(&data_dir)?;
    http::run(opts, &store, &patient_ids, &mut report, &detail)?;
    report.push(
        "peak RSS: HTTP phases",
        "VmHWM",
        rss.phase_peak_mib(),
        "MiB",
        &detail,
    );

    if !opts.skip_export {
        rss.start_phase();
        storage::export(opts, &*store, work.path(), &mut report, &detail)?;
        report.push(
            "peak RSS: export",
            "VmHWM",
            rss.phase_peak_mib(),
            "MiB",
            &detail,
        );
    }
    report.push(
        "peak RSS: whole run",
        "VmHWM",
        rss.overall_peak_mib(),
        "MiB",
        &detail,
    );
    opts.say(format_args!("done"));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patients_follow_the_resource_target() {
        let at = |resources| SuiteOptions {
            resources,
            ..SuiteOptions::default()
        };
        assert_eq!(at(100).patients(), 1);
        assert_eq!(at(101).patients(), 2);
        assert_eq!(at(100_000).patients(), 1000);
        assert_eq!(at(1_000_000).patients(), 10_000);
    }

    #[test]
    fn sizes_and_settings_are_checked() {
        let ok = SuiteOptions::default();
        assert!(ok.validate().is_ok());
        for bad in [
            SuiteOptions {
                resources: 0,
                ..ok.clone()
            },
            SuiteOptions {
                resources: MIN_RESOURCES - 1,
                ..ok.clone()
            },
            SuiteOptions {
                resources: MAX_RESOURCES + 1,
                ..ok.clone()
            },
            SuiteOptions {
                concurrency: 0,
                ..ok.clone()
            },
            SuiteOptions {
                runs: 0,
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(BenchError::Invalid(_))),
                "{bad:?}"
            );
        }
    }
}
