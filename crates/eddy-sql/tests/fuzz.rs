//! Fuzzing the front end: random token sequences and mutations of valid
//! statements never panic the parser, binder or planner, every error
//! points inside its statement, and mutated queries that still plan also
//! run without a panic in their job.
//!
//! Seeded (`EDDY_TEST_SEED` repeats a run; a failure prints its seed).

use eddy::prelude::*;
use eddy_sql::{Session, SqlError};
use eddy_testkit::Seed;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

const SETUP: &str = "
CREATE TABLE orders (id BIGINT, customer VARCHAR, amount DOUBLE, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen', 'number-of-rows' = '20', 'fields.id.kind' = 'sequence', 'fields.ts.step' = '300');
CREATE TABLE totals (customer VARCHAR, n BIGINT, PRIMARY KEY (customer) NOT ENFORCED) WITH ('connector' = 'map');
CREATE TABLE sink (a BIGINT, b VARCHAR) WITH ('connector' = 'blackhole');
";

const VALID: &[&str] = &[
    "SELECT id, customer, amount * 2 AS double_amount FROM orders WHERE amount > 0.5 AND customer LIKE 'a%'",
    "SELECT customer, COUNT(*), SUM(amount), MIN(id), MAX(ts) FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, customer HAVING COUNT(*) > 1",
    "SELECT window_start, COUNT(DISTINCT customer) AS c, AVG(amount) FROM TABLE(HOP(TABLE orders, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '2' SECOND)) GROUP BY window_start, window_end",
    "SELECT CASE WHEN id BETWEEN 2 AND 5 THEN UPPER(customer) ELSE LOWER(customer) END, COALESCE(NULL, id), CAST(amount AS BIGINT) FROM orders WHERE id IN (1, 2, 3) OR customer IS NOT NULL ORDER BY 1 LIMIT 5",
    "SELECT SUBSTRING(customer FROM 2 FOR 3) || '-' || CHAR_LENGTH(customer), TRIM(BOTH 'a' FROM customer), ABS(id - 10), ROUND(amount, 1), MOD(id, 3), ts + INTERVAL '1' MINUTE FROM orders",
    "INSERT INTO totals SELECT customer, COUNT(*) FROM orders GROUP BY customer",
    "CREATE JOB j WITH ('parallelism' = '2') AS INSERT INTO sink SELECT id, customer FROM orders WHERE NOT (id > 3)",
    "CREATE TABLE t2 (a INT, b VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND, PRIMARY KEY (a) NOT ENFORCED) WITH ('connector' = 'datagen', 'number-of-rows' = '5', 'fields.a.kind' = 'sequence')",
    "SELECT customer, COUNT(*) FROM TABLE(SESSION(TABLE orders PARTITION BY customer, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY window_start, window_end, customer",
    "EXPLAIN SELECT EXTRACT(HOUR FROM ts), id % 2 FROM orders WHERE ts > '1970-01-01 00:00:01'",
    "DESCRIBE orders",
    "SHOW TABLES",
];

const VOCABULARY: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "ORDER",
    "LIMIT",
    "INSERT",
    "INTO",
    "CREATE",
    "TABLE",
    "JOB",
    "DROP",
    "SHOW",
    "TABLES",
    "JOBS",
    "DESCRIBE",
    "EXPLAIN",
    "WITH",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "LIKE",
    "IS",
    "NULL",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "TUMBLE",
    "HOP",
    "SESSION",
    "DESCRIPTOR",
    "INTERVAL",
    "SECOND",
    "MINUTE",
    "MONTH",
    "WATERMARK",
    "FOR",
    "PRIMARY",
    "KEY",
    "ENFORCED",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "DISTINCT",
    "UPPER",
    "SUBSTRING",
    "TRIM",
    "COALESCE",
    "EXTRACT",
    "YEAR",
    "TIMESTAMP",
    "BIGINT",
    "VARCHAR",
    "INT",
    "DOUBLE",
    "DECIMAL",
    "orders",
    "totals",
    "sink",
    "id",
    "amount",
    "ts",
    "customer",
    "window_start",
    "window_end",
    "x",
    "(",
    ")",
    ",",
    ";",
    "*",
    "+",
    "-",
    "/",
    "%",
    "=",
    "<",
    ">",
    "<=",
    ">=",
    "<>",
    "||",
    ".",
    "::",
    "0",
    "1",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "1.5",
    "1e308",
    "'a'",
    "'x%'",
    "''",
    "'10'",
    "'datagen'",
    "'connector'",
    "TRUE",
    "FALSE",
    "\n",
    "--c\n",
    "/*",
    "*/",
    "\"q\"",
    "'",
    "PARTITION",
    "OVER",
    "JOIN",
    "ON",
    "UNION",
    "VALUES",
    "SET",
];

fn tokens(s: &str) -> Vec<String> {
    // Splits on blanks, keeping quoted strings whole enough for mutation.
    s.split_whitespace().map(str::to_string).collect()
}

fn mutate(rng: &mut SmallRng, valid: &str) -> String {
    let mut t = tokens(valid);
    for _ in 0..rng.gen_range(1..4) {
        if t.is_empty() {
            break;
        }
        let i = rng.gen_range(0..t.len());
        match rng.gen_range(0..5) {
            0 => {
                t.remove(i);
            }
            1 => {
                let dup = t[i].clone();
                t.insert(i, dup);
            }
            2 if i + 1 < t.len() => t.swap(i, i + 1),
            3 => t[i] = VOCABULARY[rng.gen_range(0..VOCABULARY.len())].to_string(),
            _ => t.insert(
                i,
                VOCABULARY[rng.gen_range(0..VOCABULARY.len())].to_string(),
            ),
        }
    }
    t.join(" ")
}

fn random_tokens(rng: &mut SmallRng) -> String {
    let n = rng.gen_range(1..30);
    (0..n)
        .map(|_| VOCABULARY[rng.gen_range(0..VOCABULARY.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

fn within(e: &SqlError, sql: &str) -> bool {
    let lines: Vec<&str> = sql.split('\n').collect();
    match lines.get(e.line as usize - 1) {
        Some(line) => e.column >= 1 && e.column <= line.chars().count() as u64 + 1,
        None => false,
    }
}

#[test]
fn when_statements_are_random_or_mutated_then_nothing_panics_and_errors_are_positioned() {
    let seed = Seed::new("SQL fuzz");
    let mut rng = SmallRng::seed_from_u64(seed.value());
    let eddy = Arc::new(Eddy::new(EddyConfig::with_threads(2)));
    let mut ran = 0;
    for case in 0..3000 {
        let sql = if case % 2 == 0 {
            random_tokens(&mut rng)
        } else {
            let valid = VALID[rng.gen_range(0..VALID.len())];
            mutate(&mut rng, valid)
        };
        let mut session = Session::new(eddy.clone(), Grid::new());
        session.execute_script(SETUP, |_| {}).unwrap();
        // Plan first (EXPLAIN runs parser, binder and planner); run for real
        // only what plans, and only statements over the bounded tables here.
        let explained = format!("EXPLAIN {sql}");
        let result = catch_unwind(AssertUnwindSafe(|| {
            session.execute_script(&explained, |_| {})
        }));
        match result {
            Err(_) => panic!("panicked on: {explained}"),
            Ok(Err(e)) => {
                assert!(
                    within(&e, &explained),
                    "error outside the statement: {e:?}\n{}",
                    e.render(&explained)
                );
                assert!(!e.message.is_empty());
            }
            Ok(Ok(_)) => {}
        }
        let run = catch_unwind(AssertUnwindSafe(|| {
            session
                .execute_script(&sql, |_| {})
                .and_then(|_| session.wait_for_bounded_jobs())
        }));
        match run {
            Err(_) => panic!("panicked on: {sql}"),
            Ok(Err(e)) => {
                assert!(
                    !e.message.contains("panicked"),
                    "a job panicked on: {sql}\n{}",
                    e.message
                );
                if e.kind != eddy_sql::ErrorKind::Execution {
                    assert!(
                        within(&e, &sql),
                        "error outside the statement: {e:?}\n{}",
                        e.render(&sql)
                    );
                }
            }
            Ok(Ok(_)) => ran += 1,
        }
        for j in session.jobs() {
            j.job.cancel();
        }
    }
    eprintln!("{ran} of 3000 fuzzed statements ran");
}

#[test]
fn when_an_expression_is_very_long_or_deep_then_the_error_says_so() {
    let eddy = Arc::new(Eddy::new(EddyConfig::with_threads(1)));
    let mut s = Session::new(eddy, Grid::new());
    s.execute_script(SETUP, |_| {}).unwrap();
    let deep = format!("SELECT {}1{} FROM orders", "(".repeat(500), ")".repeat(500));
    let e = s.execute(&deep).unwrap_err();
    assert!(e.message.contains("nests deeper"), "{e}");
    let long = format!("SELECT 1{} FROM orders", " + 1".repeat(5000));
    let e = s.execute(&long).unwrap_err();
    assert!(
        e.message.contains("nests deeper") || e.message.contains("operators"),
        "{e}"
    );
}
