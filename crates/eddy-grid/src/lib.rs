//! Eddy's in-memory data grid: named, partitioned maps for state, reference
//! data and queryable results.
//!
//! # Place in the architecture
//!
//! The grid sits beside the engine, not under it: pipelines write results
//! to maps and enrich events from them (`eddy-pipeline` adapts maps as
//! sources, sinks and lookups), and the server, CLI and dashboard read them
//! through the JSON view. It depends on no other Eddy crate and spawns only
//! its own helper threads (one sweeper per [`Grid`], one listener delivery
//! thread per map that has listeners).
//!
//! # What a map offers
//!
//! - [`Map<K, V>`]: typed, partitioned (271 partitions by a stable hash of
//!   the key, see [`keyhash`]), one lock per partition and no global lock.
//! - Expiry by TTL and max-idle ([`Expiry`], [`MapConfig`]), lazy on access
//!   plus a bounded background sweep; a [`ManualClock`] drives it in tests.
//! - Eviction by entry count and bytes with LRU, LFU or random sampling.
//! - Entry listeners ([`events`]), an event journal per partition ([`journal`]).
//! - Predicate queries with a textual syntax, hash and sorted indexes,
//!   aggregations and paging ([`query`]).
//! - Entry processors ([`Map::execute_on_key`]) and atomic snapshots to files ([`snapshot`]).
//! - Persistence to a database through a [`MapStore`] ([`store`]).
//!
//! # Example
//!
//! ```
//! use eddy_grid::{Grid, IndexType, Predicate};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct Account { owner: String, balance: i64, country: String }
//!
//! let grid = Grid::new();
//! let accounts = grid.map::<u64, Account>("accounts").unwrap();
//! accounts.add_index("country", IndexType::Hash).unwrap();
//! accounts.put(1, Account { owner: "Ada".into(), balance: 150, country: "DE".into() });
//! accounts.put(2, Account { owner: "Bob".into(), balance: 20, country: "DE".into() });
//!
//! let rich = accounts.query("balance > 100 and country = 'DE'").unwrap();
//! assert_eq!(rich.len(), 1);
//!
//! // Read-modify-write one entry atomically.
//! accounts.execute_on_key(&2, |e| {
//!     if let Some(a) = e.value_mut() { a.balance += 5 }
//! });
//! assert_eq!(accounts.get(&2).unwrap().balance, 25);
//! assert!(Predicate::parse("balance >").is_err());
//! ```

#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
mod error;
pub mod events;
mod grid;
pub mod journal;
mod json;
pub mod keyhash;
mod map;
mod partition;
pub mod query;
pub mod snapshot;
mod stats;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{EvictionConfig, EvictionPolicy, Expiry, GridConfig, MapConfig};
pub use error::GridError;
pub use events::{EntryEvent, EntryEventKind, EventFilter, ListenerId, MapEvent};
pub use grid::Grid;
pub use journal::{JournalBatch, JournalEvent, JournalReader, JournalStart};
pub use json::{JsonListener, JsonMap};
pub use map::{
    EntryMut, Extractor, GridKey, GridValue, Map, Page, QueryPlan, EVICTION_SAMPLE, SWEEP_BATCH,
};
pub use query::{Aggregation, IndexType, Predicate};
pub use stats::MapStats;
pub use store::{InitialLoad, MapStore, StoreConfig, StoreError, StoreStats, StoredMap, WriteMode};
