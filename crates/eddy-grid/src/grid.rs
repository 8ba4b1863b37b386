//! The grid: a registry of named maps and the background sweeper that expires their entries.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex as StdMutex, Weak};
use std::time::Duration;

use parking_lot::RwLock;

use crate::config::{GridConfig, MapConfig};
use crate::json::{type_names, ErasedMap, JsonMap};
use crate::map::{GridKey, GridValue, Map, MapInner};
use crate::stats::MapStats;
use crate::GridError;

struct GridInner {
    config: GridConfig,
    maps: RwLock<HashMap<String, Arc<dyn ErasedMap>>>,
    stop: Arc<(StdMutex<bool>, Condvar)>,
}

impl Drop for GridInner {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
    }
}

impl GridInner {
    fn maintain(&self) {
        let maps: Vec<_> = self.maps.read().values().cloned().collect();
        for m in maps {
            m.maintain();
        }
    }
}

/// The in-memory data grid of one process: named, partitioned maps.
///
/// Cheap to clone (clones share the maps); `Send + Sync`. Dropping the last
/// clone stops the sweeper thread; map handles stay usable on their own.
#[derive(Clone)]
pub struct Grid {
    inner: Arc<GridInner>,
}

impl Default for Grid {
    fn default() -> Self {
        Self::new()
    }
}

impl Grid {
    /// A grid with the default configuration: 271 partitions, the system
    /// clock, a sweep every 100 ms.
    pub fn new() -> Grid {
        Self::with_config(GridConfig::default()).expect("the default configuration is valid")
    }

    /// A grid with `config`; fails if the configuration is out of range.
    pub fn with_config(config: GridConfig) -> Result<Grid, GridError> {
        config.validate()?;
        let interval = config.sweep_interval;
        let inner = Arc::new(GridInner {
            config,
            maps: RwLock::new(HashMap::new()),
            stop: Arc::new((StdMutex::new(false), Condvar::new())),
        });
        if let Some(interval) = interval {
            let weak = Arc::downgrade(&inner);
            let stop = Arc::clone(&inner.stop);
            std::thread::Builder::new()
                .name("eddy-grid-sweeper".into())
                .spawn(move || sweep_loop(weak, stop, interval))
                .map_err(|source| GridError::Io {
                    path: "<sweeper thread>".into(),
                    source,
                })?;
        }
        Ok(Grid { inner })
    }

    /// The grid's configuration.
    pub fn config(&self) -> &GridConfig {
        &self.inner.config
    }

    /// The map `name`, created with the default configuration if absent.
    /// Fails if it exists with other key or value types.
    pub fn map<K: GridKey, V: GridValue>(&self, name: &str) -> Result<Map<K, V>, GridError> {
        self.get_or_create(name, None)
    }

    /// The map `name`, created with `config` if absent. Fails if it exists
    /// with other types or another configuration.
    pub fn map_with_config<K: GridKey, V: GridValue>(
        &self,
        name: &str,
        config: MapConfig,
    ) -> Result<Map<K, V>, GridError> {
        config.validate()?;
        self.get_or_create(name, Some(config))
    }

    fn get_or_create<K: GridKey, V: GridValue>(
        &self,
        name: &str,
        config: Option<MapConfig>,
    ) -> Result<Map<K, V>, GridError> {
        let existing = self.inner.maps.read().get(name).cloned();
        let erased = match existing {
            Some(m) => m,
            None => {
                let mut maps = self.inner.maps.write();
                maps.entry(name.to_owned())
                    .or_insert_with(|| {
                        let cfg = config.clone().unwrap_or_default();
                        let inner = MapInner::<K, V>::new(
                            name,
                            cfg,
                            self.inner.config.partitions,
                            Arc::clone(&self.inner.config.clock),
                        );
                        Arc::new(Arc::new(inner))
                    })
                    .clone()
            }
        };
        if config.is_some_and(|c| c != *erased.config()) {
            return Err(GridError::ConfigConflict {
                map: name.to_owned(),
            });
        }
        let types = erased.types();
        match erased.as_any().downcast::<Arc<MapInner<K, V>>>() {
            Ok(inner) => Ok(Map {
                inner: Arc::clone(inner.as_ref()),
            }),
            Err(_) => Err(GridError::TypeMismatch {
                map: name.to_owned(),
                existing: types,
                requested: type_names::<K, V>(),
            }),
        }
    }

    /// The JSON view of map `name`.
    pub fn json_map(&self, name: &str) -> Result<JsonMap, GridError> {
        self.inner
            .maps
            .read()
            .get(name)
            .map(|m| JsonMap {
                inner: Arc::clone(m),
            })
            .ok_or_else(|| GridError::NoSuchMap {
                map: name.to_owned(),
            })
    }

    /// Names of all maps, sorted.
    pub fn map_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.maps.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// Removes map `name` from the grid; handles already obtained keep
    /// working on the detached map. Returns whether it existed.
    pub fn destroy_map(&self, name: &str) -> bool {
        self.inner.maps.write().remove(name).is_some()
    }

    /// Statistics of every map, by name.
    pub fn stats(&self) -> Vec<MapStats> {
        let maps: Vec<_> = self.inner.maps.read().values().cloned().collect();
        let mut stats: Vec<MapStats> = maps.iter().map(|m| m.stats()).collect();
        stats.sort_by(|a, b| a.name.cmp(&b.name));
        stats
    }

    /// Runs one sweep of every map now, on this thread: what the sweeper
    /// thread does every interval. Tests with a manual clock call this.
    pub fn run_maintenance(&self) {
        self.inner.maintain()
    }
}

fn sweep_loop(grid: Weak<GridInner>, stop: Arc<(StdMutex<bool>, Condvar)>, interval: Duration) {
    let (flag, wake) = &*stop;
    loop {
        {
            let stopped = flag.lock().unwrap_or_else(|e| e.into_inner());
            let (stopped, _) = wake
                .wait_timeout_while(stopped, interval, |s| !*s)
                .unwrap_or_else(|e| e.into_inner());
            if *stopped {
                return;
            }
        }
        match grid.upgrade() {
            Some(g) => g.maintain(),
            None => return,
        }
    }
}
