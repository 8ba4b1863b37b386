//! Typed maps: the state one map's handles share, and the modules that act on it.
//!
//! The state ([`MapInner`]) is defined here; what acts on it is split by
//! responsibility: `handle` is the public [`Map`] API, `write` the write
//! path (entry changes with their index, journal and listener bookkeeping),
//! `expiry` expiry and eviction, `query` reads, scans and predicate queries.
//!
//! # Thread safety
//!
//! A [`Map`] is a cheap handle (`Clone`, `Send`, `Sync`) to state shared by
//! every handle of the map. Each partition has its own `RwLock`: reads of a
//! partition share it, a write holds it exclusively for one entry's change
//! (plus its index, journal and listener bookkeeping), and no operation on
//! one key ever holds two partition locks, so there is no global lock and
//! no lock order to get wrong. Only `clear` takes every partition lock, in
//! partition order, to be atomic.
//!
//! # Expiry
//!
//! An entry expires at its TTL deadline or after max-idle without reads or
//! writes, whichever comes first. Expired entries are never returned: a read
//! that finds one removes it (lazy expiry), and the background sweeper
//! removes the rest a bounded batch at a time. [`Map::size`] counts entries
//! not yet removed, so it may include entries that expired since the last
//! sweep.

mod expiry;
mod handle;
mod query;
mod write;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::clock::Clock;
use crate::config::{EvictionPolicy, MapConfig};
use crate::events::ListenerHub;
use crate::keyhash::{key_hash, partition_of};
use crate::partition::Partition;
use crate::query::{AttrPath, IndexType};
use crate::stats::MapStats;

pub use expiry::{EVICTION_SAMPLE, SWEEP_BATCH};
pub use handle::Map;
pub(crate) use query::EntryAttrs;
pub use query::{Page, QueryPlan};
pub use write::EntryMut;

/// What a map key must be: serde for the JSON view, hashing and snapshots,
/// `Eq + Hash` for lookups and indexes.
pub trait GridKey:
    Serialize + DeserializeOwned + Clone + Eq + Hash + Send + Sync + 'static
{
}
impl<T: Serialize + DeserializeOwned + Clone + Eq + Hash + Send + Sync + 'static> GridKey for T {}

/// What a map value must be.
pub trait GridValue: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> GridValue for T {}

/// A user attribute extractor: computes a named attribute from a value.
pub type Extractor<V> = Arc<dyn Fn(&V) -> Value + Send + Sync>;
type Extractors<V> = HashMap<String, Extractor<V>>;

/// Reads the clock at most once per operation, and only if needed; every
/// reading also advances the map's [`MapInner::recent_ms`].
struct Now<'a> {
    clock: &'a dyn Clock,
    recent_ms: &'a AtomicU64,
    at: Option<u64>,
}

impl Now<'_> {
    #[inline]
    fn get(&mut self) -> u64 {
        *self.at.get_or_insert_with(|| {
            let now = self.clock.now_ms();
            // Load first: within one millisecond nothing is written, so
            // operations on different partitions do not fight over the line.
            // A racing older store only makes `recent_ms` a little older.
            if self.recent_ms.load(Ordering::Relaxed) < now {
                self.recent_ms.store(now, Ordering::Relaxed);
            }
            now
        })
    }
}

#[derive(Default)]
struct Activity {
    reads: u64,
    writes: u64,
    last_access_ms: Option<u64>,
    last_update_ms: Option<u64>,
}

/// State shared by all handles of one map.
pub(crate) struct MapInner<K, V> {
    pub(crate) name: String,
    pub(crate) config: MapConfig,
    parts: Box<[Partition<K, V>]>,
    pub(crate) clock: Arc<dyn Clock>,
    default_ttl_ms: Option<u64>,
    default_idle_ms: u32,
    /// Whether reads record access time (LRU eviction or max-idle by default).
    track_access: bool,
    lfu: bool,
    part_max_entries: usize,
    part_max_bytes: usize,
    /// Whether every entry needs metadata from the start: the map tracks
    /// access or has default expiry (see [`crate::partition`]).
    meta_always: bool,
    /// Set once any entry can expire; until then the sweeper skips the map.
    may_expire: AtomicBool,
    /// The latest clock reading of any operation on the map or of the
    /// sweeper (every [`DEFAULT_SWEEP_INTERVAL`](crate::config::DEFAULT_SWEEP_INTERVAL)
    /// by default). Reads of entries that cannot expire record this as their
    /// access time instead of reading the clock, which measured at about
    /// two thirds of such a read's cost (`eddy bench grid`, LRU map). Every
    /// write of a tracked map reads the clock,
    /// and eviction happens only on writes, so LRU still orders accesses
    /// made before a write ahead of those made after it; among reads
    /// between two writes (and sweeps) it cannot tell which came last.
    recent_ms: AtomicU64,
    pub(crate) listeners: ListenerHub<K, V>,
    extractors: Arc<RwLock<Arc<Extractors<V>>>>,
    index_defs: RwLock<Vec<(AttrPath, IndexType)>>,
    activity: Mutex<Activity>,
}

fn share(limit: Option<usize>, partitions: usize) -> usize {
    limit.map_or(usize::MAX, |l| l.div_ceil(partitions))
}

impl<K: GridKey, V: GridValue> MapInner<K, V> {
    pub(crate) fn new(
        name: &str,
        config: MapConfig,
        partitions: usize,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let journal_part = config.journal_capacity.div_ceil(partitions);
        let policy = config.eviction.policy;
        let limited = config.eviction.max_entries.is_some() || config.eviction.max_bytes.is_some();
        let start_ms = clock.now_ms();
        MapInner {
            name: name.to_owned(),
            parts: (0..partitions)
                .map(|p| Partition::new(p, journal_part))
                .collect(),
            clock,
            default_ttl_ms: config
                .ttl
                .map(|d| d.as_millis().min(u64::MAX as u128) as u64),
            default_idle_ms: config.max_idle.map_or(0, |d| d.as_millis() as u32),
            track_access: (limited && policy == EvictionPolicy::Lru) || config.max_idle.is_some(),
            lfu: limited && policy == EvictionPolicy::Lfu,
            part_max_entries: share(config.eviction.max_entries, partitions),
            part_max_bytes: share(config.eviction.max_bytes, partitions),
            meta_always: limited || config.ttl.is_some() || config.max_idle.is_some(),
            may_expire: AtomicBool::new(config.ttl.is_some() || config.max_idle.is_some()),
            recent_ms: AtomicU64::new(start_ms),
            listeners: ListenerHub::new(name, config.listener_buffer),
            extractors: Arc::new(RwLock::new(Arc::new(HashMap::new()))),
            index_defs: RwLock::new(Vec::new()),
            activity: Mutex::new(Activity::default()),
            config,
        }
    }

    #[inline]
    fn locate(&self, key: &K) -> (u64, usize) {
        let h = key_hash(key);
        (h, partition_of(h, self.parts.len()))
    }

    fn now(&self) -> Now<'_> {
        Now {
            clock: &*self.clock,
            recent_ms: &self.recent_ms,
            at: None,
        }
    }

    /// The map's partitions, for readers of their journals.
    pub(crate) fn partitions(&self) -> &[Partition<K, V>] {
        &self.parts
    }

    pub(crate) fn stats(&self) -> MapStats {
        let mut s = MapStats {
            name: self.name.clone(),
            ..MapStats::default()
        };
        for part in self.parts.iter() {
            let data = part.data.read();
            s.entries += data.len();
            s.bytes += data.len() * data.inline_bytes_per_entry() + data.heap_bytes;
            s.allocated_bytes += data.allocated_bytes() + data.heap_bytes;
            s.hits += part.hits.load(Ordering::Relaxed);
            s.misses += part.misses.load(Ordering::Relaxed);
            s.puts += data.counters.puts;
            s.removals += data.counters.removals;
            s.evictions += data.counters.evictions;
            s.expirations += data.counters.expirations;
        }
        // The partitions themselves: lock, counters, empty table and vector headers.
        s.allocated_bytes += self.parts.len() * std::mem::size_of::<Partition<K, V>>();
        s.gets = s.hits + s.misses;
        s.listeners = self.listeners.count();
        let c = &self.listeners.counters;
        s.listener_events_delivered = c.delivered.load(Ordering::Relaxed);
        s.listener_events_dropped = c.dropped.load(Ordering::Relaxed);
        s.listener_panics = c.panicked.load(Ordering::Relaxed);
        let a = self.activity.lock();
        s.last_access_ms = a.last_access_ms;
        s.last_update_ms = a.last_update_ms;
        s
    }
}
