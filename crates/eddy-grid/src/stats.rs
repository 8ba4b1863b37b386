//! Statistics of a map, as the server, CLI and dashboard show them.

use serde::{Deserialize, Serialize};

/// A point-in-time view of one map's counters.
///
/// Counters are summed partition by partition, so they are not one atomic
/// snapshot of the whole map. Times are on the grid's clock (milliseconds
/// since its origin) and have the resolution of the sweep interval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapStats {
    /// Map name.
    pub name: String,
    /// Entries held (including any that expired since the last sweep).
    pub entries: usize,
    /// Estimated bytes: per entry its table bucket and control byte (and its
    /// expiry/access metadata in partitions that keep it), plus the heap
    /// estimate of key and value (see [`crate::keyhash`]).
    /// Eviction by bytes uses this figure.
    pub bytes: usize,
    /// Bytes the tables and metadata vectors have allocated (their capacity,
    /// exactly), the partition structures, plus the heap estimate of keys
    /// and values. Index and journal memory is not included.
    pub allocated_bytes: usize,
    /// Reads (`get`, `contains_key`, `get_all` per key): hits + misses.
    pub gets: u64,
    /// Writes that stored a value (puts, replaces, processors setting a value).
    pub puts: u64,
    /// Reads that found a live entry.
    pub hits: u64,
    /// Reads that found nothing (or an expired entry).
    pub misses: u64,
    /// Entries removed by `remove`, `delete` or processors.
    pub removals: u64,
    /// Entries evicted for size.
    pub evictions: u64,
    /// Entries removed because they expired.
    pub expirations: u64,
    /// Registered listeners.
    pub listeners: usize,
    /// Events handed to listeners.
    pub listener_events_delivered: u64,
    /// Events dropped because the listener buffer was full.
    pub listener_events_dropped: u64,
    /// Listener calls that panicked (the panic is contained).
    pub listener_panics: u64,
    /// Last read or write seen by the sweeper, if any.
    pub last_access_ms: Option<u64>,
    /// Last write seen by the sweeper, if any.
    pub last_update_ms: Option<u64>,
}
