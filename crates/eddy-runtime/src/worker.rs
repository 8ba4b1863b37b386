//! Worker threads: cooperative workers looping over their tasklets, and
//! dedicated threads for non-cooperative ones.

use crate::job::Execution;
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
    initialised: bool,
}

impl TaskletEntry {
    pub(crate) fn new(tasklet: Box<dyn Tasklet>, job: Arc<Execution>) -> Self {
        TaskletEntry {
            tasklet,
            job,
            initialised: false,
        }
    }

    /// Runs one call, turning errors and panics into a job failure. Returns
    /// `None` when the tasklet is finished (done, failed or its job stopped).
    fn run_once(&mut self) -> Option<bool> {
        if self.job.stopping.load(Ordering::Acquire) {
            return None;
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            if !self.initialised {
                self.initialised = true;
                self.tasklet.bind_thread(&std::thread::current());
                self.tasklet.init()?;
            }
            self.tasklet.call()
        }));
        let failure = match result {
            Ok(Ok(Progress::Done)) => return None,
            Ok(Ok(progress)) => return Some(progress == Progress::Made),
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

/// Backing off when there is nothing to do: spin a little, yield a little,
/// then sleep until something can happen.
///
/// Spinning keeps the reaction time to input that arrives in quick
/// succession in the tens of nanoseconds; yielding lets the thread that
/// produces it run. Then the worker parks: queues unpark it when data or
/// room arrives, the processors' wakers when their I/O threads hand over
/// data, and the park times out at the earliest deadline a processor
/// reported ([`Tasklet::wake_at_ms`], a rate-limited source's next item),
/// so that an idle or lightly loaded job costs (nearly) no CPU instead of a
/// core per worker.
struct IdleStrategy {
    idle_rounds: u32,
}

/// Rounds of `spin_loop` after the last progress: about a microsecond.
const SPIN_ROUNDS: u32 = 32;
/// Rounds of `yield_now` after spinning: a few system calls, enough for a
/// producer on the other core to finish a batch.
const YIELD_ROUNDS: u32 = 8;
/// The longest a worker with tasklets sleeps when no processor reported a
/// deadline and nothing woke it: what a wake-up that no queue or waker
/// delivers (a snapshot request, a cancelled job, a timer a processor does
/// not report) can cost in latency, against idle CPU (one pass over the
/// tasklets per timeout: 200 passes a second cost well under 1% of a core).
const PARK_MAX: Duration = Duration::from_millis(5);

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
        } else if n < SPIN_ROUNDS + YIELD_ROUNDS {
            std::thread::yield_now();
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

/// The earliest deadline any of `tasklets` reported.
fn earliest_deadline(tasklets: &[TaskletEntry]) -> Option<i64> {
    tasklets.iter().filter_map(|t| t.tasklet.wake_at_ms()).min()
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
    loop {
        if inbox.has_incoming.swap(false, Ordering::AcqRel) {
            tasklets.append(&mut inbox.incoming.lock());
        }
        let mut progressed = false;
        let mut i = 0;
        while i < tasklets.len() {
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
            idle.idle(|| earliest_deadline(&tasklets));
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
