//! Keyed processors without windows: rolling aggregation, stateful mapping
//! with time-to-live, and whole-input (batch) aggregation.
//!
//! Snapshot: each saves one keyed entry per key (its accumulator or state),
//! so that the state follows its key to the owning instance at any
//! parallelism.

use super::{drain_into, value_of};
use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter};
use eddy_core::{
    AggregateOperation, Event, Inbox, Outbox, Processor, ProcessorError, State, StateKey, Watermark,
};
use hashbrown::HashMap;
use std::collections::{BTreeMap, VecDeque};

/// `rolling_aggregate`: per key, the aggregate of everything so far,
/// emitted with each event.
pub struct RollingP<T, K, KF, Op: AggregateOperation<T>> {
    key_fn: KF,
    op: Op,
    state: HashMap<K, Op::Acc>,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T, K, KF, Op: AggregateOperation<T>> RollingP<T, K, KF, Op> {
    /// A rolling aggregation by `key_fn`.
    pub fn new(key_fn: KF, op: Op) -> Self {
        RollingP {
            key_fn,
            op,
            state: HashMap::new(),
            _t: std::marker::PhantomData,
        }
    }
}

impl<T, K, KF, Op> Processor for RollingP<T, K, KF, Op>
where
    T: Send + 'static,
    K: StateKey,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    type In = Event<T>;
    type Out = Event<(K, Op::Result)>;

    fn process<O: Outbox<Self::Out>>(
        &mut self,
        _ordinal: usize,
        inbox: &mut Inbox<Event<T>>,
        outbox: &mut O,
    ) -> Result<(), ProcessorError> {
        while outbox.has_room() {
            let Some(event) = inbox.poll() else { break };
            let key = (self.key_fn)(&event.value);
            let op = &self.op;
            let acc = value_of(&mut self.state, &key, || op.create());
            op.accumulate(acc, &event.value);
            let value = (key, op.export(acc));
            outbox.offer_granted(Event {
                ts: event.ts,
                value,
            });
        }
        Ok(())
    }

    fn save_to_snapshot(
        &mut self,
        _: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        for (key, acc) in &self.state {
            writer.put_keyed(key, acc)?;
        }
        Ok(())
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let (key, acc) = entry.decode()?;
        restore_acc(&self.op, &mut self.state, key, acc);
        Ok(())
    }
}

/// Adds a restored accumulator to `state`, combining should two snapshot
/// entries for one key meet (after an at-least-once restore).
fn restore_acc<T, K: StateKey, Op: AggregateOperation<T>>(
    op: &Op,
    state: &mut HashMap<K, Op::Acc>,
    key: K,
    acc: Op::Acc,
) {
    match state.get_mut(&key) {
        Some(current) => op.combine(current, &acc),
        None => {
            state.insert(key, acc);
        }
    }
}

/// Per-key state of `map_stateful` with the time of its last event.
struct Entry<S> {
    state: S,
    last_ts: i64,
}

/// `map_stateful`: per key, a state object that a function reads and updates
/// with each event; state not touched for `ttl_ms` of event time is evicted
/// (calling `on_evict`) when the watermark passes.
pub struct MapStatefulP<T, K, S, R, KF, CF, MF, EF> {
    key_fn: KF,
    create: CF,
    map: MF,
    on_evict: EF,
    ttl_ms: Option<i64>,
    states: HashMap<K, Entry<S>>,
    /// Keys by the event-time bucket in which they may expire. A key is
    /// filed again only when its expiry moves to a later bucket, so this
    /// costs no allocation per event; stale filings are skipped on expiry.
    expiry: BTreeMap<i64, Vec<K>>,
    pending: VecDeque<Event<R>>,
    _t: std::marker::PhantomData<fn(T)>,
}

/// Expiry bucket granularity as a fraction of the TTL: 1/16 keeps eviction
/// within 7% of the TTL late while refiling a busy key at most 16 times per
/// TTL.
const EXPIRY_BUCKETS_PER_TTL: i64 = 16;

impl<T, K, S, R, KF, CF, MF, EF> MapStatefulP<T, K, S, R, KF, CF, MF, EF> {
    /// Stateful mapping by `key_fn`; `ttl_ms` of `None` keeps state forever.
    pub fn new(key_fn: KF, ttl_ms: Option<i64>, create: CF, map: MF, on_evict: EF) -> Self {
        MapStatefulP {
            key_fn,
            create,
            map,
            on_evict,
            ttl_ms,
            states: HashMap::new(),
            expiry: BTreeMap::new(),
            pending: VecDeque::new(),
            _t: std::marker::PhantomData,
        }
    }
}

impl<T, K, S, R, KF, CF, MF, EF> MapStatefulP<T, K, S, R, KF, CF, MF, EF>
where
    K: StateKey,
    EF: Fn(S, &K, i64) -> Option<R>,
{
    fn bucket(&self, expires_at: i64) -> i64 {
        let step = (self.ttl_ms.unwrap_or(1) / EXPIRY_BUCKETS_PER_TTL).max(1);
        expires_at.div_euclid(step) * step + step
    }

    /// Files `key` for eviction in the bucket of its expiry.
    fn file_for_expiry(&mut self, key: K, last_ts: i64) {
        if let Some(ttl) = self.ttl_ms {
            let bucket = self.bucket(last_ts.saturating_add(ttl));
            self.expiry.entry(bucket).or_default().push(key);
        }
    }

    /// Evicts the state of keys whose last event is more than the TTL behind
    /// `watermark`.
    fn evict(&mut self, watermark: i64) {
        let Some(ttl) = self.ttl_ms else { return };
        while let Some(entry) = self.expiry.first_entry() {
            if *entry.key() > watermark {
                break;
            }
            for key in entry.remove() {
                let expired = self
                    .states
                    .get(&key)
                    .is_some_and(|e| e.last_ts.saturating_add(ttl) < watermark);
                // Not expired: the key was updated since this filing, and
                // the update filed it again in its later bucket.
                if expired {
                    let e = self.states.remove(&key).expect("checked above");
                    if let Some(r) = (self.on_evict)(e.state, &key, watermark) {
                        self.pending.push_back(Event {
                            ts: watermark,
                            value: r,
                        });
                    }
                }
            }
        }
    }
}

impl<T, K, S, R, KF, CF, MF, EF> Processor for MapStatefulP<T, K, S, R, KF, CF, MF, EF>
where
    T: Send + 'static,
    K: StateKey,
    S: State,
    R: Clone + Send + 'static,
    KF: Fn(&T) -> K + Send + 'static,
    CF: Fn() -> S + Send + 'static,
    MF: Fn(&mut S, &K, T) -> Option<R> + Send + 'static,
    EF: Fn(S, &K, i64) -> Option<R> + Send + 'static,
{
    type In = Event<T>;
    type Out = Event<R>;

    fn process<O: Outbox<Event<R>>>(
        &mut self,
        _ordinal: usize,
        inbox: &mut Inbox<Event<T>>,
        outbox: &mut O,
    ) -> Result<(), ProcessorError> {
        while outbox.has_room() {
            let Some(event) = inbox.poll() else { break };
            let key = (self.key_fn)(&event.value);
            let create = &self.create;
            let entry = value_of(&mut self.states, &key, || Entry {
                state: create(),
                last_ts: i64::MIN,
            });
            let old_bucket_ts = entry.last_ts;
            entry.last_ts = entry.last_ts.max(event.ts);
            let new_ts = entry.last_ts;
            let result = (self.map)(&mut entry.state, &key, event.value);
            if let Some(ttl) = self.ttl_ms {
                if old_bucket_ts == i64::MIN
                    || self.bucket(old_bucket_ts.saturating_add(ttl))
                        != self.bucket(new_ts.saturating_add(ttl))
                {
                    self.file_for_expiry(key, new_ts);
                }
            }
            if let Some(value) = result {
                outbox.offer_granted(Event {
                    ts: event.ts,
                    value,
                });
            }
        }
        Ok(())
    }

    fn try_process_watermark<O: Outbox<Event<R>>>(
        &mut self,
        watermark: Watermark,
        outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        if self.pending.is_empty() {
            self.evict(watermark.0);
        }
        Ok(drain_into(&mut self.pending, outbox) && outbox.offer_watermark(watermark))
    }

    fn save_to_snapshot(
        &mut self,
        _: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        // Eviction output waits only while its watermark is being taken,
        // and the runtime finishes taking a watermark before a barrier.
        debug_assert!(
            self.pending.is_empty(),
            "eviction output pending at a snapshot"
        );
        for (key, e) in &self.states {
            writer.put_keyed(key, &(&e.state, e.last_ts))?;
        }
        Ok(())
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let (key, (state, last_ts)): (K, (S, i64)) = entry.decode()?;
        // The expiry index is not saved: it is rebuilt from the times.
        self.file_for_expiry(key.clone(), last_ts);
        self.states.insert(key, Entry { state, last_ts });
        Ok(())
    }
}

/// Keyed aggregation over the whole input (a batch): one result per key
/// when the input ends.
pub struct GroupAggregateP<T, K, KF, Op: AggregateOperation<T>> {
    key_fn: KF,
    op: Op,
    state: HashMap<K, Op::Acc>,
    /// Once the input ended: the results not emitted yet (kept as
    /// accumulators, which a snapshot can save).
    results: Option<std::vec::IntoIter<(K, Op::Acc)>>,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T, K, KF, Op: AggregateOperation<T>> GroupAggregateP<T, K, KF, Op> {
    /// Aggregation of all input by `key_fn`.
    pub fn new(key_fn: KF, op: Op) -> Self {
        GroupAggregateP {
            key_fn,
            op,
            state: HashMap::new(),
            results: None,
            _t: std::marker::PhantomData,
        }
    }
}

impl<T, K, KF, Op> Processor for GroupAggregateP<T, K, KF, Op>
where
    T: Send + 'static,
    K: StateKey,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    type In = Event<T>;
    type Out = Event<(K, Op::Result)>;

    fn process<O: Outbox<Self::Out>>(
        &mut self,
        _ordinal: usize,
        inbox: &mut Inbox<Event<T>>,
        _outbox: &mut O,
    ) -> Result<(), ProcessorError> {
        while let Some(event) = inbox.poll() {
            let key = (self.key_fn)(&event.value);
            let op = &self.op;
            op.accumulate(
                value_of(&mut self.state, &key, || op.create()),
                &event.value,
            );
        }
        Ok(())
    }

    fn try_process_watermark<O: Outbox<Self::Out>>(
        &mut self,
        _watermark: Watermark,
        _outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        // Results carry no event time: watermarks end here.
        Ok(true)
    }

    fn complete<O: Outbox<Self::Out>>(&mut self, outbox: &mut O) -> Result<bool, ProcessorError> {
        let results = self
            .results
            .get_or_insert_with(|| self.state.drain().collect::<Vec<_>>().into_iter());
        while outbox.has_room() {
            let Some((key, acc)) = results.next() else {
                return Ok(true);
            };
            let value = (key, self.op.finish(acc));
            outbox.offer_granted(Event::untimed(value));
        }
        Ok(false)
    }

    fn save_to_snapshot(
        &mut self,
        _: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        let unemitted = self.results.iter().flat_map(|r| r.as_slice());
        for (key, acc) in self.state.iter().chain(unemitted.map(|(k, a)| (k, a))) {
            writer.put_keyed(key, acc)?;
        }
        Ok(())
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let (key, acc) = entry.decode()?;
        restore_acc(&self.op, &mut self.state, key, acc);
        Ok(())
    }
}
