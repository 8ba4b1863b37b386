//! Metrics that jobs register with the node for the server to expose:
//! latency histograms, gauges and counters, read by `/metrics`, the JSON API
//! and the dashboard.
//!
//! Recording is lock-free (relaxed atomics), so a pipeline stage may record
//! every event; registration takes a lock and happens once per metric.

use parking_lot::RwLock;
use serde::Serialize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds: a 1-2-5
/// series from 100 µs to 60 s. It spans an in-process pipeline (well under
/// a millisecond) to a stalled one (tens of seconds); percentiles are
/// interpolated within a bucket, so one is accurate to within a factor of
/// about two of the bucket it falls in, which is what a dashboard needs.
pub const LATENCY_BUCKETS_S: [f64; 19] = [
    0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
    10.0, 20.0, 30.0, 60.0,
];

/// A latency histogram with the fixed buckets [`LATENCY_BUCKETS_S`].
///
/// Thread safety: `record` may be called from any number of threads at
/// once; readers see each bucket's count exactly, but not necessarily all
/// buckets at the same instant.
#[derive(Debug)]
pub struct Histogram {
    /// Count per bucket, not cumulative; the last one is the overflow
    /// bucket above the highest bound.
    counts: [AtomicU64; LATENCY_BUCKETS_S.len() + 1],
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one observation.
    pub fn record(&self, latency: Duration) {
        let s = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS_S.partition_point(|&bound| bound < s);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Records one observation given in milliseconds; negative values (a
    /// clock that went back) count as zero, and values beyond a year (a
    /// bogus timestamp) as a year: both land in an end bucket either way.
    pub fn record_ms(&self, latency_ms: f64) {
        const YEAR_MS: f64 = 365.0 * 24.0 * 3600.0 * 1000.0;
        let ms = if latency_ms.is_finite() {
            latency_ms.clamp(0.0, YEAR_MS)
        } else {
            0.0
        };
        self.record(Duration::from_secs_f64(ms / 1000.0));
    }

    /// The counts now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds_s: LATENCY_BUCKETS_S.to_vec(),
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum_s: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// The counts of a [`Histogram`] at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramSnapshot {
    /// Upper bound of each bucket in seconds (the overflow bucket has none).
    pub bounds_s: Vec<f64>,
    /// Observations per bucket, not cumulative; one more than `bounds_s`.
    pub counts: Vec<u64>,
    /// Sum of all observations, in seconds.
    pub sum_s: f64,
}

impl HistogramSnapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q` quantile (0.0 to 1.0) in seconds, interpolated within its
    /// bucket; `None` without observations. Observations above the highest
    /// bound report that bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0.0;
        for (i, &c) in self.counts.iter().enumerate() {
            let next = seen + c as f64;
            if next >= rank && c > 0 {
                let Some(&upper) = self.bounds_s.get(i) else {
                    return self.bounds_s.last().copied();
                };
                let lower = if i == 0 { 0.0 } else { self.bounds_s[i - 1] };
                return Some(lower + (upper - lower) * (rank - seen) / c as f64);
            }
            seen = next;
        }
        self.bounds_s.last().copied()
    }
}

/// A value that goes up and down, set by a job.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// Adds to the value (negative to subtract).
    pub fn add(&self, delta: i64) {
        self.0.fetch_add(delta, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A count that only goes up, kept by a job.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a registered metric is.
#[derive(Debug, Clone)]
pub enum Metric {
    /// A latency histogram.
    Histogram(Arc<Histogram>),
    /// A gauge.
    Gauge(Arc<Gauge>),
    /// A counter.
    Counter(Arc<Counter>),
}

impl Metric {
    fn kind(&self) -> &'static str {
        match self {
            Metric::Histogram(_) => "histogram",
            Metric::Gauge(_) => "gauge",
            Metric::Counter(_) => "counter",
        }
    }
}

/// A registered metric with its Prometheus name and help text.
#[derive(Debug, Clone)]
pub struct Registered {
    /// Prometheus metric name, e.g. `eddy_demo_latency_seconds`.
    pub name: String,
    /// One line saying what it measures.
    pub help: String,
    /// The metric.
    pub metric: Metric,
}

/// Registering a metric failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The name is not a valid Prometheus metric name.
    #[error("metric name '{0}' is not valid: use letters, digits, '_' and ':', not starting with a digit (e.g. eddy_demo_latency_seconds)")]
    InvalidName(String),
    /// The name is taken by a metric of another kind.
    #[error("metric '{name}' is already registered as a {existing}; pick another name for the {requested}")]
    KindConflict {
        /// The name.
        name: String,
        /// Kind of the metric registered first.
        existing: &'static str,
        /// Kind that was asked for now.
        requested: &'static str,
    },
}

/// The metrics jobs registered with a node.
///
/// Thread safety: all methods take `&self`; registration is idempotent, so
/// every instance of a stage may ask for the same metric and share it.
#[derive(Debug, Default)]
pub struct MetricsRegistry {
    metrics: RwLock<Vec<Registered>>,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

impl MetricsRegistry {
    /// The metric `name` if registered with the kind `pick` accepts, else
    /// registers `make()`; a name taken by another kind is an error.
    fn get_or_add<T>(
        &self,
        name: &str,
        help: &str,
        make: fn() -> Metric,
        pick: fn(&Metric) -> Option<Arc<T>>,
    ) -> Result<Arc<T>, RegistryError> {
        if !valid_name(name) {
            return Err(RegistryError::InvalidName(name.to_owned()));
        }
        let fresh = make();
        let mut metrics = self.metrics.write();
        let conflict = |existing: &Metric| RegistryError::KindConflict {
            name: name.to_owned(),
            existing: existing.kind(),
            requested: fresh.kind(),
        };
        if let Some(existing) = metrics.iter().find(|r| r.name == name) {
            return pick(&existing.metric).ok_or_else(|| conflict(&existing.metric));
        }
        let handle = pick(&fresh).ok_or_else(|| conflict(&fresh))?;
        metrics.push(Registered {
            name: name.to_owned(),
            help: help.to_owned(),
            metric: fresh,
        });
        Ok(handle)
    }

    /// The latency histogram `name` (a Prometheus name ending in
    /// `_seconds`), registered now if absent.
    pub fn histogram(&self, name: &str, help: &str) -> Result<Arc<Histogram>, RegistryError> {
        self.get_or_add(
            name,
            help,
            || Metric::Histogram(Arc::default()),
            |m| match m {
                Metric::Histogram(h) => Some(h.clone()),
                _ => None,
            },
        )
    }

    /// The gauge `name`, registered now if absent.
    pub fn gauge(&self, name: &str, help: &str) -> Result<Arc<Gauge>, RegistryError> {
        self.get_or_add(
            name,
            help,
            || Metric::Gauge(Arc::default()),
            |m| match m {
                Metric::Gauge(g) => Some(g.clone()),
                _ => None,
            },
        )
    }

    /// The counter `name` (a Prometheus name ending in `_total`),
    /// registered now if absent.
    pub fn counter(&self, name: &str, help: &str) -> Result<Arc<Counter>, RegistryError> {
        self.get_or_add(
            name,
            help,
            || Metric::Counter(Arc::default()),
            |m| match m {
                Metric::Counter(c) => Some(c.clone()),
                _ => None,
            },
        )
    }

    /// Every registered metric, in registration order.
    pub fn all(&self) -> Vec<Registered> {
        self.metrics.read().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_all_observations_fall_in_one_bucket_then_quantiles_stay_inside_it() {
        let h = Histogram::default();
        for _ in 0..100 {
            h.record(Duration::from_micros(1500));
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 100);
        let p50 = s.quantile(0.5).unwrap();
        assert!((0.001..=0.002).contains(&p50), "{p50}");
        assert!((s.sum_s - 0.15).abs() < 1e-9);
    }

    #[test]
    fn when_observations_overflow_then_the_highest_bound_is_reported() {
        let h = Histogram::default();
        h.record(Duration::from_secs(600));
        assert_eq!(h.snapshot().quantile(0.99), Some(60.0));
        assert_eq!(Histogram::default().snapshot().quantile(0.5), None);
    }

    #[test]
    fn when_latencies_are_negative_huge_or_nan_then_they_are_recorded_without_panicking() {
        let h = Histogram::default();
        for ms in [-5.0, f64::NAN, f64::INFINITY, 1e300] {
            h.record_ms(ms);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 4);
        assert_eq!(s.counts[0], 3, "negative, NaN and infinity count as zero");
        assert_eq!(*s.counts.last().unwrap(), 1);
    }

    #[test]
    fn when_a_name_is_registered_twice_then_the_same_metric_is_returned() {
        let r = MetricsRegistry::default();
        let a = r.counter("alerts_total", "alerts").unwrap();
        let b = r.counter("alerts_total", "alerts").unwrap();
        a.add(2);
        assert_eq!(b.get(), 2);
        assert!(matches!(
            r.gauge("alerts_total", "x"),
            Err(RegistryError::KindConflict { .. })
        ));
        assert!(matches!(
            r.gauge("1bad", "x"),
            Err(RegistryError::InvalidName(_))
        ));
    }
}
