//! `eddy sql`: runs SQL statements in an embedded node in this process.
//! DDL applies, a bounded query prints its rows (an aligned table, or one
//! JSON object per line with `--json`), and the command then waits for the
//! jobs it started: those whose sources are all bounded run to the end
//! and the command exits 0; an unbounded job keeps the command running
//! until it is interrupted. Any error prints the positioned message with a
//! caret line to stderr and exits 1.

use eddy::prelude::*;
use eddy_sql::{Column, Outcome, Row, Session, Value};
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `eddy sql`.
#[derive(clap::Args, Debug)]
pub struct SqlArgs {
    /// Statements to run, separated by `;`.
    #[arg(
        short = 'e',
        long = "execute",
        value_name = "SQL",
        conflicts_with = "file"
    )]
    execute: Option<String>,
    /// A file of statements to run, separated by `;`.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<std::path::PathBuf>,
    /// Print rows as one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// Exit code of an error in the statements or their jobs.
const EXIT_SQL_ERROR: u8 = 1;
/// Exit code of wrong arguments (as clap uses).
const EXIT_USAGE: u8 = 2;

/// Runs `eddy sql`.
pub fn run(args: SqlArgs) -> ExitCode {
    let script = match (&args.execute, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot read '{}': {e}", path.display());
                return ExitCode::from(EXIT_USAGE);
            }
        },
        (None, None) => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("error: give statements with -e SQL or -f FILE (or pipe them in)");
                return ExitCode::from(EXIT_USAGE);
            }
            let mut s = String::new();
            if let Err(e) = stdin.read_to_string(&mut s) {
                eprintln!("error: cannot read standard input: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
            s
        }
    };
    let eddy = Arc::new(Eddy::new(EddyConfig::default()));
    let mut session = Session::new(eddy, Grid::new());
    let json = args.json;
    let result = session.execute_script(&script, |outcome| print_outcome(outcome, json));
    if let Err(e) = result {
        eprint!("{}", e.render(&script));
        return ExitCode::from(EXIT_SQL_ERROR);
    }
    if let Err(e) = session.wait_for_bounded_jobs() {
        eprintln!("error: {}", e.message);
        return ExitCode::from(EXIT_SQL_ERROR);
    }
    let running: Vec<_> = session.jobs().iter().filter(|j| !j.bounded).collect();
    if !running.is_empty() {
        for j in &running {
            eprintln!("job '{}' reads an unbounded table: it runs until this command is interrupted (Ctrl-C)", j.name);
        }
        for j in running {
            if let Err(e) = j.job.join() {
                eprintln!("error: job '{}' failed: {e}", j.name);
                return ExitCode::from(EXIT_SQL_ERROR);
            }
        }
    }
    ExitCode::SUCCESS
}

fn print_outcome(outcome: &Outcome, json: bool) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = match outcome {
        Outcome::Rows { columns, rows } if json => print_json(&mut out, columns, rows),
        Outcome::Rows { columns, rows } => print_table(&mut out, columns, rows),
        // With --json, standard output holds rows only: messages go to
        // standard error.
        Outcome::Job { name, id } if json => {
            writeln!(std::io::stderr(), "started job '{name}' (id {id})")
        }
        Outcome::Job { name, id } => writeln!(out, "started job '{name}' (id {id})"),
        Outcome::Ddl(message) if json => writeln!(std::io::stderr(), "{message}"),
        Outcome::Ddl(message) => writeln!(out, "{message}"),
        Outcome::Plan(text) => write!(out, "{text}"),
    };
}

fn print_json(out: &mut impl Write, columns: &[Column], rows: &[Row]) -> std::io::Result<()> {
    for row in rows {
        let mut m = serde_json::Map::new();
        for (c, v) in columns.iter().zip(row.iter()) {
            m.insert(c.name.clone(), v.to_json());
        }
        writeln!(out, "{}", serde_json::Value::Object(m))?;
    }
    Ok(())
}

fn cell(v: &Value) -> String {
    v.to_string()
}

fn print_table(out: &mut impl Write, columns: &[Column], rows: &[Row]) -> std::io::Result<()> {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let mut widths: Vec<usize> = columns.iter().map(|c| c.name.chars().count()).collect();
    for r in &cells {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let numeric: Vec<bool> = columns.iter().map(|c| c.data_type.is_numeric()).collect();
    let line = |out: &mut dyn Write, values: &[String]| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, v) in values.iter().enumerate() {
            let pad = widths[i].saturating_sub(v.chars().count());
            s.push_str(if i == 0 { "| " } else { " | " });
            if numeric[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(v);
            } else {
                s.push_str(v);
                s.push_str(&" ".repeat(pad));
            }
        }
        s.push_str(" |");
        writeln!(out, "{s}")
    };
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+";
    writeln!(out, "{rule}")?;
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    line(out, &names)?;
    writeln!(out, "{rule}")?;
    for r in &cells {
        line(out, r)?;
    }
    writeln!(out, "{rule}")?;
    writeln!(
        out,
        "{} row{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    )
}
