//! The node: what the server serves — the engine, the grid, the metrics
//! jobs registered and the change feeds of watched maps.

use crate::changes::ChangeFeeds;
use crate::registry::MetricsRegistry;
use eddy_grid::{Grid, GridKey, GridValue, Map};
use eddy_runtime::Eddy;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One Eddy process as the server sees it.
///
/// Thread safety: share it as `Arc<Node>`; every method takes `&self`.
///
/// ```
/// use eddy_grid::Grid;
/// use eddy_runtime::{Eddy, EddyConfig};
/// use eddy_server::Node;
/// use std::sync::Arc;
///
/// let node = Node::new(Arc::new(Eddy::new(EddyConfig::with_threads(1))), Grid::new());
/// let alerts = node.grid.map::<String, serde_json::Value>("alerts").unwrap();
/// node.watch_map(&alerts); // its changes are now streamed
/// let latency = node.metrics().histogram("eddy_demo_latency_seconds", "End-to-end latency").unwrap();
/// latency.record_ms(3.0);
/// assert!(node.is_ready());
/// ```
pub struct Node {
    /// The engine whose jobs the API lists and controls.
    pub eddy: Arc<Eddy>,
    /// The grid whose maps the API reads and writes.
    pub grid: Grid,
    metrics: MetricsRegistry,
    feeds: ChangeFeeds,
    ready: AtomicBool,
}

impl Node {
    /// A node over an engine and a grid; ready at once.
    pub fn new(eddy: Arc<Eddy>, grid: Grid) -> Arc<Node> {
        Arc::new(Node {
            eddy,
            grid,
            metrics: MetricsRegistry::default(),
            feeds: ChangeFeeds::default(),
            ready: AtomicBool::new(true),
        })
    }

    /// The metrics jobs registered for `/metrics` and the dashboard.
    pub fn metrics(&self) -> &MetricsRegistry {
        &self.metrics
    }

    /// The change feeds.
    pub fn feeds(&self) -> &ChangeFeeds {
        &self.feeds
    }

    /// Streams the changes of `map` at `/api/maps/{name}/changes` (and so
    /// lets clients near-cache it). The map pays for a listener only while
    /// a stream is open.
    pub fn watch_map<K: GridKey, V: GridValue>(&self, map: &Map<K, V>) {
        self.feeds.watch(map);
    }

    /// Sets what `/ready` answers: a node that is still loading reference
    /// data, say, is alive (`/health`) but not ready.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether `/ready` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}
