//! Errors of SQL statements: where in the text (line and column, from 1),
//! what is wrong, and how to render that with a caret under the spot.

/// What kind of failure a [`SqlError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text does not parse.
    Syntax,
    /// It parses, but names, types or the statement's shape are wrong.
    Plan,
    /// It parses and binds, but Eddy SQL does not do this yet.
    Unsupported,
    /// The statement was valid but running it failed (a job failed).
    Execution,
}

/// A positioned error of a SQL statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct SqlError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Line of the offending text, from 1.
    pub line: u64,
    /// Column of the offending text, from 1 (in characters).
    pub column: u64,
    /// What is wrong and, where we know it, how to write it instead.
    pub message: String,
}

/// A position in the statement text (line and column from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl Pos {
    /// Line 1, column 1: the start of the statement.
    pub const START: Pos = Pos { line: 1, column: 1 };

    /// A position from a `sqlparser` location (line 0 means unknown).
    pub fn from_location(l: sqlparser::tokenizer::Location) -> Option<Pos> {
        (l.line > 0).then_some(Pos {
            line: l.line,
            column: l.column.max(1),
        })
    }

    /// The start of `span`, or `fallback` when the span is empty.
    pub fn of_span(span: sqlparser::tokenizer::Span, fallback: Pos) -> Pos {
        Pos::from_location(span.start).unwrap_or(fallback)
    }
}

impl SqlError {
    /// An error of `kind` at `pos`.
    pub fn new(kind: ErrorKind, pos: Pos, message: impl Into<String>) -> Self {
        SqlError {
            kind,
            line: pos.line.max(1),
            column: pos.column.max(1),
            message: message.into(),
        }
    }

    /// A planning error (names, types, shape) at `pos`.
    pub fn plan(pos: Pos, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Plan, pos, message)
    }

    /// A "not supported yet" error at `pos`.
    pub fn unsupported(pos: Pos, what: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::Unsupported,
            pos,
            format!("{what} is not supported yet"),
        )
    }

    /// A "not supported yet" error at `pos`, with how to write it instead.
    pub fn unsupported_hint(
        pos: Pos,
        what: impl std::fmt::Display,
        hint: impl std::fmt::Display,
    ) -> Self {
        Self::new(
            ErrorKind::Unsupported,
            pos,
            format!("{what} is not supported yet; {hint}"),
        )
    }

    /// The same error moved by the position of its statement in a script:
    /// `base` is where the statement starts.
    pub fn shifted(mut self, base: Pos) -> Self {
        if self.line == 1 {
            self.column += base.column - 1;
        }
        self.line += base.line - 1;
        self
    }

    /// The message with its position, the line of `sql` it points into
    /// and a caret under the spot:
    ///
    /// ```text
    /// error: unknown column 'amout' (did you mean 'amount'?)
    ///  --> 1:8
    ///   |
    /// 1 | SELECT amout FROM orders
    ///   |        ^
    /// ```
    pub fn render(&self, sql: &str) -> String {
        let mut out = format!(
            "error: {}\n --> {}:{}\n",
            self.message, self.line, self.column
        );
        if let Some(text) = sql.lines().nth(self.line.saturating_sub(1) as usize) {
            let number = self.line.to_string();
            let pad = " ".repeat(number.len());
            // Tabs keep their width so that the caret lines up.
            let lead: String = text
                .chars()
                .take(self.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("{pad} |\n{number} | {text}\n{pad} | {lead}^\n"));
        }
        out
    }
}

/// The known name nearest to `name` by edit distance, if one is near
/// enough to be a likely typo (at most a third of the name's length, and
/// at least one edit allowed).
pub fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    let limit = name.chars().count().div_ceil(3).max(1);
    known
        .into_iter()
        .map(|k| (edit_distance(&name, &k.to_ascii_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// " (did you mean 'x'?)" or nothing.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    match nearest(name, known) {
        Some(k) => format!(" (did you mean '{k}'?)"),
        None => String::new(),
    }
}

/// Edit distance over characters, counting a swap of two neighbours as
/// one edit (the optimal string alignment distance): `kafak` is one edit
/// from `kafka`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j - 1] + cost)
                .min(d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_name_is_one_typo_away_then_it_is_suggested() {
        assert_eq!(nearest("amout", ["amount", "customer"]), Some("amount"));
        assert_eq!(nearest("zzz", ["amount", "customer"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("kafak", "kafka"), 1);
        assert_eq!(nearest("totl", ["totals", "orders"]), Some("totals"));
    }

    #[test]
    fn when_rendered_then_the_caret_is_under_the_column() {
        let e = SqlError::plan(Pos { line: 2, column: 8 }, "unknown column 'x'");
        let r = e.render("SELECT 1;\nSELECT x FROM t");
        assert!(r.contains("2 | SELECT x FROM t\n  |        ^"), "{r}");
    }
}
