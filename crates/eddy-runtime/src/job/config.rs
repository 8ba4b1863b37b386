//! What users set to run a job ([`JobConfig`]) and what they read of its
//! state ([`JobStatus`]).

use std::path::PathBuf;
use std::time::Duration;

use eddy_core::{DeadLetters, ErrorPolicy, Guarantee};

use crate::queue::QueueLimits;

/// How to run a job.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Name shown in metrics and errors; defaults to `job-<id>`. A job's
    /// durable snapshots are kept under its name: a job submitted with the
    /// name of one that did not finish resumes from its latest snapshot
    /// (an unnamed job never resumes another's).
    pub name: Option<String>,
    /// Instances per vertex where the vertex does not fix it; defaults to the
    /// number of cooperative worker threads.
    pub parallelism: Option<usize>,
    /// Queue bounds.
    pub queue_limits: QueueLimits,
    /// What the job promises when it fails and restarts.
    pub guarantee: Guarantee,
    /// Time between the starts of two snapshots (when the guarantee takes
    /// any).
    pub snapshot_interval: Duration,
    /// Where the job's snapshots live; defaults to the instance's
    /// [`EddyConfig::snapshot_dir`](crate::EddyConfig::snapshot_dir).
    pub snapshot_dir: Option<PathBuf>,
    /// Starts from this exported snapshot file instead of the job's own
    /// latest snapshot: state is matched to stages by name.
    pub restore_from: Option<PathBuf>,
    /// How many times a failed execution is restarted from the latest
    /// snapshot (from scratch without snapshots) before the job fails.
    pub max_restarts: u32,
    /// Wait before each restart.
    pub restart_backoff: Duration,
    /// What fallible stages (`try_map`, …) do with an item they could not
    /// process, unless the stage says: fail the job (the default) or send
    /// it to the dead letters and go on.
    pub error_policy: ErrorPolicy,
    /// Where dead letters go (default: the log), with their count.
    pub dead_letters: DeadLetters,
    /// Snapshots that may fail in a row (each is logged, counted and
    /// retried at the next interval) before the job fails with the cause:
    /// a job that can no longer snapshot would otherwise run on with its
    /// recovery point growing older unnoticed.
    pub snapshot_failures_max: u32,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            name: None,
            parallelism: None,
            queue_limits: QueueLimits::default(),
            guarantee: Guarantee::None,
            snapshot_interval: Duration::from_secs(10),
            snapshot_dir: None,
            restore_from: None,
            max_restarts: 0,
            restart_backoff: Duration::from_millis(500),
            error_policy: ErrorPolicy::Fail,
            dead_letters: DeadLetters::log(),
            snapshot_failures_max: 3,
        }
    }
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

    /// Sets the processing guarantee.
    pub fn guarantee(mut self, guarantee: Guarantee) -> Self {
        self.guarantee = guarantee;
        self
    }

    /// Sets the time between snapshots.
    pub fn snapshot_interval(mut self, interval: Duration) -> Self {
        self.snapshot_interval = interval;
        self
    }

    /// Sets the directory of the job's snapshots.
    pub fn snapshot_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.snapshot_dir = Some(dir.into());
        self
    }

    /// Starts the job from an exported snapshot file.
    pub fn restore_from(mut self, path: impl Into<PathBuf>) -> Self {
        self.restore_from = Some(path.into());
        self
    }

    /// Sets what fallible stages do with an item they could not process.
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.error_policy = policy;
        self
    }

    /// Fails the job after `failures` snapshots failed in a row (at least 1).
    pub fn snapshot_failures_max(mut self, failures: u32) -> Self {
        self.snapshot_failures_max = failures.max(1);
        self
    }

    /// Sends dead letters to `dead_letters` instead of only the log.
    pub fn dead_letters(mut self, dead_letters: DeadLetters) -> Self {
        self.dead_letters = dead_letters;
        self
    }

    /// Restarts a failed execution up to `max_restarts` times, waiting
    /// `backoff` before each.
    pub fn auto_restart(mut self, max_restarts: u32, backoff: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.restart_backoff = backoff;
        self
    }
}

/// The states of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Its tasklets are running (or it is restarting).
    Running,
    /// Stopped after a final snapshot; [`Job::resume`](super::Job::resume) starts it again.
    Suspended,
    /// All its processors finished (a batch job that ran to the end).
    Completed,
    /// A processor failed and no restart was left; the error says which.
    Failed,
    /// It was cancelled.
    Cancelled,
}

impl JobStatus {
    /// Whether the job has stopped for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}
