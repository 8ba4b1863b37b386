//! `eddy serve` and `eddy jobs` as an operator runs them: a node started
//! from a config file on a free port, its job suspended, resumed, restarted
//! and exported through the CLI, with the exit codes and messages of
//! actions the job's status does not allow, and a job whose guarantee and
//! snapshot interval come from the config file.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

fn eddy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .env_remove("EDDY_TOKEN")
        .output()
        .expect("the eddy binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `eddy serve`, stopped when dropped.
struct Served {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `eddy serve` with `config` (TOML) on a free port; `snapshot_dir`
/// in the config may use `{dir}`, a fresh directory of the test's own.
fn serve(test: &str, config: &str) -> Served {
    let dir = std::env::temp_dir().join(format!("eddy-ops-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("node.toml");
    let snapshots = dir.join("snapshots");
    std::fs::write(
        &config_path,
        config.replace("{dir}", &snapshots.display().to_string()),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["serve", "--bind", "127.0.0.1:0", "--config"])
        .arg(&config_path)
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
    assert!(
        snapshots.is_dir(),
        "serve creates snapshot_dir at start: {}",
        snapshots.display()
    );
    Served { child, url, dir }
}

const FRAUD_DEMO: &str =
    "snapshot_dir = \"{dir}\"\n\n[[jobs]]\nkind = \"fraud-demo\"\nrate = 200.0\n";

#[test]
fn when_jobs_are_suspended_resumed_and_restarted_then_the_cli_prints_each_status() {
    let node = serve("lifecycle", FRAUD_DEMO);
    let http = ["--http", node.url.as_str()];
    let run = |args: &[&str]| eddy(&[args, &http].concat());

    let out = run(&["jobs", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(jobs[0]["guarantee"], "none", "{jobs}");
    let out = run(&["jobs", "list"]);
    assert!(
        text(&out.stdout).contains("guarantee"),
        "{}",
        text(&out.stdout)
    );

    let out = run(&["jobs", "suspend", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("suspended"),
        "{}",
        text(&out.stdout)
    );

    let out = run(&["jobs", "restart", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("409") && err.contains("resume a suspended one"),
        "{err}"
    );

    let out = run(&["jobs", "resume", "1", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["status"], "running", "{answer}");

    let out = run(&["jobs", "restart", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("running"),
        "{}",
        text(&out.stdout)
    );

    let out = run(&["jobs", "show", "1"]);
    assert!(
        text(&out.stdout).contains("guarantee: none"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn when_an_export_is_not_possible_then_the_cli_says_why_and_exits_1() {
    let node = serve("export", FRAUD_DEMO);
    let http = ["--http", node.url.as_str()];
    let out = eddy(&[&["jobs", "export", "1", "--name", "v1"][..], &http].concat());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("takes no snapshots"), "{err}");

    let out = eddy(&[&["jobs", "export", "1", "--name", "../up"][..], &http].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("snapshot name"),
        "{}",
        text(&out.stderr)
    );

    let out = eddy(&[&["jobs", "export", "1"][..], &http].concat());
    assert_eq!(out.status.code(), Some(2), "--name is required");
}

#[test]
fn when_the_config_has_an_unknown_field_then_serve_names_it_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("eddy-ops-cli-{}-config", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("node.toml");
    std::fs::write(&path, "snapshot_directory = \"/tmp/x\"\n").unwrap();
    let out = eddy(&["serve", "--config", path.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("snapshot_directory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn when_the_config_sets_a_guarantee_then_the_job_snapshots_and_exports() {
    let config = format!("{FRAUD_DEMO}guarantee = \"exactly-once\"\nsnapshot_interval_ms = 100\n");
    let node = serve("guarantee", &config);
    let http = ["--http", node.url.as_str()];
    let run = |args: &[&str]| eddy(&[args, &http].concat());
    let out = run(&["jobs", "export", "1", "--name", "v1", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exported: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = PathBuf::from(exported["path"].as_str().unwrap());
    assert!(path.starts_with(node.dir.join("snapshots")), "{exported}");
    assert!(path.exists(), "{exported}");

    let out = run(&["jobs", "show", "1"]);
    let shown = text(&out.stdout);
    assert!(shown.contains("guarantee: exactly-once"), "{shown}");
    assert!(
        shown.contains("snapshots: ") && shown.contains("latest #"),
        "{shown}"
    );

    let out = run(&["jobs", "export", "1", "--name", "last", "--cancel"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("cancelled"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn when_the_config_sets_an_interval_without_a_guarantee_then_serve_says_how_to_fix_it() {
    let dir = std::env::temp_dir().join(format!("eddy-ops-cli-{}-interval", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("node.toml");
    std::fs::write(
        &path,
        "[[jobs]]\nkind = \"fraud-demo\"\nrate = 10.0\nsnapshot_interval_ms = 100\n",
    )
    .unwrap();
    let out = eddy(&["serve", "--config", path.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("jobs[0]") && err.contains("guarantee = \"exactly-once\""),
        "{err}"
    );
}
