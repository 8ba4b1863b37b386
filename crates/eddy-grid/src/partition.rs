//! One partition of a map: its entries, indexes and journal behind one lock.
//!
//! # Layout
//!
//! Entries live densely in a `Vec<Slot>`; a `hashbrown::HashTable<u32>`
//! maps a key's hash to its slot's position. This is the layout of
//! `indexmap`, chosen over storing entries in the table itself because it
//! lets eviction sample entries uniformly at random (pick positions) and
//! lets the expiry sweep resume exactly where it stopped (a position), and
//! because its memory is lower: the table holds 4-byte positions (plus one
//! control byte) per bucket, and only the vector holds full entries.
//! Removal swaps the last slot into the hole and repoints its table entry.

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

/// One entry with its expiry and access metadata (16 bytes beyond key and
/// value, so a `u64 -> u64` slot is 40 bytes).
pub(crate) struct Slot<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
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

impl<K, V> Slot<K, V> {
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

    /// Records a read or write. Racing readers may lose an increment or
    /// store a slightly older time: both only make LRU/LFU a little more
    /// approximate, which sampling already is.
    #[inline]
    pub(crate) fn touch(&self, now_ms: Option<u64>, count_hit: bool) {
        if let Some(now) = now_ms {
            self.access_ms.store(now, Ordering::Relaxed);
        }
        if count_hit {
            let h = self.hits.load(Ordering::Relaxed);
            self.hits.store(h.saturating_add(1), Ordering::Relaxed);
        }
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

/// The data of a partition, behind its lock.
pub(crate) struct PartData<K, V> {
    table: HashTable<u32>,
    pub(crate) slots: Vec<Slot<K, V>>,
    /// Sum of the heap estimates of keys and values.
    pub(crate) heap_bytes: usize,
    pub(crate) indexes: Vec<PartIndex<K>>,
    pub(crate) journal: Option<Journal<K, V>>,
    /// Where the expiry sweep continues.
    pub(crate) sweep_cursor: usize,
    /// Picks eviction samples; seeded by partition number so runs repeat.
    pub(crate) rng: SmallRng,
    pub(crate) counters: WriteCounters,
}

impl<K: Serialize + Eq, V> PartData<K, V> {
    pub(crate) fn new(partition: usize, journal_capacity: usize) -> Self {
        PartData {
            table: HashTable::new(),
            slots: Vec::new(),
            heap_bytes: 0,
            indexes: Vec::new(),
            journal: (journal_capacity > 0).then(|| Journal::new(journal_capacity)),
            sweep_cursor: 0,
            rng: SmallRng::seed_from_u64(partition as u64),
            counters: WriteCounters::default(),
        }
    }

    /// Position of `key`'s slot.
    #[inline]
    pub(crate) fn find(&self, hash: u64, key: &K) -> Option<usize> {
        let slots = &self.slots;
        self.table
            .find(hash, |&i| slots[i as usize].key == *key)
            .map(|&i| i as usize)
    }

    /// Appends a slot for a key that is not in the partition.
    pub(crate) fn insert_new(&mut self, hash: u64, slot: Slot<K, V>) -> usize {
        let at = self.slots.len();
        self.slots.push(slot);
        let slots = &self.slots;
        self.table
            .insert_unique(hash, at as u32, |&i| key_hash(&slots[i as usize].key));
        at
    }

    /// Removes the slot at `at`; the last slot moves into its place.
    pub(crate) fn remove_at(&mut self, at: usize) -> Slot<K, V> {
        let last = self.slots.len() - 1;
        let hash = key_hash(&self.slots[at].key);
        if let Ok(entry) = self.table.find_entry(hash, |&i| i as usize == at) {
            entry.remove();
        }
        if at != last {
            let moved = key_hash(&self.slots[last].key);
            if let Some(i) = self.table.find_mut(moved, |&i| i as usize == last) {
                *i = at as u32;
            }
        }
        self.slots.swap_remove(at)
    }

    /// Removes every slot.
    pub(crate) fn clear(&mut self) -> Vec<Slot<K, V>> {
        self.table.clear();
        self.heap_bytes = 0;
        self.sweep_cursor = 0;
        for index in &mut self.indexes {
            index.clear();
        }
        std::mem::take(&mut self.slots)
    }

    /// Bytes allocated by the table and the slot vector (capacity, not length).
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.table.allocation_size() + self.slots.capacity() * std::mem::size_of::<Slot<K, V>>()
    }
}

/// A partition: its lock, and the read counters that readers bump while
/// holding only the shared lock. Aligned to a cache line so that two
/// partitions' locks never share one.
#[repr(align(64))]
pub(crate) struct Partition<K, V> {
    pub(crate) data: RwLock<PartData<K, V>>,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
}

impl<K: Serialize + Eq, V> Partition<K, V> {
    pub(crate) fn new(partition: usize, journal_capacity: usize) -> Self {
        Partition {
            data: RwLock::new(PartData::new(partition, journal_capacity)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }
}
