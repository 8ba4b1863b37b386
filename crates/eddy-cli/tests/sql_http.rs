//! `eddy sql --http` against a running `eddy serve`: rows, JSON lines,
//! positioned errors and exit codes as in the embedded mode; the token;
//! a catalog that survives the node being killed; the config file's SQL;
//! and the refusals of an unprotected node.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn eddy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .env_remove("EDDY_TOKEN")
        .output()
        .expect("the eddy binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A running `eddy serve`, killed (SIGKILL) when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `eddy serve --bind 127.0.0.1:0` with `args` and waits for its
/// address.
fn serve(args: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .env_remove("EDDY_TOKEN")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("eddy serve starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("eddy serve exited before printing its address")
            .unwrap();
        if let Some(url) = line.strip_prefix("dashboard and API at ") {
            break url.trim().to_owned();
        }
    };
    // Keep reading its log, so that the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served { child, url }
}

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("eddy-sql-http-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const ORDERS: &str = "CREATE TABLE orders (id BIGINT, amount BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen', 'number-of-rows' = '100', 'fields.id.kind' = 'sequence',
        'fields.amount.kind' = 'sequence', 'fields.ts.step' = '100');";

#[test]
fn when_statements_go_to_a_node_then_rows_json_and_errors_print_as_embedded() {
    let node = serve(&[]);
    let query = "SELECT window_start, COUNT(*) AS n, SUM(amount) AS total
         FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND))
         GROUP BY window_start, window_end ORDER BY window_start;";
    let out = eddy(&[
        "sql",
        "--http",
        &node.url,
        "-e",
        &format!("{ORDERS} {query}"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("created table 'orders'"), "{stdout}");
    assert!(
        stdout.contains("| 1970-01-01 00:00:00.000 | 50 |  1225 |"),
        "{stdout}"
    );
    assert!(stdout.contains("2 rows"), "{stdout}");

    // The table stays on the node for the next command.
    let out = eddy(&[
        "sql",
        "--http",
        &node.url,
        "--json",
        "-e",
        "SELECT id, amount * 2 AS twice FROM orders WHERE id < 2 ORDER BY id",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"id\":0,\"twice\":0}\n{\"id\":1,\"twice\":2}\n"
    );

    let out = eddy(&[
        "sql",
        "--http",
        &node.url,
        "-e",
        "SHOW TABLES;\nSELECT amout FROM orders",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("did you mean 'amount'"), "{stderr}");
    assert!(
        stderr.contains("2 | SELECT amout FROM orders\n  |        ^"),
        "{stderr}"
    );
    // The statement before the error ran and printed.
    assert!(
        text(&out.stdout).contains("| orders"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn when_the_node_has_a_token_then_sql_needs_it() {
    let node = serve(&["--token", "s3cret"]);
    let out = eddy(&["sql", "--http", &node.url, "-e", "SHOW TABLES"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    let out = eddy(&[
        "sql",
        "--http",
        &node.url,
        "--token",
        "s3cret",
        "-e",
        "SHOW TABLES",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("0 rows"),
        "{}",
        text(&out.stdout)
    );
}

fn sql_ok(url: &str, sql: &str) -> String {
    let out = eddy(&["sql", "--http", url, "-e", sql]);
    assert!(out.status.success(), "{sql}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Asks `sql` until its output contains `wanted`, for up to 20 s.
fn eventually_prints(url: &str, sql: &str, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = sql_ok(url, sql);
        if out.contains(wanted) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "{sql} never printed {wanted}: {out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const CLICKS: &str = "CREATE TABLE clicks (user_id BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('connector' = 'datagen', 'rows-per-second' = '500', 'fields.user_id.max' = '3');
CREATE TABLE per_user (window_start TIMESTAMP(3), user_id BIGINT, n BIGINT,
  PRIMARY KEY (window_start, user_id) NOT ENFORCED) WITH ('connector' = 'map');";

const JOB: &str =
    "CREATE JOB clicks_per_user WITH ('guarantee' = 'exactly-once', 'snapshot.interval' = '200ms')
  AS INSERT INTO per_user SELECT window_start, user_id, COUNT(*)
  FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' SECOND))
  GROUP BY window_start, window_end, user_id;";

#[test]
fn when_a_node_is_killed_and_started_on_its_data_dir_then_tables_and_jobs_are_back() {
    let d = dir("restart");
    let data = d.join("data");
    let data_arg = data.to_str().unwrap();
    {
        let node = serve(&["--data-dir", data_arg]);
        sql_ok(&node.url, &format!("{CLICKS}\n{JOB}"));
        eventually_prints(
            &node.url,
            "SELECT user_id FROM per_user LIMIT 1",
            "\n1 row\n",
        );
        // SIGKILL: no chance to write anything at exit.
    }
    assert!(data.join("catalog.json").is_file());
    assert!(data.join("snapshots").is_dir());
    let node = serve(&["--data-dir", data_arg]);
    let tables = sql_ok(&node.url, "SHOW TABLES");
    assert!(
        tables.contains("| clicks ") && tables.contains("| per_user "),
        "{tables}"
    );
    let jobs = eventually_prints(&node.url, "SHOW JOBS", "RUNNING");
    assert!(jobs.contains("clicks_per_user"), "{jobs}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn when_the_config_lists_sql_files_then_they_run_at_start() {
    let d = dir("config-sql");
    std::fs::write(d.join("tables.sql"), ORDERS).unwrap();
    std::fs::write(
        d.join("node.toml"),
        "sql = [\"tables.sql\"]\nread_token = \"r3ad\"\n",
    )
    .unwrap();
    let config = d.join("node.toml");
    let node = serve(&["--config", config.to_str().unwrap()]);
    let out = eddy(&[
        "sql",
        "--http",
        &node.url,
        "--token",
        "r3ad",
        "-e",
        "SHOW TABLES",
    ]);
    assert!(
        text(&out.stdout).contains("| orders"),
        "{}",
        text(&out.stderr)
    );

    // read_token gates reads: without it, listing jobs is refused.
    let out = eddy(&["jobs", "list", "--http", &node.url]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("reads"),
        "{stderr}"
    );
    let out = eddy(&["jobs", "list", "--http", &node.url, "--token", "r3ad"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A wrong statement in a config file stops the node at start.
    std::fs::write(
        d.join("tables.sql"),
        "CREATE TABLE t (a BIGINT) WITH ('connector' = 'datagn');",
    )
    .unwrap();
    let out = eddy(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("sql[0]") && stderr.contains("did you mean 'datagen'"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

fn wait_or_kill(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn when_bound_beyond_loopback_without_a_token_then_serve_refuses_unless_allowed() {
    let out = eddy(&["serve", "--bind", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("without a token")
            && stderr.contains("--token")
            && stderr.contains("--allow-unauthenticated"),
        "{stderr}"
    );

    let node = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["serve", "--bind", "0.0.0.0:0", "--allow-unauthenticated"])
        .env_remove("EDDY_TOKEN")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut node = node;
    let mut lines = BufReader::new(node.stderr.take().unwrap()).lines();
    let mut warned = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        warned |= line.contains("WARN") && line.contains("allow-unauthenticated");
        if line.starts_with("dashboard and API at ") {
            break;
        }
    }
    assert!(wait_or_kill(&mut node, Duration::from_millis(200)).is_none());
    assert!(warned, "no warning about --allow-unauthenticated");
    assert!(Path::new(env!("CARGO_BIN_EXE_eddy")).exists());
}
