//! Logs go to stderr through `tracing`. Only operational facts are logged (addresses, counts,
//! timings, tenant ids); never resource contents or search parameters, which may hold personal data.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::error::CliError;

/// Libraries whose debug and trace events carry data: the PostgreSQL client logs statements
/// with their parameters (search values, bodies). They never log below `info`, whatever the
/// filter says.
const DATA_LOGGING_CRATES: [&str; 2] = ["tokio_postgres", "postgres"];

/// Install the global subscriber with `filter` (tracing-subscriber `EnvFilter` syntax).
pub fn init(filter: &str) -> Result<(), CliError> {
    let mut env_filter = EnvFilter::try_new(filter).map_err(|e| CliError::LogFilter {
        filter: filter.to_owned(),
        message: e.to_string(),
    })?;
    for krate in DATA_LOGGING_CRATES {
        // Later directives for the same target replace earlier ones: this one wins.
        if let Ok(directive) = format!("{krate}=info").parse() {
            env_filter = env_filter.add_directive(directive);
        }
    }
    // A second initialisation (only possible in tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    Ok(())
}
