//! The subcommands. Each receives the already merged flags/environment plus the configuration file.

pub mod admin;
pub mod bench;
pub mod demo;
pub mod generate;
pub mod import;
pub mod serve;

use std::fmt::Arguments;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use medicus_store::SqliteStore;

use crate::cli::{Cli, Command};
use crate::config::{self, FileConfig};
use crate::error::CliError;

pub fn run(cli: Cli) -> Result<(), CliError> {
    let file = FileConfig::load_optional(cli.config.as_deref())?;
    let rust_log = std::env::var("RUST_LOG").ok();
    crate::logging::init(&config::log_filter(
        cli.log.as_deref(),
        rust_log.as_deref(),
        &file,
    ))?;
    match cli.command {
        Command::Serve(args) => serve::run(&args, &file),
        Command::Demo(args) => demo::run(&args, &file),
        Command::Admin(args) => admin::run(args, &file),
        Command::Generate(args) => generate::run(&args),
        Command::Bench(args) => bench::run(args),
        Command::Import(args) => import::run(args, &file),
    }
}

/// Open (and on first use create) the store in `data`.
pub(crate) fn open_store(data: &Path) -> Result<Arc<SqliteStore>, CliError> {
    std::fs::create_dir_all(data).map_err(|source| CliError::DataDir {
        path: data.to_owned(),
        source,
    })?;
    Ok(Arc::new(SqliteStore::open(data)?))
}

/// Print a line on stdout. A closed stdout (`medicus admin tenant list | head -0`, a supervisor
/// without stdout) is no reason to panic; the output is informational.
pub(crate) fn say(line: Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
}
