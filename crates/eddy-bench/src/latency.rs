//! The latency sink every benchmark measures with: each instance records
//! into a local HDR histogram (microseconds) and merges it into the shared
//! one when it closes, so measuring takes no lock per result.
//!
//! A result's latency is the wall clock at the sink minus its reference
//! time: its event time plus an offset (1 for window results, whose event
//! time is their window end minus 1, so the reference is the window end).

use eddy::processor::{Inbox, Outbox, Processor, ProcessorContext};
use eddy::{ProcessorError, Sink};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall clock in microseconds since the epoch.
pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A histogram of microseconds from 1 to 10 minutes, 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// What the sink instances share: the merged histogram and the count.
pub(crate) struct SinkState {
    pub(crate) histogram: Mutex<Histogram<u64>>,
    pub(crate) outputs: AtomicU64,
}

/// Counts results and records their latency.
pub(crate) struct LatencySink {
    pub(crate) state: Arc<SinkState>,
    /// 1 for window results, whose event time is their window end minus 1.
    pub(crate) window_offset_ms: i64,
    /// Reference times whose results are measured, `[from, until]` ms;
    /// `None`: latency is not measured.
    pub(crate) measured: Option<(i64, i64)>,
    /// One sample per new reference time of an instance (nexmark-jet's
    /// rule: the first result of each window end), or one per result.
    pub(crate) first_per_reference: bool,
}

impl SinkState {
    pub(crate) fn new() -> Arc<SinkState> {
        Arc::new(SinkState {
            histogram: Mutex::new(new_histogram()),
            outputs: AtomicU64::new(0),
        })
    }
}

impl<T: Send + 'static> Sink<T> for LatencySink {
    type Processor = LatencySinkP<T>;

    fn name(&self) -> String {
        "nexmark-sink".into()
    }

    fn create(&self, _ctx: &ProcessorContext) -> LatencySinkP<T> {
        LatencySinkP {
            state: self.state.clone(),
            local: new_histogram(),
            outputs: 0,
            window_offset_ms: self.window_offset_ms,
            measured: self.measured,
            first_per_reference: self.first_per_reference,
            last_reference_ms: i64::MIN,
            _t: std::marker::PhantomData,
        }
    }
}

/// The processor of [`LatencySink`]: a local histogram, merged on close.
pub(crate) struct LatencySinkP<T> {
    state: Arc<SinkState>,
    local: Histogram<u64>,
    outputs: u64,
    window_offset_ms: i64,
    measured: Option<(i64, i64)>,
    first_per_reference: bool,
    last_reference_ms: i64,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T: Send + 'static> Processor for LatencySinkP<T> {
    type In = eddy::Event<T>;
    type Out = ();

    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<Self::In>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        self.outputs += inbox.len() as u64;
        let Some((from_ms, until_ms)) = self.measured else {
            while inbox.poll().is_some() {}
            return Ok(());
        };
        // One clock reading per batch: the items of a batch leave together.
        let now = now_us();
        while let Some(e) = inbox.poll() {
            let reference_ms = e.ts + self.window_offset_ms;
            if !self.first_per_reference || reference_ms > self.last_reference_ms {
                self.last_reference_ms = reference_ms;
                if (from_ms..=until_ms).contains(&reference_ms) {
                    let latency = (now - reference_ms * 1000).max(0) as u64;
                    // Saturate rather than fail on an outlier beyond range.
                    let _ = self.local.record(latency.min(self.local.high()));
                }
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ProcessorError> {
        self.state
            .outputs
            .fetch_add(self.outputs, Ordering::Relaxed);
        let mut shared = self
            .state
            .histogram
            .lock()
            .map_err(|_| ProcessorError::new("latency histogram lock poisoned"))?;
        shared
            .add(&self.local)
            .map_err(|e| ProcessorError::new(format!("merging latency histograms: {e}")))
    }
}
