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
//!
//! Platform records follow the resources. Documents of every namespace are made equal in the
//! target (written where value or expiry differ, removed where the source has none); their
//! versions start over in the target, since a version is only a compare-and-set token. Audit
//! chains are copied verbatim (seq, time, hash, subjects, record) by appending to the target
//! chain what the source has after the target's head, which must be the source's entry at that
//! position; a rerun continues. Verification compares the number and a digest of the documents
//! and, per chain, of the entries. A source still serving appends audit entries, so verify once
//! it has stopped.

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use medicus_store::StoreError;
use medicus_store::api::{HistoryQuery, HistoryScope, Precondition, Store};
use medicus_store::platform::{AuditEntry, AuditQuery, Doc, DocExpect};
use medicus_store::search::SearchQuery;
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

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
        copy_documents(&*source, &*target)?;
        copy_audit(&*source, &*target)?;
    }
    verify(&*source, &*target)?;
    verify_platform(&*source, &*target)
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

/// Platform documents and audit entries read per call.
const PLATFORM_BATCH: usize = 1_000;

/// Every unexpired document of `store` in `(namespace, key)` order, a page at a time.
fn each_document(
    store: &dyn Store,
    f: &mut dyn FnMut(&str, &Doc) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut after: Option<(String, String)> = None;
    loop {
        let page = store.doc_scan(
            after.as_ref().map(|(ns, key)| (ns.as_str(), key.as_str())),
            PLATFORM_BATCH,
        )?;
        for (ns, doc) in &page {
            f(ns, doc)?;
        }
        match page.into_iter().last() {
            Some((ns, doc)) => after = Some((ns, doc.key)),
            None => return Ok(()),
        }
    }
}

/// Makes the target's documents equal to the source's: writes those whose value or expiry
/// differ (a rerun writes only what changed) and removes those the source no longer has.
fn copy_documents(source: &dyn Store, target: &dyn Store) -> Result<(), CliError> {
    let (mut written, mut removed) = (0u64, 0u64);
    each_document(source, &mut |ns, doc| {
        let same = target
            .doc_get(ns, &doc.key)?
            .is_some_and(|t| t.value == doc.value && t.expires_us == doc.expires_us);
        if !same {
            target.doc_put(ns, &doc.key, &doc.value, doc.expires_us, DocExpect::Any)?;
            written += 1;
        }
        Ok(())
    })?;
    let mut stale = Vec::new();
    each_document(target, &mut |ns, doc| {
        if source.doc_get(ns, &doc.key)?.is_none() {
            stale.push((ns.to_owned(), doc.key.clone()));
        }
        Ok(())
    })?;
    for (ns, key) in &stale {
        if target.doc_delete(ns, key, DocExpect::Any)? {
            removed += 1;
        }
    }
    say(format_args!(
        "copied {written} platform documents{}",
        if removed > 0 {
            format!(", removed {removed} the source no longer has")
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// Entries of `chain` after `after_seq`, in seq order.
fn audit_page(store: &dyn Store, chain: &str, after_seq: i64) -> Result<Vec<AuditEntry>, CliError> {
    Ok(store.audit_query(
        chain,
        &AuditQuery {
            after_seq: Some(after_seq),
            limit: PLATFORM_BATCH,
            ..AuditQuery::default()
        },
    )?)
}

/// Appends to each target chain, verbatim, the source's entries after the target's head.
fn copy_audit(source: &dyn Store, target: &dyn Store) -> Result<(), CliError> {
    let chains = source.audit_chains()?;
    let mut copied = 0u64;
    for chain in &chains {
        let mut head = target.audit_head(chain)?;
        if let Some(h) = &head {
            // The target's chain must be a beginning of the source's.
            let at = audit_page(source, chain, h.seq - 1)?;
            if at
                .first()
                .is_none_or(|e| e.seq != h.seq || e.hash != h.hash)
            {
                return Err(CliError::Migrate(format!(
                    "audit chain {chain} in the target is not a part of the source's \
                     (entry {} differs): the target was used since the last copy (serving it \
                     records accesses); migrate into a fresh target, and serve it only after \
                     the last run",
                    h.seq
                )));
            }
        }
        loop {
            let page = audit_page(source, chain, head.as_ref().map_or(0, |h| h.seq))?;
            let Some(last) = page.last() else {
                break;
            };
            let expected = head.clone();
            let next = medicus_store::platform::AuditLink {
                seq: last.seq,
                hash: last.hash.clone(),
            };
            let mut batch = Some(page);
            target.audit_append(chain, &mut |current| {
                if current != expected.as_ref() {
                    return Err(StoreError::Corrupt(format!(
                        "audit chain {chain} of the target was appended to during the copy"
                    )));
                }
                Ok(batch.take().unwrap_or_default())
            })?;
            copied += u64::try_from(next.seq - expected.as_ref().map_or(0, |h| h.seq)).unwrap_or(0);
            head = Some(next);
        }
    }
    say(format_args!(
        "copied {copied} audit entries of {} chains",
        chains.len()
    ));
    Ok(())
}

/// The number of documents and an order-independent digest of them, leaving out documents
/// that expire by `cutoff` (they may have expired between the reads of the two stores).
struct DocDigest {
    lasting: (u64, u64),
    expiring: Vec<(i64, u64)>,
}

impl DocDigest {
    fn of(store: &dyn Store) -> Result<DocDigest, CliError> {
        let mut d = DocDigest {
            lasting: (0, 0),
            expiring: Vec::new(),
        };
        each_document(store, &mut |ns, doc| {
            let mut h = Xxh3::new();
            for part in [ns.as_bytes(), doc.key.as_bytes(), &doc.value] {
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(part);
            }
            h.update(&doc.expires_us.unwrap_or(-1).to_le_bytes());
            let digest = h.digest();
            match doc.expires_us {
                Some(at) => d.expiring.push((at, digest)),
                None => {
                    d.lasting.0 += 1;
                    d.lasting.1 = d.lasting.1.wrapping_add(digest);
                }
            }
            Ok(())
        })?;
        Ok(d)
    }

    fn until(&self, cutoff: i64) -> (u64, u64) {
        self.expiring
            .iter()
            .filter(|(at, _)| *at > cutoff)
            .fold(self.lasting, |(n, sum), (_, d)| {
                (n + 1, sum.wrapping_add(*d))
            })
    }
}

/// Per chain: the number of entries and a digest over all of them in seq order.
fn chain_digest(store: &dyn Store, chain: &str) -> Result<(u64, u64), CliError> {
    let mut h = Xxh3::new();
    let (mut n, mut after) = (0u64, 0i64);
    loop {
        let page = audit_page(store, chain, after)?;
        let Some(last) = page.last() else {
            return Ok((n, h.digest()));
        };
        after = last.seq;
        for e in &page {
            n += 1;
            h.update(&e.seq.to_le_bytes());
            h.update(&e.at_us.to_le_bytes());
            for part in std::iter::once(&e.hash[..])
                .chain(e.subjects.iter().map(|s| s.as_bytes()))
                .chain(std::iter::once(&e.record[..]))
            {
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(part);
            }
            h.update(&(e.subjects.len() as u64).to_le_bytes());
        }
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn verify_platform(source: &dyn Store, target: &dyn Store) -> Result<(), CliError> {
    let (a, b) = (DocDigest::of(source)?, DocDigest::of(target)?);
    // Both reads saw every document that expires after now.
    let cutoff = now_us();
    let (docs, other) = (a.until(cutoff), b.until(cutoff));
    if docs != other {
        return Err(CliError::Migrate(format!(
            "verification failed: {} platform documents in the source, {} in the target{}",
            docs.0,
            other.0,
            if docs.0 == other.0 {
                " (same number, different contents)"
            } else {
                ""
            }
        )));
    }
    let chains = source.audit_chains()?;
    let theirs = target.audit_chains()?;
    if let Some(extra) = theirs.iter().find(|c| !chains.contains(c)) {
        return Err(CliError::Migrate(format!(
            "verification failed: audit chain {extra} exists only in the target"
        )));
    }
    let mut entries = 0;
    for chain in &chains {
        let (x, y) = (chain_digest(source, chain)?, chain_digest(target, chain)?);
        if x != y {
            return Err(CliError::Migrate(format!(
                "verification failed: audit chain {chain} has {} entries in the source and {} in the target{}",
                x.0,
                y.0,
                if x.0 == y.0 {
                    " (same number, different contents)"
                } else {
                    ""
                }
            )));
        }
        entries += x.0;
    }
    say(format_args!(
        "verified: {} platform documents and {entries} audit entries of {} chains identical in both stores",
        docs.0,
        chains.len()
    ));
    if docs.0 > 0 {
        // Signing keys and TOTP seeds are copied sealed: they open only with the key that
        // sealed them.
        say(format_args!(
            "the copied sign-in records are sealed with the source's server key: start the \
             target's nodes with the same key (--server-key-file, by default DATA/server.key \
             of the source)"
        ));
    }
    Ok(())
}
