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
    /// Free text printed under the table, one bullet each (the queries and their plans).
    pub notes: Vec<String>,
}

impl Report {
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

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
        if !self.notes.is_empty() {
            writeln!(f)?;
            for n in &self.notes {
                writeln!(f, "- {n}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_follow_the_table() {
        let mut r = Report::default();
        r.push("case", "median latency", 1.5, "ms", "data");
        r.note("case: `Patient?x=y` — plan: drive: x".into());
        let text = r.to_string();
        let table = text.find("| case | median latency | 1.50 | ms | data |");
        let note = text.find("\n- case: `Patient?x=y` — plan: drive: x\n");
        assert!(table.is_some() && note.is_some() && table < note, "{text}");
        assert!(!Report::default().to_string().contains("\n- "));
    }
}
