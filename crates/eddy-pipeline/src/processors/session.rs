//! Keyed session windows: per key, events closer than the gap form a session.

use super::windowed::{WindowLogic, WindowP};
use super::LateEventFn;
use eddy_core::{AggregateOperation, Event, WindowResult};
use hashbrown::HashMap;
use std::collections::{BTreeSet, VecDeque};
use std::hash::Hash;

/// One open session: `[start, end)` where `end` is the last event + gap.
struct Session<A> {
    start: i64,
    end: i64,
    acc: A,
}

/// The processor of `window(session(gap)).aggregate(..)`.
pub type SessionWindowP<T, K, KF, Op> = WindowP<T, Sessions<T, K, KF, Op>>;

/// The results `Sessions` emits.
type Out<K, R> = VecDeque<Event<WindowResult<K, R>>>;

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
    K: Hash + Eq + Clone + Send + 'static,
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
    K: Hash + Eq + Clone + Send + 'static,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    /// Emits the current result of every open session, marked early.
    fn emit_all_early(&self, out: &mut Out<K, Op::Result>) {
        for (key, sessions) in &self.sessions {
            for s in sessions {
                out.push_back(Event {
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
    fn close_sessions_up_to(&mut self, limit: i64, out: &mut Out<K, Op::Result>) {
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
                out.push_back(Event {
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

impl<T, K, KF, Op> WindowLogic<T> for Sessions<T, K, KF, Op>
where
    T: Send + 'static,
    K: Hash + Eq + Clone + Send + 'static,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    type Key = K;
    type Result = Op::Result;

    fn accumulate(&mut self, event: Event<T>) {
        self.add(event);
    }

    fn close_up_to(&mut self, limit: i64, out: &mut Out<K, Op::Result>) {
        self.close_sessions_up_to(limit, out);
    }

    fn emit_early(&mut self, out: &mut Out<K, Op::Result>) {
        self.emit_all_early(out);
    }
}
