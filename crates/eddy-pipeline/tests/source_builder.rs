//! `SourceBuilder`: a source from a fill function emits what it adds, ends
//! when closed, and loses or repeats nothing across snapshots and restores,
//! including items added but not yet emitted at the snapshot.

use eddy_core::{Event, ProcessorContext, ProcessorError};
use eddy_pipeline::sources::SourceBuilder;
use eddy_pipeline::{Pipeline, Sinks, Source};
use eddy_runtime::{Eddy, EddyConfig, JobConfig};
use eddy_testkit::{TestOutput, TestSupport};

/// Counts from 0 to `end`, adding `per_fill` numbers per fill call (more
/// than a one-slot outbox takes, so items wait in the buffer at snapshots).
fn counter(end: u64, per_fill: u64) -> impl Source<Out = u64> {
    SourceBuilder::batch("counter", |_ctx: &ProcessorContext| Ok(0u64))
        .fill(move |next: &mut u64, buf| {
            let stop = (*next + per_fill).min(end);
            while *next < stop {
                buf.add(*next);
                *next += 1;
            }
            if *next == end {
                buf.close();
            }
            Ok(())
        })
        .snapshot(
            |next: &u64| *next,
            |next: &mut u64, saved: Vec<u64>| {
                *next = saved.into_iter().max().unwrap_or(0);
                Ok(())
            },
        )
        .build()
}

#[test]
fn when_snapshotted_with_items_in_the_buffer_then_each_item_is_emitted_once() {
    let source = counter(700, 250);
    let expected = (0..700)
        .map(|n| TestOutput::Item(Event::untimed(n)))
        .collect();
    TestSupport::verify(move || source.create(&ProcessorContext::standalone("counter")))
        .input(Vec::new())
        .expect_output(expected);
}

#[test]
fn when_run_in_a_job_then_the_source_ends_after_closing() {
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    p.read_from(counter(10_000, 300)).write_to(sink);
    Eddy::new(EddyConfig::with_threads(2))
        .submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap();
    let mut items = out.take();
    items.sort_unstable();
    assert_eq!(items, (0..10_000).collect::<Vec<_>>());
}

#[test]
fn when_the_create_function_fails_then_the_job_fails_with_its_error() {
    let source = SourceBuilder::batch("broken", |_ctx: &ProcessorContext| {
        Err::<u64, _>(ProcessorError::new("no such device"))
    })
    .fill(|_: &mut u64, buf| {
        buf.add(1u64);
        Ok(())
    })
    .build();
    let p = Pipeline::new();
    let (sink, _out) = Sinks::collect();
    p.read_from(source).write_to(sink);
    let err = Eddy::new(EddyConfig::with_threads(1))
        .submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap_err();
    assert!(err.to_string().contains("no such device"), "{err}");
}
