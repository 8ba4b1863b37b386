//! The data grid in pipelines: maps as sinks, sources (current entries and
//! the change journal) and as lookup tables for enrichment.

use crate::sinks::{Delivery, DeliverySinkP, Sink, Sinks};
use crate::sources::{Source, Sources};
use crate::stage::{StreamStage, Upstream};
use crate::transform::{Emit, Then, Transform};
use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter, BROADCAST};
use eddy_core::{Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError, State};
use eddy_grid::{
    EntryMut, GridKey, GridValue, JournalEvent, JournalReader, JournalStart, Map, Predicate,
};
use std::sync::Arc;

/// Dead letters of a job's fallible stages kept in a grid map, keyed by
/// `<job>/<stage>/<n>` where `n` counts this target's letters: queryable
/// over HTTP and on the dashboard like any map, and bounded by the map's
/// own TTL or eviction settings.
///
/// ```
/// use eddy_grid::Grid;
/// use eddy_pipeline::grid::dead_letters_to_map;
/// use eddy_runtime::JobConfig;
///
/// let grid = Grid::new();
/// let letters = grid.map("dead-letters").unwrap();
/// let config = JobConfig::default().dead_letters(dead_letters_to_map(letters));
/// ```
pub fn dead_letters_to_map(map: Map<String, eddy_core::DeadLetter>) -> eddy_core::DeadLetters {
    let next = std::sync::atomic::AtomicU64::new(0);
    eddy_core::DeadLetters::to(move |letter: &eddy_core::DeadLetter| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        map.put(
            format!("{}/{}/{n}", letter.job, letter.stage),
            letter.clone(),
        );
        Ok(())
    })
}

impl Sinks {
    /// Puts each `(key, value)` item into `map`.
    pub fn map<K: GridKey, V: GridValue>(map: Map<K, V>) -> MapSink<K, V, PutEach> {
        MapSink {
            map,
            apply: PutEach,
        }
    }

    /// Updates the entry of each item's key with an entry processor: `update`
    /// reads and changes the entry atomically (merge, count, replace, remove).
    pub fn map_update<T, K, V, KF, F>(
        map: Map<K, V>,
        key_fn: KF,
        update: F,
    ) -> MapSink<K, V, Update<KF, F>>
    where
        K: GridKey,
        V: GridValue,
        KF: Fn(&T) -> K + Clone + Send + Sync + 'static,
        F: Fn(&mut EntryMut<'_, K, V>, T) + Clone + Send + Sync + 'static,
    {
        MapSink {
            map,
            apply: Update { key_fn, update },
        }
    }
}

/// How a [`MapSink`] applies one item to its map.
pub trait MapWrite<T, K, V>: Clone + Send + Sync + 'static {
    /// Applies `item`.
    fn write(&self, map: &Map<K, V>, item: T);
}

/// Puts `(key, value)` items; see [`Sinks::map`].
#[derive(Debug, Clone, Copy)]
pub struct PutEach;

impl<K: GridKey, V: GridValue> MapWrite<(K, V), K, V> for PutEach {
    #[inline]
    fn write(&self, map: &Map<K, V>, (key, value): (K, V)) {
        map.set(key, value);
    }
}

/// Runs an entry processor per item; see [`Sinks::map_update`].
#[derive(Clone)]
pub struct Update<KF, F> {
    key_fn: KF,
    update: F,
}

impl<T, K, V, KF, F> MapWrite<T, K, V> for Update<KF, F>
where
    K: GridKey,
    V: GridValue,
    KF: Fn(&T) -> K + Clone + Send + Sync + 'static,
    F: Fn(&mut EntryMut<'_, K, V>, T) + Clone + Send + Sync + 'static,
{
    #[inline]
    fn write(&self, map: &Map<K, V>, item: T) {
        let key = (self.key_fn)(&item);
        map.execute_on_key(&key, |entry| (self.update)(entry, item));
    }
}

/// A sink writing into a grid map.
pub struct MapSink<K, V, W> {
    map: Map<K, V>,
    apply: W,
}

impl<T, K, V, W> Sink<T> for MapSink<K, V, W>
where
    T: State,
    K: GridKey,
    V: GridValue,
    W: MapWrite<T, K, V>,
{
    type Processor = MapSinkP<K, V, W, T>;
    fn name(&self) -> String {
        format!("map:{}", self.map.name())
    }
    fn create(&self, _ctx: &ProcessorContext) -> Self::Processor {
        DeliverySinkP::new(ToMap {
            map: self.map.clone(),
            apply: self.apply.clone(),
        })
    }
}

/// The processor of the map sinks. Map operations take one partition lock
/// for a moment and never wait for I/O, so it is cooperative.
///
/// Under exactly-once it applies an epoch's items once its snapshot is
/// durable, and never twice: an update is not idempotent (see
/// [`crate::sinks`]).
pub type MapSinkP<K, V, W, T> = DeliverySinkP<T, ToMap<K, V, W>>;

/// Applies items to a grid map with a [`MapWrite`].
pub struct ToMap<K, V, W> {
    map: Map<K, V>,
    apply: W,
}

impl<T, K, V, W> Delivery<T> for ToMap<K, V, W>
where
    T: State,
    K: GridKey,
    V: GridValue,
    W: MapWrite<T, K, V>,
{
    type Held = T;
    fn hold(&self, item: T) -> T {
        item
    }
    fn deliver_now(&mut self, inbox: &mut Inbox<Event<T>>) {
        while let Some(e) = inbox.poll() {
            self.apply.write(&self.map, e.value);
        }
    }
    fn deliver(&mut self, items: Vec<T>) {
        for item in items {
            self.apply.write(&self.map, item);
        }
    }
}

impl Sources {
    /// The entries of `map` at the time the job starts, optionally only
    /// those matching `predicate` (a batch source).
    pub fn map<K: GridKey, V: GridValue>(
        map: Map<K, V>,
        predicate: Option<Predicate>,
    ) -> MapSource<K, V> {
        MapSource { map, predicate }
    }

    /// The changes of `map` as they happen, from its event journal (the map
    /// needs a journal: `MapConfig::with_journal`). A stream source; when
    /// it falls so far behind that the journal overwrote events it had not
    /// read, it emits [`MapChange::Lost`] with their number.
    pub fn map_journal<K: GridKey, V: GridValue>(
        map: Map<K, V>,
        start: JournalStart,
    ) -> MapJournalSource<K, V> {
        MapJournalSource { map, start }
    }
}

/// See [`Sources::map`]. Its snapshot is its position in the entries: a
/// restored job takes the map's entries again and skips as many as were
/// emitted (exact when the map did not change in between, and once the
/// source finished, it stays finished).
pub struct MapSource<K, V> {
    map: Map<K, V>,
    predicate: Option<Predicate>,
}

impl<K: GridKey, V: GridValue> Source for MapSource<K, V> {
    type Out = (K, V);
    type Bound = crate::sources::Bounded;
    type Processor = crate::sources::ItemsP<(K, V)>;
    fn name(&self) -> String {
        format!("map:{}", self.map.name())
    }
    fn parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn create(&self, _ctx: &ProcessorContext) -> Self::Processor {
        let entries = match &self.predicate {
            Some(p) => self.map.entries_where(p),
            None => self.map.entries(),
        };
        crate::sources::ItemsP::new(Arc::new(entries))
    }
}

/// An item of [`Sources::map_journal`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MapChange<K, V> {
    /// One change of the map.
    Event(JournalEvent<K, V>),
    /// This many changes were overwritten in the journal before they were read.
    Lost(u64),
}

/// See [`Sources::map_journal`].
pub struct MapJournalSource<K, V> {
    map: Map<K, V>,
    start: JournalStart,
}

impl<K: GridKey, V: GridValue> Source for MapJournalSource<K, V> {
    type Out = MapChange<K, V>;
    type Bound = crate::sources::Unbounded;
    type Processor = MapJournalP<K, V>;
    fn name(&self) -> String {
        format!("map-journal:{}", self.map.name())
    }
    fn parallelism(&self) -> Option<usize> {
        Some(1)
    }
    fn create(&self, _ctx: &ProcessorContext) -> Self::Processor {
        MapJournalP {
            map: self.map.clone(),
            start: self.start,
            reader: None,
            pending: std::collections::VecDeque::new(),
        }
    }
}

/// The processor of [`Sources::map_journal`].
///
/// Snapshot: per partition, the sequence number of the first change not
/// emitted (changes read but still waiting for room count as not emitted),
/// and a loss not reported yet. A restored source seeks there; changes the
/// journal overwrote meanwhile are reported as lost.
pub struct MapJournalP<K, V> {
    map: Map<K, V>,
    start: JournalStart,
    reader: Option<JournalReader<K, V>>,
    pending: std::collections::VecDeque<Event<MapChange<K, V>>>,
}

impl<K: GridKey, V: GridValue> Processor for MapJournalP<K, V> {
    type In = ();
    type Out = Event<MapChange<K, V>>;

    fn init(&mut self, _ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        let reader = self.map.journal_reader(self.start).map_err(|e| {
            ProcessorError::new(format!("map journal source of '{}': {e}", self.map.name()))
        })?;
        self.reader = Some(reader);
        Ok(())
    }

    fn process<O: Outbox<Self::Out>>(
        &mut self,
        _: usize,
        _: &mut Inbox<()>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }

    fn complete<O: Outbox<Self::Out>>(&mut self, outbox: &mut O) -> Result<bool, ProcessorError> {
        if self.pending.is_empty() {
            let reader = self.reader.as_mut().expect("init created the reader");
            let batch = reader.poll(1024);
            if batch.lost > 0 {
                self.pending
                    .push_back(Event::untimed(MapChange::Lost(batch.lost)));
            }
            self.pending.extend(
                batch
                    .events
                    .into_iter()
                    .map(|e| Event::untimed(MapChange::Event(e))),
            );
        }
        crate::processors::drain_into(&mut self.pending, outbox);
        Ok(false)
    }

    fn save_to_snapshot(
        &mut self,
        _: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        let reader = self.reader.as_ref().expect("init created the reader");
        let mut positions = reader.positions().to_vec();
        let mut lost = 0;
        for e in &self.pending {
            match &e.value {
                MapChange::Event(e) => {
                    let p = &mut positions[e.partition];
                    *p = (*p).min(e.sequence);
                }
                MapChange::Lost(n) => lost += n,
            }
        }
        writer.put(BROADCAST, JOURNAL_POSITIONS, &(positions, lost))
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let (positions, lost): (Vec<u64>, u64) = entry.value()?;
        let reader = self.reader.as_mut().expect("init created the reader");
        if positions.len() != reader.positions().len() {
            return Err(ProcessorError::new(format!(
                "the snapshot holds journal positions of {} partitions, but map '{}' has {}: restore it into a grid with the same partition count",
                positions.len(),
                self.map.name(),
                reader.positions().len()
            )));
        }
        reader.seek(&positions);
        if lost > 0 {
            self.pending
                .push_back(Event::untimed(MapChange::Lost(lost)));
        }
        Ok(())
    }
}

/// The key of the entry a map journal source saves its positions under.
const JOURNAL_POSITIONS: &str = "journal-positions";

/// `map_using_map`: looks each item's key up in a grid map.
#[derive(Clone)]
pub struct MapUsingMap<K, V, KF, F> {
    map: Map<K, V>,
    key_fn: KF,
    f: F,
}

impl<I, R, K, V, KF, F> Transform<I> for MapUsingMap<K, V, KF, F>
where
    I: Clone + Send + 'static,
    R: Clone + Send + 'static,
    K: GridKey,
    V: GridValue,
    KF: Fn(&I) -> K + Clone + Send + Sync + 'static,
    F: Fn(I, Option<&V>) -> Option<R> + Clone + Send + Sync + 'static,
{
    type Out = R;
    #[inline]
    fn apply<E: Emit<R>>(&mut self, event: Event<I>, out: &mut E) {
        let key = (self.key_fn)(&event.value);
        let mut item = Some(event.value);
        let f = &self.f;
        let joined = self
            .map
            .get_with(&key, |v| f(item.take().expect("taken once"), Some(v)));
        let result = match item {
            // No entry: the lookup did not call `f`.
            Some(unmatched) => f(unmatched, None),
            None => joined.flatten(),
        };
        if let Some(value) = result {
            out.emit(Event {
                ts: event.ts,
                value,
            });
        }
    }
}

impl<U: Upstream, C: Transform<U::Out>> StreamStage<U, C> {
    /// Enriches each item from a grid map: `f` gets the item and a
    /// reference to the value stored under its key (if any) and returns what
    /// to emit (`None` drops the item). The lookup reads the live map in
    /// place — no copy of the map, no clone of the value — under the read
    /// lock of one partition, so writers of other partitions never contend
    /// with it; `f` runs under that lock, so keep it short.
    pub fn map_using_map<K, V, R, KF, F>(
        self,
        map: Map<K, V>,
        key_fn: KF,
        f: F,
    ) -> StreamStage<U, Then<C, MapUsingMap<K, V, KF, F>>>
    where
        K: GridKey,
        V: GridValue,
        R: Clone + Send + 'static,
        KF: Fn(&C::Out) -> K + Clone + Send + Sync + 'static,
        F: Fn(C::Out, Option<&V>) -> Option<R> + Clone + Send + Sync + 'static,
    {
        self.then(MapUsingMap { map, key_fn, f })
    }
}
