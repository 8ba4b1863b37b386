//! The write path: each change to an entry under its partition's write
//! lock, with the index, journal and listener bookkeeping it needs.

use crate::config::Expiry;
use crate::events::{EntryEvent, EntryEventKind, MapEvent};
use crate::keyhash::{heap_bytes, key_hash};
use crate::partition::{Meta, PartData, NEVER};
use crate::query::Predicate;

use super::{EntryAttrs, GridKey, GridValue, MapInner, Now};

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

impl<K: GridKey, V: GridValue> MapInner<K, V> {
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
    pub(super) fn remove_slot(
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

    // ----- writes -------------------------------------------------------

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

    pub(super) fn upsert(&self, key: K, value: V, expiry: Expiry) -> Option<V> {
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
}
