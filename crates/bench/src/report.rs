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
    /// The store the row was measured on ("SQLite", "PostgreSQL"); empty where no store is
    /// involved (generating NDJSON, the parse baseline) or a case knows only one backend.
    pub backend: String,
}

/// A further table printed after the rows (e.g. two backends side by side).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    /// Columns whose cells are numbers (right-aligned).
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Free text printed under the table, one bullet each (the queries and their plans).
    pub notes: Vec<String>,
    /// Printed between the rows and the notes.
    pub tables: Vec<Table>,
    /// Stamped on the rows pushed from now on (see [`Report::set_backend`]).
    backend: String,
}

impl Report {
    /// A note; prefixed with the backend when rows are being measured on one.
    pub fn note(&mut self, note: String) {
        if self.backend.is_empty() {
            self.notes.push(note);
        } else {
            self.notes.push(format!("{}: {note}", self.backend));
        }
    }

    /// The backend the following rows are measured on; `None` for rows that involve no store.
    pub fn set_backend(&mut self, backend: Option<&str>) {
        self.backend = backend.unwrap_or_default().to_owned();
    }

    pub fn push(&mut self, case: &str, metric: &str, value: f64, unit: &str, detail: &str) {
        self.rows.push(Row {
            case: case.into(),
            metric: metric.into(),
            value,
            unit: unit.into(),
            detail: detail.into(),
            backend: self.backend.clone(),
        });
    }

    /// The value of the first row with this case, metric and backend.
    pub fn value(&self, case: &str, metric: &str, backend: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.case == case && r.metric == metric && r.backend == backend)
            .map(|r| r.value)
    }
}

pub fn format_value(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.title.is_empty() {
            writeln!(f, "{}", self.title)?;
            writeln!(f)?;
        }
        writeln!(f, "| {} |", self.header.join(" | "))?;
        let rule: Vec<&str> = (0..self.header.len())
            .map(|i| {
                if self.numeric.get(i).copied().unwrap_or(false) {
                    "---:"
                } else {
                    "---"
                }
            })
            .collect();
        writeln!(f, "|{}|", rule.join("|"))?;
        for row in &self.rows {
            writeln!(f, "| {} |", row.join(" | "))?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    /// A Markdown table, so the output pastes straight into BENCHMARKS.md. The backend column
    /// appears when some row was measured on a named backend.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_backend = self.rows.iter().any(|r| !r.backend.is_empty());
        if with_backend {
            writeln!(f, "| case | backend | metric | value | unit | data |")?;
            writeln!(f, "|---|---|---|---:|---|---|")?;
        } else {
            writeln!(f, "| case | metric | value | unit | data |")?;
            writeln!(f, "|---|---|---:|---|---|")?;
        }
        for r in &self.rows {
            if with_backend {
                let backend = if r.backend.is_empty() {
                    "—"
                } else {
                    &r.backend
                };
                writeln!(
                    f,
                    "| {} | {backend} | {} | {} | {} | {} |",
                    r.case,
                    r.metric,
                    format_value(r.value),
                    r.unit,
                    r.detail
                )?;
            } else {
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
        }
        for t in &self.tables {
            writeln!(f)?;
            write!(f, "{t}")?;
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
        assert!(!text.contains("backend"), "{text}");
    }

    #[test]
    fn rows_say_their_backend_and_tables_come_before_the_notes() {
        let mut r = Report::default();
        r.push("generate", "throughput", 10.0, "resources/s", "d");
        r.set_backend(Some("PostgreSQL"));
        r.push("import", "throughput", 5.0, "resources/s", "d");
        r.set_backend(None);
        r.push("peak", "VmHWM", 1.0, "MiB", "d");
        r.note("a note".into());
        r.set_backend(Some("SQLite"));
        r.note("plan".into());
        r.set_backend(None);
        r.tables.push(Table {
            title: "Side by side".into(),
            header: vec!["case".into(), "ratio".into()],
            numeric: vec![false, true],
            rows: vec![vec!["import".into(), "0.5".into()]],
        });
        assert_eq!(
            r.value("import", "throughput", "PostgreSQL"),
            Some(5.0),
            "{r}"
        );
        assert_eq!(r.value("import", "throughput", "SQLite"), None);
        let text = r.to_string();
        assert!(text.contains("| case | backend | metric | value | unit | data |"));
        assert!(text.contains("| generate | — | throughput | 10.00 | resources/s | d |"));
        assert!(text.contains("| import | PostgreSQL | throughput | 5.00 | resources/s | d |"));
        assert!(text.contains("| peak | — | VmHWM | 1.00 | MiB | d |"));
        let table = text.find("Side by side\n\n| case | ratio |\n|---|---:|\n| import | 0.5 |");
        let note = text.find("- a note");
        assert!(table.is_some() && note.is_some() && table < note, "{text}");
        assert!(text.contains("\n- SQLite: plan\n"), "{text}");
    }
}
