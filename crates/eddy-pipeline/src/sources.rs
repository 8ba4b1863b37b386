//! Sources: the processors a pipeline starts from.
//!
//! Snapshot: every source saves where it is as broadcast entries (a
//! position, a byte offset, the sequence numbers still to emit), and a
//! finished batch source saves that it is at the end, so that a restored
//! job does not read again what the snapshot's output already reflects.

use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter, BROADCAST};
use eddy_core::{Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::source_builder::{
    BuiltSource, BuiltSourceP, SourceBuffer, SourceBuilder, SourceBuilderWithFill,
    SOURCE_BUFFER_ITEMS_MAX,
};

/// Whether a source ends, as a type: [`Bounded`] or [`Unbounded`]. Stages
/// carry it through their stateless transforms, so that what needs a finite
/// input (the side input of [`hash_join`](crate::StreamStage::hash_join),
/// read to its end before the stream) refuses an endless one when the
/// pipeline is compiled by rustc, not when the job hangs.
pub trait Boundedness: 'static {}

/// The mark of a source that ends (a batch source).
pub enum Bounded {}

/// The mark of a source that may run forever (a stream source).
pub enum Unbounded {}

impl Boundedness for Bounded {}
impl Boundedness for Unbounded {}

/// A source of items of type `Out`: a factory of source processors.
///
/// A source processor has no inputs; its [`Processor::complete`] emits the
/// data and returns `true` only when a batch source is exhausted.
pub trait Source: Send + Sync + 'static {
    /// What it emits.
    type Out: Clone + Send + 'static;
    /// [`Bounded`] if it ends, [`Unbounded`] if it may run forever.
    type Bound: Boundedness;
    /// Its processor.
    type Processor: Processor<In = (), Out = Event<Self::Out>>;
    /// A name for the stage, used in metrics and errors.
    fn name(&self) -> String;
    /// Fixed number of instances, or `None` for the job's default.
    fn parallelism(&self) -> Option<usize> {
        None
    }
    /// Creates the processor of one instance.
    fn create(&self, ctx: &ProcessorContext) -> Self::Processor;
}

/// Constructors of the built-in sources.
pub struct Sources;

impl Sources {
    /// The items of a collection, then done (a batch source).
    pub fn items<T: Clone + Send + Sync + 'static>(items: Vec<T>) -> ItemsSource<T> {
        ItemsSource {
            items: Arc::new(items),
        }
    }

    /// An unbounded, deterministic stream: item `n` is `f(n)`. See
    /// [`GeneratorSource`] for rate limits, bounds and replay.
    pub fn generator<T, F>(f: F) -> GeneratorSource<F>
    where
        T: Clone + Send + 'static,
        F: Fn(u64) -> T + Clone + Send + Sync + 'static,
    {
        GeneratorSource {
            f,
            rate_per_sec: None,
            anchor_epoch_ms: None,
            start_seq: 0,
            end_seq: None,
            _bound: PhantomData,
        }
    }

    /// The lines of a file, then done.
    pub fn file_lines(path: impl Into<PathBuf>) -> FileSource<Bounded> {
        FileSource {
            path: path.into(),
            tail: false,
            _bound: PhantomData,
        }
    }

    /// The lines of a file, including lines appended later, forever (like
    /// `tail -f`).
    pub fn tail_file(path: impl Into<PathBuf>) -> FileSource<Unbounded> {
        FileSource {
            path: path.into(),
            tail: true,
            _bound: PhantomData,
        }
    }
}

/// See [`Sources::items`].
pub struct ItemsSource<T> {
    items: Arc<Vec<T>>,
}

impl<T: Clone + Send + Sync + 'static> Source for ItemsSource<T> {
    type Out = T;
    type Bound = Bounded;
    type Processor = ItemsP<T>;
    fn name(&self) -> String {
        "items".into()
    }
    fn parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn create(&self, _ctx: &ProcessorContext) -> ItemsP<T> {
        ItemsP {
            items: self.items.clone(),
            next: 0,
        }
    }
}

/// The processor of [`Sources::items`].
pub struct ItemsP<T> {
    items: Arc<Vec<T>>,
    next: usize,
}

impl<T> ItemsP<T> {
    /// Emits `items`, then finishes.
    pub fn new(items: Arc<Vec<T>>) -> Self {
        ItemsP { items, next: 0 }
    }
}

impl<T: Clone + Send + Sync + 'static> Processor for ItemsP<T> {
    type In = ();
    type Out = Event<T>;
    fn process<O: Outbox<Event<T>>>(
        &mut self,
        _: usize,
        _: &mut Inbox<()>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }
    fn complete<O: Outbox<Event<T>>>(&mut self, outbox: &mut O) -> Result<bool, ProcessorError> {
        while self.next < self.items.len() && outbox.has_room() {
            outbox.offer_granted(Event::untimed(self.items[self.next].clone()));
            self.next += 1;
        }
        Ok(self.next == self.items.len())
    }

    fn save_to_snapshot(
        &mut self,
        _: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        writer.put(BROADCAST, POSITION, &(self.next as u64))
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let next: u64 = entry.value()?;
        if next > self.items.len() as u64 {
            return Err(ProcessorError::new(format!(
                "the snapshot's position {next} is beyond the source's {} items: restore it into a job reading the same items",
                self.items.len()
            )));
        }
        self.next = next as usize;
        Ok(())
    }
}

/// The key of the entry a single-instance source saves its position under.
const POSITION: &str = "position";

/// See [`Sources::generator`]; [`limit`](Self::limit) makes it
/// [`Bounded`].
pub struct GeneratorSource<F, B = Unbounded> {
    f: F,
    rate_per_sec: Option<f64>,
    anchor_epoch_ms: Option<i64>,
    start_seq: u64,
    end_seq: Option<u64>,
    _bound: PhantomData<fn() -> B>,
}

impl<F: Clone, B> Clone for GeneratorSource<F, B> {
    fn clone(&self) -> Self {
        GeneratorSource {
            f: self.f.clone(),
            rate_per_sec: self.rate_per_sec,
            anchor_epoch_ms: self.anchor_epoch_ms,
            start_seq: self.start_seq,
            end_seq: self.end_seq,
            _bound: PhantomData,
        }
    }
}

impl<F, B> GeneratorSource<F, B> {
    /// Emits at most `per_sec` items per second in total (open loop: an
    /// instance that falls behind catches up as fast as it can).
    pub fn rate(mut self, per_sec: f64) -> Self {
        self.rate_per_sec = Some(per_sec);
        self
    }

    /// Schedules item `start_seq` at this wall-clock time (ms since the
    /// epoch) instead of at the first call, so that an item's scheduled
    /// time is known outside the job (latency measurements).
    pub fn anchored_at_epoch_ms(mut self, epoch_ms: i64) -> Self {
        self.anchor_epoch_ms = Some(epoch_ms);
        self
    }

    /// Stops after `count` items in total: a batch source.
    pub fn limit(self, count: u64) -> GeneratorSource<F, Bounded> {
        GeneratorSource {
            end_seq: Some(self.start_seq + count),
            f: self.f,
            rate_per_sec: self.rate_per_sec,
            anchor_epoch_ms: self.anchor_epoch_ms,
            start_seq: self.start_seq,
            _bound: PhantomData,
        }
    }

    /// The same source typed as [`Unbounded`], for code that decides at run
    /// time whether to [`limit`](Self::limit) it.
    pub fn into_unbounded(self) -> GeneratorSource<F, Unbounded> {
        GeneratorSource {
            f: self.f,
            rate_per_sec: self.rate_per_sec,
            anchor_epoch_ms: self.anchor_epoch_ms,
            start_seq: self.start_seq,
            end_seq: self.end_seq,
            _bound: PhantomData,
        }
    }

    /// Starts at sequence number `seq` (replay from there).
    pub fn start_at(mut self, seq: u64) -> Self {
        let count = self.end_seq.map(|e| e - self.start_seq);
        self.start_seq = seq;
        self.end_seq = count.map(|c| seq + c);
        self
    }
}

impl<T, F, B> Source for GeneratorSource<F, B>
where
    T: Clone + Send + 'static,
    F: Fn(u64) -> T + Clone + Send + Sync + 'static,
    B: Boundedness,
{
    type Out = T;
    type Bound = B;
    type Processor = GeneratorP<F>;
    fn name(&self) -> String {
        "generator".into()
    }
    fn create(&self, ctx: &ProcessorContext) -> GeneratorP<F> {
        GeneratorP {
            f: self.f.clone(),
            runs: vec![Run {
                next: self.start_seq + ctx.instance as u64,
                step: ctx.parallelism.max(1) as u64,
            }],
            start_seq: self.start_seq,
            end_seq: self.end_seq,
            rate_per_sec: self.rate_per_sec,
            anchor_epoch_ms: self.anchor_epoch_ms,
            started: None,
            instance: ctx.instance,
            parallelism: ctx.parallelism.max(1),
            restored: Vec::new(),
        }
    }
}

/// Sequence numbers `next, next + step, next + 2 step, …`: what one
/// generator instance still has to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Run {
    next: u64,
    step: u64,
}

/// The processor of [`Sources::generator`]: instance `i` of `n` emits the
/// sequence numbers `i, i + n, i + 2n, …`.
///
/// Snapshot: each instance saves its runs. A job restored at the same
/// parallelism gives each instance its own runs back; at another one, the
/// runs of all old instances are dealt out in turn (run `k` to instance `k %
/// parallelism`), and an instance with several emits them merged in order.
/// So nothing is emitted twice or skipped at any parallelism, though after
/// scaling up only as many instances work as there were runs. A restored
/// rate limit resumes its schedule at the lowest sequence number not
/// emitted yet (unless anchored at a wall-clock time, which stays).
pub struct GeneratorP<F> {
    f: F,
    /// Runs to emit, merged in sequence order; one unless restored from
    /// several old instances.
    runs: Vec<Run>,
    /// The sequence number the rate schedule counts from.
    start_seq: u64,
    end_seq: Option<u64>,
    rate_per_sec: Option<f64>,
    anchor_epoch_ms: Option<i64>,
    started: Option<Instant>,
    instance: usize,
    parallelism: usize,
    /// Runs read from a snapshot, with the old instance that saved them;
    /// dealt out once all entries are read.
    restored: Vec<(u64, Vec<Run>)>,
}

impl<F> GeneratorP<F> {
    /// The first sequence number (of all instances) not yet due by the rate.
    fn due_seq(&mut self) -> u64 {
        let Some(rate) = self.rate_per_sec else {
            return u64::MAX;
        };
        let elapsed_secs = match self.anchor_epoch_ms {
            Some(anchor) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                (now - anchor as f64 / 1000.0).max(0.0)
            }
            None => self
                .started
                .get_or_insert_with(Instant::now)
                .elapsed()
                .as_secs_f64(),
        };
        self.start_seq + (elapsed_secs * rate) as u64
    }

    /// Whether every run reached the end.
    fn exhausted(&self) -> bool {
        self.end_seq
            .is_some_and(|end| self.runs.iter().all(|r| r.next >= end))
    }
}

impl<T, F> Processor for GeneratorP<F>
where
    T: Clone + Send + 'static,
    F: Fn(u64) -> T + Send + 'static,
{
    type In = ();
    type Out = Event<T>;
    fn process<O: Outbox<Event<T>>>(
        &mut self,
        _: usize,
        _: &mut Inbox<()>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }
    /// A rate-limited generator sleeps until its next item is due, rounded
    /// up to a whole millisecond: at most a thousand wake-ups a second, each
    /// emitting what came due, for at most a millisecond of added latency.
    fn wake_at_ms(&self) -> Option<i64> {
        let rate = self.rate_per_sec?;
        let next = self.runs.iter().map(|r| r.next).min()?;
        if self.end_seq.is_some_and(|end| next >= end) {
            return None;
        }
        let start_ms = match (self.anchor_epoch_ms, self.started) {
            (Some(anchor), _) => anchor as f64,
            (None, Some(started)) => {
                eddy_runtime::metrics::now_ms() as f64 - started.elapsed().as_secs_f64() * 1000.0
            }
            // Not started: the next call starts the schedule.
            (None, None) => return None,
        };
        let due_ms = start_ms + (next.saturating_sub(self.start_seq)) as f64 * 1000.0 / rate;
        // One more millisecond: the schedule runs on the monotonic clock,
        // the deadline on the wall clock read to the millisecond, and a
        // deadline a fraction early would wake the worker before anything
        // is due.
        Some(due_ms.ceil() as i64 + 1)
    }

    fn complete<O: Outbox<Event<T>>>(&mut self, outbox: &mut O) -> Result<bool, ProcessorError> {
        let due = self.due_seq().min(self.end_seq.unwrap_or(u64::MAX));
        if let [run] = self.runs.as_mut_slice() {
            while run.next < due && outbox.has_room() {
                outbox.offer_granted(Event::untimed((self.f)(run.next)));
                run.next += run.step;
            }
        } else {
            // Restored from several instances: the lowest first.
            while outbox.has_room() {
                let Some(run) = self.runs.iter_mut().min_by_key(|r| r.next) else {
                    break;
                };
                if run.next >= due {
                    break;
                }
                outbox.offer_granted(Event::untimed((self.f)(run.next)));
                run.next += run.step;
            }
        }
        Ok(self.exhausted())
    }

    fn save_to_snapshot(
        &mut self,
        _: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        writer.put(BROADCAST, &(self.instance as u64), &self.runs)
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let (instance, runs) = entry.decode()?;
        self.restored.push((instance, runs));
        Ok(())
    }

    fn finish_snapshot_restore(&mut self) -> Result<(), ProcessorError> {
        if self.restored.is_empty() {
            return Ok(());
        }
        self.restored.sort_by_key(|(instance, _)| *instance);
        let all: Vec<Run> = std::mem::take(&mut self.restored)
            .into_iter()
            .flat_map(|(_, runs)| runs)
            .collect();
        // Every instance resumes the rate schedule from the same point: the
        // lowest sequence number no instance has emitted. An anchored
        // schedule is fixed in wall-clock time and stays.
        if self.anchor_epoch_ms.is_none() {
            if let Some(lowest) = all.iter().map(|r| r.next).min() {
                self.start_seq = lowest;
            }
            self.started = None;
        }
        let (me, n) = (self.instance, self.parallelism);
        self.runs = all
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % n == me)
            .map(|(_, run)| run)
            .collect();
        Ok(())
    }
}

/// See [`Sources::file_lines`] and [`Sources::tail_file`].
pub struct FileSource<B> {
    path: PathBuf,
    tail: bool,
    _bound: PhantomData<fn() -> B>,
}

impl<B: Boundedness> Source for FileSource<B> {
    type Out = String;
    type Bound = B;
    type Processor = FileP;
    fn name(&self) -> String {
        format!("file:{}", self.path.display())
    }
    fn parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn create(&self, _ctx: &ProcessorContext) -> FileP {
        FileP {
            path: self.path.clone(),
            tail: self.tail,
            reader: None,
            line: String::new(),
            offset: 0,
        }
    }
}

/// How long a tailing file source waits for more data at the end of the
/// file before it checks again: short enough for interactive latency, long
/// enough not to spin on an idle file. It has a thread of its own, so the
/// wait blocks no one else.
const TAIL_POLL: Duration = Duration::from_millis(20);

/// The processor of the file sources; blocking file I/O, so non-cooperative.
///
/// Snapshot: the byte offset of the first line not emitted; a restored
/// source seeks there.
pub struct FileP {
    path: PathBuf,
    tail: bool,
    reader: Option<BufReader<std::fs::File>>,
    line: String,
    /// Bytes of the file whose lines were emitted.
    offset: u64,
}

impl Processor for FileP {
    type In = ();
    type Out = Event<String>;

    fn is_cooperative(&self) -> bool {
        false
    }

    fn init(&mut self, _ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        let file = std::fs::File::open(&self.path).map_err(|e| {
            ProcessorError::new(format!(
                "cannot open '{}': {e}; check the path and its permissions",
                self.path.display()
            ))
        })?;
        self.reader = Some(BufReader::new(file));
        Ok(())
    }

    fn process<O: Outbox<Event<String>>>(
        &mut self,
        _: usize,
        _: &mut Inbox<()>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }

    fn complete<O: Outbox<Event<String>>>(
        &mut self,
        outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        let reader = self.reader.as_mut().expect("init opened the file");
        while outbox.has_room() {
            self.line.clear();
            let n = reader.read_line(&mut self.line).map_err(|e| {
                ProcessorError::new(format!("reading '{}' failed: {e}", self.path.display()))
            })?;
            if n == 0 || (self.tail && !self.line.ends_with('\n')) {
                if !self.tail {
                    return Ok(true);
                }
                // A partial last line: read it again whole once it is.
                let back = -(n as i64);
                reader.seek(SeekFrom::Current(back)).map_err(|e| {
                    ProcessorError::new(format!("seek in '{}': {e}", self.path.display()))
                })?;
                std::thread::sleep(TAIL_POLL);
                return Ok(false);
            }
            let text = self.line.trim_end_matches(['\n', '\r']).to_string();
            outbox.offer_granted(Event::untimed(text));
            self.offset += n as u64;
        }
        Ok(false)
    }

    fn save_to_snapshot(
        &mut self,
        _: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        writer.put(BROADCAST, POSITION, &self.offset)
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        self.offset = entry.value()?;
        Ok(())
    }

    fn finish_snapshot_restore(&mut self) -> Result<(), ProcessorError> {
        let reader = self.reader.as_mut().expect("init opened the file");
        let len = reader
            .get_ref()
            .metadata()
            .map(|m| m.len())
            .unwrap_or(u64::MAX);
        if self.offset > len {
            return Err(ProcessorError::new(format!(
                "'{}' is {len} bytes long, shorter than the offset {} the snapshot was taken at: restore it with the file it read, or start without the snapshot",
                self.path.display(),
                self.offset
            )));
        }
        reader
            .seek(SeekFrom::Start(self.offset))
            .map_err(|e| ProcessorError::new(format!("seek in '{}': {e}", self.path.display())))?;
        Ok(())
    }
}
