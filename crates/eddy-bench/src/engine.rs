//! `eddy bench engine`: the engine against hand-written single-thread loops
//! doing the same work, in the same process, plus a latency measurement.

use super::{timed, Comparison};
use crate::alloc::allocations;
use crate::latency::{LatencySink, SinkState};
use eddy::{agg, Pipeline, Sinks, Sources, WindowDefinition};
use eddy::{Eddy, EddyConfig, JobConfig};
use hashbrown::HashMap;
use serde::Serialize;
use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Duration;

/// Number of distinct keys in the keyed scenarios.
const KEYS: u64 = 10_000;
/// Events per millisecond of event time: a million events per second.
const EVENTS_PER_MS: u64 = 1000;

/// A synthetic event.
#[derive(Debug, Clone, Copy)]
struct Tick {
    key: u32,
    value: i64,
    ts: i64,
}

#[inline]
fn tick(n: u64) -> Tick {
    Tick {
        key: (n.wrapping_mul(2_654_435_761) % KEYS) as u32,
        value: (n % 1000) as i64,
        ts: (n / EVENTS_PER_MS) as i64,
    }
}

#[inline]
fn transform(t: Tick) -> Tick {
    Tick {
        value: t.value * 3 + 1,
        ..t
    }
}

#[inline]
fn keep(t: &Tick) -> bool {
    t.value % 4 != 0
}

/// The figures of one run of the engine benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct EngineReport {
    /// Throughput comparisons.
    pub throughput: Vec<Comparison>,
    /// Latency of tumbling windows at a fixed rate.
    pub latency: LatencyReport,
}

/// Window emission latency at a fixed input rate.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    /// Input rate, events per second.
    pub rate_per_sec: f64,
    /// Tumbling window size.
    pub window_ms: i64,
    /// Window results measured (after warm-up).
    pub samples: u64,
    /// Latency percentiles in microseconds: emission wall clock minus window end.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.99th percentile.
    pub p9999_us: u64,
    /// Largest latency seen.
    pub max_us: u64,
}

fn eddy_with(workers: usize) -> Eddy {
    Eddy::new(EddyConfig::with_threads(workers))
}

/// Runs a pipeline and returns events per second and allocations per event.
fn run_eddy(workers: usize, events: u64, build: impl FnOnce(&Pipeline)) -> (f64, Option<f64>) {
    let eddy = eddy_with(workers);
    let p = Pipeline::new();
    build(&p);
    let allocs_before = allocations();
    let (result, secs) = timed(|| {
        eddy.submit(p, JobConfig::default().parallelism(workers))
            .and_then(|job| job.join())
    });
    let allocs = allocations()
        .zip(allocs_before)
        .map(|(after, before)| after - before);
    if let Err(e) = result {
        panic!("benchmark job failed: {e}");
    }
    (
        events as f64 / secs,
        allocs.map(|a| a as f64 / events as f64),
    )
}

fn map_filter_baseline(events: u64) -> f64 {
    let (count, secs) = timed(|| {
        let mut count = 0u64;
        for n in 0..events {
            let t = transform(tick(n));
            if keep(&t) {
                black_box(t);
                count += 1;
            }
        }
        count
    });
    black_box(count);
    events as f64 / secs
}

fn tumbling_baseline(events: u64) -> f64 {
    let (checksum, secs) = timed(|| {
        let window_ms = 1000;
        let mut counts: HashMap<u32, i64> = HashMap::new();
        let mut window_end = window_ms;
        let mut checksum = 0i64;
        for n in 0..events {
            let t = tick(n);
            if t.ts >= window_end {
                for (k, c) in counts.drain() {
                    checksum = checksum.wrapping_add(black_box(k as i64 + c));
                }
                window_end = (t.ts / window_ms + 1) * window_ms;
            }
            *counts.entry(t.key).or_insert(0) += 1;
        }
        for (k, c) in counts.drain() {
            checksum = checksum.wrapping_add(black_box(k as i64 + c));
        }
        checksum
    });
    black_box(checksum);
    events as f64 / secs
}

fn sliding_baseline(events: u64) -> f64 {
    let (checksum, secs) = timed(|| {
        let (size_ms, slide_ms) = (10_000i64, 100i64);
        let frames_per_window = (size_ms / slide_ms) as usize;
        let mut frame: HashMap<u32, i64> = HashMap::new();
        let mut frame_end = slide_ms;
        let mut history: VecDeque<HashMap<u32, i64>> = VecDeque::new();
        let mut sliding: HashMap<u32, i64> = HashMap::new();
        let mut checksum = 0i64;
        let mut close = |frame: HashMap<u32, i64>,
                         history: &mut VecDeque<HashMap<u32, i64>>,
                         checksum: &mut i64| {
            for (k, v) in &frame {
                *sliding.entry(*k).or_insert(0) += v;
            }
            history.push_back(frame);
            for (k, v) in &sliding {
                *checksum = checksum.wrapping_add(black_box(*k as i64 + v));
            }
            if history.len() == frames_per_window {
                for (k, v) in history.pop_front().expect("full") {
                    *sliding.get_mut(&k).expect("added with its frame") -= v;
                }
            }
        };
        for n in 0..events {
            let t = tick(n);
            if t.ts >= frame_end {
                close(std::mem::take(&mut frame), &mut history, &mut checksum);
                frame_end += slide_ms;
            }
            *frame.entry(t.key).or_insert(0) += t.value;
        }
        close(frame, &mut history, &mut checksum);
        checksum
    });
    black_box(checksum);
    events as f64 / secs
}

fn compare(
    scenario: &str,
    workers: usize,
    baseline: f64,
    (eddy, allocs): (f64, Option<f64>),
) -> Comparison {
    Comparison {
        scenario: scenario.to_string(),
        workers,
        baseline_events_per_sec: baseline,
        eddy_events_per_sec: eddy,
        ratio: eddy / baseline,
        eddy_allocations_per_event: allocs,
    }
}

/// The keyed sliding-window scenario: a sum per key over 10 s windows
/// sliding by 100 ms, into a no-op sink. `bench snapshot` runs it too.
pub fn keyed_sliding_sum(p: &Pipeline, events: u64) {
    let (sink, _) = Sinks::noop();
    p.read_from(Sources::generator(tick).limit(events))
        .with_timestamps(|t| t.ts, Duration::ZERO)
        .grouping_key(|t| t.key)
        .window(WindowDefinition::sliding(
            Duration::from_secs(10),
            Duration::from_millis(100),
        ))
        .aggregate(agg::sum_i64(|t: &Tick| t.value))
        .write_to(sink);
}

/// Runs the throughput scenarios with `events` each, at 1 and 2 workers.
pub fn throughput(events: u64) -> Vec<Comparison> {
    let mut rows = Vec::new();
    let base_map = map_filter_baseline(events);
    let base_tumbling = tumbling_baseline(events);
    let base_sliding = sliding_baseline(events);
    for workers in [1, 2] {
        let run = run_eddy(workers, events, |p| {
            let (sink, _) = Sinks::noop();
            p.read_from(Sources::generator(tick).limit(events))
                .map(transform)
                .filter(keep)
                .write_to(sink);
        });
        rows.push(compare(
            "generator -> map -> filter -> no-op",
            workers,
            base_map,
            run,
        ));

        let run = run_eddy(workers, events, |p| {
            let (sink, _) = Sinks::noop();
            p.read_from(Sources::generator(tick).limit(events))
                .with_timestamps(|t| t.ts, Duration::ZERO)
                .grouping_key(|t| t.key)
                .window(WindowDefinition::tumbling(Duration::from_secs(1)))
                .aggregate(agg::count())
                .write_to(sink);
        });
        rows.push(compare(
            "keyed tumbling count, 10k keys, 1 s",
            workers,
            base_tumbling,
            run,
        ));

        let run = run_eddy(workers, events, |p| keyed_sliding_sum(p, events));
        rows.push(compare(
            "keyed sliding sum, 10k keys, 10 s / 100 ms",
            workers,
            base_sliding,
            run,
        ));
    }
    rows
}

/// Generator at `rate` events/s with event time = scheduled wall-clock time,
/// keyed tumbling count in 20 ms windows; latency = emission wall clock minus
/// window end.
pub fn latency(rate_per_sec: f64, seconds: u64, workers: usize) -> LatencyReport {
    let window_ms = 20;
    let warmup_ms = 2000;
    let start_ms = crate::now_ms() + 50;
    let state = SinkState::new();
    let eddy = eddy_with(workers);
    let p = Pipeline::new();
    let per_ms = rate_per_sec / 1000.0;
    let total = (rate_per_sec as u64) * (seconds + warmup_ms as u64 / 1000);
    let source =
        Sources::generator(move |n| ((n % 1000) as u32, start_ms + (n as f64 / per_ms) as i64))
            .rate(rate_per_sec)
            .anchored_at_epoch_ms(start_ms)
            .limit(total);
    p.read_from(source)
        .with_timestamps(|e| e.1, Duration::ZERO)
        .grouping_key(|e| e.0)
        .window(WindowDefinition::tumbling(Duration::from_millis(
            window_ms as u64,
        )))
        .aggregate(agg::count())
        .write_to(LatencySink {
            state: state.clone(),
            // Window results: the reference time is the window end.
            window_offset_ms: 1,
            measured: Some((start_ms + warmup_ms + 1, i64::MAX)),
            first_per_reference: false,
        });
    eddy.submit(p, JobConfig::default().parallelism(workers))
        .and_then(|job| job.join())
        .unwrap_or_else(|e| panic!("latency job failed: {e}"));
    let h = state.histogram.lock().expect("job finished");
    LatencyReport {
        rate_per_sec,
        window_ms,
        samples: h.len(),
        p50_us: h.value_at_quantile(0.50),
        p99_us: h.value_at_quantile(0.99),
        p9999_us: h.value_at_quantile(0.9999),
        max_us: h.max(),
    }
}
