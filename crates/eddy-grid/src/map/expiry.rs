//! Expiry and eviction: deadlines and max-idle of writes, lazy expiry on
//! access, the bounded background sweep, and eviction by sampling when a
//! partition is over its limits.

use std::sync::atomic::Ordering;

use crate::config::{EvictionPolicy, Expiry};
use crate::events::EntryEventKind;
use crate::partition::{PartData, NEVER};

use super::{GridKey, GridValue, MapInner, Now};

/// Entries examined per eviction: Hazelcast's default sample size. Larger
/// samples approach exact LRU/LFU at more cost per eviction; 15 picks a
/// victim among the least-used ~6% with high probability.
pub const EVICTION_SAMPLE: usize = 15;

/// Table buckets the sweeper examines per partition lock hold (so at most
/// this many entries). At roughly 0.1 µs per examined or removed entry this
/// bounds a hold to tens of microseconds even when every entry has expired
/// at once, so operations on the same partition wait at most that long
/// behind the sweeper.
pub const SWEEP_BATCH: usize = 256;

/// Random buckets tried per wanted eviction sample before giving up on
/// sampling. A grown table is at least ~7/16 full, so 8 tries per sample
/// almost never run out; they only do in a table that removals have left
/// nearly empty, where the fallback (first entry) is as good as any.
const EVICTION_SAMPLE_TRIES: usize = 8;

impl<K: GridKey, V: GridValue> MapInner<K, V> {
    // ----- expiry -------------------------------------------------------

    /// Position of `key` if it is present and not expired; removes it if expired.
    pub(super) fn live(
        &self,
        data: &mut PartData<K, V>,
        partition: usize,
        h: u64,
        key: &K,
        now: &mut Now,
    ) -> Option<usize> {
        let at = data.find(h, key)?;
        if data.expired_at(at, || now.get()) {
            self.remove_slot(data, partition, at, EntryEventKind::Expired);
            return None;
        }
        Some(at)
    }

    /// Deadline and max-idle for a write with `expiry`.
    pub(super) fn resolve(&self, expiry: Expiry, now: &mut Now) -> (u64, u32) {
        let ttl_ms = match expiry.ttl {
            None => self.default_ttl_ms,
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d.as_millis().min(u64::MAX as u128) as u64),
        };
        let idle_ms = match expiry.max_idle {
            None => self.default_idle_ms,
            // Longer max-idle than a u32 of ms (49 days) is capped there.
            Some(d) => d.as_millis().min(u32::MAX as u128) as u32,
        };
        let deadline = ttl_ms.map_or(NEVER, |t| now.get().saturating_add(t));
        if deadline != NEVER || idle_ms != 0 {
            self.may_expire.store(true, Ordering::Relaxed);
        }
        (deadline, idle_ms)
    }

    pub(super) fn access_time(&self, idle_ms: u32, now: &mut Now) -> Option<u64> {
        (self.track_access || idle_ms != 0).then(|| now.get())
    }

    pub(super) fn expire_key(&self, p: usize, h: u64, key: &K) {
        let mut data = self.parts[p].data.write();
        let mut now = self.now();
        self.live(&mut data, p, h, key, &mut now);
    }

    // ----- eviction -----------------------------------------------------

    fn over_limit(&self, data: &PartData<K, V>) -> bool {
        data.len() > self.part_max_entries
            || (self.part_max_bytes != usize::MAX
                && data.len() * data.inline_bytes_per_entry() + data.heap_bytes
                    > self.part_max_bytes)
    }

    /// Evicts sampled entries until the partition is within its limits;
    /// never evicts the entry at `protect`, the one just written (removals
    /// move no entries, so its bucket stays the same).
    pub(super) fn evict_if_needed(
        &self,
        data: &mut PartData<K, V>,
        partition: usize,
        protect: usize,
        now: &mut Now,
    ) {
        while data.len() > 1 && self.over_limit(data) {
            let (victim, expired) = self.pick_victim(data, protect, now);
            let kind = if expired {
                EntryEventKind::Expired
            } else {
                EntryEventKind::Evicted
            };
            self.remove_slot(data, partition, victim, kind);
        }
    }

    /// Hazelcast-style sampling: the best victim among a few random entries
    /// (random buckets, skipping empty ones); an expired entry found on the
    /// way is taken at once.
    fn pick_victim(
        &self,
        data: &mut PartData<K, V>,
        protect: usize,
        now: &mut Now,
    ) -> (usize, bool) {
        use rand::Rng;
        let mut best: Option<(usize, (u64, u64))> = None;
        // Scores one candidate; `Some` ends the search at once.
        let mut consider = |data: &PartData<K, V>, at: usize| -> Option<(usize, bool)> {
            let meta = data.meta(at)?;
            if meta.may_expire() && meta.expired(now.get()) {
                return Some((at, true));
            }
            let access = meta.access_ms.load(Ordering::Relaxed);
            let score = match self.config.eviction.policy {
                EvictionPolicy::Lru => (access, 0),
                EvictionPolicy::Lfu => (meta.hits.load(Ordering::Relaxed) as u64, access),
                EvictionPolicy::Random => return Some((at, false)),
            };
            if best.is_none_or(|(_, b)| score < b) {
                best = Some((at, score));
            }
            None
        };
        if data.len() <= EVICTION_SAMPLE {
            let all: Vec<usize> = data.bucket_indices().filter(|&i| i != protect).collect();
            for at in all {
                if let Some(found) = consider(data, at) {
                    return found;
                }
            }
        } else {
            let buckets = data.buckets();
            let (mut sampled, mut tries) = (0, 0);
            // The table is at least about 7/16 full after it grows, so a
            // random bucket is usually occupied; the bound on tries keeps a
            // table emptied by removals from making eviction slow.
            while sampled < EVICTION_SAMPLE && tries < EVICTION_SAMPLE * EVICTION_SAMPLE_TRIES {
                tries += 1;
                let at = data.rng.gen_range(0..buckets);
                if at == protect || data.get(at).is_none() {
                    continue;
                }
                sampled += 1;
                if let Some(found) = consider(data, at) {
                    return found;
                }
            }
        }
        // No sample was usable (a sparse table, or a plain partition):
        // take the first entry that is not the protected one.
        let fallback = best
            .map(|(at, _)| at)
            .or_else(|| data.bucket_indices().find(|&i| i != protect));
        (fallback.unwrap_or(protect), false)
    }

    // ----- maintenance --------------------------------------------------

    /// One bounded sweep step of partition `p` (at most [`SWEEP_BATCH`]
    /// buckets); returns whether it reached the end of the partition.
    fn sweep_step(&self, p: usize) -> bool {
        let mut data = self.parts[p].data.write();
        if !data.has_meta() {
            // Nothing in a plain partition can expire.
            return true;
        }
        let now = self.clock.now_ms();
        let start = data.sweep_cursor;
        let end = data.buckets().min(start.saturating_add(SWEEP_BATCH));
        for at in start..end {
            // Removing leaves every other entry in its bucket.
            if data.get(at).is_some() && data.expired_at(at, || now) {
                self.remove_slot(&mut data, p, at, EntryEventKind::Expired);
            }
        }
        let done = end >= data.buckets();
        data.sweep_cursor = if done { 0 } else { end };
        done
    }

    /// Removes expired entries of every partition, a bounded batch per lock
    /// hold, and updates the activity statistics.
    pub(crate) fn maintain(&self) {
        if self.may_expire.load(Ordering::Relaxed) {
            for p in 0..self.parts.len() {
                while !self.sweep_step(p) {}
            }
        }
        let (reads, writes) = self.parts.iter().fold((0, 0), |(r, w), part| {
            let c = part.data.read().counters;
            (
                r + part.hits.load(Ordering::Relaxed) + part.misses.load(Ordering::Relaxed),
                w + c.puts + c.removals,
            )
        });
        let now = self.now().get();
        let mut a = self.activity.lock();
        if reads != a.reads || writes != a.writes {
            a.last_access_ms = Some(now);
        }
        if writes != a.writes {
            a.last_update_ms = Some(now);
        }
        (a.reads, a.writes) = (reads, writes);
    }
}
