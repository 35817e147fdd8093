//! The PostgreSQL options of the benchmarks end to end on a tiny data set, in scratch databases
//! on the server named by `MEDICUS_TEST_DATABASE` (skipped with a printed line when it is
//! unset): `bench suite --database`, `--compare-postgres` with a kept directory and its reuse,
//! the refusal to import over other data, and `bench nodes`. No timing assertions.

use std::time::Duration;

use medicus_bench::Report;
use medicus_bench::cases::nodes::{self, NodesOptions};
use medicus_bench::cases::suite::{self, Backend, SuiteOptions};
use medicus_store::postgres::{ScratchDatabase, TEST_SERVER_ENV};

fn scratch() -> Option<ScratchDatabase> {
    let db = ScratchDatabase::from_env().expect("scratch database");
    if db.is_none() {
        println!(
            "skipped: {TEST_SERVER_ENV} is not set (scripts/pg-test-cluster start prints one)"
        );
    }
    db
}

fn tiny() -> SuiteOptions {
    SuiteOptions {
        resources: 400,
        concurrency: 4,
        load_duration: Duration::from_millis(300),
        runs: 2,
        skip_export: true,
        progress: false,
        ..SuiteOptions::default()
    }
}

fn value(report: &Report, case: &str, metric: &str, backend: &str) -> f64 {
    report
        .rows
        .iter()
        .find(|r| r.case.starts_with(case) && r.metric == metric && r.backend == backend)
        .map(|r| r.value)
        .unwrap_or_else(|| panic!("missing row {case} / {metric} / {backend}\n{report}"))
}

fn has_case(report: &Report, case: &str) -> bool {
    report.rows.iter().any(|r| r.case.starts_with(case))
}

#[test]
fn suite_on_postgres_imports_measures_and_refuses_foreign_data() {
    let Some(db) = scratch() else { return };
    let opts = SuiteOptions {
        backend: Backend::Postgres(db.url().to_owned()),
        skip_export: false,
        ..tiny()
    };
    let report = suite::run(&opts).expect("suite on PostgreSQL");
    for (case, metric) in [
        ("import", "throughput"),
        ("import", "disk as left (tenant tables; WAL not counted)"),
        ("disk (tenant tables after VACUUM ANALYZE", "size"),
        ("read Patient by id", "throughput"),
        ("search token (", "median latency"),
        ("count (Observation HbA1c", "median latency"),
        ("$export system", "resources"),
    ] {
        let v = value(&report, case, metric, "PostgreSQL");
        assert!(
            v > 0.0 && v.is_finite(),
            "{case} / {metric} = {v}\n{report}"
        );
    }
    assert_eq!(
        value(&report, "read Patient by id", "errors", "PostgreSQL"),
        0.0
    );
    // Generating is not a store's work; nothing ran on SQLite.
    assert!(
        report
            .rows
            .iter()
            .any(|r| r.case.starts_with("generate") && r.backend.is_empty())
    );
    assert!(
        !report.rows.iter().any(|r| r.backend == "SQLite"),
        "{report}"
    );
    let text = report.to_string();
    assert!(text.contains("| case | backend | metric |"), "{text}");
    assert!(
        text.contains("fsync="),
        "the server's settings are noted\n{text}"
    );

    // The tenant now holds data: a run that cannot know it is the same data set refuses.
    let again = suite::run(&opts);
    assert!(
        matches!(again, Err(medicus_bench::BenchError::Invalid(ref m)) if m.contains("already holds")),
        "{again:?}"
    );
}

#[test]
fn compare_runs_both_backends_side_by_side_and_reuses_kept_stores() {
    let Some(db) = scratch() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = SuiteOptions {
        compare_postgres: Some(db.url().to_owned()),
        data_dir: Some(dir.path().to_owned()),
        ..tiny()
    };
    let first = suite::run(&opts).expect("first run");
    let sqlite = value(&first, "import", "throughput", "SQLite");
    let postgres = value(&first, "import", "throughput", "PostgreSQL");
    assert!(sqlite > 0.0 && postgres > 0.0, "{first}");
    for backend in ["SQLite", "PostgreSQL"] {
        assert!(value(&first, "search token+date (", "median latency", backend) > 0.0);
    }
    // Both stores hold the same resources and answer the same.
    assert_eq!(
        value(&first, "count (Observation HbA1c", "matched", "SQLite"),
        value(&first, "count (Observation HbA1c", "matched", "PostgreSQL"),
    );
    let table = first.tables.first().expect("side-by-side table");
    assert_eq!(table.header[4], "PostgreSQL ÷ SQLite");
    let import = table
        .rows
        .iter()
        .find(|r| r[0].starts_with("import") && r[1] == "throughput")
        .expect("import row");
    let ratio: f64 = import[4].parse().expect("ratio");
    assert!((ratio - postgres / sqlite).abs() < 0.01, "{first}");
    assert!(table.rows.iter().any(|r| r[0].starts_with("disk (settled")));
    assert!(
        first
            .to_string()
            .contains("SQLite and PostgreSQL side by side")
    );

    // Same size and seed: both stores are reused, nothing is generated or imported.
    let second = suite::run(&opts).expect("second run");
    assert!(!has_case(&second, "generate"), "{second}");
    assert!(!has_case(&second, "import"), "{second}");
    assert!(value(&second, "read Patient by id", "throughput", "PostgreSQL") > 0.0);
    assert!(value(&second, "read Patient by id", "throughput", "SQLite") > 0.0);
    assert!(
        !dir.path().join("ndjson").exists(),
        "the NDJSON of a kept run is removed"
    );

    // The same directory and database at another size: the tenant holds other data.
    let other = SuiteOptions {
        resources: 500,
        ..opts.clone()
    };
    assert!(matches!(
        suite::run(&other),
        Err(medicus_bench::BenchError::Invalid(_))
    ));
}

#[test]
fn nodes_share_one_database_and_leave_its_data_as_it_was() {
    let Some(db) = scratch() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = NodesOptions {
        database: db.url().to_owned(),
        resources: 300,
        data_dir: Some(dir.path().to_owned()),
        concurrency: 4,
        load_duration: Duration::from_millis(400),
        nodes: 2,
        progress: false,
        ..NodesOptions::default()
    };
    let report = nodes::run(&opts).expect("nodes");
    assert!(
        has_case(&report, "import"),
        "the first run imports\n{report}"
    );
    for nodes in ["1 node", "2 nodes"] {
        for mix in ["baseline: GET /healthz", "read mix", "write mix"] {
            let row = report
                .rows
                .iter()
                .find(|r| {
                    r.case.starts_with(mix) && r.case.ends_with(nodes) && r.metric == "throughput"
                })
                .unwrap_or_else(|| panic!("missing {mix}, {nodes}\n{report}"));
            assert!(row.value > 0.0, "{report}");
            assert_eq!(row.backend, "PostgreSQL");
            let errors = report
                .rows
                .iter()
                .find(|r| r.case == row.case && r.metric == "errors")
                .expect("errors row");
            assert_eq!(errors.value, 0.0, "{report}");
        }
    }
    assert!(
        report
            .rows
            .iter()
            .any(|r| r.case.starts_with("write mix") && r.case.contains("2 nodes vs 1 node")),
        "{report}"
    );
    // The written Observations were deleted again: the tenant still holds exactly the kept
    // data set, so the next run reuses it.
    let again = nodes::run(&NodesOptions { nodes: 1, ..opts }).expect("second run");
    assert!(!has_case(&again, "import"), "{again}");
}
