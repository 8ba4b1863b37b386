//! The fallible stages: `try_map`, `try_filter` and `try_flat_map`, whose
//! function returns a `Result` (or panics) for an item it cannot process.
//!
//! What happens then is the stage's [`ErrorPolicy`] (set with
//! `on_error`), else the job's (`JobConfig::on_error`): fail the job, or
//! send the item with the stage's name and the error to the job's dead
//! letters, count it, and go on. The function borrows the item, so that a
//! rejected one can still be described in its dead letter without a copy
//! of every item that passes.
//!
//! The panic of a function is caught per item here, unlike in the plain
//! stages (where a panic fails the job through the runtime): that is what
//! lets one bad record be dead-lettered instead of ending the job.

use crate::transform::{Emit, FlatMap, Transform};
use eddy_core::dead_letter::panic_message;
use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter};
use eddy_core::{
    DeadLetter, DeadLetters, ErrorPolicy, Event, ProcessorContext, ProcessorError, State,
    NO_TIMESTAMP,
};
use std::fmt::{Debug, Display};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Calls `f` on `item`, turning an `Err` or a panic into its message.
#[inline]
fn call<I, R, E: Display>(f: &impl Fn(&I) -> Result<R, E>, item: &I) -> Result<R, String> {
    match catch_unwind(AssertUnwindSafe(|| f(item))) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(e.to_string()),
        Err(payload) => Err(panic_message(&*payload)),
    }
}

/// What a fallible transform does with the items its function rejects.
#[derive(Clone, Default)]
pub struct OnFailure {
    /// The stage's own policy, if it has one; else the job's.
    stage_policy: Option<ErrorPolicy>,
    /// Which stage function this is, for the dead letter (`try_map`, …).
    op: &'static str,
    policy: ErrorPolicy,
    job: String,
    stage: String,
    dead_letters: DeadLetters,
    /// The error that fails the job, once there is one.
    failure: Option<String>,
}

impl OnFailure {
    fn new(op: &'static str) -> Self {
        OnFailure {
            op,
            ..OnFailure::default()
        }
    }

    fn init(&mut self, ctx: &ProcessorContext) {
        self.policy = self.stage_policy.unwrap_or(ctx.error_policy);
        self.job = ctx.job_name.clone();
        self.stage = format!("{} ({})", ctx.vertex_name, self.op);
        self.dead_letters = ctx.dead_letters.clone();
    }

    /// Whether the job is failing: further items are dropped, the
    /// execution's output does not count.
    #[inline]
    fn failed(&self) -> bool {
        self.failure.is_some()
    }

    #[cold]
    fn reject(&mut self, error: String, item: &dyn Debug, ts: i64) {
        match self.policy {
            ErrorPolicy::Fail => {
                self.failure = Some(format!(
                    "{}: {error} (item {item:?}); to send such items to the dead letters and go on, set on_error(ErrorPolicy::DeadLetter) on the stage or the job",
                    self.stage
                ));
            }
            ErrorPolicy::DeadLetter => {
                let ts = (ts != NO_TIMESTAMP).then_some(ts);
                let letter = DeadLetter::new(&self.job, &self.stage, error, item, ts);
                if let Err(e) = self.dead_letters.send(letter) {
                    self.failure = Some(format!(
                        "{}: a dead letter could not be kept ({e}); nothing is dropped silently, so the job fails",
                        self.stage
                    ));
                }
            }
        }
    }

    fn take(&mut self) -> Option<ProcessorError> {
        self.failure.take().map(ProcessorError::new)
    }
}

/// A transform whose error policy a stage can set (`on_error`).
pub trait ErrorPolicySlot {
    /// Sets the policy of the last fallible transform of the chain.
    fn set_error_policy(&mut self, policy: ErrorPolicy);
}

impl<A, B: ErrorPolicySlot> ErrorPolicySlot for crate::transform::Then<A, B> {
    fn set_error_policy(&mut self, policy: ErrorPolicy) {
        self.1.set_error_policy(policy);
    }
}

/// `try_map`.
#[derive(Clone)]
pub struct TryMap<F> {
    f: F,
    on_failure: OnFailure,
}

impl<F> TryMap<F> {
    pub(crate) fn new(f: F) -> Self {
        TryMap {
            f,
            on_failure: OnFailure::new("try_map"),
        }
    }
}

impl<F> ErrorPolicySlot for TryMap<F> {
    fn set_error_policy(&mut self, policy: ErrorPolicy) {
        self.on_failure.stage_policy = Some(policy);
    }
}

impl<I, O, E, F> Transform<I> for TryMap<F>
where
    I: Debug,
    O: Clone + Send + 'static,
    E: Display,
    F: Fn(&I) -> Result<O, E> + Clone + Send + Sync + 'static,
{
    type Out = O;
    const FALLIBLE: bool = true;
    #[inline]
    fn apply<Em: Emit<O>>(&mut self, event: Event<I>, out: &mut Em) {
        if self.on_failure.failed() {
            return;
        }
        match call(&self.f, &event.value) {
            Ok(value) => out.emit(Event {
                ts: event.ts,
                value,
            }),
            Err(e) => self.on_failure.reject(e, &event.value, event.ts),
        }
    }
    fn init(&mut self, ctx: &ProcessorContext) {
        self.on_failure.init(ctx);
    }
    fn take_failure(&mut self) -> Option<ProcessorError> {
        self.on_failure.take()
    }
}

/// `try_filter`.
#[derive(Clone)]
pub struct TryFilter<F> {
    f: F,
    on_failure: OnFailure,
}

impl<F> TryFilter<F> {
    pub(crate) fn new(f: F) -> Self {
        TryFilter {
            f,
            on_failure: OnFailure::new("try_filter"),
        }
    }
}

impl<F> ErrorPolicySlot for TryFilter<F> {
    fn set_error_policy(&mut self, policy: ErrorPolicy) {
        self.on_failure.stage_policy = Some(policy);
    }
}

impl<I, E, F> Transform<I> for TryFilter<F>
where
    I: Debug + Clone + Send + 'static,
    E: Display,
    F: Fn(&I) -> Result<bool, E> + Clone + Send + Sync + 'static,
{
    type Out = I;
    const FALLIBLE: bool = true;
    #[inline]
    fn apply<Em: Emit<I>>(&mut self, event: Event<I>, out: &mut Em) {
        if self.on_failure.failed() {
            return;
        }
        match call(&self.f, &event.value) {
            Ok(true) => out.emit(event),
            Ok(false) => {}
            Err(e) => self.on_failure.reject(e, &event.value, event.ts),
        }
    }
    fn init(&mut self, ctx: &ProcessorContext) {
        self.on_failure.init(ctx);
    }
    fn take_failure(&mut self) -> Option<ProcessorError> {
        self.on_failure.take()
    }
}

/// Passes an iterator on unchanged: the function of the [`FlatMap`] that
/// emits what a `try_flat_map` function returned.
fn unchanged<It>(it: It) -> It {
    it
}

/// `try_flat_map`: the function's items go out through a [`FlatMap`],
/// which holds back (and snapshots) those that do not fit at once.
pub struct TryFlatMap<F, It, O> {
    f: F,
    on_failure: OnFailure,
    flat: FlatMap<fn(It) -> It, O>,
}

impl<F: Clone, It, O: Clone> Clone for TryFlatMap<F, It, O> {
    fn clone(&self) -> Self {
        TryFlatMap {
            f: self.f.clone(),
            on_failure: self.on_failure.clone(),
            flat: self.flat.clone(),
        }
    }
}

impl<F, It, O> TryFlatMap<F, It, O> {
    pub(crate) fn new(f: F) -> Self {
        TryFlatMap {
            f,
            on_failure: OnFailure::new("try_flat_map"),
            flat: FlatMap::new(unchanged::<It> as fn(It) -> It),
        }
    }
}

impl<F, It, O> ErrorPolicySlot for TryFlatMap<F, It, O> {
    fn set_error_policy(&mut self, policy: ErrorPolicy) {
        self.on_failure.stage_policy = Some(policy);
    }
}

impl<I, O, It, E, F> Transform<I> for TryFlatMap<F, It, O>
where
    I: Debug,
    O: Clone + State,
    It: IntoIterator<Item = O> + 'static,
    E: Display,
    F: Fn(&I) -> Result<It, E> + Clone + Send + Sync + 'static,
{
    type Out = O;
    const FALLIBLE: bool = true;
    #[inline]
    fn apply<Em: Emit<O>>(&mut self, event: Event<I>, out: &mut Em) {
        if self.on_failure.failed() {
            return;
        }
        match call(&self.f, &event.value) {
            Ok(items) => self.flat.apply(
                Event {
                    ts: event.ts,
                    value: items,
                },
                out,
            ),
            Err(e) => self.on_failure.reject(e, &event.value, event.ts),
        }
    }
    #[inline]
    fn holds_back(&self) -> bool {
        Transform::<It>::holds_back(&self.flat)
    }
    fn emit_held<Em: Emit<O>>(&mut self, out: &mut Em) -> bool {
        Transform::<It>::emit_held(&mut self.flat, out)
    }
    fn save_state(
        &self,
        at: u32,
        instance: usize,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        Transform::<It>::save_state(&self.flat, at, instance, writer)
    }
    fn restore_state(&mut self, at: u32, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        Transform::<It>::restore_state(&mut self.flat, at, entry)
    }
    fn init(&mut self, ctx: &ProcessorContext) {
        self.on_failure.init(ctx);
    }
    fn take_failure(&mut self) -> Option<ProcessorError> {
        self.on_failure.take()
    }
}
