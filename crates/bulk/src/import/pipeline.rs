//! The import pipeline: one reader thread → N worker threads (parse, validate, extract) → the
//! writer on the calling thread.
//!
//! The reader cuts the input into chunks and deals them round-robin to the workers; the writer
//! collects results round-robin in the same order, so resources are written in input order
//! (which keeps checkpoints meaningful) without a reorder buffer. All channels are bounded, so
//! memory stays flat however large the input is.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use serde_json::Value;

use super::checkpoint::{self, Checkpoint};
use super::report::Report;
use super::source::{Format, InputFile};
use super::worker::{PreparedItem, prepare};
use super::writer::{Target, Writer};
use super::{ImportError, ImportOptions, ImportSummary, ProgressSink, bundle, ndjson};

/// Items per chunk: large enough that channel traffic is negligible, small enough that a
/// worker's share of the input stays in cache-friendly sizes.
const CHUNK_ITEMS: usize = 256;
/// Chunk size cap in input bytes, for files of very large resources.
const CHUNK_BYTES: usize = 4 << 20;
/// Chunks queued per worker, in and out.
const QUEUE: usize = 2;

/// What the reader produces.
pub(crate) enum Raw {
    /// An NDJSON line, not yet decoded.
    Line(Vec<u8>),
    /// A resource taken out of a JSON file; `id` is set for Bundle entries.
    Resource { body: Value, id: Option<String> },
    /// A problem found while reading (truncated gzip, an unusable entry).
    Error(String),
    /// All of the file was read.
    FileEnd,
}

pub(crate) struct RawItem {
    pub file: usize,
    /// 1-based line (NDJSON) or entry (JSON) number.
    pub pos: u64,
    /// Decompressed byte offset after the item (NDJSON only; 0 otherwise).
    pub offset: u64,
    pub raw: Raw,
}

struct Chunk {
    items: Vec<RawItem>,
    /// Input bytes consumed when the chunk was cut.
    bytes_done: u64,
}

struct DoneChunk {
    items: Vec<PreparedItem>,
    bytes_done: u64,
}

pub(crate) fn run(
    store: &dyn medicus_store::api::Store,
    tenant: &str,
    files: &[InputFile],
    options: &ImportOptions,
    progress: &dyn ProgressSink,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let checkpoints = files
        .iter()
        .map(|f| {
            let value = store.checkpoint(&checkpoint::key(tenant, &f.identity))?;
            Ok(Checkpoint::decode(value.as_deref()))
        })
        .collect::<Result<Vec<_>, ImportError>>()?;
    let skipped_files = checkpoints
        .iter()
        .filter(|c| **c == Checkpoint::Done)
        .count();
    let bytes_total: u64 = files.iter().map(|f| f.size).sum();
    let workers = options.worker_count();
    let counter = Arc::new(AtomicU64::new(0));
    let report = Report::new(options.report_path.clone());
    let (drop_tx, drop_rx) = sync_channel::<Vec<_>>(4);
    let target = Target {
        store,
        tenant,
        files,
        options,
    };
    let mut writer = Writer::new(target, progress, report, bytes_total, Some(drop_tx));

    let (result, read_failure) = std::thread::scope(|s| {
        s.spawn(move || while drop_rx.recv().is_ok() {});
        let mut inputs = Vec::with_capacity(workers);
        let mut outputs = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (in_tx, in_rx) = sync_channel::<Chunk>(QUEUE);
            let (out_tx, out_rx) = sync_channel::<DoneChunk>(QUEUE);
            inputs.push(in_tx);
            outputs.push(out_rx);
            let validate = options.validate;
            s.spawn(move || work(in_rx, out_tx, files, validate));
        }
        let reader = {
            let counter = counter.clone();
            let checkpoints = &checkpoints;
            s.spawn(move || read_all(files, checkpoints, counter, inputs))
        };
        let cpu_before = thread_cpu_secs();
        let result = write_all(&mut writer, &outputs, options);
        if let (Some(before), Some(after)) = (cpu_before, thread_cpu_secs()) {
            // The writer is the serial part: its CPU time bounds the throughput on any number
            // of cores, which makes it the number to watch when profiling.
            tracing::info!(
                writer_cpu_secs = after - before,
                resources = writer.state.resources,
                "import writer finished"
            );
        }
        writer.close_dropper();
        // Stop the workers and the reader if the writer ended early.
        drop(outputs);
        let read_failure = reader
            .join()
            .unwrap_or(Some(ImportError::Internal("the reader thread panicked")));
        (result, read_failure)
    });
    let cancelled = result?;
    if let Some(e) = read_failure {
        return Err(e);
    }
    writer.consumed(if cancelled {
        counter.load(Ordering::Relaxed)
    } else {
        bytes_total
    });
    let state = writer.state;
    progress.finish(&state);
    let report_path = writer.report.written_path();
    Ok(ImportSummary {
        files: files.len(),
        skipped_files,
        resources: state.resources,
        failed: writer.report.count(),
        batches: state.batches,
        bytes: bytes_total,
        elapsed: started.elapsed(),
        cancelled,
        report: report_path,
        errors: writer.report.into_kept(),
    })
}

/// CPU time of the calling thread (Linux; `None` elsewhere).
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux platform we run on.
    Some((utime + stime) / 100.0)
}

/// The writer loop; returns whether the import was cancelled.
fn write_all(
    writer: &mut Writer<'_>,
    outputs: &[Receiver<DoneChunk>],
    options: &ImportOptions,
) -> Result<bool, ImportError> {
    let mut next = 0;
    loop {
        if options.is_cancelled() {
            writer.commit()?;
            return Ok(true);
        }
        // In order: chunk k was dealt to worker k % n.
        let Ok(chunk) = outputs[next % outputs.len()].recv() else {
            break;
        };
        next += 1;
        for item in chunk.items {
            writer.accept(item)?;
        }
        writer.consumed(chunk.bytes_done);
    }
    writer.commit()?;
    Ok(false)
}

fn work(
    input: Receiver<Chunk>,
    output: SyncSender<DoneChunk>,
    files: &[InputFile],
    validate: bool,
) {
    while let Ok(chunk) = input.recv() {
        let items = chunk
            .items
            .into_iter()
            .map(|item| {
                let identity = files.get(item.file).map_or("", |f| f.identity.as_str());
                prepare(item, identity, validate)
            })
            .collect();
        let done = DoneChunk {
            items,
            bytes_done: chunk.bytes_done,
        };
        if output.send(done).is_err() {
            return;
        }
    }
}

/// Deals chunks round-robin. Returns `false` once the writer has gone away.
struct Dealer {
    inputs: Vec<SyncSender<Chunk>>,
    next: usize,
    items: Vec<RawItem>,
    bytes: usize,
    counter: Arc<AtomicU64>,
}

impl Dealer {
    fn push(&mut self, item: RawItem) -> bool {
        self.bytes += match &item.raw {
            Raw::Line(l) => l.len(),
            _ => 1024,
        };
        self.items.push(item);
        if self.items.len() >= CHUNK_ITEMS || self.bytes >= CHUNK_BYTES {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
        if self.items.is_empty() {
            return true;
        }
        let chunk = Chunk {
            items: std::mem::replace(&mut self.items, Vec::with_capacity(CHUNK_ITEMS)),
            bytes_done: self.counter.load(Ordering::Relaxed),
        };
        self.bytes = 0;
        let target = &self.inputs[self.next % self.inputs.len()];
        self.next += 1;
        target.send(chunk).is_ok()
    }
}

/// Reads every file in order. Returns a fatal error only for things that make the whole
/// import meaningless; per-file problems become per-line errors.
fn read_all(
    files: &[InputFile],
    checkpoints: &[Checkpoint],
    counter: Arc<AtomicU64>,
    inputs: Vec<SyncSender<Chunk>>,
) -> Option<ImportError> {
    let mut dealer = Dealer {
        inputs,
        next: 0,
        items: Vec::with_capacity(CHUNK_ITEMS),
        bytes: 0,
        counter: counter.clone(),
    };
    for (i, file) in files.iter().enumerate() {
        let checkpoint = checkpoints.get(i).copied().unwrap_or_default();
        let go_on = match checkpoint {
            Checkpoint::Done => {
                counter.fetch_add(file.size, Ordering::Relaxed);
                true
            }
            _ => read_file(i, file, checkpoint, &counter, &mut dealer),
        };
        if !go_on {
            return None;
        }
    }
    dealer.flush();
    None
}

fn read_file(
    index: usize,
    file: &InputFile,
    checkpoint: Checkpoint,
    counter: &Arc<AtomicU64>,
    dealer: &mut Dealer,
) -> bool {
    let error = |pos: u64, message: String| RawItem {
        file: index,
        pos,
        offset: 0,
        raw: Raw::Error(message),
    };
    let end = |pos: u64| RawItem {
        file: index,
        pos,
        offset: 0,
        raw: Raw::FileEnd,
    };
    // A plain file resumes by seeking past the committed lines; compressed ones re-read them.
    let seek_to = match checkpoint {
        Checkpoint::At { offset, .. } if !file.gzip && file.format == Format::Ndjson => offset,
        _ => 0,
    };
    let reader = if seek_to > 0 {
        std::fs::File::open(&file.path).and_then(|mut f| {
            f.seek(SeekFrom::Start(seek_to))?;
            counter.fetch_add(seek_to, Ordering::Relaxed);
            let counting = super::source::CountingReader::new(f, counter.clone());
            Ok(Box::new(counting) as Box<dyn Read + Send>)
        })
    } else {
        file.open(counter.clone())
    };
    let reader = match reader {
        Ok(r) => r,
        Err(e) => {
            return dealer.push(error(0, format!("cannot open: {e}"))) && dealer.push(end(0));
        }
    };
    match file.format {
        Format::Ndjson => ndjson::read_lines(reader, index, checkpoint, seek_to, &mut |item| {
            dealer.push(item)
        }),
        Format::Json => {
            let mut bytes = Vec::new();
            let mut reader = reader;
            if let Err(e) = reader.read_to_end(&mut bytes) {
                return dealer.push(error(1, format!("cannot read the whole file: {e}")))
                    && dealer.push(end(0));
            }
            let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
            let doc: Value = match serde_json::from_slice(bytes) {
                Ok(doc) => doc,
                Err(e) => {
                    return dealer.push(error(1, format!("invalid JSON: {e}")))
                        && dealer.push(end(0));
                }
            };
            bundle::items(index, doc, checkpoint.pos())
                .into_iter()
                .all(|item| dealer.push(item))
        }
    }
}
