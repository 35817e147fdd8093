//! Progress reporting: the importer calls a [`ProgressSink`] after every committed batch; the CLI
//! shows an `indicatif` bar, the `$import` job turns it into `X-Progress`.
//!
//! Progress is measured in input bytes (compressed bytes for `.gz`) because the total is known
//! before the first line is read, which makes the ETA meaningful; resources/s is in the message.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where an import stands, after a committed batch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    /// Input bytes consumed so far (including skipped, already imported parts).
    pub bytes_done: u64,
    /// Input bytes of all files.
    pub bytes_total: u64,
    /// Resources written so far in this run.
    pub resources: u64,
    /// Lines or entries that failed so far.
    pub failed: u64,
    /// Batches committed so far in this run.
    pub batches: u64,
    /// Seconds since the import started.
    pub elapsed_secs: f64,
}

impl Progress {
    pub fn resources_per_sec(&self) -> f64 {
        if self.elapsed_secs > 0.0 {
            self.resources as f64 / self.elapsed_secs
        } else {
            0.0
        }
    }

    /// Percent of the input consumed, 0–100.
    pub fn percent(&self) -> f64 {
        if self.bytes_total == 0 {
            100.0
        } else {
            (self.bytes_done as f64 * 100.0 / self.bytes_total as f64).min(100.0)
        }
    }

    /// A short text for `X-Progress` and logs.
    pub fn describe(&self) -> String {
        format!(
            "{:.0}% ({} resources, {} failed, {:.0}/s)",
            self.percent(),
            self.resources,
            self.failed,
            self.resources_per_sec()
        )
    }
}

/// Receives progress updates. Called from the writer thread, so it must be cheap.
pub trait ProgressSink: Sync {
    fn update(&self, progress: &Progress);
    /// Called once at the end (also after a cancellation or a fatal error).
    fn finish(&self, _progress: &Progress) {}
}

/// Discards progress.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn update(&self, _progress: &Progress) {}
}

/// A terminal progress bar over input bytes, with resources/s and ETA. Draws nothing when
/// stderr is not a terminal (CI, pipes), where only the final summary line is wanted.
pub struct BarProgress {
    bar: ProgressBar,
}

impl BarProgress {
    pub fn new(total_bytes: u64) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(250));
        BarProgress { bar }
    }

    /// True when a bar would be visible (stderr is a terminal).
    pub fn visible(&self) -> bool {
        !self.bar.is_hidden()
    }
}

impl ProgressSink for BarProgress {
    fn update(&self, p: &Progress) {
        self.bar.set_position(p.bytes_done);
        self.bar.set_message(format!(
            "{} resources, {:.0}/s, {} failed",
            p.resources,
            p.resources_per_sec(),
            p.failed
        ));
    }

    fn finish(&self, p: &Progress) {
        self.update(p);
        self.bar.finish_and_clear();
    }
}
