//! Sinks: the processors a pipeline ends in.
//!
//! Under [`Guarantee::ExactlyOnce`](eddy_core::Guarantee) the built-in sinks
//! commit in two phases: what arrives between two snapshot barriers is one
//! epoch, held back and saved into the snapshot at the barrier, and
//! delivered once the snapshot is durable
//! ([`Processor::snapshot_commit_finish`]). A restored job delivers the
//! epochs its snapshot held that were not delivered before, and none twice:
//! the sinks with in-process targets (collect, logger, grid maps) keep a
//! process-wide record of the last epoch each writer committed (each sink
//! instance writes under an id of its own, so a job restored twice from one
//! snapshot does not mistake its new epochs for committed ones; the record
//! lives as long as the process, like those targets), and the file sink
//! sees which epoch files are in place ([`mod@file`]). When the input ends there is no further snapshot to wait
//! for: the sink delivers the rest itself. Under the other guarantees the
//! sinks write straight through.

mod epochs;
pub mod file;

pub(crate) use epochs::EpochOutput;
pub use file::{FileSink, FileSinkP};

use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter};
use eddy_core::{Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError, State};
use parking_lot::Mutex;
use std::fmt::Debug;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A destination for items of type `T`: a factory of sink processors.
pub trait Sink<T>: Send + Sync + 'static {
    /// Its processor.
    type Processor: Processor<In = Event<T>, Out = ()>;
    /// A name for the stage.
    fn name(&self) -> String;
    /// Fixed number of instances, or `None` for the job's default.
    fn parallelism(&self) -> Option<usize> {
        None
    }
    /// Creates the processor of one instance.
    fn create(&self, ctx: &ProcessorContext) -> Self::Processor;
}

/// Constructors of the built-in sinks.
pub struct Sinks;

impl Sinks {
    /// Collects everything into memory; read it through the returned handle.
    /// The items are [`State`]: under exactly-once they wait in snapshots
    /// until committed.
    pub fn collect<T: State>() -> (CollectSink<T>, Collected<T>) {
        let collected = Collected {
            items: Arc::new(Mutex::new(Vec::new())),
        };
        (
            CollectSink {
                target: collected.clone(),
            },
            collected,
        )
    }

    /// Prints each item's `Debug` form on standard output.
    pub fn logger() -> LoggerSink {
        LoggerSink
    }

    /// Writes each item's `Display` form as a line of a file (created or
    /// truncated). Under exactly-once, one file per epoch instead: see
    /// [`FileSinkP`].
    pub fn file(path: impl Into<PathBuf>) -> FileSink {
        FileSink::new(path.into())
    }

    /// Discards everything, counting it (for benchmarks).
    pub fn noop() -> (NoopSink, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        (
            NoopSink {
                count: count.clone(),
            },
            count,
        )
    }
}

/// The items a [`CollectSink`] received.
///
/// Thread safety: the sink's instances append under a mutex once per batch;
/// readers take the same mutex briefly.
pub struct Collected<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T> Clone for Collected<T> {
    fn clone(&self) -> Self {
        Collected {
            items: self.items.clone(),
        }
    }
}

impl<T: Clone> Collected<T> {
    /// A copy of the items so far.
    pub fn items(&self) -> Vec<T> {
        self.items.lock().clone()
    }
}

impl<T> Collected<T> {
    /// Takes the items so far out.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.items.lock())
    }

    /// Number of items so far.
    pub fn len(&self) -> usize {
        self.items.lock().len()
    }

    /// Whether nothing arrived yet.
    pub fn is_empty(&self) -> bool {
        self.items.lock().is_empty()
    }
}

/// The target of a sink that, under exactly-once, holds its output per
/// epoch and delivers it once the epoch's snapshot is durable
/// ([`DeliverySinkP`]): the collect, logger and grid map sinks.
pub trait Delivery<T>: Send + 'static {
    /// What waits in snapshots for each item until its epoch commits.
    type Held: State;
    /// Whether delivering may block (stdout), so that the sink needs a
    /// thread of its own.
    const BLOCKS: bool = false;
    /// Turns an item into what is held.
    fn hold(&self, item: T) -> Self::Held;
    /// Delivers items as they come, under the other guarantees.
    fn deliver_now(&mut self, inbox: &mut Inbox<Event<T>>);
    /// Delivers the held items of a committed epoch, in order.
    fn deliver(&mut self, items: Vec<Self::Held>);
}

/// The processor of the sinks with a [`Delivery`] target: writes straight
/// through, or under exactly-once holds each epoch's output, saves it at the
/// barrier and delivers it on commit, never twice (see the module docs).
pub struct DeliverySinkP<T, D: Delivery<T>> {
    delivery: D,
    output: EpochOutput<D::Held>,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T, D: Delivery<T>> DeliverySinkP<T, D> {
    pub(crate) fn new(delivery: D) -> Self {
        DeliverySinkP {
            delivery,
            output: EpochOutput::new(),
            _t: std::marker::PhantomData,
        }
    }
}

impl<T: Send + 'static, D: Delivery<T>> Processor for DeliverySinkP<T, D> {
    type In = Event<T>;
    type Out = ();
    fn is_cooperative(&self) -> bool {
        !D::BLOCKS
    }
    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.output.init(ctx);
        Ok(())
    }
    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<Event<T>>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        if self.output.enabled() {
            while let Some(e) = inbox.poll() {
                let held = self.delivery.hold(e.value);
                self.output.push(held);
            }
            self.output.ask_if_large();
        } else {
            self.delivery.deliver_now(inbox);
        }
        Ok(())
    }
    fn complete<O: Outbox<()>>(&mut self, _: &mut O) -> Result<bool, ProcessorError> {
        let delivery = &mut self.delivery;
        self.output.finish(|items| delivery.deliver(items));
        Ok(true)
    }
    fn save_to_snapshot(
        &mut self,
        snapshot_id: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        self.output.save(snapshot_id, writer)
    }
    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        self.output.restore(entry)
    }
    fn snapshot_commit_finish(&mut self, snapshot_id: u64) -> Result<(), ProcessorError> {
        let delivery = &mut self.delivery;
        self.output
            .commit(snapshot_id, |items| delivery.deliver(items));
        Ok(())
    }
}

/// See [`Sinks::collect`].
pub struct CollectSink<T> {
    target: Collected<T>,
}

impl<T: State> Sink<T> for CollectSink<T> {
    type Processor = CollectP<T>;
    fn name(&self) -> String {
        "collect".into()
    }
    fn create(&self, _ctx: &ProcessorContext) -> CollectP<T> {
        DeliverySinkP::new(ToCollected {
            target: self.target.clone(),
            batch: Vec::new(),
        })
    }
}

/// The processor of [`Sinks::collect`].
pub type CollectP<T> = DeliverySinkP<T, ToCollected<T>>;

/// Appends to a [`Collected`], once per batch under its mutex.
pub struct ToCollected<T> {
    target: Collected<T>,
    batch: Vec<T>,
}

impl<T: State> Delivery<T> for ToCollected<T> {
    type Held = T;
    fn hold(&self, item: T) -> T {
        item
    }
    fn deliver_now(&mut self, inbox: &mut Inbox<Event<T>>) {
        while let Some(e) = inbox.poll() {
            self.batch.push(e.value);
        }
        self.target.items.lock().append(&mut self.batch);
    }
    fn deliver(&mut self, mut items: Vec<T>) {
        self.target.items.lock().append(&mut items);
    }
}

/// See [`Sinks::logger`].
pub struct LoggerSink;

impl<T: Debug + Send + 'static> Sink<T> for LoggerSink {
    type Processor = LoggerP<T>;
    fn name(&self) -> String {
        "logger".into()
    }
    fn parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn create(&self, _ctx: &ProcessorContext) -> LoggerP<T> {
        DeliverySinkP::new(ToStdout)
    }
}

/// The processor of [`Sinks::logger`]; writes to stdout, which may block,
/// so it runs on its own thread. Under exactly-once it holds the lines it
/// will print (so any `Debug` item will do).
pub type LoggerP<T> = DeliverySinkP<T, ToStdout>;

/// Prints each item's `Debug` form as a line; a closed stdout (a pipe to
/// `head`) is not the job's failure.
pub struct ToStdout;

impl<T: Debug> Delivery<T> for ToStdout {
    type Held = String;
    const BLOCKS: bool = true;
    fn hold(&self, item: T) -> String {
        format!("{item:?}")
    }
    fn deliver_now(&mut self, inbox: &mut Inbox<Event<T>>) {
        let mut out = std::io::stdout().lock();
        while let Some(e) = inbox.poll() {
            let _ = writeln!(out, "{:?}", e.value);
        }
    }
    fn deliver(&mut self, lines: Vec<String>) {
        let mut out = std::io::stdout().lock();
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// See [`Sinks::noop`].
pub struct NoopSink {
    count: Arc<AtomicU64>,
}

impl<T: Send + 'static> Sink<T> for NoopSink {
    type Processor = NoopP<T>;
    fn name(&self) -> String {
        "noop".into()
    }
    fn create(&self, _ctx: &ProcessorContext) -> NoopP<T> {
        NoopP {
            count: self.count.clone(),
            _t: std::marker::PhantomData,
        }
    }
}

/// The processor of [`Sinks::noop`].
pub struct NoopP<T> {
    count: Arc<AtomicU64>,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T: Send + 'static> Processor for NoopP<T> {
    type In = Event<T>;
    type Out = ();
    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<Event<T>>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        let n = inbox.len() as u64;
        while inbox.poll().is_some() {}
        self.count.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}
