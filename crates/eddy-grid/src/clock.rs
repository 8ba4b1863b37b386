//! Time source of the grid: a monotonic system clock, and a manual clock for tests.
//!
//! Expiry (TTL, max-idle), LRU eviction and statistics all read time through
//! [`Clock`], so a test can drive every time-dependent behaviour by hand with
//! [`ManualClock`] instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A source of milliseconds that never go back.
///
/// The origin is arbitrary but fixed for the clock's lifetime; only
/// differences matter to the grid. Implementations must be cheap (the grid
/// reads the clock on operations that involve expiry or LRU) and monotonic.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since this clock's origin.
    fn now_ms(&self) -> u64;
}

/// The real, monotonic clock: milliseconds since the clock was created.
#[derive(Debug, Clone)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }
}

/// A clock that moves only when told to; cheap to clone, clones share time.
///
/// ```
/// use eddy_grid::{Clock, ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now_ms(), 2_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now_ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// Sets the time; it must not go back (a monotonic clock never does).
    ///
    /// # Panics
    /// If `now_ms` is earlier than the current time: that is a bug in the test.
    pub fn set_ms(&self, now_ms: u64) {
        let before = self.now_ms.swap(now_ms, Ordering::SeqCst);
        assert!(
            before <= now_ms,
            "ManualClock must not go back ({before} -> {now_ms})"
        );
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}
