//! The suite end to end on a tiny data set: every row is there and every measured value is
//! positive. No timing assertions: those numbers belong in BENCHMARKS.md, not in tests.

use std::time::Duration;

use medicus_bench::cases::suite::{self, SuiteOptions};

#[test]
fn tiny_suite_reports_every_row() {
    let opts = SuiteOptions {
        resources: 600,
        concurrency: 4,
        load_duration: Duration::from_millis(300),
        runs: 3,
        progress: false,
        ..SuiteOptions::default()
    };
    let report = suite::run(&opts).expect("suite runs");
    let has = |case: &str, metric: &str| {
        report
            .rows
            .iter()
            .find(|r| r.case.starts_with(case) && r.metric == metric)
            .map(|r| r.value)
            .unwrap_or_else(|| panic!("missing row {case} / {metric}\n{report}"))
    };
    let positive = [
        ("generate", "throughput"),
        ("generate", "NDJSON size"),
        ("baseline: NDJSON parse", "throughput"),
        ("import", "throughput"),
        ("import", "peak RSS (VmHWM)"),
        ("import", "disk as left (db + WAL)"),
        ("disk", "size"),
        ("disk", "vs. NDJSON input"),
        ("baseline: GET /healthz", "throughput"),
        ("baseline: GET /healthz", "p50 latency"),
        ("baseline: GET /healthz", "p99 latency"),
        ("read Patient by id", "throughput"),
        ("read Patient by id", "p50 latency"),
        ("read Patient by id", "p99 latency"),
        ("baseline: GET /healthz (sequential)", "median latency"),
        ("search token (", "median latency"),
        ("search token (", "p99 latency"),
        ("search token+date", "median latency"),
        ("search token+date", "p99 latency"),
        ("count", "median latency"),
        ("count", "p99 latency"),
        ("$export system", "throughput"),
        ("$export system", "output"),
        ("$export system", "resources"),
        ("peak RSS: HTTP phases", "VmHWM"),
        ("peak RSS: export", "VmHWM"),
        ("peak RSS: whole run", "VmHWM"),
    ];
    for (case, metric) in positive {
        let v = has(case, metric);
        assert!(
            v > 0.0 && v.is_finite(),
            "{case} / {metric} = {v}\n{report}"
        );
    }
    // Loads against a healthy server have no errors; matches may be 0 on a tiny data set.
    assert_eq!(has("read Patient by id", "errors"), 0.0, "{report}");
    assert_eq!(has("baseline: GET /healthz", "errors"), 0.0, "{report}");
    for (case, metric) in [
        ("search token (", "entries on first page"),
        ("search token+date", "entries on first page"),
        ("count", "matched"),
    ] {
        assert!(has(case, metric) >= 0.0);
    }
    // The export writes back everything the import stored.
    assert!(has("$export system", "resources") >= 100.0, "{report}");
    // The table renders every row.
    let table = report.to_string();
    // (Notes such as the planner's plans follow the table.)
    assert_eq!(
        table.lines().filter(|l| l.starts_with('|')).count(),
        report.rows.len() + 2
    );
}

#[test]
fn bad_sizes_are_refused_before_any_work() {
    let opts = SuiteOptions {
        resources: 5,
        progress: false,
        ..SuiteOptions::default()
    };
    assert!(suite::run(&opts).is_err());
}
