//! Worker threads: cooperative workers looping over their tasklets, and
//! dedicated threads for non-cooperative ones.

use crate::job::Execution;
use crate::queue::Signal;
use crate::tasklet::{Progress, Tasklet};
use eddy_core::EddyError;
use parking_lot::Mutex;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

/// A tasklet and the job it belongs to.
pub(crate) struct TaskletEntry {
    pub(crate) tasklet: Box<dyn Tasklet>,
    pub(crate) job: Arc<Execution>,
    /// Raised by whatever gives the tasklet work; `None` until it runs.
    signal: Option<Arc<Signal>>,
    /// Whether its last call made progress: it is called again at once.
    busy: bool,
    /// When its processor next needs a call, as reported after a call that
    /// made no progress (ms since the epoch).
    deadline_ms: Option<i64>,
}

impl TaskletEntry {
    pub(crate) fn new(tasklet: Box<dyn Tasklet>, job: Arc<Execution>) -> Self {
        TaskletEntry {
            tasklet,
            job,
            signal: None,
            busy: true,
            deadline_ms: None,
        }
    }

    /// Whether the tasklet should be called in this pass: it has not run
    /// yet, made progress last time, was signalled, or its deadline came.
    fn wants_call(&self, now_ms: i64) -> bool {
        let signalled = self.signal.as_ref().is_none_or(|s| s.take());
        signalled || self.busy || self.deadline_ms.is_some_and(|d| d <= now_ms)
    }

    /// Runs one call, turning errors and panics into a job failure. Returns
    /// `None` when the tasklet is finished (done, failed or its job stopped).
    fn run_once(&mut self) -> Option<bool> {
        if self.job.stopping.load(Ordering::Acquire) {
            return None;
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            if self.signal.is_none() {
                let signal = Signal::new(std::thread::current());
                self.tasklet.bind_signal(&signal);
                self.signal = Some(signal);
                self.tasklet.init()?;
            }
            self.tasklet.call()
        }));
        let failure = match result {
            Ok(Ok(Progress::Done)) => return None,
            Ok(Ok(progress)) => {
                self.busy = progress == Progress::Made;
                // A deadline that has already passed after a call that did
                // nothing would have the worker call the tasklet in a loop:
                // it counts from the next millisecond.
                self.deadline_ms = if self.busy {
                    None
                } else {
                    let soonest_ms = crate::metrics::now_ms() + 1;
                    self.tasklet.wake_at_ms().map(|d| d.max(soonest_ms))
                };
                return Some(self.busy);
            }
            Ok(Err(e)) => e.message,
            Err(panic) => panic_message(panic.as_ref()),
        };
        self.job.fail(EddyError::StageFailed {
            stage: self.tasklet.vertex_name().to_string(),
            cause: failure,
        });
        None
    }

    fn finish(mut self) {
        let _ = catch_unwind(AssertUnwindSafe(|| self.tasklet.close()));
        self.job.tasklet_finished();
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_string()
    }
}

/// Backing off when there is nothing to do: spin a little, then sleep
/// until something can happen.
///
/// Spinning keeps the reaction time to input that arrives in quick
/// succession in the tens of nanoseconds. (Yielding was tried and dropped:
/// on two cores `sched_yield` mostly switches to the other busy worker, a
/// fifth of the CPU of a lightly loaded node.) Then the worker parks: queues unpark it when data or
/// room arrives, the processors' wakers when their I/O threads hand over
/// data, and the park times out at the earliest deadline a processor
/// reported ([`Tasklet::wake_at_ms`], a rate-limited source's next item),
/// so that an idle or lightly loaded job costs (nearly) no CPU instead of a
/// core per worker.
struct IdleStrategy {
    idle_rounds: u32,
}

/// Passes without progress (each a `spin_loop` hint and a check of every
/// tasklet's signal) before the worker parks: a microsecond or two in
/// which input arriving in quick succession is taken without a park.
const SPIN_ROUNDS: u32 = 16;
/// The longest a worker with tasklets sleeps when no processor reported a
/// deadline and nothing woke it: what a wake-up that no queue or waker
/// delivers (a snapshot request, a cancelled job, a timer a processor does
/// not report) can cost in latency, against idle CPU (one pass over the
/// tasklets per timeout: 200 passes a second cost well under 1% of a core).
const PARK_MAX: Duration = Duration::from_millis(5);
/// How often a cooperative worker calls every tasklet, signalled or not:
/// the same bound as [`PARK_MAX`], for the same reason.
const SWEEP_INTERVAL_MS: i64 = PARK_MAX.as_millis() as i64;

impl IdleStrategy {
    fn progressed(&mut self) {
        self.idle_rounds = 0;
    }

    /// One round without progress; `deadline` gives the earliest time a
    /// processor needs a call (ms since the epoch), asked only before a
    /// park.
    fn idle(&mut self, deadline: impl FnOnce() -> Option<i64>) {
        let n = self.idle_rounds;
        self.idle_rounds = self.idle_rounds.saturating_add(1);
        if n < SPIN_ROUNDS {
            std::hint::spin_loop();
        } else {
            let wait = match deadline() {
                Some(at_ms) => {
                    let wait_ms = at_ms.saturating_sub(crate::metrics::now_ms());
                    if wait_ms <= 0 {
                        return;
                    }
                    Duration::from_millis(wait_ms as u64).min(PARK_MAX)
                }
                None => PARK_MAX,
            };
            std::thread::park_timeout(wait);
        }
    }
}

/// The earliest deadline any of `tasklets` reported, or the next sweep.
fn earliest_deadline(tasklets: &[TaskletEntry], next_sweep_ms: i64) -> i64 {
    tasklets
        .iter()
        .filter_map(|t| t.deadline_ms)
        .min()
        .map_or(next_sweep_ms, |d| d.min(next_sweep_ms))
}

/// The shared side of a cooperative worker: where new tasklets are handed in.
pub(crate) struct WorkerInbox {
    incoming: Mutex<Vec<TaskletEntry>>,
    has_incoming: AtomicBool,
    shutdown: AtomicBool,
    thread: Mutex<Option<Thread>>,
}

impl WorkerInbox {
    pub(crate) fn add(&self, entry: TaskletEntry) {
        self.incoming.lock().push(entry);
        self.has_incoming.store(true, Ordering::Release);
        if let Some(t) = self.thread.lock().as_ref() {
            t.unpark();
        }
    }
}

/// Starts a cooperative worker thread.
pub(crate) fn spawn_cooperative(index: usize) -> (Arc<WorkerInbox>, JoinHandle<()>) {
    let inbox = Arc::new(WorkerInbox {
        incoming: Mutex::new(Vec::new()),
        has_incoming: AtomicBool::new(false),
        shutdown: AtomicBool::new(false),
        thread: Mutex::new(None),
    });
    let shared = inbox.clone();
    let handle = std::thread::Builder::new()
        .name(format!("eddy-worker-{index}"))
        .spawn(move || {
            *shared.thread.lock() = Some(std::thread::current());
            cooperative_loop(&shared);
        })
        .expect("the OS refused to start a worker thread");
    (inbox, handle)
}

fn cooperative_loop(inbox: &WorkerInbox) {
    let mut tasklets: Vec<TaskletEntry> = Vec::new();
    let mut idle = IdleStrategy { idle_rounds: 0 };
    let mut next_sweep_ms = i64::MIN;
    loop {
        if inbox.has_incoming.swap(false, Ordering::AcqRel) {
            tasklets.append(&mut inbox.incoming.lock());
        }
        let now_ms = crate::metrics::now_ms();
        // Every few milliseconds every tasklet is called, for what nothing
        // signals (a snapshot request, a stopping job, a timer its
        // processor does not report).
        let sweep = now_ms >= next_sweep_ms;
        if sweep {
            next_sweep_ms = now_ms + SWEEP_INTERVAL_MS;
        }
        let mut progressed = false;
        let mut i = 0;
        while i < tasklets.len() {
            if !sweep && !tasklets[i].wants_call(now_ms) {
                i += 1;
                continue;
            }
            match tasklets[i].run_once() {
                Some(made) => {
                    progressed |= made;
                    i += 1;
                }
                None => {
                    tasklets.swap_remove(i).finish();
                    progressed = true;
                }
            }
        }
        if inbox.shutdown.load(Ordering::Acquire) {
            for t in tasklets.drain(..) {
                t.job.stop();
                t.finish();
            }
            return;
        }
        if progressed {
            idle.progressed();
        } else if tasklets.is_empty() {
            // Nothing to run: sleep until a tasklet is handed in or the
            // worker is shut down (both unpark it). A wake-up that came
            // before the park makes it return at once, so none is lost.
            idle.progressed();
            if !inbox.has_incoming.load(Ordering::Acquire)
                && !inbox.shutdown.load(Ordering::Acquire)
            {
                std::thread::park();
            }
        } else {
            idle.idle(|| Some(earliest_deadline(&tasklets, next_sweep_ms)));
        }
    }
}

/// Stops a cooperative worker: its remaining tasklets' jobs are cancelled.
pub(crate) fn shutdown(inbox: &WorkerInbox) {
    inbox.shutdown.store(true, Ordering::Release);
    if let Some(t) = inbox.thread.lock().as_ref() {
        t.unpark();
    }
}

/// Runs a non-cooperative tasklet on a thread of its own.
pub(crate) fn spawn_dedicated(mut entry: TaskletEntry) -> JoinHandle<()> {
    let name = format!("eddy-blocking-{}", entry.tasklet.vertex_name());
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let mut idle = IdleStrategy { idle_rounds: 0 };
            while let Some(made) = entry.run_once() {
                if made {
                    idle.progressed();
                } else {
                    idle.idle(|| entry.tasklet.wake_at_ms());
                }
            }
            entry.finish();
        })
        .expect("the OS refused to start a thread for a blocking processor")
}
