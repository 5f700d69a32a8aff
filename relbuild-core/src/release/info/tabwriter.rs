//! Go's `text/tabwriter`, as oc lays out its tables.

/// A port of Go's `text/tabwriter` as oc configures it
/// (`NewWriter(out, 0, 4, padding, ' ', 0)`): cells are tab-terminated,
/// a column block is a run of consecutive lines that have a cell in that
/// column, each cell is padded with spaces to the widest cell of its block
/// plus `padding`, and the last cell of a line is not part of any column.
/// Widths count runes, as Go does.
#[derive(Debug)]
pub(super) struct TabWriter {
    padding: usize,
    text: String,
}

impl TabWriter {
    pub(super) fn new(padding: usize) -> Self {
        Self { padding, text: String::new() }
    }

    /// Adds one line (a newline is appended).
    pub(super) fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    /// Adds already formatted text (from a nested writer).
    pub(super) fn raw(&mut self, s: &str) {
        self.text.push_str(s);
    }

    pub(super) fn finish(self) -> String {
        let lines: Vec<Vec<&str>> =
            self.text.split('\n').map(|l| if l.is_empty() { Vec::new() } else { l.split('\t').collect() }).collect();
        let mut out = String::with_capacity(self.text.len() * 2);
        let mut widths = Vec::new();
        self.format(&lines, &mut out, &mut widths, 0, lines.len());
        out
    }

    fn format(&self, lines: &[Vec<&str>], out: &mut String, widths: &mut Vec<usize>, line0: usize, line1: usize) {
        let column = widths.len();
        let mut line0 = line0;
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(lines, out, widths, line0, this);
            line0 = this;
            let mut width = 0;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(lines[this][column].chars().count() + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format(lines, out, widths, line0, this);
            widths.pop();
            line0 = this;
        }
        self.write_lines(lines, out, widths, line0, line1);
    }

    fn write_lines(&self, lines: &[Vec<&str>], out: &mut String, widths: &[usize], line0: usize, line1: usize) {
        for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
            for (j, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if let Some(&w) = widths.get(j) {
                    let n = w.saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', n));
                }
            }
            if i + 1 < lines.len() {
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_like_go() {
        let mut w = TabWriter::new(1);
        w.line("Name:\t4.99.0");
        w.line("Metadata files:\t3");
        w.line("");
        w.line("  NAME\tREPO\tCOMMIT\t");
        w.line("  a\thttps://x\tc1");
        assert_eq!(
            w.finish(),
            "Name:           4.99.0\nMetadata files: 3\n\n  NAME REPO      COMMIT \n  a    https://x c1\n"
        );
        let mut w = TabWriter::new(2);
        w.line("\tFROM\tTO");
        w.line("Created:\t1y\t1y");
        assert_eq!(w.finish(), "          FROM  TO\nCreated:  1y    1y\n");
    }
}
