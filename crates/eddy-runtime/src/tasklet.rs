//! Tasklets: one processor instance with its input queues and its outbox.
//!
//! A tasklet is the unit a worker thread calls. Type erasure happens here and
//! only here: [`ProcessorTasklet`] is generic over the processor, and the
//! worker holds it as a `Box<dyn Tasklet>`, so a worker makes one dynamic call
//! per tasklet call (one batch), never one per item.

use crate::metrics::InstanceMetrics;
use crate::queue::{BatchQueue, Signal};
use crate::routing::Router;
use crate::snapshot::{LoadedSnapshot, SnapshotShared, StatePart};
use eddy_core::{
    Guarantee, Inbox, Msg, Outbox, Processor, ProcessorContext, ProcessorError, SnapshotBarrier,
    SnapshotWriter, Watermark,
};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What one tasklet call achieved; workers back off only when no tasklet
/// made progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Nothing could be done (no input, or the outbox is blocked downstream).
    None,
    /// Some work was done; call again soon.
    Made,
    /// The tasklet has finished and sent `Done` downstream.
    Done,
}

/// A type-erased tasklet, as the workers see it.
pub(crate) trait Tasklet: Send {
    /// Name of the vertex, for errors.
    fn vertex_name(&self) -> &str;
    /// Whether it may share a cooperative worker thread.
    fn is_cooperative(&self) -> bool;
    /// Called once on the thread that runs it, before `call`.
    fn init(&mut self) -> Result<(), ProcessorError>;
    /// Tells the queues (and the processor's waker) which signal to raise
    /// for this tasklet.
    fn bind_signal(&mut self, signal: &Arc<Signal>);
    /// When the tasklet next needs a call though no input arrives
    /// (wall-clock ms since the epoch), as its processor says.
    fn wake_at_ms(&self) -> Option<i64>;
    /// Does a bounded amount of work.
    fn call(&mut self) -> Result<Progress, ProcessorError>;
    /// Releases resources; called once at the end, whatever the outcome.
    fn close(&mut self);
}

/// The output side of one outbound edge of a processor instance.
pub(crate) struct OutputEdge<T> {
    pub(crate) queues: Vec<Arc<BatchQueue<T>>>,
    pub(crate) router: Box<dyn Router<T>>,
    /// Messages routed to each consumer but not yet accepted by its queue.
    pending: Vec<VecDeque<Msg<T>>>,
}

impl<T> OutputEdge<T> {
    pub(crate) fn new(queues: Vec<Arc<BatchQueue<T>>>, router: Box<dyn Router<T>>) -> Self {
        let pending = queues.iter().map(|_| VecDeque::new()).collect();
        OutputEdge {
            queues,
            router,
            pending,
        }
    }

    /// Pushes pending messages; returns whether all went out.
    fn drain(&mut self, pushed: &mut u64) -> bool {
        let mut all = true;
        for (queue, pending) in self.queues.iter().zip(self.pending.iter_mut()) {
            while let Some(msg) = pending.pop_front() {
                match queue.try_push(msg) {
                    Ok(()) => *pushed += 1,
                    Err(msg) => {
                        pending.push_front(msg);
                        all = false;
                        break;
                    }
                }
            }
        }
        all
    }
}

/// Copies a control message (anything but a data batch).
fn copy_control<T>(msg: &Msg<T>) -> Msg<T> {
    match msg {
        Msg::Watermark(w) => Msg::Watermark(*w),
        Msg::Idle => Msg::Idle,
        Msg::Barrier(b) => Msg::Barrier(*b),
        Msg::Done => Msg::Done,
        Msg::Batch(_) => unreachable!("data batches are routed, not copied as control"),
    }
}

/// Most control messages (watermarks, idle markers) an outbox holds between
/// flushes before it refuses more. Watermarks arrive at most once per input
/// message, and the tasklet flushes before every processing call, so a
/// handful is plenty; the bound only catches a processor that offers them in
/// a loop.
const CONTROL_MESSAGES_MAX: usize = 16;

/// The bounded outbox of a tasklet: buffers one batch, then routes it.
pub(crate) struct TaskletOutbox<T> {
    buffer: Vec<T>,
    batch_items_max: usize,
    controls: Vec<Msg<T>>,
    edges: Vec<OutputEdge<T>>,
    metrics: Arc<InstanceMetrics>,
    /// Counts accepted offers and pushed messages, to detect progress.
    activity: u64,
}

impl<T: Clone> TaskletOutbox<T> {
    pub(crate) fn new(
        edges: Vec<OutputEdge<T>>,
        batch_items_max: usize,
        metrics: Arc<InstanceMetrics>,
    ) -> Self {
        TaskletOutbox {
            buffer: Vec::with_capacity(batch_items_max),
            batch_items_max,
            controls: Vec::new(),
            edges,
            metrics,
            activity: 0,
        }
    }

    fn push_control(&mut self, msg: Msg<T>) {
        self.controls.push(msg);
        self.activity += 1;
    }

    /// Routes buffered items and control messages to the queues; returns
    /// whether everything went out (false: a downstream queue is full).
    fn flush(&mut self) -> bool {
        let mut pushed = 0;
        let mut clear = true;
        for e in &mut self.edges {
            clear &= e.drain(&mut pushed);
        }
        if clear && (!self.buffer.is_empty() || !self.controls.is_empty()) {
            if !self.buffer.is_empty() {
                let batch =
                    std::mem::replace(&mut self.buffer, Vec::with_capacity(self.batch_items_max));
                self.metrics.add_out(batch.len());
                if let Some((last, rest)) = self.edges.split_last_mut() {
                    for e in rest {
                        e.router.route(batch.clone(), &mut e.pending);
                    }
                    last.router.route(batch, &mut last.pending);
                }
            }
            for msg in self.controls.drain(..) {
                if let Msg::Watermark(w) = msg {
                    self.metrics.watermark.store(w.0, Ordering::Relaxed);
                }
                for e in &mut self.edges {
                    for p in &mut e.pending {
                        p.push_back(copy_control(&msg));
                    }
                }
            }
            for e in &mut self.edges {
                clear &= e.drain(&mut pushed);
            }
        }
        self.activity += pushed;
        clear
    }
}

impl<T> Outbox<T> for TaskletOutbox<T> {
    #[inline]
    fn offer(&mut self, item: T) -> Result<(), T> {
        if self.buffer.len() >= self.batch_items_max || !self.controls.is_empty() {
            return Err(item);
        }
        self.buffer.push(item);
        self.activity += 1;
        Ok(())
    }

    #[inline]
    fn has_room(&self) -> bool {
        self.buffer.len() < self.batch_items_max && self.controls.is_empty()
    }

    fn offer_watermark(&mut self, watermark: Watermark) -> bool {
        if self.controls.len() >= CONTROL_MESSAGES_MAX {
            return false;
        }
        self.controls.push(Msg::Watermark(watermark));
        self.activity += 1;
        true
    }

    fn offer_idle(&mut self) -> bool {
        if self.controls.len() >= CONTROL_MESSAGES_MAX {
            return false;
        }
        self.controls.push(Msg::Idle);
        self.activity += 1;
        true
    }
}

/// One input queue with its watermark state.
pub(crate) struct InputQueue<T> {
    pub(crate) queue: Arc<BatchQueue<T>>,
    pub(crate) ordinal: usize,
    pub(crate) priority: i32,
    watermark: i64,
    idle: bool,
    done: bool,
    barrier_seen: Option<u64>,
    /// Under exactly-once: the barrier arrived here and not yet on all
    /// inputs, so this input is not read until it has (alignment).
    blocked: bool,
}

impl<T> InputQueue<T> {
    pub(crate) fn new(queue: Arc<BatchQueue<T>>, ordinal: usize, priority: i32) -> Self {
        InputQueue {
            queue,
            ordinal,
            priority,
            watermark: i64::MIN,
            idle: false,
            done: false,
            barrier_seen: None,
            blocked: false,
        }
    }
}

/// The watermark the inputs agree on: the minimum over inputs that are
/// neither idle nor done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coalesced {
    /// The minimum watermark of the active inputs.
    Watermark(i64),
    /// All unfinished inputs are idle.
    Idle,
    /// All inputs are done.
    AllDone,
}

pub(crate) fn coalesce<T>(inputs: &[InputQueue<T>]) -> Coalesced {
    let mut min = None::<i64>;
    let mut any_open = false;
    for q in inputs.iter().filter(|q| !q.done) {
        any_open = true;
        if !q.idle {
            min = Some(min.map_or(q.watermark, |m| m.min(q.watermark)));
        }
    }
    match (any_open, min) {
        (false, _) => Coalesced::AllDone,
        (true, None) => Coalesced::Idle,
        (true, Some(w)) => Coalesced::Watermark(w),
    }
}

/// The states of a processor tasklet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading inputs and calling the processing methods.
    Processing,
    /// Under exactly-once, a tasklet without outputs (a sink) whose inputs
    /// all finished: it waits until a snapshot it saved in this state (an id
    /// above `saved_before`) is durable and committed, and only then goes on
    /// to `complete`. So everything a sink makes visible at its end is
    /// covered by a snapshot, and an execution restarted or failed at any
    /// point of the end restores from one that delivers nothing twice.
    FinalSnapshot { saved_before: u64 },
    /// All inputs done (or a source): calling `complete` until it returns true.
    Completing,
    /// `complete` returned true; waiting for the outbox, then `Done`, to go out.
    Draining,
    /// Finished: `Done` has been accepted by every downstream queue.
    Finished,
    /// A source that injected the barrier of a terminal snapshot: it emits
    /// nothing more, and the job stops once the snapshot is durable.
    Stopped,
}

/// How a tasklet takes part in snapshots.
pub(crate) struct SnapshotRole {
    /// The tasklet's index in its execution.
    pub(crate) index: usize,
    pub(crate) shared: Arc<SnapshotShared>,
    /// The snapshot the execution starts from.
    pub(crate) restore: Option<Arc<LoadedSnapshot>>,
}

/// A tasklet running one processor instance.
pub(crate) struct ProcessorTasklet<P: Processor> {
    processor: P,
    context: ProcessorContext,
    inputs: Vec<InputQueue<P::In>>,
    next_input: usize,
    inbox: Inbox<P::In>,
    inbox_ordinal: usize,
    outbox: TaskletOutbox<P::Out>,
    state: State,
    /// The coalesced watermark the processor still has to take.
    pending_watermark: Option<Watermark>,
    /// The last coalesced watermark handed on, so watermarks never go back.
    last_watermark: i64,
    idle_forwarded: bool,
    edges_to_complete: VecDeque<usize>,
    /// Messages taken from the input queues: consuming input is progress
    /// even for a sink that emits nothing.
    messages_taken: u64,
    metrics: Arc<InstanceMetrics>,
    snapshots: Option<SnapshotRole>,
    /// The barrier being aligned: arrived on some inputs, not yet on all.
    pending_barrier: Option<SnapshotBarrier>,
    /// The latest snapshot this instance saved (or was restored from).
    last_saved: u64,
    /// The latest snapshot whose commit this instance has run.
    last_committed: u64,
    /// Counted in the execution's `loading` while it reads inputs of an
    /// earlier priority (a hash join's side input).
    loading: bool,
}

impl<P: Processor> ProcessorTasklet<P> {
    pub(crate) fn new(
        processor: P,
        context: ProcessorContext,
        mut inputs: Vec<InputQueue<P::In>>,
        outbox: TaskletOutbox<P::Out>,
        metrics: Arc<InstanceMetrics>,
        snapshots: Option<SnapshotRole>,
    ) -> Self {
        inputs.sort_by_key(|q| q.priority);
        let start = snapshots
            .as_ref()
            .map_or(0, |s| s.shared.committed.load(Ordering::Acquire));
        let state = if inputs.is_empty() {
            State::Completing
        } else {
            State::Processing
        };
        let mut tasklet = ProcessorTasklet {
            processor,
            context,
            inputs,
            next_input: 0,
            inbox: Inbox::default(),
            inbox_ordinal: 0,
            outbox,
            state,
            pending_watermark: None,
            last_watermark: i64::MIN,
            idle_forwarded: false,
            edges_to_complete: VecDeque::new(),
            messages_taken: 0,
            metrics,
            snapshots,
            pending_barrier: None,
            last_saved: start,
            last_committed: start,
            loading: false,
        };
        tasklet.loading = tasklet.loading_priority_inputs();
        if let (true, Some(role)) = (tasklet.loading, &tasklet.snapshots) {
            role.shared.loading.fetch_add(1, Ordering::AcqRel);
        }
        tasklet
    }

    /// Pops one message from the inputs: inputs of the lowest unfinished
    /// priority first (a hash join's side input before its stream), round
    /// robin among those.
    /// Inputs blocked at a barrier are skipped.
    fn poll_input(&mut self) -> Option<(usize, Msg<P::In>)> {
        let priority = self.inputs.iter().find(|q| !q.done)?.priority;
        let n = self.inputs.len();
        for k in 0..n {
            let i = (self.next_input + k) % n;
            let q = &self.inputs[i];
            if q.done || q.blocked || q.priority != priority {
                continue;
            }
            if let Some(msg) = q.queue.pop() {
                self.next_input = i + 1;
                return Some((i, msg));
            }
        }
        None
    }

    /// Whether inputs of an earlier priority are still being read: no
    /// snapshot can be taken meanwhile, since the barriers on the later
    /// inputs sit behind data that is not read yet.
    fn loading_priority_inputs(&self) -> bool {
        let first_open = self.inputs.iter().find(|q| !q.done).map(|q| q.priority);
        let last = self.inputs.iter().map(|q| q.priority).max();
        first_open.is_some_and(|p| Some(p) != last)
    }

    fn recoalesce(&mut self) {
        match coalesce(&self.inputs) {
            Coalesced::Watermark(w) if w > self.last_watermark => {
                self.last_watermark = w;
                self.pending_watermark = Some(Watermark(w));
                self.idle_forwarded = false;
            }
            Coalesced::Idle if !self.idle_forwarded => {
                self.idle_forwarded = true;
                self.outbox.push_control(Msg::Idle);
            }
            _ => {}
        }
    }

    fn on_message(&mut self, i: usize, msg: Msg<P::In>) -> Result<(), ProcessorError> {
        match msg {
            Msg::Batch(items) => {
                self.metrics.add_in(items.len());
                if self.inputs[i].idle {
                    self.inputs[i].idle = false;
                    self.recoalesce();
                }
                self.inbox.fill(items);
                self.inbox_ordinal = self.inputs[i].ordinal;
                self.processor
                    .process(self.inbox_ordinal, &mut self.inbox, &mut self.outbox)?;
            }
            Msg::Watermark(w) => {
                let q = &mut self.inputs[i];
                assert!(
                    w.0 >= q.watermark,
                    "watermark went back on an input of '{}': {} after {}",
                    self.context.vertex_name,
                    w.0,
                    q.watermark
                );
                q.watermark = w.0;
                q.idle = false;
                self.recoalesce();
            }
            Msg::Idle => {
                self.inputs[i].idle = true;
                self.recoalesce();
            }
            Msg::Done => {
                self.inputs[i].done = true;
                let ordinal = self.inputs[i].ordinal;
                if self.inputs.iter().all(|q| q.ordinal != ordinal || q.done) {
                    self.edges_to_complete.push_back(ordinal);
                }
                if self.loading && !self.loading_priority_inputs() {
                    self.loading = false;
                    if let Some(role) = &self.snapshots {
                        role.shared.loading.fetch_sub(1, Ordering::AcqRel);
                    }
                }
                self.recoalesce();
                // A finished input counts as having delivered every barrier.
                self.try_complete_barrier()?;
            }
            Msg::Barrier(barrier) => {
                let q = &mut self.inputs[i];
                q.barrier_seen = Some(barrier.snapshot_id);
                q.blocked = self
                    .snapshots
                    .as_ref()
                    .is_some_and(|s| s.shared.guarantee == Guarantee::ExactlyOnce);
                self.pending_barrier = Some(barrier);
                self.try_complete_barrier()?;
            }
        }
        Ok(())
    }

    /// Saves the state and forwards the pending barrier once every
    /// unfinished input has delivered it. Under at-least-once the inputs that
    /// delivered it kept flowing meanwhile; under exactly-once they were
    /// blocked, and are released now.
    fn try_complete_barrier(&mut self) -> Result<(), ProcessorError> {
        let Some(barrier) = self.pending_barrier else {
            return Ok(());
        };
        let complete = self
            .inputs
            .iter()
            .all(|q| q.done || q.barrier_seen == Some(barrier.snapshot_id));
        if complete {
            self.pending_barrier = None;
            for q in &mut self.inputs {
                q.blocked = false;
            }
            self.save_and_forward(barrier)?;
        }
        Ok(())
    }

    /// Saves the processor's state for `barrier`'s snapshot, hands it to the
    /// coordinator and emits the barrier after everything emitted so far.
    fn save_and_forward(&mut self, barrier: SnapshotBarrier) -> Result<(), ProcessorError> {
        if let Some(role) = &self.snapshots {
            let part = save_part(&mut self.processor, &self.context, barrier.snapshot_id)?;
            role.shared.ack(role.index, barrier.snapshot_id, part);
        }
        self.last_saved = barrier.snapshot_id;
        self.outbox.push_control(Msg::Barrier(barrier));
        Ok(())
    }

    /// A tasklet that reads no (more) input starts snapshots itself: a
    /// source, or a processor whose inputs have all finished.
    fn inject_requested_barrier(&mut self) -> Result<(), ProcessorError> {
        let Some(role) = &self.snapshots else {
            return Ok(());
        };
        let requested = role.shared.requested.load(Ordering::Acquire);
        if requested <= self.last_saved {
            return Ok(());
        }
        let is_terminal = role.shared.requested_terminal.load(Ordering::Acquire);
        self.save_and_forward(SnapshotBarrier {
            snapshot_id: requested,
            is_terminal,
        })?;
        if is_terminal && self.inputs.is_empty() {
            self.state = State::Stopped;
        }
        Ok(())
    }

    /// Runs the commit phase of snapshots that became durable.
    fn commit_durable_snapshots(&mut self) -> Result<(), ProcessorError> {
        let Some(role) = &self.snapshots else {
            return Ok(());
        };
        let committed = role.shared.committed.load(Ordering::Acquire);
        if committed > self.last_committed {
            self.last_committed = committed;
            self.processor.snapshot_commit_finish(committed)?;
            role.shared.commit_done(role.index, committed);
        }
        Ok(())
    }

    /// Moves on once every input has finished: to `complete`, or first to a
    /// final snapshot for a sink under exactly-once. A sink's `complete`
    /// delivers what it still holds; without a snapshot covering that
    /// output, a restart or failure before the job ends would restore an
    /// older snapshot and deliver it again. The snapshot is asked for at
    /// once rather than at the end of the interval.
    fn inputs_finished(&mut self) {
        let exactly_once = self
            .snapshots
            .as_ref()
            .is_some_and(|s| s.shared.guarantee == Guarantee::ExactlyOnce);
        self.state = if exactly_once && self.outbox.edges.is_empty() {
            self.context.snapshot_requester.request();
            State::FinalSnapshot {
                saved_before: self.last_saved,
            }
        } else {
            State::Completing
        };
    }

    fn step_processing(&mut self) -> Result<(), ProcessorError> {
        if let Some(w) = self.pending_watermark {
            if self.processor.try_process_watermark(w, &mut self.outbox)? {
                self.pending_watermark = None;
            }
            return Ok(());
        }
        if !self.inbox.is_empty() {
            return self
                .processor
                .process(self.inbox_ordinal, &mut self.inbox, &mut self.outbox);
        }
        if let Some(&ordinal) = self.edges_to_complete.front() {
            if self.processor.complete_edge(ordinal, &mut self.outbox)? {
                self.edges_to_complete.pop_front();
            }
            return Ok(());
        }
        if self.inputs.iter().all(|q| q.done) {
            self.inputs_finished();
            return Ok(());
        }
        match self.poll_input() {
            Some((i, msg)) => {
                self.messages_taken += 1;
                self.on_message(i, msg)
            }
            None => self.processor.try_process(&mut self.outbox).map(|_| ()),
        }
    }
}

impl<P: Processor> Tasklet for ProcessorTasklet<P> {
    fn vertex_name(&self) -> &str {
        &self.context.vertex_name
    }

    fn is_cooperative(&self) -> bool {
        self.processor.is_cooperative()
    }

    fn init(&mut self) -> Result<(), ProcessorError> {
        self.processor.init(&self.context)?;
        let Some(snapshot) = self.snapshots.as_ref().and_then(|r| r.restore.clone()) else {
            return Ok(());
        };
        let processor = &mut self.processor;
        snapshot.for_each_entry(
            &self.context.vertex_name,
            self.context.instance,
            self.context.parallelism,
            |entry| processor.restore_from_snapshot(entry),
        )?;
        self.processor.finish_snapshot_restore()?;
        // The snapshot is complete: its commit phase may not have run
        // before the failure, so run it (sinks skip what they committed).
        self.processor.snapshot_commit_finish(snapshot.id)?;
        if let Some(role) = &self.snapshots {
            role.shared.restored();
        }
        Ok(())
    }

    fn bind_signal(&mut self, signal: &Arc<Signal>) {
        let raise = signal.clone();
        self.context.waker.bind(Arc::new(move || raise.raise()));
        for input in &self.inputs {
            input.queue.bind_consumer(signal);
        }
        for edge in &self.outbox.edges {
            for queue in &edge.queues {
                queue.bind_producer(signal);
            }
        }
    }

    fn wake_at_ms(&self) -> Option<i64> {
        self.processor.wake_at_ms()
    }

    fn call(&mut self) -> Result<Progress, ProcessorError> {
        let activity_before = self.outbox.activity;
        let taken_before = self.messages_taken;
        let inbox_before = self.inbox.len();
        let state_before = self.state;
        self.commit_durable_snapshots()?;
        if self.outbox.flush() {
            match self.state {
                State::Processing => self.step_processing()?,
                State::FinalSnapshot { saved_before } => {
                    self.inject_requested_barrier()?;
                    // A snapshot above `saved_before` completes only with a
                    // part this tasklet saved here, with all its input: it
                    // has not finished, and had saved nothing above that.
                    if self.last_committed > saved_before {
                        self.state = State::Completing;
                    }
                }
                State::Completing => {
                    self.inject_requested_barrier()?;
                    if self.state == State::Completing
                        && self.processor.complete(&mut self.outbox)?
                    {
                        self.outbox.push_control(Msg::Done);
                        self.state = State::Draining;
                    }
                }
                State::Draining | State::Finished => {
                    self.state = State::Finished;
                    if let Some(role) = &self.snapshots {
                        // Stands in for this instance in later snapshots, so
                        // that a finished source is not replayed.
                        let part = save_part(&mut self.processor, &self.context, self.last_saved)?;
                        role.shared.finished(role.index, part);
                    }
                    return Ok(Progress::Done);
                }
                State::Stopped => {}
            }
            // Hand the output on at once: the consumer may be waiting for it.
            self.outbox.flush();
        }
        let progressed = self.outbox.activity != activity_before
            || self.messages_taken != taken_before
            || self.inbox.len() != inbox_before
            || self.state != state_before;
        Ok(if progressed {
            Progress::Made
        } else {
            Progress::None
        })
    }

    fn close(&mut self) {
        // An error from close has no job left to fail; the job's outcome is
        // already decided by then.
        let _ = self.processor.close();
    }
}

fn save_part<P: Processor>(
    processor: &mut P,
    context: &ProcessorContext,
    snapshot_id: u64,
) -> Result<StatePart, ProcessorError> {
    let mut writer = SnapshotWriter::new();
    processor.save_to_snapshot(snapshot_id, &mut writer)?;
    let (bytes, entries) = writer.take();
    Ok(StatePart {
        vertex: context.vertex_name.clone(),
        instance: context.instance,
        entries,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueueLimits;

    fn input(ordinal: usize) -> InputQueue<u64> {
        InputQueue::new(
            Arc::new(BatchQueue::new(&QueueLimits::default())),
            ordinal,
            0,
        )
    }

    /// Consumes everything and emits nothing.
    struct Drain;

    impl Processor for Drain {
        type In = u64;
        type Out = ();
        fn process<O: Outbox<()>>(
            &mut self,
            _: usize,
            inbox: &mut Inbox<u64>,
            _: &mut O,
        ) -> Result<(), ProcessorError> {
            while inbox.poll().is_some() {}
            Ok(())
        }
    }

    #[test]
    fn when_sink_consumes_a_batch_then_the_call_made_progress() {
        let queue = Arc::new(BatchQueue::new(&QueueLimits::default()));
        let metrics = Arc::new(InstanceMetrics::new());
        let mut tasklet = ProcessorTasklet::new(
            Drain,
            ProcessorContext::standalone("drain"),
            vec![InputQueue::new(queue.clone(), 0, 0)],
            TaskletOutbox::new(Vec::new(), 16, metrics.clone()),
            metrics,
            None,
        );
        assert_eq!(tasklet.call().unwrap(), Progress::None, "nothing to do yet");
        assert!(queue.try_push(Msg::Batch(vec![1, 2, 3])).is_ok());
        // A worker parks when no call progressed: consuming must count.
        assert_eq!(tasklet.call().unwrap(), Progress::Made);
        assert_eq!(tasklet.call().unwrap(), Progress::None);
        assert!(queue.try_push(Msg::Done).is_ok());
        while tasklet.call().unwrap() != Progress::Done {}
    }

    /// Records the watermarks it is given.
    struct Recorder(Arc<parking_lot::Mutex<Vec<i64>>>);

    impl Processor for Recorder {
        type In = u64;
        type Out = ();
        fn process<O: Outbox<()>>(
            &mut self,
            _: usize,
            inbox: &mut Inbox<u64>,
            _: &mut O,
        ) -> Result<(), ProcessorError> {
            while inbox.poll().is_some() {}
            Ok(())
        }
        fn try_process_watermark<O: Outbox<()>>(
            &mut self,
            watermark: Watermark,
            _: &mut O,
        ) -> Result<bool, ProcessorError> {
            self.0.lock().push(watermark.0);
            Ok(true)
        }
    }

    proptest::proptest! {
        /// Watermark laws: what a tasklet hands on never goes back, never
        /// passes the minimum of its active inputs, and reaches that
        /// minimum once all inputs have spoken.
        #[test]
        fn when_inputs_send_random_watermarks_then_coalesced_ones_obey_the_laws(
            steps in proptest::collection::vec((0usize..3, 0i64..20, proptest::bool::weighted(0.1)), 1..60)
        ) {
            let queues: Vec<_> = (0..3).map(|_| Arc::new(BatchQueue::new(&QueueLimits::default()))).collect();
            let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
            let metrics = Arc::new(InstanceMetrics::new());
            let mut tasklet = ProcessorTasklet::new(
                Recorder(seen.clone()),
                ProcessorContext::standalone("recorder"),
                queues.iter().map(|q| InputQueue::new(q.clone(), 0, 0)).collect(),
                TaskletOutbox::new(Vec::new(), 16, metrics.clone()),
                metrics,
                None,
            );
            let mut current = [i64::MIN; 3];
            let mut idle = [false; 3];
            for (input, advance, go_idle) in steps {
                if go_idle {
                    idle[input] = true;
                    assert!(queues[input].try_push(Msg::Idle).is_ok());
                } else {
                    let w = if current[input] == i64::MIN { advance } else { current[input] + advance };
                    current[input] = w;
                    idle[input] = false;
                    assert!(queues[input].try_push(Msg::Watermark(Watermark(w))).is_ok());
                }
                let before = seen.lock().len();
                let last_before = seen.lock().last().copied().unwrap_or(i64::MIN);
                for _ in 0..8 {
                    tasklet.call().unwrap();
                }
                let seen = seen.lock();
                let new: Vec<i64> = seen[before..].to_vec();
                // The minimum over inputs that are not idle.
                let active_min = (0..3).filter(|&i| !idle[i]).map(|i| current[i]).min();
                match active_min {
                    Some(m) if m > last_before => proptest::prop_assert_eq!(new, vec![m]),
                    _ => proptest::prop_assert!(new.is_empty(), "went back or passed the minimum: {:?}", new),
                }
            }
        }
    }

    #[test]
    fn when_one_input_idle_then_watermark_is_min_of_others() {
        let mut inputs = vec![input(0), input(0), input(0)];
        inputs[0].watermark = 10;
        inputs[1].watermark = 5;
        inputs[2].watermark = 7;
        assert_eq!(coalesce(&inputs), Coalesced::Watermark(5));
        inputs[1].idle = true;
        assert_eq!(coalesce(&inputs), Coalesced::Watermark(7));
        inputs[0].idle = true;
        inputs[2].done = true;
        assert_eq!(coalesce(&inputs), Coalesced::Idle);
        inputs[0].done = true;
        inputs[1].done = true;
        assert_eq!(coalesce(&inputs), Coalesced::AllDone);
    }
}
