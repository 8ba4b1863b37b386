//! The dashboard in a real browser: Debian's Chromium driven by
//! playwright-core, against a node running a streaming job and one that
//! takes snapshots. Installs what it needs (Chromium with apt,
//! playwright-core with npm into the target directory) and fails, never
//! skips, when it cannot.

mod common;

use eddy_pipeline::{agg, Pipeline, Sinks, Sources, WindowDefinition};
use eddy_runtime::{Guarantee, JobConfig};
use eddy_server::{start, Node, ServerConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The playwright-core major version the check script is written for.
const PLAYWRIGHT_CORE: &str = "playwright-core@1";

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ensure_chromium() {
    if Path::new(CHROMIUM).exists() {
        return;
    }
    eprintln!("{CHROMIUM} is missing: installing Debian's chromium with apt-get");
    run(
        Command::new("apt-get").arg("update"),
        "apt-get update (needs root and access to Debian's package mirror)",
    );
    run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install chromium",
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "apt-get installed chromium but {CHROMIUM} is still missing"
    );
}

/// The `node_modules` folder holding playwright-core, installed if absent.
fn ensure_playwright() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("playwright");
    let modules = dir.join("node_modules");
    if modules
        .join("playwright-core")
        .join("package.json")
        .exists()
    {
        return modules;
    }
    std::fs::create_dir_all(&dir).unwrap();
    run(
        Command::new("node").arg("--version"),
        "node --version (install Node.js and npm: apt-get install -y nodejs npm)",
    );
    eprintln!("installing {PLAYWRIGHT_CORE} into {}", dir.display());
    run(
        Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
            ])
            .arg(&dir)
            .arg(PLAYWRIGHT_CORE),
        "npm install playwright-core (needs the npm registry)",
    );
    modules
}

/// Adds "windowed-snapshots" to `node`: a keyed window count, exactly
/// once, a snapshot every 200 ms, so that the jobs table has a latest
/// snapshot to show. Its directory is emptied first: a job resumes from
/// snapshots of its name that an earlier run left.
fn add_snapshotting_job(node: &Node) {
    let p = Pipeline::new();
    p.read_from(Sources::generator(|n| n).rate(500.0))
        .with_timestamps(|n| *n as i64, Duration::from_millis(10))
        .grouping_key(|n| n % 8)
        .window(WindowDefinition::tumbling(Duration::from_millis(100)))
        .aggregate(agg::count())
        .write_to(Sinks::noop().0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-snapshots");
    let _ = std::fs::remove_dir_all(&dir);
    let config = JobConfig::default()
        .name("windowed-snapshots")
        .guarantee(Guarantee::ExactlyOnce)
        .snapshot_interval(Duration::from_millis(200))
        .snapshot_dir(dir);
    node.eddy.submit(p, config).unwrap();
}

#[test]
fn dashboard_in_chromium_shows_the_running_job_its_changing_numbers_and_query_results() {
    let began = Instant::now();
    ensure_chromium();
    let modules = ensure_playwright();
    let node = common::node_with_job(300.0);
    add_snapshotting_job(&node);
    let server = start(node, ServerConfig::bind("127.0.0.1:0".parse().unwrap())).unwrap();

    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The README's screenshot is refreshed only on request, so that a test
    // run leaves the working tree as it found it.
    let screenshot = if std::env::var_os("EDDY_UPDATE_SCREENSHOT").is_some() {
        manifest.join("../../docs/dashboard.png")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png")
    };
    let user_data = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chromium-profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&user_data);
    let script = manifest.join("tests/browser/dashboard_check.cjs");
    let out = Command::new("timeout")
        .arg("75")
        .arg("node")
        .arg(&script)
        .arg(format!("{}/", server.url()))
        .arg(&screenshot)
        .arg(&user_data)
        .env("NODE_PATH", &modules)
        .output()
        .expect("could not run node");
    let _ = std::fs::remove_dir_all(&user_data);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser check failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!("browser check passed in {:?}: {stdout}", began.elapsed());
    assert!(screenshot.exists());
    server.shutdown().unwrap();
}
