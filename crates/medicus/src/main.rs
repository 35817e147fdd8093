//! `medicus`: the command-line entry point. Parsing, configuration and the commands live in
//! their modules; this file only maps the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod config;
mod error;
mod logging;

// Bulk paths hand memory between threads (parsed on workers, written and freed elsewhere);
// glibc malloc spends most of the import workers' time on arena locks and consolidation there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with 2 (0 for --help and --version).
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("medicus: error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
