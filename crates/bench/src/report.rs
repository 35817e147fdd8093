//! Benchmark results as rows of a table.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub case: String,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    /// Data size and conditions, e.g. "200 tx × 100 resources".
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    pub fn push(&mut self, case: &str, metric: &str, value: f64, unit: &str, detail: &str) {
        self.rows.push(Row {
            case: case.into(),
            metric: metric.into(),
            value,
            unit: unit.into(),
            detail: detail.into(),
        });
    }
}

fn format_value(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

impl fmt::Display for Report {
    /// A Markdown table, so the output pastes straight into BENCHMARKS.md.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| case | metric | value | unit | data |")?;
        writeln!(f, "|---|---|---:|---|---|")?;
        for r in &self.rows {
            writeln!(
                f,
                "| {} | {} | {} | {} | {} |",
                r.case,
                r.metric,
                format_value(r.value),
                r.unit,
                r.detail
            )?;
        }
        Ok(())
    }
}
