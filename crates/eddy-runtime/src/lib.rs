//! Eddy's executor: the layer that runs jobs.
//!
//! A job's [`Dag`] becomes tasklets, one per processor instance, connected by
//! bounded queues of batches ([`queue::BatchQueue`]). An [`Eddy`] instance owns
//! the cooperative worker threads (one per core by default) that loop over
//! the tasklets of all jobs, and starts a thread of its own for each
//! processor that declares itself non-cooperative. Backpressure is the queues
//! being bounded: a tasklet whose downstream queue is full is not called
//! until it drains.
//!
//! ```
//! use eddy_core::{Inbox, Outbox, Processor, ProcessorError};
//! use eddy_runtime::{Dag, Eddy, EddyConfig, JobConfig, Routing};
//! use std::sync::{Arc, Mutex};
//!
//! /// Emits 0..n, then finishes.
//! struct Count { next: u64, n: u64 }
//! impl Processor for Count {
//!     type In = ();
//!     type Out = u64;
//!     fn process<O: Outbox<u64>>(&mut self, _: usize, _: &mut Inbox<()>, _: &mut O) -> Result<(), ProcessorError> { Ok(()) }
//!     fn complete<O: Outbox<u64>>(&mut self, out: &mut O) -> Result<bool, ProcessorError> {
//!         while self.next < self.n && out.offer(self.next).is_ok() { self.next += 1; }
//!         Ok(self.next == self.n)
//!     }
//! }
//! /// Adds up what it receives.
//! struct Sum(Arc<Mutex<u64>>);
//! impl Processor for Sum {
//!     type In = u64;
//!     type Out = ();
//!     fn process<O: Outbox<()>>(&mut self, _: usize, inbox: &mut Inbox<u64>, _: &mut O) -> Result<(), ProcessorError> {
//!         let mut sum = self.0.lock().unwrap();
//!         while let Some(x) = inbox.poll() { *sum += x; }
//!         Ok(())
//!     }
//! }
//!
//! let total = Arc::new(Mutex::new(0));
//! let mut dag = Dag::new();
//! let source = dag.vertex("count", |_| Count { next: 0, n: 1000 });
//! dag.set_parallelism(source, 1);
//! let t = total.clone();
//! let sink = dag.vertex("sum", move |_| Sum(t.clone()));
//! dag.edge(source, sink, Routing::unicast());
//!
//! let eddy = Eddy::new(EddyConfig::with_threads(2));
//! eddy.submit(dag, JobConfig::default()).unwrap().join().unwrap();
//! assert_eq!(*total.lock().unwrap(), 999 * 1000 / 2);
//! ```

#![forbid(unsafe_code)]

mod dag;
mod job;
pub mod metrics;
pub mod queue;
mod routing;
pub mod snapshot;
mod tasklet;
mod worker;

pub use dag::{AnyInput, Dag, DagView, VertexRef};
pub use eddy_core::Guarantee;
pub use job::{Job, JobConfig, JobStatus};
pub use metrics::VertexMetrics;
pub use queue::QueueLimits;
pub use routing::{Router, Routing, RoutingKind};
pub use snapshot::SnapshotStats;

use eddy_core::EddyError;
use job::{Execution, JobSpec};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use worker::{TaskletEntry, WorkerInbox};

/// Anything that can be turned into a DAG: a [`Dag`] itself, or a pipeline.
pub trait IntoDag {
    /// Builds the DAG; errors name the stage and the fix.
    fn into_dag(self) -> Result<Dag, EddyError>;
}

impl IntoDag for Dag {
    fn into_dag(self) -> Result<Dag, EddyError> {
        Ok(self)
    }
}

/// Settings of an [`Eddy`] instance.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EddyConfig {
    /// Number of cooperative worker threads; defaults to the number of cores.
    pub cooperative_threads: usize,
    /// Where jobs keep their snapshots unless their config says otherwise
    /// (`<dir>/<job name>/`, and exported ones in `<dir>/exported/`).
    /// Defaults to `eddy-snapshots` in the system's temporary directory.
    pub snapshot_dir: PathBuf,
}

impl Default for EddyConfig {
    fn default() -> Self {
        EddyConfig {
            cooperative_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            snapshot_dir: std::env::temp_dir().join("eddy-snapshots"),
        }
    }
}

impl EddyConfig {
    /// The default settings with `n` cooperative worker threads.
    pub fn with_threads(n: usize) -> Self {
        EddyConfig {
            cooperative_threads: n,
            ..EddyConfig::default()
        }
    }
}

/// Hands tasklets to the worker threads; shared by the instance and the
/// jobs' supervisors, which schedule the tasklets of restarted executions.
pub(crate) struct Scheduler {
    workers: Vec<(Arc<WorkerInbox>, JoinHandle<()>)>,
    next_worker: AtomicUsize,
    dedicated: Mutex<Vec<JoinHandle<()>>>,
}

impl Scheduler {
    pub(crate) fn schedule(
        &self,
        tasklets: Vec<Box<dyn tasklet::Tasklet>>,
        execution: &Arc<Execution>,
    ) {
        for tasklet in tasklets {
            let entry = TaskletEntry::new(tasklet, execution.clone());
            if entry.tasklet.is_cooperative() {
                let w = self.next_worker.fetch_add(1, Ordering::Relaxed) % self.workers.len();
                self.workers[w].0.add(entry);
            } else {
                let handle = worker::spawn_dedicated(entry);
                let mut dedicated = self.dedicated.lock();
                // Reap the threads of finished tasklets as new ones come.
                dedicated.retain(|h| !h.is_finished());
                dedicated.push(handle);
            }
        }
    }
}

/// An Eddy instance: worker threads and the jobs running on them.
///
/// Thread safety: all methods take `&self` and may be called from any
/// thread. Dropping the instance cancels its running jobs and joins its
/// threads.
pub struct Eddy {
    scheduler: Arc<Scheduler>,
    next_job_id: AtomicU64,
    jobs: Mutex<Vec<Job>>,
    supervisors: Mutex<Vec<JoinHandle<()>>>,
    config: EddyConfig,
}

impl Eddy {
    /// Starts the worker threads.
    pub fn new(config: EddyConfig) -> Self {
        let n = config.cooperative_threads.max(1);
        Eddy {
            scheduler: Arc::new(Scheduler {
                workers: (0..n).map(worker::spawn_cooperative).collect(),
                next_worker: AtomicUsize::new(0),
                dedicated: Mutex::new(Vec::new()),
            }),
            next_job_id: AtomicU64::new(1),
            jobs: Mutex::new(Vec::new()),
            supervisors: Mutex::new(Vec::new()),
            config,
        }
    }

    /// Number of cooperative worker threads: the default parallelism.
    pub fn cooperative_threads(&self) -> usize {
        self.scheduler.workers.len()
    }

    /// The settings this instance was started with.
    pub fn config(&self) -> &EddyConfig {
        &self.config
    }

    /// Submits a job and starts it. With a guarantee that takes snapshots,
    /// a job named like one whose snapshots are on disk (it failed, or its
    /// process died) resumes from the latest of them.
    pub fn submit(&self, job: impl IntoDag, config: JobConfig) -> Result<Job, EddyError> {
        let dag = job.into_dag()?;
        let id = self.next_job_id.fetch_add(1, Ordering::Relaxed);
        let name = config.name.clone().unwrap_or_else(|| format!("job-{id}"));
        let parallelism = config
            .parallelism
            .unwrap_or(self.scheduler.workers.len())
            .max(1);
        let spec = JobSpec {
            dag,
            config,
            parallelism,
            snapshot_root: self.config.snapshot_dir.clone(),
        };
        let (job, supervisor) = job::start(id, name, spec, self.scheduler.clone())?;
        self.jobs.lock().push(job.clone());
        let mut supervisors = self.supervisors.lock();
        supervisors.retain(|h| !h.is_finished());
        supervisors.push(supervisor);
        Ok(job)
    }

    /// All jobs submitted to this instance, oldest first.
    pub fn jobs(&self) -> Vec<Job> {
        self.jobs.lock().clone()
    }

    /// The job with this id.
    pub fn job(&self, id: u64) -> Option<Job> {
        self.jobs.lock().iter().find(|j| j.id() == id).cloned()
    }
}

impl Drop for Eddy {
    fn drop(&mut self) {
        for job in self.jobs.lock().iter() {
            job.shutdown();
        }
        for handle in self.supervisors.lock().drain(..) {
            let _ = handle.join();
        }
        for (inbox, _) in &self.scheduler.workers {
            worker::shutdown(inbox);
        }
        if let Some(scheduler) = Arc::get_mut(&mut self.scheduler) {
            for (_, handle) in scheduler.workers.drain(..) {
                let _ = handle.join();
            }
        }
        for handle in self.scheduler.dedicated.lock().drain(..) {
            let _ = handle.join();
        }
    }
}
