//! Several medicus nodes on one PostgreSQL database (`medicus bench nodes --database URL`): the
//! suite's data set in the database (reused or imported as `bench suite` does), then 1, 2, …
//! nodes started on it, each a server of its own (its own `PostgresStore`, so its own
//! connection pool, on its own tokio runtime and loopback port), and the concurrent HTTP loader
//! spreading its requests over the nodes, as a load balancer would:
//!
//! - baseline: `GET /healthz` (no database), the HTTP floor of the machine;
//! - read mix: 3 of 4 requests read a Patient by id, 1 of 4 searches `Condition?subject=` of a
//!   patient (a selective search, a handful of matches);
//! - write mix: half creates (`PUT` of a new id), half updates (`PUT` of an id created earlier in
//!   the run) of an Observation; the resources written are deleted after the run, so the
//!   tenant's resource count (which decides reuse) is unchanged.
//!
//! Every run also records how busy the machine's CPUs were: the loader, the nodes and the
//! PostgreSQL server share the same cores, so on a small machine a second node adds connections
//! and runtimes, not CPU.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use medicus_store::{PostgresOptions, PostgresStore, Precondition, Store};
use tokio::task::JoinHandle;

use super::suite::{self, Backend, SuiteOptions, TENANT, Work};
use crate::cpu::CpuTimes;
use crate::loader::{self, LoadResult, LoadSpec, Request, XorShift};
use crate::rss::PeakTracker;
use crate::{BenchError, Report, pg};

/// The most nodes one run starts.
pub const MAX_NODES: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub struct NodesOptions {
    /// The PostgreSQL database (`postgres://…`) all nodes share.
    pub database: String,
    /// Data size, as `bench suite --resources`.
    pub resources: u64,
    pub seed: u64,
    /// A kept data directory, as `bench suite --data` (shared with it: a suite run on the same
    /// database and directory leaves the data this case reuses).
    pub data_dir: Option<PathBuf>,
    pub work_dir: Option<PathBuf>,
    /// Concurrent connections of the loader, spread over the nodes.
    pub concurrency: usize,
    pub load_duration: Duration,
    /// Runs with 1, 2, … up to this many nodes.
    pub nodes: usize,
    pub progress: bool,
}

impl Default for NodesOptions {
    fn default() -> Self {
        let suite = SuiteOptions::default();
        NodesOptions {
            database: String::new(),
            resources: suite.resources,
            seed: suite.seed,
            data_dir: None,
            work_dir: None,
            concurrency: suite.concurrency,
            load_duration: suite.load_duration,
            nodes: 2,
            progress: true,
        }
    }
}

impl NodesOptions {
    /// The suite's options for preparing the data set.
    fn suite(&self) -> SuiteOptions {
        SuiteOptions {
            resources: self.resources,
            concurrency: self.concurrency,
            load_duration: self.load_duration,
            seed: self.seed,
            work_dir: self.work_dir.clone(),
            data_dir: self.data_dir.clone(),
            skip_export: true,
            backend: Backend::Postgres(self.database.clone()),
            progress: self.progress,
            ..SuiteOptions::default()
        }
    }

    pub fn validate(&self) -> Result<(), BenchError> {
        self.suite().validate()?;
        if !(1..=MAX_NODES).contains(&self.nodes) {
            return Err(BenchError::Invalid(format!(
                "--nodes must be between 1 and {MAX_NODES}, not {}",
                self.nodes
            )));
        }
        Ok(())
    }

    fn say(&self, msg: std::fmt::Arguments<'_>) {
        if self.progress {
            eprintln!("bench nodes: {msg}");
        }
    }
}

/// One medicus node: a server with its own store (pool) on its own runtime and port.
struct Node {
    addr: SocketAddr,
    store: Arc<dyn Store>,
    server: JoinHandle<()>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Node {
    fn start(url: &str, index: usize) -> Result<Node, BenchError> {
        let store: Arc<dyn Store> =
            Arc::new(PostgresStore::connect(url, PostgresOptions::default())?);
        // As `medicus serve` runs: a multi-threaded runtime with a worker per core.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name(format!("bench-node-{index}"))
            .enable_all()
            .build()?;
        let (addr, server) = runtime.block_on(crate::server::spawn(Arc::clone(&store)))?;
        Ok(Node {
            addr,
            store,
            server,
            runtime: Some(runtime),
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mix {
    Health,
    Read,
    Write,
}

impl Mix {
    const ALL: [Mix; 3] = [Mix::Health, Mix::Read, Mix::Write];

    fn name(self) -> &'static str {
        match self {
            Mix::Health => "baseline: GET /healthz",
            Mix::Read => "read mix (3/4 Patient by id, 1/4 Condition?subject=Patient/…)",
            Mix::Write => "write mix (1/2 create, 1/2 update of an Observation, PUT)",
        }
    }
}

/// Ids of the Observations a write run creates: `{prefix}-{n}` for n below the counter.
struct Written {
    prefix: String,
    next: Arc<AtomicU64>,
}

/// The request maker of a mix over the nodes' addresses.
fn requests(
    mix: Mix,
    addrs: &[SocketAddr],
    patient_ids: &Arc<Vec<String>>,
    written: &Written,
) -> impl Fn(&mut XorShift) -> Request + Send + Sync + 'static {
    let bases: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
    let ids = Arc::clone(patient_ids);
    let next = Arc::clone(&written.next);
    let prefix = written.prefix.clone();
    move |rng: &mut XorShift| {
        let base = &bases[rng.below(bases.len())];
        let patient = &ids[rng.below(ids.len())];
        match mix {
            Mix::Health => Request::get(format!("{base}/healthz")),
            Mix::Read if rng.below(4) == 0 => Request::get(format!(
                "{base}/fhir/{TENANT}/Condition?subject=Patient/{patient}"
            )),
            Mix::Read => Request::get(format!("{base}/fhir/{TENANT}/Patient/{patient}")),
            Mix::Write => {
                let created = next.load(Ordering::Relaxed);
                let n = if created == 0 || rng.below(2) == 0 {
                    next.fetch_add(1, Ordering::Relaxed)
                } else {
                    rng.below(usize::try_from(created).unwrap_or(usize::MAX)) as u64
                };
                let id = format!("{prefix}-{n}");
                let value = 50 + rng.below(80);
                let body = serde_json::json!({
                    "resourceType": "Observation",
                    "id": id,
                    "status": "final",
                    "code": { "coding": [{
                        "system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"
                    }] },
                    "subject": { "reference": format!("Patient/{patient}") },
                    "effectiveDateTime": "2025-06-01T10:00:00Z",
                    "valueQuantity": {
                        "value": value, "unit": "/min",
                        "system": "http://unitsofmeasure.org", "code": "/min"
                    }
                });
                Request::put(
                    format!("{base}/fhir/{TENANT}/Observation/{id}"),
                    body.to_string().into_bytes(),
                )
            }
        }
    }
}

/// Deletes the Observations a write run created, in sessions of 1000.
fn clean_up(store: &dyn Store, written: &Written) -> Result<u64, BenchError> {
    let created = written.next.load(Ordering::Relaxed);
    let mut deleted = 0;
    let mut n = 0;
    while n < created {
        let mut session = store.write_session(TENANT)?;
        for k in n..created.min(n + 1000) {
            let id = format!("{}-{k}", written.prefix);
            if session
                .delete("Observation", &id, Precondition::None)?
                .is_some()
            {
                deleted += 1;
            }
        }
        session.commit()?;
        n += 1000;
    }
    Ok(deleted)
}

/// One measured load: rows for throughput, latencies, errors and the machine's CPU use.
fn push_load(
    report: &mut Report,
    case: &str,
    r: &LoadResult,
    cpu: Option<(f64, f64)>,
    detail: &str,
) -> Result<(), BenchError> {
    if r.ok == 0 {
        return Err(BenchError::Unexpected(format!(
            "{case}: no successful request ({} errors, first: {})",
            r.errors,
            r.first_error.as_deref().unwrap_or("none")
        )));
    }
    report.push(case, "throughput", r.req_per_sec(), "req/s", detail);
    report.push(case, "p50 latency", r.p50_ms(), "ms", detail);
    report.push(case, "p99 latency", r.p99_ms(), "ms", detail);
    report.push(case, "errors", r.errors as f64, "requests", detail);
    if let Some((busy, process)) = cpu {
        report.push(case, "machine CPU busy", busy, "% of all cores", detail);
        report.push(
            case,
            "of which loader + nodes (this process)",
            process,
            "% of all cores",
            detail,
        );
    }
    if let Some(e) = &r.first_error {
        report.note(format!("{case}: first error: {e}"));
    }
    Ok(())
}

fn case_name(mix: Mix, nodes: usize) -> String {
    let s = if nodes == 1 { "" } else { "s" };
    format!("{}, {nodes} node{s}", mix.name())
}

/// Runs the case and returns its report rows.
pub fn run(opts: &NodesOptions) -> Result<Report, BenchError> {
    opts.validate()?;
    let suite_opts = opts.suite();
    let work = Work::new(&suite_opts)?;
    let mut report = Report::default();
    let mut rss = PeakTracker::default();
    let backend = Backend::Postgres(opts.database.clone());
    let prepared = suite::prepare(
        &suite_opts,
        &work,
        std::slice::from_ref(&backend),
        &mut report,
        &mut rss,
    )?;
    report.set_backend(Some(backend.label()));
    let patient_ids = Arc::new(prepared.patient_ids.clone());

    let loader_runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("bench-loader")
        .enable_all()
        .build()?;
    let client = loader::client(opts.concurrency)?;
    let spec = LoadSpec {
        concurrency: opts.concurrency,
        duration: opts.load_duration,
        max_requests: None,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for count in 1..=opts.nodes {
        opts.say(format_args!("starting {count} node(s)"));
        let nodes = (0..count)
            .map(|i| Node::start(&opts.database, i))
            .collect::<Result<Vec<_>, _>>()?;
        let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
        let detail = format!(
            "{}; {count} node(s) × {} pooled connections; {} loader connections, {:.0} s; {cores} cores",
            prepared.detail(),
            PostgresOptions::default().pool_size,
            opts.concurrency,
            opts.load_duration.as_secs_f64()
        );
        for mix in Mix::ALL {
            let case = case_name(mix, count);
            opts.say(format_args!("{case}"));
            let written = Written {
                prefix: format!("bench-nodes-{count}n"),
                next: Arc::new(AtomicU64::new(0)),
            };
            let make = requests(mix, &addrs, &patient_ids, &written);
            let before = CpuTimes::now();
            let result = loader_runtime.block_on(loader::run_requests(&client, &spec, make));
            let cpu = match (before, CpuTimes::now()) {
                (Some(b), Some(a)) => a.busy_percent_since(&b).zip(a.process_percent_since(&b)),
                _ => None,
            };
            // The written resources go even when the run failed.
            if mix == Mix::Write {
                let deleted = clean_up(&*nodes[0].store, &written)?;
                opts.say(format_args!("deleted the {deleted} Observations written"));
            }
            push_load(&mut report, &case, &result?, cpu, &detail)?;
        }
        drop(nodes);
    }
    if opts.nodes > 1 {
        for mix in Mix::ALL {
            let one = report.value(&case_name(mix, 1), "throughput", backend.label());
            let most = report.value(&case_name(mix, opts.nodes), "throughput", backend.label());
            if let (Some(one), Some(most)) = (one, most) {
                report.push(
                    &format!("{}: {} nodes vs 1 node", mix.name(), opts.nodes),
                    "throughput ratio",
                    most / one.max(1e-9),
                    "ratio",
                    &prepared.detail(),
                );
            }
        }
    }
    report.note(format!("server: {}", pg::describe_server(&opts.database)?));
    report.set_backend(None);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let ok = NodesOptions {
            database: "postgres://u@h/db".into(),
            ..NodesOptions::default()
        };
        assert!(ok.validate().is_ok());
        for bad in [
            NodesOptions {
                database: "/var/lib/medicus".into(),
                ..ok.clone()
            },
            NodesOptions {
                nodes: 0,
                ..ok.clone()
            },
            NodesOptions {
                nodes: MAX_NODES + 1,
                ..ok.clone()
            },
            NodesOptions {
                concurrency: 0,
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(BenchError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn mixes_spread_over_the_nodes_and_write_new_then_known_ids() {
        let addrs: Vec<SocketAddr> = vec![
            "127.0.0.1:1001".parse().expect("addr"),
            "127.0.0.1:1002".parse().expect("addr"),
        ];
        let ids = Arc::new(vec!["p1".to_owned(), "p2".to_owned()]);
        let written = Written {
            prefix: "w".into(),
            next: Arc::new(AtomicU64::new(0)),
        };
        let mut rng = XorShift::new(7);

        let read = requests(Mix::Read, &addrs, &ids, &written);
        let urls: Vec<String> = (0..400).map(|_| read(&mut rng).url).collect();
        for port in [":1001/", ":1002/"] {
            assert!(urls.iter().any(|u| u.contains(port)), "{port}");
        }
        let searches = urls
            .iter()
            .filter(|u| u.contains("Condition?subject="))
            .count();
        assert!((50..150).contains(&searches), "{searches} of 400");
        assert!(urls.iter().all(|u| u.contains("/fhir/bench/")));

        let write = requests(Mix::Write, &addrs, &ids, &written);
        let first = write(&mut rng);
        assert_eq!(first.method, reqwest::Method::PUT);
        assert!(
            first.url.ends_with("/fhir/bench/Observation/w-0"),
            "{}",
            first.url
        );
        let body: serde_json::Value =
            serde_json::from_slice(first.body.as_deref().expect("body")).expect("json");
        assert_eq!(body["id"], "w-0");
        assert_eq!(body["resourceType"], "Observation");
        for _ in 0..200 {
            let r = write(&mut rng);
            let n: u64 = r
                .url
                .rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("numbered id");
            assert!(n < written.next.load(Ordering::Relaxed));
        }
        let created = written.next.load(Ordering::Relaxed);
        // About half of 201 requests created an id; the others updated one.
        assert!((60..=140).contains(&created), "{created}");
    }
}
