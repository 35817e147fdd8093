//! The whole suite in one invocation (`medicus bench suite --resources N`): generate synthetic
//! MII-shaped NDJSON, import it with full validation and indexing into a fresh store, measure the
//! disk per resource, serve the store over loopback HTTP and measure read by id, a token search,
//! a token+date search and a count, export it, and record peak RSS per phase.
//!
//! The store is SQLite in the work directory or a PostgreSQL database (`--database`); with
//! `--compare-postgres URL` the same NDJSON is imported into both and every phase after generate
//! runs on both, followed by a side-by-side table (`compare`).
//!
//! Every family has a baseline measured in the same run (NDJSON parse for import, `/healthz`
//! for HTTP), because these machines are small and shared: absolute numbers move with the
//! neighbours, ratios much less.

mod compare;
mod data;
mod http;
mod storage;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::rss::PeakTracker;
use crate::{BenchError, Report, pg};

/// The synthetic generator's mean resources per patient (its default).
pub const RESOURCES_PER_PATIENT: u64 = 100;
/// Smallest data size: one patient's worth, so every phase has something to measure.
pub const MIN_RESOURCES: u64 = 100;
/// Largest data size: far beyond what one disk of these machines holds.
pub const MAX_RESOURCES: u64 = 1_000_000_000;

/// The tenant the data is imported into.
pub(crate) const TENANT: &str = "bench";

/// Where a store of the suite lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Backend {
    /// SQLite in `data/` of the work directory.
    #[default]
    Sqlite,
    /// A PostgreSQL database (`postgres://…`); the data goes into its tenant `bench`.
    Postgres(String),
}

impl Backend {
    /// The name in report rows.
    pub fn label(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres(_) => "PostgreSQL",
        }
    }
}

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
    /// ids stay); later runs with the same size and seed skip generate and import. With
    /// PostgreSQL the directory keeps the manifest and the Patient ids, the store is the
    /// database's tenant `bench`, reused when it holds as many resources as the manifest says.
    pub data_dir: Option<PathBuf>,
    /// Skip the `$export` phase (at 10M it writes as much again as the NDJSON).
    pub skip_export: bool,
    /// The store measured.
    pub backend: Backend,
    /// Also import into this PostgreSQL database and run every phase on it after SQLite, then
    /// print both side by side (only with the SQLite backend).
    pub compare_postgres: Option<String>,
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
            backend: Backend::Sqlite,
            compare_postgres: None,
            progress: true,
        }
    }
}

impl SuiteOptions {
    /// Checks the data size, the load settings and the databases.
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
        let urls = match &self.backend {
            Backend::Postgres(url) => Some(url),
            Backend::Sqlite => None,
        };
        for url in urls.iter().copied().chain(self.compare_postgres.as_ref()) {
            if !medicus_store::postgres::is_postgres_url(url) {
                return Err(BenchError::Invalid(format!(
                    "expected a postgres:// or postgresql:// URL, not {}",
                    pg::describe_url(url)
                )));
            }
        }
        if self.compare_postgres.is_some() && self.backend != Backend::Sqlite {
            return Err(BenchError::Invalid(
                "--compare-postgres compares PostgreSQL with SQLite; it cannot be combined with a PostgreSQL --database".into(),
            ));
        }
        Ok(())
    }

    /// Patients to generate for the target resource count (at least one).
    pub fn patients(&self) -> u64 {
        self.resources.div_ceil(RESOURCES_PER_PATIENT).max(1)
    }

    /// The stores of this run, in the order they are measured.
    pub fn backends(&self) -> Vec<Backend> {
        let mut backends = vec![self.backend.clone()];
        if let Some(url) = &self.compare_postgres {
            backends.push(Backend::Postgres(url.clone()));
        }
        backends
    }

    pub(crate) fn say(&self, msg: std::fmt::Arguments<'_>) {
        if self.progress {
            eprintln!("bench suite: {msg}");
        }
    }
}

/// The work directory: a temporary one (removed at the end) or the kept `--data` directory.
pub(crate) enum Work {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Work {
    pub(crate) fn new(opts: &SuiteOptions) -> Result<Work, BenchError> {
        Ok(match (&opts.data_dir, &opts.work_dir) {
            (Some(dir), _) => {
                std::fs::create_dir_all(dir)?;
                Work::Kept(dir.clone())
            }
            (None, Some(dir)) => {
                std::fs::create_dir_all(dir)?;
                Work::Temp(tempfile::tempdir_in(dir)?)
            }
            (None, None) => Work::Temp(tempfile::tempdir()?),
        })
    }

    fn path(&self) -> &Path {
        match self {
            Work::Temp(t) => t.path(),
            Work::Kept(p) => p,
        }
    }

    fn ndjson_dir(&self) -> PathBuf {
        self.path().join("ndjson")
    }

    /// The SQLite store's directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }
}

/// The data set the stores hold.
pub(crate) struct Prepared {
    pub resources: u64,
    pub patient_ids: Vec<String>,
}

impl Prepared {
    pub(crate) fn detail(&self) -> String {
        format!(
            "{} resources, {} patients",
            self.resources,
            self.patient_ids.len()
        )
    }
}

/// Brings every store of `backends` to the data set of `opts` (size and seed): reuses a store
/// that holds it (a kept SQLite store; a PostgreSQL tenant with the kept resource count),
/// otherwise generates the NDJSON once and imports it into each store that lacks it, with the
/// generate, parse-baseline, import and disk rows.
pub(crate) fn prepare(
    opts: &SuiteOptions,
    work: &Work,
    backends: &[Backend],
    report: &mut Report,
    rss: &mut PeakTracker,
) -> Result<Prepared, BenchError> {
    let kept = match work {
        Work::Kept(dir) => data::Kept::load(dir, opts)?,
        Work::Temp(_) => None,
    };
    let mut ready = Vec::with_capacity(backends.len());
    for backend in backends {
        ready.push(match backend {
            Backend::Sqlite => kept.as_ref().is_some_and(|k| k.sqlite_ready(work.path())),
            Backend::Postgres(url) => {
                let found = pg::tenant_resources(url, TENANT)?;
                match &kept {
                    Some(k) if found == k.resources => true,
                    _ if found == 0 => false,
                    // Importing over other data would measure updates, not an import.
                    _ => {
                        return Err(BenchError::Invalid(format!(
                            "tenant '{TENANT}' of PostgreSQL {} already holds {found} resources{}: \
                             use an empty database, or --data DIR of the run that imported \
                             them (same --resources and seed) to reuse them",
                            pg::describe_url(url),
                            kept.as_ref()
                                .map(|k| format!(", not the {} of this size and seed", k.resources))
                                .unwrap_or_default()
                        )));
                    }
                }
            }
        });
    }
    if let Some(k) = &kept
        && ready.iter().all(|r| *r)
    {
        opts.say(format_args!(
            "reusing the stores of {} ({} resources): generate and import skipped",
            work.path().display(),
            k.resources
        ));
        return Ok(Prepared {
            resources: k.resources,
            patient_ids: k.patient_ids.clone(),
        });
    }

    report.set_backend(None);
    rss.start_phase();
    let ndjson_dir = work.ndjson_dir();
    let generated = data::generate(opts, &ndjson_dir)?;
    if let Some(k) = &kept
        && k.resources != generated.resources
    {
        return Err(BenchError::Unexpected(format!(
            "{} holds a data set of {} resources, the generator now writes {} for the same size and seed: remove the directory (and the PostgreSQL tenant)",
            work.path().display(),
            k.resources,
            generated.resources
        )));
    }
    let prepared = Prepared {
        resources: generated.resources,
        patient_ids: generated.patient_ids.clone(),
    };
    let detail = prepared.detail();
    generated.report(report, &detail);
    data::parse_baseline(opts, &generated, report, &detail)?;

    let mut manifest = data::Kept {
        resources: generated.resources,
        patient_ids: generated.patient_ids.clone(),
        sqlite: backends
            .iter()
            .zip(&ready)
            .any(|(b, r)| *b == Backend::Sqlite && *r)
            || kept.as_ref().is_some_and(|k| k.sqlite_ready(work.path())),
    };
    if let Work::Kept(dir) = work {
        manifest.save(dir, opts)?;
    }
    let data_dir = work.data_dir();
    for (backend, ready) in backends.iter().zip(ready) {
        if ready {
            continue;
        }
        report.set_backend(Some(backend.label()));
        rss.start_phase();
        // A half-written SQLite store of an earlier, interrupted run is not reused.
        if *backend == Backend::Sqlite && data_dir.exists() {
            std::fs::remove_dir_all(&data_dir)?;
        }
        let imported = storage::import(opts, backend, &ndjson_dir, &data_dir)?;
        imported.report(report, backend, &detail, rss.phase_peak_mib());
        let disk = storage::disk_after_close(opts, backend, &data_dir)?;
        disk.report(
            report,
            backend,
            &detail,
            imported.resources,
            generated.bytes,
        );
        if *backend == Backend::Sqlite
            && let Work::Kept(dir) = work
        {
            manifest.sqlite = true;
            manifest.save(dir, opts)?;
        }
    }
    report.set_backend(None);
    if let Work::Kept(_) = work {
        // The stores are what later runs need; the NDJSON is as large again.
        std::fs::remove_dir_all(&ndjson_dir)?;
    }
    Ok(prepared)
}

/// Runs the suite and returns its report rows.
pub fn run(opts: &SuiteOptions) -> Result<Report, BenchError> {
    opts.validate()?;
    let work = Work::new(opts)?;
    let mut report = Report::default();
    let mut rss = PeakTracker::default();
    let backends = opts.backends();

    let prepared = prepare(opts, &work, &backends, &mut report, &mut rss)?;
    let detail = prepared.detail();

    for backend in &backends {
        report.set_backend(Some(backend.label()));
        rss.start_phase();
        let store = storage::open(backend, &work.data_dir())?;
        http::run(opts, &store, &prepared.patient_ids, &mut report, &detail)?;
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
        if let Backend::Postgres(url) = backend {
            // Settings and size as measured (the size after the HTTP phases and export).
            report.note(format!(
                "server: {} (RSS rows count this process only, not the PostgreSQL server)",
                pg::describe_server(url)?
            ));
        }
    }
    report.set_backend(None);
    report.push(
        "peak RSS: whole run",
        "VmHWM",
        rss.overall_peak_mib(),
        "MiB",
        &detail,
    );
    if backends.len() > 1 {
        report
            .tables
            .push(compare::side_by_side(&report, &backends));
    }
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
        let compare = SuiteOptions {
            compare_postgres: Some("postgres://u@h/db".into()),
            ..ok.clone()
        };
        assert!(compare.validate().is_ok());
        assert_eq!(
            compare.backends(),
            [
                Backend::Sqlite,
                Backend::Postgres("postgres://u@h/db".into())
            ]
        );
        let postgres = SuiteOptions {
            backend: Backend::Postgres("postgresql://h/db".into()),
            ..ok.clone()
        };
        assert!(postgres.validate().is_ok());
        assert_eq!(postgres.backends().len(), 1);
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
            SuiteOptions {
                backend: Backend::Postgres("/var/lib/medicus".into()),
                ..ok.clone()
            },
            SuiteOptions {
                compare_postgres: Some("sqlite:x".into()),
                ..ok.clone()
            },
            SuiteOptions {
                backend: Backend::Postgres("postgres://h/a".into()),
                compare_postgres: Some("postgres://h/b".into()),
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
