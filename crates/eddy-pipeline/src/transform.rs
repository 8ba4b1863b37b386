//! Stateless transforms (`map`, `filter`, `flat_map`, `peek`, timestamps),
//! fused into the processor before them.
//!
//! A chain of transforms is one generic type built up by the stage methods,
//! like an iterator adapter, and runs inside the upstream processor's
//! [`Fused`] wrapper: no queue, no allocation and no dynamic call between a
//! source and its `map` and `filter`.
//!
//! Two transforms keep state across events, and save it into snapshots: a
//! `flat_map` holds back what did not fit in the outbox (so that nothing it
//! produced is lost at a snapshot, and nothing is produced twice after a
//! restore), and a timestamp assigner keeps the highest timestamp it saw (so
//! that the restored stream's watermarks carry on from there).

use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter, BROADCAST};
use eddy_core::{
    Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError, State, Watermark,
};
use std::collections::VecDeque;
use std::time::Duration;

/// Where a transform puts what it emits.
pub trait Emit<T> {
    /// Takes one event. The caller made sure there is room: a transform
    /// emits at most one event per event it gets, unless it asks
    /// [`has_room`](Emit::has_room) before each.
    fn emit(&mut self, event: Event<T>);

    /// Whether one more event fits.
    fn has_room(&self) -> bool;
}

/// A stateless (or per-instance) transform of events of type `I`.
///
/// [`apply`](Transform::apply) is called only when the output has room for
/// one event and the chain holds nothing back
/// ([`holds_back`](Transform::holds_back)).
pub trait Transform<I>: Clone + Send + Sync + 'static {
    /// What it emits.
    type Out: Clone + Send + 'static;
    /// True only for [`Identity`]: lets stages skip a pass-through vertex.
    const IS_IDENTITY: bool = false;
    /// True if the chain assigns timestamps and makes its own watermarks.
    const GENERATES_WATERMARKS: bool = false;
    /// Number of transforms in the chain; numbers the state they save.
    const LEN: u32 = 1;
    /// True if the chain has a fallible transform that can fail the job:
    /// the processor it is fused onto checks
    /// [`take_failure`](Transform::take_failure) after each call only then.
    const FALLIBLE: bool = false;

    /// Transforms one event, emitting zero or more.
    fn apply<E: Emit<Self::Out>>(&mut self, event: Event<I>, out: &mut E);

    /// Called once with the context of the processor the chain is fused
    /// onto, before any event.
    fn init(&mut self, _ctx: &ProcessorContext) {}

    /// The error that fails the job, if a fallible transform met one.
    fn take_failure(&mut self) -> Option<ProcessorError> {
        None
    }

    /// Whether events it made are held back because the output was full;
    /// they go out before anything else.
    fn holds_back(&self) -> bool {
        false
    }

    /// Emits held-back events while `out` has room; true when none are left.
    fn emit_held<E: Emit<Self::Out>>(&mut self, _out: &mut E) -> bool {
        true
    }

    /// What becomes of a watermark from upstream: passed on by default,
    /// replaced by a timestamp assigner.
    fn on_watermark(&mut self, watermark: Watermark) -> Option<Watermark> {
        Some(watermark)
    }

    /// A watermark or idle marker the chain generates itself, checked after
    /// each call of the processor it is fused into.
    fn poll_watermark(&mut self, _now_ms: i64) -> Option<WatermarkSignal> {
        None
    }

    /// Saves the state of the transform at position `at` of the fused
    /// chain, as that of `instance` (see [`chain_entry_key`]).
    fn save_state(
        &self,
        _at: u32,
        _instance: usize,
        _writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }

    /// Takes an entry the transform at position `at` saved. An instance
    /// gets the entries of every old instance `i` with `i % parallelism ==
    /// instance`: after a restore at a lower parallelism, several.
    fn restore_state(&mut self, _at: u32, _entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        Ok(())
    }
}

/// Tells the entries a fused chain saves apart from those of the processor
/// it is fused onto: their key starts with this string.
const CHAIN_ENTRY_TAG: &str = "eddy.pipeline.chain";

/// The key of the entry the transform at position `at` of a chain saves for
/// `instance`: broadcast, so that each old instance's state finds a new
/// owner whatever the parallelism.
pub(crate) fn chain_entry_key(at: u32, instance: usize) -> (&'static str, u32, u64) {
    (CHAIN_ENTRY_TAG, at, instance as u64)
}

/// The position and the saving instance of a chain's entry, or `None` for
/// an entry of the processor the chain is fused onto.
fn chain_entry_of(entry: &SnapshotEntry<'_>) -> Option<(u32, usize)> {
    let (tag, at, instance): (String, u32, u64) = entry.key().ok()?;
    (tag == CHAIN_ENTRY_TAG).then_some((at, instance as usize))
}

/// A watermark generated by a transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatermarkSignal {
    /// Event time advanced to this watermark.
    Advance(Watermark),
    /// No events for longer than the idle timeout.
    Idle,
}

/// The empty chain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl<I: Clone + Send + 'static> Transform<I> for Identity {
    type Out = I;
    const IS_IDENTITY: bool = true;
    #[inline]
    fn apply<E: Emit<I>>(&mut self, event: Event<I>, out: &mut E) {
        out.emit(event);
    }
}

/// `A` then `B`.
#[derive(Debug, Clone, Copy)]
pub struct Then<A, B>(pub(crate) A, pub(crate) B);

/// The output of `A` in `Then<A, B>`: `B`, then the chain's output.
struct Next<'a, B, E> {
    next: &'a mut B,
    out: &'a mut E,
}

impl<X, B: Transform<X>, E: Emit<B::Out>> Emit<X> for Next<'_, B, E> {
    #[inline]
    fn emit(&mut self, event: Event<X>) {
        self.next.apply(event, self.out);
    }
    #[inline]
    fn has_room(&self) -> bool {
        !self.next.holds_back() && self.out.has_room()
    }
}

impl<I, A: Transform<I>, B: Transform<A::Out>> Transform<I> for Then<A, B> {
    type Out = B::Out;
    const GENERATES_WATERMARKS: bool = A::GENERATES_WATERMARKS || B::GENERATES_WATERMARKS;
    const LEN: u32 = A::LEN + B::LEN;
    const FALLIBLE: bool = A::FALLIBLE || B::FALLIBLE;
    #[inline]
    fn apply<E: Emit<B::Out>>(&mut self, event: Event<I>, out: &mut E) {
        self.0.apply(
            event,
            &mut Next {
                next: &mut self.1,
                out,
            },
        );
    }
    fn init(&mut self, ctx: &ProcessorContext) {
        self.0.init(ctx);
        self.1.init(ctx);
    }
    fn take_failure(&mut self) -> Option<ProcessorError> {
        self.0.take_failure().or_else(|| self.1.take_failure())
    }
    #[inline]
    fn holds_back(&self) -> bool {
        self.0.holds_back() || self.1.holds_back()
    }
    fn emit_held<E: Emit<B::Out>>(&mut self, out: &mut E) -> bool {
        // The later transform's held events are older than anything the
        // earlier one still holds: they go first.
        if !self.1.emit_held(out) {
            return false;
        }
        let first_done = self.0.emit_held(&mut Next {
            next: &mut self.1,
            out,
        });
        first_done && !self.1.holds_back()
    }
    fn on_watermark(&mut self, watermark: Watermark) -> Option<Watermark> {
        self.0
            .on_watermark(watermark)
            .and_then(|w| self.1.on_watermark(w))
    }
    fn poll_watermark(&mut self, now_ms: i64) -> Option<WatermarkSignal> {
        if let Some(signal) = self.1.poll_watermark(now_ms) {
            return Some(signal);
        }
        match self.0.poll_watermark(now_ms)? {
            WatermarkSignal::Advance(w) => self.1.on_watermark(w).map(WatermarkSignal::Advance),
            WatermarkSignal::Idle => Some(WatermarkSignal::Idle),
        }
    }
    fn save_state(
        &self,
        at: u32,
        instance: usize,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        self.0.save_state(at, instance, writer)?;
        self.1.save_state(at + A::LEN, instance, writer)
    }
    fn restore_state(&mut self, at: u32, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        if at < A::LEN {
            self.0.restore_state(at, entry)
        } else {
            self.1.restore_state(at - A::LEN, entry)
        }
    }
}

/// `map`.
#[derive(Clone)]
pub struct Map<F>(pub(crate) F);

impl<I, O: Clone + Send + 'static, F: Fn(I) -> O + Clone + Send + Sync + 'static> Transform<I>
    for Map<F>
{
    type Out = O;
    #[inline]
    fn apply<E: Emit<O>>(&mut self, event: Event<I>, out: &mut E) {
        out.emit(Event {
            ts: event.ts,
            value: (self.0)(event.value),
        });
    }
}

/// `filter`.
#[derive(Clone)]
pub struct Filter<F>(pub(crate) F);

impl<I: Clone + Send + 'static, F: Fn(&I) -> bool + Clone + Send + Sync + 'static> Transform<I>
    for Filter<F>
{
    type Out = I;
    #[inline]
    fn apply<E: Emit<I>>(&mut self, event: Event<I>, out: &mut E) {
        if (self.0)(&event.value) {
            out.emit(event);
        }
    }
}

/// `flat_map`: the only transform that emits several events for one, so
/// the only one that may hold events back.
pub struct FlatMap<F, O> {
    f: F,
    /// Events made but not emitted yet, for want of room. The mutex only
    /// makes the chain `Sync` without asking `O: Sync` (chains are cloned
    /// from a template shared by the instances); the event path reaches it
    /// through `get_mut`, which never locks.
    held: std::sync::Mutex<VecDeque<Event<O>>>,
    /// Whether `held` is not empty, readable through `&self` without the lock.
    holding: bool,
}

impl<F, O> FlatMap<F, O> {
    pub(crate) fn new(f: F) -> Self {
        FlatMap {
            f,
            held: std::sync::Mutex::new(VecDeque::new()),
            holding: false,
        }
    }

    #[inline]
    fn held(&mut self) -> &mut VecDeque<Event<O>> {
        // Poisoning is moot: nothing panics while the lock is held.
        self.held.get_mut().unwrap_or_else(|p| p.into_inner())
    }
}

impl<F: Clone, O: Clone> Clone for FlatMap<F, O> {
    fn clone(&self) -> Self {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).clone();
        FlatMap {
            f: self.f.clone(),
            held: std::sync::Mutex::new(held),
            holding: self.holding,
        }
    }
}

impl<I, O, It, F> Transform<I> for FlatMap<F, O>
where
    O: Clone + State,
    It: IntoIterator<Item = O>,
    F: Fn(I) -> It + Clone + Send + Sync + 'static,
{
    type Out = O;
    #[inline]
    fn apply<E: Emit<O>>(&mut self, event: Event<I>, out: &mut E) {
        let ts = event.ts;
        let mut values = (self.f)(event.value).into_iter();
        if !self.holding {
            while out.has_room() {
                match values.next() {
                    Some(value) => out.emit(Event { ts, value }),
                    None => return,
                }
            }
        }
        let held = self.held();
        held.extend(values.map(|value| Event { ts, value }));
        self.holding = !held.is_empty();
    }
    #[inline]
    fn holds_back(&self) -> bool {
        self.holding
    }
    fn emit_held<E: Emit<O>>(&mut self, out: &mut E) -> bool {
        if !self.holding {
            return true;
        }
        let held = self.held();
        while let Some(event) = held.pop_front() {
            if !out.has_room() {
                held.push_front(event);
                return false;
            }
            out.emit(event);
        }
        self.holding = false;
        true
    }
    fn save_state(
        &self,
        at: u32,
        instance: usize,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_empty() {
            return Ok(());
        }
        writer.put(BROADCAST, &chain_entry_key(at, instance), &*held)
    }
    fn restore_state(&mut self, _at: u32, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let events: Vec<Event<O>> = entry.value()?;
        self.held().extend(events);
        self.holding = !self.held().is_empty();
        Ok(())
    }
}

/// `peek`: sees every item, changes nothing.
#[derive(Clone)]
pub struct Peek<F>(pub(crate) F);

impl<I: Clone + Send + 'static, F: Fn(&I) + Clone + Send + Sync + 'static> Transform<I>
    for Peek<F>
{
    type Out = I;
    #[inline]
    fn apply<E: Emit<I>>(&mut self, event: Event<I>, out: &mut E) {
        (self.0)(&event.value);
        out.emit(event);
    }
}

/// How a stream's event time and watermarks are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventTimePolicy {
    /// How far behind the highest timestamp seen an event may be and still
    /// count: the watermark is the highest timestamp minus this.
    pub lag_ms: i64,
    /// After this long without events, the stream is marked idle so that
    /// downstream watermarks do not wait for it. `None`: never idle.
    pub idle_timeout_ms: Option<i64>,
}

impl EventTimePolicy {
    /// A policy allowing `lag` of disorder.
    pub fn lag(lag: Duration) -> Self {
        EventTimePolicy {
            lag_ms: lag.as_millis() as i64,
            idle_timeout_ms: None,
        }
    }

    /// Marks the stream idle after `timeout` without events.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout_ms = Some(timeout.as_millis() as i64);
        self
    }
}

impl From<Duration> for EventTimePolicy {
    fn from(lag: Duration) -> Self {
        EventTimePolicy::lag(lag)
    }
}

/// `with_timestamps`: assigns event time and generates watermarks.
#[derive(Clone)]
pub struct Timestamps<F> {
    pub(crate) timestamp: F,
    pub(crate) policy: EventTimePolicy,
    top_ts: i64,
    emitted: i64,
    last_event_wall_ms: Option<i64>,
    idle: bool,
    /// Whether a snapshot entry set `top_ts` already (restoring several old
    /// instances into one keeps the lowest).
    restored: bool,
}

impl<F> Timestamps<F> {
    pub(crate) fn new(timestamp: F, policy: EventTimePolicy) -> Self {
        Timestamps {
            timestamp,
            policy,
            top_ts: i64::MIN,
            emitted: i64::MIN,
            last_event_wall_ms: None,
            idle: false,
            restored: false,
        }
    }
}

impl<I: Clone + Send + 'static, F: Fn(&I) -> i64 + Clone + Send + Sync + 'static> Transform<I>
    for Timestamps<F>
{
    type Out = I;
    const GENERATES_WATERMARKS: bool = true;
    #[inline]
    fn apply<E: Emit<I>>(&mut self, event: Event<I>, out: &mut E) {
        let ts = (self.timestamp)(&event.value);
        self.top_ts = self.top_ts.max(ts);
        self.last_event_wall_ms = None;
        out.emit(Event {
            ts,
            value: event.value,
        });
    }
    fn on_watermark(&mut self, _watermark: Watermark) -> Option<Watermark> {
        // This stream's event time is its own: upstream watermarks are
        // replaced by the ones this assigner generates.
        None
    }
    fn poll_watermark(&mut self, now_ms: i64) -> Option<WatermarkSignal> {
        let wm = self.top_ts.saturating_sub(self.policy.lag_ms);
        if self.top_ts != i64::MIN && wm > self.emitted {
            self.emitted = wm;
            self.idle = false;
            self.last_event_wall_ms = Some(now_ms);
            return Some(WatermarkSignal::Advance(Watermark(wm)));
        }
        let timeout = self.policy.idle_timeout_ms?;
        let since = *self.last_event_wall_ms.get_or_insert(now_ms);
        if !self.idle && now_ms - since >= timeout {
            self.idle = true;
            return Some(WatermarkSignal::Idle);
        }
        None
    }
    fn save_state(
        &self,
        at: u32,
        instance: usize,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        writer.put(BROADCAST, &chain_entry_key(at, instance), &self.top_ts)
    }
    fn restore_state(&mut self, _at: u32, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let top_ts: i64 = entry.value()?;
        // Merging instances keeps the lowest: a watermark from the highest
        // could make the other instances' next events late.
        self.top_ts = if self.restored {
            self.top_ts.min(top_ts)
        } else {
            top_ts
        };
        self.restored = true;
        // `emitted` stays at its start, so that the next poll emits the
        // watermark again: the restored consumers' inputs start without one.
        Ok(())
    }
}

/// A processor with a transform chain fused onto its output.
///
/// It hands every call of the processor contract to the processor (the
/// snapshot calls and `validate` included) and saves the chain's
/// state beside the processor's, under keys of its own
/// ([`chain_entry_key`]).
pub struct Fused<P, C> {
    inner: P,
    chain: C,
    pending_signal: Option<WatermarkSignal>,
    inner_complete: bool,
    instance: usize,
    parallelism: usize,
}

impl<X, P, C> Fused<P, C>
where
    X: Clone + Send + 'static,
    P: Processor<Out = Event<X>>,
    C: Transform<X>,
{
    /// Fuses `chain` onto the output of `inner`.
    pub fn new(inner: P, chain: C) -> Self {
        Fused {
            inner,
            chain,
            pending_signal: None,
            inner_complete: false,
            instance: 0,
            parallelism: 1,
        }
    }

    /// Emits what is left over; true when nothing is.
    fn drain<B: Outbox<Event<C::Out>>>(&mut self, outbox: &mut B) -> bool {
        if !self.chain.emit_held(&mut OutboxEmit(outbox)) {
            return false;
        }
        if let Some(signal) = self.pending_signal {
            let accepted = match signal {
                WatermarkSignal::Advance(w) => outbox.offer_watermark(w),
                WatermarkSignal::Idle => outbox.offer_idle(),
            };
            if !accepted {
                return false;
            }
            self.pending_signal = None;
        }
        true
    }

    fn after_call<B: Outbox<Event<C::Out>>>(&mut self, outbox: &mut B) {
        if C::GENERATES_WATERMARKS && self.pending_signal.is_none() && !self.chain.holds_back() {
            self.pending_signal = self.chain.poll_watermark(eddy_runtime::metrics::now_ms());
            self.drain(outbox);
        }
    }

    /// Fails the call if a fallible transform of the chain failed the job;
    /// compiled away for chains without one.
    #[inline]
    fn check_chain(&mut self) -> Result<(), ProcessorError> {
        if C::FALLIBLE {
            if let Some(e) = self.chain.take_failure() {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// An outbox as the output of a chain.
struct OutboxEmit<'a, O>(&'a mut O);

impl<T, O: Outbox<Event<T>>> Emit<T> for OutboxEmit<'_, O> {
    #[inline]
    fn emit(&mut self, event: Event<T>) {
        if self.0.offer(event).is_err() {
            unreachable!("transforms emit only when the outbox has room");
        }
    }
    #[inline]
    fn has_room(&self) -> bool {
        self.0.has_room()
    }
}

/// The outbox the inner processor of a [`Fused`] sees: its events go
/// through the chain.
struct ChainOutbox<'a, C: Transform<X>, X, O> {
    chain: &'a mut C,
    inner: &'a mut O,
    _x: std::marker::PhantomData<fn(X)>,
}

impl<X, C: Transform<X>, O: Outbox<Event<C::Out>>> Outbox<Event<X>> for ChainOutbox<'_, C, X, O> {
    #[inline]
    fn offer(&mut self, event: Event<X>) -> Result<(), Event<X>> {
        if self.chain.holds_back() || !self.inner.has_room() {
            return Err(event);
        }
        self.chain.apply(event, &mut OutboxEmit(&mut *self.inner));
        Ok(())
    }

    #[inline]
    fn has_room(&self) -> bool {
        !self.chain.holds_back() && self.inner.has_room()
    }

    fn offer_watermark(&mut self, watermark: Watermark) -> bool {
        if self.chain.holds_back() {
            return false;
        }
        match self.chain.on_watermark(watermark) {
            Some(w) => self.inner.offer_watermark(w),
            None => true,
        }
    }

    fn offer_idle(&mut self) -> bool {
        !self.chain.holds_back() && self.inner.offer_idle()
    }
}

macro_rules! chain_outbox {
    ($self:ident, $outbox:ident) => {
        ChainOutbox {
            chain: &mut $self.chain,
            inner: $outbox,
            _x: std::marker::PhantomData,
        }
    };
}

impl<X, P, C> Processor for Fused<P, C>
where
    X: Clone + Send + 'static,
    P: Processor<Out = Event<X>>,
    C: Transform<X>,
{
    type In = P::In;
    type Out = Event<C::Out>;

    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.instance = ctx.instance;
        self.parallelism = ctx.parallelism.max(1);
        self.chain.init(ctx);
        self.inner.init(ctx)
    }

    fn validate(&self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.inner.validate(ctx)
    }

    fn is_cooperative(&self) -> bool {
        self.inner.is_cooperative()
    }

    fn wake_at_ms(&self) -> Option<i64> {
        self.inner.wake_at_ms()
    }

    fn process<B: Outbox<Self::Out>>(
        &mut self,
        ordinal: usize,
        inbox: &mut Inbox<P::In>,
        outbox: &mut B,
    ) -> Result<(), ProcessorError> {
        if self.drain(outbox) {
            self.inner
                .process(ordinal, inbox, &mut chain_outbox!(self, outbox))?;
            self.after_call(outbox);
        }
        self.check_chain()
    }

    fn try_process_watermark<B: Outbox<Self::Out>>(
        &mut self,
        watermark: Watermark,
        outbox: &mut B,
    ) -> Result<bool, ProcessorError> {
        if !self.drain(outbox) {
            return Ok(false);
        }
        let done = self
            .inner
            .try_process_watermark(watermark, &mut chain_outbox!(self, outbox))?;
        self.after_call(outbox);
        self.check_chain()?;
        Ok(done)
    }

    fn try_process<B: Outbox<Self::Out>>(
        &mut self,
        outbox: &mut B,
    ) -> Result<bool, ProcessorError> {
        if !self.drain(outbox) {
            return Ok(false);
        }
        let done = self.inner.try_process(&mut chain_outbox!(self, outbox))?;
        self.after_call(outbox);
        self.check_chain()?;
        Ok(done)
    }

    fn complete_edge<B: Outbox<Self::Out>>(
        &mut self,
        ordinal: usize,
        outbox: &mut B,
    ) -> Result<bool, ProcessorError> {
        if !self.drain(outbox) {
            return Ok(false);
        }
        let done = self
            .inner
            .complete_edge(ordinal, &mut chain_outbox!(self, outbox))?;
        self.check_chain()?;
        Ok(done)
    }

    fn complete<B: Outbox<Self::Out>>(&mut self, outbox: &mut B) -> Result<bool, ProcessorError> {
        if !self.drain(outbox) {
            return Ok(false);
        }
        if !self.inner_complete {
            self.inner_complete = self.inner.complete(&mut chain_outbox!(self, outbox))?;
            self.after_call(outbox);
            self.check_chain()?;
        }
        Ok(self.inner_complete && self.drain(outbox))
    }

    fn save_to_snapshot(
        &mut self,
        snapshot_id: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        self.inner.save_to_snapshot(snapshot_id, writer)?;
        self.chain.save_state(0, self.instance, writer)
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        match chain_entry_of(&entry) {
            None => self.inner.restore_from_snapshot(entry),
            // Each old instance's chain state goes to exactly one instance.
            Some((at, saved_by)) if saved_by % self.parallelism == self.instance => {
                self.chain.restore_state(at, entry)
            }
            Some(_) => Ok(()),
        }
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

/// Passes its input on unchanged: the vertex that a shared or rebalanced
/// stage's chain is fused onto.
#[derive(Debug, Default)]
pub struct PassThrough<T>(std::marker::PhantomData<fn(T)>);

impl<T> PassThrough<T> {
    /// A pass-through processor.
    pub fn new() -> Self {
        PassThrough(std::marker::PhantomData)
    }
}

impl<T: Clone + Send + 'static> Processor for PassThrough<T> {
    type In = Event<T>;
    type Out = Event<T>;
    fn process<O: Outbox<Event<T>>>(
        &mut self,
        _ordinal: usize,
        inbox: &mut Inbox<Event<T>>,
        outbox: &mut O,
    ) -> Result<(), ProcessorError> {
        while outbox.has_room() {
            let Some(e) = inbox.poll() else { break };
            outbox.offer_granted(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::ItemsP;
    use eddy_testkit::{TestOutput, TestSupport};
    use std::sync::Arc;

    #[test]
    fn when_flat_map_output_held_back_at_snapshots_then_restored_instances_emit_it_once() {
        let chain = Then(Identity, FlatMap::new(|n: u32| (0..n).map(move |i| (n, i))));
        let expected = (0..8u32)
            .flat_map(|n| (0..n).map(move |i| TestOutput::Item(Event::untimed((n, i)))))
            .collect();
        TestSupport::verify(move || {
            Fused::new(ItemsP::new(Arc::new((0..8).collect())), chain.clone())
        })
        .expect_output(expected);
    }

    /// A source that refuses every job.
    struct Refusing;

    impl Processor for Refusing {
        type In = ();
        type Out = Event<u32>;
        fn validate(&self, _ctx: &ProcessorContext) -> Result<(), ProcessorError> {
            Err(ProcessorError::new("refused"))
        }
        fn process<O: Outbox<Event<u32>>>(
            &mut self,
            _: usize,
            _: &mut Inbox<()>,
            _: &mut O,
        ) -> Result<(), ProcessorError> {
            Ok(())
        }
    }

    #[test]
    fn when_fused_processor_refuses_the_job_then_the_fused_one_does() {
        let fused = Fused::new(Refusing, Then(Identity, Map(|n: u32| n + 1)));
        let refused = fused.validate(&ProcessorContext::standalone("refusing"));
        assert_eq!(refused.unwrap_err().message, "refused");
    }

    #[test]
    fn when_timestamps_restored_then_watermarks_resume_from_the_highest_timestamp() {
        let chain = Timestamps::new(|n: &i64| *n * 10, EventTimePolicy::lag(Duration::ZERO));
        // The first item is the latest: a restored assigner that forgot it
        // would make watermarks from the lower ones that follow.
        let items: Vec<i64> = std::iter::once(100).chain(0..10).collect();
        let expected = items.clone();
        let out = TestSupport::verify(move || {
            Fused::new(ItemsP::new(Arc::new(items.clone())), chain.clone())
        })
        .run_restoring(&(1..20).map(|round| (round, 1)).collect::<Vec<_>>());
        let mut emitted = Vec::new();
        let mut watermarks = Vec::new();
        for o in out {
            match o {
                TestOutput::Item(e) => emitted.push(e.value),
                TestOutput::Watermark(w) => watermarks.push(w),
            }
        }
        assert_eq!(emitted, expected);
        // A restore emits the watermark reached again (the consumers'
        // restored inputs start without one), never a lower one.
        assert!(
            watermarks.windows(2).all(|w| w[0] <= w[1]),
            "{watermarks:?}"
        );
        assert_eq!(watermarks.first(), Some(&1000));
    }
}
