//! Pipeline stages: the typed builder that compiles to a DAG.
//!
//! A stage is an *upstream* (a vertex not yet added to the DAG) plus a chain
//! of stateless transforms. Calling `map`, `filter` and the like only grows
//! the chain. A stateful stage, a sink or a join *materializes* its upstream:
//! adds the vertex with the chain fused onto it, then connects the new
//! consumer with the edge it needs (partitioned by key for keyed stages).

use crate::fallible::{ErrorPolicySlot, TryFilter, TryFlatMap, TryMap};
use crate::processors::join::HashJoinP;
use crate::processors::keyed::{GroupAggregateP, MapStatefulP, RollingP};
use crate::processors::session::SessionWindowP;
use crate::processors::window::FrameWindowP;
use crate::processors::LateEventFn;
use crate::sinks::Sink;
use crate::sources::{Bounded, Boundedness, Source, Unbounded};
use crate::transform::{
    EventTimePolicy, Filter, FlatMap, Fused, Identity, Map, PassThrough, Peek, Then, Timestamps,
    Transform,
};
use crate::Pipeline;
use eddy_core::partition::key_hash;
use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter};
use eddy_core::{
    agg, AggregateOperation, EddyError, Either, ErrorPolicy, Event, Processor, ProcessorContext,
    ProcessorError, State, StateKey, WindowDefinition, WindowKind, WindowResult,
};
use eddy_runtime::{AnyInput, Routing, VertexRef};
use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// A materialized vertex that emits events of `T`.
pub type Output<T> = VertexRef<AnyInput, Event<T>>;

/// A vertex waiting for the chain of transforms that follows it.
pub trait Upstream: 'static {
    /// What the vertex emits (before the chain).
    type Out: Clone + Send + 'static;
    /// Adds the vertex with `chain` fused onto it.
    fn materialize<C: Transform<Self::Out>>(self, pipeline: &Pipeline, chain: C) -> Output<C::Out>;
    /// Fixes the vertex's number of instances.
    fn set_parallelism(&mut self, parallelism: usize);
    /// Names the vertex.
    fn set_name(&mut self, name: String);
}

/// An input edge of a vertex to be added.
struct InputSpec<I> {
    from: VertexRef<AnyInput, I>,
    routing: Routing<I>,
    priority: i32,
}

/// An upstream whose output ends: what a hash join's side input must be.
/// Implemented by the stages of [`Bounded`] sources and what stateless
/// transforms make of them.
pub trait BoundedUpstream: Upstream {}

/// A vertex running processors of type `P`, made by `supplier`; `B` says
/// whether its output ends (only a source's can be [`Bounded`] as a type).
pub struct ProcessorUpstream<P: Processor, F, B = Unbounded> {
    name: String,
    parallelism: Option<usize>,
    supplier: F,
    inputs: Vec<InputSpec<P::In>>,
    _bound: PhantomData<fn() -> B>,
}

impl<P: Processor, F> BoundedUpstream for ProcessorUpstream<P, F, Bounded> where Self: Upstream {}

impl<X, P, F, B> Upstream for ProcessorUpstream<P, F, B>
where
    X: Clone + Send + 'static,
    P: Processor<Out = Event<X>>,
    F: Fn(&ProcessorContext) -> P + Send + Sync + 'static,
    B: Boundedness,
{
    type Out = X;

    fn materialize<C: Transform<X>>(self, pipeline: &Pipeline, chain: C) -> Output<C::Out> {
        let supplier = self.supplier;
        let mut state = pipeline.state.borrow_mut();
        let name = state.unique_name(&self.name);
        let vertex = state
            .dag
            .vertex(name, move |ctx| Fused::new(supplier(ctx), chain.clone()));
        if let Some(n) = self.parallelism {
            state.dag.set_parallelism(vertex, n);
        }
        for input in self.inputs {
            state
                .dag
                .edge_with_priority(input.from, vertex, input.routing, input.priority);
        }
        vertex.erase_input()
    }

    fn set_parallelism(&mut self, parallelism: usize) {
        self.parallelism = Some(parallelism);
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }
}

fn upstream<P, F>(name: &str, supplier: F, inputs: Vec<InputSpec<P::In>>) -> ProcessorUpstream<P, F>
where
    P: Processor,
    F: Fn(&ProcessorContext) -> P + Send + Sync + 'static,
{
    ProcessorUpstream {
        name: name.to_string(),
        parallelism: None,
        supplier,
        inputs,
        _bound: PhantomData,
    }
}

/// A vertex shared by several stages (see [`StreamStage::share`]).
pub struct SharedUpstream<T> {
    from: Output<T>,
    name: String,
    parallelism: Option<usize>,
}

impl<T: Clone + Send + 'static> Upstream for SharedUpstream<T> {
    type Out = T;

    fn materialize<C: Transform<T>>(self, pipeline: &Pipeline, chain: C) -> Output<C::Out> {
        if C::IS_IDENTITY {
            // Nothing to fuse: consumers connect to the shared vertex itself.
            let direct: Box<dyn std::any::Any> = Box::new(self.from);
            if let Ok(out) = direct.downcast::<Output<C::Out>>() {
                return *out;
            }
        }
        let mut pass = upstream(
            &self.name,
            |_: &ProcessorContext| PassThrough::<T>::new(),
            vec![InputSpec {
                from: self.from,
                routing: Routing::unicast(),
                priority: 0,
            }],
        );
        pass.parallelism = self.parallelism;
        pass.materialize(pipeline, chain)
    }

    fn set_parallelism(&mut self, parallelism: usize) {
        self.parallelism = Some(parallelism);
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }
}

/// A stream of items of type `C::Out`: an upstream vertex and the
/// transforms after it.
#[must_use = "a stage does nothing until it is written to a sink"]
pub struct StreamStage<U: Upstream, C> {
    pipeline: Pipeline,
    upstream: U,
    chain: C,
}

impl<U: Upstream> StreamStage<U, Identity> {
    pub(crate) fn new(pipeline: Pipeline, upstream: U) -> Self {
        StreamStage {
            pipeline,
            upstream,
            chain: Identity,
        }
    }
}

/// The source stage type `Pipeline::read_from` returns.
pub type SourceStage<S> = StreamStage<
    ProcessorUpstream<<S as Source>::Processor, SourceSupplier<S>, <S as Source>::Bound>,
    Identity,
>;

/// Creates the processor of one source instance.
pub type SourceSupplier<S> =
    Box<dyn Fn(&ProcessorContext) -> <S as Source>::Processor + Send + Sync>;

/// The result of co-grouping: per key and window, one result per input.
pub type CoGrouped<K, A, B> = WindowResult<K, (A, B)>;

/// Per key and window, the events of both inputs of a windowed join.
pub type JoinedLists<K, L, R> = CoGrouped<K, Vec<L>, Vec<R>>;

pub(crate) fn source_stage<S: Source>(pipeline: Pipeline, source: S) -> SourceStage<S> {
    let name = source.name();
    let parallelism = source.parallelism();
    let source = Arc::new(source);
    let supplier: SourceSupplier<S> = Box::new(move |ctx| source.create(ctx));
    let up = ProcessorUpstream {
        name,
        parallelism,
        supplier,
        inputs: Vec::new(),
        _bound: PhantomData,
    };
    StreamStage::new(pipeline, up)
}

impl<U: Upstream, C: Transform<U::Out>> StreamStage<U, C> {
    pub(crate) fn then<N: Transform<C::Out>>(self, next: N) -> StreamStage<U, Then<C, N>> {
        StreamStage {
            pipeline: self.pipeline,
            upstream: self.upstream,
            chain: Then(self.chain, next),
        }
    }

    /// Transforms each item.
    pub fn map<R, F>(self, f: F) -> StreamStage<U, Then<C, Map<F>>>
    where
        R: Clone + Send + 'static,
        F: Fn(C::Out) -> R + Clone + Send + Sync + 'static,
    {
        self.then(Map(f))
    }

    /// Keeps the items for which `f` is true.
    pub fn filter<F>(self, f: F) -> StreamStage<U, Then<C, Filter<F>>>
    where
        F: Fn(&C::Out) -> bool + Clone + Send + Sync + 'static,
    {
        self.then(Filter(f))
    }

    /// Replaces each item with zero or more items. The items are [`State`]:
    /// those that do not fit downstream at once wait in the stage, which
    /// saves them into snapshots.
    pub fn flat_map<R, I, F>(self, f: F) -> StreamStage<U, Then<C, FlatMap<F, R>>>
    where
        R: Clone + State,
        I: IntoIterator<Item = R>,
        F: Fn(C::Out) -> I + Clone + Send + Sync + 'static,
    {
        self.then(FlatMap::new(f))
    }

    /// Maps each item with a function that may reject it: an `Err` (or a
    /// panic) for an item fails the job, or sends the item to the job's
    /// dead letters and goes on, as the stage's [`on_error`](Self::on_error)
    /// or the job's `JobConfig::on_error` says. The function borrows the
    /// item, so that a rejected one can be described in its dead letter.
    ///
    /// ```
    /// use eddy_core::{DeadLetter, DeadLetters, ErrorPolicy};
    /// use eddy_pipeline::{Pipeline, Sinks, Sources};
    /// use eddy_runtime::{Eddy, EddyConfig, JobConfig};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let p = Pipeline::new();
    /// let (sink, numbers) = Sinks::collect();
    /// p.read_from(Sources::items(vec!["1".to_string(), "two".into(), "3".into()]))
    ///     .try_map(|s: &String| s.parse::<u32>())
    ///     .on_error(ErrorPolicy::DeadLetter)
    ///     .write_to(sink);
    /// let letters = Arc::new(Mutex::new(Vec::<DeadLetter>::new()));
    /// let kept = letters.clone();
    /// let config = JobConfig::default().dead_letters(DeadLetters::to(move |l: &DeadLetter| {
    ///     kept.lock().unwrap().push(l.clone());
    ///     Ok(())
    /// }));
    /// let eddy = Eddy::new(EddyConfig::default());
    /// let job = eddy.submit(p, config).unwrap();
    /// job.join().unwrap();
    /// assert_eq!(numbers.len(), 2);
    /// assert_eq!(job.dead_letters(), 1);
    /// assert!(letters.lock().unwrap()[0].error.contains("invalid digit"));
    /// ```
    pub fn try_map<R, E, F>(self, f: F) -> StreamStage<U, Then<C, TryMap<F>>>
    where
        C::Out: Debug,
        R: Clone + Send + 'static,
        E: Display,
        F: Fn(&C::Out) -> Result<R, E> + Clone + Send + Sync + 'static,
    {
        self.then(TryMap::new(f))
    }

    /// Keeps the items for which `f` is `Ok(true)`; an `Err` (or a panic)
    /// is handled as in [`try_map`](Self::try_map).
    pub fn try_filter<E, F>(self, f: F) -> StreamStage<U, Then<C, TryFilter<F>>>
    where
        C::Out: Debug,
        E: Display,
        F: Fn(&C::Out) -> Result<bool, E> + Clone + Send + Sync + 'static,
    {
        self.then(TryFilter::new(f))
    }

    /// Replaces each item with the items `f` returns; an `Err` (or a panic)
    /// is handled as in [`try_map`](Self::try_map).
    pub fn try_flat_map<R, I, E, F>(self, f: F) -> StreamStage<U, Then<C, TryFlatMap<F, I, R>>>
    where
        C::Out: Debug,
        R: Clone + State,
        I: IntoIterator<Item = R> + 'static,
        E: Display,
        F: Fn(&C::Out) -> Result<I, E> + Clone + Send + Sync + 'static,
    {
        self.then(TryFlatMap::new(f))
    }

    /// Sets what the fallible stage just before does with an item it could
    /// not process, instead of the job's policy.
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self
    where
        C: ErrorPolicySlot,
    {
        self.chain.set_error_policy(policy);
        self
    }

    /// Calls `f` on each item as it passes (for logging and debugging).
    pub fn peek<F>(self, f: F) -> StreamStage<U, Then<C, Peek<F>>>
    where
        F: Fn(&C::Out) + Clone + Send + Sync + 'static,
    {
        self.then(Peek(f))
    }

    /// Assigns event time from each item and generates watermarks: the
    /// highest timestamp seen minus the allowed lag. Accepts a `Duration`
    /// (the lag) or an [`EventTimePolicy`] (lag and idle timeout).
    pub fn with_timestamps<F>(
        self,
        timestamp_ms: F,
        policy: impl Into<EventTimePolicy>,
    ) -> StreamStage<U, Then<C, Timestamps<F>>>
    where
        F: Fn(&C::Out) -> i64 + Clone + Send + Sync + 'static,
    {
        let policy = policy.into();
        self.then(Timestamps::new(timestamp_ms, policy))
    }

    /// Names the stage's vertex (shown in metrics and errors).
    pub fn named(mut self, name: &str) -> Self {
        self.upstream.set_name(name.to_string());
        self
    }

    /// Fixes how many instances the stage's vertex runs.
    pub fn set_local_parallelism(mut self, parallelism: usize) -> Self {
        self.upstream.set_parallelism(parallelism);
        self
    }

    pub(crate) fn materialize(self) -> (Pipeline, Output<C::Out>) {
        let out = self.upstream.materialize(&self.pipeline, self.chain);
        (self.pipeline, out)
    }

    /// Spreads the items evenly over the next stage's instances (round robin
    /// by batch), after an extra queue hop.
    pub fn rebalance(self) -> StreamStage<impl Upstream<Out = C::Out>, Identity> {
        let (pipeline, from) = self.materialize();
        let up = upstream(
            "rebalance",
            |_: &ProcessorContext| PassThrough::<C::Out>::new(),
            vec![InputSpec {
                from,
                routing: Routing::unicast(),
                priority: 0,
            }],
        );
        StreamStage::new(pipeline, up)
    }

    /// Makes the stage usable by several downstream stages: each
    /// [`Shared::stream`] gets every item.
    pub fn share(self) -> Shared<C::Out> {
        let (pipeline, from) = self.materialize();
        Shared { pipeline, from }
    }

    /// Merges this stream with another of the same type.
    pub fn merge<U2, C2>(
        self,
        other: StreamStage<U2, C2>,
    ) -> StreamStage<impl Upstream<Out = C::Out>, Identity>
    where
        U2: Upstream,
        C2: Transform<U2::Out, Out = C::Out>,
    {
        let (pipeline, a) = self.materialize();
        let (_, b) = other.materialize();
        let inputs = [a, b]
            .into_iter()
            .map(|from| InputSpec {
                from,
                routing: Routing::unicast(),
                priority: 0,
            })
            .collect();
        let up = upstream(
            "merge",
            |_: &ProcessorContext| PassThrough::<C::Out>::new(),
            inputs,
        );
        StreamStage::new(pipeline, up)
    }

    /// Groups the stream by a key for the keyed stages that follow.
    pub fn grouping_key<K, KF>(self, key_fn: KF) -> KeyedStage<U, C, KF>
    where
        K: StateKey,
        KF: Fn(&C::Out) -> K + Clone + Send + Sync + 'static,
    {
        KeyedStage {
            stage: self,
            key_fn,
            single_instance: false,
        }
    }

    /// Windows the whole stream (not keyed): the results have key `()`, and
    /// one instance computes them.
    pub fn window(self, definition: WindowDefinition) -> WindowStage<U, C, fn(&C::Out)> {
        fn unit<T>(_: &T) {}
        let mut keyed = self.grouping_key(unit::<C::Out> as fn(&C::Out));
        keyed.single_instance = true;
        keyed.window(definition)
    }

    /// Joins each item with the item of a batch side input that has the
    /// same key. `joiner` gets the stream item and the match (if any) and
    /// returns what to emit: `None` drops the item (inner join), returning
    /// something for `None` makes it a left outer join.
    ///
    /// The side input is read to its end before the stream, so it must end:
    /// it is a stage of a [`Bounded`] source (`Sources::items`, a limited
    /// generator, `Sources::file_lines`, a map, a database query), which
    /// rustc checks. For reference data that changes, keep it in a grid map
    /// and use `map_using_map`.
    ///
    /// ```compile_fail
    /// use eddy_pipeline::{Pipeline, Sinks, Sources};
    /// let p = Pipeline::new();
    /// // An endless generator cannot be a side input: this does not compile.
    /// let side = p.read_from(Sources::generator(|n| (n, n)));
    /// p.read_from(Sources::items(vec![1u64, 2, 3]))
    ///     .hash_join(side, |x| *x, |s| s.0, |x, s| s.map(|s| x + s.1))
    ///     .write_to(Sinks::logger());
    /// ```
    ///
    /// ```
    /// use eddy_pipeline::{Pipeline, Sinks, Sources};
    /// let p = Pipeline::new();
    /// // A limited one can.
    /// let side = p.read_from(Sources::generator(|n| (n, n)).limit(10));
    /// p.read_from(Sources::items(vec![1u64, 2, 3]))
    ///     .hash_join(side, |x| *x, |s| s.0, |x, s| s.map(|s| x + s.1))
    ///     .write_to(Sinks::logger());
    /// ```
    pub fn hash_join<U2, C2, K, R, MK, SK, J>(
        self,
        side: StreamStage<U2, C2>,
        main_key: MK,
        side_key: SK,
        joiner: J,
    ) -> StreamStage<impl Upstream<Out = R>, Identity>
    where
        U2: BoundedUpstream,
        C2: Transform<U2::Out>,
        C2::Out: State,
        K: State + Hash + Eq,
        R: Clone + Send + 'static,
        MK: Fn(&C::Out) -> K + Clone + Send + Sync + 'static,
        SK: Fn(&C2::Out) -> K + Clone + Send + Sync + 'static,
        J: Fn(C::Out, Option<&C2::Out>) -> Option<R> + Clone + Send + Sync + 'static,
    {
        let (pipeline, main) = self.map(Either::<C::Out, C2::Out>::Left).materialize();
        let (_, side) = side.map(Either::<C::Out, C2::Out>::Right).materialize();
        let inputs = vec![
            InputSpec {
                from: side,
                routing: Routing::broadcast(),
                // The side input is read to the end before the stream.
                priority: -1,
            },
            InputSpec {
                from: main,
                routing: Routing::unicast(),
                priority: 0,
            },
        ];
        let up = upstream(
            "hash-join",
            move |_: &ProcessorContext| {
                HashJoinP::new(main_key.clone(), side_key.clone(), joiner.clone())
            },
            inputs,
        );
        StreamStage::new(pipeline, up)
    }

    /// Sends the stream to a sink.
    pub fn write_to<S: Sink<C::Out>>(self, sink: S) {
        let (pipeline, from) = self.materialize();
        let mut state = pipeline.state.borrow_mut();
        let name = state.unique_name(&sink.name());
        let parallelism = sink.parallelism();
        let sink = Arc::new(sink);
        let vertex = state.dag.vertex(name, move |ctx| sink.create(ctx));
        if let Some(n) = parallelism {
            state.dag.set_parallelism(vertex, n);
        }
        state.dag.edge(from, vertex, Routing::unicast());
        state.sinks += 1;
    }
}

/// A stage several downstream stages read; see [`StreamStage::share`].
pub struct Shared<T> {
    pipeline: Pipeline,
    from: Output<T>,
}

impl<T: Clone + Send + 'static> Shared<T> {
    /// A stream of all the shared stage's items.
    pub fn stream(&self) -> StreamStage<SharedUpstream<T>, Identity> {
        StreamStage::new(
            self.pipeline.clone(),
            SharedUpstream {
                from: self.from,
                name: "shared".into(),
                parallelism: None,
            },
        )
    }
}

/// A stream grouped by key.
#[must_use = "a keyed stage does nothing until aggregated or mapped"]
pub struct KeyedStage<U: Upstream, C, KF> {
    stage: StreamStage<U, C>,
    key_fn: KF,
    /// All keys on one instance: the stream was not keyed by the user.
    single_instance: bool,
}

/// The routing that sends each key to the instance owning it.
fn by_key<T, K, KF>(key_fn: KF) -> Routing<Event<T>>
where
    T: Clone + Send + 'static,
    K: Hash,
    KF: Fn(&T) -> K + Clone + Send + Sync + 'static,
{
    Routing::partitioned(move |e: &Event<T>| key_hash(&key_fn(&e.value)))
}

impl<U, C, K, KF> KeyedStage<U, C, KF>
where
    U: Upstream,
    C: Transform<U::Out>,
    K: StateKey,
    KF: Fn(&C::Out) -> K + Clone + Send + Sync + 'static,
{
    fn keyed_input(self) -> (Pipeline, Vec<InputSpec<Event<C::Out>>>, KF) {
        debug_assert!(!self.single_instance, "unkeyed streams only window");
        let key_fn = self.key_fn;
        let (pipeline, from) = self.stage.materialize();
        let routing = by_key(key_fn.clone());
        (
            pipeline,
            vec![InputSpec {
                from,
                routing,
                priority: 0,
            }],
            key_fn,
        )
    }

    /// Windows each key's events.
    pub fn window(self, definition: WindowDefinition) -> WindowStage<U, C, KF> {
        WindowStage {
            keyed: self,
            definition,
        }
    }

    /// Per key, the aggregate of all events so far, emitted with each event
    /// as `(key, result)`.
    pub fn rolling_aggregate<Op>(
        self,
        op: Op,
    ) -> StreamStage<impl Upstream<Out = (K, Op::Result)>, Identity>
    where
        Op: AggregateOperation<C::Out>,
    {
        let (pipeline, inputs, key_fn) = self.keyed_input();
        let up = upstream(
            "rolling-aggregate",
            move |_: &ProcessorContext| RollingP::new(key_fn.clone(), op.clone()),
            inputs,
        );
        StreamStage::new(pipeline, up)
    }

    /// Per key, the aggregate of the whole input, emitted as `(key, result)`
    /// when the input ends (for batch jobs).
    pub fn aggregate<Op>(
        self,
        op: Op,
    ) -> StreamStage<impl Upstream<Out = (K, Op::Result)>, Identity>
    where
        Op: AggregateOperation<C::Out>,
    {
        let (pipeline, inputs, key_fn) = self.keyed_input();
        let up = upstream(
            "aggregate",
            move |_: &ProcessorContext| GroupAggregateP::new(key_fn.clone(), op.clone()),
            inputs,
        );
        StreamStage::new(pipeline, up)
    }

    /// Per key, a state object that `map` reads and updates with each event,
    /// emitting what it returns. With a `ttl`, the state of a key that saw
    /// no event for that long in event time is dropped once the watermark
    /// passes, after `on_evict` had a last word.
    pub fn map_stateful<S, R, CF, MF, EF>(
        self,
        ttl: Option<Duration>,
        create: CF,
        map: MF,
        on_evict: EF,
    ) -> StreamStage<impl Upstream<Out = R>, Identity>
    where
        S: State,
        R: Clone + Send + 'static,
        CF: Fn() -> S + Clone + Send + Sync + 'static,
        MF: Fn(&mut S, &K, C::Out) -> Option<R> + Clone + Send + Sync + 'static,
        EF: Fn(S, &K, i64) -> Option<R> + Clone + Send + Sync + 'static,
    {
        let ttl_ms = ttl.map(|d| d.as_millis() as i64);
        let (pipeline, inputs, key_fn) = self.keyed_input();
        let up = upstream(
            "map-stateful",
            move |_: &ProcessorContext| {
                MapStatefulP::new(
                    key_fn.clone(),
                    ttl_ms,
                    create.clone(),
                    map.clone(),
                    on_evict.clone(),
                )
            },
            inputs,
        );
        StreamStage::new(pipeline, up)
    }
}

/// A keyed, windowed stream, waiting for its aggregate operation.
#[must_use = "a window stage does nothing until aggregated"]
pub struct WindowStage<U: Upstream, C, KF> {
    keyed: KeyedStage<U, C, KF>,
    definition: WindowDefinition,
}

impl<U, C, K, KF> WindowStage<U, C, KF>
where
    U: Upstream,
    C: Transform<U::Out>,
    K: StateKey,
    KF: Fn(&C::Out) -> K + Clone + Send + Sync + 'static,
{
    /// Calls `f` with each late event: one whose timestamp is below the
    /// watermark when it arrives, which no window takes any more. Late
    /// events are counted in the vertex metrics either way.
    pub fn on_late_event<F>(self, f: F) -> WindowStageWithLate<U, C, KF, C::Out>
    where
        F: Fn(Event<C::Out>) + Send + Sync + 'static,
    {
        WindowStageWithLate {
            window: self,
            on_late: Some(Arc::new(f)),
        }
    }

    /// Aggregates each window per key into a [`WindowResult`].
    pub fn aggregate<Op>(
        self,
        op: Op,
    ) -> StreamStage<impl Upstream<Out = WindowResult<K, Op::Result>>, Identity>
    where
        Op: AggregateOperation<C::Out>,
    {
        WindowStageWithLate {
            window: self,
            on_late: None,
        }
        .aggregate(op)
    }

    /// Co-groups this stream with `other` by key and window: per key and
    /// window, `left` aggregates this stream's events and `right` the
    /// other's.
    pub fn co_group<U2, C2, KF2, A, B>(
        self,
        other: KeyedStage<U2, C2, KF2>,
        left: A,
        right: B,
    ) -> StreamStage<impl Upstream<Out = CoGrouped<K, A::Result, B::Result>>, Identity>
    where
        U2: Upstream,
        C2: Transform<U2::Out>,
        KF2: Fn(&C2::Out) -> K + Clone + Send + Sync + 'static,
        A: AggregateOperation<C::Out>,
        B: AggregateOperation<C2::Out>,
    {
        let definition = self.definition;
        let key_left = self.keyed.key_fn.clone();
        let key_right = other.key_fn.clone();
        let key_either = move |e: &Either<C::Out, C2::Out>| match e {
            Either::Left(l) => key_left(l),
            Either::Right(r) => key_right(r),
        };
        let left_stage = self.keyed.stage.map(Either::<C::Out, C2::Out>::Left);
        let right_stage = other.stage.map(Either::<C::Out, C2::Out>::Right);
        let (pipeline, a) = left_stage.materialize();
        let (_, b) = right_stage.materialize();
        let inputs = [a, b]
            .into_iter()
            .map(|from| InputSpec {
                from,
                routing: by_key(key_either.clone()),
                priority: 0,
            })
            .collect();
        window_upstream(
            pipeline,
            definition,
            key_either,
            agg::co_aggregate(left, right),
            None,
            inputs,
        )
    }

    /// Joins this stream with `other` per key and window: `joiner` is
    /// called for every pair of events of the same key in the same window.
    /// The events wait in the window's state until it closes, hence [`State`].
    // The chain type stays open so that the stages after the join fuse
    // into the window vertex; naming it is what makes the type long.
    #[allow(clippy::type_complexity)]
    pub fn join<U2, C2, KF2, R, J>(
        self,
        other: KeyedStage<U2, C2, KF2>,
        joiner: J,
    ) -> StreamStage<
        impl Upstream<Out = JoinedLists<K, C::Out, C2::Out>>,
        impl Transform<JoinedLists<K, C::Out, C2::Out>, Out = R>,
    >
    where
        U2: Upstream,
        C2: Transform<U2::Out>,
        KF2: Fn(&C2::Out) -> K + Clone + Send + Sync + 'static,
        C::Out: State,
        C2::Out: State,
        R: Clone + State,
        J: Fn(&C::Out, &C2::Out) -> R + Clone + Send + Sync + 'static,
    {
        self.co_group(other, agg::to_list(), agg::to_list())
            .flat_map(move |w: JoinedLists<K, C::Out, C2::Out>| {
                let (lefts, rights) = w.value;
                let mut out = Vec::with_capacity(lefts.len() * rights.len());
                for l in &lefts {
                    for r in &rights {
                        out.push(joiner(l, r));
                    }
                }
                out
            })
    }
}

/// A window stage with a late-event handler; see
/// [`WindowStage::on_late_event`].
#[must_use = "a window stage does nothing until aggregated"]
pub struct WindowStageWithLate<U: Upstream, C, KF, T> {
    window: WindowStage<U, C, KF>,
    on_late: Option<LateEventFn<T>>,
}

impl<U, C, K, KF> WindowStageWithLate<U, C, KF, C::Out>
where
    U: Upstream,
    C: Transform<U::Out>,
    K: StateKey,
    KF: Fn(&C::Out) -> K + Clone + Send + Sync + 'static,
{
    /// Aggregates each window per key into a [`WindowResult`].
    pub fn aggregate<Op>(
        self,
        op: Op,
    ) -> StreamStage<impl Upstream<Out = WindowResult<K, Op::Result>>, Identity>
    where
        Op: AggregateOperation<C::Out>,
    {
        let definition = self.window.definition;
        let single = self.window.keyed.single_instance;
        let key_fn = self.window.keyed.key_fn;
        let (pipeline, from) = self.window.keyed.stage.materialize();
        let inputs = vec![InputSpec {
            from,
            routing: by_key(key_fn.clone()),
            priority: 0,
        }];
        let mut stage = window_upstream(pipeline, definition, key_fn, op, self.on_late, inputs);
        if single {
            stage = stage.set_local_parallelism(1);
        }
        stage
    }
}

/// The window vertex for `definition`, checked first.
fn window_upstream<T, K, KF, Op>(
    pipeline: Pipeline,
    definition: WindowDefinition,
    key_fn: KF,
    op: Op,
    on_late: Option<LateEventFn<T>>,
    inputs: Vec<InputSpec<Event<T>>>,
) -> StreamStage<impl Upstream<Out = WindowResult<K, Op::Result>>, Identity>
where
    T: Clone + Send + 'static,
    K: StateKey,
    KF: Fn(&T) -> K + Clone + Send + Sync + 'static,
    Op: AggregateOperation<T>,
{
    if let Err(e) = definition.validate() {
        pipeline
            .state
            .borrow_mut()
            .errors
            .push(EddyError::InvalidJob(format!("window stage: {e}")));
    }
    let up = upstream(
        "window",
        move |_: &ProcessorContext| match definition.kind {
            WindowKind::Session { gap_ms } => WindowProcessor::Session(
                SessionWindowP::new(gap_ms, key_fn.clone(), op.clone(), on_late.clone())
                    .with_early_results(definition.early_results_period_ms),
            ),
            _ => WindowProcessor::Frames(FrameWindowP::new(
                definition,
                key_fn.clone(),
                op.clone(),
                on_late.clone(),
            )),
        },
        inputs,
    );
    StreamStage::new(pipeline, up)
}

/// Either window processor, chosen once per instance (not per event).
pub enum WindowProcessor<T, K, KF, Op>
where
    T: Send + 'static,
    K: StateKey,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    /// Tumbling and sliding windows.
    Frames(FrameWindowP<T, K, KF, Op>),
    /// Session windows.
    Session(SessionWindowP<T, K, KF, Op>),
}

macro_rules! delegate {
    ($self:ident, $p:ident => $call:expr) => {
        match $self {
            WindowProcessor::Frames($p) => $call,
            WindowProcessor::Session($p) => $call,
        }
    };
}

impl<T, K, KF, Op> Processor for WindowProcessor<T, K, KF, Op>
where
    T: Send + 'static,
    K: StateKey,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    type In = Event<T>;
    type Out = Event<WindowResult<K, Op::Result>>;

    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        delegate!(self, p => p.init(ctx))
    }

    fn validate(&self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        delegate!(self, p => p.validate(ctx))
    }

    fn is_cooperative(&self) -> bool {
        delegate!(self, p => p.is_cooperative())
    }

    fn process<O: eddy_core::Outbox<Self::Out>>(
        &mut self,
        ordinal: usize,
        inbox: &mut eddy_core::Inbox<Event<T>>,
        outbox: &mut O,
    ) -> Result<(), ProcessorError> {
        delegate!(self, p => p.process(ordinal, inbox, outbox))
    }

    fn try_process_watermark<O: eddy_core::Outbox<Self::Out>>(
        &mut self,
        watermark: eddy_core::Watermark,
        outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        delegate!(self, p => p.try_process_watermark(watermark, outbox))
    }

    fn try_process<O: eddy_core::Outbox<Self::Out>>(
        &mut self,
        outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        delegate!(self, p => p.try_process(outbox))
    }

    fn complete_edge<O: eddy_core::Outbox<Self::Out>>(
        &mut self,
        ordinal: usize,
        outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        delegate!(self, p => p.complete_edge(ordinal, outbox))
    }

    fn complete<O: eddy_core::Outbox<Self::Out>>(
        &mut self,
        outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        delegate!(self, p => p.complete(outbox))
    }

    fn save_to_snapshot(
        &mut self,
        snapshot_id: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        delegate!(self, p => p.save_to_snapshot(snapshot_id, writer))
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        delegate!(self, p => p.restore_from_snapshot(entry))
    }

    fn finish_snapshot_restore(&mut self) -> Result<(), ProcessorError> {
        delegate!(self, p => p.finish_snapshot_restore())
    }

    fn snapshot_commit_finish(&mut self, snapshot_id: u64) -> Result<(), ProcessorError> {
        delegate!(self, p => p.snapshot_commit_finish(snapshot_id))
    }

    fn close(&mut self) -> Result<(), ProcessorError> {
        delegate!(self, p => p.close())
    }
}
