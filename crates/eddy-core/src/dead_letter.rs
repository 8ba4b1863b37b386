//! Dead letters: items a stage could not process, and where they go.
//!
//! A user function that returns an error for one item (the fallible stages
//! `try_map`, `try_filter`, `try_flat_map`) or panics on it fails the job
//! under [`ErrorPolicy::Fail`]. Under [`ErrorPolicy::DeadLetter`] the item
//! goes, with the stage's name and the error, to the job's [`DeadLetters`]
//! (the log by default; a grid map, a Kafka topic or a function of one's
//! own when the job says so), is counted, and the job goes on: one bad
//! record never ends a job, and none is lost silently.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a fallible stage does with an item it could not process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorPolicy {
    /// Fail the job with the error (and restart it, if the job restarts).
    #[default]
    Fail,
    /// Send the item to the job's dead letters, count it, and go on.
    DeadLetter,
}

impl ErrorPolicy {
    /// Parses `fail` or `dead-letter`.
    pub fn parse(text: &str) -> Result<ErrorPolicy, String> {
        match text {
            "fail" => Ok(ErrorPolicy::Fail),
            "dead-letter" | "dead_letter" => Ok(ErrorPolicy::DeadLetter),
            other => Err(format!(
                "'{other}' is not an error policy: use fail or dead-letter"
            )),
        }
    }
}

/// Longest item description kept in a dead letter, in bytes: enough to
/// recognise a record, bounded so that a huge item cannot flood the sink.
pub const DEAD_LETTER_ITEM_BYTES_MAX: usize = 1024;

/// An item a stage could not process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// The job.
    pub job: String,
    /// The stage (vertex) whose function failed.
    pub stage: String,
    /// The error the function returned, or its panic message.
    pub error: String,
    /// The item, as its `Debug` form, cut at
    /// [`DEAD_LETTER_ITEM_BYTES_MAX`] bytes.
    pub item: String,
    /// The item's event time, ms, if it has one.
    pub ts: Option<i64>,
}

impl DeadLetter {
    /// A dead letter for `item` failing in `stage` of `job` with `error`.
    pub fn new(
        job: &str,
        stage: &str,
        error: String,
        item: &dyn fmt::Debug,
        ts: Option<i64>,
    ) -> Self {
        let mut item = format!("{item:?}");
        if item.len() > DEAD_LETTER_ITEM_BYTES_MAX {
            let mut cut = DEAD_LETTER_ITEM_BYTES_MAX;
            while !item.is_char_boundary(cut) {
                cut -= 1;
            }
            item.truncate(cut);
            item.push('…');
        }
        DeadLetter {
            job: job.to_string(),
            stage: stage.to_string(),
            error,
            item,
            ts,
        }
    }
}

type Target = Arc<dyn Fn(&DeadLetter) -> Result<(), String> + Send + Sync>;

/// Where a job's dead letters go, with their count.
///
/// Thread safety: cheap to clone and shared by every instance of every
/// stage of a job; `send` takes `&self` and may be called from any worker.
/// It is off the hot path: only items that failed reach it.
#[derive(Clone)]
pub struct DeadLetters {
    target: Target,
    what: &'static str,
    count: Arc<AtomicU64>,
}

impl Default for DeadLetters {
    /// The log: each dead letter is logged (`tracing` warn level, which the
    /// binary shows) and counted.
    fn default() -> Self {
        DeadLetters::log()
    }
}

impl fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetters")
            .field("target", &self.what)
            .field("count", &self.count())
            .finish()
    }
}

impl DeadLetters {
    /// Dead letters logged as warnings and counted.
    pub fn log() -> Self {
        DeadLetters {
            target: Arc::new(|_| Ok(())),
            what: "log",
            count: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Dead letters handed to `target` (a grid map's put, a producer's
    /// send, a test's collection). An `Err` from it fails the job: a dead
    /// letter that cannot be kept is not dropped silently.
    pub fn to(target: impl Fn(&DeadLetter) -> Result<(), String> + Send + Sync + 'static) -> Self {
        DeadLetters {
            target: Arc::new(target),
            what: "function",
            count: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Keeps `letter`: logs it at a rate limit (the first, then one line per
    /// power of two, so that a stream of bad records does not flood the
    /// log), hands it to the target and counts it.
    pub fn send(&self, letter: DeadLetter) -> Result<(), String> {
        (self.target)(&letter)?;
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(
                job = %letter.job,
                stage = %letter.stage,
                error = %letter.error,
                item = %letter.item,
                dead_letters = n,
                "an item could not be processed and went to the dead letters"
            );
        }
        Ok(())
    }

    /// Dead letters kept so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// A handle with the same target and a count of its own, for the next
    /// execution or job that shares a target but counts apart.
    pub fn fresh(&self) -> Self {
        DeadLetters {
            target: self.target.clone(),
            what: self.what,
            count: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// The message of a caught panic, for a dead letter or an error.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_string()
    }
}
