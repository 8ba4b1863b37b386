//! The type-erased JSON view of any map, for the server, the CLI and the dashboard.
//!
//! Keys and values cross this view as `serde_json::Value` and are converted
//! to and from the map's own types through serde, so a map created with
//! typed handles can be read and written by name without knowing its types.
//! Input that does not fit the map's types is an error, never a panic.

use std::any::Any;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::config::{Expiry, MapConfig};
use crate::events::{EntryEvent, EventFilter, ListenerId, MapEvent};
use crate::map::{GridKey, GridValue, Map, MapInner};
use crate::query::{Aggregation, Predicate};
use crate::stats::MapStats;
use crate::GridError;

/// What the grid needs from a map without knowing its types.
pub(crate) trait ErasedMap: Send + Sync {
    fn name(&self) -> &str;
    fn types(&self) -> String;
    fn config(&self) -> &MapConfig;
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn maintain(&self);
    fn stats(&self) -> MapStats;
    fn get(&self, key: Value) -> Result<Option<Value>, GridError>;
    fn put(&self, key: Value, value: Value, expiry: Expiry) -> Result<Option<Value>, GridError>;
    fn remove(&self, key: Value) -> Result<Option<Value>, GridError>;
    fn page(
        &self,
        pred: &Predicate,
        page_size: usize,
        page: usize,
    ) -> Result<(Vec<(Value, Value)>, usize), GridError>;
    fn aggregate(&self, agg: &Aggregation, pred: Option<&Predicate>) -> Value;
    fn size(&self) -> usize;
    fn clear(&self) -> usize;
    fn add_json_listener(&self, include_values: bool, listener: JsonListener) -> ListenerId;
    fn remove_listener(&self, id: ListenerId) -> bool;
    fn save_snapshot(&self, path: &Path) -> Result<usize, GridError>;
    fn load_snapshot(&self, path: &Path) -> Result<usize, GridError>;
}

pub(crate) fn type_names<K, V>() -> String {
    format!(
        "({}, {})",
        std::any::type_name::<K>(),
        std::any::type_name::<V>()
    )
}

impl<K: GridKey, V: GridValue> MapInner<K, V> {
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        v: Value,
    ) -> Result<T, GridError> {
        serde_json::from_value(v).map_err(|source| GridError::Json {
            map: self.name.clone(),
            what,
            source,
        })
    }

    fn encode<T: serde::Serialize>(&self, what: &'static str, v: &T) -> Result<Value, GridError> {
        serde_json::to_value(v).map_err(|source| GridError::Encode {
            map: self.name.clone(),
            what,
            source,
        })
    }

    fn handle(self: &Arc<Self>) -> Map<K, V> {
        Map {
            inner: Arc::clone(self),
        }
    }
}

/// A listener of the JSON view: sees every event with keys and values as JSON.
pub type JsonListener = Box<dyn Fn(&MapEvent<Value, Value>) + Send + Sync>;

/// An event of a typed map as JSON; a value that cannot be encoded (which
/// serde types that round-trip through the map never produce) becomes null.
fn event_as_json<K: GridKey, V: GridValue>(event: &MapEvent<K, V>) -> MapEvent<Value, Value> {
    let json = |v: &V| serde_json::to_value(v).unwrap_or(Value::Null);
    match event {
        MapEvent::Entry(e) => MapEvent::Entry(EntryEvent {
            kind: e.kind,
            key: serde_json::to_value(&e.key).unwrap_or(Value::Null),
            old_value: e.old_value.as_ref().map(json),
            new_value: e.new_value.as_ref().map(json),
        }),
        MapEvent::Cleared { entries } => MapEvent::Cleared { entries: *entries },
    }
}

impl<K: GridKey, V: GridValue> ErasedMap for Arc<MapInner<K, V>> {
    fn name(&self) -> &str {
        &self.name
    }
    fn add_json_listener(&self, include_values: bool, listener: JsonListener) -> ListenerId {
        self.handle().add_listener(
            EventFilter::All,
            include_values,
            move |event: &MapEvent<K, V>| listener(&event_as_json(event)),
        )
    }
    fn remove_listener(&self, id: ListenerId) -> bool {
        self.handle().remove_listener(id)
    }
    fn types(&self) -> String {
        type_names::<K, V>()
    }
    fn config(&self) -> &MapConfig {
        &self.config
    }
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
    fn maintain(&self) {
        MapInner::maintain(self)
    }
    fn stats(&self) -> MapStats {
        MapInner::stats(self)
    }
    fn get(&self, key: Value) -> Result<Option<Value>, GridError> {
        let k: K = self.decode("key", key)?;
        MapInner::get(self, &k)
            .map(|v| self.encode("value", &v))
            .transpose()
    }
    fn put(&self, key: Value, value: Value, expiry: Expiry) -> Result<Option<Value>, GridError> {
        let k: K = self.decode("key", key)?;
        let v: V = self.decode("value", value)?;
        self.handle()
            .put_with_expiry(k, v, expiry)
            .map(|old| self.encode("value", &old))
            .transpose()
    }
    fn remove(&self, key: Value) -> Result<Option<Value>, GridError> {
        let k: K = self.decode("key", key)?;
        MapInner::remove(self, &k)
            .map(|v| self.encode("value", &v))
            .transpose()
    }
    fn page(
        &self,
        pred: &Predicate,
        page_size: usize,
        page: usize,
    ) -> Result<(Vec<(Value, Value)>, usize), GridError> {
        let p = MapInner::page(self, pred, page_size, page);
        let entries = p
            .entries
            .iter()
            .map(|(k, v)| Ok((self.encode("key", k)?, self.encode("value", v)?)))
            .collect::<Result<_, GridError>>()?;
        Ok((entries, p.total))
    }
    fn aggregate(&self, agg: &Aggregation, pred: Option<&Predicate>) -> Value {
        MapInner::aggregate(self, agg, pred)
    }
    fn size(&self) -> usize {
        self.handle().size()
    }
    fn clear(&self) -> usize {
        MapInner::clear(self)
    }
    fn save_snapshot(&self, path: &Path) -> Result<usize, GridError> {
        self.handle().save_snapshot(path)
    }
    fn load_snapshot(&self, path: &Path) -> Result<usize, GridError> {
        self.handle().load_snapshot(path)
    }
}

/// A map seen through JSON, whatever its key and value types.
///
/// ```
/// use eddy_grid::Grid;
/// use serde_json::json;
/// let grid = Grid::new();
/// grid.map::<String, u64>("counts").unwrap().put("a".into(), 1);
/// let view = grid.json_map("counts").unwrap();
/// assert_eq!(view.get(json!("a")).unwrap(), Some(json!(1)));
/// assert!(view.put(json!("b"), json!("not a number"), None).is_err());
/// ```
#[derive(Clone)]
pub struct JsonMap {
    pub(crate) inner: Arc<dyn ErasedMap>,
}

impl JsonMap {
    /// The map's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Registers an entry listener that sees keys and values as JSON; it
    /// is delivered like any listener (see [`crate::events`]).
    pub fn add_listener(
        &self,
        include_values: bool,
        listener: impl Fn(&MapEvent<Value, Value>) + Send + Sync + 'static,
    ) -> ListenerId {
        self.inner
            .add_json_listener(include_values, Box::new(listener))
    }

    /// Removes a listener; returns whether it was registered.
    pub fn remove_listener(&self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    /// The map's key and value type names, for diagnostics.
    pub fn types(&self) -> String {
        self.inner.types()
    }

    /// The map's configuration.
    pub fn config(&self) -> &MapConfig {
        self.inner.config()
    }

    /// The value of `key`.
    pub fn get(&self, key: Value) -> Result<Option<Value>, GridError> {
        self.inner.get(key)
    }

    /// Puts `value` at `key`, with a TTL or the map's default; returns the old value.
    pub fn put(
        &self,
        key: Value,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<Option<Value>, GridError> {
        let expiry = Expiry {
            ttl,
            max_idle: None,
        };
        self.inner.put(key, value, expiry)
    }

    /// Removes `key`; returns its value.
    pub fn remove(&self, key: Value) -> Result<Option<Value>, GridError> {
        self.inner.remove(key)
    }

    /// Entries matching the predicate text (all entries for `None`), one
    /// page of them ordered by key, and the total number of matches.
    pub fn query(
        &self,
        predicate: Option<&str>,
        page_size: usize,
        page: usize,
    ) -> Result<(Vec<(Value, Value)>, usize), GridError> {
        let pred = match predicate {
            Some(text) => Predicate::parse(text)?,
            None => Predicate::True,
        };
        self.inner.page(&pred, page_size, page)
    }

    /// Aggregation text such as `sum(amount)` over the entries matching the
    /// predicate text.
    pub fn aggregate(
        &self,
        aggregation: &str,
        predicate: Option<&str>,
    ) -> Result<Value, GridError> {
        let agg = Aggregation::parse(aggregation)?;
        let pred = predicate.map(Predicate::parse).transpose()?;
        Ok(self.inner.aggregate(&agg, pred.as_ref()))
    }

    /// Entries in the map.
    pub fn size(&self) -> usize {
        self.inner.size()
    }

    /// Removes every entry.
    pub fn clear(&self) -> usize {
        self.inner.clear()
    }

    /// Statistics.
    pub fn stats(&self) -> MapStats {
        self.inner.stats()
    }

    /// See [`Map::save_snapshot`].
    pub fn save_snapshot(&self, path: impl AsRef<Path>) -> Result<usize, GridError> {
        self.inner.save_snapshot(path.as_ref())
    }

    /// See [`Map::load_snapshot`].
    pub fn load_snapshot(&self, path: impl AsRef<Path>) -> Result<usize, GridError> {
        self.inner.load_snapshot(path.as_ref())
    }
}
