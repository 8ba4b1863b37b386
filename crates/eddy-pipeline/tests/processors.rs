//! Processor-level tests through the testkit harness (roomy and starved
//! outboxes), including property tests of windows against a reference model.

use eddy_core::{agg, AggregateOperation, Either, Event, WindowDefinition, WindowResult};
use eddy_pipeline::processors::join::HashJoinP;
use eddy_pipeline::processors::keyed::{MapStatefulP, RollingP};
use eddy_pipeline::processors::session::SessionWindowP;
use eddy_pipeline::processors::window::FrameWindowP;
use eddy_pipeline::stage::WindowProcessor;
use eddy_testkit::{Seed, TestInput, TestOutput, TestSupport};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Ev = Event<(u8, i64)>;
/// Window start, end and key.
type WindowId = (i64, i64, u8);
/// Sum and count of a window.
type SumCount = (i64, i64);
/// The key function of the tests.
type KeyFn = fn(&(u8, i64)) -> u8;

fn ev(ts: i64, key: u8, value: i64) -> TestInput<Ev> {
    TestInput::Item(Event {
        ts,
        value: (key, value),
    })
}

fn key_of(e: &(u8, i64)) -> u8 {
    e.0
}

/// The key of an input event: what the keyed processors save state under.
fn key_of_event(e: &Ev) -> u8 {
    e.value.0
}

fn result(start: i64, end: i64, key: u8, value: i64) -> WindowResult<u8, i64> {
    WindowResult {
        start,
        end,
        key,
        value,
        is_early: false,
    }
}

#[test]
fn when_watermark_passes_tumbling_window_then_it_is_emitted_before_the_watermark() {
    TestSupport::verify(|| {
        FrameWindowP::new(
            WindowDefinition::tumbling(Duration::from_millis(10)),
            key_of,
            agg::sum_i64(|e: &(u8, i64)| e.1),
            None,
        )
    })
    .partitioned_by(key_of_event)
    .input(vec![
        ev(1, 1, 5),
        ev(3, 1, 6),
        ev(12, 1, 7),
        TestInput::Watermark(10),
        ev(15, 1, 1),
        TestInput::Watermark(20),
    ])
    .expect_output(vec![
        TestOutput::Item(Event {
            ts: 9,
            value: result(0, 10, 1, 11),
        }),
        TestOutput::Watermark(10),
        TestOutput::Item(Event {
            ts: 19,
            value: result(10, 20, 1, 8),
        }),
        TestOutput::Watermark(20),
    ]);
}

#[test]
fn when_event_below_watermark_then_it_is_late_and_dropped() {
    let late = Arc::new(AtomicU64::new(0));
    let counter = late.clone();
    TestSupport::verify(move || {
        let counter = counter.clone();
        FrameWindowP::new(
            WindowDefinition::tumbling(Duration::from_millis(10)),
            key_of,
            agg::count(),
            Some(Arc::new(move |_e: Ev| {
                counter.fetch_add(1, Ordering::Relaxed);
            })),
        )
    })
    .partitioned_by(key_of_event)
    .input(vec![
        ev(11, 1, 0),
        TestInput::Watermark(10),
        ev(5, 1, 0),
        ev(12, 1, 0),
    ])
    .expect_output(vec![
        TestOutput::Watermark(10),
        TestOutput::Item(Event {
            ts: 19,
            value: WindowResult {
                start: 10,
                end: 20,
                key: 1,
                value: 2,
                is_early: false,
            },
        }),
    ]);
    // Once per harness run: roomy, starved, restored, rescaled.
    assert_eq!(late.load(Ordering::Relaxed), 4);
}

#[test]
fn when_sliding_window_then_each_event_counts_in_every_window_covering_it() {
    TestSupport::verify(|| {
        FrameWindowP::new(
            WindowDefinition::sliding(Duration::from_millis(20), Duration::from_millis(10)),
            key_of,
            agg::count(),
            None,
        )
    })
    .partitioned_by(key_of_event)
    .input(vec![ev(5, 1, 0), ev(15, 1, 0), ev(16, 1, 0)])
    .disregard_order()
    .expect_output(vec![
        TestOutput::Item(Event {
            ts: 9,
            value: WindowResult {
                start: -10,
                end: 10,
                key: 1,
                value: 1,
                is_early: false,
            },
        }),
        TestOutput::Item(Event {
            ts: 19,
            value: WindowResult {
                start: 0,
                end: 20,
                key: 1,
                value: 3,
                is_early: false,
            },
        }),
        TestOutput::Item(Event {
            ts: 29,
            value: WindowResult {
                start: 10,
                end: 30,
                key: 1,
                value: 2,
                is_early: false,
            },
        }),
    ]);
}

#[test]
fn when_events_within_gap_then_one_session_else_two() {
    TestSupport::verify(|| SessionWindowP::new(10, key_of, agg::count(), None))
        .partitioned_by(key_of_event)
        .input(vec![
            ev(1, 1, 0),
            ev(8, 1, 0),
            ev(30, 1, 0),
            ev(2, 2, 0),
            TestInput::Watermark(100),
        ])
        .disregard_order()
        .expect_output(vec![
            TestOutput::Item(Event {
                ts: 17,
                value: WindowResult {
                    start: 1,
                    end: 18,
                    key: 1,
                    value: 2,
                    is_early: false,
                },
            }),
            TestOutput::Item(Event {
                ts: 39,
                value: WindowResult {
                    start: 30,
                    end: 40,
                    key: 1,
                    value: 1,
                    is_early: false,
                },
            }),
            TestOutput::Item(Event {
                ts: 11,
                value: WindowResult {
                    start: 2,
                    end: 12,
                    key: 2,
                    value: 1,
                    is_early: false,
                },
            }),
        ]);
}

#[test]
fn when_rolling_aggregate_then_each_event_emits_running_result() {
    TestSupport::verify(|| RollingP::new(key_of, agg::sum_i64(|e: &(u8, i64)| e.1)))
        .partitioned_by(key_of_event)
        .input(vec![ev(1, 1, 5), ev(2, 2, 1), ev(3, 1, 2)])
        .expect_output(vec![
            TestOutput::Item(Event {
                ts: 1,
                value: (1, 5),
            }),
            TestOutput::Item(Event {
                ts: 2,
                value: (2, 1),
            }),
            TestOutput::Item(Event {
                ts: 3,
                value: (1, 7),
            }),
        ]);
}

#[test]
fn when_key_idle_longer_than_ttl_then_state_evicted_with_on_evict_output() {
    TestSupport::verify(|| {
        MapStatefulP::new(
            key_of,
            Some(100),
            || 0i64,
            |sum: &mut i64, _k: &u8, e: (u8, i64)| {
                *sum += e.1;
                Some(*sum)
            },
            |sum: i64, _k: &u8, _wm: i64| Some(-sum),
        )
    })
    .partitioned_by(key_of_event)
    .input(vec![
        ev(0, 1, 5),
        ev(50, 1, 5),
        TestInput::Watermark(120),
        ev(130, 1, 1),
        TestInput::Watermark(1000),
    ])
    .expect_output(vec![
        TestOutput::Item(Event { ts: 0, value: 5 }),
        TestOutput::Item(Event { ts: 50, value: 10 }),
        TestOutput::Watermark(120),
        TestOutput::Item(Event { ts: 130, value: 11 }),
        TestOutput::Item(Event {
            ts: 1000,
            value: -11,
        }),
        TestOutput::Watermark(1000),
    ]);
}

#[test]
fn when_side_input_first_then_stream_items_are_enriched() {
    type In = Event<Either<(u8, i64), (u8, String)>>;
    let side = |k: u8, name: &str| {
        TestInput::Item(In {
            ts: 0,
            value: Either::Right((k, name.to_string())),
        })
    };
    let main = |k: u8, v: i64| {
        TestInput::Item(In {
            ts: 1,
            value: Either::Left((k, v)),
        })
    };
    TestSupport::verify(|| {
        HashJoinP::new(
            |m: &(u8, i64)| m.0,
            |s: &(u8, String)| s.0,
            |m: (u8, i64), s: Option<&(u8, String)>| s.map(|s| (s.1.clone(), m.1)),
        )
    })
    .input(vec![
        side(1, "one"),
        side(2, "two"),
        main(1, 10),
        main(3, 30),
        main(2, 20),
    ])
    .expect_output(vec![
        TestOutput::Item(Event {
            ts: 1,
            value: ("one".to_string(), 10),
        }),
        TestOutput::Item(Event {
            ts: 1,
            value: ("two".to_string(), 20),
        }),
    ]);
}

/// The reference model: which events are late, and every window's sum and
/// count per key, computed naively.
fn reference(
    events: &[(i64, u8, i64)],
    lag: i64,
    def: WindowDefinition,
) -> (BTreeMap<WindowId, SumCount>, u64) {
    let mut top = i64::MIN;
    let mut late = 0;
    let mut kept = Vec::new();
    for &(ts, k, v) in events {
        let wm = top.saturating_sub(lag);
        if top != i64::MIN && ts < wm {
            late += 1;
        } else {
            kept.push((ts, k, v));
        }
        top = top.max(ts);
    }
    let mut out = BTreeMap::new();
    match def.kind {
        eddy_core::WindowKind::Session { gap_ms } => {
            let mut by_key: BTreeMap<u8, Vec<(i64, i64)>> = BTreeMap::new();
            for &(ts, k, v) in &kept {
                by_key.entry(k).or_default().push((ts, v));
            }
            for (k, mut evs) in by_key {
                evs.sort();
                let mut i = 0;
                while i < evs.len() {
                    let (start, mut last) = (evs[i].0, evs[i].0);
                    let (mut sum, mut count) = (0, 0);
                    while i < evs.len() && evs[i].0 < last + gap_ms {
                        last = last.max(evs[i].0);
                        sum += evs[i].1;
                        count += 1;
                        i += 1;
                    }
                    out.insert((start, last + gap_ms, k), (sum, count));
                }
            }
        }
        _ => {
            let (slide, size) = def.frames().expect("frame windows");
            for &(ts, k, v) in &kept {
                let mut end = eddy_core::frame_end(ts, slide);
                while end - size <= ts {
                    let e = out.entry((end - size, end, k)).or_insert((0, 0));
                    e.0 += v;
                    e.1 += 1;
                    end += slide;
                }
            }
        }
    }
    (out, late)
}

/// Where a randomised run takes snapshots: each a fraction of the input
/// and the parallelism to restore at.
fn restores_strategy() -> impl Strategy<Value = Vec<(f64, usize)>> {
    prop::collection::vec((0.0f64..=1.0, 1usize..=3), 0..5)
}

/// The restores of [`restores_strategy`] as harness points: before an
/// input step, or between the first rounds of completing.
fn restore_points(restores: &[(f64, usize)], steps: usize) -> Vec<(usize, usize)> {
    let points = (steps + 4) as f64;
    restores
        .iter()
        .map(|&(at, parallelism)| ((at * points) as usize, parallelism))
        .collect()
}

/// Events with timestamps perturbed by up to `disorder_ms` from increasing
/// order.
fn events_strategy() -> impl Strategy<Value = (Vec<(i64, u8, i64)>, i64)> {
    (1usize..120, 0i64..60).prop_flat_map(|(n, disorder)| {
        (
            prop::collection::vec((0i64..=disorder, 0u8..4, -50i64..50), n).prop_map(move |raw| {
                raw.into_iter()
                    .enumerate()
                    .map(|(i, (jitter, k, v))| (i as i64 * 7 - jitter, k, v))
                    .collect::<Vec<_>>()
            }),
            Just(disorder),
        )
    })
}

fn check_windows(def: WindowDefinition, seed: &Seed) {
    check_windows_with(
        def,
        seed,
        agg::sum_i64(|e: &(u8, i64)| e.1).and(agg::count()),
    );
}

/// Checks windows of `def` against the reference over random streams, with
/// snapshots restored into fresh instances at random points and
/// parallelisms.
fn check_windows_with<Op>(def: WindowDefinition, seed: &Seed, op: Op)
where
    Op: AggregateOperation<(u8, i64), Result = (i64, i64)>,
{
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 128,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed.value().to_le_bytes().repeat(4)),
    );
    runner
        .run(
            &(events_strategy(), 0i64..40, restores_strategy()),
            |((events, _disorder), lag, restores)| {
                let (expected, expected_late) = reference(&events, lag, def);
                // Feed as the Timestamps transform would: events, then the
                // watermark each one makes.
                let mut input = Vec::new();
                let mut top = i64::MIN;
                let mut emitted = i64::MIN;
                for &(ts, k, v) in &events {
                    input.push(TestInput::Item(Event { ts, value: (k, v) }));
                    top = top.max(ts);
                    if top - lag > emitted {
                        emitted = top - lag;
                        input.push(TestInput::Watermark(emitted));
                    }
                }
                let late = Arc::new(AtomicU64::new(0));
                let counter = late.clone();
                let op = op.clone();
                let restores = restore_points(&restores, input.len());
                let output = TestSupport::verify(move || {
                    let counter = counter.clone();
                    let on_late: Option<eddy_pipeline::processors::LateEventFn<(u8, i64)>> =
                        Some(Arc::new(move |_| {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }));
                    window_under_test(def, op.clone(), on_late)
                })
                .partitioned_by(key_of_event)
                .input(input)
                .run_restoring(&restores);
                let mut actual = BTreeMap::new();
                for o in output {
                    if let TestOutput::Item(e) = o {
                        let w = e.value;
                        prop_assert!(
                            actual.insert((w.start, w.end, w.key), w.value).is_none(),
                            "window emitted twice"
                        );
                    }
                }
                prop_assert_eq!(actual, expected);
                prop_assert_eq!(late.load(Ordering::Relaxed), expected_late, "late events");
                Ok(())
            },
        )
        .unwrap();
}

/// Either window processor, picked by the definition, as the pipeline does.
fn window_under_test<Op: AggregateOperation<(u8, i64)>>(
    def: WindowDefinition,
    op: Op,
    on_late: Option<eddy_pipeline::processors::LateEventFn<(u8, i64)>>,
) -> WindowProcessor<(u8, i64), u8, KeyFn, Op> {
    match def.kind {
        eddy_core::WindowKind::Session { gap_ms } => {
            WindowProcessor::Session(SessionWindowP::new(gap_ms, key_of as KeyFn, op, on_late))
        }
        _ => WindowProcessor::Frames(FrameWindowP::new(def, key_of as KeyFn, op, on_late)),
    }
}

#[test]
fn when_random_out_of_order_stream_then_tumbling_windows_equal_reference() {
    let seed = Seed::new("tumbling windows vs reference");
    check_windows(WindowDefinition::tumbling(Duration::from_millis(50)), &seed);
}

#[test]
fn when_random_out_of_order_stream_then_sliding_windows_with_deduct_equal_reference() {
    let seed = Seed::new("sliding windows (deduct) vs reference");
    check_windows(
        WindowDefinition::sliding(Duration::from_millis(60), Duration::from_millis(20)),
        &seed,
    );
}

#[test]
fn when_random_out_of_order_stream_then_sessions_equal_reference() {
    let seed = Seed::new("session windows vs reference");
    check_windows(WindowDefinition::session(Duration::from_millis(15)), &seed);
}

#[test]
fn when_random_out_of_order_stream_then_sliding_windows_without_deduct_equal_reference() {
    let seed = Seed::new("sliding windows (recombined frames) vs reference");
    // The same sum and count, but without deduct: frames are recombined.
    let no_deduct = agg::custom(
        || (0i64, 0i64),
        |acc: &mut (i64, i64), e: &(u8, i64)| {
            acc.0 += e.1;
            acc.1 += 1;
        },
        |acc, other| {
            acc.0 += other.0;
            acc.1 += other.1;
        },
        |acc| *acc,
    );
    assert!(!no_deduct.can_deduct());
    check_windows_with(
        WindowDefinition::sliding(Duration::from_millis(60), Duration::from_millis(20)),
        &seed,
        no_deduct,
    );
}

#[test]
fn when_early_results_requested_then_open_windows_emit_partial_results() {
    use eddy_core::{Inbox, Processor, ProcessorContext, VecOutbox};
    let def =
        WindowDefinition::tumbling(Duration::from_millis(10)).with_early_results(Duration::ZERO);
    let mut p = FrameWindowP::new(def, key_of, agg::count(), None);
    p.init(&ProcessorContext::standalone("window")).unwrap();
    let mut outbox = VecOutbox::with_capacity(100);
    let mut inbox = Inbox::from_vec(vec![
        Event {
            ts: 1,
            value: (1u8, 0i64),
        },
        Event {
            ts: 2,
            value: (1, 0),
        },
        Event {
            ts: 15,
            value: (1, 0),
        },
    ]);
    p.process(0, &mut inbox, &mut outbox).unwrap();
    assert!(p.try_process(&mut outbox).unwrap());
    let early: Vec<_> = outbox
        .items
        .drain(..)
        .map(|e| (e.value.end, e.value.value, e.value.is_early))
        .collect();
    assert_eq!(early, vec![(10, 2, true), (20, 1, true)]);
    // The final results still come when the watermark passes.
    assert!(p
        .try_process_watermark(eddy_core::Watermark(10), &mut outbox)
        .unwrap());
    assert_eq!(outbox.items[0].value.value, 2);
    assert!(!outbox.items[0].value.is_early);
}

#[test]
fn when_early_results_requested_then_open_sessions_emit_partial_results() {
    use eddy_core::{Inbox, Processor, ProcessorContext, VecOutbox};
    let mut p = SessionWindowP::new(10, key_of, agg::count(), None).with_early_results(Some(0));
    p.init(&ProcessorContext::standalone("sessions")).unwrap();
    let mut outbox = VecOutbox::with_capacity(100);
    let mut inbox = Inbox::from_vec(vec![
        Event {
            ts: 1,
            value: (1u8, 0i64),
        },
        Event {
            ts: 5,
            value: (1, 0),
        },
    ]);
    p.process(0, &mut inbox, &mut outbox).unwrap();
    assert!(p.try_process(&mut outbox).unwrap());
    let early: Vec<_> = outbox
        .items
        .drain(..)
        .map(|e| (e.value.start, e.value.end, e.value.value, e.value.is_early))
        .collect();
    assert_eq!(early, vec![(1, 15, 2, true)]);
    // The final result still comes when the watermark passes the session.
    assert!(p
        .try_process_watermark(eddy_core::Watermark(20), &mut outbox)
        .unwrap());
    assert_eq!(outbox.items.len(), 1);
    assert!(!outbox.items[0].value.is_early);
}

/// A proptest runner seeded from `seed`.
fn seeded_runner(seed: &Seed, cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed.value().to_le_bytes().repeat(4)),
    )
}

/// Random keyed input with the watermarks a timestamp assigner would make
/// (lag 20 ms).
fn keyed_input(events: &[(i64, u8, i64)]) -> Vec<TestInput<Ev>> {
    let mut input = Vec::new();
    let mut top = i64::MIN;
    for &(ts, k, v) in events {
        input.push(TestInput::Item(Event { ts, value: (k, v) }));
        if ts > top {
            top = ts;
            input.push(TestInput::Watermark(top - 20));
        }
    }
    input
}

/// Asserts that the processors `supplier` makes emit the same items with
/// snapshots restored at random points and parallelisms as without.
fn check_restores_change_nothing<P, F>(seed: &Seed, supplier: F)
where
    P: eddy_core::Processor<In = Ev>,
    P::Out: std::fmt::Debug + PartialEq,
    F: Fn() -> P + Clone,
{
    seeded_runner(seed, 64)
        .run(
            &(events_strategy(), restores_strategy()),
            |((events, _), restores)| {
                let input = keyed_input(&events);
                let restores = restore_points(&restores, input.len());
                let harness = TestSupport::verify(supplier.clone())
                    .partitioned_by(key_of_event)
                    .input(input);
                let render = |out: Vec<TestOutput<P::Out>>| {
                    let mut items: Vec<String> = out
                        .into_iter()
                        .filter(|o| matches!(o, TestOutput::Item(_)))
                        .map(|o| format!("{o:?}"))
                        .collect();
                    items.sort();
                    items
                };
                prop_assert_eq!(
                    render(harness.run_restoring(&restores)),
                    render(harness.run(false))
                );
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn when_rolling_aggregate_restored_at_random_points_then_same_results() {
    let seed = Seed::new("rolling aggregate restored at random points");
    check_restores_change_nothing(&seed, || {
        RollingP::new(
            key_of as KeyFn,
            agg::sum_i64(|e: &(u8, i64)| e.1).and(agg::count()),
        )
    });
}

#[test]
fn when_map_stateful_with_ttl_restored_at_random_points_then_same_results_and_evictions() {
    let seed = Seed::new("map_stateful with TTL restored at random points");
    check_restores_change_nothing(&seed, || {
        MapStatefulP::new(
            key_of as KeyFn,
            Some(30),
            || (0i64, 0u32),
            |state: &mut (i64, u32), k: &u8, e: (u8, i64)| {
                state.0 += e.1;
                state.1 += 1;
                (state.1 % 3 == 0).then_some((*k, state.0))
            },
            // The eviction result carries the watermark: restored expiry
            // times must evict at the same watermark as the original.
            |state: (i64, u32), k: &u8, wm: i64| Some((*k, state.0 * 1000 + wm)),
        )
    });
}

#[test]
fn when_batch_aggregate_restored_while_emitting_then_each_key_once() {
    use eddy_pipeline::processors::keyed::GroupAggregateP;
    TestSupport::verify(|| GroupAggregateP::new(key_of as KeyFn, agg::count()))
        .partitioned_by(key_of_event)
        .input((0..40).map(|i| ev(i, (i % 7) as u8, 0)).collect())
        .disregard_order()
        .expect_output(
            (0..7u8)
                .map(|k| {
                    TestOutput::Item(Event::untimed((
                        k,
                        (0..40).filter(|i| i % 7 == i64::from(k)).count() as i64,
                    )))
                })
                .collect(),
        );
}

/// A hash join's input: stream items `(key, value)` on the left, side items
/// `(key, name)` on the right.
type JoinIn = Event<Either<(u8, i64), (u8, String)>>;

fn join_under_test() -> impl eddy_core::Processor<In = JoinIn, Out = Event<(String, i64)>> {
    HashJoinP::new(
        |m: &(u8, i64)| m.0,
        |s: &(u8, String)| s.0,
        |m: (u8, i64), s: Option<&(u8, String)>| s.map(|s| (s.1.clone(), m.1)),
    )
}

/// Feeds `items` to input `ordinal` of `p` at once; returns the output.
fn feed<P: eddy_core::Processor>(p: &mut P, ordinal: usize, items: Vec<P::In>) -> Vec<P::Out> {
    let mut outbox = eddy_core::VecOutbox::with_capacity(1000);
    let mut inbox = eddy_core::Inbox::from_vec(items);
    p.process(ordinal, &mut inbox, &mut outbox).unwrap();
    assert!(inbox.is_empty(), "a roomy outbox takes all input");
    outbox.items
}

#[test]
fn when_hash_join_restored_at_another_parallelism_then_every_instance_has_the_side_table() {
    use eddy_core::snapshot::{read_entries, SnapshotWriter, BROADCAST};
    use eddy_core::{Processor, ProcessorContext};
    let start = |instance: usize, parallelism: usize| {
        let mut p = join_under_test();
        let mut ctx = ProcessorContext::standalone("join");
        ctx.instance = instance;
        ctx.parallelism = parallelism;
        p.init(&ctx).unwrap();
        p
    };
    let side: Vec<JoinIn> = (0..10u8)
        .map(|k| Event::untimed(Either::Right((k, format!("name-{k}")))))
        .collect();
    // Two instances read the whole side input (a broadcast edge).
    let mut old: Vec<_> = (0..2).map(|i| start(i, 2)).collect();
    let mut parts = Vec::new();
    for p in &mut old {
        feed(p, 0, side.clone());
        let mut w = SnapshotWriter::new();
        p.save_to_snapshot(1, &mut w).unwrap();
        parts.push(w.take().0);
    }
    // Only one instance saves the table, so that it is restored once.
    assert!(parts[1].is_empty());
    for parallelism in [1, 3] {
        for instance in 0..parallelism {
            let mut p = start(instance, parallelism);
            for part in &parts {
                for entry in read_entries(part) {
                    let entry = entry.unwrap();
                    assert_eq!(entry.partition, BROADCAST);
                    p.restore_from_snapshot(entry).unwrap();
                }
            }
            p.finish_snapshot_restore().unwrap();
            let stream: Vec<JoinIn> = (0..12u8)
                .map(|k| Event::untimed(Either::Left((k, i64::from(k)))))
                .collect();
            let out: Vec<_> = feed(&mut p, 1, stream)
                .into_iter()
                .map(|e| e.value)
                .collect();
            let expected: Vec<(String, i64)> = (0..10u8)
                .map(|k| (format!("name-{k}"), i64::from(k)))
                .collect();
            assert_eq!(out, expected, "instance {instance} of {parallelism}");
        }
    }
}
