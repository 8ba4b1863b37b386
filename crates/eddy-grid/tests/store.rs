//! `StoredMap` over an in-memory store with injected failures:
//! read-through, write-through, write-behind coalescing and retry.

use eddy_grid::{Grid, InitialLoad, MapStore, StoreConfig, StoreError, StoredMap, WriteMode};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A store in a shared hash map that fails every call while `down` is set.
#[derive(Clone, Default)]
struct MemStore {
    data: Arc<Mutex<HashMap<u32, String>>>,
    down: Arc<AtomicBool>,
}

impl MemStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError("store is down".into()));
        }
        Ok(())
    }
}

impl MapStore<u32, String> for MemStore {
    fn load(&self, key: &u32) -> Result<Option<String>, StoreError> {
        self.check()?;
        Ok(self.data.lock().get(key).cloned())
    }
    fn load_all(&self, keys: &[u32]) -> Result<Vec<(u32, String)>, StoreError> {
        self.check()?;
        let data = self.data.lock();
        Ok(keys
            .iter()
            .filter_map(|k| data.get(k).map(|v| (*k, v.clone())))
            .collect())
    }
    fn load_all_keys(&self) -> Result<Vec<u32>, StoreError> {
        self.check()?;
        Ok(self.data.lock().keys().copied().collect())
    }
    fn store_all(&self, entries: &[(u32, String)]) -> Result<(), StoreError> {
        self.check()?;
        self.data.lock().extend(entries.iter().cloned());
        Ok(())
    }
    fn delete_all(&self, keys: &[u32]) -> Result<(), StoreError> {
        self.check()?;
        let mut data = self.data.lock();
        keys.iter().for_each(|k| {
            data.remove(k);
        });
        Ok(())
    }
}

fn behind(delay_ms: u64, batch_size: usize) -> StoreConfig {
    StoreConfig::default()
        .write(WriteMode::Behind {
            delay: Duration::from_millis(delay_ms),
            batch_size,
        })
        .initial_load(InitialLoad::Lazy)
}

#[test]
fn when_eager_then_the_whole_store_is_loaded_and_misses_read_through_when_lazy() {
    let store = MemStore::default();
    store
        .data
        .lock()
        .extend((0..2500).map(|i| (i, format!("v{i}"))));
    let grid = Grid::new();
    let eager = StoreConfig::default().initial_load(InitialLoad::Eager);
    let map = StoredMap::new(grid.map("eager").unwrap(), store.clone(), eager).unwrap();
    assert_eq!(map.map().size(), 2500);

    let map = StoredMap::new(
        grid.map("lazy").unwrap(),
        store.clone(),
        StoreConfig::default(),
    )
    .unwrap();
    assert_eq!(map.map().size(), 0);
    assert_eq!(map.get(&7).unwrap().as_deref(), Some("v7"));
    assert_eq!(map.map().size(), 1);
}

#[test]
fn when_write_through_fails_then_the_map_is_unchanged() {
    let store = MemStore::default();
    let grid = Grid::new();
    let map = StoredMap::new(
        grid.map("m").unwrap(),
        store.clone(),
        StoreConfig::default(),
    )
    .unwrap();
    map.put(1, "a".into()).unwrap();
    assert_eq!(store.data.lock().get(&1).map(String::as_str), Some("a"));
    store.down.store(true, Ordering::Relaxed);
    assert!(map.put(1, "b".into()).is_err());
    assert_eq!(map.map().get(&1).as_deref(), Some("a"));
    assert_eq!(map.store_stats().failed, 1);
}

#[test]
fn when_the_store_fails_then_write_behind_keeps_the_newest_value_and_retries() {
    let store = MemStore::default();
    let grid = Grid::new();
    let map = StoredMap::new(grid.map("m").unwrap(), store.clone(), behind(5, 10)).unwrap();
    store.down.store(true, Ordering::Relaxed);
    for i in 0..100u32 {
        map.put(i % 20, format!("v{i}")).unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    assert!(map.flush_store().is_err());
    let stats = map.store_stats();
    assert!(stats.failed > 0 && stats.pending == 20, "{stats:?}");
    store.down.store(false, Ordering::Relaxed);
    map.flush_store().unwrap();
    let data = store.data.lock().clone();
    assert_eq!(data.len(), 20);
    for k in 0..20u32 {
        assert_eq!(
            data[&k],
            format!("v{}", 80 + k),
            "key {k} holds its last write"
        );
    }
}

#[test]
fn when_the_last_handle_drops_then_queued_writes_are_flushed() {
    let store = MemStore::default();
    let grid = Grid::new();
    let map = StoredMap::new(
        grid.map("m").unwrap(),
        store.clone(),
        behind(3_600_000, 1_000),
    )
    .unwrap();
    map.put(1, "a".into()).unwrap();
    map.put(2, "b".into()).unwrap();
    map.remove(&2).unwrap();
    let clone = map.clone();
    drop(map);
    assert!(
        store.data.lock().is_empty(),
        "a clone still holds the queue"
    );
    drop(clone);
    assert_eq!(store.data.lock().len(), 1);
}

#[test]
fn when_batch_size_is_zero_then_creation_explains_it() {
    let grid = Grid::new();
    let err = StoredMap::new(
        grid.map::<u32, String>("m").unwrap(),
        MemStore::default(),
        behind(1, 0),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("batch_size is 0"), "{err}");
}
