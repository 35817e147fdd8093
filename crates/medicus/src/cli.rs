//! The command line: every flag, its environment variable and its help text.
//!
//! Flags and environment variables are merged by clap (a flag wins over its variable); the
//! configuration file and the defaults are layered below them in [`crate::config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "medicus",
    version,
    about = "medicus: a multi-tenant FHIR R4 health-data platform",
    propagate_version = true
)]
pub struct Cli {
    /// Configuration file (TOML). Flags and environment variables override its values.
    #[arg(long, env = "MEDICUS_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log filter, e.g. `info` or `medicus_server=debug` (falls back to RUST_LOG, then `info`).
    #[arg(long, env = "MEDICUS_LOG", global = true, value_name = "FILTER")]
    pub log: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the FHIR server.
    Serve(ServeArgs),
    /// Run the server seeded (on first start) with a synthetic pilot of three hospitals, one
    /// tenant each, and print example requests to try.
    Demo(DemoArgs),
    /// Administration: tenants, users, OAuth clients, service tokens.
    Admin(AdminArgs),
    /// Import NDJSON files, Bundles or folders of them (also .gz) into a tenant.
    Import(crate::commands::import::ImportArgs),
    /// Write a synthetic MII-shaped pilot as FHIR NDJSON, one file per resource type.
    Generate(GenerateArgs),
    /// Run a benchmark case and print its results as a Markdown table.
    Bench(BenchArgs),
    /// Copy every tenant, resource and version from one store into another (e.g. a SQLite pilot
    /// into PostgreSQL) with progress, then verify that both hold the same data.
    Migrate(crate::commands::migrate::MigrateArgs),
    /// Audit trail: verify the hash chains (detects changed, deleted or reordered entries).
    Audit(crate::commands::audit::AuditArgs),
}

/// Where the data lives.
#[derive(Debug, Clone, Default, Args)]
pub struct DataArgs {
    /// Data directory [default: ./medicus-data]
    #[arg(long, env = "MEDICUS_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Store the resources in PostgreSQL instead of SQLite in the data directory:
    /// `postgres://user[:password]@host[:port]/database` (the data directory still holds import
    /// reports and Bulk Data files) [default: SQLite in the data directory]
    #[arg(long, env = "MEDICUS_DATABASE", value_name = "URL")]
    pub database: Option<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Address to listen on, `IP:PORT` or `HOST:PORT`; port 0 picks a free port
    /// [default: 127.0.0.1:8080]
    #[arg(long, env = "MEDICUS_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Largest accepted request body in bytes; larger requests get 413 [default: 16 MiB]
    #[arg(long, env = "MEDICUS_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Public origin for links (`fullUrl`, `Location`, paging) when behind a proxy, e.g.
    /// `https://fhir.example.org` [default: from the request's Host header]
    #[arg(long, env = "MEDICUS_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,

    /// File with the server key (32 bytes, base64) that seals TOTP seeds and signing keys;
    /// created with mode 0600 when missing [default: DATA/server.key]
    #[arg(long, env = "MEDICUS_SERVER_KEY_FILE", value_name = "FILE")]
    pub server_key_file: Option<PathBuf>,

    /// Reverse proxy whose `X-Forwarded-For` names the client (for the per-IP login limit
    /// and the audit), as an address or CIDR range; repeat or separate with commas
    /// [default: none, the peer address is the client's]
    #[arg(
        long = "trusted-proxy",
        env = "MEDICUS_TRUSTED_PROXIES",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,

    /// The trust centre's key file (32 bytes, base64, readable by the owner only) for
    /// `$pseudonymize` and `$de-pseudonymize`; keep it apart from the data directory
    /// [default: none, those operations answer 501]
    #[arg(long, env = "MEDICUS_TRUST_CENTRE_KEY_FILE", value_name = "FILE")]
    pub trust_centre_key_file: Option<PathBuf>,

    #[command(flatten)]
    pub s3: crate::commands::s3::S3Args,
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage tenants (each has its own FHIR base `/fhir/{tenant}`).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage users: create, roles per tenant, disable.
    #[command(subcommand)]
    User(crate::commands::auth_admin::UserCommand),
    /// Manage OAuth clients (SMART apps, backend services).
    #[command(subcommand)]
    Client(crate::commands::auth_admin::ClientCommand),
    /// Print a service access token for scripts.
    Token(crate::commands::auth_admin::TokenArgs),
    /// Manage S3 access keys (per tenant, with per-bucket permissions).
    #[command(subcommand, name = "s3-key")]
    S3Key(crate::commands::s3::S3KeyCommand),
    /// Manage a tenant's external OpenID providers (federated login).
    #[command(subcommand)]
    Idp(crate::commands::idp_admin::IdpCommand),
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; succeeds when it already exists.
    Create {
        /// Tenant id: 1-64 characters of A-Z a-z 0-9 - _
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the tenants, one per line.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Patients of the medium pilot hospital (the university hospital has 1.5×, the district
    /// hospital 0.5×). Only used when the data directory is seeded, on first start.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub patients: u64,
    /// Target mean number of resources per pilot patient.
    #[arg(long, default_value_t = 50, value_name = "R")]
    pub resources_per_patient: u32,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Number of patients.
    #[arg(long, value_name = "N")]
    pub patients: u64,
    /// Number of hospitals (Organizations with departments); patients are spread over them.
    #[arg(long, default_value_t = 3, value_name = "H")]
    pub hospitals: u32,
    /// Random seed: the same seed gives byte-identical output.
    #[arg(long, default_value_t = 42, value_name = "S")]
    pub seed: u64,
    /// Target mean number of resources per patient.
    #[arg(long, default_value_t = 100, value_name = "R")]
    pub resources_per_patient: u32,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub case: BenchCase,
}

#[derive(Debug, Subcommand)]
pub enum BenchCase {
    /// The S3 listener in this process: large-object PUT/GET throughput and 4 KiB PUT/GET
    /// operations per second, each against plain files with the same bytes in the same run.
    S3 {
        /// Size of the large objects in MiB
        #[arg(long, default_value_t = 64, value_name = "MIB")]
        large_mib: usize,
        /// Number of large objects
        #[arg(long, default_value_t = 4, value_name = "N")]
        large_count: usize,
        /// Seconds of each 4 KiB case
        #[arg(long, default_value_t = 10, value_name = "SECS")]
        small_secs: u64,
        /// Concurrent connections of the 4 KiB cases
        #[arg(long, default_value_t = 16, value_name = "N")]
        concurrency: usize,
        /// Work directory [default: a temporary directory, removed afterwards]
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
    },
    /// Single-writer throughput of FHIR transaction Bundles of 100 resources over HTTP, against
    /// the same writes straight into the store.
    Transactions {
        /// Number of transaction Bundles.
        #[arg(long, default_value_t = 200, value_name = "N")]
        transactions: usize,
    },
    /// The whole suite on synthetic data: generate, import, disk per resource, read by id,
    /// token and token+date search, count, export, peak RSS; each with a baseline.
    Suite {
        /// Data size: about this many resources (100 per patient)
        #[arg(long, default_value_t = 100_000, value_name = "N")]
        resources: u64,
        /// Concurrent connections for read by id
        #[arg(long, default_value_t = 64, value_name = "N")]
        concurrency: usize,
        /// Seconds of each concurrent HTTP load run
        #[arg(long, default_value_t = 10, value_name = "SECS")]
        load_secs: u64,
        /// Repetitions of each search
        #[arg(long, default_value_t = 30, value_name = "N")]
        runs: usize,
        /// Where the temporary work directory goes [default: the system temp dir]
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// Keep the store in DIR instead of a temporary directory; a later run with the same
        /// --resources reuses it and skips generate and import
        #[arg(long, value_name = "DIR", conflicts_with = "work_dir")]
        data: Option<PathBuf>,
        /// Skip the $export phase
        #[arg(long)]
        skip_export: bool,
        /// Measure PostgreSQL instead of SQLite: postgres://user@host[:port]/database (tenant
        /// `bench`; with --data, a later run reuses the tenant when it holds the data set).
        /// Deliberately no environment variable: a benchmark never picks up MEDICUS_DATABASE
        #[arg(long, value_name = "URL")]
        database: Option<String>,
        /// Run SQLite and this PostgreSQL database side by side: one generate, an import into
        /// each, every phase on both, and a table with the ratios PostgreSQL ÷ SQLite
        #[arg(long, value_name = "URL", conflicts_with = "database")]
        compare_postgres: Option<String>,
    },
    /// The feasibility engine: index build from the store (facts/s, memory), a 1- and a
    /// 5-criterion cohort query (p50/p95), exact counts checked against a scan of the NDJSON,
    /// snapshot save/load, write-to-counted latency; optionally DuckDB over Parquet.
    Cohort {
        /// Number of synthetic patients (about 100 resources each)
        #[arg(long, default_value_t = 10_000, value_name = "N")]
        patients: u64,
        /// Repetitions of each query
        #[arg(long, default_value_t = 200, value_name = "N")]
        runs: usize,
        /// Keep the data here (reused by the next run) [default: a temporary directory]
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// A Python with the `duckdb` module: compare with DuckDB over the data as Parquet
        #[arg(long, value_name = "PYTHON")]
        duckdb: Option<PathBuf>,
        /// Skip the reference evaluator's check of the exact counts
        #[arg(long)]
        no_verify: bool,
    },
    /// Several medicus nodes on one PostgreSQL database: 1, 2, … in-process servers, each with
    /// its own connection pool, runtime and port, under a read mix and a write mix spread over
    /// them by the concurrent loader; throughput, latencies and CPU use per node count.
    Nodes {
        /// The shared database: postgres://user@host[:port]/database (tenant `bench`)
        #[arg(long, value_name = "URL")]
        database: String,
        /// Data size: about this many resources (100 per patient)
        #[arg(long, default_value_t = 100_000, value_name = "N")]
        resources: u64,
        /// Largest number of nodes; runs with 1, 2, … up to N
        #[arg(long, default_value_t = 2, value_name = "N")]
        nodes: usize,
        /// Concurrent loader connections, spread over the nodes
        #[arg(long, default_value_t = 64, value_name = "N")]
        concurrency: usize,
        /// Seconds of each load run
        #[arg(long, default_value_t = 10, value_name = "SECS")]
        load_secs: u64,
        /// Where the temporary work directory goes [default: the system temp dir]
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// The kept directory of `bench suite --data DIR --database URL`: reuses its data set
        /// (or generates and imports one and keeps it)
        #[arg(long, value_name = "DIR", conflicts_with = "work_dir")]
        data: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
