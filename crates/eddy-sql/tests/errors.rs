//! A corpus of wrong statements: each gets an error positioned inside the
//! statement whose message names the problem; unknown names come with the
//! nearest known one.

use eddy::prelude::*;
use eddy_sql::{Session, SqlError};
use std::sync::Arc;

const SETUP: &str = "
CREATE TABLE orders (id BIGINT, customer VARCHAR, amount DOUBLE, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE plain (id BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE endless (id BIGINT) WITH ('connector' = 'datagen');
CREATE TABLE totals (customer VARCHAR, n BIGINT, PRIMARY KEY (customer) NOT ENFORCED) WITH ('connector' = 'map');
CREATE TABLE lines (customer VARCHAR, n BIGINT) WITH ('connector' = 'filesystem', 'path' = '/tmp/eddy-sql-errors.jsonl');
";

/// (statement, what the message must contain, where the error must point
/// as (line, column), or (0, 0) for "anywhere inside").
const CORPUS: &[(&str, &str, (u64, u64))] = &[
    ("SELEC id FROM orders", "expected a statement", (1, 1)),
    ("SELECT id FROM ordrs", "unknown table 'ordrs' (did you mean 'orders'?)", (1, 16)),
    ("SELECT amout FROM orders", "unknown column 'amout' (did you mean 'amount'?)", (1, 8)),
    ("SELECT id FROM orders WHERE custmer = 'a'", "did you mean 'customer'?", (1, 29)),
    ("SELECT UPPR(customer) FROM orders", "unknown function 'UPPR' (did you mean 'UPPER'?)", (1, 8)),
    ("SELECT id FROM orders WHERE COUNT(*) > 1", "aggregate COUNT is not allowed in WHERE", (1, 29)),
    ("SELECT id FROM orders WHERE amount", "WHERE needs a condition (BOOLEAN)", (1, 29)),
    ("SELECT id + customer FROM orders", "cannot apply + to BIGINT and VARCHAR", (0, 0)),
    ("SELECT id FROM orders WHERE customer = 1", "cannot compare VARCHAR with INT", (0, 0)),
    ("SELECT id FROM orders WHERE customer LIKE 1", "LIKE compares text", (1, 43)),
    ("SELECT COUNT(*) FROM TABLE(TUMBLE(TABLE plain, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end", "has no watermark", (0, 0)),
    ("SELECT COUNT(*) FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(id), INTERVAL '1' SECOND)) GROUP BY window_start, window_end", "keeps event time in 'ts'", (0, 0)),
    ("SELECT COUNT(*) FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' SECOND))", "needs GROUP BY window_start, window_end", (0, 0)),
    ("SELECT COUNT(*) FROM TABLE(TUMBEL(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end", "did you mean 'TUMBLE'?", (0, 0)),
    ("SELECT COUNT(*) FROM TABLE(HOP(TABLE orders, DESCRIPTOR(ts), INTERVAL '3' SECOND, INTERVAL '10' SECOND)) GROUP BY window_start, window_end", "multiple of its slide", (0, 0)),
    ("SELECT COUNT(*) FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' MONTH)) GROUP BY window_start, window_end", "the interval unit MONTH", (0, 0)),
    ("SELECT customer, COUNT(*) FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end", "column 'customer' is neither grouped nor aggregated", (1, 8)),
    ("SELECT id FROM orders WHERE window_start > 0", "window_start is an output of a window function", (1, 29)),
    ("SELECT * FROM endless", "would never end: add LIMIT", (0, 0)),
    ("SELECT o.id FROM orders o JOIN plain p ON o.id = p.id", "JOIN is not supported yet", (0, 0)),
    ("SELECT id FROM orders UNION SELECT id FROM plain", "is not supported yet", (0, 0)),
    ("SELECT DISTINCT id FROM orders", "SELECT DISTINCT", (0, 0)),
    ("SELECT id FROM (SELECT id FROM orders)", "a subquery in FROM is not supported yet", (0, 0)),
    ("SELECT ROW_NUMBER() OVER (ORDER BY id) FROM orders", "OVER", (0, 0)),
    ("INSERT INTO totals SELECT customer FROM orders", "the query gives 1 columns, but table 'totals' has 2", (0, 0)),
    ("INSERT INTO totals SELECT id, id FROM orders", "is BIGINT, but column 'customer' of 'totals' is VARCHAR", (0, 0)),
    ("INSERT INTO orders SELECT * FROM orders", "datagen table: it can be read, not written", (0, 0)),
    ("INSERT INTO totl SELECT customer, id FROM orders", "did you mean 'totals'?", (1, 13)),
    ("INSERT INTO lines SELECT CAST(id AS VARCHAR), COUNT(*) FROM endless GROUP BY id", "updates its results with every row", (0, 0)),
    ("CREATE TABLE t (a INT) WITH ('connector' = 'kafak')", "unknown connector 'kafak' (did you mean 'kafka'?)", (1, 30)),
    ("CREATE TABLE t (a INT) WITH ('connector' = 'kafka', 'topic' = 'x', 'properties.bootstrap.servers' = 'h:1', 'format' = 'avro')", "'format' = 'avro' for connector 'kafka' is not supported yet", (0, 0)),
    ("CREATE TABLE t (a INT) WITH ('connector' = 'datagen', 'rows-per-secnd' = '5')", "unknown option 'rows-per-secnd' for connector 'datagen' (did you mean 'rows-per-second'?)", (1, 55)),
    ("CREATE TABLE t (a INT) WITH ('connector' = 'datagen', 'fields.b.kind' = 'random')", "names no column", (0, 0)),
    ("CREATE TABLE t (a INT, WATERMARK FOR a AS a) WITH ('connector' = 'datagen')", "is INT, not TIMESTAMP(3)", (1, 38)),
    ("CREATE TABLE t (a DECIMAL(10, 2)) WITH ('connector' = 'datagen')", "DECIMAL is not supported yet", (1, 19)),
    ("CREATE TABLE t (a INT, a BIGINT) WITH ('connector' = 'datagen')", "column 'a' is defined twice", (1, 24)),
    ("CREATE TABLE t (a INT)", "the table has no connector", (0, 0)),
    ("CREATE TABLE t (a INT) WITH ('connector' = 'datagen', 'rows-per-second' = '-1')", "'rows-per-second' must be a number above 0", (1, 55)),
    ("CREATE TABLE t (a INT) WITH ('connector' = 'datagen', 'fields.a.min' = '5', 'fields.a.max' = '1')", "'fields.a.min' is above its 'max'", (1, 55)),
    ("CREATE TABLE t (a INT, PRIMARY KEY (b) NOT ENFORCED) WITH ('connector' = 'map')", "unknown column 'b'", (1, 37)),
    ("CREATE TABLE t (ts TIMESTAMP(3), WATERMARK FOR ts AS ts + INTERVAL '1' SECOND) WITH ('connector' = 'datagen')", "this watermark expression is not supported yet", (0, 0)),
    ("CREATE TABLE orders (a INT) WITH ('connector' = 'datagen')", "exists already", (1, 14)),
    ("CREATE MAPPING t TYPE Kafka", "CREATE MAPPING", (0, 0)),
    ("DROP TABLE ordres", "did you mean 'orders'?", (1, 12)),
    ("DROP JOB nope", "unknown job 'nope'", (1, 10)),
    ("DESCRIBE plian", "did you mean 'plain'?", (1, 10)),
    ("CREATE JOB j WITH ('guarantee' = 'twice') AS INSERT INTO totals SELECT customer, id FROM orders", "unknown guarantee 'twice'", (1, 20)),
    ("CREATE JOB j WITH ('paralelism' = '2') AS INSERT INTO totals SELECT customer, id FROM orders", "did you mean 'parallelism'?", (1, 20)),
    ("SELECT id FROM orders WHERE id IN (SELECT id FROM plain)", "a subquery is not supported yet", (0, 0)),
    ("SELECT id FROM orders LIMIT 'x'", "LIMIT takes a whole number", (0, 0)),
    ("SELECT SUM(customer) FROM orders", "SUM needs a number, not VARCHAR", (0, 0)),
    ("SELECT id FROM orders WHERE ts > 'yesterday'", "cannot compare TIMESTAMP(3) with VARCHAR", (0, 0)),
    ("SELECT id FROM orders\nWHERE (id > 1", "expected", (2, 0)),
    ("SELECT 'unclosed FROM orders", "Unterminated string literal", (1, 8)),
];

fn within(e: &SqlError, sql: &str) -> bool {
    let lines: Vec<&str> = sql.lines().collect();
    let Some(line) = lines.get(e.line as usize - 1) else {
        return false;
    };
    e.column >= 1 && e.column <= line.chars().count() as u64 + 1
}

#[test]
fn when_statements_are_wrong_then_each_error_is_positioned_and_names_the_problem() {
    assert!(CORPUS.len() >= 30);
    let eddy = Arc::new(Eddy::new(EddyConfig::with_threads(1)));
    let mut s = Session::new(eddy, Grid::new());
    s.execute_script(SETUP, |_| {}).unwrap();
    let mut failures = Vec::new();
    for (sql, wanted, (line, column)) in CORPUS {
        match s.execute(sql) {
            Ok(o) => failures.push(format!("{sql}\n  succeeded: {o:?}")),
            Err(e) => {
                let pos_ok = within(&e, sql)
                    && (*line == 0 || e.line == *line)
                    && (*column == 0 || e.column == *column);
                if !e.message.contains(wanted) || !pos_ok {
                    failures.push(format!(
                        "{sql}\n  wanted '{wanted}' at {line}:{column}\n{}",
                        e.render(sql)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} wrong:\n{}",
        failures.len(),
        CORPUS.len(),
        failures.join("\n")
    );
}

#[test]
fn when_a_script_fails_then_the_position_is_in_the_script() {
    let eddy = Arc::new(Eddy::new(EddyConfig::with_threads(1)));
    let mut s = Session::new(eddy, Grid::new());
    let script = format!("{SETUP}\nSELECT id FROM orders;\n  SELECT nope FROM orders;");
    let e = s.execute_script(&script, |_| {}).unwrap_err();
    let rendered = e.render(&script);
    assert!(
        rendered.contains("  SELECT nope FROM orders;\n"),
        "{rendered}"
    );
    assert_eq!(e.column, 10, "{rendered}");
}
