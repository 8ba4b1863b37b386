//! Crash test: the fraud demo over Kafka (a Kafka source, a keyed sliding
//! window aggregation and per-card state, a Kafka sink) runs in a child
//! process that is killed with SIGKILL at random points and started again
//! with the same snapshot directory until it completes. Under exactly-once
//! a `read_committed` consumer then sees exactly the alerts of a fault-free
//! run. Under at-least-once nothing is lost: every payment to a blacklisted
//! merchant raises its alert at least once. (The other rules keep per-card
//! state, and without aligned barriers a snapshot's state may already count
//! records that are replayed after a restart, so their alerts may differ
//! from a fault-free run's: that is what at-least-once allows.)
//!
//! Seeded: the seed is printed, and `EDDY_TEST_SEED` replays its kill
//! points (as fractions of the fault-free run's duration). `EDDY_CRASH_KILLS` sets the kills per guarantee (default 3) and
//! `EDDY_CRASH_EVENTS` the transactions (default 100000); `scripts/crash-soak`
//! runs the test many times with more of both.

use eddy_kafka::cli::{consume, ConsumeOptions, OutputFormat};
use eddy_testkit::kafka::TestBroker;
use eddy_testkit::Seed;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TRANSACTIONS: &str = "crash-transactions";
const PARTITIONS: i32 = 3;
/// Short against the run, so that kills fall between many snapshots and
/// commits.
const SNAPSHOT_INTERVAL_MS: &str = "200";
/// About how long the demo process takes before its job starts.
const STARTUP_MS: u64 = 700;
/// A run that takes longer than this is stuck.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SplitMix64 over the seed: the kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Demo<'a> {
    bootstrap: &'a str,
    events: u64,
    dir: &'a Path,
}

impl Demo<'_> {
    /// The demo writing to `alerts`; its JSON summary goes to `summary`,
    /// stderr to a file of the test's directory, shown when a run fails.
    fn spawn(&self, alerts: &str, extra: &[&str], summary: Stdio) -> (Child, PathBuf) {
        let log = unique(self.dir.join(alerts));
        let child = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["demo", "--bootstrap", self.bootstrap, "--json"])
            .args(["--events", &self.events.to_string(), "--seed", "7"])
            .args([
                "--parallelism",
                "2",
                "--partitions",
                &PARTITIONS.to_string(),
            ])
            .args([
                "--transactions-topic",
                TRANSACTIONS,
                "--alerts-topic",
                alerts,
            ])
            .args(extra)
            .stdout(summary)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the eddy binary runs");
        (child, log)
    }
}

fn unique(path: PathBuf) -> PathBuf {
    let mut n = 0;
    loop {
        let candidate = path.with_extension(format!("{n}.log"));
        if !candidate.exists() {
            return candidate;
        }
        n += 1;
    }
}

/// Waits for `child` until `deadline`; `None` if it still runs.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_success(status: std::process::ExitStatus, log: &Path) {
    assert!(
        status.success(),
        "the demo failed ({status}):\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The values of `topic` a `read_committed` consumer sees, sorted.
fn committed_alerts(bootstrap: &str, topic: &str, max: Option<u64>) -> Vec<String> {
    let options = ConsumeOptions {
        bootstrap: bootstrap.to_string(),
        topic: topic.to_string(),
        from_beginning: true,
        max,
        read_committed: true,
        format: OutputFormat::Text,
        idle_timeout: Some(Duration::from_secs(3)),
        properties: Default::default(),
    };
    let mut out = Vec::new();
    consume(&options, &mut out).unwrap();
    let mut lines: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

fn has_snapshots(root: &Path) -> bool {
    let Ok(jobs) = std::fs::read_dir(root) else {
        return false;
    };
    jobs.flatten().any(|job| {
        std::fs::read_dir(job.path()).is_ok_and(|files| {
            files
                .flatten()
                .any(|f| f.file_name().to_string_lossy().ends_with(".bin"))
        })
    })
}

/// Runs the detection job under `guarantee`, killing it `kills` times at
/// random points within `run_ms` of its start, until a run completes.
fn run_with_kills(
    demo: &Demo<'_>,
    rng: &mut Rng,
    guarantee: &str,
    alerts: &str,
    kills: u64,
    run_ms: u64,
) {
    let snapshots = demo.dir.join(format!("snapshots-{guarantee}"));
    let extra = [
        "--skip-produce",
        "--guarantee",
        guarantee,
        "--snapshot-interval-ms",
        SNAPSHOT_INTERVAL_MS,
        "--snapshot-dir",
        snapshots.to_str().unwrap(),
    ];
    let mut killed = 0;
    loop {
        let (mut child, log) = demo.spawn(alerts, &extra, Stdio::null());
        let started = Instant::now();
        if killed < kills {
            // The same fractions of the run on replay, however fast the
            // machine.
            let after = Duration::from_millis(100 + run_ms * rng.below(1000) / 1000);
            if let Some(status) = wait_until(&mut child, started + after) {
                assert_success(status, &log);
                eprintln!(
                    "  {guarantee}: completed before kill {} ({after:?})",
                    killed + 1
                );
                return;
            }
            child.kill().unwrap();
            child.wait().unwrap();
            killed += 1;
            eprintln!("  {guarantee}: killed after {after:?}");
            // A kill right after the job completed (it clears its
            // snapshots then) must not start it from scratch: under
            // exactly-once, committed output means a snapshot was durable,
            // so no snapshot left means the job had completed.
            if guarantee == "exactly-once"
                && !has_snapshots(&snapshots)
                && !committed_alerts(demo.bootstrap, alerts, Some(1)).is_empty()
            {
                eprintln!("  {guarantee}: the job had completed");
                return;
            }
        } else {
            let status = wait_until(&mut child, started + RUN_TIMEOUT);
            let Some(status) = status else {
                let _ = child.kill();
                panic!(
                    "the demo did not complete within {RUN_TIMEOUT:?}:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            };
            assert_success(status, &log);
            eprintln!("  {guarantee}: completed in {:?}", started.elapsed());
            return;
        }
    }
}

#[test]
fn when_the_demo_is_killed_and_restarted_then_exactly_once_output_equals_a_fault_free_run() {
    let seed = Seed::new("crash");
    eprintln!("seed {} (replay with EDDY_TEST_SEED)", seed.value());
    let mut rng = Rng(seed.value());
    let kills = env_or("EDDY_CRASH_KILLS", 3);
    let events = env_or("EDDY_CRASH_EVENTS", 100_000);
    let broker = TestBroker::start("crash-test");
    let b = broker.bootstrap();
    let demo = Demo {
        bootstrap: b,
        events,
        dir: broker.dir(),
    };
    for topic in [
        "crash-reference",
        "crash-exactly-once",
        "crash-at-least-once",
    ] {
        eddy_kafka::create_topic(b, topic, PARTITIONS, Duration::from_secs(30)).unwrap();
    }

    // The fault-free run also writes the transactions the others read.
    let started = Instant::now();
    let (mut child, log) = demo.spawn("crash-reference", &[], Stdio::piped());
    let status = wait_until(&mut child, started + RUN_TIMEOUT).expect("the reference run ends");
    assert_success(status, &log);
    let mut summary = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut summary).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).expect("a JSON summary");
    // Kill points fall within the detection job's run and the process's
    // start before it (reading the reference data, reaching the broker).
    let run_ms = summary["duration_ms"].as_u64().unwrap() + STARTUP_MS;
    let expected = committed_alerts(b, "crash-reference", None);
    eprintln!(
        "reference: {} alerts in {run_ms} ms; {kills} kills per guarantee",
        expected.len()
    );
    assert!(!expected.is_empty(), "the reference run raised alerts");

    run_with_kills(
        &demo,
        &mut rng,
        "exactly-once",
        "crash-exactly-once",
        kills,
        run_ms,
    );
    let exactly_once = committed_alerts(b, "crash-exactly-once", None);
    eddy_testkit::assert_same_items(
        &exactly_once,
        &expected,
        "alerts under exactly-once after kills",
    );

    run_with_kills(
        &demo,
        &mut rng,
        "at-least-once",
        "crash-at-least-once",
        kills,
        run_ms,
    );
    let stateless = |alerts: Vec<String>| -> Vec<String> {
        let mut v: Vec<String> = alerts
            .into_iter()
            .filter(|a| a.contains("\"rule\":\"blacklisted_merchant\""))
            .collect();
        v.dedup();
        v
    };
    let at_least_once = stateless(committed_alerts(b, "crash-at-least-once", None));
    let expected = stateless(expected);
    assert!(
        !expected.is_empty(),
        "the reference run raised blacklist alerts"
    );
    eddy_testkit::assert_same_items(
        &at_least_once,
        &expected,
        "distinct blacklist alerts under at-least-once after kills",
    );
}
