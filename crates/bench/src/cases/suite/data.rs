//! Phase 1: synthetic NDJSON, and the raw parse rate of that NDJSON as the import's baseline.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use medicus_synth::{GeneratorConfig, write_ndjson};

use super::SuiteOptions;
use crate::{BenchError, Report};

/// What the generator wrote.
pub struct Generated {
    pub resources: u64,
    /// NDJSON bytes of all files.
    pub bytes: u64,
    pub files: Vec<PathBuf>,
    /// Ids of every generated Patient, for read by id.
    pub patient_ids: Vec<String>,
    pub seconds: f64,
}

impl Generated {
    pub fn report(&self, report: &mut Report, detail: &str) {
        report.push(
            "generate (synth → NDJSON)",
            "throughput",
            self.resources as f64 / self.seconds.max(1e-9),
            "resources/s",
            detail,
        );
        report.push(
            "generate (synth → NDJSON)",
            "NDJSON size",
            self.bytes as f64 / self.resources.max(1) as f64,
            "bytes/resource",
            detail,
        );
    }
}

pub fn generate(opts: &SuiteOptions, dir: &Path) -> Result<Generated, BenchError> {
    let config = GeneratorConfig {
        patients: opts.patients(),
        seed: opts.seed,
        ..GeneratorConfig::default()
    };
    opts.say(format_args!(
        "generating {} patients (~{} resources) into {}",
        config.patients,
        opts.resources,
        dir.display()
    ));
    let bar = bar(opts, config.patients, "patients");
    let t = Instant::now();
    let summary = write_ndjson(&config, dir, |done| bar.set_position(done))?;
    let seconds = t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let bytes = summary
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let patient_ids = patient_ids(&dir.join("Patient.ndjson"))?;
    if patient_ids.is_empty() {
        return Err(BenchError::Unexpected(
            "the generator wrote no Patient".into(),
        ));
    }
    opts.say(format_args!(
        "generated {} resources ({:.1} MB) in {seconds:.1} s",
        summary.resources,
        bytes as f64 / 1e6
    ));
    Ok(Generated {
        resources: summary.resources,
        bytes,
        files: summary.files,
        patient_ids,
        seconds,
    })
}

/// A bar on a terminal when progress is wanted; hidden otherwise.
pub fn bar(opts: &SuiteOptions, len: u64, unit: &str) -> ProgressBar {
    if !opts.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} (ETA {{eta}})"
    )) {
        bar.set_style(style);
    }
    bar
}

fn patient_ids(path: &Path) -> Result<Vec<String>, BenchError> {
    let reader = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let mut ids = Vec::new();
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| BenchError::Unexpected(format!("{}: {e}", path.display())))?;
        if let Some(id) = value["id"].as_str() {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// Baseline for import: parse every line to a JSON value on one thread, nothing else. Import
/// does this and much more (validation, index extraction, compression, SQLite) on all cores.
pub fn parse_baseline(
    opts: &SuiteOptions,
    generated: &Generated,
    report: &mut Report,
    detail: &str,
) -> Result<(), BenchError> {
    opts.say(format_args!("baseline: parsing the NDJSON on one thread"));
    let t = Instant::now();
    let mut lines = 0u64;
    let mut line = String::new();
    for path in &generated.files {
        let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                break;
            }
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(&line)
                .map_err(|e| BenchError::Unexpected(format!("{}: {e}", path.display())))?;
            // Keeps the parse from being optimised away.
            lines += u64::from(value.is_object());
        }
    }
    let seconds = t.elapsed().as_secs_f64();
    report.push(
        "baseline: NDJSON parse (serde_json, 1 thread)",
        "throughput",
        lines as f64 / seconds.max(1e-9),
        "resources/s",
        detail,
    );
    Ok(())
}

/// What a kept `--data` directory holds besides the stores: the size and seed it was generated
/// with, the resource count, the Patient ids (for read by id) and whether its SQLite store is
/// complete. A PostgreSQL store is recognised by its resource count instead (it lives in the
/// database, not in the directory).
pub struct Kept {
    pub resources: u64,
    pub patient_ids: Vec<String>,
    /// The import into `data/medicus.db` finished.
    pub sqlite: bool,
}

const MANIFEST: &str = "suite.json";
const PATIENTS: &str = "patients.txt";

impl Kept {
    /// The kept data of an earlier run with the same size and seed; `None` when there is none
    /// (or it was made with other settings).
    pub fn load(dir: &Path, opts: &SuiteOptions) -> Result<Option<Kept>, BenchError> {
        let Ok(text) = std::fs::read_to_string(dir.join(MANIFEST)) else {
            return Ok(None);
        };
        let manifest: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            BenchError::Unexpected(format!("{}: {e}", dir.join(MANIFEST).display()))
        })?;
        let same = manifest["target"].as_u64() == Some(opts.resources)
            && manifest["seed"].as_u64() == Some(opts.seed);
        let Some(resources) = manifest["resources"].as_u64() else {
            return Ok(None);
        };
        if !same {
            return Ok(None);
        }
        let patient_ids: Vec<String> = std::fs::read_to_string(dir.join(PATIENTS))?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if patient_ids.is_empty() {
            return Ok(None);
        }
        // Manifests without the flag were written only after a finished SQLite import.
        let sqlite = manifest["sqlite"].as_bool().unwrap_or(true);
        Ok(Some(Kept {
            resources,
            patient_ids,
            sqlite,
        }))
    }

    /// Whether the SQLite store in the directory holds this data set.
    pub fn sqlite_ready(&self, dir: &Path) -> bool {
        self.sqlite && dir.join("data").join("medicus.db").is_file()
    }

    /// Written before an import with `sqlite: false` and again after the SQLite import, so an
    /// interrupted SQLite import is never taken for a complete store.
    pub fn save(&self, dir: &Path, opts: &SuiteOptions) -> Result<(), BenchError> {
        std::fs::write(dir.join(PATIENTS), self.patient_ids.join("\n"))?;
        let manifest = serde_json::json!({
            "target": opts.resources,
            "seed": opts.seed,
            "resources": self.resources,
            "sqlite": self.sqlite,
        });
        std::fs::write(dir.join(MANIFEST), manifest.to_string())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_store_is_reused_only_for_the_same_size_and_seed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = SuiteOptions {
            resources: 1000,
            ..SuiteOptions::default()
        };
        let mut kept = Kept {
            resources: 987,
            patient_ids: vec!["p1".into(), "p2".into()],
            sqlite: true,
        };
        kept.save(dir.path(), &opts).expect("save");
        // No store yet: an import that never finished is not reused.
        let loaded = Kept::load(dir.path(), &opts)
            .expect("load")
            .expect("manifest");
        assert!(!loaded.sqlite_ready(dir.path()));

        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        std::fs::write(dir.path().join("data").join("medicus.db"), b"").expect("db");
        let loaded = Kept::load(dir.path(), &opts)
            .expect("load")
            .expect("kept store");
        assert!(loaded.sqlite_ready(dir.path()));
        assert_eq!(loaded.resources, 987);
        assert_eq!(loaded.patient_ids, ["p1", "p2"]);

        let other_size = SuiteOptions {
            resources: 2000,
            ..opts.clone()
        };
        assert!(Kept::load(dir.path(), &other_size).expect("load").is_none());
        let other_seed = SuiteOptions {
            seed: 7,
            ..opts.clone()
        };
        assert!(Kept::load(dir.path(), &other_seed).expect("load").is_none());

        // A SQLite import under way: the manifest says so, the database file does not count.
        kept.sqlite = false;
        kept.save(dir.path(), &opts).expect("save");
        let loaded = Kept::load(dir.path(), &opts)
            .expect("load")
            .expect("manifest");
        assert!(!loaded.sqlite_ready(dir.path()));
        assert_eq!(loaded.resources, 987);
    }

    #[test]
    fn manifests_of_older_runs_mean_a_finished_sqlite_import() {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = SuiteOptions {
            resources: 1000,
            ..SuiteOptions::default()
        };
        std::fs::write(
            dir.path().join(MANIFEST),
            r#"{"target":1000,"seed":42,"resources":987}"#,
        )
        .expect("manifest");
        std::fs::write(dir.path().join(PATIENTS), "p1\np2").expect("patients");
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        std::fs::write(dir.path().join("data").join("medicus.db"), b"").expect("db");
        let loaded = Kept::load(dir.path(), &opts)
            .expect("load")
            .expect("manifest");
        assert!(loaded.sqlite_ready(dir.path()));
    }
}
