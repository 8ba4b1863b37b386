//! Typed map handles: the operations, expiry, eviction, events and queries of one map.
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

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::clock::Clock;
use crate::config::{EvictionPolicy, Expiry, MapConfig};
use crate::events::{
    EntryEvent, EntryEventKind, EventFilter, ListenerHub, ListenerId, MapEvent, Matcher,
};
use crate::journal::{JournalBatch, JournalStart};
use crate::keyhash::{heap_bytes, key_hash, partition_of};
use crate::partition::{Meta, PartData, Partition, SlotRef, NEVER};
use crate::query::json_total_cmp;
use crate::query::{
    plan, Accumulator, Aggregation, AttrPath, Attributes, IndexType, PartIndex, Predicate, Scalar,
};
use crate::stats::MapStats;
use crate::{snapshot, GridError};

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

/// Reads the clock at most once per operation, and only if needed.
struct Now<'a> {
    clock: &'a dyn Clock,
    at: Option<u64>,
}

impl Now<'_> {
    #[inline]
    fn get(&mut self) -> u64 {
        *self.at.get_or_insert_with(|| self.clock.now_ms())
    }
}

/// Attributes of one entry, converting key and value to JSON only when a
/// path needs them.
pub(crate) struct EntryAttrs<'a, K, V> {
    key: &'a K,
    value: &'a V,
    extractors: &'a Extractors<V>,
    key_json: OnceCell<Option<Value>>,
    value_json: OnceCell<Option<Value>>,
}

impl<'a, K: Serialize, V: Serialize> EntryAttrs<'a, K, V> {
    pub(crate) fn new(key: &'a K, value: &'a V, extractors: &'a Extractors<V>) -> Self {
        EntryAttrs {
            key,
            value,
            extractors,
            key_json: OnceCell::new(),
            value_json: OnceCell::new(),
        }
    }

    fn scalar(&self, path: &AttrPath) -> Option<Scalar> {
        self.attribute(path).and_then(|v| Scalar::from_json(&v))
    }
}

impl<K: Serialize, V: Serialize> Attributes for EntryAttrs<'_, K, V> {
    fn attribute(&self, path: &AttrPath) -> Option<Cow<'_, Value>> {
        let key_json = || {
            self.key_json
                .get_or_init(|| serde_json::to_value(self.key).ok())
                .as_ref()
        };
        let value_json = || {
            self.value_json
                .get_or_init(|| serde_json::to_value(self.value).ok())
                .as_ref()
        };
        match path.head() {
            crate::query::KEY_ATTRIBUTE => {
                AttrPath::walk(key_json()?, path.tail()).map(Cow::Borrowed)
            }
            crate::query::THIS_ATTRIBUTE => {
                AttrPath::walk(value_json()?, path.tail()).map(Cow::Borrowed)
            }
            head => match self.extractors.get(head) {
                Some(extract) => {
                    let v = extract(self.value);
                    AttrPath::walk(&v, path.tail()).cloned().map(Cow::Owned)
                }
                None => AttrPath::walk(value_json()?, path.segments()).map(Cow::Borrowed),
            },
        }
    }
}

/// How a query will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryPlan {
    /// Every entry is checked.
    FullScan,
    /// Candidates come from the indexes on these attributes.
    Indexes(Vec<String>),
}

/// One page of a query's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<K, V> {
    /// The entries of the page, ordered by key (see [`json_total_cmp`]).
    pub entries: Vec<(K, V)>,
    /// Matching entries over all pages.
    pub total: usize,
}

/// One entry as an entry processor sees it; changes apply when the
/// processor returns, atomically with the read.
pub struct EntryMut<'a, K, V> {
    key: &'a K,
    value: Option<V>,
    changed: bool,
}

impl<K, V> EntryMut<'_, K, V> {
    /// The key.
    pub fn key(&self) -> &K {
        self.key
    }

    /// The current value; `None` if the key is absent.
    pub fn value(&self) -> Option<&V> {
        self.value.as_ref()
    }

    /// The value, to change in place (keeps the entry's expiry).
    pub fn value_mut(&mut self) -> Option<&mut V> {
        self.changed = true;
        self.value.as_mut()
    }

    /// Sets the value (adds the entry if absent; keeps an existing entry's expiry).
    pub fn set_value(&mut self, value: V) {
        self.changed = true;
        self.value = Some(value);
    }

    /// Removes the entry.
    pub fn remove(&mut self) {
        self.changed = true;
        self.value = None;
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
            at: None,
        }
    }

    // ----- events -------------------------------------------------------

    /// `None` if nobody wants events; otherwise whether they need values.
    #[inline]
    fn event_demand(&self, data: &PartData<K, V>) -> Option<bool> {
        let listeners = self.listeners.active();
        match (data.journal.is_some(), listeners) {
            (false, false) => None,
            (true, _) => Some(true),
            (false, true) => Some(self.listeners.want_values()),
        }
    }

    fn publish(&self, data: &mut PartData<K, V>, partition: usize, event: MapEvent<K, V>) {
        if let Some(j) = &mut data.journal {
            if self.listeners.active() {
                j.push(partition, event.clone());
            } else {
                j.push(partition, event);
                return;
            }
        }
        if self.listeners.active() {
            self.listeners.send(event);
        }
    }

    fn entry_event(
        &self,
        data: &mut PartData<K, V>,
        partition: usize,
        kind: EntryEventKind,
        key: &K,
        old: Option<&V>,
        new: Option<&V>,
    ) {
        let Some(values) = self.event_demand(data) else {
            return;
        };
        let event = MapEvent::Entry(EntryEvent {
            kind,
            key: key.clone(),
            old_value: if values { old.cloned() } else { None },
            new_value: if values { new.cloned() } else { None },
        });
        self.publish(data, partition, event);
    }

    // ----- entry bookkeeping --------------------------------------------

    fn index_remove(&self, data: &mut PartData<K, V>, key: &K, value: &V) {
        if data.indexes.is_empty() {
            return;
        }
        let extractors = self.extractors.read().clone();
        let attrs = EntryAttrs::new(key, value, &extractors);
        for index in &mut data.indexes {
            if let Some(s) = attrs.scalar(&index.path) {
                index.remove(&s, key);
            }
        }
    }

    fn index_insert(&self, data: &mut PartData<K, V>, key: &K, value: &V) {
        if data.indexes.is_empty() {
            return;
        }
        let extractors = self.extractors.read().clone();
        let attrs = EntryAttrs::new(key, value, &extractors);
        for index in &mut data.indexes {
            if let Some(s) = attrs.scalar(&index.path) {
                index.insert(s, key.clone());
            }
        }
    }

    /// Removes the slot at `at` with all bookkeeping and the event of `kind`.
    fn remove_slot(
        &self,
        data: &mut PartData<K, V>,
        partition: usize,
        at: usize,
        kind: EntryEventKind,
    ) -> (K, V) {
        let (key, value) = data.remove_at(at);
        data.heap_bytes -= heap_bytes(&key) + heap_bytes(&value);
        self.index_remove(data, &key, &value);
        match kind {
            EntryEventKind::Evicted => data.counters.evictions += 1,
            EntryEventKind::Expired => data.counters.expirations += 1,
            _ => data.counters.removals += 1,
        }
        self.entry_event(data, partition, kind, &key, Some(&value), None);
        (key, value)
    }

    /// Position of `key` if it is present and not expired; removes it if expired.
    fn live(
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
    fn resolve(&self, expiry: Expiry, now: &mut Now) -> (u64, u32) {
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

    fn access_time(&self, idle_ms: u32, now: &mut Now) -> Option<u64> {
        (self.track_access || idle_ms != 0).then(|| now.get())
    }

    /// Replaces the value at `at`; `expiry` of `None` keeps the entry's.
    fn replace_at(
        &self,
        data: &mut PartData<K, V>,
        partition: usize,
        at: usize,
        value: V,
        expiry: Option<(u64, u32)>,
        now: &mut Now,
    ) -> V {
        let new_heap = heap_bytes(&value);
        if !data.indexes.is_empty() {
            let (k, old) = data.entry(at);
            let (k, old) = (k.clone(), old.clone());
            self.index_remove(data, &k, &old);
            self.index_insert(data, &k, &value);
        }
        let slot = data.value_mut(at);
        let old_heap = heap_bytes(slot);
        let old = std::mem::replace(slot, value);
        if let Some((deadline, idle)) = expiry {
            data.set_expiry(at, deadline, idle);
        }
        if let Some(meta) = data.meta(at) {
            let access = self.access_time(meta.max_idle_ms, now);
            meta.touch(access, self.lfu);
        }
        data.heap_bytes = data.heap_bytes + new_heap - old_heap;
        data.counters.puts += 1;
        if self.event_demand(data).is_some() {
            let (key, new) = data.entry(at);
            let (key, new) = (key.clone(), new.clone());
            self.entry_event(
                data,
                partition,
                EntryEventKind::Updated,
                &key,
                Some(&old),
                Some(&new),
            );
        }
        if new_heap > old_heap {
            self.evict_if_needed(data, partition, at, now);
        }
        old
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_at(
        &self,
        data: &mut PartData<K, V>,
        partition: usize,
        h: u64,
        key: K,
        value: V,
        (deadline, idle): (u64, u32),
        now: &mut Now,
    ) {
        data.heap_bytes += heap_bytes(&key) + heap_bytes(&value);
        self.index_insert(data, &key, &value);
        let meta = (self.meta_always || deadline != NEVER || idle != 0).then(|| {
            let access = self.access_time(idle, now).unwrap_or(0);
            Meta::new(deadline, idle, access)
        });
        let at = data.insert_new(h, key, value, meta);
        data.counters.puts += 1;
        if self.event_demand(data).is_some() {
            let (k, v) = data.entry(at);
            let (k, v) = (k.clone(), v.clone());
            self.entry_event(data, partition, EntryEventKind::Added, &k, None, Some(&v));
        }
        self.evict_if_needed(data, partition, at, now);
    }

    fn upsert(&self, key: K, value: V, expiry: Expiry) -> Option<V> {
        let (h, p) = self.locate(&key);
        let mut now = self.now();
        let resolved = self.resolve(expiry, &mut now);
        let mut data = self.parts[p].data.write();
        match self.live(&mut data, p, h, &key, &mut now) {
            Some(at) => Some(self.replace_at(&mut data, p, at, value, Some(resolved), &mut now)),
            None => {
                self.insert_at(&mut data, p, h, key, value, resolved, &mut now);
                None
            }
        }
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
    fn evict_if_needed(
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

    // ----- reads ----------------------------------------------------------

    /// Applies `read` to the live value of `key` under its partition's read lock.
    pub(crate) fn get_with<R>(&self, key: &K, read: impl FnOnce(&V) -> R) -> Option<R> {
        let (h, p) = self.locate(key);
        let part = &self.parts[p];
        let data = part.data.read();
        if !data.has_meta() {
            // Nothing in a plain partition expires or is tracked: one probe.
            return match data.find_value(h, key) {
                Some(v) => {
                    let r = read(v);
                    part.hits.fetch_add(1, Ordering::Relaxed);
                    Some(r)
                }
                None => {
                    part.misses.fetch_add(1, Ordering::Relaxed);
                    None
                }
            };
        }
        let Some(at) = data.find(h, key) else {
            part.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let slot = data.slot(at);
        let meta = slot.meta.expect("a partition with metadata");
        let mut access = None;
        if meta.may_expire() || self.track_access {
            let now = self.clock.now_ms();
            if meta.may_expire() && meta.expired(now) {
                drop(data);
                self.expire_key(p, h, key);
                part.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            if self.track_access || meta.max_idle_ms != 0 {
                access = Some(now);
            }
        }
        meta.touch(access, self.lfu);
        part.hits.fetch_add(1, Ordering::Relaxed);
        Some(read(slot.value))
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.get_with(key, V::clone)
    }

    fn expire_key(&self, p: usize, h: u64, key: &K) {
        let mut data = self.parts[p].data.write();
        let mut now = self.now();
        self.live(&mut data, p, h, key, &mut now);
    }

    /// Calls `visit` on every live entry, one partition at a time.
    fn for_each_live(&self, mut visit: impl FnMut(&SlotRef<'_, K, V>)) {
        let now = self.clock.now_ms();
        for part in self.parts.iter() {
            let data = part.data.read();
            for slot in data.slots() {
                if slot.live(now) {
                    visit(&slot);
                }
            }
        }
    }

    /// Calls `visit` on every live entry matching `pred`, using indexes
    /// where the planner finds one.
    fn for_each_match(
        &self,
        pred: &Predicate,
        mut visit: impl FnMut(&SlotRef<'_, K, V>, &EntryAttrs<'_, K, V>),
    ) {
        let plan = plan(pred, &self.index_defs.read());
        let extractors = self.extractors.read().clone();
        let now = self.clock.now_ms();
        let mut check = |slot: SlotRef<'_, K, V>| {
            if !slot.live(now) {
                return;
            }
            let attrs = EntryAttrs::new(slot.key, slot.value, &extractors);
            if pred.matches(&attrs) {
                visit(&slot, &attrs);
            }
        };
        let mut positions = Vec::new();
        for part in self.parts.iter() {
            let data = part.data.read();
            match &plan {
                None => data.slots().for_each(&mut check),
                Some(plan) => {
                    let mut keys = Vec::new();
                    plan.candidates(&data.indexes, &mut keys);
                    positions.clear();
                    positions.extend(keys.into_iter().filter_map(|k| data.find(key_hash(k), k)));
                    // An `or` or an `in` may name one entry twice.
                    positions.sort_unstable();
                    positions.dedup();
                    positions.iter().for_each(|&at| check(data.slot(at)));
                }
            }
        }
    }

    pub(crate) fn explain(&self, pred: &Predicate) -> QueryPlan {
        let defs = self.index_defs.read();
        match plan(pred, &defs) {
            None => QueryPlan::FullScan,
            Some(p) => {
                let mut names: Vec<String> = p
                    .indexes()
                    .into_iter()
                    .map(|i| defs[i].0.to_string())
                    .collect();
                names.dedup();
                QueryPlan::Indexes(names)
            }
        }
    }

    pub(crate) fn entries_where(&self, pred: &Predicate) -> Vec<(K, V)> {
        let mut out = Vec::new();
        self.for_each_match(pred, |s, _| out.push((s.key.clone(), s.value.clone())));
        out
    }

    pub(crate) fn page(&self, pred: &Predicate, page_size: usize, page: usize) -> Page<K, V> {
        let mut all: Vec<(Value, K, V)> = Vec::new();
        self.for_each_match(pred, |s, _| {
            let kj = serde_json::to_value(s.key).unwrap_or(Value::Null);
            all.push((kj, s.key.clone(), s.value.clone()));
        });
        all.sort_by(|a, b| json_total_cmp(&a.0, &b.0));
        let total = all.len();
        let start = page.saturating_mul(page_size).min(total);
        let end = start.saturating_add(page_size).min(total);
        Page {
            entries: all.drain(start..end).map(|(_, k, v)| (k, v)).collect(),
            total,
        }
    }

    pub(crate) fn aggregate(&self, agg: &Aggregation, pred: Option<&Predicate>) -> Value {
        let mut acc = Accumulator::new(agg);
        self.for_each_match(pred.unwrap_or(&Predicate::True), |_, attrs| acc.add(attrs));
        acc.finish()
    }

    // ----- writes -------------------------------------------------------

    fn with_live<R>(
        &self,
        key: &K,
        f: impl FnOnce(&Self, &mut PartData<K, V>, usize, u64, Option<usize>, &mut Now) -> R,
    ) -> R {
        let (h, p) = self.locate(key);
        let mut data = self.parts[p].data.write();
        let mut now = self.now();
        let at = self.live(&mut data, p, h, key, &mut now);
        f(self, &mut data, p, h, at, &mut now)
    }

    pub(crate) fn remove(&self, key: &K) -> Option<V> {
        self.with_live(key, |m, data, p, _, at, _| {
            at.map(|at| m.remove_slot(data, p, at, EntryEventKind::Removed).1)
        })
    }

    pub(crate) fn put_if_absent(&self, key: K, value: V, expiry: Expiry) -> Option<V> {
        let mut now = self.now();
        let resolved = self.resolve(expiry, &mut now);
        let (h, p) = self.locate(&key);
        let mut data = self.parts[p].data.write();
        match self.live(&mut data, p, h, &key, &mut now) {
            Some(at) => {
                let slot = data.slot(at);
                if let Some(meta) = slot.meta {
                    let access = self.access_time(meta.max_idle_ms, &mut now);
                    meta.touch(access, self.lfu);
                }
                Some(slot.value.clone())
            }
            None => {
                self.insert_at(&mut data, p, h, key, value, resolved, &mut now);
                None
            }
        }
    }

    pub(crate) fn replace_if(&self, key: &K, value: V, pred: impl FnOnce(&V) -> bool) -> Option<V> {
        self.with_live(key, |m, data, p, _, at, now| {
            let at = at?;
            if !pred(data.entry(at).1) {
                return None;
            }
            let resolved = m.resolve(Expiry::default(), now);
            Some(m.replace_at(data, p, at, value, Some(resolved), now))
        })
    }

    pub(crate) fn process<R>(&self, key: &K, f: impl FnOnce(&mut EntryMut<'_, K, V>) -> R) -> R {
        self.with_live(key, |m, data, p, h, at, now| {
            m.process_locked(data, p, h, key, at, now, f)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn process_locked<R>(
        &self,
        data: &mut PartData<K, V>,
        p: usize,
        h: u64,
        key: &K,
        at: Option<usize>,
        now: &mut Now,
        f: impl FnOnce(&mut EntryMut<'_, K, V>) -> R,
    ) -> R {
        let mut entry = EntryMut {
            key,
            value: at.map(|i| data.entry(i).1.clone()),
            changed: false,
        };
        let result = f(&mut entry);
        if entry.changed {
            match (at, entry.value) {
                (None, None) => {}
                (Some(i), None) => {
                    self.remove_slot(data, p, i, EntryEventKind::Removed);
                }
                (None, Some(v)) => {
                    let resolved = self.resolve(Expiry::default(), now);
                    self.insert_at(data, p, h, key.clone(), v, resolved, now);
                }
                (Some(i), Some(v)) => {
                    self.replace_at(data, p, i, v, None, now);
                }
            }
        }
        result
    }

    pub(crate) fn process_matching<R>(
        &self,
        pred: &Predicate,
        f: impl Fn(&mut EntryMut<'_, K, V>) -> R,
    ) -> Vec<(K, R)> {
        let extractors = self.extractors.read().clone();
        let mut out = Vec::new();
        for (p, part) in self.parts.iter().enumerate() {
            let mut data = part.data.write();
            let mut now = self.now();
            let t = now.get();
            // Select first, then process: an insert may grow the table,
            // which moves entries to other buckets.
            let keys: Vec<K> = data
                .slots()
                .filter(|s| s.live(t))
                .filter(|s| pred.matches(&EntryAttrs::new(s.key, s.value, &extractors)))
                .map(|s| s.key.clone())
                .collect();
            for key in keys {
                let h = key_hash(&key);
                let at = data.find(h, &key);
                let r = self.process_locked(&mut data, p, h, &key, at, &mut now, &f);
                out.push((key, r));
            }
        }
        out
    }

    pub(crate) fn clear(&self) -> usize {
        // All partitions at once, in order, so that clear is atomic.
        let mut guards: Vec<_> = self.parts.iter().map(|p| p.data.write()).collect();
        let mut total = 0;
        for (p, data) in guards.iter_mut().enumerate() {
            let n = data.clear();
            total += n;
            if n > 0 {
                if let Some(j) = &mut data.journal {
                    j.push(p, MapEvent::Cleared { entries: n });
                }
            }
        }
        if total > 0 && self.listeners.active() {
            self.listeners.send(MapEvent::Cleared { entries: total });
        }
        total
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
        let now = self.clock.now_ms();
        let mut a = self.activity.lock();
        if reads != a.reads || writes != a.writes {
            a.last_access_ms = Some(now);
        }
        if writes != a.writes {
            a.last_update_ms = Some(now);
        }
        (a.reads, a.writes) = (reads, writes);
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

    fn matcher(&self) -> Matcher<K, V> {
        let extractors = Arc::clone(&self.extractors);
        Arc::new(move |pred: &Predicate, k: &K, v: &V| {
            let ex = extractors.read().clone();
            pred.matches(&EntryAttrs::new(k, v, &ex))
        })
    }

    fn add_index(&self, path: AttrPath, kind: IndexType) {
        let mut defs = self.index_defs.write();
        if defs.iter().any(|(p, _)| *p == path) {
            return;
        }
        let extractors = self.extractors.read().clone();
        for part in self.parts.iter() {
            let mut data = part.data.write();
            let mut index = PartIndex::new(path.clone(), kind);
            for slot in data.slots() {
                if let Some(s) = EntryAttrs::new(slot.key, slot.value, &extractors).scalar(&path) {
                    index.insert(s, slot.key.clone());
                }
            }
            data.indexes.push(index);
        }
        defs.push((path, kind));
    }

    /// Entries with their remaining TTL and max-idle, for snapshots.
    pub(crate) fn for_each_with_expiry(
        &self,
        mut visit: impl FnMut(&K, &V, Option<u64>, Option<u32>),
    ) {
        let now = self.clock.now_ms();
        self.for_each_live(|s| {
            let (deadline_ms, max_idle_ms) = s
                .meta
                .map_or((NEVER, 0), |m| (m.deadline_ms, m.max_idle_ms));
            let ttl = (deadline_ms != NEVER).then(|| deadline_ms.saturating_sub(now).max(1));
            let idle = (max_idle_ms != 0).then_some(max_idle_ms);
            visit(s.key, s.value, ttl, idle)
        });
    }
}

/// A typed handle to a named map of the grid.
///
/// Obtain one with [`Grid::map`](crate::Grid::map). See the module docs for
/// thread safety and expiry.
pub struct Map<K, V> {
    pub(crate) inner: Arc<MapInner<K, V>>,
}

impl<K, V> Clone for Map<K, V> {
    fn clone(&self) -> Self {
        Map {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: GridKey, V: GridValue> Map<K, V> {
    /// The map's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The map's configuration.
    pub fn config(&self) -> &MapConfig {
        &self.inner.config
    }

    /// The value of `key`, if present and not expired.
    pub fn get(&self, key: &K) -> Option<V> {
        self.inner.get(key)
    }

    /// Reads the value of `key` in place, without cloning it: `read` runs
    /// under the read lock of the key's partition (writers of that partition
    /// wait for it), so keep it short. `None` if absent or expired.
    pub fn get_with<R>(&self, key: &K, read: impl FnOnce(&V) -> R) -> Option<R> {
        self.inner.get_with(key, read)
    }

    /// Whether `key` is present and not expired (counts as a read).
    pub fn contains_key(&self, key: &K) -> bool {
        self.inner.get(key).is_some()
    }

    /// Sets `key` to `value` with the map's default expiry; returns the old value.
    pub fn put(&self, key: K, value: V) -> Option<V> {
        self.inner.upsert(key, value, Expiry::default())
    }

    /// Sets `key` to `value`, expiring `ttl` after this write.
    pub fn put_ttl(&self, key: K, value: V, ttl: Duration) -> Option<V> {
        self.inner.upsert(key, value, Expiry::ttl(ttl))
    }

    /// Sets `key` to `value` with the given expiry.
    pub fn put_with_expiry(&self, key: K, value: V, expiry: Expiry) -> Option<V> {
        self.inner.upsert(key, value, expiry)
    }

    /// Sets `key` to `value` without returning the old value.
    pub fn set(&self, key: K, value: V) {
        self.inner.upsert(key, value, Expiry::default());
    }

    /// Sets `key` to `value` only if absent; returns the present value otherwise.
    pub fn put_if_absent(&self, key: K, value: V) -> Option<V> {
        self.inner.put_if_absent(key, value, Expiry::default())
    }

    /// Sets `key` to `value` only if present; returns the old value.
    pub fn replace(&self, key: &K, value: V) -> Option<V> {
        self.inner.replace_if(key, value, |_| true)
    }

    /// Sets `key` to `new` only if its value equals `expected`.
    pub fn replace_if_equal(&self, key: &K, expected: &V, new: V) -> bool
    where
        V: PartialEq,
    {
        self.inner.replace_if(key, new, |v| v == expected).is_some()
    }

    /// Removes `key`; returns its value.
    pub fn remove(&self, key: &K) -> Option<V> {
        self.inner.remove(key)
    }

    /// Removes `key`; returns whether it was present.
    pub fn delete(&self, key: &K) -> bool {
        self.inner.remove(key).is_some()
    }

    /// Entries in the map (see the module docs on expiry).
    pub fn size(&self) -> usize {
        self.inner.parts.iter().map(|p| p.data.read().len()).sum()
    }

    /// Whether [`size`](Self::size) is 0.
    pub fn is_empty(&self) -> bool {
        self.size() == 0
    }

    /// Removes every entry atomically; returns how many there were.
    /// Listeners get one `Cleared` event, the journal one per partition.
    pub fn clear(&self) -> usize {
        self.inner.clear()
    }

    /// The present values of `keys`, in the order of `keys`.
    pub fn get_all<'k>(&self, keys: impl IntoIterator<Item = &'k K>) -> Vec<(K, V)> {
        keys.into_iter()
            .filter_map(|k| self.inner.get(k).map(|v| (k.clone(), v)))
            .collect()
    }

    /// Puts every entry (each one atomically; the batch is not).
    pub fn put_all(&self, entries: impl IntoIterator<Item = (K, V)>) {
        for (k, v) in entries {
            self.set(k, v);
        }
    }

    /// All keys, partition by partition (each partition consistent).
    pub fn keys(&self) -> Vec<K> {
        let mut out = Vec::new();
        self.inner.for_each_live(|s| out.push(s.key.clone()));
        out
    }

    /// All values.
    pub fn values(&self) -> Vec<V> {
        let mut out = Vec::new();
        self.inner.for_each_live(|s| out.push(s.value.clone()));
        out
    }

    /// All entries.
    pub fn entries(&self) -> Vec<(K, V)> {
        let mut out = Vec::new();
        self.inner
            .for_each_live(|s| out.push((s.key.clone(), s.value.clone())));
        out
    }

    /// Runs `f` on the entry of `key` atomically (read-modify-write under
    /// the partition lock); returns what `f` returns. `f` must not use this
    /// map (it would deadlock on the partition lock).
    pub fn execute_on_key<R>(&self, key: &K, f: impl FnOnce(&mut EntryMut<'_, K, V>) -> R) -> R {
        self.inner.process(key, f)
    }

    /// Runs `f` on each key's entry, each atomically.
    pub fn execute_on_keys<'k, R>(
        &self,
        keys: impl IntoIterator<Item = &'k K>,
        f: impl Fn(&mut EntryMut<'_, K, V>) -> R,
    ) -> Vec<(K, R)> {
        keys.into_iter()
            .map(|k| (k.clone(), self.inner.process(k, &f)))
            .collect()
    }

    /// Runs `f` on every entry matching `pred`, each atomically with the
    /// check (a partition is locked while its entries are processed).
    pub fn execute_on_entries<R>(
        &self,
        pred: &Predicate,
        f: impl Fn(&mut EntryMut<'_, K, V>) -> R,
    ) -> Vec<(K, R)> {
        self.inner.process_matching(pred, f)
    }

    /// Registers a listener; see [`crate::events`] for delivery guarantees.
    /// With `include_values` false, events carry keys only.
    pub fn add_listener(
        &self,
        filter: EventFilter<K>,
        include_values: bool,
        listener: impl Fn(&MapEvent<K, V>) + Send + Sync + 'static,
    ) -> ListenerId {
        self.inner.listeners.add(
            filter,
            include_values,
            Box::new(listener),
            self.inner.matcher(),
        )
    }

    /// Unregisters a listener; returns whether it was registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.inner.listeners.remove(id)
    }

    /// Waits until listeners have been handed every event queued before
    /// this call, or `timeout` passed; returns whether they were.
    pub fn flush_listeners(&self, timeout: Duration) -> bool {
        self.inner.listeners.flush(timeout)
    }

    /// A reader of the event journal. Fails if the map keeps no journal
    /// ([`MapConfig::journal_capacity`] is 0).
    pub fn journal_reader(&self, start: JournalStart) -> Result<JournalReader<K, V>, GridError> {
        if self.inner.config.journal_capacity == 0 {
            return Err(GridError::InvalidConfig {
                field: "MapConfig::journal_capacity",
                reason: format!(
                    "map '{}' keeps no event journal; create it with a journal capacity above 0",
                    self.name()
                ),
            });
        }
        let cursors = self
            .inner
            .parts
            .iter()
            .map(|p| {
                let data = p.data.read();
                let j = data
                    .journal
                    .as_ref()
                    .expect("journal exists when capacity > 0");
                match start {
                    JournalStart::Oldest => j.oldest(),
                    JournalStart::Newest => j.next_sequence(),
                }
            })
            .collect();
        Ok(JournalReader {
            map: Arc::clone(&self.inner),
            cursors,
            next_partition: 0,
        })
    }

    /// Adds a hash or sorted index on an attribute path; existing entries
    /// are indexed now, later ones as they change. Adding an index twice
    /// keeps the first.
    pub fn add_index(&self, path: &str, kind: IndexType) -> Result<(), GridError> {
        self.inner.add_index(AttrPath::parse(path)?, kind);
        Ok(())
    }

    /// Registers an attribute extractor: paths starting with `name` read
    /// `extract(value)` instead of the value's field. Register extractors
    /// before indexes that use them.
    pub fn add_extractor(&self, name: &str, extract: impl Fn(&V) -> Value + Send + Sync + 'static) {
        let mut ex = self.inner.extractors.write();
        let mut next = (**ex).clone();
        next.insert(name.to_owned(), Arc::new(extract));
        *ex = Arc::new(next);
    }

    /// Entries matching `pred`.
    pub fn entries_where(&self, pred: &Predicate) -> Vec<(K, V)> {
        self.inner.entries_where(pred)
    }

    /// Keys of entries matching `pred`.
    pub fn keys_where(&self, pred: &Predicate) -> Vec<K> {
        let mut out = Vec::new();
        self.inner
            .for_each_match(pred, |s, _| out.push(s.key.clone()));
        out
    }

    /// Values of entries matching `pred`.
    pub fn values_where(&self, pred: &Predicate) -> Vec<V> {
        let mut out = Vec::new();
        self.inner
            .for_each_match(pred, |s, _| out.push(s.value.clone()));
        out
    }

    /// Entries matching the predicate text, e.g. `amount > 100 and country = 'DE'`.
    pub fn query(&self, predicate: &str) -> Result<Vec<(K, V)>, GridError> {
        Ok(self.inner.entries_where(&Predicate::parse(predicate)?))
    }

    /// Page `page` (from 0) of `page_size` entries matching `pred`, ordered
    /// by key so that pages are stable while the map does not change.
    pub fn page(&self, pred: &Predicate, page_size: usize, page: usize) -> Page<K, V> {
        self.inner.page(pred, page_size, page)
    }

    /// Aggregates the entries matching `pred` (all entries if `None`).
    pub fn aggregate(&self, agg: &Aggregation, pred: Option<&Predicate>) -> Value {
        self.inner.aggregate(agg, pred)
    }

    /// How `pred` would run: which indexes it would use.
    pub fn explain(&self, pred: &Predicate) -> QueryPlan {
        self.inner.explain(pred)
    }

    /// Statistics of the map.
    pub fn stats(&self) -> MapStats {
        self.inner.stats()
    }

    /// Removes expired entries now and refreshes activity statistics (the
    /// background sweeper does this periodically).
    pub fn evict_expired(&self) {
        self.inner.maintain()
    }

    /// Writes the map to `path` atomically (see [`crate::snapshot`]);
    /// returns the number of entries written.
    pub fn save_snapshot(&self, path: impl AsRef<Path>) -> Result<usize, GridError> {
        snapshot::save(&self.inner, path.as_ref())
    }

    /// Puts every entry of the snapshot at `path` into the map, with the
    /// TTL each had left when it was saved; returns how many. A corrupt or
    /// truncated file loads nothing.
    pub fn load_snapshot(&self, path: impl AsRef<Path>) -> Result<usize, GridError> {
        let entries: Vec<(K, V, Expiry)> = snapshot::load(path.as_ref())?;
        let n = entries.len();
        for (k, v, e) in entries {
            self.inner.upsert(k, v, e);
        }
        Ok(n)
    }
}

/// Reads a map's event journal, partition by partition.
///
/// A reader keeps one cursor per partition; it is not shared between
/// threads (`&mut self`), but any number of readers may read one map.
pub struct JournalReader<K, V> {
    map: Arc<MapInner<K, V>>,
    cursors: Vec<u64>,
    next_partition: usize,
}

impl<K, V> JournalReader<K, V> {
    /// Where the reader is: per partition, the sequence number of the next
    /// event it reads.
    pub fn positions(&self) -> &[u64] {
        &self.cursors
    }

    /// Moves the reader to `positions`, as [`positions`](Self::positions)
    /// returned them (a restored journal source resumes there). Events
    /// already overwritten there are reported as lost by the next poll.
    ///
    /// # Panics
    /// When `positions` does not hold one position per partition: that is
    /// a bug in the caller, which can compare with `positions().len()`.
    pub fn seek(&mut self, positions: &[u64]) {
        assert_eq!(
            positions.len(),
            self.cursors.len(),
            "one journal position per partition"
        );
        self.cursors.copy_from_slice(positions);
    }
}

impl<K: GridKey, V: GridValue> JournalReader<K, V> {
    /// Up to `max` events not read yet, and how many were lost to overflow.
    /// Partitions take turns being read first, so none is starved.
    pub fn poll(&mut self, max: usize) -> JournalBatch<K, V> {
        let n = self.cursors.len();
        let mut events = Vec::new();
        let mut lost = 0;
        for step in 0..n {
            if events.len() >= max {
                break;
            }
            let p = (self.next_partition + step) % n;
            let data = self.map.parts[p].data.read();
            if let Some(j) = &data.journal {
                lost += j.read(&mut self.cursors[p], max - events.len(), &mut events);
            }
        }
        self.next_partition = (self.next_partition + 1) % n;
        JournalBatch { events, lost }
    }
}
