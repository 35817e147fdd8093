//! Input files: expanding folders, telling NDJSON from JSON, gzip, and a file's identity for
//! checkpoints.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use flate2::read::MultiGzDecoder;

use super::ImportError;

/// How the content of a file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One resource per line.
    Ndjson,
    /// One JSON document: a Bundle or a single resource.
    Json,
}

/// One file to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    pub format: Format,
    pub gzip: bool,
    /// Size on disk (compressed size for `.gz`).
    pub size: u64,
    /// Identifies this exact content for checkpoints: canonical path, size and modification time.
    /// A changed file gets a new identity and is imported again from the start.
    pub identity: String,
}

impl InputFile {
    /// Describes `path` if its name says it is importable (`.ndjson`, `.json`, optionally `.gz`).
    pub fn from_path(path: &Path) -> Result<Option<InputFile>, ImportError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let (stem, gzip) = match name.strip_suffix(".gz") {
            Some(stem) => (stem.to_owned(), true),
            None => (name.clone(), false),
        };
        let format = if stem.ends_with(".ndjson") || stem.ends_with(".jsonl") {
            Format::Ndjson
        } else if stem.ends_with(".json") {
            Format::Json
        } else {
            return Ok(None);
        };
        Self::with_format(path, format, gzip).map(Some)
    }

    /// Describes `path` with a known format (e.g. the body of `$import`, whatever its name).
    pub fn with_format(path: &Path, format: Format, gzip: bool) -> Result<InputFile, ImportError> {
        let io_err = |source| ImportError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io_err)?;
        let canonical = std::fs::canonicalize(path).map_err(io_err)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(InputFile {
            identity: format!("{}:{}:{mtime}", canonical.display(), meta.len()),
            path: path.to_owned(),
            format,
            gzip,
            size: meta.len(),
        })
    }

    /// Opens the file for reading, decompressing `.gz`. Compressed bytes read so far are added
    /// to `counter`, which drives the progress bar.
    pub fn open(&self, counter: Arc<AtomicU64>) -> io::Result<Box<dyn Read + Send>> {
        let file = CountingReader {
            inner: File::open(&self.path)?,
            counter,
        };
        Ok(if self.gzip {
            // Multi-member: `cat a.gz b.gz` and bgzip output are valid gzip streams too.
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)))
        } else {
            Box::new(file)
        })
    }
}

/// Expands `paths` into importable files: files as given (any name counts when named
/// explicitly, by its extension or else as NDJSON), folders recursively by extension, in
/// sorted order so runs are reproducible.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<InputFile>, ImportError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| ImportError::NoSuchPath {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(path, &mut out)?;
        } else {
            match InputFile::from_path(path)? {
                Some(f) => out.push(f),
                None => {
                    let gzip = path.extension().is_some_and(|e| e == "gz");
                    out.push(InputFile::with_format(path, Format::Ndjson, gzip)?);
                }
            }
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<InputFile>) -> Result<(), ImportError> {
    let io_err = |source| ImportError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_err)?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if let Some(f) = InputFile::from_path(&path)? {
            out.push(f);
        }
    }
    Ok(())
}

/// Adds the bytes read to a shared counter (input progress).
pub(crate) struct CountingReader<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R> CountingReader<R> {
    pub fn new(inner: R, counter: Arc<AtomicU64>) -> Self {
        CountingReader { inner, counter }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_expand_by_extension_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for name in [
            "b.ndjson",
            "a.json",
            "c.txt",
            "sub/d.ndjson.gz",
            "sub/e.json.gz",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let files = expand(&[dir.path().to_owned()]).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| {
                (
                    f.path.file_name().unwrap().to_str().unwrap(),
                    f.format,
                    f.gzip,
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("a.json", Format::Json, false),
                ("b.ndjson", Format::Ndjson, false),
                ("d.ndjson.gz", Format::Ndjson, true),
                ("e.json.gz", Format::Json, true),
            ]
        );
        assert!(matches!(
            expand(&[dir.path().join("missing")]),
            Err(ImportError::NoSuchPath { .. })
        ));
    }
}
