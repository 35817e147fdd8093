//! The single writer: resources go into one open write session; every `batch_size` resources
//! (or `batch_bytes` of input) it records each file's checkpoint in the same transaction and
//! commits, so data and progress become durable together.

use std::collections::BTreeMap;
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use medicus_store::api::{ExtractedPut, Precondition, Store, WriteOutcome, WriteSession};
use medicus_store::index::extract_entries;
use medicus_store::search::parse_search;
use serde_json::Value;

use super::checkpoint::{self, Checkpoint};
use super::report::{LineError, Report};
use super::source::{Format, InputFile};
use super::worker::{Prepared, PreparedItem, ReadyResource, conditional_target};
use super::{ImportError, ImportOptions, Progress, ProgressSink};

/// What the writer writes into, and how.
pub(crate) struct Target<'a> {
    pub store: &'a dyn Store,
    pub tenant: &'a str,
    pub files: &'a [InputFile],
    pub options: &'a ImportOptions,
}

pub(crate) struct Writer<'a> {
    store: &'a dyn Store,
    tenant: &'a str,
    files: &'a [InputFile],
    options: &'a ImportOptions,
    progress: &'a dyn ProgressSink,
    pub report: Report,
    session: Option<Box<dyn WriteSession + 'a>>,
    in_batch: usize,
    bytes_in_batch: usize,
    /// Checkpoints to record with the next commit, per file index.
    pending: BTreeMap<usize, Checkpoint>,
    started: Instant,
    pub state: Progress,
    /// Written bodies go to another thread to be freed: they were allocated by the workers,
    /// and freeing them here costs the (serial) writer about a tenth of its time.
    garbage: Vec<WriteOutcome>,
    dropper: Option<SyncSender<Vec<WriteOutcome>>>,
    /// Resources waiting to be written together (`WriteSession::put_extracted_many`).
    queued: Vec<Queued>,
}

/// A resource waiting in `Writer::queued`, with where it came from for the error report.
struct Queued {
    file: usize,
    pos: u64,
    put: ExtractedPut,
}

/// Written bodies per hand-over to the dropping thread.
const GARBAGE_BATCH: usize = 256;

/// Resources handed to the store at once: PostgreSQL creates them with one statement.
const PUT_GROUP: usize = 256;

impl<'a> Writer<'a> {
    pub fn new(
        target: Target<'a>,
        progress: &'a dyn ProgressSink,
        report: Report,
        bytes_total: u64,
        dropper: Option<SyncSender<Vec<WriteOutcome>>>,
    ) -> Self {
        let Target {
            store,
            tenant,
            files,
            options,
        } = target;
        Writer {
            store,
            tenant,
            files,
            options,
            progress,
            report,
            session: None,
            in_batch: 0,
            bytes_in_batch: 0,
            pending: BTreeMap::new(),
            started: Instant::now(),
            state: Progress {
                bytes_total,
                ..Progress::default()
            },
            garbage: Vec::with_capacity(GARBAGE_BATCH),
            dropper,
            queued: Vec::with_capacity(PUT_GROUP),
        }
    }

    pub fn accept(&mut self, item: PreparedItem) -> Result<(), ImportError> {
        let PreparedItem {
            file,
            pos,
            offset,
            prepared,
        } = item;
        match prepared {
            Prepared::FileEnd => {
                self.pending.insert(file, Checkpoint::Done);
                // A file that only had errors or was empty still needs its mark.
                self.session()?;
            }
            Prepared::Failed { error, expression } => {
                self.fail(file, pos, error, expression)?;
                self.mark(file, pos, offset);
            }
            Prepared::Ready(ready) => {
                let size = ready.size;
                if ready.conditional {
                    // Its references are resolved by searching: what came before must be
                    // written first.
                    self.write_queued()?;
                    if let Err(error) = self.put(*ready)? {
                        self.fail(file, pos, error, None)?;
                    } else {
                        self.state.resources += 1;
                    }
                } else {
                    let r = *ready;
                    self.queued.push(Queued {
                        file,
                        pos,
                        put: ExtractedPut {
                            resource_type: r.resource_type,
                            id: r.id,
                            body: r.body,
                            entries: r.entries,
                        },
                    });
                    if self.queued.len() >= PUT_GROUP {
                        self.write_queued()?;
                    }
                }
                self.mark(file, pos, offset);
                self.in_batch += 1;
                self.bytes_in_batch += size;
            }
        }
        if self.in_batch >= self.options.batch_size
            || self.bytes_in_batch >= self.options.batch_bytes
        {
            self.commit()?;
        }
        Ok(())
    }

    /// Records the input bytes consumed (for progress).
    pub fn consumed(&mut self, bytes_done: u64) {
        self.state.bytes_done = bytes_done.min(self.state.bytes_total);
    }

    fn mark(&mut self, file: usize, pos: u64, offset: u64) {
        let entry = self.pending.entry(file).or_default();
        if *entry != Checkpoint::Done {
            *entry = Checkpoint::At { pos, offset };
        }
    }

    fn fail(
        &mut self,
        file: usize,
        pos: u64,
        error: String,
        expression: Option<String>,
    ) -> Result<(), ImportError> {
        self.state.failed += 1;
        let f = self.files.get(file);
        let (line, entry) = match f.map(|f| f.format) {
            Some(Format::Json) => (None, pos.checked_sub(1)),
            _ => (Some(pos), None),
        };
        self.report.add(LineError {
            file: f.map(|f| f.path.display().to_string()).unwrap_or_default(),
            line,
            entry,
            error,
            expression,
        })
    }

    fn session(&mut self) -> Result<&mut Box<dyn WriteSession + 'a>, ImportError> {
        if self.session.is_none() {
            self.session = Some(self.store.write_session(self.tenant)?);
        }
        self.session
            .as_mut()
            .ok_or(ImportError::Internal("no session"))
    }

    /// Writes the queued resources; a failed one goes to the report, a fatal error ends.
    fn write_queued(&mut self) -> Result<(), ImportError> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let queued = std::mem::take(&mut self.queued);
        let (origins, puts): (Vec<(usize, u64)>, Vec<ExtractedPut>) =
            queued.into_iter().map(|q| ((q.file, q.pos), q.put)).unzip();
        let results = self.session()?.put_extracted_many(puts)?;
        for ((file, pos), result) in origins.into_iter().zip(results) {
            match result {
                Ok(outcome) => {
                    self.state.resources += 1;
                    self.discard(outcome);
                }
                Err(e) => self.fail(file, pos, e.to_string(), None)?,
            }
        }
        self.queued = Vec::with_capacity(PUT_GROUP);
        Ok(())
    }

    /// Hands a written body to the dropping thread (in batches).
    fn discard(&mut self, outcome: WriteOutcome) {
        self.garbage.push(outcome);
        if self.garbage.len() >= GARBAGE_BATCH {
            let full = std::mem::replace(&mut self.garbage, Vec::with_capacity(GARBAGE_BATCH));
            if let Some(dropper) = &self.dropper {
                // A gone dropper hands the batch back in the error: dropped here then.
                let _ = dropper.send(full);
            }
        }
    }

    /// Writes one resource; the inner error is a per-resource failure, the outer one fatal.
    fn put(&mut self, mut r: ReadyResource) -> Result<Result<(), String>, ImportError> {
        let session = self.session()?;
        if r.conditional {
            if let Err(e) = resolve_conditional(&mut **session, &mut r.body) {
                return Ok(Err(e));
            }
            r.entries = extract_entries(medicus_fhir::r4(), &r.resource_type, &r.body);
        }
        match session.put_extracted(
            &r.resource_type,
            &r.id,
            r.body,
            r.entries,
            Precondition::None,
        ) {
            Ok(outcome) => {
                self.discard(outcome);
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// Stops handing bodies to the dropping thread (so it can end).
    pub fn close_dropper(&mut self) {
        self.dropper = None;
    }

    /// Records checkpoints and commits the open batch (if any), then reports progress.
    pub fn commit(&mut self) -> Result<(), ImportError> {
        self.write_queued()?;
        let Some(mut session) = self.session.take() else {
            return Ok(());
        };
        for (file, cp) in std::mem::take(&mut self.pending) {
            if let Some(f) = self.files.get(file) {
                session.set_checkpoint(&checkpoint::key(self.tenant, &f.identity), &cp.encode())?;
            }
        }
        session.commit()?;
        // Errors of committed lines become visible together with the data.
        self.report.flush()?;
        self.in_batch = 0;
        self.bytes_in_batch = 0;
        self.state.batches += 1;
        self.state.elapsed_secs = self.started.elapsed().as_secs_f64();
        self.progress.update(&self.state);
        Ok(())
    }
}

/// Rewrites each `Type?criteria` reference to the one resource the criteria match.
fn resolve_conditional(session: &mut dyn WriteSession, value: &mut Value) -> Result<(), String> {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj.iter_mut() {
                match v {
                    Value::String(s) if k == "reference" => {
                        if let Some((rt, query)) = conditional_target(s) {
                            let id = find_one(session, rt, query)?;
                            *s = format!("{rt}/{id}");
                        }
                    }
                    _ => resolve_conditional(session, v)?,
                }
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| resolve_conditional(session, v)),
        _ => Ok(()),
    }
}

fn find_one(session: &mut dyn WriteSession, rt: &str, query: &str) -> Result<String, String> {
    let pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    let mut q = parse_search(medicus_fhir::r4(), Some(rt), &pairs)
        .map_err(|e| format!("conditional reference '{rt}?{query}': {e}"))?;
    if q.criteria.is_empty() || !q.ignored.is_empty() {
        return Err(format!(
            "conditional reference '{rt}?{query}' has no usable search criteria"
        ));
    }
    q.count = 2;
    q.total = false;
    q.cursor = None;
    let page = session
        .search(Some(rt), &q)
        .map_err(|e| format!("conditional reference '{rt}?{query}': {e}"))?;
    match page.resources.as_slice() {
        [one] if page.next_cursor.is_none() => Ok(one.id.clone()),
        [] => Err(format!(
            "conditional reference '{rt}?{query}' matches no resource"
        )),
        _ => Err(format!(
            "conditional reference '{rt}?{query}' matches several resources"
        )),
    }
}

fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}
