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
        CollectP {
            target: self.target.clone(),
            batch: Vec::new(),
            output: EpochOutput::new(),
        }
    }
}

/// The processor of [`Sinks::collect`].
pub struct CollectP<T> {
    target: Collected<T>,
    batch: Vec<T>,
    output: EpochOutput<T>,
}

impl<T: State> Processor for CollectP<T> {
    type In = Event<T>;
    type Out = ();
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
                self.output.push(e.value);
            }
            return Ok(());
        }
        while let Some(e) = inbox.poll() {
            self.batch.push(e.value);
        }
        self.target.items.lock().append(&mut self.batch);
        Ok(())
    }
    fn complete<O: Outbox<()>>(&mut self, _: &mut O) -> Result<bool, ProcessorError> {
        let target = &self.target;
        self.output
            .finish(|mut items| target.items.lock().append(&mut items));
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
        let target = &self.target;
        self.output.commit(snapshot_id, |mut items| {
            target.items.lock().append(&mut items)
        });
        Ok(())
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
        LoggerP {
            output: EpochOutput::new(),
            _t: std::marker::PhantomData,
        }
    }
}

/// The processor of [`Sinks::logger`]; writes to stdout, which may block,
/// so it runs on its own thread. Under exactly-once it holds the lines it
/// will print (so any `Debug` item will do).
pub struct LoggerP<T> {
    output: EpochOutput<String>,
    _t: std::marker::PhantomData<fn(T)>,
}

/// Prints lines; a closed stdout (a pipe to `head`) is not the job's
/// failure.
fn print_lines(lines: Vec<String>) {
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
}

impl<T: Debug + Send + 'static> Processor for LoggerP<T> {
    type In = Event<T>;
    type Out = ();
    fn is_cooperative(&self) -> bool {
        false
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
                self.output.push(format!("{:?}", e.value));
            }
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        while let Some(e) = inbox.poll() {
            // A closed stdout (a pipe to `head`) is not the job's failure.
            let _ = writeln!(out, "{:?}", e.value);
        }
        Ok(())
    }
    fn complete<O: Outbox<()>>(&mut self, _: &mut O) -> Result<bool, ProcessorError> {
        self.output.finish(print_lines);
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
        self.output.commit(snapshot_id, print_lines);
        Ok(())
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
