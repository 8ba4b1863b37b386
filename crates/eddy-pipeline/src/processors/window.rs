//! Keyed tumbling and sliding windows, kept as frames.
//!
//! Each event is accumulated into the frame (`slide` long) holding its
//! timestamp. When the watermark passes a window's end, the window's result
//! per key is the combination of its frames. With an operation that can
//! deduct, a sliding window keeps one running accumulator per key: it
//! combines the newest frame in and deducts the oldest out, so each slide
//! costs O(keys in two frames) instead of O(keys × frames per window).
//!
//! Snapshot: every frame slot and running sliding accumulator is a keyed
//! entry; the newest ("hot") frame is saved like the others and restored
//! into the frame tree. The end of the next window to emit is saved per
//! instance.

use super::windowed::{Closed, ClosedQueue, WindowEntry, WindowLogic, WindowP};
use super::{value_of, LateEventFn};
use eddy_core::snapshot::{partition_of, SnapshotEntry, SnapshotWriter, BROADCAST};
use eddy_core::{AggregateOperation, Event, ProcessorError, StateKey, WindowDefinition};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An accumulator and the number of events in it (to drop keys whose window
/// became empty after a deduct).
#[derive(Serialize, Deserialize)]
struct Slot<A> {
    acc: A,
    events: u64,
}

/// The slot of `key`, created empty if missing.
fn slot_of<'m, T, K, Op>(
    map: &'m mut HashMap<K, Slot<Op::Acc>>,
    key: &K,
    op: &Op,
) -> &'m mut Slot<Op::Acc>
where
    K: StateKey,
    Op: AggregateOperation<T>,
{
    value_of(map, key, || Slot {
        acc: op.create(),
        events: 0,
    })
}

/// The processor of `window(..).aggregate(..)` for tumbling and sliding
/// windows.
pub type FrameWindowP<T, K, KF, Op> = WindowP<T, Frames<T, K, KF, Op>>;

/// The state of tumbling and sliding windows: frames of one slide.
pub struct Frames<T, K, KF, Op: AggregateOperation<T>> {
    key_fn: KF,
    op: Op,
    frame_ms: i64,
    size_ms: i64,
    frames: BTreeMap<i64, HashMap<K, Slot<Op::Acc>>>,
    /// The newest frame, kept out of `frames`: nearly every event lands in
    /// it, and reaching it needs no tree lookup. Moved into `frames` when a
    /// newer frame starts or a window that needs it is emitted.
    hot: Option<(i64, HashMap<K, Slot<Op::Acc>>)>,
    /// Running per-key accumulators of the current sliding window (deduct).
    sliding: HashMap<K, Slot<Op::Acc>>,
    /// End of the next window to emit, once known.
    next_end: Option<i64>,
    _t: std::marker::PhantomData<fn(T)>,
}

/// The windows `Frames` closes.
type Out<K, A> = ClosedQueue<K, A>;

impl<T, K, KF, Op> FrameWindowP<T, K, KF, Op>
where
    T: Send + 'static,
    K: StateKey,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    /// A window processor; `def` must be tumbling or sliding and valid.
    pub fn new(def: WindowDefinition, key_fn: KF, op: Op, on_late: Option<LateEventFn<T>>) -> Self {
        let (frame_ms, size_ms) = def
            .frames()
            .expect("FrameWindowP takes tumbling or sliding windows");
        let frames = Frames {
            key_fn,
            op,
            frame_ms,
            size_ms,
            frames: BTreeMap::new(),
            hot: None,
            sliding: HashMap::new(),
            next_end: None,
            _t: std::marker::PhantomData,
        };
        WindowP::with_logic(frames, on_late).with_early_results(def.early_results_period_ms)
    }
}

impl<T, K, KF, Op> Frames<T, K, KF, Op>
where
    T: Send + 'static,
    K: StateKey,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    fn uses_deduct(&self) -> bool {
        self.size_ms > self.frame_ms && self.op.can_deduct()
    }

    #[inline]
    fn add(&mut self, event: Event<T>) {
        let frame_ms = self.frame_ms;
        let in_hot = |h: i64| event.ts < h && event.ts >= h - frame_ms;
        let frame = match &mut self.hot {
            // The common case, decided without dividing the timestamp.
            Some((h, map)) if in_hot(*h) => map,
            _ => {
                let end = eddy_core::frame_end(event.ts, frame_ms);
                if self.hot.as_ref().is_none_or(|(h, _)| end > *h) {
                    // The next frame likely sees as many keys as the last
                    // one: sizing it so saves rehashing it as it grows.
                    let keys = self.hot.as_ref().map_or(0, |(_, map)| map.len());
                    self.retire_hot();
                    self.hot = Some((end, HashMap::with_capacity(keys)));
                }
                match &mut self.hot {
                    Some((h, map)) if *h == end => map,
                    _ => self.frames.entry(end).or_default(),
                }
            }
        };
        let key = (self.key_fn)(&event.value);
        let op = &self.op;
        let slot = frame.entry(key).or_insert_with(|| Slot {
            acc: op.create(),
            events: 0,
        });
        op.accumulate(&mut slot.acc, &event.value);
        slot.events += 1;
    }

    /// Moves the hot frame into `frames`.
    fn retire_hot(&mut self) {
        let Some((end, map)) = self.hot.take() else {
            return;
        };
        match self.frames.entry(end) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(map);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                let frame = o.get_mut();
                for (key, slot) in map {
                    let s = slot_of(frame, &key, &self.op);
                    self.op.combine(&mut s.acc, &slot.acc);
                    s.events += slot.events;
                }
            }
        }
    }

    /// Closes every window ending at or before `limit` into `out`.
    fn emit_up_to(&mut self, limit: i64, out: &mut Out<K, Op::Acc>) {
        if self.hot.as_ref().is_some_and(|(end, _)| *end <= limit) {
            self.retire_hot();
        }
        loop {
            let first_frame = self.frames.keys().next().copied();
            let next = match (self.next_end, first_frame) {
                // Running sliding state must move one slide at a time.
                (Some(n), _) if !self.sliding.is_empty() => n,
                // Windows before the first frame with data are empty: skip.
                (Some(n), Some(f)) => n.max(f),
                (None, Some(f)) => f,
                (_, None) => return,
            };
            if next > limit {
                // Not recorded: an event may still open an earlier frame.
                return;
            }
            self.next_end = Some(next);
            self.emit_next(out);
        }
    }

    /// Emits the window ending at `next_end` and moves on by one slide.
    fn emit_next(&mut self, out: &mut Out<K, Op::Acc>) {
        let Some(end) = self.next_end else { return };
        let start = end - self.size_ms;
        if self.size_ms == self.frame_ms {
            if let Some(frame) = self.frames.remove(&end) {
                for (key, slot) in frame {
                    out.push_back(Closed {
                        start,
                        end,
                        key,
                        acc: slot.acc,
                        is_early: false,
                    });
                }
            }
        } else if self.uses_deduct() {
            if let Some(frame) = self.frames.get(&end) {
                for (key, slot) in frame {
                    let op = &self.op;
                    let s = slot_of(&mut self.sliding, key, op);
                    op.combine(&mut s.acc, &slot.acc);
                    s.events += slot.events;
                }
            }
            for (key, s) in &self.sliding {
                out.push_back(Closed {
                    start,
                    end,
                    key: key.clone(),
                    acc: self.copy(&s.acc),
                    is_early: false,
                });
            }
            // The oldest frame leaves the window before the next one.
            let leaving = start + self.frame_ms;
            if let Some(frame) = self.frames.remove(&leaving) {
                for (key, slot) in frame {
                    if let Some(s) = self.sliding.get_mut(&key) {
                        self.op.deduct(&mut s.acc, &slot.acc);
                        s.events -= slot.events;
                        if s.events == 0 {
                            self.sliding.remove(&key);
                        }
                    }
                }
            }
        } else {
            let combined = self.combine_window(end);
            for (key, slot) in combined {
                out.push_back(Closed {
                    start,
                    end,
                    key,
                    acc: slot.acc,
                    is_early: false,
                });
            }
            let leaving = start + self.frame_ms;
            self.frames.retain(|&f, _| f > leaving);
        }
        self.next_end = Some(end + self.frame_ms);
    }

    /// A copy of `acc`, made by combining it into a fresh accumulator (the
    /// identity of `combine`), so that accumulators need not be `Clone`.
    fn copy(&self, acc: &Op::Acc) -> Op::Acc {
        let mut copy = self.op.create();
        self.op.combine(&mut copy, acc);
        copy
    }

    /// The per-key combination of the frames of the window ending at `end`.
    fn combine_window(&self, end: i64) -> HashMap<K, Slot<Op::Acc>> {
        let mut combined: HashMap<K, Slot<Op::Acc>> = HashMap::new();
        for (_, frame) in self.frames.range(end - self.size_ms + 1..=end) {
            for (key, slot) in frame {
                let op = &self.op;
                let c = slot_of(&mut combined, key, op);
                op.combine(&mut c.acc, &slot.acc);
                c.events += slot.events;
            }
        }
        combined
    }

    /// Emits a copy of every window still open, marked early.
    fn emit_all_early(&mut self, out: &mut Out<K, Op::Acc>) {
        self.retire_hot();
        let (Some(&first_frame), Some(&last_frame)) =
            (self.frames.keys().next(), self.frames.keys().next_back())
        else {
            return;
        };
        let mut end = self.next_end.map_or(first_frame, |n| n.max(first_frame));
        while end <= last_frame + self.size_ms - self.frame_ms {
            for (key, slot) in self.combine_window(end) {
                out.push_back(Closed {
                    start: end - self.size_ms,
                    end,
                    key,
                    acc: slot.acc,
                    is_early: true,
                });
            }
            end += self.frame_ms;
        }
    }

    /// Adds a restored slot into `map` (combining, should two snapshots'
    /// entries for one key meet, as after an at-least-once restore).
    fn restore_slot(op: &Op, map: &mut HashMap<K, Slot<Op::Acc>>, key: K, slot: Slot<Op::Acc>) {
        match map.get_mut(&key) {
            Some(s) => {
                op.combine(&mut s.acc, &slot.acc);
                s.events += slot.events;
            }
            None => {
                map.insert(key, slot);
            }
        }
    }
}

impl<T, K, KF, Op> WindowLogic<T> for Frames<T, K, KF, Op>
where
    T: Send + 'static,
    K: StateKey,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    type Key = K;
    type Acc = Op::Acc;
    type Result = Op::Result;

    #[inline]
    fn accumulate(&mut self, event: Event<T>) {
        self.add(event);
    }

    fn close_up_to(&mut self, limit: i64, out: &mut Out<K, Op::Acc>) {
        self.emit_up_to(limit, out);
    }

    fn emit_early(&mut self, out: &mut Out<K, Op::Acc>) {
        self.emit_all_early(out);
    }

    fn finish(&self, acc: Op::Acc) -> Op::Result {
        self.op.finish(acc)
    }

    fn save(
        &self,
        instance: usize,
        parallelism: usize,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        writer.put(
            BROADCAST,
            &WindowEntry::<K>::NextEnd {
                instance: instance as u64,
                parallelism: parallelism as u64,
            },
            &self.next_end,
        )?;
        let hot = self.hot.iter().map(|(end, frame)| (end, frame));
        for (&end, frame) in self.frames.iter().chain(hot) {
            for (key, slot) in frame {
                writer.put(partition_of(key), &WindowEntry::Frame { end, key }, slot)?;
            }
        }
        for (key, slot) in &self.sliding {
            writer.put(partition_of(key), &WindowEntry::Sliding(key), slot)?;
        }
        Ok(())
    }

    fn restore(
        &mut self,
        key: WindowEntry<K>,
        entry: SnapshotEntry<'_>,
    ) -> Result<(), ProcessorError> {
        match key {
            WindowEntry::NextEnd { .. } => {
                let next_end: Option<i64> = entry.value()?;
                self.next_end = self.next_end.max(next_end);
            }
            WindowEntry::Frame { end, key } => {
                let frame = self.frames.entry(end).or_default();
                Self::restore_slot(&self.op, frame, key, entry.value()?);
            }
            WindowEntry::Sliding(key) => {
                Self::restore_slot(&self.op, &mut self.sliding, key, entry.value()?);
            }
            _ => {
                return Err(ProcessorError::new(
                    "a window snapshot holds session state, but this stage has tumbling or sliding windows: restore it into the job that saved it",
                ))
            }
        }
        Ok(())
    }
}
