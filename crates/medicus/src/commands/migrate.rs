//! `medicus migrate --from sqlite:DIR --to postgres://…`: copy a store into another, with every
//! version of every resource, then verify that both hold the same data.
//!
//! The copy replays the source's change feed in commit order: each version is read from the
//! source and written to the target with its own `lastUpdated`, so version numbers, times and
//! history come out identical. A checkpoint in the target, committed with each batch, lets an
//! interrupted copy resume where it stopped; the source can keep serving while it runs (what
//! commits later is copied when the command runs again). Verification compares, per tenant and
//! resource type, the number of current resources and an order-independent digest of their stored
//! JSON, and the number of versions.

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use medicus_store::api::{HistoryQuery, HistoryScope, Precondition, Store};
use medicus_store::search::SearchQuery;
use xxhash_rust::xxh3::xxh3_64;

use super::{open_store, say};
use crate::config::{self, Database, FileConfig};
use crate::error::CliError;

/// Changes read from the source feed at a time, and written per target transaction at most.
const BATCH: usize = 5_000;

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The store to copy from: `sqlite:DIR` (or a directory) or `postgres://…`.
    #[arg(long, value_name = "STORE")]
    pub from: String,
    /// The store to copy into: `postgres://…` or `sqlite:DIR`. Its tenants must be empty unless
    /// it holds the checkpoint of an earlier run of the same copy (then the copy resumes).
    #[arg(long, value_name = "STORE")]
    pub to: String,
    /// Only verify (compare the two stores), copy nothing.
    #[arg(long)]
    pub verify_only: bool,
}

fn parse_store(value: &str, file: &FileConfig) -> Result<Database, CliError> {
    let value = value.trim();
    let args = crate::cli::DataArgs {
        data: None,
        database: Some(
            if medicus_store::postgres::is_postgres_url(value) || value.starts_with("sqlite:") {
                value.to_owned()
            } else {
                format!("sqlite:{value}")
            },
        ),
    };
    Ok(config::database(&args, file)?)
}

pub fn run(args: &MigrateArgs, file: &FileConfig) -> Result<(), CliError> {
    let from = parse_store(&args.from, file)?;
    let to = parse_store(&args.to, file)?;
    if from == to {
        return Err(CliError::Migrate(
            "--from and --to name the same store".into(),
        ));
    }
    if let Database::Sqlite(dir) = &from
        && !dir.join("medicus.db").exists()
    {
        return Err(CliError::NoDataDir(dir.clone()));
    }
    let source = open_store(&from)?;
    let target = open_store(&to)?;
    say(format_args!(
        "migrating {} → {}",
        from.describe(),
        to.describe()
    ));
    if !args.verify_only {
        copy(&*source, &*target, &checkpoint_key(&from))?;
    }
    verify(&*source, &*target)
}

/// The checkpoint of a copy from `from`: a target holding it is resumed, not refused.
fn checkpoint_key(from: &Database) -> String {
    format!("migrate:{}", from.describe())
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{what} [{{bar:30}}] {{pos}}/{{len}} ({{per_sec}}, eta {{eta}})"
    )) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Versions in `tenant` (history of the whole tenant).
fn versions(store: &dyn Store, tenant: &str) -> Result<u64, CliError> {
    let mut s = store.read_session(tenant)?;
    let page = s.history(
        HistoryScope::System,
        &HistoryQuery {
            count: 1,
            ..HistoryQuery::default()
        },
    )?;
    Ok(page.total)
}

fn copy(source: &dyn Store, target: &dyn Store, key: &str) -> Result<(), CliError> {
    let started = Instant::now();
    let resume_after = target
        .checkpoint(key)?
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| CliError::Migrate(format!("checkpoint {key} is not a position: {v}")))
        })
        .transpose()?;
    let tenants = source.list_tenants()?;
    let mut total = 0;
    for tenant in &tenants {
        total += versions(source, tenant)?;
        if !target.tenant_exists(tenant)? {
            target.create_tenant(tenant)?;
        } else if resume_after.is_none() && versions(target, tenant)? > 0 {
            return Err(CliError::Migrate(format!(
                "tenant {tenant} already holds data in the target; migrate into empty tenants"
            )));
        }
    }
    let progress = bar(total, "copying versions");
    if resume_after.is_some() {
        let done: u64 = tenants
            .iter()
            .map(|t| versions(target, t))
            .sum::<Result<u64, CliError>>()?;
        progress.set_position(done);
    }
    let mut after = resume_after.unwrap_or(0);
    let mut copied = 0u64;
    loop {
        let changes = source.changes(after, BATCH)?;
        let Some(last) = changes.last() else {
            break;
        };
        let last_tx = last.tx;
        // One target transaction per run of changes of one tenant; the checkpoint goes with the
        // last of them, so a resumed copy never repeats or skips a version.
        let mut start = 0;
        while start < changes.len() {
            let tenant = &changes[start].tenant;
            let end = changes[start..]
                .iter()
                .position(|c| &c.tenant != tenant)
                .map_or(changes.len(), |n| start + n);
            let mut reader = source.read_session(tenant)?;
            let mut writer = target.write_session(tenant)?;
            for change in &changes[start..end] {
                let Some(version) =
                    reader.vread(&change.resource_type, &change.id, change.version)?
                else {
                    return Err(CliError::Migrate(format!(
                        "{}/{} version {} is in the change feed but cannot be read",
                        change.resource_type, change.id, change.version
                    )));
                };
                writer.set_timestamp_us(version.last_updated_us)?;
                let written = match version.body {
                    Some(body) => Some(
                        writer
                            .put(&change.resource_type, &change.id, body, Precondition::None)?
                            .version
                            .version,
                    ),
                    None => writer
                        .delete(&change.resource_type, &change.id, Precondition::None)?
                        .map(|v| v.version),
                };
                if written != Some(change.version) {
                    return Err(CliError::Migrate(format!(
                        "{}/{}: the target wrote version {written:?} for version {} of the source",
                        change.resource_type, change.id, change.version
                    )));
                }
                copied += 1;
                progress.inc(1);
            }
            // Resume after the last change of this run: a feed page never ends inside a
            // session, and a run ends where the next tenant's session begins.
            writer.set_checkpoint(key, &changes[end - 1].tx.to_string())?;
            writer.commit()?;
            start = end;
        }
        after = last_tx;
    }
    progress.finish_and_clear();
    say(format_args!(
        "copied {copied} versions of {} tenants in {:.1} s",
        tenants.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Per resource type: the number of current resources and the sum of digests of their stored JSON.
type Digest = BTreeMap<String, (u64, u64)>;

fn digest(store: &dyn Store, tenant: &str, progress: &ProgressBar) -> Result<Digest, CliError> {
    let mut out = Digest::new();
    let mut session = store.read_session(tenant)?;
    for rt in medicus_fhir::r4().resource_types() {
        let q = SearchQuery {
            count: medicus_store::search::MAX_COUNT,
            total: false,
            ..SearchQuery::default()
        };
        let (mut n, mut sum) = (0u64, 0u64);
        session.scan_raw(Some(rt), &q, &mut |r| {
            n += 1;
            // Order-independent: the two stores list resources in their own key order.
            sum = sum.wrapping_add(xxh3_64(&r.json) ^ xxh3_64(r.id.as_bytes()).rotate_left(1));
            progress.inc(1);
            Ok(true)
        })?;
        if n > 0 {
            out.insert((*rt).to_owned(), (n, sum));
        }
    }
    Ok(out)
}

fn verify(source: &dyn Store, target: &dyn Store) -> Result<(), CliError> {
    let tenants = source.list_tenants()?;
    let progress = ProgressBar::new_spinner();
    progress.set_message("verifying");
    let (mut resources, mut all_versions) = (0u64, 0u64);
    for tenant in &tenants {
        if !target.tenant_exists(tenant)? {
            return Err(CliError::Migrate(format!(
                "verification failed: tenant {tenant} is missing in the target"
            )));
        }
        let (a, b) = (versions(source, tenant)?, versions(target, tenant)?);
        if a != b {
            return Err(CliError::Migrate(format!(
                "verification failed: tenant {tenant} has {a} versions in the source and {b} in the target"
            )));
        }
        all_versions += a;
        let (a, b) = (
            digest(source, tenant, &progress)?,
            digest(target, tenant, &progress)?,
        );
        for rt in a.keys().chain(b.keys()) {
            let (x, y) = (a.get(rt), b.get(rt));
            if x != y {
                return Err(CliError::Migrate(format!(
                    "verification failed: tenant {tenant}, {rt}: {} resources in the source, {} in the target{}",
                    x.map_or(0, |v| v.0),
                    y.map_or(0, |v| v.0),
                    if x.map(|v| v.0) == y.map(|v| v.0) {
                        " (same number, different contents)"
                    } else {
                        ""
                    }
                )));
            }
        }
        resources += a.values().map(|v| v.0).sum::<u64>();
    }
    progress.finish_and_clear();
    say(format_args!(
        "verified: {} tenants, {resources} current resources and {all_versions} versions identical in both stores",
        tenants.len()
    ));
    Ok(())
}
