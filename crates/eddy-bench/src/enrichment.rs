//! Enrichment from a grid map inside a pipeline against a raw lookup loop.

use super::{timed, Comparison};
use crate::alloc::allocations;
use eddy::grid::Grid;
use eddy::{Eddy, EddyConfig, JobConfig};
use eddy::{Pipeline, Sinks, Sources};
use std::hint::black_box;

/// `events` lookups of keys spread over `entries` u64 → u64 entries: a
/// one-worker pipeline `generator → map_using_map → no-op` against a loop
/// calling `Map::get_with` directly.
pub fn enrichment_lookup(entries: u64, events: u64) -> Comparison {
    let grid = Grid::new();
    let map = grid
        .map::<u64, u64>("reference")
        .expect("a fresh grid has no map of that name");
    map.put_all((0..entries).map(|k| (k, k * 7)));
    let key = move |n: u64| n.wrapping_mul(2_654_435_761) % entries;

    let (sum, secs) = timed(|| {
        let mut sum = 0u64;
        for n in 0..events {
            sum = sum.wrapping_add(map.get_with(&key(n), |v| *v).unwrap_or(0));
        }
        sum
    });
    black_box(sum);
    let baseline = events as f64 / secs;

    let eddy = Eddy::new(EddyConfig::with_threads(1));
    let p = Pipeline::new();
    let (sink, _) = Sinks::noop();
    p.read_from(Sources::generator(key).limit(events))
        .map_using_map(
            map.clone(),
            |k| *k,
            |k, v| Some(k.wrapping_add(v.copied().unwrap_or(0))),
        )
        .write_to(sink);
    let before = allocations();
    let (result, secs) = timed(|| {
        eddy.submit(p, JobConfig::default().parallelism(1))
            .and_then(|j| j.join())
    });
    result.expect("the enrichment benchmark job failed");
    let allocs = allocations()
        .zip(before)
        .map(|(after, before)| (after - before) as f64 / events as f64);
    let eddy_rate = events as f64 / secs;
    Comparison {
        scenario: "enrichment: generator -> map_using_map".into(),
        workers: 1,
        baseline_events_per_sec: baseline,
        eddy_events_per_sec: eddy_rate,
        ratio: eddy_rate / baseline,
        eddy_allocations_per_event: allocs,
    }
}
