//! The medicus benchmark suite. Each case prepares its own data in a temporary directory, runs
//! the measured work with a baseline in the same invocation, and returns report rows; the CLI
//! (`medicus bench …`) prints them as a table. Timing claims live here, never in tests.

pub mod cases;
mod fixture;
mod report;
mod server;
mod stats;

pub use report::{Report, Row};

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
}

impl From<reqwest::Error> for BenchError {
    fn from(e: reqwest::Error) -> Self {
        BenchError::Http(e.to_string())
    }
}
