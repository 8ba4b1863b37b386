//! Eddy's benchmarks, in one place with one harness: each compares Eddy
//! with a baseline measured in the same run and prints the ratio.
//!
//! `eddy bench …` runs them in the `eddy` binary; the `eddy-bench` binary
//! (`cargo run --release -p eddy-bench -- engine`) runs the same with a
//! counting global allocator, so that it also reports heap allocations per
//! event. The allocator lives only in that binary, never in a node's.
//!
//! - [`engine`]: map/filter and keyed windows against hand-written loops,
//!   and window latency at a fixed rate.
//! - [`enrichment`]: a grid lookup per event against a plain hash map.
//! - [`snapshot`]: what each guarantee costs; snapshot and restore of a
//!   large keyed state.
//! - [`grid`]: the grid's maps against `hashbrown`.
//! - [`kafka`]: Kafka → Eddy → Kafka against a raw librdkafka copy loop.
//! - [`postgres`]: the PostgreSQL sink against plain `INSERT` and `COPY`.
//! - [`nexmark`]: a NEXMark query of `eddy-nexmark`, throughput, events per
//!   CPU-second, latency at a fixed rate and peak memory; `bench/compare`
//!   runs it beside Hazelcast Jet; [`sql`]: Q0, Q1 and Q2 in SQL against the
//!   same queries in Rust.
//!
//! Every latency is measured by one sink ([`latency`]'s), every benchmark
//! reports through [`Comparison`] or a report of its own with the ratio.

pub mod alloc;
mod command;
pub mod engine;
pub mod enrichment;
pub mod grid;
pub mod kafka;
mod latency;
pub mod nexmark;
pub mod postgres;
mod proc_stats;
pub mod snapshot;
pub mod sql;

pub use command::{run, BenchCommand};

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
    /// Heap allocations per event during Eddy's run (whole process); `None`
    /// where no counting allocator is installed (see [`alloc`]).
    pub eddy_allocations_per_event: Option<f64>,
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
            "{:<44} {:>7} {:>14.0} {:>14.0} {:>7.2} {:>10}",
            r.scenario,
            r.workers,
            r.baseline_events_per_sec,
            r.eddy_events_per_sec,
            r.ratio,
            r.eddy_allocations_per_event
                .map_or_else(|| "-".to_string(), |a| format!("{a:.4}"))
        );
    }
    if rows.iter().any(|r| r.eddy_allocations_per_event.is_none()) {
        println!("(allocations are counted by the eddy-bench binary: cargo run --release -p eddy-bench -- …)");
    }
}

/// Wall-clock time in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
