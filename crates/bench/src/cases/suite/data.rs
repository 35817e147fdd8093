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
