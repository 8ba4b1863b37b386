//! One partition of a map: its entries, indexes and journal behind one lock.
//!
//! # Layout
//!
//! Entries live in the hash table itself (`hashbrown::HashTable<(K, V)>`),
//! so a lookup touches two cache lines, the control bytes and the bucket,
//! the same as a plain `hashbrown` map. (An earlier layout kept entries in
//! a vector with the table holding 4-byte positions: one more dependent
//! cache miss on every read, and with the partition lock acting as a fence
//! the misses of consecutive reads could not overlap.)
//!
//! Expiry and access metadata ([`Meta`]) is kept beside the table, one per
//! bucket, and only once the partition needs it: the map tracks access (LRU,
//! LFU or a default max-idle), has a default TTL, or an entry was written
//! with an expiry. Until then a partition is *plain*: nothing in it can
//! expire and reads never look at metadata, so `u64 -> u64` maps without
//! expiry cost what the table costs (16 bytes plus one control byte per
//! bucket).
//!
//! Bucket indices are positions that stay put while entries are added and
//! removed: eviction samples entries by picking random buckets, and the
//! expiry sweep resumes at a bucket index. Only growing the table moves
//! entries; in a partition with metadata the table grows here
//! ([`PartData::rebuild`]), never inside `hashbrown`, so that metadata moves
//! with its entry.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use hashbrown::HashTable;
use parking_lot::RwLock;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::Serialize;

use crate::journal::Journal;
use crate::keyhash::key_hash;
use crate::query::PartIndex;

/// A deadline that never comes.
pub(crate) const NEVER: u64 = u64::MAX;

/// Expiry and access metadata of one entry (24 bytes).
pub(crate) struct Meta {
    /// Absolute TTL deadline on the grid clock, or [`NEVER`].
    pub(crate) deadline_ms: u64,
    /// Last read or write on the grid clock. Atomic so that reads, which
    /// hold only the shared lock, can record access.
    pub(crate) access_ms: AtomicU64,
    /// Max-idle of this entry in ms, 0 for none.
    pub(crate) max_idle_ms: u32,
    /// Reads and writes, saturating; kept only for LFU maps.
    pub(crate) hits: AtomicU32,
}

impl Meta {
    /// Metadata of an entry that never expires and was never accessed.
    pub(crate) fn plain() -> Meta {
        Meta::new(NEVER, 0, 0)
    }

    pub(crate) fn new(deadline_ms: u64, max_idle_ms: u32, access_ms: u64) -> Meta {
        Meta {
            deadline_ms,
            access_ms: AtomicU64::new(access_ms),
            max_idle_ms,
            hits: AtomicU32::new(1),
        }
    }

    /// A copy, for moving metadata to a grown table.
    fn take(&mut self) -> Meta {
        Meta {
            deadline_ms: self.deadline_ms,
            access_ms: AtomicU64::new(*self.access_ms.get_mut()),
            max_idle_ms: self.max_idle_ms,
            hits: AtomicU32::new(*self.hits.get_mut()),
        }
    }

    #[inline]
    pub(crate) fn may_expire(&self) -> bool {
        self.deadline_ms != NEVER || self.max_idle_ms != 0
    }

    #[inline]
    pub(crate) fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.deadline_ms
            || (self.max_idle_ms != 0
                && now_ms >= self.access_ms.load(Ordering::Relaxed) + self.max_idle_ms as u64)
    }

    /// Records a read or write. The access time is only stored when the
    /// clock has moved past it: reads of a key within the same millisecond
    /// (most reads of a hot key) write nothing, so readers on other cores
    /// do not keep taking its metadata line from each other, and max-idle
    /// and LRU, which work in whole milliseconds, see the same time.
    /// Racing readers may lose an increment or store a slightly older time:
    /// both only make LRU/LFU a little more approximate, which sampling
    /// already is.
    #[inline]
    pub(crate) fn touch(&self, now_ms: Option<u64>, count_hit: bool) {
        if let Some(now) = now_ms {
            if self.access_ms.load(Ordering::Relaxed) < now {
                self.access_ms.store(now, Ordering::Relaxed);
            }
        }
        if count_hit {
            let h = self.hits.load(Ordering::Relaxed);
            self.hits.store(h.saturating_add(1), Ordering::Relaxed);
        }
    }
}

/// One live entry as scans see it.
pub(crate) struct SlotRef<'a, K, V> {
    pub(crate) key: &'a K,
    pub(crate) value: &'a V,
    /// `None` in a plain partition (the entry never expires).
    pub(crate) meta: Option<&'a Meta>,
}

impl<K, V> SlotRef<'_, K, V> {
    /// Whether the entry has not expired at `now_ms`.
    #[inline]
    pub(crate) fn live(&self, now_ms: u64) -> bool {
        !self
            .meta
            .is_some_and(|m| m.may_expire() && m.expired(now_ms))
    }
}

/// Counters changed under the partition's write lock.
#[derive(Default, Clone, Copy)]
pub(crate) struct WriteCounters {
    pub(crate) puts: u64,
    pub(crate) removals: u64,
    pub(crate) evictions: u64,
    pub(crate) expirations: u64,
}

/// The data of a partition, behind its lock. `repr(C)` keeps the table,
/// which every operation reads, first (see [`Partition`]).
#[repr(C)]
pub(crate) struct PartData<K, V> {
    table: HashTable<(K, V)>,
    /// Empty in a plain partition; otherwise one per bucket of `table`
    /// (`meta.len() == table.num_buckets()`), meaningful for occupied ones.
    meta: Vec<Meta>,
    /// Whether `meta` is kept (see the module docs).
    has_meta: bool,
    /// Sum of the heap estimates of keys and values.
    pub(crate) heap_bytes: usize,
    pub(crate) indexes: Vec<PartIndex<K>>,
    pub(crate) journal: Option<Journal<K, V>>,
    /// The bucket where the expiry sweep continues.
    pub(crate) sweep_cursor: usize,
    /// Picks eviction samples; seeded by partition number so runs repeat.
    pub(crate) rng: SmallRng,
    pub(crate) counters: WriteCounters,
}

#[inline]
fn hash_of<K: Serialize, V>(entry: &(K, V)) -> u64 {
    key_hash(&entry.0)
}

impl<K: Serialize + Eq, V> PartData<K, V> {
    pub(crate) fn new(partition: usize, journal_capacity: usize) -> Self {
        PartData {
            table: HashTable::new(),
            meta: Vec::new(),
            has_meta: false,
            heap_bytes: 0,
            indexes: Vec::new(),
            journal: (journal_capacity > 0).then(|| Journal::new(journal_capacity)),
            sweep_cursor: 0,
            rng: SmallRng::seed_from_u64(partition as u64),
            counters: WriteCounters::default(),
        }
    }

    /// Entries held.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the partition keeps metadata, i.e. whether anything in it
    /// can expire or is tracked for eviction.
    #[inline]
    pub(crate) fn has_meta(&self) -> bool {
        self.has_meta
    }

    /// Buckets of the table; bucket indices are below this.
    #[inline]
    pub(crate) fn buckets(&self) -> usize {
        self.table.num_buckets()
    }

    /// The value of `key`, in one probe; for reads that need no metadata.
    #[inline]
    pub(crate) fn find_value(&self, hash: u64, key: &K) -> Option<&V> {
        self.table.find(hash, |e| e.0 == *key).map(|e| &e.1)
    }

    /// Bucket of `key`'s entry.
    #[inline]
    pub(crate) fn find(&self, hash: u64, key: &K) -> Option<usize> {
        self.table.find_bucket_index(hash, |e| e.0 == *key)
    }

    /// The entry in bucket `at`, if it is occupied.
    #[inline]
    pub(crate) fn get(&self, at: usize) -> Option<(&K, &V)> {
        self.table.get_bucket(at).map(|(k, v)| (k, v))
    }

    /// The entry in bucket `at`, which the caller knows is occupied.
    #[inline]
    pub(crate) fn entry(&self, at: usize) -> (&K, &V) {
        self.get(at).expect("bucket index of a present entry")
    }

    /// The value in bucket `at`, which the caller knows is occupied.
    #[inline]
    pub(crate) fn value_mut(&mut self, at: usize) -> &mut V {
        &mut self
            .table
            .get_bucket_mut(at)
            .expect("bucket index of a present entry")
            .1
    }

    /// Metadata of the entry in bucket `at`; `None` in a plain partition.
    #[inline]
    pub(crate) fn meta(&self, at: usize) -> Option<&Meta> {
        if self.has_meta {
            Some(&self.meta[at])
        } else {
            None
        }
    }

    /// Whether the entry in bucket `at` has expired at `now_ms` (which is
    /// only read when the entry can expire).
    #[inline]
    pub(crate) fn expired_at(&self, at: usize, now_ms: impl FnOnce() -> u64) -> bool {
        self.meta(at)
            .is_some_and(|m| m.may_expire() && m.expired(now_ms()))
    }

    /// Starts keeping metadata; every present entry gets [`Meta::plain`].
    /// Entries do not move, so bucket indices stay valid.
    pub(crate) fn enable_meta(&mut self) {
        if !self.has_meta {
            self.meta = (0..self.table.num_buckets())
                .map(|_| Meta::plain())
                .collect();
            self.has_meta = true;
        }
    }

    /// Sets the expiry of the entry in bucket `at`.
    pub(crate) fn set_expiry(&mut self, at: usize, deadline_ms: u64, max_idle_ms: u32) {
        if deadline_ms == NEVER && max_idle_ms == 0 && !self.has_meta {
            return;
        }
        self.enable_meta();
        let m = &mut self.meta[at];
        m.deadline_ms = deadline_ms;
        m.max_idle_ms = max_idle_ms;
    }

    /// Adds an entry for a key that is not in the partition; returns its
    /// bucket. `meta` of `None` means a plain entry (never expires, not
    /// tracked); it is only dropped when the partition keeps no metadata.
    pub(crate) fn insert_new(&mut self, hash: u64, key: K, value: V, meta: Option<Meta>) -> usize {
        if meta.is_some() {
            self.enable_meta();
        }
        if !self.has_meta {
            return self
                .table
                .insert_unique(hash, (key, value), hash_of)
                .bucket_index();
        }
        // With room left, `insert_unique` never reorganises the table, so
        // the metadata of the other entries stays in its buckets.
        if self.table.len() == self.table.capacity() {
            self.rebuild();
        }
        let buckets = self.table.num_buckets();
        let at = self
            .table
            .insert_unique(hash, (key, value), hash_of)
            .bucket_index();
        debug_assert_eq!(buckets, self.table.num_buckets(), "the table had room");
        self.meta[at] = meta.unwrap_or_else(Meta::plain);
        at
    }

    /// Moves every entry and its metadata into a new table: twice the
    /// buckets when more than half full (what `hashbrown` would do),
    /// otherwise the same number, which only clears deleted markers.
    fn rebuild(&mut self) {
        let buckets = self.table.num_buckets();
        // `hashbrown`'s usable capacity of that many buckets (7/8 load).
        let full = if buckets < 8 {
            buckets.saturating_sub(1)
        } else {
            buckets / 8 * 7
        };
        let len = self.table.len();
        let wanted = if len > full / 2 { full + 1 } else { full };
        let mut table = HashTable::with_capacity(wanted.max(len + 1));
        let mut meta: Vec<Meta> = (0..table.num_buckets()).map(|_| Meta::plain()).collect();
        let mut old = std::mem::take(&mut self.table);
        for i in 0..buckets {
            if let Ok(entry) = old.get_bucket_entry(i) {
                let (kv, _) = entry.remove();
                let h = hash_of(&kv);
                let j = table.insert_unique(h, kv, hash_of).bucket_index();
                meta[j] = self.meta[i].take();
            }
        }
        self.table = table;
        self.meta = meta;
        self.sweep_cursor = 0;
    }

    /// Removes the entry in bucket `at`; no other entry moves.
    pub(crate) fn remove_at(&mut self, at: usize) -> (K, V) {
        match self.table.get_bucket_entry(at) {
            Ok(entry) => entry.remove().0,
            Err(_) => unreachable!("bucket index of a present entry"),
        }
    }

    /// Every live entry's bucket, in bucket order.
    pub(crate) fn bucket_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.table.iter_buckets()
    }

    /// Every entry with its metadata, live or not.
    pub(crate) fn slots(&self) -> impl Iterator<Item = SlotRef<'_, K, V>> {
        self.table.iter_buckets().map(|at| self.slot(at))
    }

    /// The entry in bucket `at` with its metadata.
    #[inline]
    pub(crate) fn slot(&self, at: usize) -> SlotRef<'_, K, V> {
        let (key, value) = self.entry(at);
        SlotRef {
            key,
            value,
            meta: self.meta(at),
        }
    }

    /// Removes every entry; returns how many there were. The table keeps
    /// its buckets (and metadata its slots) for the entries to come.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.table.len();
        self.table.clear();
        self.heap_bytes = 0;
        self.sweep_cursor = 0;
        for index in &mut self.indexes {
            index.clear();
        }
        n
    }

    /// Inline bytes of one entry: the bucket, its control byte and, when
    /// kept, its metadata.
    pub(crate) fn inline_bytes_per_entry(&self) -> usize {
        std::mem::size_of::<(K, V)>()
            + 1
            + if self.has_meta {
                std::mem::size_of::<Meta>()
            } else {
                0
            }
    }

    /// Bytes allocated by the table and the metadata (capacity, not length).
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.table.allocation_size() + self.meta.capacity() * std::mem::size_of::<Meta>()
    }
}

/// A partition: its lock, and the read counters that readers bump while
/// holding only the shared lock. Aligned to a cache line so that two
/// partitions' locks never share one; `repr(C)` puts the counters, the
/// lock word and the start of [`PartData`] (the table's header) in that one
/// line, so a read touches a single partition line besides the table.
#[repr(C, align(64))]
pub(crate) struct Partition<K, V> {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) data: RwLock<PartData<K, V>>,
}

impl<K: Serialize + Eq, V> Partition<K, V> {
    pub(crate) fn new(partition: usize, journal_capacity: usize) -> Self {
        Partition {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            data: RwLock::new(PartData::new(partition, journal_capacity)),
        }
    }
}
