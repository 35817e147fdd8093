//! `medicus import [--data DIR] [--tenant T] [--report FILE] [--batch-size N] PATH...`: NDJSON
//! files, Bundles and folders of them (also `.gz`) into a tenant, with a progress bar.
//!
//! Exit codes: 0 when everything was imported, 1 when some lines failed (the rest is imported
//! and the failures are in the report file), 2 for usage errors (no such path, unknown tenant).

use std::path::PathBuf;

use clap::Args;
use medicus_bulk::import::{
    BarProgress, ImportError, ImportOptions, ImportSummary, Importer, ProgressSink,
    default_report_path, expand,
};
use medicus_store::tenant::validate_tenant_id;

use crate::cli::DataArgs;
use crate::config::{FileConfig, data_dir, database};
use crate::error::CliError;

/// The tenant every data directory has (created on first use, as by `serve`).
const DEFAULT_TENANT: &str = "default";

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Tenant to import into; other than `default` it must exist
    /// (`medicus admin tenant create`)
    #[arg(long, env = "MEDICUS_TENANT", default_value = DEFAULT_TENANT, value_name = "TENANT")]
    pub tenant: String,

    /// Where to write per-line errors (NDJSON: file, line, error, expression)
    /// [default: <data>/import-reports/<timestamp>.ndjson]
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Resources per committed (durable) batch
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: u32,

    /// NDJSON files (`.ndjson`), JSON files (a Bundle or one resource, `.json`), also gzipped
    /// (`.gz`), or folders of them (searched recursively)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

pub fn run(args: ImportArgs, file: &FileConfig) -> Result<(), CliError> {
    validate_tenant_id(&args.tenant)?;
    // Check the inputs before touching the data directory, so a typo changes nothing.
    let files = expand(&args.paths).map_err(CliError::Import)?;
    let data = data_dir(&args.data, file);
    let store = super::open_store(&database(&args.data, file)?)?;
    if args.tenant == DEFAULT_TENANT {
        store.create_tenant(DEFAULT_TENANT)?;
    }
    let options = ImportOptions {
        batch_size: args.batch_size as usize,
        report_path: Some(
            args.report
                .clone()
                .unwrap_or_else(|| default_report_path(&data.join("import-reports"))),
        ),
        ..ImportOptions::default()
    };
    let total: u64 = files.iter().map(|f| f.size).sum();
    let bar = BarProgress::new(total);
    let importer = Importer::new(store, args.tenant.clone(), options);
    let summary = importer
        .import_files(&files, &bar as &dyn ProgressSink)
        .map_err(CliError::Import)?;
    super::say(format_args!("{}", summary_line(&args.tenant, &summary)));
    if let Some(report) = &summary.report {
        super::say(format_args!(
            "{} failed lines are listed in {}",
            summary.failed,
            report.display()
        ));
    }
    if summary.failed > 0 {
        return Err(CliError::ImportIncomplete(summary.failed));
    }
    Ok(())
}

fn summary_line(tenant: &str, s: &ImportSummary) -> String {
    let skipped = if s.skipped_files > 0 {
        format!(", {} files already imported", s.skipped_files)
    } else {
        String::new()
    };
    format!(
        "imported {} resources into tenant {tenant} from {} files in {:.1} s ({:.0} resources/s), {} failed{skipped}",
        s.resources,
        s.files,
        s.elapsed.as_secs_f64(),
        s.resources_per_sec(),
        s.failed,
    )
}

/// Exit code of an import error: wrong arguments are usage errors.
pub fn exit_code(error: &ImportError) -> u8 {
    match error {
        ImportError::NoSuchPath { .. } | ImportError::UnknownTenant(_) => 2,
        _ => 1,
    }
}
