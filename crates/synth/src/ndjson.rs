//! Streaming NDJSON output: one `Type.ndjson` per resource type.
//!
//! Patients are generated in chunks by worker threads and written strictly in chunk order by the
//! calling thread, so the files are byte-identical whatever the thread count. A window bounds how far
//! workers may run ahead of the writer, which keeps memory flat for any number of patients.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, mpsc};

use crate::Generator;
use crate::config::{GeneratorConfig, SynthError};
use crate::resources::common::{ResourceKind, Sink};

/// Patients per work unit: large enough to amortise channel traffic, small enough to keep memory low.
const CHUNK_PATIENTS: u64 = 32;
/// Chunks in flight per worker.
const WINDOW_PER_WORKER: u64 = 3;

/// What `write_ndjson` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub patients: u64,
    pub resources: u64,
    /// (resource type, count) for every file written, in file order.
    pub by_type: Vec<(&'static str, u64)>,
    pub files: Vec<PathBuf>,
}

/// Per-type NDJSON buffers of one chunk.
struct ChunkBuffers {
    lines: Vec<String>,
    counts: [u64; ResourceKind::ALL.len()],
}

impl ChunkBuffers {
    fn new() -> Self {
        ChunkBuffers {
            lines: (0..ResourceKind::ALL.len())
                .map(|_| String::new())
                .collect(),
            counts: [0; ResourceKind::ALL.len()],
        }
    }
}

impl Sink for ChunkBuffers {
    fn accept(&mut self, kind: ResourceKind, _id: &str, json: &str) {
        let buf = &mut self.lines[kind.index()];
        buf.push_str(json);
        buf.push('\n');
        self.counts[kind.index()] += 1;
    }
}

struct Files {
    writers: Vec<BufWriter<File>>,
    paths: Vec<PathBuf>,
    counts: [u64; ResourceKind::ALL.len()],
}

impl Files {
    fn create(dir: &Path) -> Result<Files, SynthError> {
        std::fs::create_dir_all(dir).map_err(|source| SynthError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut writers = Vec::new();
        let mut paths = Vec::new();
        for kind in ResourceKind::ALL {
            let path = dir.join(format!("{}.ndjson", kind.name()));
            let file = File::create(&path).map_err(|source| SynthError::Io {
                path: path.clone(),
                source,
            })?;
            writers.push(BufWriter::with_capacity(1 << 20, file));
            paths.push(path);
        }
        Ok(Files {
            writers,
            paths,
            counts: [0; ResourceKind::ALL.len()],
        })
    }

    fn write(&mut self, chunk: &ChunkBuffers) -> Result<(), SynthError> {
        for (i, lines) in chunk.lines.iter().enumerate() {
            if lines.is_empty() {
                continue;
            }
            self.writers[i]
                .write_all(lines.as_bytes())
                .map_err(|source| SynthError::Io {
                    path: self.paths[i].clone(),
                    source,
                })?;
            self.counts[i] += chunk.counts[i];
        }
        Ok(())
    }

    fn finish(mut self, patients: u64) -> Result<Summary, SynthError> {
        for (w, p) in self.writers.iter_mut().zip(&self.paths) {
            w.flush().map_err(|source| SynthError::Io {
                path: p.clone(),
                source,
            })?;
        }
        Ok(Summary {
            patients,
            resources: self.counts.iter().sum(),
            by_type: ResourceKind::ALL
                .iter()
                .map(|k| (k.name(), self.counts[k.index()]))
                .collect(),
            files: self.paths,
        })
    }
}

/// Writes the reference data and `config.patients` patients (from `config.start_patient`) to
/// `out_dir/<Type>.ndjson`. `progress` is called with the number of patients written so far.
pub fn write_ndjson(
    config: &GeneratorConfig,
    out_dir: &Path,
    mut progress: impl FnMut(u64),
) -> Result<Summary, SynthError> {
    let generator = Generator::new(config.clone())?;
    let mut files = Files::create(out_dir)?;

    let mut reference = ChunkBuffers::new();
    for r in generator.reference_resources() {
        reference.accept(r.kind, &r.id, &r.json);
    }
    files.write(&reference)?;

    let first = config.start_patient;
    let total = config.patients;
    let chunks = total.div_ceil(CHUNK_PATIENTS);
    let workers = match config.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(chunks.max(1) as usize);
    let window = WINDOW_PER_WORKER * workers as u64;

    let next = AtomicU64::new(0);
    let abort = AtomicBool::new(false);
    let written = Mutex::new(0u64);
    let advanced = Condvar::new();
    let (tx, rx) = mpsc::channel::<(u64, ChunkBuffers)>();

    let result = std::thread::scope(|scope| -> Result<(), SynthError> {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, abort, written, advanced, generator) =
                (&next, &abort, &written, &advanced, &generator);
            scope.spawn(move || {
                loop {
                    let chunk = next.fetch_add(1, Ordering::Relaxed);
                    if chunk >= chunks {
                        return;
                    }
                    // Back-pressure: stay within `window` chunks of the writer.
                    {
                        let mut done = match written.lock() {
                            Ok(g) => g,
                            Err(_) => return,
                        };
                        while chunk >= *done + window && !abort.load(Ordering::Relaxed) {
                            done = match advanced.wait(done) {
                                Ok(g) => g,
                                Err(_) => return,
                            };
                        }
                    }
                    if abort.load(Ordering::Relaxed) {
                        return;
                    }
                    let mut buffers = ChunkBuffers::new();
                    let lo = first + chunk * CHUNK_PATIENTS;
                    let hi = (lo + CHUNK_PATIENTS).min(first + total);
                    for index in lo..hi {
                        generator.patient_into(index, &mut buffers);
                    }
                    if tx.send((chunk, buffers)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);

        let mut pending: BTreeMap<u64, ChunkBuffers> = BTreeMap::new();
        let mut next_to_write = 0u64;
        let outcome = (|| -> Result<(), SynthError> {
            while next_to_write < chunks {
                let Ok((chunk, buffers)) = rx.recv() else {
                    return Err(SynthError::Worker(
                        "a worker stopped before finishing its chunk".into(),
                    ));
                };
                pending.insert(chunk, buffers);
                while let Some(buffers) = pending.remove(&next_to_write) {
                    files.write(&buffers)?;
                    next_to_write += 1;
                    if let Ok(mut done) = written.lock() {
                        *done = next_to_write;
                    }
                    advanced.notify_all();
                    progress((next_to_write * CHUNK_PATIENTS).min(total));
                }
            }
            Ok(())
        })();
        if outcome.is_err() {
            abort.store(true, Ordering::Relaxed);
            advanced.notify_all();
        }
        drop(rx);
        outcome
    });
    result?;
    files.finish(total)
}
