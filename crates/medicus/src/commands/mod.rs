//! The subcommands. Each receives the already merged flags/environment plus the configuration file.

pub mod admin;
pub mod audit;
pub mod auth_admin;
pub mod bench;
pub mod demo;
pub mod generate;
pub mod idp_admin;
pub mod import;
pub mod migrate;
pub mod s3;
pub mod s3_bench;
pub mod serve;

use std::fmt::Arguments;
use std::io::Write;
use std::sync::Arc;

use medicus_store::{PostgresOptions, PostgresStore, SqliteStore, Store};

use crate::cli::{Cli, Command};
use crate::config::{self, Database, FileConfig};
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
        Command::Migrate(args) => migrate::run(&args, &file),
        Command::Audit(args) => audit::run(&args, &file),
    }
}

/// Open (and on first use create) the store: SQLite in a directory, or a PostgreSQL database
/// (connected, its schema migrated). An unreachable database is an error right here.
pub(crate) fn open_store(database: &Database) -> Result<Arc<dyn Store>, CliError> {
    match database {
        Database::Sqlite(data) => {
            std::fs::create_dir_all(data).map_err(|source| CliError::DataDir {
                path: data.to_owned(),
                source,
            })?;
            Ok(Arc::new(SqliteStore::open(data)?))
        }
        Database::Postgres(url) => Ok(Arc::new(PostgresStore::connect(
            url,
            PostgresOptions::default(),
        )?)),
    }
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
