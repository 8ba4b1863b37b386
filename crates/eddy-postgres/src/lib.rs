//! PostgreSQL sink, source and grid map store for Eddy.
//!
//! # Place in the architecture
//!
//! Connectors between Eddy and PostgreSQL on the `tokio-postgres` driver:
//! [`PostgresSink`] ends a pipeline in a table (insert or upsert, batched),
//! [`PostgresSource`] starts one from a query (batch), and
//! [`PostgresMapStore`] backs a grid map (`eddy_grid::StoredMap`) with a
//! table. All of them block on the database, so the sink and source run as
//! non-cooperative processors on threads of their own, and each owns one
//! connection driven by a private single-threaded tokio runtime: do not call
//! them from inside another tokio runtime.
//!
//! # Example
//!
//! ```no_run
//! use eddy_pipeline::{Pipeline, Sources};
//! use eddy_postgres::PostgresSink;
//! use eddy_runtime::{Eddy, EddyConfig, JobConfig};
//!
//! #[derive(Clone, serde::Serialize)]
//! struct Alert { account: i64, score: f64 }
//!
//! let url = "host=127.0.0.1 user=eddy dbname=eddy";
//! let p = Pipeline::new();
//! p.read_from(Sources::items(vec![Alert { account: 7, score: 0.9 }]))
//!     // Needs `CREATE TABLE alerts (account bigint PRIMARY KEY, score float8)`.
//!     .write_to(PostgresSink::new(url, "alerts", &["account", "score"]).upsert(&["account"]));
//! Eddy::new(EddyConfig::default())
//!     .submit(p, JobConfig::default())
//!     .unwrap()
//!     .join()
//!     .unwrap();
//! ```
//!
//! Transient errors (connection lost, server restarting) are retried with a
//! [`Backoff`]; permanent ones are reported as [`PgError`]s that name the
//! table and column and say what to fix.
//!
//! In a job whose guarantee is exactly-once, the sink holds its rows per
//! snapshot epoch and writes each completed snapshot's rows in one
//! transaction together with a commit marker (in [`COMMIT_MARKER_TABLE`]),
//! so that a job restored after a crash writes every row once; see
//! [`PostgresSink`].

#![forbid(unsafe_code)]

mod conn;
mod epochs;
mod error;
mod sink;
mod source;
mod sql;
mod store;

pub use conn::Backoff;
pub use epochs::COMMIT_MARKER_TABLE;
pub use error::PgError;
pub use sink::{PostgresSink, PostgresSinkP, DEFAULT_BATCH_ROWS, DEFAULT_LINGER};
pub use source::{PostgresSource, PostgresSourceP};
pub use store::{execute, PostgresMapStore};
pub use tokio_postgres::Row;
