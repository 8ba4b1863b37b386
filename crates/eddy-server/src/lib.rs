//! Eddy's operations layer: the HTTP/JSON API, Prometheus metrics and the
//! live dashboard of one node.
//!
//! # Place in the architecture
//!
//! The server sits on top: it reads the engine ([`eddy_runtime::Eddy`]: jobs,
//! their DAGs and per-vertex metrics) and the grid ([`eddy_grid::Grid`]: maps,
//! their statistics, entries and queries) through a [`Node`], and holds no
//! business logic of its own. The `eddy` binary builds a node, submits its
//! jobs and calls [`start`]; `eddy-client` speaks to the API from Rust.
//!
//! # Endpoints
//!
//! - `GET /` — the dashboard (static files compiled in; works offline).
//! - `GET /api/jobs`, `GET /api/jobs/{id}` (DAG, per-vertex metrics, the
//!   guarantee and snapshot statistics).
//! - `POST /api/jobs/{id}/cancel|suspend|resume|restart`, and
//!   `POST /api/jobs/{id}/export?name=N` (`&cancel=true` to stop the job
//!   after it), which answers the exported snapshot's path on the node. An
//!   action the job's status does not allow (resuming a running job,
//!   exporting from one without snapshots) answers 409 and says which would.
//! - `GET /api/maps`, `GET /api/maps/{name}`, `GET|PUT|DELETE
//!   /api/maps/{name}/entries/{key}`, `GET /api/maps/{name}/query`,
//!   `GET /api/maps/{name}/aggregate`, `GET /api/maps/{name}/changes`
//!   (server-sent events of maps the node [watches](Node::watch_map)).
//! - `POST /api/sql` (a text body of `;`-separated statements) answers
//!   `{"results": [...]}`, one `{"kind": "rows"|"job"|"ddl"|"plan", …}`
//!   per statement, or 400 with the error's message, line, column and
//!   caret text; `GET /api/sql/tables`, `GET /api/sql/jobs` (the node's
//!   SQL catalog, kept in its data directory: [`Node::open_catalog`]).
//! - `GET /metrics` (Prometheus), `GET /api/metrics` (JSON), `GET /health`,
//!   `GET /ready`.
//!
//! # Safe by default
//!
//! It binds 127.0.0.1; with a [token](ServerConfig::token) every mutating
//! request needs `Authorization: Bearer <token>`; mutating requests from
//! another site's page are refused; bodies, request targets, pages and open
//! streams are bounded; every error is `{"error": "..."}` with its status.
//!
//! # Example
//!
//! ```
//! use eddy_grid::Grid;
//! use eddy_runtime::{Eddy, EddyConfig};
//! use eddy_server::{start, Node, ServerConfig};
//! use std::io::{Read, Write};
//! use std::sync::Arc;
//!
//! let node = Node::new(Arc::new(Eddy::new(EddyConfig::with_threads(1))), Grid::new());
//! node.grid.map::<String, u64>("counts").unwrap().put("a".into(), 1);
//! let server = start(node, ServerConfig::bind("127.0.0.1:0".parse().unwrap())).unwrap();
//!
//! let mut tcp = std::net::TcpStream::connect(server.addr()).unwrap();
//! tcp.write_all(b"GET /api/maps/counts/entries/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
//! let mut response = String::new();
//! tcp.read_to_string(&mut response).unwrap();
//! assert!(response.ends_with(r#"{"key":"a","value":1}"#));
//! ```

#![forbid(unsafe_code)]

mod api;
pub mod changes;
mod config;
mod error;
mod node;
pub mod params;
mod prometheus;
pub mod registry;
mod router;
mod server;
mod sql;
mod state;

pub use config::{ServerConfig, BIND_DEFAULT, TOKEN_ENV};
pub use error::{ApiError, ServerError};
pub use node::{Node, Panel};
pub use registry::{Counter, Gauge, Histogram, HistogramSnapshot, MetricsRegistry};
pub use server::{app, serve, serve_on, start, ServerHandle, SHUTDOWN_GRACE};
pub use sql::{Replayed, SqlFailure, CATALOG_FILE};
