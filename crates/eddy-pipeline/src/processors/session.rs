//! Keyed session windows: per key, events closer than the gap form a session.

use super::{drain_into, LateEventFn};
use eddy_core::{
    AggregateOperation, Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError,
    Watermark, WindowResult,
};
use hashbrown::HashMap;
use std::collections::{BTreeSet, VecDeque};
use std::hash::Hash;
use std::time::Instant;

/// One open session: `[start, end)` where `end` is the last event + gap.
struct Session<A> {
    start: i64,
    end: i64,
    acc: A,
}

/// The processor of `window(session(gap)).aggregate(..)`.
pub struct SessionWindowP<T, K, KF, Op: AggregateOperation<T>> {
    key_fn: KF,
    op: Op,
    gap_ms: i64,
    /// Open sessions per key, sorted by start, never overlapping.
    sessions: HashMap<K, Vec<Session<Op::Acc>>>,
    /// `(end, key index)` of every open session, to find the ones a
    /// watermark closes without scanning all keys.
    ends: BTreeSet<(i64, u64)>,
    key_ids: HashMap<K, u64>,
    keys_by_id: HashMap<u64, K>,
    next_key_id: u64,
    watermark: i64,
    pending: VecDeque<Event<WindowResult<K, Op::Result>>>,
    on_late: Option<LateEventFn<T>>,
    context: Option<ProcessorContext>,
    early_period_ms: Option<u64>,
    last_early: Instant,
}

impl<T, K, KF, Op> SessionWindowP<T, K, KF, Op>
where
    T: Send + 'static,
    K: Hash + Eq + Clone + Send + 'static,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    /// Session windows with `gap_ms` of inactivity closing a session.
    pub fn new(gap_ms: i64, key_fn: KF, op: Op, on_late: Option<LateEventFn<T>>) -> Self {
        SessionWindowP {
            key_fn,
            op,
            gap_ms,
            sessions: HashMap::new(),
            ends: BTreeSet::new(),
            key_ids: HashMap::new(),
            keys_by_id: HashMap::new(),
            next_key_id: 0,
            watermark: i64::MIN,
            pending: VecDeque::new(),
            on_late,
            context: None,
            early_period_ms: None,
            last_early: Instant::now(),
        }
    }

    /// Also emits the current result of every open session this often (in
    /// wall-clock time), marked early.
    pub fn with_early_results(mut self, period_ms: Option<u64>) -> Self {
        self.early_period_ms = period_ms;
        self
    }

    /// Emits the current result of every open session, marked early.
    fn emit_early(&mut self) {
        for (key, sessions) in &self.sessions {
            for s in sessions {
                self.pending.push_back(Event {
                    ts: s.end - 1,
                    value: WindowResult {
                        start: s.start,
                        end: s.end,
                        key: key.clone(),
                        value: self.op.export(&s.acc),
                        is_early: true,
                    },
                });
            }
        }
    }

    fn key_id(&mut self, key: &K) -> u64 {
        if let Some(id) = self.key_ids.get(key) {
            return *id;
        }
        let id = self.next_key_id;
        self.next_key_id += 1;
        self.key_ids.insert(key.clone(), id);
        self.keys_by_id.insert(id, key.clone());
        id
    }

    fn accumulate(&mut self, event: Event<T>) {
        if event.ts < self.watermark {
            if let Some(ctx) = &self.context {
                ctx.count_late(1);
            }
            if let Some(f) = &self.on_late {
                f(event);
            }
            return;
        }
        let key = (self.key_fn)(&event.value);
        let id = self.key_id(&key);
        let (start, end) = (event.ts, event.ts + self.gap_ms);
        let list = self.sessions.entry(key).or_default();
        // Sessions that overlap [start, end) merge with the new event.
        let mut merged = Session {
            start,
            end,
            acc: self.op.create(),
        };
        self.op.accumulate(&mut merged.acc, &event.value);
        let mut i = 0;
        while i < list.len() {
            let s = &list[i];
            if s.start < merged.end && merged.start < s.end {
                let s = list.remove(i);
                self.ends.remove(&(s.end, id));
                merged.start = merged.start.min(s.start);
                merged.end = merged.end.max(s.end);
                self.op.combine(&mut merged.acc, &s.acc);
            } else {
                i += 1;
            }
        }
        self.ends.insert((merged.end, id));
        let pos = list.partition_point(|s| s.start < merged.start);
        list.insert(pos, merged);
    }

    /// Emits every session whose end is at or before `limit`.
    fn close_up_to(&mut self, limit: i64) {
        while let Some(&(end, id)) = self.ends.first() {
            if end > limit {
                break;
            }
            self.ends.pop_first();
            let key = self.keys_by_id[&id].clone();
            let Some(list) = self.sessions.get_mut(&key) else {
                continue;
            };
            if let Some(pos) = list.iter().position(|s| s.end == end) {
                let s = list.remove(pos);
                self.pending.push_back(Event {
                    ts: s.end - 1,
                    value: WindowResult {
                        start: s.start,
                        end: s.end,
                        key: key.clone(),
                        value: self.op.finish(s.acc),
                        is_early: false,
                    },
                });
            }
            if list.is_empty() {
                self.sessions.remove(&key);
                self.key_ids.remove(&key);
                self.keys_by_id.remove(&id);
            }
        }
    }
}

impl<T, K, KF, Op> Processor for SessionWindowP<T, K, KF, Op>
where
    T: Send + 'static,
    K: Hash + Eq + Clone + Send + 'static,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    type In = Event<T>;
    type Out = Event<WindowResult<K, Op::Result>>;

    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.context = Some(ctx.clone());
        Ok(())
    }

    fn process<O: Outbox<Self::Out>>(
        &mut self,
        _ordinal: usize,
        inbox: &mut Inbox<Event<T>>,
        _outbox: &mut O,
    ) -> Result<(), ProcessorError> {
        while let Some(event) = inbox.poll() {
            self.accumulate(event);
        }
        Ok(())
    }

    fn try_process_watermark<O: Outbox<Self::Out>>(
        &mut self,
        watermark: Watermark,
        outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        if self.pending.is_empty() {
            self.watermark = self.watermark.max(watermark.0);
            self.close_up_to(watermark.0);
        }
        Ok(drain_into(&mut self.pending, outbox) && outbox.offer_watermark(watermark))
    }

    fn try_process<O: Outbox<Self::Out>>(
        &mut self,
        outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        if !drain_into(&mut self.pending, outbox) {
            return Ok(false);
        }
        if let Some(period) = self.early_period_ms {
            if self.last_early.elapsed().as_millis() as u64 >= period {
                self.last_early = Instant::now();
                self.emit_early();
                drain_into(&mut self.pending, outbox);
            }
        }
        Ok(true)
    }

    fn complete<O: Outbox<Self::Out>>(&mut self, outbox: &mut O) -> Result<bool, ProcessorError> {
        if self.pending.is_empty() {
            self.close_up_to(i64::MAX);
        }
        Ok(drain_into(&mut self.pending, outbox))
    }
}
