//! Map stores: a map backed by an external system (a database table) with
//! read-through on a miss, write-through or write-behind, and an initial
//! load.
//!
//! A [`StoredMap`] wraps a [`Map`] and a [`MapStore`]. Reads go to the map
//! first and to the store on a miss; writes go to both, either at once
//! ([`WriteMode::Through`]) or batched and coalesced per key by a helper
//! thread ([`WriteMode::Behind`]). Writes made directly on the wrapped
//! [`Map`] handle bypass the store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::map::{GridKey, GridValue, Map};

/// An external system a map persists to.
///
/// Calls block (they do I/O) and come from the caller's thread (loads,
/// write-through) or from the write-behind thread; an implementation must
/// be safe to call from several threads at once. An `Err` means nothing
/// of that call may be assumed done: a write-behind store retries the whole
/// batch, so `store_all` and `delete_all` must be idempotent (upserts).
pub trait MapStore<K, V>: Send + Sync + 'static {
    /// The stored value of `key`, if any.
    fn load(&self, key: &K) -> Result<Option<V>, StoreError>;
    /// The stored entries of those of `keys` that exist, in any order.
    fn load_all(&self, keys: &[K]) -> Result<Vec<(K, V)>, StoreError>;
    /// Every stored key (for the eager initial load).
    fn load_all_keys(&self) -> Result<Vec<K>, StoreError>;
    /// Inserts or replaces `entries`.
    fn store_all(&self, entries: &[(K, V)]) -> Result<(), StoreError>;
    /// Deletes `keys`; absent keys are not an error.
    fn delete_all(&self, keys: &[K]) -> Result<(), StoreError>;
}

/// A failed store call, with the store's own explanation.
#[derive(Debug, thiserror::Error)]
#[error("map store failed: {0}")]
pub struct StoreError(pub String);

/// When writes reach the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Each write goes to the store before the map; a failed store call
    /// leaves the map unchanged and returns the error.
    Through,
    /// Writes are queued, coalesced per key (only the last value of a key
    /// is written) and written every `delay` in batches of at most
    /// `batch_size`, or sooner once `batch_size` keys are pending. Failed
    /// batches stay queued and are retried on the next round.
    Behind {
        /// Longest time a write waits before it is attempted.
        delay: Duration,
        /// Most entries per store call (at least 1).
        batch_size: usize,
    },
}

/// When the map is filled from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialLoad {
    /// Load the whole store when the [`StoredMap`] is created.
    Eager,
    /// Load nothing up front; read-through fills the map on misses.
    #[default]
    Lazy,
}

/// How a [`StoredMap`] uses its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreConfig {
    /// Write-through or write-behind.
    pub write: WriteMode,
    /// Eager or lazy initial load.
    pub initial_load: InitialLoad,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            write: WriteMode::Through,
            initial_load: InitialLoad::Lazy,
        }
    }
}

impl StoreConfig {
    /// Writes with `write`.
    pub fn write(mut self, write: WriteMode) -> Self {
        self.write = write;
        self
    }

    /// Loads the store's entries with `initial_load`.
    pub fn initial_load(mut self, initial_load: InitialLoad) -> Self {
        self.initial_load = initial_load;
        self
    }
}

/// Keys per `load_all` call of the eager initial load: large enough that
/// round trips do not dominate, small enough that one call's result stays
/// a few MiB for typical values.
const LOAD_BATCH: usize = 1_000;

/// Counters of a store's writes, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Keys whose write or delete is queued and not yet stored.
    pub pending: usize,
    /// Entries written or deleted successfully.
    pub stored: u64,
    /// Entries whose store call failed (each retry counts again).
    pub failed: u64,
    /// Store calls made for writes and deletes.
    pub calls: u64,
}

/// A map that reads through to and writes to a [`MapStore`].
///
/// Thread safety: clones share the map, the store and the write-behind
/// queue; every method may be called from any thread. The last clone to be
/// dropped stops the write-behind thread and flushes what is queued (call
/// [`flush_store`](StoredMap::flush_store) first to see errors).
pub struct StoredMap<K: GridKey, V: GridValue> {
    inner: Arc<Inner<K, V>>,
}

impl<K: GridKey, V: GridValue> Clone for StoredMap<K, V> {
    fn clone(&self) -> Self {
        StoredMap {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<K: GridKey, V: GridValue> {
    map: Map<K, V>,
    shared: Arc<Shared<K, V>>,
    mode: WriteMode,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

/// The state the write-behind thread shares with the handles.
struct Shared<K, V> {
    store: Arc<dyn MapStore<K, V>>,
    /// Queued writes per key: `Some` stores, `None` deletes.
    pending: Mutex<HashMap<K, Option<V>>>,
    wake: Condvar,
    stop: AtomicBool,
    /// Held across a drain and its store calls, so that two rounds never
    /// write the same key out of order.
    write_round: Mutex<()>,
    stored: AtomicU64,
    failed: AtomicU64,
    calls: AtomicU64,
}

impl<K: GridKey, V: GridValue> Shared<K, V> {
    /// Writes up to `max` queued keys; failed ones go back to the queue
    /// unless a newer write of the same key arrived meanwhile.
    fn write_some(&self, max: usize) -> Result<usize, StoreError> {
        let _round = self.write_round.lock();
        let batch: Vec<(K, Option<V>)> = {
            let mut pending = self.pending.lock();
            let keys: Vec<K> = pending.keys().take(max).cloned().collect();
            keys.into_iter()
                .filter_map(|k| pending.remove_entry(&k))
                .collect()
        };
        let n = batch.len();
        let (puts, deletes): (Vec<_>, Vec<_>) = batch.into_iter().partition(|(_, v)| v.is_some());
        let puts: Vec<(K, V)> = puts
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        let deletes: Vec<K> = deletes.into_iter().map(|(k, _)| k).collect();
        let mut result = Ok(n);
        if !puts.is_empty() {
            if let Err(e) = self.call(puts.len(), || self.store.store_all(&puts)) {
                self.requeue(puts.into_iter().map(|(k, v)| (k, Some(v))));
                result = Err(e);
            }
        }
        if !deletes.is_empty() {
            if let Err(e) = self.call(deletes.len(), || self.store.delete_all(&deletes)) {
                self.requeue(deletes.into_iter().map(|k| (k, None)));
                result = Err(e);
            }
        }
        result
    }

    fn call(&self, n: usize, f: impl FnOnce() -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let r = f();
        let counter = if r.is_ok() {
            &self.stored
        } else {
            &self.failed
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        r
    }

    fn requeue(&self, entries: impl Iterator<Item = (K, Option<V>)>) {
        let mut pending = self.pending.lock();
        for (k, v) in entries {
            pending.entry(k).or_insert(v);
        }
    }

    /// Writes everything queued, stopping at the first failure.
    fn flush(&self) -> Result<(), StoreError> {
        while !self.pending.lock().is_empty() {
            self.write_some(usize::MAX)?;
        }
        Ok(())
    }
}

impl<K: GridKey, V: GridValue> StoredMap<K, V> {
    /// Backs `map` with `store`, loading the whole store into it first when
    /// the initial load is eager.
    pub fn new(
        map: Map<K, V>,
        store: impl MapStore<K, V>,
        config: StoreConfig,
    ) -> Result<StoredMap<K, V>, StoreError> {
        if let WriteMode::Behind { batch_size: 0, .. } = config.write {
            return Err(StoreError(
                "WriteMode::Behind::batch_size is 0, which would never write; use at least 1"
                    .into(),
            ));
        }
        let store: Arc<dyn MapStore<K, V>> = Arc::new(store);
        if config.initial_load == InitialLoad::Eager {
            let keys = store.load_all_keys()?;
            for chunk in keys.chunks(LOAD_BATCH) {
                map.put_all(store.load_all(chunk)?);
            }
        }
        let shared = Arc::new(Shared {
            store,
            pending: Mutex::new(HashMap::new()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            write_round: Mutex::new(()),
            stored: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        });
        let flusher = match config.write {
            WriteMode::Through => None,
            WriteMode::Behind { delay, batch_size } => {
                let shared = shared.clone();
                let name = format!("eddy-store-{}", map.name());
                let spawned = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || write_behind_loop(&shared, delay, batch_size))
                    .map_err(|e| {
                        StoreError(format!("cannot start the write-behind thread: {e}"))
                    })?;
                Some(spawned)
            }
        };
        Ok(StoredMap {
            inner: Arc::new(Inner {
                map,
                shared,
                mode: config.write,
                flusher: Mutex::new(flusher),
            }),
        })
    }

    /// The wrapped map (writes made through it bypass the store).
    pub fn map(&self) -> &Map<K, V> {
        &self.inner.map
    }

    /// The value of `key`, loaded from the store (and cached in the map) on
    /// a miss.
    pub fn get(&self, key: &K) -> Result<Option<V>, StoreError> {
        if let Some(v) = self.inner.map.get(key) {
            return Ok(Some(v));
        }
        // A queued delete is newer than what the store holds.
        if let Some(queued) = self.inner.shared.pending.lock().get(key) {
            return Ok(queued.clone());
        }
        let loaded = self.inner.shared.store.load(key)?;
        if let Some(v) = &loaded {
            self.inner.map.put_if_absent(key.clone(), v.clone());
        }
        Ok(loaded)
    }

    /// The entries of `keys`, loading the misses from the store in one call.
    pub fn get_all(&self, keys: &[K]) -> Result<Vec<(K, V)>, StoreError> {
        let mut found = self.inner.map.get_all(keys.iter());
        let mut misses = Vec::new();
        {
            let pending = self.inner.shared.pending.lock();
            for k in keys {
                if found.iter().any(|(f, _)| f == k) {
                    continue;
                }
                match pending.get(k) {
                    Some(Some(v)) => found.push((k.clone(), v.clone())),
                    Some(None) => {}
                    None => misses.push(k.clone()),
                }
            }
        }
        if !misses.is_empty() {
            let loaded = self.inner.shared.store.load_all(&misses)?;
            for (k, v) in loaded {
                self.inner.map.put_if_absent(k.clone(), v.clone());
                found.push((k, v));
            }
        }
        Ok(found)
    }

    /// Writes `key`, returning the previous value in the map.
    pub fn put(&self, key: K, value: V) -> Result<Option<V>, StoreError> {
        match self.inner.mode {
            WriteMode::Through => {
                let entry = [(key, value)];
                self.inner
                    .shared
                    .call(1, || self.inner.shared.store.store_all(&entry))?;
                let [(key, value)] = entry;
                Ok(self.inner.map.put(key, value))
            }
            WriteMode::Behind { .. } => {
                let old = self.inner.map.put(key.clone(), value.clone());
                self.enqueue(key, Some(value));
                Ok(old)
            }
        }
    }

    /// Removes `key` from the map and the store, returning the map's value.
    pub fn remove(&self, key: &K) -> Result<Option<V>, StoreError> {
        match self.inner.mode {
            WriteMode::Through => {
                let keys = [key.clone()];
                self.inner
                    .shared
                    .call(1, || self.inner.shared.store.delete_all(&keys))?;
                Ok(self.inner.map.remove(key))
            }
            WriteMode::Behind { .. } => {
                let old = self.inner.map.remove(key);
                self.enqueue(key.clone(), None);
                Ok(old)
            }
        }
    }

    fn enqueue(&self, key: K, value: Option<V>) {
        let mut pending = self.inner.shared.pending.lock();
        pending.insert(key, value);
        if let WriteMode::Behind { batch_size, .. } = self.inner.mode {
            if pending.len() >= batch_size {
                self.inner.shared.wake.notify_one();
            }
        }
    }

    /// Writes every queued write-behind entry now; on failure the unwritten
    /// ones stay queued and the error is returned.
    pub fn flush_store(&self) -> Result<(), StoreError> {
        self.inner.shared.flush()
    }

    /// Counters of the store's writes.
    pub fn store_stats(&self) -> StoreStats {
        let s = &self.inner.shared;
        StoreStats {
            pending: s.pending.lock().len(),
            stored: s.stored.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            calls: s.calls.load(Ordering::Relaxed),
        }
    }
}

fn write_behind_loop<K: GridKey, V: GridValue>(
    shared: &Shared<K, V>,
    delay: Duration,
    batch_size: usize,
) {
    while !shared.stop.load(Ordering::Acquire) {
        {
            let mut pending = shared.pending.lock();
            if pending.len() < batch_size && !shared.stop.load(Ordering::Acquire) {
                shared.wake.wait_for(&mut pending, delay);
            }
        }
        // Write the whole queue in batches; a failure leaves the rest for
        // the next round, one `delay` later, which is the retry backoff.
        while !shared.pending.lock().is_empty() {
            if shared.write_some(batch_size).is_err() {
                break;
            }
        }
    }
}

impl<K: GridKey, V: GridValue> Drop for Inner<K, V> {
    fn drop(&mut self) {
        if let Some(handle) = self.flusher.lock().take() {
            self.shared.stop.store(true, Ordering::Release);
            {
                let _pending = self.shared.pending.lock();
                self.shared.wake.notify_one();
            }
            // A panicking store already lost its thread; the flush below
            // still runs.
            let _ = handle.join();
        }
        // Errors are counted in `failed`; callers who need them flush first.
        let _ = self.shared.flush();
    }
}
