//! `eddy bench snapshot`: what fault tolerance costs. The keyed sliding
//! window of `eddy bench engine` runs with no guarantee, at-least-once and
//! exactly-once in the same process, and the rates are compared with the
//! run without snapshots; then a job holding a million keys is snapshotted
//! and restored, and both are timed.

use super::timed;
use eddy::{agg, Pipeline, Sinks, Sources};
use eddy::{Eddy, EddyConfig, Guarantee, Job, JobConfig};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The figures of one run of the snapshot benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotReport {
    /// Throughput under each guarantee.
    pub throughput: Vec<GuaranteeRun>,
    /// Snapshot and restore of a large state.
    pub state: StateRun,
}

/// The keyed sliding window under one guarantee.
#[derive(Debug, Clone, Serialize)]
pub struct GuaranteeRun {
    /// none, at-least-once or exactly-once.
    pub guarantee: String,
    /// Time between snapshots.
    pub interval_ms: u64,
    /// Events per second.
    pub events_per_sec: f64,
    /// Snapshots completed during the run.
    pub snapshots: u64,
    /// Rate over the rate without snapshots.
    pub ratio: f64,
}

/// Snapshot and restore of a job holding `keys` keys.
#[derive(Debug, Clone, Serialize)]
pub struct StateRun {
    /// Distinct keys in the rolling aggregate's state.
    pub keys: u64,
    /// From the snapshot's request to its durable file (the job's own
    /// measure), in milliseconds.
    pub snapshot_ms: f64,
    /// Size of the snapshot file.
    pub snapshot_bytes: u64,
    /// Entries in the snapshot.
    pub snapshot_entries: u64,
    /// From the new job's start until all processors restored, in
    /// milliseconds.
    pub restore_ms: f64,
}

fn sliding_window(events: u64) -> Pipeline {
    let p = Pipeline::new();
    super::engine::keyed_sliding_sum(&p, events);
    p
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eddy-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs the sliding window under each guarantee with `events` events,
/// twice in alternation (none, at-least-once, exactly-once, none, ...) so
/// that a slow phase of the machine does not favour one; each guarantee
/// keeps its better run.
pub fn throughput(events: u64, interval: Duration, workers: usize) -> Vec<GuaranteeRun> {
    let dir = scratch_dir("throughput");
    let eddy = Eddy::new(EddyConfig::with_threads(workers));
    let guarantees = [
        Guarantee::None,
        Guarantee::AtLeastOnce,
        Guarantee::ExactlyOnce,
    ];
    let mut best: Vec<(f64, u64)> = vec![(0.0, 0); guarantees.len()];
    for round in 0..2 {
        for (i, guarantee) in guarantees.iter().enumerate() {
            let config = JobConfig::default()
                .name(format!("bench-{guarantee}-{round}"))
                .parallelism(workers)
                .guarantee(*guarantee)
                .snapshot_interval(interval)
                .snapshot_dir(&dir);
            let (job, secs) = timed(|| {
                let job = eddy
                    .submit(sliding_window(events), config)
                    .unwrap_or_else(|e| panic!("benchmark job failed to start: {e}"));
                if let Err(e) = job.join() {
                    panic!("benchmark job failed: {e}");
                }
                job
            });
            let rate = events as f64 / secs;
            if rate > best[i].0 {
                best[i] = (rate, job.snapshot_stats().completed);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let base = best[0].0;
    guarantees
        .iter()
        .zip(best)
        .map(|(g, (rate, snapshots))| GuaranteeRun {
            guarantee: g.to_string(),
            interval_ms: interval.as_millis() as u64,
            events_per_sec: rate,
            snapshots,
            ratio: rate / base,
        })
        .collect()
}

/// A job whose rolling aggregate holds `keys` keys once it has seen that
/// many events.
fn rolling_counts(keys: u64) -> Pipeline {
    let p = Pipeline::new();
    let (sink, _) = Sinks::noop();
    p.read_from(Sources::generator(move |n| n % keys))
        .grouping_key(|k| *k)
        .rolling_aggregate(agg::count())
        .write_to(sink);
    p
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn events_seen_by_aggregate(job: &Job) -> u64 {
    job.metrics()
        .iter()
        .filter(|m| m.name.contains("rolling"))
        .map(|m| m.items_in)
        .max()
        .unwrap_or(0)
}

/// Snapshots and restores a job holding `keys` keys.
pub fn state(keys: u64, workers: usize) -> StateRun {
    let dir = scratch_dir("state");
    let eddy = Eddy::new(EddyConfig::with_threads(workers));
    let config = |name: &str, dir: &Path| {
        JobConfig::default()
            .name(name)
            .parallelism(workers)
            .guarantee(Guarantee::ExactlyOnce)
            // Only the snapshots the benchmark asks for.
            .snapshot_interval(Duration::from_secs(3600))
            .snapshot_dir(dir)
    };
    let job = eddy
        .submit(rolling_counts(keys), config("bench-state", &dir))
        .unwrap_or_else(|e| panic!("benchmark job failed to start: {e}"));
    wait_until(
        "the aggregate saw every key",
        Duration::from_secs(120),
        || events_seen_by_aggregate(&job) >= 2 * keys,
    );
    let exported = job
        .cancel_and_export_snapshot("bench-state")
        .unwrap_or_else(|e| panic!("snapshot failed: {e}"));
    let _ = job.join();
    let stats = job.snapshot_stats();

    let restored = eddy
        .submit(
            rolling_counts(keys),
            config("bench-state-restored", &dir).restore_from(&exported),
        )
        .unwrap_or_else(|e| panic!("restored job failed to start: {e}"));
    wait_until("the state is restored", Duration::from_secs(120), || {
        restored.snapshot_stats().restore_duration.is_some()
    });
    let restore = restored
        .snapshot_stats()
        .restore_duration
        .unwrap_or_default();
    restored.cancel();
    let _ = restored.join();
    let _ = std::fs::remove_dir_all(&dir);
    StateRun {
        keys,
        snapshot_ms: stats.last_duration.as_secs_f64() * 1e3,
        snapshot_bytes: stats.last_bytes,
        snapshot_entries: stats.last_entries,
        restore_ms: restore.as_secs_f64() * 1e3,
    }
}

/// Prints a report as tables.
pub fn print(report: &SnapshotReport) {
    println!(
        "{:<14} {:>9} {:>14} {:>10} {:>7}",
        "guarantee", "interval", "events/s", "snapshots", "ratio"
    );
    for r in &report.throughput {
        println!(
            "{:<14} {:>7}ms {:>14.0} {:>10} {:>7.2}",
            r.guarantee, r.interval_ms, r.events_per_sec, r.snapshots, r.ratio
        );
    }
    let s = &report.state;
    println!(
        "\n{} keys: snapshot {:.0} ms ({:.1} MB, {} entries), restore {:.0} ms",
        s.keys,
        s.snapshot_ms,
        s.snapshot_bytes as f64 / 1e6,
        s.snapshot_entries,
        s.restore_ms
    );
}
