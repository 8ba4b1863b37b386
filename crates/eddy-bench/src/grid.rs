//! The grid benchmark: the grid against a plain `hashbrown` map doing the same work.
//!
//! `eddy bench grid [--json]` calls [`run`]. Every
//! figure is a ratio against a baseline measured in the same process, so
//! the numbers compare across machines better than absolute rates do.
//!
//! - **get / put, one thread**: `u64 -> u64`, random keys, the grid's
//!   `Map::get`/`Map::put` against `hashbrown::HashMap::get`/`insert`.
//! - **get, LRU map, one thread**: the same gets on a map with LRU eviction
//!   (a limit it never reaches), whose reads record access times.
//! - **get, two threads**: each thread reads every key of the get
//!   measurement, in an order of its own;
//!   the baseline is the plain `hashbrown` map shared by reference, which
//!   scales with readers as well as anything can.
//! - **two threads**: 80% gets and 20% puts on disjoint key halves, and on
//!   the same keys; the baseline is one `hashbrown` map behind a
//!   `parking_lot::Mutex`, what a shared map looks like without a grid.
//! - **memory per entry**: after inserting the entries, the exact bytes the
//!   tables and metadata vectors have allocated (`HashTable::allocation_size`
//!   and vector capacity, plus the partition structures), divided by the
//!   entry count; the baseline is `HashMap::allocation_size`. Computed from
//!   the data structures' allocation sizes, not measured with a counting
//!   allocator (a library cannot install one); for `u64 -> u64` nothing
//!   else is allocated per entry.
//! - **expiry storm**: `storm_entries` entries that all expire at the same
//!   instant while one thread keeps reading and writing the map; the
//!   latency of every operation from that instant until the sweeper has
//!   removed them all goes into an HDR histogram.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use eddy::grid::{EvictionPolicy, Expiry, Grid, Map, MapConfig};

/// Sizes of a benchmark run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchConfig {
    /// Entries of the get/put and memory measurements.
    pub entries: usize,
    /// Operations per thread in the two-thread measurements.
    pub ops_per_thread: usize,
    /// Entries that expire at once in the storm.
    pub storm_entries: usize,
}

impl Default for BenchConfig {
    /// The figures the issue asks for: 1M entries (about 10 s in release).
    fn default() -> Self {
        BenchConfig {
            entries: 1_000_000,
            ops_per_thread: 2_000_000,
            storm_entries: 1_000_000,
        }
    }
}

impl BenchConfig {
    /// A run small enough for a debug-mode test.
    pub fn quick() -> Self {
        BenchConfig {
            entries: 20_000,
            ops_per_thread: 20_000,
            storm_entries: 20_000,
        }
    }
}

/// Grid and baseline rates of one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    /// Grid operations per second.
    pub grid_ops_s: f64,
    /// Baseline operations per second.
    pub raw_ops_s: f64,
    /// `grid_ops_s / raw_ops_s`.
    pub ratio: f64,
}

impl Rate {
    fn new(ops: usize, grid: Duration, raw: Duration) -> Rate {
        let g = ops as f64 / grid.as_secs_f64().max(1e-9);
        let r = ops as f64 / raw.as_secs_f64().max(1e-9);
        Rate {
            grid_ops_s: g,
            raw_ops_s: r,
            ratio: g / r,
        }
    }
}

/// Memory per entry.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// Entries held.
    pub entries: usize,
    /// Grid bytes per entry.
    pub grid_bytes_per_entry: f64,
    /// `hashbrown` bytes per entry.
    pub raw_bytes_per_entry: f64,
    /// `grid / raw`.
    pub ratio: f64,
    /// How the bytes were obtained.
    pub method: &'static str,
}

/// Operation latency during the expiry storm.
#[derive(Debug, Clone, Serialize)]
pub struct Storm {
    /// Entries that expired at once.
    pub entries: usize,
    /// Operations measured.
    pub ops: u64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Worst, µs.
    pub max_us: f64,
    /// From the expiry instant until all expired entries were gone, ms.
    pub cleared_ms: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The sizes used.
    pub config: BenchConfig,
    /// `get`, one thread.
    pub get_1_thread: Rate,
    /// `get` on an LRU map, one thread.
    pub get_lru_1_thread: Rate,
    /// `get`, two threads reading the same keys.
    pub get_2_threads: Rate,
    /// `put`, one thread (inserting new keys).
    pub put_1_thread: Rate,
    /// 80/20 get/put, two threads, disjoint keys.
    pub mixed_2_threads_disjoint: Rate,
    /// 80/20 get/put, two threads, the same keys.
    pub mixed_2_threads_overlapping: Rate,
    /// Memory per entry.
    pub memory: Memory,
    /// The expiry storm.
    pub expiry_storm: Storm,
}

impl BenchReport {
    /// A table for people.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<34} {:>14} {:>14} {:>8}\n",
            "measurement", "grid", "hashbrown", "ratio"
        ));
        for (name, r) in [
            ("get, 1 thread (ops/s)", &self.get_1_thread),
            ("get, LRU map, 1 thread", &self.get_lru_1_thread),
            ("get, 2 threads", &self.get_2_threads),
            ("put, 1 thread (ops/s)", &self.put_1_thread),
            (
                "80/20 get/put, 2 threads, disjoint",
                &self.mixed_2_threads_disjoint,
            ),
            (
                "80/20 get/put, 2 threads, same keys",
                &self.mixed_2_threads_overlapping,
            ),
        ] {
            out.push_str(&format!(
                "{:<34} {:>14.0} {:>14.0} {:>8.2}\n",
                name, r.grid_ops_s, r.raw_ops_s, r.ratio
            ));
        }
        let m = &self.memory;
        out.push_str(&format!(
            "{:<34} {:>14.1} {:>14.1} {:>8.2}\n",
            format!("memory, {} entries (bytes/entry)", m.entries),
            m.grid_bytes_per_entry,
            m.raw_bytes_per_entry,
            m.ratio
        ));
        let s = &self.expiry_storm;
        out.push_str(&format!(
            "expiry storm, {} entries at once: {} ops, p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs; cleared in {:.0} ms\n",
            s.entries, s.ops, s.p50_us, s.p99_us, s.p999_us, s.max_us, s.cleared_ms
        ));
        out.push_str(&format!("memory method: {}\n", m.method));
        out
    }
}

fn keys(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen()).collect()
}

fn shuffled(keys: &[u64], seed: u64) -> Vec<u64> {
    let mut v = keys.to_vec();
    v.shuffle(&mut SmallRng::seed_from_u64(seed));
    v
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// Runs both sides on two threads started together; returns the slower
/// thread's time.
fn two_threads(work: impl Fn(usize) + Sync) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let (work, barrier) = (&work, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    time(|| work(t))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

/// Runs the benchmark; see the module docs for what it measures.
pub fn run(config: &BenchConfig) -> BenchReport {
    let n = config.entries;
    let ks = keys(n, 1);
    let order = shuffled(&ks, 2);
    let grid = Grid::new();
    let map: Map<u64, u64> = grid
        .map("bench")
        .expect("a fresh grid has no map of this name");
    let mut raw: hashbrown::HashMap<u64, u64> = hashbrown::HashMap::new();

    let grid_put = time(|| {
        ks.iter().for_each(|&k| {
            map.put(k, k);
        })
    });
    let raw_put = time(|| {
        ks.iter().for_each(|&k| {
            raw.insert(k, k);
        })
    });
    let grid_get = time(|| {
        order.iter().for_each(|k| {
            black_box(map.get(k));
        })
    });
    // Both sides hand out the value (the grid returns it by value), as the
    // two-thread baseline below does too.
    let raw_get = time(|| {
        order.iter().for_each(|k| {
            black_box(raw.get(k).copied());
        })
    });

    // Each reader walks the keys in its own order, as independent readers do.
    let orders = [shuffled(&ks, 3), shuffled(&ks, 4)];
    let get_2_threads = Rate::new(
        2 * n,
        two_threads(|t| {
            orders[t].iter().for_each(|k| {
                black_box(map.get(k));
            })
        }),
        two_threads(|t| {
            orders[t].iter().for_each(|k| {
                black_box(raw.get(k).copied());
            })
        }),
    );
    drop(orders);
    let lru_config = MapConfig::default().with_eviction(EvictionPolicy::Lru, Some(2 * n), None);
    let lru: Map<u64, u64> = grid
        .map_with_config("bench-lru", lru_config)
        .expect("a fresh grid has no map of this name");
    ks.iter().for_each(|&k| lru.set(k, k));
    let lru_get = time(|| {
        order.iter().for_each(|k| {
            black_box(lru.get(k));
        })
    });
    drop(lru);

    let grid_bytes = map.stats().allocated_bytes as f64 / n as f64;
    let raw_bytes = raw.allocation_size() as f64 / n as f64;
    let memory = Memory {
        entries: n,
        grid_bytes_per_entry: grid_bytes,
        raw_bytes_per_entry: raw_bytes,
        ratio: grid_bytes / raw_bytes,
        method: "exact allocation sizes of the hash tables and metadata vectors (capacity), not a counting allocator",
    };

    let ops = config.ops_per_thread;
    let mixed = |t: usize, disjoint: bool, op: &dyn Fn(u64, bool)| {
        let own: Vec<u64> = if disjoint {
            ks.iter().skip(t).step_by(2).copied().collect()
        } else {
            shuffled(&ks, 10 + t as u64)
        };
        for i in 0..ops {
            op(own[i % own.len()], i % 5 == 0);
        }
    };
    let shared = Mutex::new(raw);
    let mut two = Vec::new();
    for disjoint in [true, false] {
        let g = two_threads(|t| {
            mixed(t, disjoint, &|k, put| {
                if put {
                    map.set(k, k + 1);
                } else {
                    black_box(map.get(&k));
                }
            })
        });
        let r = two_threads(|t| {
            mixed(t, disjoint, &|k, put| {
                if put {
                    shared.lock().insert(k, k + 1);
                } else {
                    black_box(shared.lock().get(&k).copied());
                }
            })
        });
        two.push(Rate::new(2 * ops, g, r));
    }
    drop(shared);
    drop(grid);

    BenchReport {
        config: config.clone(),
        get_1_thread: Rate::new(n, grid_get, raw_get),
        get_lru_1_thread: Rate::new(n, lru_get, raw_get),
        get_2_threads,
        put_1_thread: Rate::new(n, grid_put, raw_put),
        mixed_2_threads_overlapping: two.pop().expect("two measurements"),
        mixed_2_threads_disjoint: two.pop().expect("two measurements"),
        memory,
        expiry_storm: storm(config.storm_entries),
    }
}

fn storm(entries: usize) -> Storm {
    let grid = Grid::new();
    let map: Map<u64, u64> = grid
        .map("storm")
        .expect("a fresh grid has no map of this name");
    let stable = 100_000u64;
    for k in 0..stable {
        map.put(k, k);
    }
    // Every expiring entry gets the same deadline, however long loading takes.
    let lead = Duration::from_millis(500) + Duration::from_nanos(entries as u64 * 1_000);
    let deadline = Instant::now() + lead;
    for k in stable..stable + entries as u64 {
        let ttl = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        map.put_with_expiry(k, k, Expiry::ttl(ttl));
    }
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds");
    let mut rng = SmallRng::seed_from_u64(3);
    let total = stable + entries as u64;
    while Instant::now() < deadline {
        black_box(map.get(&rng.gen_range(0..total)));
    }
    let start = Instant::now();
    let give_up = start + Duration::from_secs(30);
    let mut i = 0u64;
    let cleared = loop {
        let k = rng.gen_range(0..total);
        let t = Instant::now();
        if i % 4 == 0 {
            map.set(k % stable, i);
        } else {
            black_box(map.get(&k));
        }
        let _ = hist.record(t.elapsed().as_nanos() as u64);
        i += 1;
        // Checking the size takes every partition's read lock: not every op.
        if i % 4096 == 0 && (map.size() as u64 <= stable || Instant::now() > give_up) {
            break start.elapsed();
        }
    };
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1_000.0;
    Storm {
        entries,
        ops: hist.len(),
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        max_us: hist.max() as f64 / 1_000.0,
        cleared_ms: cleared.as_secs_f64() * 1_000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_bench_runs_small_then_report_is_complete_and_serialises() {
        let report = run(&BenchConfig::quick());
        assert!(report.get_1_thread.ratio > 0.0);
        assert!(report.memory.grid_bytes_per_entry > 16.0);
        assert!(report.expiry_storm.ops > 0);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["expiry_storm"]["p999_us"].is_number());
        assert!(report.table().contains("expiry storm"));
    }
}
