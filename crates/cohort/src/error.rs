//! Typed errors of the cohort crate.

use thiserror::Error;

/// A query that cannot be run: answered with 400 and the pointer to the failing part.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    /// The body is not JSON, or the text form does not parse.
    #[error("{message}")]
    Syntax { message: String },
    /// A schema or semantic violation at `pointer` (a JSON pointer into the CCDL document).
    #[error("{pointer}: {message}")]
    Invalid { pointer: String, message: String },
    /// Over a size limit (criteria, codes per criterion, nesting).
    #[error("{pointer}: {message}")]
    TooLarge { pointer: String, message: String },
}

impl QueryError {
    /// The JSON pointer of the failing part, when there is one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            QueryError::Syntax { .. } => None,
            QueryError::Invalid { pointer, .. } | QueryError::TooLarge { pointer, .. } => {
                Some(pointer)
            }
        }
    }
}

/// Failures of the engine itself (store access, snapshots).
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("store: {0}")]
    Store(#[from] medicus_store::StoreError),
    #[error("snapshot i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("snapshot is unusable: {0}")]
    Snapshot(String),
    #[error("reading data: {0}")]
    Data(String),
}
