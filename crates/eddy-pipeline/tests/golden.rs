//! Golden end-to-end tests: every kind of stage in one set of pipelines, run
//! at parallelism 1 and 4; the outputs must be equal regardless of order.

use eddy_core::State;
use eddy_pipeline::{agg, AggregateOperation, Pipeline, Sinks, Sources, WindowDefinition};
use eddy_runtime::{Eddy, EddyConfig, JobConfig};
use eddy_testkit::assert_same_items;
use std::fmt::Debug;
use std::time::Duration;

/// A card transaction: (card, amount, event time ms).
type Txn = (u32, i64, i64);

/// Deterministic transactions, slightly out of order (within 30 ms).
fn transactions(n: u64) -> Vec<Txn> {
    (0..n)
        .map(|i| {
            let jitter = ((i * 7919) % 4) as i64 * 10;
            (
                (i % 50) as u32,
                ((i * 7919) % 1000) as i64,
                i as i64 * 5 - jitter,
            )
        })
        .collect()
}

/// Runs the pipeline `build` makes at parallelism 1 and 4 and checks that
/// the outputs are equal; returns them.
fn golden<T, F>(what: &str, build: F) -> Vec<T>
where
    T: Clone + Debug + State,
    F: Fn(&Pipeline, eddy_pipeline::sinks::CollectSink<T>),
{
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let mut outputs = Vec::new();
    for parallelism in [1, 4] {
        let p = Pipeline::new();
        let (sink, out) = Sinks::collect();
        build(&p, sink);
        eddy.submit(p, JobConfig::default().parallelism(parallelism))
            .unwrap()
            .join()
            .unwrap();
        outputs.push(out.take());
    }
    assert!(!outputs[0].is_empty(), "{what}: no output");
    assert_same_items(&outputs[1], &outputs[0], what);
    outputs.swap_remove(0)
}

#[test]
fn when_tumbling_sum_at_two_parallelisms_then_same_windows_as_computed_directly() {
    let out = golden("tumbling sum", |p, sink| {
        p.read_from(Sources::items(transactions(20_000)))
            .with_timestamps(|t| t.2, Duration::from_millis(50))
            .grouping_key(|t| t.0)
            .window(WindowDefinition::tumbling(Duration::from_secs(1)))
            .aggregate(agg::sum_i64(|t: &Txn| t.1))
            .map(|w| (w.key, w.start, w.value))
            .write_to(sink);
    });
    let mut expected = std::collections::BTreeMap::new();
    for (card, amount, ts) in transactions(20_000) {
        *expected
            .entry((card, ts.div_euclid(1000) * 1000))
            .or_insert(0) += amount;
    }
    let expected: Vec<(u32, i64, i64)> =
        expected.into_iter().map(|((c, s), v)| (c, s, v)).collect();
    assert_same_items(&out, &expected, "tumbling sum vs direct computation");
}

#[test]
fn when_sliding_and_session_windows_at_two_parallelisms_then_same_results() {
    golden("sliding count and average", |p, sink| {
        p.read_from(Sources::items(transactions(10_000)))
            .with_timestamps(|t| t.2, Duration::from_millis(50))
            .grouping_key(|t| t.0 % 7)
            .window(WindowDefinition::sliding(
                Duration::from_millis(500),
                Duration::from_millis(100),
            ))
            .aggregate(agg::count().and(agg::max(|t: &Txn| t.1)))
            .write_to(sink);
    });
    golden("sessions", |p, sink| {
        p.read_from(Sources::items(transactions(5_000)))
            .filter(|t| t.1 % 3 != 0)
            .with_timestamps(|t| t.2, Duration::from_millis(50))
            .grouping_key(|t| t.0)
            .window(WindowDefinition::session(Duration::from_millis(200)))
            .aggregate(agg::count())
            .write_to(sink);
    });
}

#[test]
fn when_keyed_state_at_two_parallelisms_then_same_results() {
    golden("rolling max", |p, sink| {
        p.read_from(Sources::items(transactions(5_000)))
            .grouping_key(|t| t.0)
            .rolling_aggregate(agg::max(|t: &Txn| t.1))
            .write_to(sink);
    });
    golden("map_stateful with TTL", |p, sink| {
        p.read_from(Sources::items(transactions(5_000)))
            .with_timestamps(|t| t.2, Duration::from_millis(50))
            .filter(|t| t.0 < 5 || t.2 < 3000)
            .grouping_key(|t| t.0)
            .map_stateful(
                Some(Duration::from_millis(400)),
                || (0u32, 0i64),
                |state: &mut (u32, i64), card: &u32, t: Txn| {
                    state.0 += 1;
                    state.1 += t.1;
                    (state.0 % 10 == 0).then_some((*card, state.0, state.1))
                },
                |state: (u32, i64), card: &u32, _wm: i64| Some((*card, u32::MAX, state.1)),
            )
            .write_to(sink);
    });
    golden("batch aggregate", |p, sink| {
        p.read_from(Sources::items(transactions(5_000)))
            .grouping_key(|t| t.0 % 3)
            .aggregate(agg::count().and(agg::top_n(3, |t: &Txn| t.1)))
            .write_to(sink);
    });
}

#[test]
fn when_joins_at_two_parallelisms_then_same_results() {
    golden("hash join", |p, sink| {
        let cards = p.read_from(Sources::items(
            (0..40u32).map(|c| (c, format!("owner-{c}"))).collect(),
        ));
        p.read_from(Sources::items(transactions(5_000)))
            .hash_join(
                cards,
                |t| t.0,
                |c| c.0,
                |t, c| c.map(|c| (c.1.clone(), t.1)),
            )
            .write_to(sink);
    });
    golden("windowed co-group and join", |p, sink| {
        let logins = p
            .read_from(Sources::items(transactions(2_000)))
            .filter(|t| t.1 % 5 == 0)
            .with_timestamps(|t| t.2, Duration::from_millis(50))
            .grouping_key(|t| t.0);
        p.read_from(Sources::items(transactions(2_000)))
            .with_timestamps(|t| t.2, Duration::from_millis(50))
            .grouping_key(|t| t.0)
            .window(WindowDefinition::tumbling(Duration::from_millis(500)))
            .join(logins, |a: &Txn, b: &Txn| (a.0, a.1, b.1))
            .write_to(sink);
    });
}

#[test]
fn when_stream_shared_and_merged_at_two_parallelisms_then_same_results() {
    golden("share and merge", |p, sink| {
        let shared = p
            .read_from(Sources::generator(|n| n as i64).limit(20_000))
            .with_timestamps(|n| *n, Duration::ZERO)
            .share();
        let evens = shared.stream().filter(|n| n % 2 == 0).map(|n| ('e', n));
        let big = shared.stream().filter(|n| *n > 19_000).map(|n| ('b', n));
        evens
            .merge(big)
            .grouping_key(|x| x.0)
            .window(WindowDefinition::tumbling(Duration::from_millis(1000)))
            .aggregate(agg::count())
            .write_to(sink);
    });
}
