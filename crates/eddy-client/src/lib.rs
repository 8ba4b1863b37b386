//! A blocking Rust client for an Eddy node's HTTP API, with a near cache
//! for map reads.
//!
//! # Place in the architecture
//!
//! `eddy-server` serves the API; this crate calls it from other processes
//! (the `eddy jobs` and `eddy map` commands, applications). It depends on
//! no other Eddy crate: only HTTP and JSON cross the boundary.
//!
//! # Jobs
//!
//! [`Client::jobs`] and [`Client::job`] read a node's jobs with their
//! guarantee and snapshot statistics; [`Client::suspend_job`],
//! [`Client::resume_job`], [`Client::restart_job`] and
//! [`Client::export_snapshot`] drive their lifecycle. An action the job's
//! status does not allow fails with [`ClientError::Http`] status 409 and
//! the node's reason.
//!
//! # SQL
//!
//! [`Client::sql`] sends statements to the node's `/api/sql` and returns
//! their outcomes, or the positioned error that stopped them.
//!
//! # Near cache
//!
//! [`Client::near_cache`] keeps the entries of one map that this process
//! read, and the map's change stream (server-sent events) removes those
//! that changed on the node: the seed's "near caching to reduce network
//! hops". See [`NearCache`] for its guarantees.
//!
//! ```no_run
//! use eddy_client::Client;
//! let client = Client::new("http://127.0.0.1:8080")?.with_token("s3cret");
//! for job in client.jobs()? {
//!     println!("{} {} {}", job.id, job.name, job.status);
//! }
//! let velocity = client.query("alerts", Some("rule = 'velocity'"), 0, 20)?;
//! let cache = client.near_cache("accounts", 10_000)?;
//! let account = cache.get("1234")?; // from the node
//! let again = cache.get("1234")?;   // from the cache
//! assert_eq!(cache.stats().hits, 1);
//! # Ok::<(), eddy_client::ClientError>(())
//! ```

#![forbid(unsafe_code)]

mod client;
mod error;
mod near_cache;
mod types;

pub use client::{Client, CALL_TIMEOUT};
pub use error::ClientError;
pub use near_cache::{NearCache, NearCacheStats, OPEN_TIMEOUT};
pub use types::{
    Edge, Entry, ExportedSnapshot, JobAction, JobDetails, JobState, JobSummary, MapInfo, QueryPage,
    SnapshotInfo, SqlAnswer, SqlColumn, SqlErrorInfo, SqlResult, Vertex,
};
