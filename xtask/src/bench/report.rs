//! What the harness prints: a header of facts (command line, machine, date), then tables whose
//! rows print as they are measured; optionally the same as Markdown and CSV files.

use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// One column of a table: its name, and its width on the terminal.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// The name, as printed in the header row and in the CSV.
    pub name: &'static str,
    /// Characters on the terminal; longer cells push the row out.
    pub width: usize,
}

impl Column {
    /// A column named `name`, `width` characters wide on the terminal.
    pub const fn new(name: &'static str, width: usize) -> Self {
        Self { name, width }
    }
}

/// A table whose rows print as they are added.
#[derive(Debug)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table; prints its header row at once.
    pub fn new(columns: &[Column]) -> Self {
        let table = Self::new_quiet(columns);
        table.print_header();
        table
    }

    /// An empty table that prints nothing yet (see [`print_header`](Self::print_header)).
    pub fn new_quiet(columns: &[Column]) -> Self {
        Self {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Prints the header row and its rule.
    pub fn print_header(&self) {
        let names: Vec<String> = self.columns.iter().map(|c| c.name.to_owned()).collect();
        println!("{}", self.terminal_line(&names));
        let rule: Vec<String> = self.columns.iter().map(|c| "-".repeat(c.width)).collect();
        println!("{}", self.terminal_line(&rule));
    }

    /// Adds a row, one cell per column, and prints it.
    ///
    /// # Panics
    /// If the row has the wrong number of cells: a bug in the harness.
    pub fn push(&mut self, cells: Vec<String>) {
        assert_eq!(
            cells.len(),
            self.columns.len(),
            "a row has one cell per column"
        );
        println!("{}", self.terminal_line(&cells));
        self.rows.push(cells);
    }

    fn terminal_line(&self, cells: &[String]) -> String {
        let mut line = String::new();
        for (cell, column) in cells.iter().zip(&self.columns) {
            let _ = write!(line, "{cell:>width$}  ", width = column.width);
        }
        line.trim_end().to_owned()
    }

    /// The table in Markdown, numbers right-aligned.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        let _ = writeln!(out, "| {} |", names.join(" | "));
        let _ = writeln!(out, "|{}", "---:|".repeat(self.columns.len()));
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }

    /// The table as CSV (no cell of the harness holds a comma or a quote).
    pub fn csv(&self) -> String {
        let mut out = String::new();
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        let _ = writeln!(out, "{}", names.join(","));
        for row in &self.rows {
            let _ = writeln!(out, "{}", row.join(","));
        }
        out
    }
}

/// The facts that say where and how the numbers were produced, printed as they are learnt.
#[derive(Debug)]
pub struct Header {
    title: String,
    facts: Vec<(String, String)>,
}

impl Header {
    /// A header with its title and the facts every report carries: the command line, the
    /// machine's core count and the date. Prints them.
    pub fn new(title: &str, command_line: &str) -> Self {
        println!("# {title}");
        let mut header = Self {
            title: title.to_owned(),
            facts: Vec::new(),
        };
        header.fact("command", command_line);
        let cores = std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|err| format!("unknown ({err})"));
        header.fact("cores (available_parallelism)", &cores);
        header.fact("date", &utc_now());
        header.fact(
            "build",
            if cfg!(debug_assertions) {
                "debug assertions ON: numbers are not representative"
            } else {
                "release"
            },
        );
        header
    }

    /// Records and prints one fact.
    pub fn fact(&mut self, name: &str, value: &str) {
        println!("{name}: {value}");
        self.facts.push((name.to_owned(), value.to_owned()));
    }

    /// Writes the header and `tables` as Markdown to `path`, and the tables as CSV next to it
    /// (`path` with the extension `csv`; with several tables, one CSV file each, numbered).
    /// Returns the files written.
    pub fn write(&self, path: &Path, tables: &[&Table]) -> Result<Vec<PathBuf>> {
        let markdown_path = if path.extension().is_some_and(|e| e == "csv") {
            path.with_extension("md")
        } else {
            path.to_owned()
        };
        let mut markdown = format!("# {}\n\n", self.title);
        for (name, value) in &self.facts {
            let _ = writeln!(markdown, "- {name}: `{value}`");
        }
        for table in tables {
            let _ = write!(markdown, "\n{}", table.markdown());
        }
        write_file(&markdown_path, &markdown)?;
        let mut written = vec![markdown_path];
        for (i, table) in tables.iter().enumerate() {
            let csv_path = if tables.len() == 1 {
                path.with_extension("csv")
            } else {
                path.with_extension(format!("{}.csv", i + 1))
            };
            write_file(&csv_path, &table.csv())?;
            written.push(csv_path);
        }
        Ok(written)
    }
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the directory {}", dir.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// Now, as `YYYY-MM-DD HH:MM:SS UTC`, from the system clock (no date crate needed).
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

/// `secs` since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            format_utc(951_782_400),
            "2000-02-29 00:00:00 UTC",
            "a leap day"
        );
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn markdown_and_csv_hold_every_row() {
        let columns = [
            Column {
                name: "a",
                width: 3,
            },
            Column {
                name: "b",
                width: 3,
            },
        ];
        let mut table = Table::new(&columns);
        table.push(vec!["1".into(), "2".into()]);
        assert_eq!(table.markdown(), "| a | b |\n|---:|---:|\n| 1 | 2 |\n");
        assert_eq!(table.csv(), "a,b\n1,2\n");
    }
}
