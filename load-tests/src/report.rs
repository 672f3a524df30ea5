//! Presenting results: a plain-text table for people, a JSON file for
//! scripts. Each scenario owns its figures (a `Serialize` struct) and says
//! which rows to show; this module only lays them out and writes them.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::common::CommonArgs;
use crate::html::{Page, Section, standard_charts};
use crate::machine::Machine;
use crate::progress::Series;
use crate::stats::Summary;

/// What every scenario's report offers: a table for people, JSON for
/// scripts (the `Serialize` impl, every figure), a verdict, and the
/// per-second series the HTML report charts.
pub trait Figures: Serialize {
    /// The scenario's name: `fanout`, `chat`, ...
    fn scenario(&self) -> &str;
    fn table(&self) -> Table;
    /// Whether the delivery guarantees held (gaps, duplicates, losses).
    fn passed(&self) -> bool;
    fn series(&self) -> &Series;
}

/// The command line as typed, for reports.
pub fn command_line() -> String {
    std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The HTML section of one report: its table and its charts.
pub fn section(heading: &str, figures: &impl Figures) -> Section {
    Section {
        heading: heading.to_owned(),
        rows: figures.table().rows,
        charts: standard_charts(heading, figures.series()),
    }
}

/// Prints the table, writes `--json` and `--report`; returns the verdict.
pub fn emit(common: &CommonArgs, figures: &impl Figures) -> anyhow::Result<bool> {
    print!("{}", figures.table().render());
    if let Some(path) = &common.json {
        write_json(path, figures)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(dir) = &common.report {
        let path = dir.join(format!("{}.html", figures.scenario()));
        let page = Page {
            title: format!("quiver-load {}", figures.scenario()),
            command: command_line(),
            machine: Machine::now(),
            sections: vec![section(figures.scenario(), figures)],
        };
        page.write(&path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(figures.passed())
}

/// Rows of label and value, printed as two aligned columns.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub title: String,
    pub rows: Vec<(String, String)>,
}

impl Table {
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, label: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.rows.push((label.into(), value.into()));
        self
    }

    pub fn render(&self) -> String {
        let width = self.rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let mut out = format!("{}\n", self.title);
        for (label, value) in &self.rows {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "  {label:<width$}  {value}");
        }
        out
    }
}

/// Writes `value` as pretty JSON, creating the parent folder if needed.
pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut text = serde_json::to_string_pretty(value).context("cannot encode the report")?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// `1234567` as `1,234,567`: rates are easier to read grouped.
pub fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A per-second rate, rounded to whole events.
pub fn per_sec(rate: f64) -> String {
    format!("{}/s", grouped(rate.round().max(0.0) as u64))
}

/// A latency in milliseconds with precision that suits its size.
pub fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// The usual percentile line of a latency summary, in ms.
pub fn percentiles(s: &Summary) -> String {
    if s.count == 0 {
        return "no samples".into();
    }
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (n={})",
        ms(s.p50_ms),
        ms(s.p90_ms),
        ms(s.p99_ms),
        ms(s.p999_ms),
        ms(s.max_ms),
        grouped(s.count)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(per_sec(19_999.6), "20,000/s");
        assert_eq!(ms(0.8123), "0.81");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(ms(1234.5), "1234");
    }

    #[test]
    fn table_aligns_values() {
        let mut table = Table::new("title");
        table.row("a", "1").row("longer", "2");
        assert_eq!(table.render(), "title\n  a       1\n  longer  2\n");
    }
}
