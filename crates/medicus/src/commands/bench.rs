//! `medicus bench`: run a benchmark case and print its Markdown table (paste into BENCHMARKS.md).

use medicus_bench::cases::suite::{self, SuiteOptions};
use medicus_bench::cases::transactions::{self, TransactionOptions};

use crate::cli::{BenchArgs, BenchCase};
use crate::error::CliError;

pub fn run(args: BenchArgs) -> Result<(), CliError> {
    let report = match args.case {
        BenchCase::Transactions { transactions } => {
            transactions::run(&TransactionOptions { transactions })?
        }
        BenchCase::Suite {
            resources,
            concurrency,
            load_secs,
            runs,
            work_dir,
            data,
            skip_export,
        } => suite::run(&SuiteOptions {
            resources,
            concurrency,
            load_duration: std::time::Duration::from_secs(load_secs),
            runs,
            work_dir,
            data_dir: data,
            skip_export,
            ..SuiteOptions::default()
        })?,
    };
    super::say(format_args!("{report}"));
    Ok(())
}
