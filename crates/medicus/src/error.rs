//! Errors at the CLI edge and their exit codes: 2 for usage and configuration errors, 1 for
//! runtime errors.

use std::path::PathBuf;

use medicus_store::StoreError;
use thiserror::Error;

use crate::config::ConfigError;

#[derive(Debug, Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid log filter '{filter}': {message}")]
    LogFilter { filter: String, message: String },
    #[error("invalid listen address '{addr}': {message}")]
    ListenAddress { addr: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("no data directory at {} (run `medicus serve` or `medicus admin tenant create` first)", .0.display())]
    NoDataDir(PathBuf),
    #[error("data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Import(medicus_bulk::import::ImportError),
    #[error("{0} lines could not be imported (the rest was)")]
    ImportIncomplete(u64),
    #[error(transparent)]
    Synth(#[from] medicus_synth::SynthError),
    #[error("benchmark failed: {0}")]
    Bench(#[from] medicus_bench::BenchError),
    #[error("migrate: {0}")]
    Migrate(String),
    #[error(transparent)]
    Auth(#[from] medicus_auth::AuthError),
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        source: std::io::Error,
    },
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_)
            | CliError::LogFilter { .. }
            | CliError::ListenAddress { .. }
            | CliError::Store(StoreError::InvalidTenantId(_))
            | CliError::Synth(medicus_synth::SynthError::InvalidConfig(_))
            | CliError::Auth(
                medicus_auth::AuthError::Invalid(_) | medicus_auth::AuthError::InvalidScope { .. },
            ) => 2,
            CliError::Listen { .. }
            | CliError::NoDataDir(_)
            | CliError::DataDir { .. }
            | CliError::Store(_)
            | CliError::Io { .. }
            | CliError::Synth(_)
            | CliError::Bench(_)
            | CliError::Migrate(_)
            | CliError::Auth(_)
            | CliError::ImportIncomplete(_) => 1,
            CliError::Import(e) => crate::commands::import::exit_code(e),
        }
    }
}
