//! What every windowing processor shares: dropping late events, emitting
//! closed windows when the watermark passes them (resumably, through a
//! bounded outbox), early results on a wall-clock period, the flush at the
//! end of the input, and the snapshot of all that. The window kinds
//! ([`super::window`] for tumbling and sliding, [`super::session`] for
//! sessions) supply only how events accumulate, which windows a watermark
//! closes, and how their own state is saved.

use super::LateEventFn;
use eddy_core::snapshot::{partition_of, SnapshotEntry, SnapshotWriter, BROADCAST};
use eddy_core::{
    Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError, State, StateKey, Watermark,
    WindowResult,
};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Instant;

/// A window that was closed (or is reported early) and waits for room in
/// the outbox. It keeps the accumulator, not the result, so that it can be
/// saved into a snapshot whatever the result type; the result is made as it
/// is emitted. Its event time is `end - 1`.
pub struct Closed<K, A> {
    /// Window start (inclusive), ms.
    pub start: i64,
    /// Window end (exclusive), ms.
    pub end: i64,
    /// The grouping key.
    pub key: K,
    /// The window's accumulator.
    pub acc: A,
    /// Whether it is an early result of a window still open.
    pub is_early: bool,
}

/// The windows a logic hands to [`WindowP`] to emit.
pub type ClosedQueue<K, A> = VecDeque<Closed<K, A>>;

/// The key of every entry a windowing processor saves; the value's type
/// depends on the variant. This enum is the snapshot format of all window
/// kinds.
#[derive(Debug, Serialize, Deserialize)]
pub enum WindowEntry<K> {
    /// Broadcast: the watermark instance `instance` of `parallelism` had
    /// taken (`i64`).
    Watermark {
        /// The saving instance.
        instance: u64,
        /// Its vertex's parallelism then.
        parallelism: u64,
    },
    /// Broadcast: the end of the next window the frames of instance
    /// `instance` emit (`Option<i64>`).
    NextEnd {
        /// The saving instance.
        instance: u64,
        /// Its vertex's parallelism then.
        parallelism: u64,
    },
    /// Keyed: a closed window not emitted yet (`(start, end, acc, is_early)`).
    Closed(K),
    /// Keyed: the accumulator of a key in the frame ending at `end` (a
    /// frame slot).
    Frame {
        /// The frame's end.
        end: i64,
        /// The grouping key.
        key: K,
    },
    /// Keyed: the running accumulator of a key's current sliding window (a
    /// frame slot).
    Sliding(K),
    /// Keyed: the open sessions of a key (`Vec<(start, end, acc)>`).
    Sessions(K),
}

impl<K> WindowEntry<K> {
    /// The instance that saved a per-instance entry, and its parallelism.
    fn saved_by(&self) -> Option<(usize, usize)> {
        match self {
            WindowEntry::Watermark {
                instance,
                parallelism,
            }
            | WindowEntry::NextEnd {
                instance,
                parallelism,
            } => Some((*instance as usize, *parallelism as usize)),
            _ => None,
        }
    }
}

/// The kind-specific state of a windowing processor.
pub trait WindowLogic<T>: Send + 'static {
    /// The grouping key.
    type Key: StateKey;
    /// The accumulator of one window and key.
    type Acc: State;
    /// The aggregate result.
    type Result: Clone + Send + 'static;

    /// Adds an event that is not late.
    fn accumulate(&mut self, event: Event<T>);

    /// Appends every window ending at or before `limit` to `out` and
    /// forgets those windows.
    fn close_up_to(&mut self, limit: i64, out: &mut ClosedQueue<Self::Key, Self::Acc>);

    /// Appends a copy of every open window to `out`, marked early.
    fn emit_early(&mut self, out: &mut ClosedQueue<Self::Key, Self::Acc>);

    /// The result of a window's accumulator.
    fn finish(&self, acc: Self::Acc) -> Self::Result;

    /// Saves the open windows (keyed entries) and the kind's progress, as
    /// instance `instance` of `parallelism`.
    fn save(
        &self,
        instance: usize,
        parallelism: usize,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError>;

    /// Takes an entry [`save`](WindowLogic::save) wrote: keyed ones of the
    /// instance's partitions, and the per-instance ones that concern it.
    fn restore(
        &mut self,
        key: WindowEntry<Self::Key>,
        entry: SnapshotEntry<'_>,
    ) -> Result<(), ProcessorError>;
}

/// A windowing processor: window logic `L` behind the shared processing
/// methods.
///
/// Snapshot: the windows' state is keyed by the grouping key, so it follows
/// its keys to their owner at another parallelism. The watermark is saved
/// per instance; at the same parallelism each instance takes its own back,
/// at another one the highest (under exactly-once they are all equal, as
/// aligned barriers follow the same watermarks on every instance; taking the
/// highest never re-opens a window that was emitted).
pub struct WindowP<T, L: WindowLogic<T>> {
    logic: L,
    /// The last watermark taken: events below it are late.
    watermark: i64,
    /// Windows waiting for room in the outbox.
    pending: ClosedQueue<L::Key, L::Acc>,
    on_late: Option<LateEventFn<T>>,
    context: Option<ProcessorContext>,
    early_period_ms: Option<u64>,
    last_early: Instant,
}

impl<T, L: WindowLogic<T>> WindowP<T, L> {
    /// A processor running `logic`; late events also go to `on_late`.
    pub fn with_logic(logic: L, on_late: Option<LateEventFn<T>>) -> Self {
        WindowP {
            logic,
            watermark: i64::MIN,
            pending: VecDeque::new(),
            on_late,
            context: None,
            early_period_ms: None,
            last_early: Instant::now(),
        }
    }

    /// Also emits the current result of every open window this often (in
    /// wall-clock time), marked early.
    pub fn with_early_results(mut self, period_ms: Option<u64>) -> Self {
        self.early_period_ms = period_ms;
        self
    }

    #[inline]
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
        self.logic.accumulate(event);
    }

    /// Emits pending windows while there is room; true when all went out.
    fn drain<O: Outbox<Event<WindowResult<L::Key, L::Result>>>>(&mut self, outbox: &mut O) -> bool {
        while outbox.has_room() {
            let Some(c) = self.pending.pop_front() else {
                return true;
            };
            let value = WindowResult {
                start: c.start,
                end: c.end,
                key: c.key,
                value: self.logic.finish(c.acc),
                is_early: c.is_early,
            };
            outbox.offer_granted(Event {
                ts: c.end - 1,
                value,
            });
        }
        self.pending.is_empty()
    }

    /// This instance's index and its vertex's parallelism.
    fn place(&self) -> (usize, usize) {
        self.context
            .as_ref()
            .map_or((0, 1), |c| (c.instance, c.parallelism.max(1)))
    }
}

impl<T, L> Processor for WindowP<T, L>
where
    T: Send + 'static,
    L: WindowLogic<T>,
{
    type In = Event<T>;
    type Out = Event<WindowResult<L::Key, L::Result>>;

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
        // Windows pending from before (early results, a restore) go first.
        if !self.drain(outbox) {
            return Ok(false);
        }
        // Not taken yet: this is not a call again after a full outbox.
        if watermark.0 > self.watermark {
            self.watermark = watermark.0;
            self.logic.close_up_to(watermark.0, &mut self.pending);
        }
        Ok(self.drain(outbox) && outbox.offer_watermark(watermark))
    }

    fn try_process<O: Outbox<Self::Out>>(
        &mut self,
        outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        if !self.drain(outbox) {
            return Ok(false);
        }
        if let Some(period) = self.early_period_ms {
            if self.last_early.elapsed().as_millis() as u64 >= period {
                self.last_early = Instant::now();
                self.logic.emit_early(&mut self.pending);
                self.drain(outbox);
            }
        }
        Ok(true)
    }

    fn complete<O: Outbox<Self::Out>>(&mut self, outbox: &mut O) -> Result<bool, ProcessorError> {
        if !self.drain(outbox) {
            return Ok(false);
        }
        if self.watermark < i64::MAX {
            // Input ended: every window that has data is complete, as if
            // the watermark had gone to the end of time.
            self.watermark = i64::MAX;
            self.logic.close_up_to(i64::MAX, &mut self.pending);
        }
        Ok(self.drain(outbox))
    }

    fn save_to_snapshot(
        &mut self,
        _snapshot_id: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        let (instance, parallelism) = self.place();
        writer.put(
            BROADCAST,
            &WindowEntry::<L::Key>::Watermark {
                instance: instance as u64,
                parallelism: parallelism as u64,
            },
            &self.watermark,
        )?;
        // Closed windows still pending (the end of the input came while
        // the outbox was full, or early results) are emitted after a
        // restore as they would have been.
        for c in &self.pending {
            writer.put(
                partition_of(&c.key),
                &WindowEntry::Closed(&c.key),
                &(c.start, c.end, &c.acc, c.is_early),
            )?;
        }
        self.logic.save(instance, parallelism, writer)
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let key: WindowEntry<L::Key> = entry.key()?;
        let (instance, parallelism) = self.place();
        if let Some((saved_by, saved_at)) = key.saved_by() {
            if saved_at == parallelism && saved_by != instance {
                return Ok(());
            }
        }
        match key {
            WindowEntry::Watermark { .. } => {
                let watermark: i64 = entry.value()?;
                self.watermark = self.watermark.max(watermark);
                Ok(())
            }
            WindowEntry::Closed(key) => {
                let (start, end, acc, is_early) = entry.value()?;
                self.pending.push_back(Closed {
                    start,
                    end,
                    key,
                    acc,
                    is_early,
                });
                Ok(())
            }
            other => self.logic.restore(other, entry),
        }
    }
}
