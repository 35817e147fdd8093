//! Errors of the research core. Messages never carry identities, pseudonyms or key material:
//! they end up in logs and OperationOutcomes.

use medicus_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ResearchError {
    #[error("trust-centre key: {0}")]
    Key(String),
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("illegal transition: {0}")]
    IllegalTransition(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("stored research record is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = ResearchError> = std::result::Result<T, E>;
