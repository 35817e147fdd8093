//! The per-line error report: one JSON object per failed line or entry, written as NDJSON to a
//! file, and the first few kept in memory for the summary (and the `$import` completion body).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ImportError;

/// How many errors the summary carries; the report file has all of them.
const KEPT: usize = 1000;

/// One failed line (NDJSON) or entry (Bundle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub file: String,
    /// 1-based line of an NDJSON file (for a JSON file: absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 0-based `Bundle.entry` index in a JSON file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<u64>,
    pub error: String,
    /// FHIRPath location of a validation error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// Collects errors; the file is created on the first error only, so a clean import leaves none.
pub(crate) struct Report {
    path: Option<PathBuf>,
    out: Option<BufWriter<File>>,
    kept: Vec<LineError>,
    count: u64,
}

impl Report {
    pub fn new(path: Option<PathBuf>) -> Self {
        Report {
            path,
            out: None,
            kept: Vec::new(),
            count: 0,
        }
    }

    pub fn add(&mut self, error: LineError) -> Result<(), ImportError> {
        self.count += 1;
        if let Some(path) = &self.path {
            if self.out.is_none() {
                self.out = Some(BufWriter::new(create(path)?));
            }
            if let Some(out) = &mut self.out {
                let mut line = serde_json::to_vec(&error).unwrap_or_default();
                line.push(b'\n');
                out.write_all(&line).map_err(|source| ImportError::Report {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        if self.kept.len() < KEPT {
            self.kept.push(error);
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), ImportError> {
        if let (Some(out), Some(path)) = (&mut self.out, &self.path) {
            out.flush().map_err(|source| ImportError::Report {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The report file, when one was written.
    pub fn written_path(&self) -> Option<PathBuf> {
        self.out.as_ref().and(self.path.clone())
    }

    pub fn into_kept(self) -> Vec<LineError> {
        self.kept
    }
}

fn create(path: &Path) -> Result<File, ImportError> {
    let err = |source| ImportError::Report {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    File::create(path).map_err(err)
}

/// A report file name for now: `<dir>/<UTC timestamp>.ndjson`, unique enough for a person
/// running imports by hand, with the process id against two starts in the same second.
pub fn default_report_path(dir: &Path) -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        std::process::id()
    );
    dir.join(format!("{stamp}.ndjson"))
}
