//! Jobs: configuration, status, and the supervisor that runs a job's
//! executions, takes its snapshots and restarts it.
//!
//! A *job* is what users submit and hold a [`Job`] handle to. It runs as a
//! sequence of *executions*: the tasklets built from its DAG, connected by
//! fresh queues. An execution ends by completing, failing, or being stopped;
//! the job's supervisor thread then decides what comes next: restart from
//! the latest snapshot after a failure (up to the configured attempts),
//! after a forced restart, or on resume after a suspension.
//!
//! The shared state of a job ([`JobControl`]) is defined here; `config`
//! holds what users set ([`JobConfig`]) and read ([`JobStatus`]), `handle`
//! the [`Job`] handle, and `supervisor` the supervisor thread with the
//! executions it runs and the commands it takes.

mod config;
mod handle;
mod supervisor;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use eddy_core::{EddyError, Guarantee};
use parking_lot::{Condvar, Mutex};

use crate::dag::DagView;
use crate::snapshot::SnapshotStats;

pub use config::{JobConfig, JobStatus};
pub use handle::Job;
use supervisor::Command;
pub(crate) use supervisor::{start, Execution, JobSpec};

/// What a job's handles and its supervisor change, under one lock.
struct ControlState {
    status: JobStatus,
    error: Option<EddyError>,
    execution: Option<Arc<Execution>>,
    commands: VecDeque<Command>,
    stats: SnapshotStats,
    /// Stages whose saved state no stage of this job took.
    unmatched_state: Vec<String>,
    /// A processor asked for the next snapshot before the interval is up.
    snapshot_requested: bool,
}

/// A job's state shared by its handles and its supervisor.
pub(crate) struct JobControl {
    id: u64,
    name: String,
    guarantee: Guarantee,
    view: DagView,
    started: Instant,
    /// The job's dead letters, whose count the handle reports.
    dead_letters: eddy_core::DeadLetters,
    state: Mutex<ControlState>,
    changed: Condvar,
}
