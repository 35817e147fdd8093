//! NDJSON output files of one type, written through a buffer as resources arrive and split into
//! parts so that no file grows without bound (`Observation.ndjson`, or `Observation-1.ndjson`,
//! `Observation-2.ndjson`, … once a second part is needed).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// One finished output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub resource_type: String,
    /// File name inside the job directory.
    pub file_name: String,
    pub count: u64,
}

/// When to start a new part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartLimits {
    pub max_resources: u64,
    pub max_bytes: u64,
}

/// The file name of part `part` (1-based) of a type; `None` when the type has a single file.
pub fn file_name(resource_type: &str, part: Option<usize>) -> String {
    match part {
        None => format!("{resource_type}.ndjson"),
        Some(n) => format!("{resource_type}-{n}.ndjson"),
    }
}

/// Writes the parts of one type. Nothing is created until the first resource arrives, so
/// types without matches leave no file.
pub struct TypeWriter {
    dir: PathBuf,
    resource_type: String,
    limits: PartLimits,
    current: Option<BufWriter<File>>,
    count: u64,
    bytes: u64,
    done: Vec<OutputFile>,
}

impl TypeWriter {
    pub fn new(dir: &Path, resource_type: &str, limits: PartLimits) -> Self {
        TypeWriter {
            dir: dir.to_owned(),
            resource_type: resource_type.to_owned(),
            limits,
            current: None,
            count: 0,
            bytes: 0,
            done: Vec::new(),
        }
    }

    /// Appends one resource (compact JSON without newlines) as a line.
    pub fn write(&mut self, json: &[u8]) -> std::io::Result<()> {
        let full = self.count >= self.limits.max_resources
            || (self.count > 0 && self.bytes + json.len() as u64 + 1 > self.limits.max_bytes);
        if self.current.is_some() && full {
            self.finish_part()?;
        }
        let out = match &mut self.current {
            Some(out) => out,
            None => self.open_part()?,
        };
        out.write_all(json)?;
        out.write_all(b"\n")?;
        self.count += 1;
        self.bytes += json.len() as u64 + 1;
        Ok(())
    }

    fn open_part(&mut self) -> std::io::Result<&mut BufWriter<File>> {
        // Part names are only numbered once there is a second part: the first one is renamed.
        let part = self.done.len() + 1;
        if part == 2 {
            let single = file_name(&self.resource_type, None);
            let first = file_name(&self.resource_type, Some(1));
            std::fs::rename(self.dir.join(&single), self.dir.join(&first))?;
            if let Some(f) = self.done.first_mut() {
                f.file_name = first;
            }
        }
        let name = file_name(&self.resource_type, (part > 1).then_some(part));
        let file = File::create(self.dir.join(name))?;
        self.count = 0;
        self.bytes = 0;
        Ok(self
            .current
            .insert(BufWriter::with_capacity(256 * 1024, file)))
    }

    fn finish_part(&mut self) -> std::io::Result<()> {
        if let Some(out) = self.current.take() {
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            let part = self.done.len() + 1;
            self.done.push(OutputFile {
                resource_type: self.resource_type.clone(),
                file_name: file_name(&self.resource_type, (part > 1).then_some(part)),
                count: self.count,
            });
        }
        Ok(())
    }

    /// Flushes and closes the last part; returns every file of the type.
    pub fn finish(mut self) -> std::io::Result<Vec<OutputFile>> {
        self.finish_part()?;
        Ok(self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_file_until_a_limit_then_numbered_parts() {
        let dir = tempfile::tempdir().unwrap();
        let limits = PartLimits {
            max_resources: 2,
            max_bytes: 1 << 20,
        };
        let mut w = TypeWriter::new(dir.path(), "Patient", limits);
        w.write(b"{\"a\":1}").unwrap();
        w.write(b"{\"a\":2}").unwrap();
        let files = w.finish().unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].file_name, "Patient.ndjson");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("Patient.ndjson")).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );

        let mut w = TypeWriter::new(dir.path(), "Observation", limits);
        for i in 0..5 {
            w.write(format!("{{\"i\":{i}}}").as_bytes()).unwrap();
        }
        let files = w.finish().unwrap();
        let names: Vec<_> = files.iter().map(|f| f.file_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Observation-1.ndjson",
                "Observation-2.ndjson",
                "Observation-3.ndjson"
            ]
        );
        assert_eq!(files.iter().map(|f| f.count).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(!dir.path().join("Observation.ndjson").exists());
        let lines: usize = names
            .iter()
            .map(|n| {
                std::fs::read_to_string(dir.path().join(n))
                    .unwrap()
                    .lines()
                    .count()
            })
            .sum();
        assert_eq!(lines, 5);
    }

    #[test]
    fn byte_limit_splits_and_empty_types_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let limits = PartLimits {
            max_resources: 100,
            max_bytes: 10,
        };
        let mut w = TypeWriter::new(dir.path(), "Condition", limits);
        // A line larger than the limit still goes into a part of its own.
        w.write(b"{\"long\":\"xxxxxxxxxx\"}").unwrap();
        w.write(b"{}").unwrap();
        let files = w.finish().unwrap();
        assert_eq!(files.len(), 2);
        let w = TypeWriter::new(dir.path(), "Encounter", limits);
        assert!(w.finish().unwrap().is_empty());
        assert!(!dir.path().join("Encounter.ndjson").exists());
    }
}
