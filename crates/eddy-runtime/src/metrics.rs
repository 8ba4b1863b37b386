//! Per-vertex metrics, written by tasklets once per batch and read in-process.

use crate::queue::QueueGauge;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Counters of one processor instance.
///
/// Thread safety: written by the one tasklet of the instance with relaxed
/// atomics (once per batch, not per item), read by any thread.
#[derive(Debug)]
pub struct InstanceMetrics {
    pub(crate) items_in: AtomicU64,
    pub(crate) items_out: AtomicU64,
    /// Last watermark emitted, `i64::MIN` before the first.
    pub(crate) watermark: AtomicI64,
    pub(crate) late_events: Arc<AtomicU64>,
}

impl InstanceMetrics {
    pub(crate) fn new() -> Self {
        InstanceMetrics {
            items_in: AtomicU64::new(0),
            items_out: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
            late_events: Arc::new(AtomicU64::new(0)),
        }
    }

    #[inline]
    pub(crate) fn add_in(&self, n: usize) {
        self.items_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn add_out(&self, n: usize) {
        self.items_out.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The metrics sources of one vertex.
pub(crate) struct VertexMetricsSource {
    pub(crate) name: String,
    pub(crate) instances: Vec<Arc<InstanceMetrics>>,
    pub(crate) input_queues: Vec<Arc<dyn QueueGauge>>,
}

/// A point-in-time reading of one vertex's metrics, summed over instances.
#[derive(Debug, Clone, PartialEq)]
pub struct VertexMetrics {
    /// Vertex (stage) name.
    pub name: String,
    /// Number of instances.
    pub parallelism: usize,
    /// Items received.
    pub items_in: u64,
    /// Items emitted.
    pub items_out: u64,
    /// Items waiting in the vertex's input queues.
    pub queue_items: u64,
    /// Capacity of those queues in items.
    pub queue_capacity: u64,
    /// The lowest watermark emitted by the instances, if all emitted one.
    pub watermark_ms: Option<i64>,
    /// How far that watermark is behind the wall clock.
    pub watermark_lag_ms: Option<i64>,
    /// Late events dropped.
    pub late_events: u64,
}

impl VertexMetrics {
    /// Fraction of the input queues' capacity in use, 0.0 to 1.0.
    pub fn queue_fill(&self) -> f64 {
        if self.queue_capacity == 0 {
            0.0
        } else {
            self.queue_items as f64 / self.queue_capacity as f64
        }
    }
}

/// Milliseconds since the Unix epoch by the wall clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl VertexMetricsSource {
    pub(crate) fn read(&self) -> VertexMetrics {
        let mut m = VertexMetrics {
            name: self.name.clone(),
            parallelism: self.instances.len(),
            items_in: 0,
            items_out: 0,
            queue_items: 0,
            queue_capacity: 0,
            watermark_ms: None,
            watermark_lag_ms: None,
            late_events: 0,
        };
        let mut wm_min = i64::MAX;
        for i in &self.instances {
            m.items_in += i.items_in.load(Ordering::Relaxed);
            m.items_out += i.items_out.load(Ordering::Relaxed);
            m.late_events += i.late_events.load(Ordering::Relaxed);
            wm_min = wm_min.min(i.watermark.load(Ordering::Relaxed));
        }
        if wm_min != i64::MIN && wm_min != i64::MAX {
            m.watermark_ms = Some(wm_min);
            m.watermark_lag_ms = Some(now_ms() - wm_min);
        }
        for q in &self.input_queues {
            let (held, cap) = q.fill();
            m.queue_items += held as u64;
            m.queue_capacity += cap as u64;
        }
        m
    }
}
