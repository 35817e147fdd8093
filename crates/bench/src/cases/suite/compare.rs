//! Two backends side by side: every case and metric measured on both, with the ratio of the
//! second to the first (PostgreSQL ÷ SQLite), which is what the PostgreSQL bars are stated in.

use super::Backend;
use crate::report::format_value;
use crate::{Report, Table};

/// Cases and metrics that measure the same thing under backend-specific names.
fn key(case: &str, metric: &str) -> (String, String) {
    let case = if case.starts_with("disk (") {
        "disk (settled: SQLite after checkpoint, PostgreSQL after VACUUM ANALYZE; indexes incl.)"
    } else {
        case
    };
    let metric = if metric.starts_with("disk as left") {
        "disk as left (SQLite db + WAL; PostgreSQL tenant tables)"
    } else {
        metric
    };
    (case.to_owned(), metric.to_owned())
}

/// The table of every row measured on both `backends[0]` and `backends[1]`, in the order of the
/// first backend's rows.
pub fn side_by_side(report: &Report, backends: &[Backend]) -> Table {
    let (Some(first), Some(second)) = (backends.first(), backends.get(1)) else {
        return Table::default();
    };
    let (a, b) = (first.label(), second.label());
    let mut table = Table {
        title: format!(
            "{a} and {b} side by side (ratio = {b} ÷ {a}: below 1 is faster for latencies, slower for throughputs)"
        ),
        header: ["case", "metric", a, b, &format!("{b} ÷ {a}"), "unit"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        numeric: vec![false, false, true, true, true, false],
        rows: Vec::new(),
    };
    for row in report.rows.iter().filter(|r| r.backend == a) {
        let k = key(&row.case, &row.metric);
        let Some(other) = report
            .rows
            .iter()
            .find(|r| r.backend == b && key(&r.case, &r.metric) == k)
        else {
            continue;
        };
        let ratio = if row.value == 0.0 {
            "—".to_owned()
        } else {
            format!("{:.2}", other.value / row.value)
        };
        table.rows.push(vec![
            k.0,
            k.1,
            format_value(row.value),
            format_value(other.value),
            ratio,
            row.unit.clone(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_rows_of_both_backends_with_their_ratio() {
        let mut r = Report::default();
        r.push("generate", "throughput", 9.0, "resources/s", "d");
        r.set_backend(Some("SQLite"));
        r.push("import", "throughput", 200.0, "resources/s", "d");
        r.push(
            "disk (db after checkpoint)",
            "size",
            800.0,
            "bytes/resource",
            "d",
        );
        r.push("search", "median latency", 2.0, "ms", "d");
        r.push("only here", "median latency", 2.0, "ms", "d");
        r.push("count", "matched", 0.0, "resources", "d");
        r.set_backend(Some("PostgreSQL"));
        r.push("import", "throughput", 100.0, "resources/s", "d");
        r.push(
            "disk (tenant tables)",
            "size",
            1200.0,
            "bytes/resource",
            "d",
        );
        r.push("search", "median latency", 3.0, "ms", "d");
        r.push("count", "matched", 0.0, "resources", "d");
        let t = side_by_side(
            &r,
            &[Backend::Sqlite, Backend::Postgres("postgres://h/d".into())],
        );
        assert_eq!(t.header[4], "PostgreSQL ÷ SQLite");
        let cells: Vec<(&str, &str, &str)> = t
            .rows
            .iter()
            .map(|r| (r[0].as_str(), r[3].as_str(), r[4].as_str()))
            .collect();
        assert_eq!(cells.len(), 4, "{t}");
        assert_eq!(cells[0], ("import", "100", "0.50"));
        assert!(cells[1].0.starts_with("disk (settled"), "{t}");
        assert_eq!(cells[1].2, "1.50");
        assert_eq!(cells[2], ("search", "3.00", "1.50"));
        assert_eq!(cells[3], ("count", "0.000", "—"));
    }
}
