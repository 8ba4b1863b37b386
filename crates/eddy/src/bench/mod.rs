//! `eddy bench`: benchmarks that compare Eddy with a baseline measured in
//! the same run and print the ratios.

pub mod engine;
pub mod grid;
pub mod snapshot;

use serde::Serialize;
use std::time::Instant;

/// One measured rate and how it compares with its baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Scenario name.
    pub scenario: String,
    /// Number of Eddy worker threads.
    pub workers: usize,
    /// Events per second of the baseline (hand-written loop, one thread).
    pub baseline_events_per_sec: f64,
    /// Events per second of Eddy.
    pub eddy_events_per_sec: f64,
    /// Eddy's rate over the baseline's.
    pub ratio: f64,
    /// Heap allocations per event during Eddy's run (whole process).
    pub eddy_allocations_per_event: f64,
}

/// Runs `f`, returning its result and the elapsed seconds.
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed().as_secs_f64())
}

/// Prints comparisons as an aligned table.
pub fn print_table(rows: &[Comparison]) {
    println!(
        "{:<44} {:>7} {:>14} {:>14} {:>7} {:>10}",
        "scenario", "workers", "baseline ev/s", "eddy ev/s", "ratio", "allocs/ev"
    );
    for r in rows {
        println!(
            "{:<44} {:>7} {:>14.0} {:>14.0} {:>7.2} {:>10.4}",
            r.scenario,
            r.workers,
            r.baseline_events_per_sec,
            r.eddy_events_per_sec,
            r.ratio,
            r.eddy_allocations_per_event
        );
    }
}
