use thiserror::Error;

/// Errors of the storage layer. The HTTP edge maps them to OperationOutcomes.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("unknown tenant '{0}'")]
    UnknownTenant(String),
    #[error("invalid tenant id '{0}': use 1-64 characters of A-Z a-z 0-9 - _")]
    InvalidTenantId(String),
    #[error(
        "{resource_type}/{id}: version conflict, current version is {current:?}, expected {expected}"
    )]
    VersionConflict {
        resource_type: String,
        id: String,
        expected: i64,
        current: Option<i64>,
    },
    #[error("invalid search: {0}")]
    InvalidSearch(String),
    #[error("storage error: {0}")]
    Database(String),
    /// The database cannot be reached (connection refused or lost, server shutting down, no
    /// pooled connection within the timeout). Transient: the HTTP edge answers 503, and the same
    /// request may succeed once the database is back.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A search stopped because it ran longer than the backend allows (PostgreSQL's
    /// `statement_timeout`): the client should narrow it.
    #[error("the search was stopped: it ran longer than the server allows ({0})")]
    TooCostly(String),
    /// A platform document write whose `DocExpect` did not hold.
    #[error("document {ns}/{key} changed concurrently or does not match the expected version")]
    DocConflict { ns: String, key: String },
    /// An access-checked session (the HTTP layer's guard) refused the operation: the caller's
    /// token does not allow it. Never raised by a backend itself.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}
