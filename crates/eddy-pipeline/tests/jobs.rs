//! Jobs end to end: completion, cancellation, failures, metrics,
//! backpressure, watermark coalescing and the file connectors.

use eddy_core::{
    EddyError, Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError, Watermark,
};
use eddy_pipeline::{agg, EventTimePolicy, Pipeline, Sinks, Source, Sources, WindowDefinition};
use eddy_runtime::{Eddy, EddyConfig, JobConfig, JobStatus};
use std::time::Duration;

fn eddy() -> Eddy {
    Eddy::new(EddyConfig::with_threads(2))
}

#[test]
fn when_batch_source_ends_then_job_completes_with_all_items() {
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    p.read_from(Sources::generator(|n| n).limit(10_000))
        .map(|n| n * 2)
        .filter(|n| n % 3 == 0)
        .write_to(sink);
    let eddy = eddy();
    let job = eddy.submit(p, JobConfig::default().parallelism(3)).unwrap();
    job.join().unwrap();
    assert_eq!(job.status(), JobStatus::Completed);
    let mut items = out.take();
    items.sort();
    let expected: Vec<u64> = (0..10_000).map(|n| n * 2).filter(|n| n % 3 == 0).collect();
    assert_eq!(items, expected);
}

#[test]
fn when_user_code_panics_then_job_fails_naming_the_stage() {
    let p = Pipeline::new();
    let (sink, _out) = Sinks::collect();
    p.read_from(Sources::generator(|n| n).limit(1000))
        .named("numbers")
        .map(|n| {
            if n == 500 {
                panic!("bad number {n}")
            } else {
                n
            }
        })
        .write_to(sink);
    let err = eddy()
        .submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap_err();
    match err {
        EddyError::StageFailed { stage, cause } => {
            assert!(stage.starts_with("numbers"), "{stage}");
            assert!(cause.contains("bad number 500"), "{cause}");
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn when_streaming_job_cancelled_then_join_returns_cancelled() {
    let p = Pipeline::new();
    let (sink, count) = Sinks::noop();
    p.read_from(Sources::generator(|n| n)).write_to(sink);
    let eddy = eddy();
    let job = eddy.submit(p, JobConfig::default()).unwrap();
    while count.load(std::sync::atomic::Ordering::Relaxed) < 10_000 {
        std::thread::yield_now();
    }
    assert_eq!(job.status(), JobStatus::Running);
    job.cancel();
    assert!(matches!(job.join(), Err(EddyError::Cancelled)));
    assert_eq!(job.status(), JobStatus::Cancelled);
}

#[test]
fn when_pipeline_has_no_sink_then_submit_explains() {
    let p = Pipeline::new();
    let err = eddy().submit(p, JobConfig::default()).unwrap_err();
    assert!(err.to_string().contains("write_to"), "{err}");
}

#[test]
fn when_window_definition_invalid_then_submit_names_it() {
    let p = Pipeline::new();
    let (sink, _) = Sinks::collect();
    p.read_from(Sources::items(vec![1u32]))
        .with_timestamps(|_| 0, Duration::ZERO)
        .grouping_key(|x| *x)
        .window(WindowDefinition::sliding(
            Duration::from_millis(10),
            Duration::from_millis(3),
        ))
        .aggregate(agg::count())
        .write_to(sink);
    let err = eddy().submit(p, JobConfig::default()).unwrap_err();
    assert!(err.to_string().contains("multiple of the slide"), "{err}");
}

#[test]
fn when_job_runs_then_metrics_count_items_per_vertex() {
    let p = Pipeline::new();
    let (sink, _out) = Sinks::collect();
    p.read_from(Sources::items((0..5000u32).collect()))
        .named("numbers")
        .filter(|n| n % 2 == 0)
        .write_to(sink);
    let eddy = eddy();
    let job = eddy.submit(p, JobConfig::default()).unwrap();
    job.join().unwrap();
    let metrics = job.metrics();
    let source = metrics.iter().find(|m| m.name == "numbers").unwrap();
    let sink = metrics.iter().find(|m| m.name == "collect").unwrap();
    assert_eq!(source.items_out, 2500);
    assert_eq!(sink.items_in, 2500);
    assert_eq!(sink.queue_items, 0);
}

/// A sink that works slowly, to build up backpressure.
struct SlowSink;

struct SlowSinkP;

impl Processor for SlowSinkP {
    type In = Event<u64>;
    type Out = ();
    fn is_cooperative(&self) -> bool {
        false
    }
    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<Event<u64>>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        std::thread::sleep(Duration::from_micros(200));
        while inbox.poll().is_some() {}
        Ok(())
    }
}

impl eddy_pipeline::Sink<u64> for SlowSink {
    type Processor = SlowSinkP;
    fn name(&self) -> String {
        "slow".into()
    }
    fn create(&self, _ctx: &ProcessorContext) -> SlowSinkP {
        SlowSinkP
    }
}

#[test]
fn when_sink_is_slow_then_queues_stay_within_their_bound() {
    let p = Pipeline::new();
    p.read_from(Sources::generator(|n| n).limit(300_000))
        .write_to(SlowSink);
    let eddy = eddy();
    let job = eddy.submit(p, JobConfig::default().parallelism(1)).unwrap();
    let mut max_fill = 0.0f64;
    while job.join_timeout(Duration::from_millis(5)).is_none() {
        for m in job.metrics() {
            max_fill = max_fill.max(m.queue_fill());
            assert!(m.queue_items <= m.queue_capacity + 1024, "{m:?}");
        }
    }
    assert!(
        max_fill > 0.5,
        "the slow sink should have filled its queue (max fill {max_fill})"
    );
}

/// A source that emits its watermarks in a given order, to break the law.
struct BackwardsSource;

struct BackwardsP(usize);

impl Processor for BackwardsP {
    type In = ();
    type Out = Event<u8>;
    fn process<O: Outbox<Event<u8>>>(
        &mut self,
        _: usize,
        _: &mut Inbox<()>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }
    fn complete<O: Outbox<Event<u8>>>(&mut self, outbox: &mut O) -> Result<bool, ProcessorError> {
        let marks = [10, 20, 15];
        while self.0 < marks.len() && outbox.offer_watermark(Watermark(marks[self.0])) {
            self.0 += 1;
        }
        Ok(self.0 == marks.len())
    }
}

impl Source for BackwardsSource {
    type Out = u8;
    type Bound = eddy_pipeline::Unbounded;
    type Processor = BackwardsP;
    fn name(&self) -> String {
        "backwards".into()
    }
    fn parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn create(&self, _ctx: &ProcessorContext) -> BackwardsP {
        BackwardsP(0)
    }
}

#[test]
fn when_watermark_goes_back_then_job_fails_with_the_law() {
    let p = Pipeline::new();
    let (sink, _) = Sinks::collect();
    p.read_from(BackwardsSource).rebalance().write_to(sink);
    let err = eddy()
        .submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap_err();
    assert!(err.to_string().contains("watermark went back"), "{err}");
}

#[test]
fn when_one_stream_idle_then_merged_watermark_follows_the_other() {
    // Stream A runs at a steady rate; stream B sends one event and goes idle.
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    let start = eddy_runtime::metrics::now_ms();
    let a = p
        .read_from(Sources::generator(move |n| (0u8, start + n as i64)).rate(2000.0))
        .set_local_parallelism(1)
        .with_timestamps(
            |e| e.1,
            EventTimePolicy::lag(Duration::ZERO).idle_timeout(Duration::from_millis(50)),
        );
    // B keeps running but lets only its first event through.
    let b = p
        .read_from(Sources::generator(move |n| (1u8, start, n)).rate(1000.0))
        .set_local_parallelism(1)
        .filter(|e| e.2 == 0)
        .map(|e| (e.0, e.1))
        .with_timestamps(
            |e| e.1,
            EventTimePolicy::lag(Duration::ZERO).idle_timeout(Duration::from_millis(50)),
        );
    a.merge(b)
        .grouping_key(|e| e.0)
        .window(WindowDefinition::tumbling(Duration::from_millis(100)))
        .aggregate(agg::count())
        .write_to(sink);
    let eddy = eddy();
    let job = eddy.submit(p, JobConfig::default()).unwrap();
    // B is idle (idle inputs leave the minimum), so windows of A close as
    // A's watermark advances.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while out.len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    job.cancel();
    let _ = job.join();
    let results = out.take();
    assert!(
        results.len() >= 3,
        "windows should close while B is silent: {results:?}"
    );
}

#[test]
fn when_file_written_and_read_back_then_lines_round_trip() {
    let dir = std::env::temp_dir().join(format!("eddy-file-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("out.txt");
    let p = Pipeline::new();
    p.read_from(Sources::items((0..1000).collect::<Vec<u32>>()))
        .map(|n| format!("line {n}"))
        .write_to(Sinks::file(&path));
    let e = eddy();
    e.submit(p, JobConfig::default()).unwrap().join().unwrap();

    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    p.read_from(Sources::file_lines(&path)).write_to(sink);
    e.submit(p, JobConfig::default()).unwrap().join().unwrap();
    let mut lines = out.take();
    lines.sort();
    let mut expected: Vec<String> = (0..1000).map(|n| format!("line {n}")).collect();
    expected.sort();
    assert_eq!(lines, expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn when_lines_appended_then_tailing_source_emits_them() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("eddy-tail-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("log.txt");
    std::fs::write(&path, "first\n").unwrap();
    let p = Pipeline::new();
    let (sink, out) = Sinks::collect();
    p.read_from(Sources::tail_file(&path)).write_to(sink);
    let e = eddy();
    let job = e.submit(p, JobConfig::default()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    write!(f, "second\nthi").unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    writeln!(f, "rd").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while out.len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    job.cancel();
    let _ = job.join();
    assert_eq!(out.take(), vec!["first", "second", "third"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn when_file_missing_then_job_fails_naming_the_path() {
    let p = Pipeline::new();
    let (sink, _) = Sinks::collect();
    p.read_from(Sources::file_lines("/nonexistent/eddy/input.txt"))
        .write_to(sink);
    let err = eddy()
        .submit(p, JobConfig::default())
        .unwrap()
        .join()
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/eddy/input.txt"),
        "{err}"
    );
}

#[test]
fn when_exactly_once_sink_holds_many_items_then_it_asks_for_a_snapshot_before_the_interval() {
    let eddy = eddy();
    let p = Pipeline::new();
    let (sink, collected) = Sinks::collect();
    p.read_from(Sources::generator(|n| n).rate(400_000.0))
        .write_to(sink);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("early-snapshot-{}", std::process::id()));
    let job = eddy
        .submit(
            p,
            JobConfig::default()
                .guarantee(eddy_core::Guarantee::ExactlyOnce)
                .snapshot_interval(Duration::from_secs(3600))
                .snapshot_dir(&dir),
        )
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while job.snapshot_stats().completed == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no early snapshot although the sink held {} items",
            collected.len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The snapshot released what the sink held.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while collected.is_empty() {
        assert!(std::time::Instant::now() < deadline, "nothing delivered");
        std::thread::sleep(Duration::from_millis(10));
    }
    job.cancel();
    let _ = job.join();
    let _ = std::fs::remove_dir_all(&dir);
}
