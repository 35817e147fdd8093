//! `medicus bench`: run a benchmark case and print its Markdown table (paste into BENCHMARKS.md).

use medicus_bench::cases::cohort::{self, CohortOptions};
use medicus_bench::cases::nodes::{self, NodesOptions};
use medicus_bench::cases::suite::{self, Backend, SuiteOptions};
use medicus_bench::cases::transactions::{self, TransactionOptions};

use crate::cli::{BenchArgs, BenchCase, DataArgs};
use crate::config::{self, ConfigError, Database, FileConfig};
use crate::error::CliError;

pub fn run(args: BenchArgs) -> Result<(), CliError> {
    let report = match args.case {
        BenchCase::S3 {
            large_mib,
            large_count,
            small_secs,
            concurrency,
            work_dir,
        } => {
            let table = super::s3_bench::run(&super::s3_bench::S3BenchOptions {
                large_mib,
                large_count,
                small_secs,
                concurrency,
                work_dir,
            })?;
            super::say(format_args!("{table}"));
            return Ok(());
        }
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
            database,
            compare_postgres,
        } => {
            let backend = match database {
                Some(url) => Backend::Postgres(postgres_url("database", &url)?),
                None => Backend::Sqlite,
            };
            let compare_postgres = compare_postgres
                .map(|url| postgres_url("compare-postgres", &url))
                .transpose()?;
            suite::run(&SuiteOptions {
                resources,
                concurrency,
                load_duration: std::time::Duration::from_secs(load_secs),
                runs,
                work_dir,
                data_dir: data,
                skip_export,
                backend,
                compare_postgres,
                ..SuiteOptions::default()
            })?
        }
        BenchCase::Cohort {
            patients,
            runs,
            work_dir,
            duckdb,
            no_verify,
        } => cohort::run(&CohortOptions {
            patients,
            runs,
            work_dir,
            duckdb_python: duckdb,
            verify: !no_verify,
        })?,
        BenchCase::Nodes {
            database,
            resources,
            nodes,
            concurrency,
            load_secs,
            work_dir,
            data,
        } => nodes::run(&NodesOptions {
            database: postgres_url("database", &database)?,
            resources,
            nodes,
            concurrency,
            load_duration: std::time::Duration::from_secs(load_secs),
            work_dir,
            data_dir: data,
            ..NodesOptions::default()
        })?,
    };
    super::say(format_args!("{report}"));
    Ok(())
}

/// A benchmark's database, read as `--database` of the other commands reads it; the suite's
/// SQLite store lives in its work directory, so only a PostgreSQL URL is meaningful here.
fn postgres_url(flag: &'static str, value: &str) -> Result<String, ConfigError> {
    let args = DataArgs {
        data: None,
        database: Some(value.to_owned()),
    };
    match config::database(&args, &FileConfig::default()) {
        Ok(Database::Postgres(url)) => Ok(url),
        Ok(Database::Sqlite(_)) => Err(ConfigError::Invalid {
            key: flag,
            message: "expected postgres://user@host[:port]/database; the SQLite store of a benchmark is in its work directory".into(),
        }),
        Err(ConfigError::Invalid { message, .. }) => Err(ConfigError::Invalid { key: flag, message }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_databases_must_be_postgres_urls() {
        assert_eq!(
            postgres_url("database", " postgres://u@h:5/db ").expect("url"),
            "postgres://u@h:5/db"
        );
        for bad in ["sqlite:/tmp/x", "/var/lib/medicus", "mysql://h/db"] {
            match postgres_url("compare-postgres", bad) {
                Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "compare-postgres"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
