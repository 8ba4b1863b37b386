//! [`SourceBuilder`]: a source from a fill function, for data Eddy has no
//! connector for (an HTTP feed, a device, a file format), without writing
//! the `Processor` trait.
//!
//! As in Jet's `SourceBuilder`, the user gives a function that creates the
//! state of one instance (a connection, a cursor) and a function that fills
//! a buffer from it; Eddy calls the fill function whenever there is room
//! downstream, emits what it added, and ends the source when it closes the
//! buffer. The fill function runs on a cooperative worker: it must return
//! quickly (add what is ready and return; an empty buffer is fine), or the
//! source must be declared [`blocking`](SourceBuilderWithFill::blocking) to
//! get a thread of its own.

use crate::sources::{Bounded, Boundedness, Source, Unbounded};
use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter, BROADCAST};
use eddy_core::{Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError, State};
use std::any::Any;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;

/// Items one fill call may add before the buffer counts as full: the size
/// of the batches queues carry, so that one call fills about one batch and
/// a source cannot grow its buffer without bound.
pub const SOURCE_BUFFER_ITEMS_MAX: usize = 1024;

/// Where a fill function puts what it read.
///
/// `add` up to [`SOURCE_BUFFER_ITEMS_MAX`] items per call (more are kept,
/// but the next fill call waits until they are emitted); `close` ends a
/// bounded source after the items already added.
pub struct SourceBuffer<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> SourceBuffer<T> {
    fn new() -> Self {
        SourceBuffer {
            items: VecDeque::new(),
            closed: false,
        }
    }

    /// Adds an item to emit.
    pub fn add(&mut self, item: T) {
        self.items.push_back(item);
    }

    /// Items added and not yet emitted.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item waits to be emitted.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the fill function should stop adding and return.
    pub fn is_full(&self) -> bool {
        self.items.len() >= SOURCE_BUFFER_ITEMS_MAX
    }

    /// Ends the source once the items added so far are emitted.
    pub fn close(&mut self) {
        self.closed = true;
    }
}

type CreateFn<S> = Arc<dyn Fn(&ProcessorContext) -> Result<S, ProcessorError> + Send + Sync>;
type FillFn<S, T> =
    Arc<dyn Fn(&mut S, &mut SourceBuffer<T>) -> Result<(), ProcessorError> + Send + Sync>;

/// Saves and restores the state of a source instance: its position, and
/// the items it had added and not yet emitted.
trait SnapshotFns<S, T>: Send + Sync {
    fn save(
        &self,
        state: &S,
        pending: &VecDeque<T>,
        writer: &mut SnapshotWriter,
        instance: u64,
    ) -> Result<(), ProcessorError>;
    /// One saved entry: the instance that saved it, its position (for
    /// `restore`) and its items not yet emitted.
    fn read(&self, entry: SnapshotEntry<'_>) -> Result<Saved<T>, ProcessorError>;
    fn restore(&self, state: &mut S, saved: Vec<Box<dyn Any + Send>>)
        -> Result<(), ProcessorError>;
}

/// What [`SnapshotFns::read`] decodes.
struct Saved<T> {
    instance: u64,
    position: Box<dyn Any + Send>,
    pending: Vec<T>,
}

struct TypedSnapshotFns<S, X, SF, RF> {
    save: SF,
    restore: RF,
    _types: PhantomData<fn(&S) -> X>,
}

impl<S, T, X, SF, RF> SnapshotFns<S, T> for TypedSnapshotFns<S, X, SF, RF>
where
    T: State,
    X: State,
    SF: Fn(&S) -> X + Send + Sync,
    RF: Fn(&mut S, Vec<X>) -> Result<(), ProcessorError> + Send + Sync,
{
    fn save(
        &self,
        state: &S,
        pending: &VecDeque<T>,
        writer: &mut SnapshotWriter,
        instance: u64,
    ) -> Result<(), ProcessorError> {
        writer.put(BROADCAST, &instance, &((self.save)(state), pending))
    }

    fn read(&self, entry: SnapshotEntry<'_>) -> Result<Saved<T>, ProcessorError> {
        let (instance, (position, pending)): (u64, (X, Vec<T>)) = entry.decode()?;
        Ok(Saved {
            instance,
            position: Box::new(position),
            pending,
        })
    }

    fn restore(
        &self,
        state: &mut S,
        saved: Vec<Box<dyn Any + Send>>,
    ) -> Result<(), ProcessorError> {
        let positions = saved
            .into_iter()
            .filter_map(|b| b.downcast::<X>().ok().map(|x| *x))
            .collect();
        (self.restore)(state, positions)
    }
}

/// Builds a source from a create function and a fill function; start with
/// [`SourceBuilder::batch`] or [`SourceBuilder::stream`].
///
/// ```
/// use eddy_pipeline::sources::SourceBuilder;
/// use eddy_pipeline::{Pipeline, Sinks};
/// use eddy_runtime::{Eddy, EddyConfig, JobConfig};
///
/// // Lines of a paged feed: here, pages of numbers until page 10.
/// let pages = SourceBuilder::batch("pages", |_ctx| Ok(0u32))
///     .fill(|page: &mut u32, buf| {
///         for i in 0..100 {
///             buf.add(*page * 100 + i);
///         }
///         *page += 1;
///         if *page == 10 {
///             buf.close();
///         }
///         Ok(())
///     })
///     .build();
/// let p = Pipeline::new();
/// let (sink, out) = Sinks::collect();
/// p.read_from(pages).write_to(sink);
/// Eddy::new(EddyConfig::default()).submit(p, JobConfig::default()).unwrap().join().unwrap();
/// assert_eq!(out.len(), 1000);
/// ```
pub struct SourceBuilder<S, B> {
    name: String,
    create: CreateFn<S>,
    _bound: PhantomData<fn() -> B>,
}

impl<S: Send + 'static> SourceBuilder<S, Bounded> {
    /// A finite source: it ends when the fill function closes its buffer.
    /// `create` makes the state of one instance from its context (which
    /// tells its index and the number of instances).
    pub fn batch(
        name: impl Into<String>,
        create: impl Fn(&ProcessorContext) -> Result<S, ProcessorError> + Send + Sync + 'static,
    ) -> Self {
        SourceBuilder {
            name: name.into(),
            create: Arc::new(create),
            _bound: PhantomData,
        }
    }
}

impl<S: Send + 'static> SourceBuilder<S, Unbounded> {
    /// An endless source (closing its buffer still ends it, but the stage
    /// counts as unbounded: it cannot be the side of a hash join).
    pub fn stream(
        name: impl Into<String>,
        create: impl Fn(&ProcessorContext) -> Result<S, ProcessorError> + Send + Sync + 'static,
    ) -> Self {
        SourceBuilder {
            name: name.into(),
            create: Arc::new(create),
            _bound: PhantomData,
        }
    }
}

impl<S: Send + 'static, B: Boundedness> SourceBuilder<S, B> {
    /// The function called whenever there is room downstream: it adds what
    /// is ready to the buffer and returns without blocking.
    pub fn fill<T: Clone + Send + 'static>(
        self,
        fill: impl Fn(&mut S, &mut SourceBuffer<T>) -> Result<(), ProcessorError>
            + Send
            + Sync
            + 'static,
    ) -> SourceBuilderWithFill<S, T, B> {
        SourceBuilderWithFill {
            name: self.name,
            create: self.create,
            fill: Arc::new(fill),
            snapshot: None,
            parallelism: 1,
            blocking: false,
            _bound: PhantomData,
        }
    }
}

/// A [`SourceBuilder`] with its fill function; [`build`](Self::build) makes
/// the source.
pub struct SourceBuilderWithFill<S, T, B> {
    name: String,
    create: CreateFn<S>,
    fill: FillFn<S, T>,
    snapshot: Option<Arc<dyn SnapshotFns<S, T>>>,
    parallelism: usize,
    blocking: bool,
    _bound: PhantomData<fn() -> B>,
}

impl<S: Send + 'static, T: Clone + Send + 'static, B: Boundedness> SourceBuilderWithFill<S, T, B> {
    /// Takes part in snapshots: `save` returns the position of an instance,
    /// `restore` gets the positions every instance saved (as many as the
    /// job had instances, so a job restored at another parallelism can
    /// divide them) and sets the state from them. Without this, a restarted
    /// job's source starts again from what `create` makes.
    ///
    /// Items the fill function added and the source has not emitted yet are
    /// saved with the position, hence `T: State`.
    pub fn snapshot<X: State>(
        mut self,
        save: impl Fn(&S) -> X + Send + Sync + 'static,
        restore: impl Fn(&mut S, Vec<X>) -> Result<(), ProcessorError> + Send + Sync + 'static,
    ) -> Self
    where
        T: State,
    {
        self.snapshot = Some(Arc::new(TypedSnapshotFns {
            save,
            restore,
            _types: PhantomData,
        }));
        self
    }

    /// Runs `instances` instances (default 1, as a source reading one
    /// external resource usually should); each one's `create` sees its
    /// index in the context.
    pub fn parallelism(mut self, instances: usize) -> Self {
        self.parallelism = instances.max(1);
        self
    }

    /// The fill function blocks (waits on a socket or a device): each
    /// instance gets a thread of its own instead of a share of a worker.
    pub fn blocking(mut self) -> Self {
        self.blocking = true;
        self
    }

    /// The source.
    pub fn build(self) -> BuiltSource<S, T, B> {
        BuiltSource {
            name: self.name,
            create: self.create,
            fill: self.fill,
            snapshot: self.snapshot,
            parallelism: self.parallelism,
            blocking: self.blocking,
            _bound: PhantomData,
        }
    }
}

/// A source made by [`SourceBuilder`].
pub struct BuiltSource<S, T, B> {
    name: String,
    create: CreateFn<S>,
    fill: FillFn<S, T>,
    snapshot: Option<Arc<dyn SnapshotFns<S, T>>>,
    parallelism: usize,
    blocking: bool,
    _bound: PhantomData<fn() -> B>,
}

impl<S: Send + 'static, T: Clone + Send + 'static, B: Boundedness> Source for BuiltSource<S, T, B> {
    type Out = T;
    type Processor = BuiltSourceP<S, T>;
    type Bound = B;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn parallelism(&self) -> Option<usize> {
        Some(self.parallelism)
    }

    fn create(&self, ctx: &ProcessorContext) -> BuiltSourceP<S, T> {
        BuiltSourceP {
            create: self.create.clone(),
            fill: self.fill.clone(),
            snapshot: self.snapshot.clone(),
            blocking: self.blocking,
            instance: ctx.instance as u64,
            parallelism: ctx.parallelism.max(1) as u64,
            state: None,
            buffer: SourceBuffer::new(),
            restored: Vec::new(),
            restore_done: false,
        }
    }
}

/// The processor of a [`BuiltSource`].
///
/// Snapshot: per instance, one broadcast entry with the user's saved
/// position and the items added but not yet emitted (the position is past
/// them). Every instance gets all positions back and the user's restore
/// function picks; the unemitted items of old instance `i` go to the new
/// instance `i % parallelism`, so each is emitted once at any parallelism.
pub struct BuiltSourceP<S, T> {
    create: CreateFn<S>,
    fill: FillFn<S, T>,
    snapshot: Option<Arc<dyn SnapshotFns<S, T>>>,
    blocking: bool,
    instance: u64,
    parallelism: u64,
    state: Option<S>,
    buffer: SourceBuffer<T>,
    /// Saved positions read from the snapshot the job starts from.
    restored: Vec<Box<dyn Any + Send>>,
    restore_done: bool,
}

impl<S, T> BuiltSourceP<S, T> {
    /// Hands the restored positions to the user once both the state and
    /// every entry are there (init and restore come in either order).
    fn apply_restored(&mut self) -> Result<(), ProcessorError> {
        if !self.restore_done || self.restored.is_empty() {
            return Ok(());
        }
        let (Some(state), Some(fns)) = (self.state.as_mut(), self.snapshot.as_ref()) else {
            return Ok(());
        };
        fns.restore(state, std::mem::take(&mut self.restored))
    }

    fn state(&mut self) -> Result<&mut S, ProcessorError> {
        self.state.as_mut().ok_or_else(|| {
            ProcessorError::new("the source was called before its init; this is a bug in Eddy")
        })
    }
}

impl<S: Send + 'static, T: Clone + Send + 'static> Processor for BuiltSourceP<S, T> {
    type In = ();
    type Out = Event<T>;

    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        self.state = Some((self.create)(ctx)?);
        self.apply_restored()
    }

    fn is_cooperative(&self) -> bool {
        !self.blocking
    }

    fn process<O: Outbox<Event<T>>>(
        &mut self,
        _: usize,
        _: &mut Inbox<()>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }

    fn complete<O: Outbox<Event<T>>>(&mut self, outbox: &mut O) -> Result<bool, ProcessorError> {
        if self.buffer.is_empty() && !self.buffer.closed {
            let fill = self.fill.clone();
            let mut buffer = std::mem::replace(&mut self.buffer, SourceBuffer::new());
            let filled = fill(self.state()?, &mut buffer);
            self.buffer = buffer;
            filled?;
        }
        while outbox.has_room() {
            let Some(item) = self.buffer.items.pop_front() else {
                break;
            };
            if let Err(back) = outbox.offer(Event::untimed(item)) {
                self.buffer.items.push_front(back.value);
                break;
            }
        }
        Ok(self.buffer.closed && self.buffer.is_empty())
    }

    fn save_to_snapshot(
        &mut self,
        _: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        let Some(fns) = self.snapshot.clone() else {
            return Ok(());
        };
        let instance = self.instance;
        let state = self.state.as_ref().ok_or_else(|| {
            ProcessorError::new("the source was snapshotted before its init; this is a bug in Eddy")
        })?;
        fns.save(state, &self.buffer.items, writer, instance)
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let Some(fns) = self.snapshot.clone() else {
            return Ok(());
        };
        let saved = fns.read(entry)?;
        self.restored.push(saved.position);
        if saved.instance % self.parallelism == self.instance {
            self.buffer.items.extend(saved.pending);
        }
        Ok(())
    }

    fn finish_snapshot_restore(&mut self) -> Result<(), ProcessorError> {
        self.restore_done = true;
        self.apply_restored()
    }
}
