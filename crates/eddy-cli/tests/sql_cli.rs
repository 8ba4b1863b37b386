//! `eddy sql` as a user runs it: rows as a table or JSON lines, jobs run
//! to the end, positioned errors with a caret and their exit codes.

use std::process::{Command, Output};

fn eddy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .output()
        .expect("the eddy binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const TABLE: &str = "CREATE TABLE orders (id BIGINT, amount BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen', 'number-of-rows' = '100', 'fields.id.kind' = 'sequence',
        'fields.amount.kind' = 'sequence', 'fields.ts.step' = '100');";

#[test]
fn when_a_bounded_query_runs_then_rows_print_as_a_table_and_exit_0() {
    let sql = format!(
        "{TABLE} SELECT window_start, COUNT(*) AS n, SUM(amount) AS total
         FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND))
         GROUP BY window_start, window_end ORDER BY window_start;"
    );
    let out = eddy(&["sql", "-e", &sql]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("| window_start            |  n | total |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| 1970-01-01 00:00:00.000 | 50 |  1225 |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| 1970-01-01 00:00:05.000 | 50 |  3725 |"),
        "{stdout}"
    );
    assert!(stdout.contains("2 rows"), "{stdout}");
}

#[test]
fn when_json_is_asked_then_one_object_per_row() {
    let sql =
        format!("{TABLE} SELECT id, amount * 2 AS twice FROM orders WHERE id < 3 ORDER BY id");
    let out = eddy(&["sql", "--json", "-e", &sql]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(
        lines,
        vec![
            serde_json::json!({"id": 0, "twice": 0}),
            serde_json::json!({"id": 1, "twice": 2}),
            serde_json::json!({"id": 2, "twice": 4}),
        ]
    );
}

#[test]
fn when_a_job_writes_a_file_then_the_command_waits_for_it() {
    let dir = std::env::temp_dir().join(format!("eddy-sql-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("out.jsonl");
    let file = dir.join("job.sql");
    std::fs::write(
        &file,
        format!(
            "{TABLE}\nCREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}');\nINSERT INTO out SELECT id FROM orders WHERE MOD(id, 10) = 0;\n",
            path.display()
        ),
    )
    .unwrap();
    let out = eddy(&["sql", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(written.lines().count(), 10, "{written}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn when_sql_is_wrong_then_the_caret_points_at_it_and_exit_1() {
    let sql = format!("{TABLE}\nSELECT amout FROM orders");
    let out = eddy(&["sql", "-e", &sql]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unknown column 'amout' (did you mean 'amount'?)"),
        "{stderr}"
    );
    assert!(stderr.contains("--> 5:8"), "{stderr}");
    assert!(
        stderr.contains("5 | SELECT amout FROM orders\n  |        ^"),
        "{stderr}"
    );
}

#[test]
fn when_arguments_are_wrong_then_exit_2() {
    let out = eddy(&["sql", "-e", "SELECT 1", "-f", "x.sql"]);
    assert_eq!(out.status.code(), Some(2));
    let out = eddy(&["sql", "-f", "/nonexistent/x.sql"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/x.sql"));
}
