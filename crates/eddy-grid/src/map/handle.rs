//! The handle users hold: the typed public API of one map, each operation
//! handed to the shared state.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::config::{Expiry, MapConfig};
use crate::events::{EventFilter, ListenerId, MapEvent};
use crate::journal::{JournalReader, JournalStart};
use crate::query::{Aggregation, AttrPath, IndexType, Predicate};
use crate::stats::MapStats;
use crate::{snapshot, GridError};

use super::{EntryMut, GridKey, GridValue, MapInner, Page, QueryPlan};

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
        Ok(JournalReader::new(Arc::clone(&self.inner), start))
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
