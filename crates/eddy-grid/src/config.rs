//! Configuration of the grid and of each map, with the defaults explained.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::GridError;

/// Default number of partitions of every map: Hazelcast's default, a prime
/// so that keys with regular patterns still spread evenly. Enough
/// partitions that no two hot keys are likely to share a lock on machines
/// with many cores, few enough that the fixed cost per partition (a lock,
/// an empty table, a journal ring) stays small for small maps.
pub const DEFAULT_PARTITIONS: usize = 271;

/// How often the background sweeper wakes up by default. It bounds how long
/// an expired entry that nobody reads stays in memory, and the resolution
/// of the "last access / last update" statistics.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// Configuration of a [`Grid`](crate::Grid).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GridConfig {
    /// Partitions per map (at least 1). Keys are assigned to partitions by
    /// the stable key hash, so instances that should agree on ownership
    /// must use the same number.
    pub partitions: usize,
    /// Time source for expiry, LRU and statistics.
    pub clock: Arc<dyn Clock>,
    /// Interval of the background expiry sweep; `None` runs no sweeper
    /// thread (tests then call [`Grid::run_maintenance`](crate::Grid::run_maintenance)).
    pub sweep_interval: Option<Duration>,
}

impl Default for GridConfig {
    fn default() -> Self {
        GridConfig {
            partitions: DEFAULT_PARTITIONS,
            clock: Arc::new(SystemClock::new()),
            sweep_interval: Some(DEFAULT_SWEEP_INTERVAL),
        }
    }
}

impl GridConfig {
    /// Sets the partitions per map.
    pub fn with_partitions(mut self, partitions: usize) -> Self {
        self.partitions = partitions;
        self
    }

    /// Sets the time source.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the interval of the expiry sweep; `None` runs no sweeper.
    pub fn with_sweep_interval(mut self, interval: Option<Duration>) -> Self {
        self.sweep_interval = interval;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), GridError> {
        if self.partitions == 0 || self.partitions > 65_536 {
            return Err(GridError::InvalidConfig {
                field: "GridConfig::partitions",
                reason: format!(
                    "{} is out of range; use 1 to 65536 (default 271)",
                    self.partitions
                ),
            });
        }
        Ok(())
    }
}

/// Which entry goes when a map is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EvictionPolicy {
    /// The least recently read or written of the sampled entries.
    ///
    /// A read of an entry that cannot expire takes its time from the map's
    /// latest write or sweep rather than from the clock, so reads between
    /// two writes (or sweeps) count as equally recent, and none of them as
    /// older than anything before the first of the two.
    #[default]
    Lru,
    /// The least frequently read or written of the sampled entries.
    Lfu,
    /// Any sampled entry.
    Random,
}

/// Size limits of a map; eviction keeps the map under them.
///
/// Limits apply per partition (the map limit divided by the number of
/// partitions, rounded up), as in Hazelcast: a partition that exceeds its
/// share evicts from itself without consulting the others, which keeps
/// eviction free of any global lock but means a map whose keys are unevenly
/// spread holds somewhat less than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EvictionConfig {
    /// Which sampled entry is evicted.
    pub policy: EvictionPolicy,
    /// Most entries the map holds.
    pub max_entries: Option<usize>,
    /// Most estimated bytes the map holds (see [`MapStats::bytes`](crate::MapStats::bytes)).
    pub max_bytes: Option<usize>,
}

/// Default capacity of a map's listener buffer, in events. At ~100 bytes
/// per small event this is a few MiB at most per map, and it rides out a
/// listener pause of a few milliseconds at a million events per second.
pub const DEFAULT_LISTENER_BUFFER: usize = 65_536;

/// Configuration of one map; immutable once the map exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MapConfig {
    /// Default time to live of entries put without one; `None` never expires.
    pub ttl: Option<Duration>,
    /// Default max-idle: an entry neither read nor written for this long
    /// expires. `None` disables it. At most `u32::MAX` milliseconds (49 days).
    pub max_idle: Option<Duration>,
    /// Size limits and eviction policy.
    pub eviction: EvictionConfig,
    /// Event journal capacity (events kept, over all partitions); 0 keeps no
    /// journal. Each partition keeps `capacity / partitions` events, rounded up.
    pub journal_capacity: usize,
    /// Events buffered for listeners before new ones are dropped (counted).
    pub listener_buffer: usize,
}

impl Default for MapConfig {
    fn default() -> Self {
        MapConfig {
            ttl: None,
            max_idle: None,
            eviction: EvictionConfig::default(),
            journal_capacity: 0,
            listener_buffer: DEFAULT_LISTENER_BUFFER,
        }
    }
}

impl MapConfig {
    /// Sets how many events are buffered for listeners before new ones are
    /// dropped.
    pub fn with_listener_buffer(mut self, events: usize) -> Self {
        self.listener_buffer = events;
        self
    }

    /// Sets the default TTL.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets the default max-idle.
    pub fn with_max_idle(mut self, max_idle: Duration) -> Self {
        self.max_idle = Some(max_idle);
        self
    }

    /// Sets the eviction limits and policy.
    pub fn with_eviction(
        mut self,
        policy: EvictionPolicy,
        max_entries: Option<usize>,
        max_bytes: Option<usize>,
    ) -> Self {
        self.eviction = EvictionConfig {
            policy,
            max_entries,
            max_bytes,
        };
        self
    }

    /// Keeps an event journal of `capacity` events.
    pub fn with_journal(mut self, capacity: usize) -> Self {
        self.journal_capacity = capacity;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), GridError> {
        if let Some(d) = self.max_idle {
            if d.as_millis() > u32::MAX as u128 || d.is_zero() {
                return Err(GridError::InvalidConfig {
                    field: "MapConfig::max_idle",
                    reason: format!(
                        "{d:?} is out of range; use 1 ms to 49 days, or None to disable"
                    ),
                });
            }
        }
        if self.ttl.is_some_and(|d| d.is_zero()) {
            return Err(GridError::InvalidConfig {
                field: "MapConfig::ttl",
                reason: "a zero TTL would expire every entry at once; use None for entries that never expire".into(),
            });
        }
        if self.listener_buffer == 0 {
            return Err(GridError::InvalidConfig {
                field: "MapConfig::listener_buffer",
                reason: "0 would drop every event; use at least 1 (default 65536)".into(),
            });
        }
        if self.eviction.max_entries == Some(0) || self.eviction.max_bytes == Some(0) {
            return Err(GridError::InvalidConfig {
                field: "MapConfig::eviction",
                reason: "a limit of 0 would keep nothing; use None for no limit".into(),
            });
        }
        Ok(())
    }
}

/// Expiry of one entry, overriding the map's defaults.
///
/// `None` takes the map default; `Some(Duration::ZERO)` means "never" (no
/// TTL, or no max-idle) for this entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expiry {
    /// Time to live from this write.
    pub ttl: Option<Duration>,
    /// Longest time without a read or write.
    pub max_idle: Option<Duration>,
}

impl Expiry {
    /// Expire `ttl` after the write.
    pub fn ttl(ttl: Duration) -> Self {
        Expiry {
            ttl: Some(ttl),
            max_idle: None,
        }
    }

    /// Never expire, whatever the map default.
    pub fn never() -> Self {
        Expiry {
            ttl: Some(Duration::ZERO),
            max_idle: Some(Duration::ZERO),
        }
    }
}
