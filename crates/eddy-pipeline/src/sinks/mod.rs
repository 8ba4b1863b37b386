//! Sinks: the processors a pipeline ends in.

use eddy_core::{Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError};
use parking_lot::Mutex;
use std::fmt::{Debug, Display};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A destination for items of type `T`: a factory of sink processors.
pub trait Sink<T>: Send + Sync + 'static {
    /// Its processor.
    type Processor: Processor<In = Event<T>, Out = ()>;
    /// A name for the stage.
    fn name(&self) -> String;
    /// Fixed number of instances, or `None` for the job's default.
    fn parallelism(&self) -> Option<usize> {
        None
    }
    /// Creates the processor of one instance.
    fn create(&self, ctx: &ProcessorContext) -> Self::Processor;
}

/// Constructors of the built-in sinks.
pub struct Sinks;

impl Sinks {
    /// Collects everything into memory; read it through the returned handle.
    pub fn collect<T: Send + 'static>() -> (CollectSink<T>, Collected<T>) {
        let collected = Collected {
            items: Arc::new(Mutex::new(Vec::new())),
        };
        (
            CollectSink {
                target: collected.clone(),
            },
            collected,
        )
    }

    /// Prints each item's `Debug` form on standard output.
    pub fn logger() -> LoggerSink {
        LoggerSink
    }

    /// Writes each item's `Display` form as a line of a file (created or
    /// truncated).
    pub fn file(path: impl Into<PathBuf>) -> FileSink {
        FileSink { path: path.into() }
    }

    /// Discards everything, counting it (for benchmarks).
    pub fn noop() -> (NoopSink, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        (
            NoopSink {
                count: count.clone(),
            },
            count,
        )
    }
}

/// The items a [`CollectSink`] received.
///
/// Thread safety: the sink's instances append under a mutex once per batch;
/// readers take the same mutex briefly.
pub struct Collected<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T> Clone for Collected<T> {
    fn clone(&self) -> Self {
        Collected {
            items: self.items.clone(),
        }
    }
}

impl<T: Clone> Collected<T> {
    /// A copy of the items so far.
    pub fn items(&self) -> Vec<T> {
        self.items.lock().clone()
    }
}

impl<T> Collected<T> {
    /// Takes the items so far out.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.items.lock())
    }

    /// Number of items so far.
    pub fn len(&self) -> usize {
        self.items.lock().len()
    }

    /// Whether nothing arrived yet.
    pub fn is_empty(&self) -> bool {
        self.items.lock().is_empty()
    }
}

/// See [`Sinks::collect`].
pub struct CollectSink<T> {
    target: Collected<T>,
}

impl<T: Send + 'static> Sink<T> for CollectSink<T> {
    type Processor = CollectP<T>;
    fn name(&self) -> String {
        "collect".into()
    }
    fn create(&self, _ctx: &ProcessorContext) -> CollectP<T> {
        CollectP {
            target: self.target.clone(),
            batch: Vec::new(),
        }
    }
}

/// The processor of [`Sinks::collect`].
pub struct CollectP<T> {
    target: Collected<T>,
    batch: Vec<T>,
}

impl<T: Send + 'static> Processor for CollectP<T> {
    type In = Event<T>;
    type Out = ();
    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<Event<T>>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        while let Some(e) = inbox.poll() {
            self.batch.push(e.value);
        }
        self.target.items.lock().append(&mut self.batch);
        Ok(())
    }
}

/// See [`Sinks::logger`].
pub struct LoggerSink;

impl<T: Debug + Send + 'static> Sink<T> for LoggerSink {
    type Processor = LoggerP<T>;
    fn name(&self) -> String {
        "logger".into()
    }
    fn parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn create(&self, _ctx: &ProcessorContext) -> LoggerP<T> {
        LoggerP(std::marker::PhantomData)
    }
}

/// The processor of [`Sinks::logger`]; writes to stdout, which may block,
/// so it runs on its own thread.
pub struct LoggerP<T>(std::marker::PhantomData<fn(T)>);

impl<T: Debug + Send + 'static> Processor for LoggerP<T> {
    type In = Event<T>;
    type Out = ();
    fn is_cooperative(&self) -> bool {
        false
    }
    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<Event<T>>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        let mut out = std::io::stdout().lock();
        while let Some(e) = inbox.poll() {
            // A closed stdout (a pipe to `head`) is not the job's failure.
            let _ = writeln!(out, "{:?}", e.value);
        }
        Ok(())
    }
}

/// See [`Sinks::file`].
pub struct FileSink {
    path: PathBuf,
}

impl<T: Display + Send + 'static> Sink<T> for FileSink {
    type Processor = FileSinkP<T>;
    fn name(&self) -> String {
        format!("file:{}", self.path.display())
    }
    fn parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn create(&self, _ctx: &ProcessorContext) -> FileSinkP<T> {
        FileSinkP {
            path: self.path.clone(),
            writer: None,
            _t: std::marker::PhantomData,
        }
    }
}

/// The processor of [`Sinks::file`]; blocking I/O, so non-cooperative.
pub struct FileSinkP<T> {
    path: PathBuf,
    writer: Option<std::io::BufWriter<std::fs::File>>,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T> FileSinkP<T> {
    fn io_error(&self, e: std::io::Error) -> ProcessorError {
        ProcessorError::new(format!("writing '{}' failed: {e}", self.path.display()))
    }
}

impl<T: Display + Send + 'static> Processor for FileSinkP<T> {
    type In = Event<T>;
    type Out = ();
    fn is_cooperative(&self) -> bool {
        false
    }
    fn init(&mut self, _ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        let file = std::fs::File::create(&self.path).map_err(|e| {
            ProcessorError::new(format!(
                "cannot create '{}': {e}; check that its directory exists and is writable",
                self.path.display()
            ))
        })?;
        self.writer = Some(std::io::BufWriter::new(file));
        Ok(())
    }
    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<Event<T>>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        let writer = self.writer.as_mut().expect("init created the file");
        let mut result = Ok(());
        while let Some(e) = inbox.poll() {
            if let Err(err) = writeln!(writer, "{}", e.value) {
                result = Err(err);
                break;
            }
        }
        result.map_err(|e| self.io_error(e))
    }
    fn complete<O: Outbox<()>>(&mut self, _: &mut O) -> Result<bool, ProcessorError> {
        let writer = self.writer.as_mut().expect("init created the file");
        let flushed = writer.flush().and_then(|_| writer.get_ref().sync_all());
        flushed.map_err(|e| self.io_error(e))?;
        Ok(true)
    }
}

/// See [`Sinks::noop`].
pub struct NoopSink {
    count: Arc<AtomicU64>,
}

impl<T: Send + 'static> Sink<T> for NoopSink {
    type Processor = NoopP<T>;
    fn name(&self) -> String {
        "noop".into()
    }
    fn create(&self, _ctx: &ProcessorContext) -> NoopP<T> {
        NoopP {
            count: self.count.clone(),
            _t: std::marker::PhantomData,
        }
    }
}

/// The processor of [`Sinks::noop`].
pub struct NoopP<T> {
    count: Arc<AtomicU64>,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T: Send + 'static> Processor for NoopP<T> {
    type In = Event<T>;
    type Out = ();
    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<Event<T>>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        let n = inbox.len() as u64;
        while inbox.poll().is_some() {}
        self.count.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}
