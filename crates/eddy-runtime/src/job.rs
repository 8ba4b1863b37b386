//! Jobs: submission results, status, completion, cancellation.

use crate::dag::DagView;
use crate::metrics::{VertexMetrics, VertexMetricsSource};
use crate::queue::QueueLimits;
use eddy_core::EddyError;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to run a job.
#[derive(Debug, Clone, Default)]
pub struct JobConfig {
    /// Name shown in metrics and errors; defaults to `job-<id>`.
    pub name: Option<String>,
    /// Instances per vertex where the vertex does not fix it; defaults to the
    /// number of cooperative worker threads.
    pub parallelism: Option<usize>,
    /// Queue bounds.
    pub queue_limits: QueueLimits,
}

impl JobConfig {
    /// Sets the job name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the default parallelism of the job's vertices.
    pub fn parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = Some(parallelism);
        self
    }
}

/// The states of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Its tasklets are running.
    Running,
    /// All its processors finished (a batch job that ran to the end).
    Completed,
    /// A processor failed; the error says which.
    Failed,
    /// It was cancelled.
    Cancelled,
}

impl JobStatus {
    /// Whether the job has stopped for good.
    pub fn is_terminal(self) -> bool {
        self != JobStatus::Running
    }
}

/// The state of a job shared by its tasklets and its handles.
///
/// Thread safety: tasklets on any worker read `stopping` once per call and
/// update the rest on completion or failure only; handles read and wait.
pub(crate) struct JobShared {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// Set on failure or cancellation: every tasklet stops at its next call.
    pub(crate) stopping: AtomicBool,
    remaining: AtomicUsize,
    outcome: Mutex<(JobStatus, Option<EddyError>)>,
    finished: Condvar,
    metrics: Vec<VertexMetricsSource>,
    pub(crate) dag: DagView,
    started: Instant,
}

impl JobShared {
    pub(crate) fn new(
        id: u64,
        name: String,
        tasklets: usize,
        metrics: Vec<VertexMetricsSource>,
        dag: DagView,
    ) -> Self {
        JobShared {
            id,
            name,
            stopping: AtomicBool::new(false),
            remaining: AtomicUsize::new(tasklets),
            outcome: Mutex::new((JobStatus::Running, None)),
            finished: Condvar::new(),
            metrics,
            dag,
            started: Instant::now(),
        }
    }

    /// Records the first failure and stops the job.
    pub(crate) fn fail(&self, error: EddyError) {
        let mut outcome = self.outcome.lock();
        if outcome.0 == JobStatus::Running {
            *outcome = (JobStatus::Failed, Some(error));
        }
        self.stopping.store(true, Ordering::Release);
    }

    pub(crate) fn cancel(&self) {
        let mut outcome = self.outcome.lock();
        if outcome.0 == JobStatus::Running {
            outcome.0 = JobStatus::Cancelled;
        }
        self.stopping.store(true, Ordering::Release);
    }

    /// Called by each tasklet once it has stopped, whatever the reason.
    pub(crate) fn tasklet_finished(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut outcome = self.outcome.lock();
            if outcome.0 == JobStatus::Running {
                outcome.0 = JobStatus::Completed;
            }
            self.finished.notify_all();
        }
    }

    fn all_stopped(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }
}

/// A handle to a submitted job. Cheap to clone.
#[derive(Clone)]
pub struct Job {
    pub(crate) shared: Arc<JobShared>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.shared.id)
            .field("name", &self.shared.name)
            .field("status", &self.status())
            .finish()
    }
}

impl Job {
    /// The job's id, unique within its `Eddy` instance.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current status. A job is `Running` until all its tasklets stopped.
    pub fn status(&self) -> JobStatus {
        if self.shared.all_stopped() {
            self.shared.outcome.lock().0
        } else {
            JobStatus::Running
        }
    }

    /// Cancels the job; [`join`](Job::join) then returns `Cancelled`.
    pub fn cancel(&self) {
        self.shared.cancel();
    }

    /// Waits until the job stops; `Ok` if it completed.
    pub fn join(&self) -> Result<(), EddyError> {
        let mut outcome = self.shared.outcome.lock();
        while !self.shared.all_stopped() {
            self.shared.finished.wait(&mut outcome);
        }
        Self::result_of(&mut outcome)
    }

    /// Waits at most `timeout`; `None` if the job is still running then.
    pub fn join_timeout(&self, timeout: Duration) -> Option<Result<(), EddyError>> {
        let deadline = Instant::now() + timeout;
        let mut outcome = self.shared.outcome.lock();
        while !self.shared.all_stopped() {
            if self
                .shared
                .finished
                .wait_until(&mut outcome, deadline)
                .timed_out()
            {
                return None;
            }
        }
        Some(Self::result_of(&mut outcome))
    }

    fn result_of(outcome: &mut (JobStatus, Option<EddyError>)) -> Result<(), EddyError> {
        match outcome.0 {
            JobStatus::Completed | JobStatus::Running => Ok(()),
            JobStatus::Cancelled => Err(EddyError::Cancelled),
            JobStatus::Failed => Err(match &outcome.1 {
                Some(EddyError::StageFailed { stage, cause }) => EddyError::StageFailed {
                    stage: stage.clone(),
                    cause: cause.clone(),
                },
                Some(other) => EddyError::InvalidJob(other.to_string()),
                None => EddyError::InvalidJob("job failed without an error".into()),
            }),
        }
    }

    /// Metrics of every vertex, read now.
    pub fn metrics(&self) -> Vec<VertexMetrics> {
        self.shared.metrics.iter().map(|m| m.read()).collect()
    }

    /// The job's DAG.
    pub fn dag(&self) -> &DagView {
        &self.shared.dag
    }

    /// Time since submission.
    pub fn uptime(&self) -> Duration {
        self.shared.started.elapsed()
    }
}
