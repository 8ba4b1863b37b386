//! The API's answers as Rust types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A job as `GET /api/jobs` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// The job's id on its node.
    pub id: u64,
    /// The job's name.
    pub name: String,
    /// `running`, `suspended`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Time since submission, in milliseconds.
    pub uptime_ms: u64,
    /// Number of vertices.
    pub vertex_count: usize,
    /// Items emitted by the vertices without inputs.
    pub source_items_out: u64,
    /// Items received by the vertices without outputs.
    pub sink_items_in: u64,
    /// Late events dropped, over all vertices.
    pub late_events: u64,
    /// The fullest input queue of any vertex, 0.0 to 1.0.
    pub queue_fill_max: f64,
    /// `none`, `at-least-once` or `exactly-once`.
    pub guarantee: String,
    /// Snapshot statistics; `None` for a job whose guarantee takes none.
    pub snapshots: Option<SnapshotInfo>,
}

/// A job's snapshots. The `last_*` fields are `None` until the first
/// snapshot completes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Snapshots completed, over all executions of the job.
    pub completed: u64,
    /// Id of the latest snapshot.
    pub last_id: Option<u64>,
    /// From the request of the latest snapshot to its durable file.
    pub last_duration_ms: Option<f64>,
    /// Size of the latest snapshot's file.
    pub last_bytes: Option<u64>,
    /// State entries in the latest snapshot.
    pub last_entries: Option<u64>,
    /// Time since the latest snapshot became durable.
    pub last_age_ms: Option<u64>,
    /// The snapshot the job's current execution started from.
    pub restored_from: Option<u64>,
}

/// One vertex of a job with its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vertex {
    /// Index in the job's DAG.
    pub index: usize,
    /// Vertex (stage) name.
    pub name: String,
    /// Instances.
    pub parallelism: usize,
    /// Items received.
    pub items_in: u64,
    /// Items emitted.
    pub items_out: u64,
    /// Items waiting in its input queues.
    pub queue_items: u64,
    /// Capacity of its input queues.
    pub queue_capacity: u64,
    /// `queue_items / queue_capacity`.
    pub queue_fill: f64,
    /// Lowest watermark of its instances, ms since the epoch.
    pub watermark_ms: Option<i64>,
    /// How far that watermark is behind the wall clock.
    pub watermark_lag_ms: Option<i64>,
    /// Late events dropped.
    pub late_events: u64,
}

/// An edge of a job's DAG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// Index of the upstream vertex.
    pub from: usize,
    /// Index of the downstream vertex.
    pub to: usize,
    /// `unicast`, `isolated`, `broadcast` or `partitioned`.
    pub routing: String,
}

/// A job with its DAG and per-vertex metrics (`GET /api/jobs/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDetails {
    /// The summary fields.
    #[serde(flatten)]
    pub summary: JobSummary,
    /// The failure of a failed job.
    pub error: Option<String>,
    /// Stages whose state in the snapshot the job started from no stage of
    /// the job took (renamed or removed in an upgrade).
    pub unmatched_state: Vec<String>,
    /// Vertices in DAG order.
    pub vertices: Vec<Vertex>,
    /// Edges.
    pub edges: Vec<Edge>,
}

/// A map with its statistics (`GET /api/maps`); see `eddy_grid::MapStats`
/// for the meaning of each counter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapInfo {
    /// Map name.
    pub name: String,
    /// Entries held.
    pub entries: usize,
    /// Estimated bytes of the entries.
    pub bytes: usize,
    /// Bytes allocated by the map's tables.
    pub allocated_bytes: usize,
    /// Reads.
    pub gets: u64,
    /// Writes.
    pub puts: u64,
    /// Reads that found an entry.
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Removals.
    pub removals: u64,
    /// Evictions for size.
    pub evictions: u64,
    /// Expirations.
    pub expirations: u64,
    /// `hits / gets`; `None` before the first read.
    pub hit_rate: Option<f64>,
}

/// One entry of a query page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The key.
    pub key: Value,
    /// The value.
    pub value: Value,
}

/// A page of query results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryPage {
    /// Entries of this page, ordered by key.
    pub entries: Vec<Entry>,
    /// Matches over all pages.
    pub total: usize,
    /// This page's number, from 0.
    pub page: usize,
    /// Entries per page.
    pub page_size: usize,
    /// Number of pages.
    pub pages: usize,
}

/// The job actions of `POST /api/jobs/{id}/{action}`; exporting a
/// snapshot has its own calls ([`Client::export_snapshot`](crate::Client::export_snapshot)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction {
    /// Stops the job for good and deletes its snapshots.
    Cancel,
    /// Takes a final snapshot and stops the job until it is resumed.
    Suspend,
    /// Starts a suspended job again from its latest snapshot.
    Resume,
    /// Stops the running job at once and starts it again from its latest
    /// snapshot, as after a failure.
    Restart,
}

impl JobAction {
    /// The action's path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Cancel => "cancel",
            JobAction::Suspend => "suspend",
            JobAction::Resume => "resume",
            JobAction::Restart => "restart",
        }
    }

    /// The status the action leads to.
    pub fn target_status(self) -> &'static str {
        match self {
            JobAction::Cancel => "cancelled",
            JobAction::Suspend => "suspended",
            JobAction::Resume | JobAction::Restart => "running",
        }
    }
}

/// The node's answer to a job action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    /// The job's id.
    pub id: u64,
    /// The job's name.
    pub name: String,
    /// Its status after the action. The node waits a few seconds for the
    /// action's [target status](JobAction::target_status); a job with much
    /// state to snapshot may still show `running` after a suspend and get
    /// there later.
    pub status: String,
}

/// An exported snapshot (`POST /api/jobs/{id}/export`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedSnapshot {
    /// The job's id.
    pub id: u64,
    /// The job's name.
    pub name: String,
    /// The name the snapshot is kept under.
    pub snapshot: String,
    /// The snapshot's file on the node's machine: start a job from it with
    /// `JobConfig::restore_from`.
    pub path: String,
    /// The job's status after the export (`cancelled` after an export that
    /// stops the job).
    pub status: String,
}

/// What `POST /api/sql` answered: the outcomes of the statements that ran
/// and, when one failed, its error (the statements after it did not run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlAnswer {
    /// One per statement that ran, in order.
    pub results: Vec<SqlResult>,
    /// The error that stopped the script, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SqlErrorInfo>,
}

/// The outcome of one statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SqlResult {
    /// Rows of a bounded query or a listing.
    Rows {
        /// The columns with their SQL types.
        columns: Vec<SqlColumn>,
        /// The rows, one JSON value per column (timestamps as RFC 3339).
        rows: Vec<Vec<Value>>,
    },
    /// A job started on the node.
    Job {
        /// Its name.
        name: String,
        /// Its id on the node.
        id: u64,
    },
    /// A definition applied.
    Ddl {
        /// What changed.
        message: String,
    },
    /// `EXPLAIN`'s plan.
    Plan {
        /// The plan as stages.
        text: String,
    },
}

/// A column of a SQL result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlColumn {
    /// Its name.
    pub name: String,
    /// Its SQL type: `BIGINT`, `TIMESTAMP(3)`, …
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A statement's error, positioned in the script that was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlErrorInfo {
    /// What is wrong and how to write it instead.
    pub message: String,
    /// Line in the script, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
    /// `syntax`, `plan`, `unsupported` or `execution`.
    pub kind: String,
    /// The message with the script's line and a caret under the spot.
    pub caret: String,
}
