//! `medicus audit verify [--tenant T]`: checks the audit hash chains in the store.

use clap::{Args, Subcommand};

use crate::cli::DataArgs;
use crate::config::{Database, FileConfig, database};
use crate::error::CliError;

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Walk every audit chain (or one tenant's) and check each entry's hash and position:
    /// prints the entries checked per chain, or names the first modified, missing or
    /// reordered entry and exits with 1.
    Verify {
        /// Only this tenant's chain (`_platform` for platform events) [default: all chains]
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub fn run(args: &AuditArgs, file: &FileConfig) -> Result<(), CliError> {
    match &args.command {
        AuditCommand::Verify { tenant, data } => verify(tenant.as_deref(), data, file),
    }
}

fn verify(tenant: Option<&str>, data: &DataArgs, file: &FileConfig) -> Result<(), CliError> {
    let database = database(data, file)?;
    // Verifying never creates a local store.
    if let Database::Sqlite(dir) = &database
        && !dir.is_dir()
    {
        return Err(CliError::NoDataDir(dir.clone()));
    }
    let store = super::open_store(&database)?;
    let reports = match tenant {
        Some(t) => vec![medicus_audit::verify(&*store, t)?],
        None => medicus_audit::verify_all(&*store)?,
    };
    if reports.is_empty() {
        super::say(format_args!("no audit chains"));
    }
    let mut failed = Vec::new();
    for r in &reports {
        match &r.problem {
            None => super::say(format_args!(
                "chain {}: {} entries checked, OK",
                r.chain, r.checked
            )),
            Some(p) => {
                super::say(format_args!(
                    "chain {}: TAMPERED: {p} ({} entries intact before it)",
                    r.chain, r.last_good_seq
                ));
                failed.push(format!("chain {}: {p}", r.chain));
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Io {
            context: "audit verification failed",
            source: std::io::Error::other(failed.join("; ")),
        })
    }
}
