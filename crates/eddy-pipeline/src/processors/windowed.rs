//! What every windowing processor shares: dropping late events, emitting
//! closed windows when the watermark passes them (resumably, through a
//! bounded outbox), early results on a wall-clock period, and the flush at
//! the end of the input. The window kinds ([`super::window`] for tumbling
//! and sliding, [`super::session`] for sessions) supply only how events
//! accumulate and which windows a watermark closes.

use super::{drain_into, LateEventFn};
use eddy_core::{
    Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError, Watermark, WindowResult,
};
use std::collections::VecDeque;
use std::time::Instant;

/// The kind-specific state of a windowing processor.
pub trait WindowLogic<T>: Send + 'static {
    /// The grouping key.
    type Key: Clone + Send + 'static;
    /// The aggregate result.
    type Result: Clone + Send + 'static;

    /// Adds an event that is not late.
    fn accumulate(&mut self, event: Event<T>);

    /// Appends the result of every window ending at or before `limit` to
    /// `out` and forgets those windows.
    fn close_up_to(
        &mut self,
        limit: i64,
        out: &mut VecDeque<Event<WindowResult<Self::Key, Self::Result>>>,
    );

    /// Appends the current result of every open window to `out`, marked
    /// early.
    fn emit_early(&mut self, out: &mut VecDeque<Event<WindowResult<Self::Key, Self::Result>>>);
}

/// A windowing processor: window logic `L` behind the shared processing
/// methods.
pub struct WindowP<T, L: WindowLogic<T>> {
    logic: L,
    /// The last watermark taken: events below it are late.
    watermark: i64,
    /// Results waiting for room in the outbox.
    pending: VecDeque<Event<WindowResult<L::Key, L::Result>>>,
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
        if self.pending.is_empty() {
            self.watermark = self.watermark.max(watermark.0);
            self.logic.close_up_to(watermark.0, &mut self.pending);
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
                self.logic.emit_early(&mut self.pending);
                drain_into(&mut self.pending, outbox);
            }
        }
        Ok(true)
    }

    fn complete<O: Outbox<Self::Out>>(&mut self, outbox: &mut O) -> Result<bool, ProcessorError> {
        if self.pending.is_empty() {
            // Input ended: every window that has data is complete.
            self.logic.close_up_to(i64::MAX, &mut self.pending);
        }
        Ok(drain_into(&mut self.pending, outbox))
    }
}
