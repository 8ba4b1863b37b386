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
    // Once per harness run (roomy and starved).
    assert_eq!(late.load(Ordering::Relaxed), 2);
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
            &(events_strategy(), 0i64..40),
            |((events, _disorder), lag)| {
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
                let output = TestSupport::verify(move || {
                    let counter = counter.clone();
                    let on_late: Option<eddy_pipeline::processors::LateEventFn<(u8, i64)>> =
                        Some(Arc::new(move |_| {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }));
                    window_under_test(def, op.clone(), on_late)
                })
                .input(input)
                .run(true);
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
