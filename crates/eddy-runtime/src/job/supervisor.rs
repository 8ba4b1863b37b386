//! The supervisor thread of a job: it starts executions, takes snapshots
//! on schedule, carries out the commands of the job's handles, and decides
//! what follows when an execution ends.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_core::EddyError;
use parking_lot::{Condvar, Mutex};

use crate::dag::{Dag, ItemFailures, SnapshotSetup};
use crate::metrics::VertexMetricsSource;
use crate::snapshot::{
    export_snapshot_file, exported_snapshot_path, read_snapshot_file, LoadedSnapshot,
    SnapshotShared, SnapshotStats, SnapshotStore,
};
use crate::Scheduler;

use super::{ControlState, Job, JobConfig, JobControl, JobStatus};

/// One run of a job's tasklets, shared by them and the supervisor.
///
/// Thread safety: tasklets on any worker read `stopping` once per call and
/// update the rest on completion or failure only.
pub(crate) struct Execution {
    /// Set on failure or stop: every tasklet stops at its next call.
    pub(crate) stopping: AtomicBool,
    remaining: AtomicUsize,
    /// How the execution ended: `None` while it runs or when stopped.
    failure: Mutex<Option<EddyError>>,
    pub(super) metrics: Vec<VertexMetricsSource>,
    pub(crate) snapshots: Option<Arc<SnapshotShared>>,
    /// The job's control, to wake the supervisor when the execution ends
    /// (weak: the control holds the execution).
    control: std::sync::Weak<JobControl>,
}

impl Execution {
    /// Records the first failure and stops the execution.
    pub(crate) fn fail(&self, error: EddyError) {
        let mut failure = self.failure.lock();
        if failure.is_none() && !self.stopping.load(Ordering::Acquire) {
            *failure = Some(error);
        }
        self.stopping.store(true, Ordering::Release);
    }

    /// Stops the execution; its tasklets stop at their next call.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Called by each tasklet once it has stopped, whatever the reason.
    pub(crate) fn tasklet_finished(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(control) = self.control.upgrade() {
                let _guard = control.state.lock();
                control.changed.notify_all();
            }
        }
    }

    fn all_stopped(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }
}

/// A request to a job's supervisor.
pub(super) enum Command {
    Cancel,
    /// Stop without deleting snapshots: the process is shutting down.
    Shutdown,
    Suspend,
    Resume,
    Restart,
    Export {
        name: String,
        terminal: bool,
        reply: std::sync::mpsc::Sender<Result<PathBuf, EddyError>>,
    },
}

/// Everything the supervisor needs to build executions.
pub(crate) struct JobSpec {
    pub(crate) dag: Dag,
    pub(crate) config: JobConfig,
    pub(crate) parallelism: usize,
    pub(crate) snapshot_root: PathBuf,
}

/// Creates a job and starts its supervisor thread.
pub(crate) fn start(
    id: u64,
    name: String,
    spec: JobSpec,
    scheduler: Arc<Scheduler>,
) -> Result<(Job, std::thread::JoinHandle<()>), EddyError> {
    tracing::info!(
        job = %name,
        id,
        guarantee = %spec.config.guarantee,
        parallelism = spec.parallelism,
        "job submitted"
    );
    spec.dag.resolve_parallelism(spec.parallelism)?;
    if spec.config.guarantee.takes_snapshots() {
        spec.dag.check_unique_names()?;
        if spec.config.snapshot_interval.is_zero() {
            return Err(EddyError::InvalidJob(
                "snapshot_interval is zero: set it to the time between snapshots, e.g. 1 s".into(),
            ));
        }
    }
    let control = Arc::new(JobControl {
        id,
        name: name.clone(),
        guarantee: spec.config.guarantee,
        view: spec.dag.view(spec.parallelism),
        started: Instant::now(),
        dead_letters: spec.config.dead_letters.clone(),
        state: Mutex::new(ControlState {
            status: JobStatus::Running,
            error: None,
            execution: None,
            commands: VecDeque::new(),
            stats: SnapshotStats::default(),
            unmatched_state: Vec::new(),
            snapshot_requested: false,
        }),
        changed: Condvar::new(),
    });
    let mut supervisor = Supervisor::new(control.clone(), name, spec, scheduler)?;
    // The first execution starts before `submit` returns, so that a job's
    // tasklets are running when the caller gets its handle.
    let first = supervisor.start_execution()?;
    let handle = std::thread::Builder::new()
        .name(format!("eddy-job-{id}"))
        .spawn(move || supervisor.run(Ok(first)))
        .map_err(|e| EddyError::Io {
            context: "starting a job's supervisor thread".into(),
            source: e,
        })?;
    Ok((Job { control }, handle))
}

/// What ended the wait for the next event of an execution.
enum Wake {
    Ended,
    Command(Command),
    SnapshotDue,
}

struct Supervisor {
    control: Arc<JobControl>,
    name: String,
    /// The snapshot directory: the job's own or the instance's.
    root: PathBuf,
    spec: JobSpec,
    scheduler: Arc<Scheduler>,
    store: Option<SnapshotStore>,
    /// The snapshot the next execution starts from.
    restore: Option<Arc<LoadedSnapshot>>,
    next_snapshot_id: u64,
}

impl Supervisor {
    fn new(
        control: Arc<JobControl>,
        name: String,
        spec: JobSpec,
        scheduler: Arc<Scheduler>,
    ) -> Result<Self, EddyError> {
        let snapshots = spec.config.guarantee.takes_snapshots();
        let root = spec
            .config
            .snapshot_dir
            .clone()
            .unwrap_or_else(|| spec.snapshot_root.clone());
        // Only a job named by its user can be the same job as one of an
        // earlier process; an unnamed one ("job-1") keeps its snapshots
        // apart, so that it never resumes another program's state.
        let named = spec.config.name.is_some();
        let store = snapshots.then(|| {
            if named {
                SnapshotStore::new(&root, &name)
            } else {
                SnapshotStore::new(&root, &format!("{name}.{}", std::process::id()))
            }
        });
        let restore = match (&spec.config.restore_from, &store) {
            (Some(path), _) => Some(Arc::new(read_snapshot_file(path)?)),
            (None, Some(store)) if named => store.latest()?.map(Arc::new),
            _ => None,
        };
        if let Some(store) = &store {
            // A job that does not resume from its own snapshots starts
            // afresh: older ones must not be taken for its own at a restart.
            let resumes_own = restore.is_some() && spec.config.restore_from.is_none();
            if !resumes_own {
                store.clear();
            }
        }
        let last = store
            .as_ref()
            .and_then(|s| s.ids().last().copied())
            .unwrap_or(0)
            .max(restore.as_ref().map_or(0, |r| r.id));
        Ok(Supervisor {
            control,
            name,
            root,
            spec,
            scheduler,
            store,
            restore,
            next_snapshot_id: last + 1,
        })
    }

    fn set_status(&self, status: JobStatus, error: Option<EddyError>) {
        match (status, &error) {
            (JobStatus::Failed, Some(e)) => {
                tracing::error!(job = %self.name, error = %e, "job failed")
            }
            (JobStatus::Failed, None) => tracing::error!(job = %self.name, "job failed"),
            (JobStatus::Completed, _) => tracing::info!(job = %self.name, "job completed"),
            (JobStatus::Cancelled, _) => tracing::info!(job = %self.name, "job cancelled"),
            (JobStatus::Suspended, _) => tracing::info!(job = %self.name, "job suspended"),
            (JobStatus::Running, _) => tracing::info!(job = %self.name, "job running"),
        }
        let mut state = self.control.state.lock();
        state.status = status;
        if error.is_some() {
            state.error = error;
        }
        if status.is_terminal() {
            // Anyone waiting for an export gets an error from the dropped
            // reply channel.
            state.commands.clear();
        }
        self.control.changed.notify_all();
    }

    /// Builds the tasklets of a new execution and hands them to workers.
    fn start_execution(&mut self) -> Result<Arc<Execution>, EddyError> {
        let config = &self.spec.config;
        let tasklets = self.spec.dag.tasklet_count(self.spec.parallelism)?;
        let restored_id = self.restore.as_ref().map(|r| r.id);
        let shared = config.guarantee.takes_snapshots().then(|| {
            // Snapshot ids go on from the restored one: sinks tell committed
            // epochs from new ones by id.
            let last = self.next_snapshot_id - 1;
            Arc::new(SnapshotShared::new(config.guarantee, tasklets, last))
        });
        let requester = match &shared {
            Some(_) => {
                let control = Arc::downgrade(&self.control);
                eddy_core::SnapshotRequester::new(move || {
                    if let Some(control) = control.upgrade() {
                        let mut state = control.state.lock();
                        if !state.snapshot_requested {
                            state.snapshot_requested = true;
                            control.changed.notify_all();
                        }
                    }
                })
            }
            None => eddy_core::SnapshotRequester::default(),
        };
        let setup = SnapshotSetup {
            guarantee: config.guarantee,
            interval: config.snapshot_interval,
            requester,
            shared: shared.clone(),
            restore: self.restore.clone(),
        };
        if let Some(restore) = &self.restore {
            let names: Vec<&str> = self.spec.dag.vertex_names().collect();
            let unmatched = restore
                .vertices()
                .into_iter()
                .filter(|v| !names.contains(v))
                .map(str::to_string)
                .collect();
            self.control.state.lock().unmatched_state = unmatched;
        }
        let failures = ItemFailures {
            dead_letters: config.dead_letters.clone(),
            policy: config.error_policy,
        };
        let built = self.spec.dag.build(
            &self.name,
            self.spec.parallelism,
            &config.queue_limits,
            &setup,
            &failures,
        )?;
        let execution = Arc::new(Execution {
            stopping: AtomicBool::new(false),
            remaining: AtomicUsize::new(built.tasklets.len()),
            failure: Mutex::new(None),
            metrics: built.metrics,
            snapshots: shared,
            control: Arc::downgrade(&self.control),
        });
        {
            let mut state = self.control.state.lock();
            state.execution = Some(execution.clone());
            state.status = JobStatus::Running;
            state.stats.restored_from = restored_id;
            self.control.changed.notify_all();
        }
        self.scheduler.schedule(built.tasklets, &execution);
        Ok(execution)
    }

    /// Waits for the execution to end, a command, or the next snapshot.
    fn wait(&self, execution: &Execution, snapshot_at: Option<Instant>) -> Wake {
        let mut state = self.control.state.lock();
        loop {
            // An execution that ended is dealt with before the commands that
            // came meanwhile: a restart must not run a completed job again.
            if execution.all_stopped() {
                return Wake::Ended;
            }
            if let Some(c) = state.commands.pop_front() {
                return Wake::Command(c);
            }
            match snapshot_at {
                Some(_) if state.snapshot_requested => {
                    state.snapshot_requested = false;
                    return Wake::SnapshotDue;
                }
                Some(at) if Instant::now() >= at => return Wake::SnapshotDue,
                Some(at) => {
                    self.control.changed.wait_until(&mut state, at);
                }
                None => {
                    self.control.changed.wait(&mut state);
                }
            }
        }
    }

    fn stop_and_wait(&self, execution: &Execution) {
        execution.stop();
        let mut state = self.control.state.lock();
        while !execution.all_stopped() {
            self.control
                .changed
                .wait_for(&mut state, Duration::from_millis(50));
        }
    }

    /// Takes a snapshot of the running execution; returns its file.
    fn take_snapshot(
        &mut self,
        execution: &Execution,
        terminal: bool,
    ) -> Result<PathBuf, EddyError> {
        let (Some(shared), Some(store)) = (&execution.snapshots, &self.store) else {
            return Err(EddyError::JobState(format!(
                "job '{}' takes no snapshots: submit it with a guarantee of at-least-once or exactly-once",
                self.name
            )));
        };
        let control = self.control.clone();
        let stopped = || execution.stopping.load(Ordering::Acquire) || execution.all_stopped();
        // A command that stops the execution ends the wait for a snapshot
        // that cannot complete (a tasklet stuck in a blocking call): the
        // execution is torn down right after, so no barrier is left behind.
        let stop_requested = || {
            control
                .state
                .lock()
                .commands
                .iter()
                .any(|c| matches!(c, Command::Cancel | Command::Shutdown | Command::Restart))
        };
        let started = Instant::now();
        while shared.loading.load(Ordering::Acquire) > 0 {
            // No barrier is out yet: any command may go first (a join whose
            // side input never ends would otherwise hold the job's commands
            // back for good).
            if stopped() || !control.state.lock().commands.is_empty() {
                return Err(EddyError::JobState(format!(
                    "job '{}': a snapshot waits until every join has read its side input, and the job was stopped or given a command first",
                    self.name
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let id = self.next_snapshot_id;
        self.next_snapshot_id += 1;
        shared.start(id, terminal);
        let parts = shared
            .wait_complete(|| stopped() || stop_requested())
            .ok_or_else(|| {
                EddyError::JobState(format!(
                    "job '{}' stopped before snapshot {id} completed",
                    self.name
                ))
            })?;
        let (path, bytes) = store.write(id, &self.name, &parts)?;
        shared.mark_committed(id);
        {
            let mut state = self.control.state.lock();
            let stats = &mut state.stats;
            stats.completed += 1;
            stats.last_id = id;
            stats.last_duration = started.elapsed();
            stats.last_bytes = bytes;
            stats.last_entries = parts.iter().map(|p| p.entries).sum();
            stats.last_completed_at = Some(std::time::SystemTime::now());
        }
        // The snapshot may be restored after a restart in this process.
        self.restore = None;
        if terminal {
            // Sinks must make the last epoch visible before the job stops.
            shared.wait_committed(id, stopped);
        }
        Ok(path)
    }

    fn latest_snapshot(&self) -> Result<Option<Arc<LoadedSnapshot>>, EddyError> {
        match &self.store {
            Some(store) => Ok(store.latest()?.map(Arc::new)),
            None => Ok(None),
        }
    }

    /// Prepares a restart from the latest snapshot; `Err` ends the job.
    fn prepare_restart(&mut self) -> Result<(), EddyError> {
        if let Some(latest) = self.latest_snapshot()? {
            self.restore = Some(latest);
        } else if self.spec.config.restore_from.is_some() {
            // No snapshot of its own yet: start again from the exported one.
            self.restore = self
                .spec
                .config
                .restore_from
                .as_deref()
                .map(read_snapshot_file)
                .transpose()?
                .map(Arc::new);
        }
        Ok(())
    }

    /// Counts and logs a periodic snapshot's outcome. A snapshot that did
    /// not happen because the job is stopping or busy with a command is no
    /// failure; any other error is, and after `snapshot_failures_max` in a
    /// row the job fails with the cause (`Err`).
    fn account_snapshot(&self, result: Result<PathBuf, EddyError>) -> Result<(), EddyError> {
        let error = match result {
            Ok(path) => {
                let mut state = self.control.state.lock();
                state.stats.failed_in_a_row = 0;
                tracing::debug!(job = %self.name, snapshot = state.stats.last_id, path = %path.display(), "snapshot complete");
                return Ok(());
            }
            Err(EddyError::JobState(why)) => {
                tracing::debug!(job = %self.name, reason = %why, "snapshot skipped");
                return Ok(());
            }
            Err(e) => e,
        };
        let mut state = self.control.state.lock();
        let stats = &mut state.stats;
        stats.failed += 1;
        stats.failed_in_a_row += 1;
        stats.last_failure = Some(error.to_string());
        let in_a_row = stats.failed_in_a_row;
        let max = self.spec.config.snapshot_failures_max.max(1);
        tracing::warn!(job = %self.name, error = %error, failed_in_a_row = in_a_row, max, "snapshot failed");
        if in_a_row >= max {
            return Err(EddyError::SnapshotFailed(format!(
                "job '{}': {in_a_row} snapshots failed in a row, the latest with: {error}; fix the cause (disk space, permissions of the snapshot directory) and resume the job from its latest complete snapshot by submitting it again under the same name",
                self.name
            )));
        }
        Ok(())
    }

    fn clear_snapshots(&self) {
        if let Some(store) = &self.store {
            store.clear();
        }
    }

    fn run(mut self, first: Result<Arc<Execution>, EddyError>) {
        let mut next = Some(first);
        let mut restarts = 0;
        while let Some(started) = next.take() {
            let execution = match started {
                Ok(e) => e,
                Err(e) => return self.set_status(JobStatus::Failed, Some(e)),
            };
            let interval = self.spec.config.snapshot_interval;
            let takes_snapshots = execution.snapshots.is_some();
            let mut snapshot_at = takes_snapshots.then(|| Instant::now() + interval);
            loop {
                match self.wait(&execution, snapshot_at) {
                    Wake::Ended => {
                        let failure = execution.failure.lock().take();
                        match failure {
                            None => {
                                self.clear_snapshots();
                                return self.set_status(JobStatus::Completed, None);
                            }
                            Some(error) if restarts < self.spec.config.max_restarts => {
                                restarts += 1;
                                tracing::warn!(
                                    job = %self.name,
                                    error = %error,
                                    restart = restarts,
                                    max_restarts = self.spec.config.max_restarts,
                                    "execution failed; restarting from the latest snapshot"
                                );
                                std::thread::sleep(self.spec.config.restart_backoff);
                                if let Err(e) = self.prepare_restart() {
                                    return self.set_status(JobStatus::Failed, Some(e));
                                }
                                // Kept as the cause of the restart.
                                self.control.state.lock().error = Some(error);
                                next = Some(self.start_execution());
                            }
                            Some(error) => {
                                return self.set_status(JobStatus::Failed, Some(error));
                            }
                        }
                        break;
                    }
                    Wake::SnapshotDue => {
                        // A snapshot that fails (a full disk) is not yet the
                        // job's failure: the next one may succeed, and
                        // recovery uses the last complete one. Too many in
                        // a row are.
                        let result = self.take_snapshot(&execution, false);
                        if let Err(cause) = self.account_snapshot(result) {
                            self.stop_and_wait(&execution);
                            return self.set_status(JobStatus::Failed, Some(cause));
                        }
                        snapshot_at = Some(Instant::now() + interval);
                    }
                    Wake::Command(Command::Cancel) => {
                        self.stop_and_wait(&execution);
                        self.clear_snapshots();
                        return self.set_status(JobStatus::Cancelled, None);
                    }
                    Wake::Command(Command::Shutdown) => {
                        self.stop_and_wait(&execution);
                        return self.set_status(JobStatus::Cancelled, None);
                    }
                    Wake::Command(Command::Restart) => {
                        tracing::info!(job = %self.name, "restart requested; restarting from the latest snapshot");
                        self.stop_and_wait(&execution);
                        if let Err(e) = self.prepare_restart() {
                            return self.set_status(JobStatus::Failed, Some(e));
                        }
                        next = Some(self.start_execution());
                        break;
                    }
                    Wake::Command(Command::Suspend) => {
                        if takes_snapshots {
                            // Without its terminal snapshot the job resumes
                            // from the latest complete one, which its
                            // guarantee covers: logged and counted, not fatal.
                            let result = self.take_snapshot(&execution, true);
                            if let Err(cause) = self.account_snapshot(result) {
                                tracing::warn!(job = %self.name, error = %cause, "suspended without a terminal snapshot");
                            }
                        }
                        self.stop_and_wait(&execution);
                        self.set_status(JobStatus::Suspended, None);
                        match self.wait_while_suspended() {
                            Some(Command::Resume) => {
                                if let Err(e) = self.prepare_restart() {
                                    return self.set_status(JobStatus::Failed, Some(e));
                                }
                                next = Some(self.start_execution());
                                break;
                            }
                            Some(Command::Shutdown) => {
                                return self.set_status(JobStatus::Cancelled, None);
                            }
                            _ => {
                                self.clear_snapshots();
                                return self.set_status(JobStatus::Cancelled, None);
                            }
                        }
                    }
                    Wake::Command(Command::Resume) => {}
                    Wake::Command(Command::Export {
                        name,
                        terminal,
                        reply,
                    }) => {
                        let result = exported_snapshot_path(&self.root, &name).and_then(|target| {
                            let path = self.take_snapshot(&execution, terminal)?;
                            export_snapshot_file(&path, &target)?;
                            Ok(target)
                        });
                        let _ = reply.send(result);
                        if terminal {
                            self.stop_and_wait(&execution);
                            self.clear_snapshots();
                            return self.set_status(JobStatus::Cancelled, None);
                        }
                    }
                }
            }
        }
    }

    /// Waits for resume or cancel; other commands are ignored meanwhile.
    fn wait_while_suspended(&self) -> Option<Command> {
        let mut state = self.control.state.lock();
        loop {
            while let Some(c) = state.commands.pop_front() {
                match c {
                    Command::Resume | Command::Cancel | Command::Shutdown => return Some(c),
                    Command::Export { reply, .. } => {
                        let _ = reply.send(Err(EddyError::JobState(format!(
                            "job '{}' is suspended: resume it to export a snapshot",
                            self.name
                        ))));
                    }
                    Command::Suspend | Command::Restart => {}
                }
            }
            self.control.changed.wait(&mut state);
        }
    }
}
