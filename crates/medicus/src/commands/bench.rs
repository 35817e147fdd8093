//! `medicus bench`: run a benchmark case and print its Markdown table (paste into BENCHMARKS.md).

use medicus_bench::cases::transactions::{self, TransactionOptions};

use crate::cli::{BenchArgs, BenchCase};
use crate::error::CliError;

pub fn run(args: BenchArgs) -> Result<(), CliError> {
    let report = match args.case {
        BenchCase::Transactions { transactions } => {
            transactions::run(&TransactionOptions { transactions })?
        }
    };
    super::say(format_args!("{report}"));
    Ok(())
}
