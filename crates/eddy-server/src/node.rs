//! The node: what the server serves — the engine, the grid, the metrics
//! jobs registered and the change feeds of watched maps.

use crate::changes::ChangeFeeds;
use crate::error::ServerError;
use crate::registry::MetricsRegistry;
use crate::sql::{Replayed, SqlFailure, SqlState};
use eddy_grid::{Grid, GridKey, GridValue, Map};
use eddy_runtime::Eddy;
use eddy_sql::{Outcome, Session};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A dashboard panel: the entries of a map counted per value of one of
/// their fields (alerts per rule, orders per product), drawn as a bar
/// chart, with the map's changes as they happen if it is watched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Panel {
    /// Heading shown above the panel.
    pub title: String,
    /// The map whose entries it counts.
    pub map: String,
    /// The field of the values whose distinct values it counts entries of.
    pub group_by: String,
}

impl Panel {
    /// A panel titled `title` counting the entries of `map` per value of
    /// their field `group_by`.
    pub fn grouped(
        title: impl Into<String>,
        map: impl Into<String>,
        group_by: impl Into<String>,
    ) -> Panel {
        Panel {
            title: title.into(),
            map: map.into(),
            group_by: group_by.into(),
        }
    }
}

/// One Eddy process as the server sees it.
///
/// Thread safety: share it as `Arc<Node>`; every method takes `&self`.
///
/// ```
/// use eddy_grid::Grid;
/// use eddy_runtime::{Eddy, EddyConfig};
/// use eddy_server::{Node, Panel};
/// use std::sync::Arc;
///
/// let node = Node::new(Arc::new(Eddy::new(EddyConfig::with_threads(1))), Grid::new());
/// let alerts = node.grid.map::<String, serde_json::Value>("alerts").unwrap();
/// node.watch_map(&alerts); // its changes are now streamed
/// node.add_panel(Panel::grouped("Alerts per rule", "alerts", "rule"));
/// let latency = node.metrics().histogram("eddy_alert_latency_seconds", "End-to-end latency").unwrap();
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
    panels: Mutex<Vec<Panel>>,
    ready: AtomicBool,
    /// One SQL session for every client: statements are rare and short
    /// (a bounded `SELECT` waits for its job), so they take turns.
    sql: Mutex<SqlState>,
}

impl Node {
    /// A node over an engine and a grid; ready at once.
    pub fn new(eddy: Arc<Eddy>, grid: Grid) -> Arc<Node> {
        let session = Session::new(Arc::clone(&eddy), grid.clone());
        Arc::new(Node {
            eddy,
            grid,
            sql: Mutex::new(SqlState::new(session)),
            metrics: MetricsRegistry::default(),
            feeds: ChangeFeeds::default(),
            panels: Mutex::new(Vec::new()),
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

    /// Adds a panel to the dashboard (`/api/panels`); a panel for the same
    /// map and field replaces the earlier one.
    pub fn add_panel(&self, panel: Panel) {
        let mut panels = self.panels.lock();
        panels.retain(|p| {
            (p.map.as_str(), p.group_by.as_str()) != (panel.map.as_str(), panel.group_by.as_str())
        });
        panels.push(panel);
    }

    /// The dashboard's panels, in the order they were added.
    pub fn panels(&self) -> Vec<Panel> {
        self.panels.lock().clone()
    }

    /// Sets what `/ready` answers: a node that is still loading reference
    /// data, say, is alive (`/health`) but not ready.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Runs SQL statements (`;`-separated) in the node's session, as
    /// `POST /api/sql` does; with a data directory
    /// ([`open_catalog`](Node::open_catalog)) a statement that changes
    /// the catalog is saved before this returns.
    pub fn execute_sql(&self, script: &str) -> Result<Vec<Outcome>, SqlFailure> {
        self.sql.lock().execute(script)
    }

    /// Runs the SQL of the node's config file: what it creates is not
    /// saved in the catalog, since the config file creates it at every
    /// start. Call it before [`open_catalog`](Node::open_catalog).
    pub fn execute_config_sql(&self, script: &str) -> Result<Vec<Outcome>, SqlFailure> {
        self.sql.lock().execute_declared(script)
    }

    /// Keeps the SQL catalog in `dir/catalog.json` from now on, after
    /// re-creating the tables it holds and resubmitting the jobs that
    /// were running (a named job with a guarantee resumes from its latest
    /// snapshot when the engine's snapshot directory is the one it used).
    pub fn open_catalog(&self, dir: &Path) -> Result<Replayed, ServerError> {
        self.sql
            .lock()
            .open(dir)
            .map_err(|reason| ServerError::Catalog { reason })
    }

    /// Calls `f` with the node's SQL session (waiting for a statement that
    /// runs now).
    pub fn with_sql<R>(&self, f: impl FnOnce(&Session) -> R) -> R {
        f(&self.sql.lock().session)
    }

    /// Whether `/ready` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}
