//! The medicus benchmark suite. Each case prepares its own data in a temporary directory, runs
//! the measured work with a baseline in the same invocation, and returns report rows; the CLI
//! (`medicus bench …`) prints them as a table. Timing claims live here, never in tests.

pub mod cases;
mod cpu;
mod fixture;
pub mod loader;
mod pg;
mod report;
mod rss;
mod server;
mod stats;

pub use report::{Report, Row, Table};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("store: {0}")]
    Store(#[from] medicus_store::StoreError),
    #[error("http: {0}")]
    Http(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    #[error("invalid benchmark settings: {0}")]
    Invalid(String),
    #[error("generate: {0}")]
    Synth(#[from] medicus_synth::SynthError),
    #[error("import: {0}")]
    Import(#[from] medicus_bulk::import::ImportError),
    #[error("PostgreSQL: {0}")]
    Postgres(String),
}

impl From<reqwest::Error> for BenchError {
    fn from(e: reqwest::Error) -> Self {
        BenchError::Http(e.to_string())
    }
}
