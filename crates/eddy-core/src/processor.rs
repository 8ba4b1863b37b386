//! The `Processor` contract: the unit of computation the runtime executes.

use crate::snapshot::{Guarantee, SnapshotEntry, SnapshotWriter};
use crate::{ProcessorError, Watermark};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A single-threaded, non-blocking unit of computation: one instance of a
/// vertex of the DAG.
///
/// # The calling contract
///
/// The runtime wraps each processor instance in a *tasklet* and calls it from
/// a worker thread that serves many tasklets in turn. Hence:
///
/// * **No call may block.** A call does a bounded amount of work (roughly, at
///   most one inbox of items or one outbox of output) and returns. A processor
///   that must block (file or network I/O without a non-blocking API) says so
///   through [`is_cooperative`](Processor::is_cooperative) returning `false`,
///   and then gets a thread of its own.
/// * **Backpressure through the outbox.** [`Outbox::offer`] hands the item
///   back when the outbox is full. The processor must then keep that item (or
///   leave its input in the inbox) and return; the runtime calls it again once
///   the outbox has been drained downstream. Methods that return `bool` return
///   `true` for "done" and `false` for "call me again".
/// * **Order of calls.** [`init`](Processor::init) once; then, repeatedly and
///   in any interleaving that respects the order of the input streams:
///   [`process`](Processor::process) with a non-empty inbox,
///   [`try_process_watermark`](Processor::try_process_watermark) when the
///   coalesced input watermark advanced, [`try_process`](Processor::try_process)
///   on every round in which there was no input; then
///   [`complete_edge`](Processor::complete_edge) for each input ordinal that
///   finished, and [`complete`](Processor::complete) until it returns `true`
///   once all inputs finished (a source, having no inputs, is completed from
///   the start: its `complete` emits the data, and returns `true` only when a
///   batch source is exhausted; a streaming source never returns `true`). Then
///   [`close`](Processor::close), also after a failure or cancellation.
/// * **Single-threaded.** The runtime never calls one instance from two
///   threads at once, but may move it between calls; hence `Send`.
///
/// # Snapshots
///
/// In a job with a [`Guarantee`] other than `None`, the runtime calls
/// [`save_to_snapshot`](Processor::save_to_snapshot) when a snapshot barrier
/// has arrived on all inputs (a source: when the snapshot starts), and once
/// more when the processor has finished, so that a finished source is not
/// replayed. Once every processor has saved and the snapshot is durable, it
/// calls [`snapshot_commit_finish`](Processor::snapshot_commit_finish): the
/// second phase of a two-phase commit, where sinks make the snapshot's output
/// visible. Under [`Guarantee::ExactlyOnce`], a processor without outputs
/// (a sink) whose inputs have all finished is given
/// [`complete`](Processor::complete) only once a snapshot it saved after its
/// input ended is durable and committed: the runtime asks for that final
/// snapshot at once. So a sink holds nothing uncommitted when it completes,
/// and a job restarted or failed while it ends delivers nothing twice. A job
/// started from a snapshot gets
/// [`restore_from_snapshot`](Processor::restore_from_snapshot) for each entry
/// meant for the instance, after `init` and before any other call, then
/// [`finish_snapshot_restore`](Processor::finish_snapshot_restore).
///
/// A processor that returns an error fails its job with that error, naming the
/// vertex. A panic does the same: the runtime catches it.
pub trait Processor: Send + 'static {
    /// The type of the items it receives.
    type In: Send + 'static;
    /// The type of the items it emits. `Clone` so that one output can feed
    /// several downstream edges and broadcast edges.
    type Out: Clone + Send + 'static;

    /// Called once before any processing call.
    fn init(&mut self, _ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        Ok(())
    }

    /// Checks the processor's settings against the job's (its guarantee,
    /// its snapshot interval) when the job is submitted: an error refuses
    /// the submission, naming the stage.
    fn validate(&self, _ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        Ok(())
    }

    /// `false` if this processor blocks in its calls and so needs a thread of
    /// its own instead of a share of a cooperative worker.
    fn is_cooperative(&self) -> bool {
        true
    }

    /// Processes items from the inbox, which holds items of input `ordinal`.
    /// Items that are taken out of the inbox are processed; the ones left in
    /// it are offered again in the next call. Return when the outbox is full.
    fn process<O: Outbox<Self::Out>>(
        &mut self,
        ordinal: usize,
        inbox: &mut Inbox<Self::In>,
        outbox: &mut O,
    ) -> Result<(), ProcessorError>;

    /// Handles an advance of the coalesced input watermark. The default
    /// forwards it. Returns `false` to be called again with the same
    /// watermark (when the outbox filled up while emitting).
    fn try_process_watermark<O: Outbox<Self::Out>>(
        &mut self,
        watermark: Watermark,
        outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        Ok(outbox.offer_watermark(watermark))
    }

    /// When the processor next needs a call though no input arrives, as
    /// wall-clock milliseconds since the epoch: the next item a rate-limited
    /// source is due to emit, a timer. A worker whose processors have
    /// nothing to do sleeps until the earliest such time, new input, or a
    /// short safety timer, whichever comes first; `None` (the default)
    /// leaves it to input and the timer. Called only after a call that made
    /// no progress, so it may be approximate but must not be late.
    fn wake_at_ms(&self) -> Option<i64> {
        None
    }

    /// Called in every round in which the processor got no input: the place
    /// for timers and wall-clock work (early window results, idle timeouts).
    /// Returns `false` to be called again before any input.
    fn try_process<O: Outbox<Self::Out>>(
        &mut self,
        _outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        Ok(true)
    }

    /// Called when input `ordinal` has finished. Returns `false` to be called
    /// again.
    fn complete_edge<O: Outbox<Self::Out>>(
        &mut self,
        _ordinal: usize,
        _outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        Ok(true)
    }

    /// Called when all inputs have finished (from the start for a source;
    /// for a sink under exactly-once, after its final snapshot committed: see
    /// the trait docs). Returns `true` when the processor has emitted
    /// everything it will.
    fn complete<O: Outbox<Self::Out>>(&mut self, _outbox: &mut O) -> Result<bool, ProcessorError> {
        Ok(true)
    }

    /// Saves the state as of the barrier of snapshot `snapshot_id` (or, once,
    /// as the processor finishes). Stateless processors keep the default.
    fn save_to_snapshot(
        &mut self,
        _snapshot_id: u64,
        _writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }

    /// Takes one entry of the snapshot the job starts from: keyed entries of
    /// the partitions this instance owns, and all broadcast entries.
    fn restore_from_snapshot(&mut self, _entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        Ok(())
    }

    /// Called after the last restored entry.
    fn finish_snapshot_restore(&mut self) -> Result<(), ProcessorError> {
        Ok(())
    }

    /// Snapshot `snapshot_id` is complete and durable: commit what was
    /// prepared when it was saved (sinks make its output visible).
    fn snapshot_commit_finish(&mut self, _snapshot_id: u64) -> Result<(), ProcessorError> {
        Ok(())
    }

    /// Called once at the end, also after a failure or cancellation: release
    /// resources here.
    fn close(&mut self) -> Result<(), ProcessorError> {
        Ok(())
    }
}

/// The input of one processing call: items of one input, in order.
///
/// Items taken out with [`poll`](Inbox::poll) count as processed; the rest
/// stay for the next call.
#[derive(Debug)]
pub struct Inbox<T> {
    items: std::vec::IntoIter<T>,
}

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Inbox {
            items: Vec::new().into_iter(),
        }
    }
}

impl<T> Inbox<T> {
    /// An inbox holding `items`.
    pub fn from_vec(items: Vec<T>) -> Self {
        Inbox {
            items: items.into_iter(),
        }
    }

    /// Replaces the (drained) content with a new batch.
    pub fn fill(&mut self, items: Vec<T>) {
        debug_assert!(self.is_empty(), "an inbox is refilled only when drained");
        self.items = items.into_iter();
    }

    /// Takes the next item.
    #[inline]
    pub fn poll(&mut self) -> Option<T> {
        self.items.next()
    }

    /// The next item, without taking it.
    #[inline]
    pub fn peek(&self) -> Option<&T> {
        self.items.as_slice().first()
    }

    /// Number of items left.
    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether all items were taken.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items.len() == 0
    }
}

/// Where a processor puts its output: bounded, so that a slow consumer slows
/// its producers down instead of letting memory grow.
pub trait Outbox<T> {
    /// Offers an item. `Err(item)` hands it back when the outbox is full: keep
    /// it, return from the processing method, and offer it again in the next
    /// call.
    #[must_use = "a full outbox hands the item back: keep it and return"]
    fn offer(&mut self, item: T) -> Result<(), T>;

    /// Whether the next [`offer`](Outbox::offer) will be accepted.
    fn has_room(&self) -> bool;

    /// Offers an item right after [`has_room`](Outbox::has_room) said there
    /// is room, which promises that this one offer is accepted: the usual
    /// loop is `while outbox.has_room() { …; outbox.offer_granted(item) }`.
    ///
    /// # Panics
    ///
    /// If the outbox refuses the item after all: a broken outbox, whose
    /// `has_room` promised what `offer` did not keep.
    fn offer_granted(&mut self, item: T) {
        if self.offer(item).is_err() {
            panic!("the outbox refused an offer after has_room promised room: a bug in the outbox");
        }
    }

    /// Offers a watermark, emitted after all items offered before it.
    /// Returns `false` when it was not accepted (outbox full): call again.
    #[must_use = "a full outbox refuses the watermark: return and offer it again"]
    fn offer_watermark(&mut self, watermark: Watermark) -> bool;

    /// Tells consumers this output has no data for now, so that their
    /// watermark does not wait for it. Returns `false` when not accepted.
    #[must_use = "a full outbox refuses the marker: return and offer it again"]
    fn offer_idle(&mut self) -> bool;
}

/// A simple bounded outbox over vectors, for tests, harnesses and processors
/// that nest other processors.
#[derive(Debug)]
pub struct VecOutbox<T> {
    /// Items offered, in order.
    pub items: Vec<T>,
    /// Watermarks offered, with the number of items offered before each.
    pub watermarks: Vec<(usize, Watermark)>,
    /// Number of idle markers offered.
    pub idle_markers: usize,
    capacity: usize,
}

impl<T> VecOutbox<T> {
    /// An outbox that accepts up to `capacity` items before it is drained.
    pub fn with_capacity(capacity: usize) -> Self {
        VecOutbox {
            items: Vec::with_capacity(capacity.min(4096)),
            watermarks: Vec::new(),
            idle_markers: 0,
            capacity,
        }
    }

    /// Changes the capacity (harnesses vary it to provoke backpressure).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
    }

    /// Number of items accepted and not yet drained.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no items are held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<T> Outbox<T> for VecOutbox<T> {
    fn offer(&mut self, item: T) -> Result<(), T> {
        if self.items.len() >= self.capacity {
            return Err(item);
        }
        self.items.push(item);
        Ok(())
    }

    fn has_room(&self) -> bool {
        self.items.len() < self.capacity
    }

    fn offer_watermark(&mut self, watermark: Watermark) -> bool {
        if self.items.len() >= self.capacity {
            return false;
        }
        self.watermarks.push((self.items.len(), watermark));
        true
    }

    fn offer_idle(&mut self) -> bool {
        self.idle_markers += 1;
        true
    }
}

/// What a processor instance learns about its place in the job.
#[derive(Debug, Clone)]
pub struct ProcessorContext {
    /// Name of the vertex (the pipeline stage).
    pub vertex_name: String,
    /// Index of this instance among the vertex's instances.
    pub instance: usize,
    /// Number of instances of the vertex.
    pub parallelism: usize,
    /// Name of the job.
    pub job_name: String,
    /// Counter of late events this instance dropped; exposed in the vertex
    /// metrics. Processors add to it with a relaxed atomic add (late events
    /// are rare, so this is off the hot path).
    pub late_events: Arc<AtomicU64>,
    /// The job's processing guarantee: sinks commit in two phases under
    /// `ExactlyOnce`.
    pub guarantee: Guarantee,
    /// Time between the job's snapshots, when it takes any: a transactional
    /// sink checks it against its transaction timeout.
    pub snapshot_interval: Option<std::time::Duration>,
    /// Asks the job for a snapshot before its interval is up.
    pub snapshot_requester: SnapshotRequester,
    /// Wakes the thread that runs this instance: for a processor fed by a
    /// thread of its own (a Kafka consumer), which calls it after handing
    /// over data so that a sleeping worker does not wait for its timer.
    pub waker: Waker,
    /// Where items that a fallible stage could not process go.
    pub dead_letters: crate::DeadLetters,
    /// What a fallible stage does with such an item, unless the stage says.
    pub error_policy: crate::ErrorPolicy,
}

/// Wakes the worker thread of a processor instance from another thread.
///
/// A worker with nothing to do sleeps until new input, a processor's
/// deadline ([`Processor::wake_at_ms`]) or a short timer; queues wake it on
/// data and room, and this wakes it for input that arrives any other way.
/// Cheap to clone; waking before the thread is known, or while it runs,
/// does no harm (the thread's next sleep returns at once).
#[derive(Clone, Default)]
pub struct Waker(Arc<std::sync::OnceLock<Arc<dyn Fn() + Send + Sync>>>);

impl Waker {
    /// Wakes the instance's thread and marks the instance as having work,
    /// once the runtime has bound it.
    pub fn wake(&self) {
        if let Some(wake) = self.0.get() {
            wake();
        }
    }

    /// Records how to wake the instance (the runtime's side, once per
    /// instance: it runs on one thread for its whole life, so the first
    /// binding stays).
    pub fn bind(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        self.0.get_or_init(|| wake);
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Waker(bound)"
        } else {
            "Waker(unbound)"
        })
    }
}

/// Asks a job for its next snapshot now rather than at the end of the
/// interval. A two-phase-commit sink holds its output until a snapshot
/// completes; when what it holds grows large it asks, so that memory stays
/// bounded however fast the input comes. Cheap to clone; asking while a
/// request is pending does nothing more.
#[derive(Clone, Default)]
pub struct SnapshotRequester(Option<Arc<dyn Fn() + Send + Sync>>);

impl SnapshotRequester {
    /// A requester that calls `request` (the runtime's side).
    pub fn new(request: impl Fn() + Send + Sync + 'static) -> Self {
        SnapshotRequester(Some(Arc::new(request)))
    }

    /// Asks for a snapshot; does nothing in a job without snapshots or
    /// outside a job.
    pub fn request(&self) {
        if let Some(request) = &self.0 {
            request();
        }
    }
}

impl std::fmt::Debug for SnapshotRequester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "SnapshotRequester(job)"
        } else {
            "SnapshotRequester(none)"
        })
    }
}

impl ProcessorContext {
    /// A context for running a processor outside a job (tests, harnesses).
    pub fn standalone(vertex_name: &str) -> Self {
        ProcessorContext {
            vertex_name: vertex_name.to_string(),
            instance: 0,
            parallelism: 1,
            job_name: "standalone".to_string(),
            late_events: Arc::new(AtomicU64::new(0)),
            guarantee: Guarantee::None,
            snapshot_interval: None,
            snapshot_requester: SnapshotRequester::default(),
            waker: Waker::default(),
            dead_letters: crate::DeadLetters::log(),
            error_policy: crate::ErrorPolicy::Fail,
        }
    }

    /// Counts `n` late events.
    pub fn count_late(&self, n: u64) {
        self.late_events.fetch_add(n, Ordering::Relaxed);
    }
}
