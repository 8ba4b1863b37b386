//! Keyed tumbling and sliding windows, kept as frames.
//!
//! Each event is accumulated into the frame (`slide` long) holding its
//! timestamp. When the watermark passes a window's end, the window's result
//! per key is the combination of its frames. With an operation that can
//! deduct, a sliding window keeps one running accumulator per key: it
//! combines the newest frame in and deducts the oldest out, so each slide
//! costs O(keys in two frames) instead of O(keys × frames per window).

use super::{drain_into, LateEventFn};
use eddy_core::{
    AggregateOperation, Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError,
    Watermark, WindowDefinition, WindowResult,
};
use hashbrown::HashMap;
use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;
use std::time::Instant;

/// An accumulator and the number of events in it (to drop keys whose window
/// became empty after a deduct).
struct Slot<A> {
    acc: A,
    events: u64,
}

/// The slot of `key`, created empty if missing; clones the key only then.
fn slot_of<'m, T, K, Op>(
    map: &'m mut HashMap<K, Slot<Op::Acc>>,
    key: &K,
    op: &Op,
) -> &'m mut Slot<Op::Acc>
where
    K: Hash + Eq + Clone,
    Op: AggregateOperation<T>,
{
    if !map.contains_key(key) {
        map.insert(
            key.clone(),
            Slot {
                acc: op.create(),
                events: 0,
            },
        );
    }
    map.get_mut(key).expect("inserted above")
}

/// The processor of `window(..).aggregate(..)` for tumbling and sliding
/// windows.
pub struct FrameWindowP<T, K, KF, Op: AggregateOperation<T>> {
    key_fn: KF,
    op: Op,
    frame_ms: i64,
    size_ms: i64,
    early_period_ms: Option<u64>,
    frames: BTreeMap<i64, HashMap<K, Slot<Op::Acc>>>,
    /// The newest frame, kept out of `frames`: nearly every event lands in
    /// it, and reaching it needs no tree lookup. Moved into `frames` when a
    /// newer frame starts or a window that needs it is emitted.
    hot: Option<(i64, HashMap<K, Slot<Op::Acc>>)>,
    /// Running per-key accumulators of the current sliding window (deduct).
    sliding: HashMap<K, Slot<Op::Acc>>,
    /// End of the next window to emit, once known.
    next_end: Option<i64>,
    watermark: i64,
    pending: VecDeque<Event<WindowResult<K, Op::Result>>>,
    on_late: Option<LateEventFn<T>>,
    late_count: u64,
    context: Option<ProcessorContext>,
    last_early: Instant,
}

impl<T, K, KF, Op> FrameWindowP<T, K, KF, Op>
where
    T: Send + 'static,
    K: Hash + Eq + Clone + Send + 'static,
    KF: Fn(&T) -> K + Send + 'static,
    Op: AggregateOperation<T>,
{
    /// A window processor; `def` must be tumbling or sliding and valid.
    pub fn new(def: WindowDefinition, key_fn: KF, op: Op, on_late: Option<LateEventFn<T>>) -> Self {
        let (frame_ms, size_ms) = def
            .frames()
            .expect("FrameWindowP takes tumbling or sliding windows");
        FrameWindowP {
            key_fn,
            op,
            frame_ms,
            size_ms,
            early_period_ms: def.early_results_period_ms,
            frames: BTreeMap::new(),
            hot: None,
            sliding: HashMap::new(),
            next_end: None,
            watermark: i64::MIN,
            pending: VecDeque::new(),
            on_late,
            late_count: 0,
            context: None,
            last_early: Instant::now(),
        }
    }

    fn uses_deduct(&self) -> bool {
        self.size_ms > self.frame_ms && self.op.can_deduct()
    }

    #[inline]
    fn accumulate(&mut self, event: Event<T>) {
        if event.ts < self.watermark {
            self.late_count += 1;
            if let Some(ctx) = &self.context {
                ctx.count_late(1);
            }
            if let Some(f) = &self.on_late {
                f(event);
            }
            return;
        }
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

    /// Emits every window ending at or before `limit` into `pending`.
    fn emit_up_to(&mut self, limit: i64) {
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
            self.emit_next();
        }
    }

    /// Emits the window ending at `next_end` and moves on by one slide.
    fn emit_next(&mut self) {
        let Some(end) = self.next_end else { return };
        let start = end - self.size_ms;
        let ts = end - 1;
        if self.size_ms == self.frame_ms {
            if let Some(frame) = self.frames.remove(&end) {
                for (key, slot) in frame {
                    let value = self.op.finish(slot.acc);
                    self.pending.push_back(Event {
                        ts,
                        value: WindowResult {
                            start,
                            end,
                            key,
                            value,
                            is_early: false,
                        },
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
                self.pending.push_back(Event {
                    ts,
                    value: WindowResult {
                        start,
                        end,
                        key: key.clone(),
                        value: self.op.export(&s.acc),
                        is_early: false,
                    },
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
                self.pending.push_back(Event {
                    ts,
                    value: WindowResult {
                        start,
                        end,
                        key,
                        value: self.op.finish(slot.acc),
                        is_early: false,
                    },
                });
            }
            let leaving = start + self.frame_ms;
            self.frames.retain(|&f, _| f > leaving);
        }
        self.next_end = Some(end + self.frame_ms);
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

    /// Emits the current result of every window still open, marked early.
    fn emit_early(&mut self) {
        self.retire_hot();
        let (Some(&first_frame), Some(&last_frame)) =
            (self.frames.keys().next(), self.frames.keys().next_back())
        else {
            return;
        };
        let mut end = self.next_end.map_or(first_frame, |n| n.max(first_frame));
        while end <= last_frame + self.size_ms - self.frame_ms {
            for (key, slot) in self.combine_window(end) {
                self.pending.push_back(Event {
                    ts: end - 1,
                    value: WindowResult {
                        start: end - self.size_ms,
                        end,
                        key,
                        value: self.op.finish(slot.acc),
                        is_early: true,
                    },
                });
            }
            end += self.frame_ms;
        }
    }
}

impl<T, K, KF, Op> Processor for FrameWindowP<T, K, KF, Op>
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
            self.emit_up_to(watermark.0);
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
            // Input ended: every window that has data is complete.
            self.emit_up_to(i64::MAX);
        }
        Ok(drain_into(&mut self.pending, outbox))
    }
}
