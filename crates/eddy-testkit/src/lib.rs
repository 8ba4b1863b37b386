//! Test support for processors and pipelines; never shipped in release
//! builds (only `dev-dependencies` use it).
//!
//! * [`TestSupport`]: the processor harness. It feeds a processor its input
//!   and checks the output several times: with a roomy outbox; with a
//!   one-slot outbox that is also full on every other call, so that every
//!   backpressure path runs; and with a snapshot before every input step (and
//!   between the first rounds of unfinished `complete` calls) restored into
//!   fresh instances, as after a failure. With [`partitioned_by`](TestSupport::partitioned_by)
//!   the restores also change the parallelism: input items go to the
//!   instance owning their key's partition, and keyed snapshot entries to
//!   the instance owning theirs. It asserts that each call with room made
//!   progress.
//! * [`Seed`]: seeds for randomised tests, printed when a test fails.
//! * [`assert_same_items`]: golden-output comparison regardless of order.
//! * `kafka::TestBroker` (feature `kafka`): a real Kafka broker started with
//!   the repository's `scripts/kafka`.
//! * `postgres::TestPg` (feature `postgres`): a throwaway PostgreSQL cluster
//!   from Debian's packages, installed when missing.
//!
//! ```
//! use eddy_core::{Inbox, Outbox, Processor, ProcessorError};
//! use eddy_testkit::{TestInput, TestOutput, TestSupport};
//!
//! /// Doubles every item.
//! struct Double;
//! impl Processor for Double {
//!     type In = i64;
//!     type Out = i64;
//!     fn process<O: Outbox<i64>>(&mut self, _: usize, inbox: &mut Inbox<i64>, outbox: &mut O) -> Result<(), ProcessorError> {
//!         while outbox.has_room() {
//!             let Some(x) = inbox.poll() else { break };
//!             let _ = outbox.offer(2 * x);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! TestSupport::verify(|| Double)
//!     .input(vec![TestInput::Item(1), TestInput::Watermark(5), TestInput::Item(2)])
//!     .expect_output(vec![TestOutput::Item(2), TestOutput::Watermark(5), TestOutput::Item(4)]);
//! ```

#![forbid(unsafe_code)]

#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "postgres")]
pub mod postgres;

use eddy_core::partition::owner_of_partition;
use eddy_core::snapshot::{partition_of, read_entries, SnapshotWriter, BROADCAST};
use eddy_core::{Inbox, Processor, ProcessorContext, VecOutbox, Watermark};
use std::fmt::Debug;
use std::hash::Hash;

/// One step of a processor's input.
#[derive(Debug, Clone, PartialEq)]
pub enum TestInput<T> {
    /// A data item.
    Item(T),
    /// An advance of the input watermark.
    Watermark(i64),
}

/// One element of a processor's output.
#[derive(Debug, Clone, PartialEq)]
pub enum TestOutput<T> {
    /// A data item.
    Item(T),
    /// A watermark.
    Watermark(i64),
}

/// Most calls the harness makes for one step before it declares the
/// processor stuck: far above what any correct processor needs for the
/// small inputs of unit tests.
const CALLS_PER_STEP_MAX: usize = 1_000_000;

/// The parallelisms a restoring run with keyed input cycles through, one
/// per restore: up, down and back to one instance, so that keyed state
/// both splits and merges.
const RESCALE_CYCLE: [usize; 3] = [2, 3, 1];

/// How many rounds of unfinished `complete` calls [`TestSupport::expect_output`]
/// restores after: enough to catch output held back while completing,
/// bounded so that a processor with much to emit at the end stays quick.
const COMPLETE_ROUNDS_RESTORED: usize = 8;

/// The partition of an input item, for routing it to its instance.
type PartitionFn<T> = Box<dyn Fn(&T) -> u32>;

/// The processor harness; see the crate docs.
pub struct TestSupport<P: Processor, F> {
    supplier: F,
    input: Vec<TestInput<<P as Processor>::In>>,
    disregard_order: bool,
    snapshots: bool,
    partition: Option<PartitionFn<P::In>>,
}

impl<P, F> TestSupport<P, F>
where
    P: Processor,
    P::In: Clone,
    P::Out: Debug + PartialEq,
    F: Fn() -> P,
{
    /// A harness for processors made by `supplier` (a fresh one per run,
    /// and per restore).
    pub fn verify(supplier: F) -> Self {
        TestSupport {
            supplier,
            input: Vec::new(),
            disregard_order: false,
            snapshots: true,
            partition: None,
        }
    }

    /// The input to feed, in order.
    pub fn input(mut self, input: Vec<TestInput<P::In>>) -> Self {
        self.input = input;
        self
    }

    /// Compare items as multisets, and ignore watermarks (for processors
    /// that emit from hash maps).
    pub fn disregard_order(mut self) -> Self {
        self.disregard_order = true;
        self
    }

    /// Skips the runs with snapshots, for a processor whose output depends
    /// on the wall clock or that keeps no state across a restore on purpose.
    pub fn without_snapshots(mut self) -> Self {
        self.snapshots = false;
        self
    }

    /// The processor is keyed by `key` (the grouping key its state is
    /// saved under): the restoring runs then also change the parallelism,
    /// routing each item to the instance that owns its key.
    pub fn partitioned_by<K: Hash>(mut self, key: impl Fn(&P::In) -> K + 'static) -> Self {
        self.partition = Some(Box::new(move |item| partition_of(&key(item))));
        self
    }

    /// Runs the processor with a roomy and with a starved outbox, with a
    /// snapshot and restore after every step (and at other parallelisms
    /// when partitioned), and asserts that every output equals `expected`.
    /// Runs at several instances compare items as multisets.
    pub fn expect_output(self, expected: Vec<TestOutput<P::Out>>) {
        let points = self.input.len() + COMPLETE_ROUNDS_RESTORED;
        let every_step = |parallelism: &dyn Fn(usize) -> usize| -> Vec<(usize, usize)> {
            (0..=points).map(|i| (i, parallelism(i))).collect()
        };
        let mut runs: Vec<(&str, Vec<TestOutput<P::Out>>, bool)> = vec![
            ("roomy outbox", self.run(false), false),
            (
                "one-slot outbox, full every other call",
                self.run(true),
                false,
            ),
        ];
        if self.snapshots {
            runs.push((
                "restored into a fresh instance after every step",
                self.run_restoring(&every_step(&|_| 1)),
                false,
            ));
            if self.partition.is_some() {
                runs.push((
                    "restored at another parallelism after every step",
                    self.run_restoring(&every_step(&|i| RESCALE_CYCLE[i % RESCALE_CYCLE.len()])),
                    true,
                ));
            }
        }
        for (mode, actual, several_instances) in runs {
            if self.disregard_order || several_instances {
                assert_eq!(items(&actual), items(&expected), "output differs ({mode})");
            } else {
                assert_eq!(actual, expected, "output differs ({mode})");
            }
        }
    }

    /// Runs the processor over the input and returns its output.
    pub fn run(&self, starved: bool) -> Vec<TestOutput<P::Out>> {
        self.run_with(starved, &[])
    }

    /// Runs the processor with a starved outbox and, before each input step
    /// `i` named in `restores` as `(i, parallelism)`, saves the state of
    /// every instance, closes them and restores the state into
    /// `parallelism` fresh ones, which take the rest of the input. Point
    /// `input.len()` is before completing, and `input.len() + k` after the
    /// `k`-th round of `complete` calls that did not finish. Returns the
    /// output of all instances in the order emitted.
    ///
    /// # Panics
    /// When a parallelism above 1 is asked of a harness that is not
    /// [`partitioned_by`](TestSupport::partitioned_by) a key, and when the
    /// processor fails.
    pub fn run_restoring(&self, restores: &[(usize, usize)]) -> Vec<TestOutput<P::Out>> {
        assert!(
            self.partition.is_some() || restores.iter().all(|(_, n)| *n == 1),
            "the harness runs several instances only when partitioned_by a key"
        );
        self.run_with(true, restores)
    }

    fn run_with(&self, starved: bool, restores: &[(usize, usize)]) -> Vec<TestOutput<P::Out>> {
        let mut instances = vec![self.fresh(0, 1)];
        let mut h = Harness {
            outbox: VecOutbox::with_capacity(if starved { 1 } else { 1 << 20 }),
            output: Vec::new(),
            starved,
            calls: vec![0],
            snapshot_id: 0,
        };
        let restore_at = |point: usize| restores.iter().find(|(i, _)| *i == point).map(|r| r.1);
        for step in 0..=self.input.len() {
            if let Some(n) = restore_at(step) {
                instances = self.restore(&mut h, instances, n);
            }
            match self.input.get(step) {
                Some(TestInput::Item(item)) => {
                    let owner = match &self.partition {
                        Some(partition) => owner_of_partition(partition(item), instances.len()),
                        None => 0,
                    };
                    let mut inbox = Inbox::from_vec(vec![item.clone()]);
                    h.until_done(
                        "process",
                        |h, p: &mut P| {
                            let before = inbox.len();
                            p.process(0, &mut inbox, &mut h.outbox)
                                .expect("process failed");
                            (inbox.is_empty(), inbox.len() != before)
                        },
                        owner,
                        &mut instances[owner],
                    );
                }
                Some(TestInput::Watermark(w)) => {
                    for (i, p) in instances.iter_mut().enumerate() {
                        h.until_done(
                            "try_process_watermark",
                            |h, p: &mut P| {
                                let done = p
                                    .try_process_watermark(Watermark(*w), &mut h.outbox)
                                    .expect("try_process_watermark failed");
                                (done, done)
                            },
                            i,
                            p,
                        );
                    }
                }
                None => {}
            }
        }
        let mut done = vec![false; instances.len()];
        for round in 1.. {
            assert!(
                round <= CALLS_PER_STEP_MAX,
                "complete did not finish within {CALLS_PER_STEP_MAX} calls"
            );
            for (i, (p, done)) in instances.iter_mut().zip(done.iter_mut()).enumerate() {
                if !*done {
                    *done = h.call_once("complete", i, p, |h, p: &mut P| {
                        let done = p.complete(&mut h.outbox).expect("complete failed");
                        (done, done)
                    });
                }
            }
            if done.iter().all(|d| *d) {
                break;
            }
            // Mid-completion is where a processor holds the most output
            // back: the points after the input count the unfinished rounds.
            if let Some(n) = restore_at(self.input.len() + round) {
                instances = self.restore(&mut h, instances, n);
                done = vec![false; n];
            }
        }
        for mut p in instances {
            p.close().expect("close failed");
        }
        h.output
    }

    /// A fresh instance `instance` of `parallelism`, initialized.
    fn fresh(&self, instance: usize, parallelism: usize) -> P {
        let mut p = (self.supplier)();
        let mut ctx = ProcessorContext::standalone("under-test");
        ctx.instance = instance;
        ctx.parallelism = parallelism;
        p.init(&ctx).expect("init failed");
        p
    }

    /// Saves every instance's state, closes them, and restores the state
    /// into `parallelism` fresh instances, as the runtime does after a
    /// failure: keyed entries to the owner of their partition, broadcast
    /// entries to all; then the snapshot's commit.
    fn restore(&self, h: &mut Harness<P::Out>, old: Vec<P>, parallelism: usize) -> Vec<P> {
        h.snapshot_id += 1;
        h.calls = vec![0; parallelism];
        let id = h.snapshot_id;
        let mut parts = Vec::with_capacity(old.len());
        for mut p in old {
            let mut writer = SnapshotWriter::new();
            p.save_to_snapshot(id, &mut writer)
                .expect("save_to_snapshot failed");
            p.close().expect("close failed");
            parts.push(writer.take().0);
        }
        (0..parallelism)
            .map(|instance| {
                let mut p = self.fresh(instance, parallelism);
                for part in &parts {
                    for entry in read_entries(part) {
                        let entry = entry.expect("the harness's snapshot is whole");
                        if entry.partition == BROADCAST
                            || owner_of_partition(entry.partition, parallelism) == instance
                        {
                            p.restore_from_snapshot(entry)
                                .expect("restore_from_snapshot failed");
                        }
                    }
                }
                p.finish_snapshot_restore()
                    .expect("finish_snapshot_restore failed");
                p.snapshot_commit_finish(id)
                    .expect("snapshot_commit_finish failed");
                p
            })
            .collect()
    }
}

/// The items of an output, rendered and sorted.
fn items<T: Debug>(output: &[TestOutput<T>]) -> Vec<String> {
    let mut s: Vec<String> = output
        .iter()
        .filter(|o| matches!(o, TestOutput::Item(_)))
        .map(|o| format!("{o:?}"))
        .collect();
    s.sort();
    s
}

struct Harness<T> {
    outbox: VecOutbox<T>,
    output: Vec<TestOutput<T>>,
    starved: bool,
    /// Calls made to each instance: a starved outbox is full on every
    /// other call of the same instance.
    calls: Vec<usize>,
    snapshot_id: u64,
}

impl<T> Harness<T> {
    /// Calls `call` until it reports done, draining the outbox after each
    /// call, and asserts progress in every call that had room.
    fn until_done<P>(
        &mut self,
        what: &str,
        mut call: impl FnMut(&mut Self, &mut P) -> (bool, bool),
        instance: usize,
        p: &mut P,
    ) {
        for _ in 0..CALLS_PER_STEP_MAX {
            if self.call_once(what, instance, p, &mut call) {
                return;
            }
        }
        panic!("{what} did not finish within {CALLS_PER_STEP_MAX} calls");
    }

    /// Makes one call (with a full outbox on every other call when
    /// starved), drains the outbox, asserts progress, and says whether the
    /// call reported done.
    fn call_once<P>(
        &mut self,
        what: &str,
        instance: usize,
        p: &mut P,
        mut call: impl FnMut(&mut Self, &mut P) -> (bool, bool),
    ) -> bool {
        self.calls[instance] += 1;
        let full = self.starved && self.calls[instance] % 2 == 0;
        self.outbox.set_capacity(if full {
            0
        } else if self.starved {
            1
        } else {
            1 << 20
        });
        let (done, progressed) = call(self, p);
        let emitted = !self.outbox.is_empty() || !self.outbox.watermarks.is_empty();
        assert!(
            full || done || progressed || emitted,
            "{what} made no progress although its outbox had room"
        );
        self.drain();
        done
    }

    fn drain(&mut self) {
        let items: Vec<T> = self.outbox.items.drain(..).collect();
        let mut marks = std::mem::take(&mut self.outbox.watermarks)
            .into_iter()
            .peekable();
        for (i, item) in items.into_iter().enumerate() {
            while let Some((_, w)) = marks.next_if(|(pos, _)| *pos <= i) {
                self.output.push(TestOutput::Watermark(w.0));
            }
            self.output.push(TestOutput::Item(item));
        }
        for (_, w) in marks {
            self.output.push(TestOutput::Watermark(w.0));
        }
    }
}

/// A seed for a randomised test: from `EDDY_TEST_SEED` if set, otherwise
/// fresh. Printed if the test fails, so that the failure can be replayed.
pub struct Seed {
    value: u64,
    name: &'static str,
}

impl Seed {
    /// The seed for the test called `name`.
    pub fn new(name: &'static str) -> Self {
        let value = std::env::var("EDDY_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                nanos ^ (std::process::id() as u64).rotate_left(32)
            });
        Seed { value, name }
    }

    /// The seed value.
    pub fn value(&self) -> u64 {
        self.value
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test '{}' failed with seed {}; replay with EDDY_TEST_SEED={}",
                self.name, self.value, self.value
            );
        }
    }
}

/// Asserts that two outputs hold the same items, regardless of order.
pub fn assert_same_items<T: Debug>(actual: &[T], expected: &[T], what: &str) {
    let render = |v: &[T]| {
        let mut s: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        s.sort();
        s
    };
    let (a, e) = (render(actual), render(expected));
    if a != e {
        let missing: Vec<_> = e.iter().filter(|x| !a.contains(x)).take(5).collect();
        let extra: Vec<_> = a.iter().filter(|x| !e.contains(x)).take(5).collect();
        panic!(
            "{what}: {} items, expected {}; missing (first 5): {missing:?}; unexpected (first 5): {extra:?}",
            a.len(),
            e.len()
        );
    }
}
