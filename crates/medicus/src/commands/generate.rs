//! `medicus generate`: the synthetic pilot as NDJSON, with a progress bar.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use medicus_synth::{GeneratorConfig, write_ndjson};

use crate::cli::GenerateArgs;
use crate::error::CliError;

pub fn run(args: &GenerateArgs) -> Result<(), CliError> {
    let config = GeneratorConfig {
        patients: args.patients,
        hospitals: args.hospitals,
        seed: args.seed,
        resources_per_patient: args.resources_per_patient,
        ..GeneratorConfig::default()
    };
    config.validate()?;
    let bar = progress_bar(args.patients);
    let started = Instant::now();
    let summary = write_ndjson(&config, &args.out, |done| bar.set_position(done))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    super::say(format_args!(
        "medicus: wrote {} resources of {} patients to {} in {secs:.1} s ({:.0} resources/s)",
        summary.resources,
        summary.patients,
        args.out.display(),
        summary.resources as f64 / secs.max(1e-9)
    ));
    for (ty, n) in summary.by_type.iter().filter(|(_, n)| *n > 0) {
        super::say(format_args!("  {ty:<28} {n:>12}"));
    }
    Ok(())
}

/// A bar on a terminal; hidden otherwise (CI logs get the summary line only).
fn progress_bar(patients: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(patients);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} patients ({per_sec}, ETA {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}
