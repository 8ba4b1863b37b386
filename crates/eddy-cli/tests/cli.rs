//! The `eddy` command line as a user runs it: output, errors, exit codes.

use std::process::{Command, Output};

fn eddy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .output()
        .expect("the eddy binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn when_demo_runs_with_json_then_one_summary_object_and_exit_0() {
    let out = eddy(&["demo", "--events", "20000", "--seed", "3", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(summary["events_in"], 20_000);
    for field in [
        "alerts_by_rule",
        "events_per_sec",
        "latency_p50_us",
        "latency_p99_us",
        "duration_ms",
        "alerts_digest",
    ] {
        assert!(summary.get(field).is_some(), "missing {field}: {summary}");
    }
    // The same seed and count give the same alerts.
    let again = eddy(&["demo", "--events", "20000", "--seed", "3", "--json"]);
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["alerts_digest"], summary["alerts_digest"]);
}

#[test]
fn when_arguments_are_wrong_then_usage_error_exit_2() {
    let out = eddy(&["demo", "--events", "many"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--events"), "{}", stderr(&out));
    assert_eq!(eddy(&["no-such-command"]).status.code(), Some(2));
    assert!(eddy(&["--help"]).status.success());
}

#[test]
fn when_a_number_is_out_of_range_then_the_error_names_the_flag_and_exit_2() {
    for (args, flag) in [
        (&["demo", "--events", "0"][..], "--events"),
        (&["demo", "--rate", "0"], "--rate"),
        (&["demo", "--rate=-5"], "--rate"),
        (&["demo", "--rate", "NaN"], "--rate"),
        (&["demo", "--parallelism", "0"], "--parallelism"),
        (&["demo", "--partitions", "0"], "--partitions"),
        (
            &["demo", "--snapshot-interval-ms", "0"],
            "--snapshot-interval-ms",
        ),
        (&["bench", "engine", "--rate", "0"], "--rate"),
        (&["bench", "snapshot", "--workers", "0"], "--workers"),
        (&["bench", "nexmark", "--rate", "0"], "--rate"),
        (
            &[
                "produce",
                "--bootstrap",
                "x:1",
                "--topic",
                "t",
                "--generator",
                "transactions",
                "--rate",
                "0",
            ],
            "--rate",
        ),
    ] {
        let out = eddy(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(flag), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn when_a_value_is_invalid_then_the_error_names_it_and_exit_1() {
    let out = eddy(&["serve", "--config", "/nonexistent/node.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/node.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn when_no_node_listens_then_map_commands_say_so_and_exit_1() {
    // Port 9 (discard) on loopback: nothing of ours listens there.
    let out = eddy(&[
        "map",
        "get",
        "accounts",
        "1",
        "--http",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("127.0.0.1:9"), "{}", stderr(&out));
}
