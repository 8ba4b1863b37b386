//! Golden end-to-end tests: every kind of stage in one set of pipelines,
//! run at parallelism 1 and 4, again exactly-once with snapshots every few
//! milliseconds and forced restarts, and again exported half-way and
//! restored at another parallelism; the outputs must be equal regardless of
//! order. An exactly-once file sink, restarted, writes each line once.
//!
//! The paced sources of the runs with restarts and exports do not finish
//! before the test lets them ([`Hold`]): a job that ended first would leave
//! nothing to restart or export, however slowly a loaded machine runs it.

use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter};
use eddy_core::{
    EddyError, Event, Guarantee, Inbox, Outbox, Processor, ProcessorContext, ProcessorError, State,
    Watermark,
};
use eddy_pipeline::sources::GeneratorSource;
use eddy_pipeline::stage::SourceStage;
use eddy_pipeline::{
    agg, AggregateOperation, Bounded, Pipeline, Sinks, Source, Sources, WindowDefinition,
};
use eddy_runtime::{Eddy, EddyConfig, Job, JobConfig, JobStatus};
use eddy_testkit::assert_same_items;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A card transaction: (card, amount, event time ms).
type Txn = (u32, i64, i64);

/// Transaction `i` of a deterministic stream, slightly out of order
/// (within 30 ms).
fn txn(i: u64) -> Txn {
    let jitter = ((i * 7919) % 4) as i64 * 10;
    (
        (i % 50) as u32,
        ((i * 7919) % 1000) as i64,
        i as i64 * 5 - jitter,
    )
}

/// The first `n` transactions.
fn transactions(n: u64) -> Vec<Txn> {
    (0..n).map(txn).collect()
}

/// How fast the sources of a run emit.
#[derive(Debug, Clone)]
enum Pace {
    /// As fast as they can.
    Full,
    /// Spread over about this long, so that snapshots and restarts fall in
    /// the middle of the run, and not finished before the hold is released.
    Over(Duration, Hold),
}

/// Keeps the sources it is given to from finishing until it is released,
/// and counts the source processors created, so that a test sees when a
/// restart has started a new execution.
#[derive(Debug, Clone, Default)]
struct Hold(Arc<HoldState>);

#[derive(Debug, Default)]
struct HoldState {
    released: AtomicBool,
    created: AtomicUsize,
}

impl Hold {
    /// A hold that never holds.
    fn released() -> Self {
        let hold = Hold::default();
        hold.release();
        hold
    }

    /// Lets the sources finish.
    fn release(&self) {
        self.0.released.store(true, Ordering::Release);
    }

    /// Source processors created so far.
    fn created(&self) -> usize {
        self.0.created.load(Ordering::Acquire)
    }

    /// Waits until source processors were created after the first `count`:
    /// a new execution has started.
    fn wait_for_created_above(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.created() <= count {
            assert!(Instant::now() < deadline, "no new execution in time");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// A source that does not finish before its hold is released.
struct Held<S> {
    source: S,
    hold: Hold,
}

impl<S: Source> Source for Held<S> {
    type Out = S::Out;
    type Bound = S::Bound;
    type Processor = HeldP<S::Processor>;
    fn name(&self) -> String {
        self.source.name()
    }
    fn parallelism(&self) -> Option<usize> {
        self.source.parallelism()
    }
    fn create(&self, ctx: &ProcessorContext) -> HeldP<S::Processor> {
        self.hold.0.created.fetch_add(1, Ordering::AcqRel);
        HeldP {
            inner: self.source.create(ctx),
            hold: self.hold.clone(),
            exhausted: false,
        }
    }
}

/// The processor of [`Held`]: its source's, with `complete` held back.
struct HeldP<P> {
    inner: P,
    hold: Hold,
    exhausted: bool,
}

impl<T: Clone + Send + 'static, P: Processor<In = (), Out = Event<T>>> Processor for HeldP<P> {
    type In = ();
    type Out = Event<T>;
    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.inner.init(ctx)
    }
    fn validate(&self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.inner.validate(ctx)
    }
    fn is_cooperative(&self) -> bool {
        self.inner.is_cooperative()
    }
    fn process<O: Outbox<Event<T>>>(
        &mut self,
        ordinal: usize,
        inbox: &mut Inbox<()>,
        outbox: &mut O,
    ) -> Result<(), ProcessorError> {
        self.inner.process(ordinal, inbox, outbox)
    }
    fn try_process_watermark<O: Outbox<Event<T>>>(
        &mut self,
        watermark: Watermark,
        outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        self.inner.try_process_watermark(watermark, outbox)
    }
    fn try_process<O: Outbox<Event<T>>>(&mut self, outbox: &mut O) -> Result<bool, ProcessorError> {
        self.inner.try_process(outbox)
    }
    fn complete<O: Outbox<Event<T>>>(&mut self, outbox: &mut O) -> Result<bool, ProcessorError> {
        if !self.exhausted {
            self.exhausted = self.inner.complete(outbox)?;
        }
        Ok(self.exhausted && self.hold.0.released.load(Ordering::Acquire))
    }
    fn save_to_snapshot(
        &mut self,
        snapshot_id: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        self.inner.save_to_snapshot(snapshot_id, writer)
    }
    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        self.inner.restore_from_snapshot(entry)
    }
    fn finish_snapshot_restore(&mut self) -> Result<(), ProcessorError> {
        self.inner.finish_snapshot_restore()
    }
    fn snapshot_commit_finish(&mut self, snapshot_id: u64) -> Result<(), ProcessorError> {
        self.inner.snapshot_commit_finish(snapshot_id)
    }
    fn close(&mut self) -> Result<(), ProcessorError> {
        self.inner.close()
    }
}

/// A stage reading the first `n` transactions at `pace`, on one instance
/// (so that each key's transactions keep their order, which rolling and
/// stateful results depend on).
fn read_txns(
    p: &Pipeline,
    n: u64,
    pace: Pace,
) -> SourceStage<Held<GeneratorSource<fn(u64) -> Txn, Bounded>>> {
    p.read_from(numbers(txn as fn(u64) -> Txn, n, pace))
        .set_local_parallelism(1)
}

/// A generator of `f(0..n)` at `pace`.
fn numbers<T, F>(f: F, n: u64, pace: Pace) -> Held<GeneratorSource<F, Bounded>>
where
    T: Clone + Send + 'static,
    F: Fn(u64) -> T + Clone + Send + Sync + 'static,
{
    let source = Sources::generator(f).limit(n);
    match pace {
        Pace::Full => Held {
            source,
            hold: Hold::released(),
        },
        Pace::Over(d, hold) => Held {
            source: source.rate(n as f64 / d.as_secs_f64()),
            hold,
        },
    }
}

/// How long a paced run lasts: long enough for dozens of snapshots at
/// [`SNAPSHOT_INTERVAL`], short enough to keep the suite quick.
const PACED_RUN: Duration = Duration::from_millis(300);

/// Time between snapshots in the runs with snapshots.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(5);

/// A fresh snapshot directory for one golden run.
fn snapshot_dir(what: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("golden-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Waits until `job` has completed `count` snapshots in all; false if it
/// stopped first.
fn snapshots_done(job: &Job, count: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while job.snapshot_stats().completed < count {
        if job.status() != JobStatus::Running {
            return false;
        }
        assert!(Instant::now() < deadline, "no snapshot completed in time");
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Restarts `job` after 2 and after 6 snapshots in all, each time waiting
/// until the restart has started a new execution.
fn restart_after_snapshots(job: &Job, hold: &Hold, what: &str) {
    for after in [2, 6] {
        assert!(
            snapshots_done(job, after),
            "{what}: the job stopped before {after} snapshots"
        );
        let created = hold.created();
        job.restart();
        hold.wait_for_created_above(created);
    }
}

/// Runs the pipeline `build` makes, at parallelism 1 and 4; exactly-once
/// with snapshots and two forced restarts; and exported half-way (the job
/// stops) and restored at another parallelism. Checks that every run's
/// output equals the first; returns it.
fn golden<T, F>(what: &str, build: F) -> Vec<T>
where
    T: Clone + Debug + State,
    F: Fn(&Pipeline, Pace, eddy_pipeline::sinks::CollectSink<T>),
{
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let dir = snapshot_dir(what);
    let submit = |config: JobConfig, pace: Pace| {
        let p = Pipeline::new();
        let (sink, out) = Sinks::collect();
        build(&p, pace, sink);
        (eddy.submit(p, config).unwrap(), out)
    };
    let exactly_once = |name: &str, parallelism: usize| {
        JobConfig::default()
            .name(format!("{what}-{name}"))
            .parallelism(parallelism)
            .guarantee(Guarantee::ExactlyOnce)
            .snapshot_interval(SNAPSHOT_INTERVAL)
            .snapshot_dir(&dir)
    };

    let mut outputs = Vec::new();
    for parallelism in [1, 4] {
        let (job, out) = submit(JobConfig::default().parallelism(parallelism), Pace::Full);
        job.join().unwrap();
        outputs.push(out.take());
    }
    let expected = outputs.swap_remove(0);
    assert!(!expected.is_empty(), "{what}: no output");
    assert_same_items(&outputs[0], &expected, &format!("{what} at parallelism 4"));

    let hold = Hold::default();
    let (job, out) = submit(
        exactly_once("restarted", 4),
        Pace::Over(PACED_RUN, hold.clone()),
    );
    restart_after_snapshots(&job, &hold, what);
    hold.release();
    job.join().unwrap();
    assert!(job.snapshot_stats().restored_from.is_some());
    assert_same_items(
        &out.take(),
        &expected,
        &format!("{what} exactly-once with two forced restarts"),
    );

    // Never released: the export ends the job.
    let (job, first) = submit(
        exactly_once("exported", 2),
        Pace::Over(PACED_RUN, Hold::default()),
    );
    assert!(
        snapshots_done(&job, 2),
        "{what}: the job ended before its export"
    );
    let exported = job.cancel_and_export_snapshot("half-way").unwrap();
    assert!(matches!(job.join(), Err(EddyError::Cancelled)));
    let (job, second) = submit(
        exactly_once("restored", 3).restore_from(&exported),
        Pace::Full,
    );
    job.join().unwrap();
    assert!(
        job.unmatched_state().is_empty(),
        "{what}: state of every stage restored"
    );
    let mut both = first.take();
    both.extend(second.take());
    assert_same_items(
        &both,
        &expected,
        &format!("{what} exported at parallelism 2 and restored at 3"),
    );
    let _ = std::fs::remove_dir_all(&dir);
    expected
}

#[test]
fn when_tumbling_sum_rescaled_restarted_and_restored_then_same_windows_as_computed_directly() {
    let out = golden("tumbling sum", |p, pace, sink| {
        read_txns(p, 20_000, pace)
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
fn when_sliding_and_session_windows_rescaled_restarted_and_restored_then_same_results() {
    golden("sliding count and average", |p, pace, sink| {
        read_txns(p, 10_000, pace)
            .with_timestamps(|t| t.2, Duration::from_millis(50))
            .grouping_key(|t| t.0 % 7)
            .window(WindowDefinition::sliding(
                Duration::from_millis(500),
                Duration::from_millis(100),
            ))
            .aggregate(agg::count().and(agg::max(|t: &Txn| t.1)))
            .write_to(sink);
    });
    golden("sessions", |p, pace, sink| {
        read_txns(p, 5_000, pace)
            .filter(|t| t.1 % 3 != 0)
            .with_timestamps(|t| t.2, Duration::from_millis(50))
            .grouping_key(|t| t.0)
            .window(WindowDefinition::session(Duration::from_millis(200)))
            .aggregate(agg::count())
            .write_to(sink);
    });
}

#[test]
fn when_keyed_state_rescaled_restarted_and_restored_then_same_results() {
    golden("rolling max", |p, pace, sink| {
        read_txns(p, 5_000, pace)
            .grouping_key(|t| t.0)
            .rolling_aggregate(agg::max(|t: &Txn| t.1))
            .write_to(sink);
    });
    golden("map_stateful with TTL", |p, pace, sink| {
        read_txns(p, 5_000, pace)
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
    golden("batch aggregate", |p, pace, sink| {
        read_txns(p, 5_000, pace)
            .grouping_key(|t| t.0 % 3)
            .aggregate(agg::count().and(agg::top_n(3, |t: &Txn| t.1)))
            .write_to(sink);
    });
}

#[test]
fn when_joins_rescaled_restarted_and_restored_then_same_results() {
    golden("hash join", |p, pace, sink| {
        let cards = p.read_from(Sources::items(
            (0..40u32).map(|c| (c, format!("owner-{c}"))).collect(),
        ));
        read_txns(p, 5_000, pace)
            .hash_join(
                cards,
                |t| t.0,
                |c| c.0,
                |t, c| c.map(|c| (c.1.clone(), t.1)),
            )
            .write_to(sink);
    });
    golden("windowed co-group and join", |p, pace, sink| {
        let logins = read_txns(p, 2_000, pace.clone())
            .filter(|t| t.1 % 5 == 0)
            .with_timestamps(|t| t.2, Duration::from_millis(50))
            .grouping_key(|t| t.0);
        read_txns(p, 2_000, pace)
            .with_timestamps(|t| t.2, Duration::from_millis(50))
            .grouping_key(|t| t.0)
            .window(WindowDefinition::tumbling(Duration::from_millis(500)))
            .join(logins, |a: &Txn, b: &Txn| (a.0, a.1, b.1))
            .write_to(sink);
    });
}

#[test]
fn when_stream_shared_and_merged_rescaled_restarted_and_restored_then_same_results() {
    golden("share and merge", |p, pace, sink| {
        let shared = p
            .read_from(numbers(|n| n as i64, 20_000, pace))
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

#[test]
fn when_file_sink_exactly_once_job_restarted_then_epoch_files_hold_each_line_once() {
    let dir = snapshot_dir("file sink");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("out.txt");
    let n = 5_000;
    let p = Pipeline::new();
    let hold = Hold::default();
    read_txns(&p, n, Pace::Over(PACED_RUN, hold.clone()))
        .map(|t| format!("{} {} {}", t.0, t.1, t.2))
        .write_to(Sinks::file(&path));
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let job = eddy
        .submit(
            p,
            JobConfig::default()
                .name("file-sink")
                .parallelism(2)
                .guarantee(Guarantee::ExactlyOnce)
                .snapshot_interval(SNAPSHOT_INTERVAL)
                .snapshot_dir(dir.join("snapshots")),
        )
        .unwrap();
    restart_after_snapshots(&job, &hold, "file sink");
    hold.release();
    job.join().unwrap();
    let mut lines = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "temporary file {name} left");
        if let Some(epoch) = name.strip_prefix("out.txt.") {
            assert!(epoch.parse::<u64>().is_ok(), "unexpected file {name}");
            files += 1;
            let text = std::fs::read_to_string(dir.join(&name)).unwrap();
            lines.extend(text.lines().map(String::from));
        }
    }
    assert!(files > 1, "one file per epoch, and the run had several");
    let expected: Vec<String> = transactions(n)
        .into_iter()
        .map(|t| format!("{} {} {}", t.0, t.1, t.2))
        .collect();
    assert_same_items(&lines, &expected, "lines of the epoch files");
    let _ = std::fs::remove_dir_all(&dir);
}
