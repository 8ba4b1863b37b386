//! Snapshots through the runtime: a paced source with offsets, a keyed
//! counter, and a two-phase-commit sink, run with forced restarts, exports
//! restored at another parallelism, and a new instance resuming a job; and
//! restarts and failures at each point of an exactly-once job's end.

use eddy_core::snapshot::BROADCAST;
use eddy_core::{
    Guarantee, Inbox, Outbox, PendingEpochs, Processor, ProcessorContext, ProcessorError,
    SnapshotEntry, SnapshotWriter,
};
use eddy_runtime::{Dag, Eddy, EddyConfig, Job, JobConfig, JobStatus, Routing};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SOURCES: usize = 2;
const KEYS: u64 = 10;

/// Emits its share of 0..n (instance i: i, i+2, ...) at about `per_ms`
/// items per millisecond, so that snapshots fall in the middle of the run.
struct PacedSource {
    next: u64,
    n: u64,
    per_ms: u64,
    step: u64,
    instance: usize,
    started: Instant,
    emitted: u64,
}

impl PacedSource {
    /// Emits 0..n at about `per_ms` items per millisecond per instance.
    fn new(n: u64, per_ms: u64) -> Self {
        PacedSource {
            next: 0,
            n,
            per_ms,
            step: 1,
            instance: 0,
            started: Instant::now(),
            emitted: 0,
        }
    }
}

impl Processor for PacedSource {
    type In = ();
    type Out = u64;

    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.instance = ctx.instance;
        self.step = ctx.parallelism as u64;
        self.next = ctx.instance as u64;
        self.started = Instant::now();
        Ok(())
    }

    fn process<O: Outbox<u64>>(
        &mut self,
        _: usize,
        _: &mut Inbox<()>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }

    fn complete<O: Outbox<u64>>(&mut self, out: &mut O) -> Result<bool, ProcessorError> {
        let allowed = self.started.elapsed().as_millis() as u64 * self.per_ms;
        while self.next < self.n && self.emitted < allowed {
            if out.offer(self.next).is_err() {
                break;
            }
            self.next += self.step;
            self.emitted += 1;
        }
        Ok(self.next >= self.n)
    }

    fn save_to_snapshot(&mut self, _: u64, w: &mut SnapshotWriter) -> Result<(), ProcessorError> {
        w.put(BROADCAST, &(self.instance as u64), &self.next)
    }

    fn restore_from_snapshot(&mut self, e: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let (instance, next): (u64, u64) = e.decode()?;
        if instance as usize == self.instance {
            self.next = next;
        }
        Ok(())
    }
}

/// Counts items per key (x % KEYS) and emits (key, count so far).
#[derive(Default)]
struct KeyedCounter {
    counts: HashMap<u64, u64>,
}

impl Processor for KeyedCounter {
    type In = u64;
    type Out = (u64, u64);

    fn process<O: Outbox<(u64, u64)>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<u64>,
        out: &mut O,
    ) -> Result<(), ProcessorError> {
        while out.has_room() {
            let Some(x) = inbox.poll() else { break };
            let key = x % KEYS;
            let c = self.counts.entry(key).or_default();
            *c += 1;
            out.offer_granted((key, *c));
        }
        Ok(())
    }

    fn save_to_snapshot(&mut self, _: u64, w: &mut SnapshotWriter) -> Result<(), ProcessorError> {
        for (k, c) in &self.counts {
            w.put_keyed(k, c)?;
        }
        Ok(())
    }

    fn restore_from_snapshot(&mut self, e: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let (k, c): (u64, u64) = e.decode()?;
        self.counts.insert(k, c);
        Ok(())
    }
}

/// An external target that remembers which epochs it committed, as a
/// transactional store would.
#[derive(Default)]
struct Target {
    items: Vec<(u64, u64)>,
    committed: HashSet<(usize, u64)>,
}

/// Delivers under exactly-once only what completed snapshots cover.
struct CommitSink {
    target: Arc<Mutex<Target>>,
    pending: PendingEpochs<(u64, u64)>,
    two_phase: bool,
    instance: usize,
    parallelism: usize,
}

impl Processor for CommitSink {
    type In = (u64, u64);
    type Out = ();

    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.two_phase = ctx.guarantee == Guarantee::ExactlyOnce;
        self.instance = ctx.instance;
        self.parallelism = ctx.parallelism;
        Ok(())
    }

    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<(u64, u64)>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        while let Some(item) = inbox.poll() {
            if self.two_phase {
                self.pending.push(item);
            } else {
                self.target.lock().items.push(item);
            }
        }
        Ok(())
    }

    fn complete<O: Outbox<()>>(&mut self, _: &mut O) -> Result<bool, ProcessorError> {
        self.snapshot_commit_finish(u64::MAX)?;
        let rest = self.pending.take_current();
        self.target.lock().items.extend(rest);
        Ok(true)
    }

    fn save_to_snapshot(&mut self, id: u64, w: &mut SnapshotWriter) -> Result<(), ProcessorError> {
        if self.two_phase {
            self.pending.seal_and_save(id, self.instance, w)?;
        }
        Ok(())
    }

    fn restore_from_snapshot(&mut self, e: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        self.pending.restore(e, self.instance, self.parallelism)
    }

    fn snapshot_commit_finish(&mut self, id: u64) -> Result<(), ProcessorError> {
        let mut target = self.target.lock();
        for epoch in self.pending.take_sealed_up_to(id) {
            if target
                .committed
                .insert((epoch.writer_instance, epoch.epoch))
            {
                target.items.extend(epoch.items);
            }
        }
        Ok(())
    }
}

fn dag(n: u64, per_ms: u64, target: &Arc<Mutex<Target>>) -> Dag {
    let mut dag = Dag::new();
    let source = dag.vertex("source", move |_| PacedSource::new(n, per_ms));
    dag.set_parallelism(source, SOURCES);
    let counter = dag.vertex("counter", |_| KeyedCounter::default());
    let t = target.clone();
    let sink = dag.vertex("sink", move |_| CommitSink {
        target: t.clone(),
        pending: PendingEpochs::default(),
        two_phase: false,
        instance: 0,
        parallelism: 1,
    });
    dag.edge(
        source,
        counter,
        Routing::partitioned(|x: &u64| eddy_core::partition::key_hash(&(x % KEYS))),
    );
    dag.edge(counter, sink, Routing::unicast());
    dag
}

fn expected(n: u64) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = (0..KEYS)
        .flat_map(|k| (1..=(n + KEYS - 1 - k) / KEYS).map(move |c| (k, c)))
        .collect();
    v.sort_unstable();
    v
}

fn sorted(target: &Arc<Mutex<Target>>) -> Vec<(u64, u64)> {
    let mut v = target.lock().items.clone();
    v.sort_unstable();
    v
}

/// A fresh snapshot directory for one test.
fn temp_dir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("snapshots-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(dir: &std::path::Path, guarantee: Guarantee) -> JobConfig {
    JobConfig::default()
        .name("counting")
        .guarantee(guarantee)
        .snapshot_interval(Duration::from_millis(5))
        .snapshot_dir(dir)
        .parallelism(2)
}

fn wait_for_snapshots(job: &Job, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while job.snapshot_stats().completed < at_least {
        assert!(Instant::now() < deadline, "no snapshot completed in time");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn when_exactly_once_job_restarted_repeatedly_then_output_is_as_without_failures() {
    let dir = temp_dir();
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let target = Arc::new(Mutex::new(Target::default()));
    let n = 60_000;
    let job = eddy
        .submit(dag(n, 40, &target), config(&dir, Guarantee::ExactlyOnce))
        .unwrap();
    for round in 1..=3 {
        wait_for_snapshots(&job, round * 3);
        job.restart();
    }
    job.join().unwrap();
    assert!(job.snapshot_stats().restored_from.is_some());
    assert_eq!(sorted(&target), expected(n));
}

#[test]
fn when_at_least_once_job_restarted_then_nothing_is_lost() {
    let dir = temp_dir();
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let target = Arc::new(Mutex::new(Target::default()));
    let n = 40_000;
    let job = eddy
        .submit(dag(n, 40, &target), config(&dir, Guarantee::AtLeastOnce))
        .unwrap();
    wait_for_snapshots(&job, 3);
    job.restart();
    job.join().unwrap();
    // Without alignment, replayed items may be counted twice in the
    // restored state, but none is missed: each key's count reaches at
    // least its number of items.
    let mut highest: HashMap<u64, u64> = HashMap::new();
    for (k, c) in sorted(&target) {
        let h = highest.entry(k).or_default();
        *h = (*h).max(c);
    }
    for k in 0..KEYS {
        let want = (n + KEYS - 1 - k) / KEYS;
        assert!(highest[&k] >= want, "key {k}: {} < {want}", highest[&k]);
    }
}

#[test]
fn when_exported_and_restored_at_other_parallelism_then_output_is_complete() {
    let dir = temp_dir();
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let target = Arc::new(Mutex::new(Target::default()));
    let n = 60_000;
    let job = eddy
        .submit(dag(n, 40, &target), config(&dir, Guarantee::ExactlyOnce))
        .unwrap();
    wait_for_snapshots(&job, 2);
    let exported = job.cancel_and_export_snapshot("half-way").unwrap();
    assert!(matches!(job.join(), Err(eddy_core::EddyError::Cancelled)));
    assert!(exported.ends_with("exported/half-way.bin"));
    let before = target.lock().items.len();
    assert!(
        before > 0 && (before as u64) < n,
        "exported mid-run: {before}"
    );

    let upgraded = eddy
        .submit(
            dag(n, 1_000, &target),
            config(&dir, Guarantee::ExactlyOnce)
                .name("counting-v2")
                .parallelism(3)
                .restore_from(&exported),
        )
        .unwrap();
    upgraded.join().unwrap();
    assert!(upgraded.unmatched_state().is_empty());
    assert!(upgraded.snapshot_stats().restore_duration.is_some());
    assert_eq!(sorted(&target), expected(n));
}

#[test]
fn when_instance_dropped_then_same_job_resumes_in_a_new_one() {
    let dir = temp_dir();
    let target = Arc::new(Mutex::new(Target::default()));
    let n = 60_000;
    {
        let eddy = Eddy::new(EddyConfig::with_threads(2));
        let job = eddy
            .submit(dag(n, 40, &target), config(&dir, Guarantee::ExactlyOnce))
            .unwrap();
        wait_for_snapshots(&job, 3);
        // Dropping the instance stops the job as a process exit would.
    }
    assert!(target.lock().items.len() < n as usize);
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let job = eddy
        .submit(dag(n, 1_000, &target), config(&dir, Guarantee::ExactlyOnce))
        .unwrap();
    assert!(job.snapshot_stats().restored_from.is_some());
    job.join().unwrap();
    assert_eq!(sorted(&target), expected(n));
    // A completed job leaves nothing to resume.
    let again = Arc::new(Mutex::new(Target::default()));
    let fresh = eddy
        .submit(
            dag(100, 1_000, &again),
            config(&dir, Guarantee::ExactlyOnce),
        )
        .unwrap();
    assert_eq!(fresh.snapshot_stats().restored_from, None);
    fresh.join().unwrap();
}

#[test]
fn when_suspended_then_resumed_from_final_snapshot() {
    let dir = temp_dir();
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let target = Arc::new(Mutex::new(Target::default()));
    let n = 40_000;
    let job = eddy
        .submit(dag(n, 40, &target), config(&dir, Guarantee::ExactlyOnce))
        .unwrap();
    wait_for_snapshots(&job, 2);
    job.suspend();
    assert!(job.wait_for_status(JobStatus::Suspended, Duration::from_secs(20)));
    let at_suspend = target.lock().items.len();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        target.lock().items.len(),
        at_suspend,
        "nothing runs while suspended"
    );
    job.resume();
    job.join().unwrap();
    assert_eq!(sorted(&target), expected(n));
}

#[test]
fn when_stage_names_repeat_then_snapshotting_job_is_refused() {
    let eddy = Eddy::new(EddyConfig::with_threads(1));
    let mut dag = Dag::new();
    dag.vertex("same", |_| KeyedCounter::default());
    dag.vertex("same", |_| KeyedCounter::default());
    let err = eddy
        .submit(dag, JobConfig::default().guarantee(Guarantee::AtLeastOnce))
        .unwrap_err()
        .to_string();
    assert!(err.contains("'same'"), "{err}");
}

/// Reads a side input to the end before its stream (a hash join's shape)
/// and tags each stream item with the number of side items seen.
#[derive(Default)]
struct SideFirst {
    side_items: u64,
}

impl Processor for SideFirst {
    type In = u64;
    type Out = (u64, u64);

    fn process<O: Outbox<(u64, u64)>>(
        &mut self,
        ordinal: usize,
        inbox: &mut Inbox<u64>,
        out: &mut O,
    ) -> Result<(), ProcessorError> {
        while out.has_room() {
            let Some(x) = inbox.poll() else { break };
            if ordinal == 0 {
                self.side_items += 1;
            } else {
                out.offer_granted((x, self.side_items));
            }
        }
        Ok(())
    }

    fn save_to_snapshot(&mut self, _: u64, w: &mut SnapshotWriter) -> Result<(), ProcessorError> {
        w.put(BROADCAST, &(), &self.side_items)
    }

    fn restore_from_snapshot(&mut self, e: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        self.side_items = e.value()?;
        Ok(())
    }
}

#[test]
fn when_snapshots_taken_while_side_input_loads_then_stream_waits_and_output_is_exact() {
    let dir = temp_dir();
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let target = Arc::new(Mutex::new(Target::default()));
    let (side_n, stream_n) = (10_000, 40_000);
    let mut dag = Dag::new();
    let paced = move |n: u64| move |_: &ProcessorContext| PacedSource::new(n, 20);
    let side = dag.vertex("side", paced(side_n));
    dag.set_parallelism(side, 1);
    let stream = dag.vertex("stream", paced(stream_n));
    dag.set_parallelism(stream, 1);
    let join = dag.vertex("join", |_| SideFirst::default());
    dag.set_parallelism(join, 1);
    let t = target.clone();
    let sink = dag.vertex("sink", move |_| CommitSink {
        target: t.clone(),
        pending: PendingEpochs::default(),
        two_phase: false,
        instance: 0,
        parallelism: 1,
    });
    dag.edge_with_priority(side, join, Routing::unicast(), -1);
    dag.edge(stream, join, Routing::unicast());
    dag.edge(join, sink, Routing::unicast());
    let job = eddy
        .submit(dag, config(&dir, Guarantee::ExactlyOnce))
        .unwrap();
    // The first snapshot waits until the side input is read.
    wait_for_snapshots(&job, 1);
    job.restart();
    wait_for_snapshots(&job, 3);
    job.restart();
    job.join().unwrap();
    let got = sorted(&target);
    let want: Vec<(u64, u64)> = (0..stream_n).map(|x| (x, side_n)).collect();
    assert_eq!(got, want);
}

#[test]
fn when_job_is_unnamed_then_a_new_instance_does_not_resume_it() {
    let dir = temp_dir();
    let target = Arc::new(Mutex::new(Target::default()));
    let unnamed = || {
        JobConfig::default()
            .guarantee(Guarantee::ExactlyOnce)
            .snapshot_interval(Duration::from_millis(5))
            .snapshot_dir(&dir)
    };
    {
        let eddy = Eddy::new(EddyConfig::with_threads(2));
        let job = eddy.submit(dag(60_000, 40, &target), unnamed()).unwrap();
        wait_for_snapshots(&job, 2);
    }
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let job = eddy.submit(dag(100, 1_000, &target), unnamed()).unwrap();
    assert_eq!(job.snapshot_stats().restored_from, None);
    job.join().unwrap();
}

#[test]
fn when_join_side_input_never_ends_then_snapshots_wait_and_cancel_still_works() {
    let dir = temp_dir();
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let target = Arc::new(Mutex::new(Target::default()));
    let mut dag = Dag::new();
    let endless = |_: &ProcessorContext| PacedSource::new(u64::MAX, 1);
    let side = dag.vertex("side", endless);
    let stream = dag.vertex("stream", endless);
    let join = dag.vertex("join", |_| SideFirst::default());
    let t = target.clone();
    let sink = dag.vertex("sink", move |_| CommitSink {
        target: t.clone(),
        pending: PendingEpochs::default(),
        two_phase: false,
        instance: 0,
        parallelism: 1,
    });
    dag.edge_with_priority(side, join, Routing::unicast(), -1);
    dag.edge(stream, join, Routing::unicast());
    dag.edge(join, sink, Routing::unicast());
    let job = eddy
        .submit(dag, config(&dir, Guarantee::ExactlyOnce))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        job.snapshot_stats().completed,
        0,
        "the side input is still being read"
    );
    job.cancel();
    let outcome = job
        .join_timeout(Duration::from_secs(10))
        .expect("cancel is not held back by the postponed snapshot");
    assert!(matches!(outcome, Err(eddy_core::EddyError::Cancelled)));
}

/// Asks for a snapshot on every batch, as a sink holding too much would.
#[derive(Default)]
struct AskingSink {
    requester: eddy_core::SnapshotRequester,
}

impl Processor for AskingSink {
    type In = u64;
    type Out = ();

    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.requester = ctx.snapshot_requester.clone();
        Ok(())
    }

    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<u64>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        while inbox.poll().is_some() {}
        self.requester.request();
        Ok(())
    }
}

#[test]
fn when_a_processor_asks_for_a_snapshot_then_one_comes_before_the_interval() {
    let dir = temp_dir();
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let mut dag = Dag::new();
    let source = dag.vertex("source", |_| PacedSource::new(u64::MAX, 10));
    let sink = dag.vertex("sink", |_| AskingSink::default());
    dag.edge(source, sink, Routing::unicast());
    let job = eddy
        .submit(
            dag,
            config(&dir, Guarantee::ExactlyOnce).snapshot_interval(Duration::from_secs(3600)),
        )
        .unwrap();
    wait_for_snapshots(&job, 2);
    job.cancel();
    assert!(matches!(job.join(), Err(eddy_core::EddyError::Cancelled)));
}

/// Where in the end of an exactly-once job a run of
/// [`interrupted_end`] restarts it or fails it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndPoint {
    /// The source has finished; its last item is still on its way to a sink.
    Draining,
    /// Sink 0's input has ended and its final snapshot has started, but it
    /// cannot complete: sink 1 holds it up by not finishing its input.
    FinalSnapshot,
    /// Sink 0 has delivered the output of its final snapshot and has not
    /// finished yet.
    Commit,
}

/// How a run of [`interrupted_end`] is interrupted at its point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interruption {
    /// The execution is held at the point and the test calls `Job::restart`.
    Restart,
    /// A sink fails at the point, and the job restarts itself.
    Failure,
}

/// What the source and the sinks of one run share with the test.
struct EndScript {
    point: EndPoint,
    interruption: Interruption,
    /// Set by the test: the source may emit its last item.
    source_may_finish: AtomicBool,
    /// The source has emitted its last item.
    source_finished: AtomicBool,
    /// The first execution has reached `point`.
    reached: AtomicBool,
    /// The run has been interrupted: processors created since behave plainly.
    interrupted: AtomicBool,
}

impl EndScript {
    /// Marks the point reached; `Err` if the interruption is a failure.
    fn interrupt(&self) -> Result<(), ProcessorError> {
        self.reached.store(true, Ordering::Release);
        match self.interruption {
            Interruption::Restart => Ok(()),
            Interruption::Failure => {
                self.interrupted.store(true, Ordering::Release);
                Err(ProcessorError::new(format!(
                    "failure injected at {:?}",
                    self.point
                )))
            }
        }
    }
}

/// Emits 0..n at about `per_ms` items per millisecond, all but the last
/// before the script lets it finish, so that the last item is still in
/// flight once the source has finished.
struct EndSource {
    next: u64,
    n: u64,
    per_ms: u64,
    started: Instant,
    emitted: u64,
    script: Arc<EndScript>,
}

impl Processor for EndSource {
    type In = ();
    type Out = u64;

    fn init(&mut self, _: &ProcessorContext) -> Result<(), ProcessorError> {
        self.started = Instant::now();
        Ok(())
    }

    fn process<O: Outbox<u64>>(
        &mut self,
        _: usize,
        _: &mut Inbox<()>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }

    fn complete<O: Outbox<u64>>(&mut self, out: &mut O) -> Result<bool, ProcessorError> {
        let allowed = self.started.elapsed().as_millis() as u64 * self.per_ms;
        let last = self.n - 1;
        while self.next < last && self.emitted < allowed && out.offer(self.next).is_ok() {
            self.next += 1;
            self.emitted += 1;
        }
        if self.next == last
            && self.script.source_may_finish.load(Ordering::Acquire)
            && out.offer(last).is_ok()
        {
            self.next = self.n;
            // The last item leaves the outbox only after this call.
            self.script.source_finished.store(true, Ordering::Release);
        }
        Ok(self.next >= self.n)
    }

    fn save_to_snapshot(&mut self, _: u64, w: &mut SnapshotWriter) -> Result<(), ProcessorError> {
        w.put(BROADCAST, &(), &self.next)
    }

    fn restore_from_snapshot(&mut self, e: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        self.next = e.value()?;
        Ok(())
    }
}

/// What the sinks of a run delivered, with the epochs each committed.
#[derive(Default)]
struct Delivered {
    items: Vec<u64>,
    committed: HashSet<(usize, u64)>,
}

/// A two-phase-commit sink that follows its script in the execution it
/// was created for, unless the run was interrupted before.
struct EndSink {
    delivered: Arc<Mutex<Delivered>>,
    pending: PendingEpochs<u64>,
    instance: usize,
    parallelism: usize,
    script: Arc<EndScript>,
    scripted: bool,
    input_ended: bool,
    /// The first snapshot this instance saved after its input ended.
    final_saved: Option<u64>,
}

impl EndSink {
    fn new(script: &Arc<EndScript>, delivered: &Arc<Mutex<Delivered>>) -> Self {
        EndSink {
            delivered: delivered.clone(),
            pending: PendingEpochs::default(),
            instance: 0,
            parallelism: 1,
            script: script.clone(),
            scripted: !script.interrupted.load(Ordering::Acquire),
            input_ended: false,
            final_saved: None,
        }
    }

    /// Whether this instance acts at `point` in this execution.
    fn acts_at(&self, point: EndPoint, instance: Option<usize>) -> bool {
        self.scripted && self.script.point == point && instance.is_none_or(|i| i == self.instance)
    }

    fn deliver_up_to(&mut self, id: u64) {
        let mut delivered = self.delivered.lock();
        for epoch in self.pending.take_sealed_up_to(id) {
            if delivered
                .committed
                .insert((epoch.writer_instance, epoch.epoch))
            {
                delivered.items.extend(epoch.items);
            }
        }
    }
}

impl Processor for EndSink {
    type In = u64;
    type Out = ();

    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.instance = ctx.instance;
        self.parallelism = ctx.parallelism;
        Ok(())
    }

    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<u64>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        if self.acts_at(EndPoint::Draining, None)
            && self.script.source_finished.load(Ordering::Acquire)
        {
            // Held: the batch stays in the inbox until the restart.
            return self.script.interrupt();
        }
        while let Some(x) = inbox.poll() {
            self.pending.push(x);
        }
        Ok(())
    }

    fn complete_edge<O: Outbox<()>>(
        &mut self,
        _: usize,
        _: &mut O,
    ) -> Result<bool, ProcessorError> {
        self.input_ended = true;
        // Sink 1 never finishes its input, so sink 0's final snapshot
        // cannot complete.
        Ok(!self.acts_at(EndPoint::FinalSnapshot, Some(1)))
    }

    fn complete<O: Outbox<()>>(&mut self, _: &mut O) -> Result<bool, ProcessorError> {
        if self.acts_at(EndPoint::Commit, Some(0)) {
            // Held here until the restart stops the execution; a failure is
            // injected in the commit instead.
            self.script.reached.store(true, Ordering::Release);
            return Ok(false);
        }
        self.deliver_up_to(u64::MAX);
        let rest = self.pending.take_current();
        self.delivered.lock().items.extend(rest);
        Ok(true)
    }

    fn save_to_snapshot(&mut self, id: u64, w: &mut SnapshotWriter) -> Result<(), ProcessorError> {
        if self.input_ended && self.final_saved.is_none() {
            self.final_saved = Some(id);
            if self.acts_at(EndPoint::FinalSnapshot, Some(0)) {
                self.script.interrupt()?;
            }
        }
        self.pending.seal_and_save(id, self.instance, w)
    }

    fn restore_from_snapshot(&mut self, e: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        self.pending.restore(e, self.instance, self.parallelism)
    }

    fn snapshot_commit_finish(&mut self, id: u64) -> Result<(), ProcessorError> {
        self.deliver_up_to(id);
        let final_committed = self.final_saved.is_some_and(|f| id >= f);
        if final_committed
            && self.acts_at(EndPoint::Commit, Some(0))
            && self.script.interruption == Interruption::Failure
        {
            self.script.interrupt()?;
        }
        Ok(())
    }
}

/// Runs an exactly-once job of one source and two sinks, interrupts it at
/// `point`, and checks that it completes with each item delivered once,
/// restored from a snapshot.
fn interrupted_end(point: EndPoint, interruption: Interruption) {
    let what = format!("{interruption:?} at {point:?}");
    let dir = temp_dir();
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    let script = Arc::new(EndScript {
        point,
        interruption,
        source_may_finish: AtomicBool::new(false),
        source_finished: AtomicBool::new(false),
        reached: AtomicBool::new(false),
        interrupted: AtomicBool::new(false),
    });
    let delivered = Arc::new(Mutex::new(Delivered::default()));
    let n = 4_000;
    let mut dag = Dag::new();
    let s = script.clone();
    let source = dag.vertex("source", move |_| EndSource {
        next: 0,
        n,
        per_ms: 40,
        started: Instant::now(),
        emitted: 0,
        script: s.clone(),
    });
    dag.set_parallelism(source, 1);
    let (s, d) = (script.clone(), delivered.clone());
    let sink = dag.vertex("sink", move |_| EndSink::new(&s, &d));
    dag.set_parallelism(sink, 2);
    dag.edge(source, sink, Routing::unicast());
    let job = eddy
        .submit(
            dag,
            config(&dir, Guarantee::ExactlyOnce).auto_restart(1, Duration::ZERO),
        )
        .unwrap();
    wait_for_snapshots(&job, 2);
    script.source_may_finish.store(true, Ordering::Release);
    if interruption == Interruption::Restart {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !script.reached.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "{what}: the job never got there");
            std::thread::sleep(Duration::from_millis(1));
        }
        script.interrupted.store(true, Ordering::Release);
        job.restart();
    }
    if let Err(e) = job.join() {
        panic!("{what}: the job failed: {e}");
    }
    assert!(
        script.reached.load(Ordering::Acquire),
        "{what}: the job never got there"
    );
    assert!(
        job.snapshot_stats().restored_from.is_some(),
        "{what}: restored from a snapshot"
    );
    let mut items = delivered.lock().items.clone();
    items.sort_unstable();
    assert_eq!(items.len(), n as usize, "{what}: items delivered");
    assert_eq!(items, (0..n).collect::<Vec<_>>(), "{what}: each item once");
}

#[test]
fn when_restarted_or_failed_while_draining_then_each_item_is_delivered_once() {
    interrupted_end(EndPoint::Draining, Interruption::Restart);
    interrupted_end(EndPoint::Draining, Interruption::Failure);
}

#[test]
fn when_restarted_or_failed_during_final_snapshot_then_each_item_is_delivered_once() {
    interrupted_end(EndPoint::FinalSnapshot, Interruption::Restart);
    interrupted_end(EndPoint::FinalSnapshot, Interruption::Failure);
}

#[test]
fn when_restarted_or_failed_after_final_commit_then_each_item_is_delivered_once() {
    interrupted_end(EndPoint::Commit, Interruption::Restart);
    interrupted_end(EndPoint::Commit, Interruption::Failure);
}
