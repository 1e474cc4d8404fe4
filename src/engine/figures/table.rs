//! The one table writer: a header and rows of text cells, written as CSV (cells quoted where
//! they need it) or as a Markdown table. Every table the command line prints or the studio
//! exports (evaluations, rules, sweeps, captures, training curves) goes through it; callers
//! only format their cells.

/// How a table is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFormat {
    /// Comma-separated values, one line per row, the header first.
    Csv,
    /// A Markdown (GitHub) table: `| a | b |`, a `|---|---|` rule under the header.
    Markdown,
}

/// A table being written row by row (rows go straight into the text, so a capture of
/// millions of rows is never held twice).
#[derive(Clone, Debug)]
pub struct TableWriter {
    format: TableFormat,
    out: String,
}

impl TableWriter {
    /// Start a table with its column names.
    pub fn new<S: AsRef<str>>(format: TableFormat, header: impl IntoIterator<Item = S>) -> Self {
        let mut t = Self {
            format,
            out: String::new(),
        };
        let mut columns = 0;
        t.row(header.into_iter().inspect(|_| columns += 1));
        if format == TableFormat::Markdown {
            t.out.push('|');
            for _ in 0..columns {
                t.out.push_str("---|");
            }
            t.out.push('\n');
        }
        t
    }

    /// A CSV table.
    pub fn csv<S: AsRef<str>>(header: impl IntoIterator<Item = S>) -> Self {
        Self::new(TableFormat::Csv, header)
    }

    /// A Markdown table.
    pub fn markdown<S: AsRef<str>>(header: impl IntoIterator<Item = S>) -> Self {
        Self::new(TableFormat::Markdown, header)
    }

    /// Append one row.
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) {
        match self.format {
            TableFormat::Csv => {
                for (k, cell) in cells.into_iter().enumerate() {
                    if k > 0 {
                        self.out.push(',');
                    }
                    self.out.push_str(&csv_escape(cell.as_ref()));
                }
            }
            TableFormat::Markdown => {
                self.out.push('|');
                for cell in cells {
                    self.out.push(' ');
                    self.out.push_str(cell.as_ref());
                    self.out.push_str(" |");
                }
            }
        }
        self.out.push('\n');
    }

    /// The table's text (every line ends in a newline).
    pub fn finish(self) -> String {
        self.out
    }
}

/// A CSV cell: quoted (inner quotes doubled, newlines written as `\n`) when it holds a comma, a
/// quote or a newline; as it is otherwise.
pub fn csv_escape(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"").replace('\n', "\\n"))
    } else {
        s.to_string()
    }
}

/// A number with `digits` decimals, or "–" when there is none (Markdown tables).
pub fn or_dash(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "–".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_csv_layouts() {
        let mut md = TableWriter::markdown(["a", "b"]);
        md.row(["1", "x"]);
        assert_eq!(md.finish(), "| a | b |\n|---|---|\n| 1 | x |\n");
        let mut csv = TableWriter::csv(["a", "b"]);
        csv.row(["1", "x,y"]);
        csv.row(["say \"hi\"", "two\nlines"]);
        assert_eq!(
            csv.finish(),
            "a,b\n1,\"x,y\"\n\"say \"\"hi\"\"\",\"two\\nlines\"\n"
        );
        assert_eq!(or_dash(Some(0.12345), 3), "0.123");
        assert_eq!(or_dash(None, 3), "–");
    }
}
