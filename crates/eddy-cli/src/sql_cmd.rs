//! `eddy sql`: runs SQL statements in an embedded node in this process,
//! or with `--http URL` on a running node (`eddy serve`).
//!
//! Embedded, DDL applies, a bounded query prints its rows (an aligned
//! table, or one JSON object per line with `--json`), and the command then
//! waits for the jobs it started: those whose sources are all bounded run
//! to the end and the command exits 0; an unbounded job keeps the command
//! running until it is interrupted. With `--http` the statements go to
//! the node's `/api/sql`, jobs run on the node, and the command returns
//! once the node answered. Any error prints the positioned message with a
//! caret line to stderr and exits 1.
//!
//! Without `-e` or `-f`, on a terminal, it is an interactive shell (line
//! editing and history; a statement ends with `;` and may span lines).

use eddy::prelude::*;
use eddy_client::{Client, SqlAnswer, SqlResult};
use eddy_sql::{Column, DataType, Outcome, Row, Session, Value};
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
    /// Run the statements on the node at this URL (e.g.
    /// http://127.0.0.1:8080) instead of in this process.
    #[arg(long, value_name = "URL")]
    http: Option<String>,
    /// Bearer token of the node (default: the EDDY_TOKEN variable).
    #[arg(long, requires = "http")]
    token: Option<String>,
}

/// Exit code of an error in the statements or their jobs.
const EXIT_SQL_ERROR: u8 = 1;
/// Exit code of wrong arguments (as clap uses).
const EXIT_USAGE: u8 = 2;

/// File in the home directory that keeps the shell's history.
const HISTORY_FILE: &str = ".eddy_sql_history";

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
                return shell(&args);
            }
            let mut s = String::new();
            if let Err(e) = stdin.read_to_string(&mut s) {
                eprintln!("error: cannot read standard input: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
            s
        }
    };
    if args.http.is_some() {
        let client = match client(&args) {
            Ok(c) => c,
            Err(code) => return code,
        };
        return if run_remote(&client, &script, args.json) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_SQL_ERROR)
        };
    }
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

/// The client of `--http`, with `--token` or `EDDY_TOKEN`.
fn client(args: &SqlArgs) -> Result<Client, ExitCode> {
    let url = args.http.as_deref().unwrap_or_default();
    let client = Client::new(url).map_err(|e| {
        eprintln!("error: --http: {e}");
        ExitCode::from(EXIT_USAGE)
    })?;
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var(eddy_server::TOKEN_ENV).ok());
    Ok(match token {
        Some(t) => client.with_token(t),
        None => client,
    })
}

/// Sends `script` to the node and prints what it answered; whether every
/// statement succeeded.
fn run_remote(client: &Client, script: &str, json: bool) -> bool {
    match client.sql(script) {
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
        Ok(SqlAnswer { results, error }) => {
            for r in &results {
                print_outcome(&outcome(r), json);
            }
            match error {
                Some(e) => {
                    eprint!("{}", e.caret);
                    false
                }
                None => true,
            }
        }
    }
}

/// A node's answer as the outcome the embedded session would give, so
/// that both print alike.
fn outcome(r: &SqlResult) -> Outcome {
    match r {
        SqlResult::Rows { columns, rows } => {
            let columns: Vec<Column> = columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    data_type: data_type(&c.data_type),
                })
                .collect();
            let rows = rows
                .iter()
                .map(|r| {
                    Row::new(
                        r.iter()
                            .zip(columns.iter())
                            .map(|(v, c)| value(v, c.data_type))
                            .collect(),
                    )
                })
                .collect();
            Outcome::Rows { columns, rows }
        }
        SqlResult::Job { name, id } => Outcome::Job {
            name: name.clone(),
            id: *id,
        },
        SqlResult::Ddl { message } => Outcome::Ddl(message.clone()),
        SqlResult::Plan { text } => Outcome::Plan(text.clone()),
    }
}

/// The type a node names; an unknown name (a newer node) prints as text.
fn data_type(name: &str) -> DataType {
    match name {
        "BOOLEAN" => DataType::Boolean,
        "INT" => DataType::Int,
        "BIGINT" => DataType::BigInt,
        "DOUBLE" => DataType::Double,
        "TIMESTAMP(3)" => DataType::Timestamp,
        "INTERVAL" => DataType::Interval,
        _ => DataType::Varchar,
    }
}

fn value(v: &serde_json::Value, t: DataType) -> Value {
    use serde_json::Value as J;
    match (v, t) {
        (J::Null, _) => Value::Null,
        (J::Bool(b), _) => Value::Bool(*b),
        (J::Number(n), DataType::Interval) => Value::Interval(n.as_i64().unwrap_or_default()),
        (J::Number(n), _) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        (J::String(s), DataType::Timestamp) => match eddy_sql::types::parse_timestamp(s) {
            Some(ms) => Value::Timestamp(ms),
            None => Value::str(s),
        },
        (J::String(s), _) => Value::str(s),
        (other, _) => Value::str(&other.to_string()),
    }
}

/// Where statements of the shell run.
enum Backend {
    Embedded(Session),
    Remote(Client),
}

impl Backend {
    fn run(&mut self, script: &str, json: bool) {
        match self {
            Backend::Embedded(session) => {
                if let Err(e) = session.execute_script(script, |o| print_outcome(o, json)) {
                    eprint!("{}", e.render(script));
                }
            }
            Backend::Remote(client) => {
                run_remote(client, script, json);
            }
        }
    }
}

/// Whether `buffer` ends with a `;` outside quotes and comments: only
/// then does a sentinel after it make a statement of its own.
fn is_complete(buffer: &str) -> bool {
    use eddy_sql::parser::split_statements;
    let probe = format!("{buffer}\nx");
    split_statements(&probe).len() == split_statements(buffer).len() + 1
}

/// The interactive shell: reads statements until `\q` or Ctrl-D; Ctrl-C
/// drops the statement being typed.
fn shell(args: &SqlArgs) -> ExitCode {
    use rustyline::error::ReadlineError;
    let (mut backend, target) = match &args.http {
        Some(url) => match client(args) {
            Ok(c) => (Backend::Remote(c), url.clone()),
            Err(code) => return code,
        },
        None => {
            let eddy = Arc::new(Eddy::new(EddyConfig::default()));
            (
                Backend::Embedded(Session::new(eddy, Grid::new())),
                "an embedded node (jobs stop when the shell ends)".to_string(),
            )
        }
    };
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot open the terminal for line editing: {e}; give statements with -e or -f");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let history = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(HISTORY_FILE));
    if let Some(h) = &history {
        // A first run has no history yet.
        let _ = editor.load_history(h);
    }
    println!("Eddy SQL on {target}. End a statement with ';'. \\q or Ctrl-D quits, Ctrl-C drops the statement being typed.");
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "eddy> "
        } else {
            "   -> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if buffer.is_empty() && matches!(line.trim(), "\\q" | "quit" | "exit") {
                    break;
                }
                if buffer.is_empty() && line.trim().is_empty() {
                    continue;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if is_complete(&buffer) {
                    let script = std::mem::take(&mut buffer);
                    if let Err(e) = editor.add_history_entry(script.trim_end()) {
                        tracing::debug!(error = %e, "could not add to the shell's history");
                    }
                    backend.run(&script, args.json);
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: reading the terminal failed: {e}");
                return ExitCode::from(EXIT_SQL_ERROR);
            }
        }
    }
    if let Some(h) = &history {
        if let Err(e) = editor.save_history(h) {
            eprintln!(
                "warning: the history could not be saved to '{}': {e}",
                h.display()
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_statement_ends_with_a_semicolon_outside_quotes_then_it_is_complete() {
        assert!(is_complete("SELECT 1;\n"));
        assert!(is_complete("SELECT 1\nFROM t;  -- done\n"));
        assert!(!is_complete("SELECT 1\n"));
        assert!(!is_complete("SELECT ';\n"));
        assert!(!is_complete("SELECT 1 /* ; \n"));
    }

    #[test]
    fn when_a_node_answers_rows_then_they_become_typed_values() {
        let ts = value(
            &serde_json::json!("1970-01-01T00:00:05.000Z"),
            DataType::Timestamp,
        );
        assert_eq!(ts, Value::Timestamp(5000));
        assert_eq!(
            value(&serde_json::json!(7), DataType::BigInt),
            Value::Int(7)
        );
        assert_eq!(
            value(&serde_json::json!(0.5), DataType::Double),
            Value::Double(0.5)
        );
        assert_eq!(data_type("TIMESTAMP(3)"), DataType::Timestamp);
    }
}
