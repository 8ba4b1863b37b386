//! The handle users hold to a submitted job: its status, commands to its
//! supervisor, waiting for its end, metrics and snapshot statistics.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_core::{EddyError, Guarantee};

use crate::dag::DagView;
use crate::metrics::VertexMetrics;
use crate::snapshot::SnapshotStats;

use super::{Command, ControlState, JobControl, JobStatus};

/// A handle to a submitted job. Cheap to clone.
#[derive(Clone)]
pub struct Job {
    pub(super) control: Arc<JobControl>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.control.id)
            .field("name", &self.control.name)
            .field("status", &self.status())
            .finish()
    }
}

impl Job {
    /// The job's id, unique within its `Eddy` instance.
    pub fn id(&self) -> u64 {
        self.control.id
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.control.name
    }

    /// The processing guarantee the job was submitted with.
    pub fn guarantee(&self) -> Guarantee {
        self.control.guarantee
    }

    /// The current status.
    pub fn status(&self) -> JobStatus {
        self.control.state.lock().status
    }

    fn command(&self, command: Command) {
        let mut state = self.control.state.lock();
        if !state.status.is_terminal() {
            state.commands.push_back(command);
            self.control.changed.notify_all();
        }
    }

    /// Cancels the job; [`join`](Job::join) then returns `Cancelled`. Its
    /// snapshots are deleted: a job of the same name starts afresh.
    pub fn cancel(&self) {
        self.command(Command::Cancel);
    }

    /// Takes a final snapshot, then stops the job; [`resume`](Job::resume)
    /// restarts it from that snapshot. Without snapshots it just stops, and
    /// a resumed job starts from scratch.
    pub fn suspend(&self) {
        self.command(Command::Suspend);
    }

    /// Restarts a suspended job from its latest snapshot.
    pub fn resume(&self) {
        self.command(Command::Resume);
    }

    /// Stops the running execution at once and starts another from the
    /// latest snapshot (as after a failure). A restart that comes while the
    /// job is ending restores a snapshot covering all the output made
    /// visible so far (see [`Processor::complete`](eddy_core::Processor::complete));
    /// one that comes once every processor has finished is ignored: the job
    /// has completed.
    pub fn restart(&self) {
        self.command(Command::Restart);
    }

    /// Takes a snapshot and also keeps it under `name` (see
    /// [`exported_snapshot_path`](crate::snapshot::exported_snapshot_path)),
    /// while the job goes on. Start another job from it with
    /// [`JobConfig::restore_from`](super::JobConfig::restore_from). Needs a
    /// guarantee that takes snapshots.
    pub fn export_snapshot(&self, name: &str) -> Result<PathBuf, EddyError> {
        self.export(name, false)
    }

    /// Like [`export_snapshot`](Job::export_snapshot), and the job stops
    /// (cancelled) once the snapshot is durable: the sources emit nothing
    /// after its barrier, so the snapshot is the job's last word.
    pub fn cancel_and_export_snapshot(&self, name: &str) -> Result<PathBuf, EddyError> {
        self.export(name, true)
    }

    fn export(&self, name: &str, terminal: bool) -> Result<PathBuf, EddyError> {
        let (reply, answer) = std::sync::mpsc::channel();
        {
            let mut state = self.control.state.lock();
            if state.status.is_terminal() {
                return Err(EddyError::JobState(format!(
                    "job '{}' has stopped: a snapshot can be exported only while it runs",
                    self.control.name
                )));
            }
            state.commands.push_back(Command::Export {
                name: name.to_string(),
                terminal,
                reply,
            });
            self.control.changed.notify_all();
        }
        answer.recv().unwrap_or_else(|_| {
            Err(EddyError::JobState(format!(
                "job '{}' stopped before the snapshot was taken",
                self.control.name
            )))
        })
    }

    /// Waits until the job stops for good; `Ok` if it completed.
    pub fn join(&self) -> Result<(), EddyError> {
        let mut state = self.control.state.lock();
        while !state.status.is_terminal() {
            self.control.changed.wait(&mut state);
        }
        Self::result_of(&state)
    }

    /// Waits at most `timeout`; `None` if the job is still running then.
    pub fn join_timeout(&self, timeout: Duration) -> Option<Result<(), EddyError>> {
        let deadline = Instant::now() + timeout;
        let mut state = self.control.state.lock();
        while !state.status.is_terminal() {
            if self
                .control
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                return None;
            }
        }
        Some(Self::result_of(&state))
    }

    /// Waits until the job has the given status (or stopped for good).
    pub fn wait_for_status(&self, wanted: JobStatus, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.control.state.lock();
        while state.status != wanted && !state.status.is_terminal() {
            if self
                .control
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                break;
            }
        }
        state.status == wanted
    }

    fn result_of(state: &ControlState) -> Result<(), EddyError> {
        match state.status {
            JobStatus::Cancelled => Err(EddyError::Cancelled),
            JobStatus::Failed => Err(match &state.error {
                Some(error) => error.duplicate(),
                None => EddyError::JobFailed(
                    "the job failed without an error; this is a bug in Eddy".into(),
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Metrics of every vertex of the current (or last) execution, read now.
    pub fn metrics(&self) -> Vec<VertexMetrics> {
        let execution = self.control.state.lock().execution.clone();
        match execution {
            Some(e) => e.metrics.iter().map(|m| m.read()).collect(),
            None => Vec::new(),
        }
    }

    /// Items the job's fallible stages sent to its dead letters so far.
    pub fn dead_letters(&self) -> u64 {
        self.control.dead_letters.count()
    }

    /// Snapshot statistics.
    pub fn snapshot_stats(&self) -> SnapshotStats {
        let state = self.control.state.lock();
        let mut stats = state.stats.clone();
        if stats.restored_from.is_some() {
            stats.restore_duration = state
                .execution
                .as_ref()
                .and_then(|e| e.snapshots.as_ref())
                .and_then(|s| s.restore_duration());
        }
        stats
    }

    /// Names of stages that saved state in the snapshot the job started
    /// from but are not in this job (renamed or removed in an upgrade).
    pub fn unmatched_state(&self) -> Vec<String> {
        self.control.state.lock().unmatched_state.clone()
    }

    /// The job's DAG.
    pub fn dag(&self) -> &DagView {
        &self.control.view
    }

    /// Time since submission.
    pub fn uptime(&self) -> Duration {
        self.control.started.elapsed()
    }

    /// Stops the job as the process shuts down, keeping its snapshots so
    /// that the same job submitted again resumes.
    pub(crate) fn shutdown(&self) {
        self.command(Command::Shutdown);
    }
}
