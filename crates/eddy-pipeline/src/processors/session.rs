//! Keyed session windows: per key, events closer than the gap form a session.
//!
//! Snapshot: one keyed entry per key with its open sessions; the index of
//! session ends is rebuilt on restore.

use super::windowed::{Closed, ClosedQueue, WindowEntry, WindowLogic, WindowP};
use super::LateEventFn;
use eddy_core::snapshot::{partition_of, SnapshotEntry, SnapshotWriter};
use eddy_core::{AggregateOperation, Event, ProcessorError, StateKey};
use hashbrown::HashMap;
use std::collections::BTreeSet;

/// One open session: `[start, end)` where `end` is the last event + gap.
struct Session<A> {
    start: i64,
    end: i64,
    acc: A,
}

/// The processor of `window(session(gap)).aggregate(..)`.
pub type SessionWindowP<T, K, KF, Op> = WindowP<T, Sessions<T, K, KF, Op>>;

/// The windows `Sessions` closes.
type Out<K, A> = ClosedQueue<K, A>;

/// The state of session windows: the open sessions of every key.
pub struct Sessions<T, K, KF, Op: AggregateOperation<T>> {
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
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T, K, KF, Op> SessionWindowP<T, K, KF, Op>
where
    T: Send + 'static,
    K: StateKey,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    /// Session windows with `gap_ms` of inactivity closing a session.
    pub fn new(gap_ms: i64, key_fn: KF, op: Op, on_late: Option<LateEventFn<T>>) -> Self {
        let sessions = Sessions {
            key_fn,
            op,
            gap_ms,
            sessions: HashMap::new(),
            ends: BTreeSet::new(),
            key_ids: HashMap::new(),
            keys_by_id: HashMap::new(),
            next_key_id: 0,
            _t: std::marker::PhantomData,
        };
        WindowP::with_logic(sessions, on_late)
    }
}

impl<T, K, KF, Op> Sessions<T, K, KF, Op>
where
    T: Send + 'static,
    K: StateKey,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    /// Emits a copy of every open session, marked early.
    fn emit_all_early(&self, out: &mut Out<K, Op::Acc>) {
        for (key, sessions) in &self.sessions {
            for s in sessions {
                // A copy made by combining into a fresh accumulator, so
                // that accumulators need not be `Clone`.
                let mut acc = self.op.create();
                self.op.combine(&mut acc, &s.acc);
                out.push_back(Closed {
                    start: s.start,
                    end: s.end,
                    key: key.clone(),
                    acc,
                    is_early: true,
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

    fn add(&mut self, event: Event<T>) {
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
    fn close_sessions_up_to(&mut self, limit: i64, out: &mut Out<K, Op::Acc>) {
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
                out.push_back(Closed {
                    start: s.start,
                    end: s.end,
                    key: key.clone(),
                    acc: s.acc,
                    is_early: false,
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

impl<T, K, KF, Op> WindowLogic<T> for Sessions<T, K, KF, Op>
where
    T: Send + 'static,
    K: StateKey,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    type Key = K;
    type Acc = Op::Acc;
    type Result = Op::Result;

    fn accumulate(&mut self, event: Event<T>) {
        self.add(event);
    }

    fn close_up_to(&mut self, limit: i64, out: &mut Out<K, Op::Acc>) {
        self.close_sessions_up_to(limit, out);
    }

    fn emit_early(&mut self, out: &mut Out<K, Op::Acc>) {
        self.emit_all_early(out);
    }

    fn finish(&self, acc: Op::Acc) -> Op::Result {
        self.op.finish(acc)
    }

    fn save(
        &self,
        _instance: usize,
        _parallelism: usize,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        for (key, list) in &self.sessions {
            let sessions: Vec<(i64, i64, &Op::Acc)> =
                list.iter().map(|s| (s.start, s.end, &s.acc)).collect();
            writer.put(partition_of(key), &WindowEntry::Sessions(key), &sessions)?;
        }
        Ok(())
    }

    fn restore(
        &mut self,
        key: WindowEntry<K>,
        entry: SnapshotEntry<'_>,
    ) -> Result<(), ProcessorError> {
        let WindowEntry::Sessions(key) = key else {
            return Err(ProcessorError::new(
                "a window snapshot holds frames of tumbling or sliding windows, but this stage has session windows: restore it into the job that saved it",
            ));
        };
        let saved: Vec<(i64, i64, Op::Acc)> = entry.value()?;
        let id = self.key_id(&key);
        let list = self.sessions.entry(key).or_default();
        for (start, end, acc) in saved {
            self.ends.insert((end, id));
            list.push(Session { start, end, acc });
        }
        list.sort_by_key(|s| s.start);
        Ok(())
    }
}
