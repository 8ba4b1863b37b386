//! The Kafka source: a builder ([`KafkaSource`]) and its processor
//! ([`KafkaSourceP`]).
//!
//! Jet-style partition assignment: the source's instances split the topics'
//! partitions among themselves by index (no consumer-group rebalancing), so
//! a partition always belongs to the same instance and its records stay in
//! order. Each instance polls its partitions on a thread of its own (the
//! [`poller`](crate::poller)) into a bounded queue of decoded batches; the
//! processor drains that queue from the cooperative worker without ever
//! blocking, emits per-partition watermarks, and keeps the next offset of
//! each partition for snapshots.
//!
//! # Snapshots
//!
//! A snapshot holds one broadcast entry per partition: key `(topic,
//! partition)`, value [`SavedPartition`]. The offset saved is the one after
//! the last record *emitted* before the barrier; records polled but still
//! waiting in the processor are read again after a restore. On restore every
//! instance keeps the entries of the partitions it owns at the new
//! parallelism (the assignment rule does not depend on history), and its
//! consumer thread starts only then, so that it starts those partitions at
//! the saved offsets; partitions the snapshot does not know start where a
//! fresh source would start them.

use crate::admin::{check_bootstrap, Properties};
use crate::dead_letter::DeadLetter;
use crate::event_time::{PartitionWatermarks, Signal};
use crate::format::{Bytes, Decoder, Json, Utf8};
use crate::poller::{self, FromPoller, Polled, PollerHandle};
use crate::KafkaRecord;
use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter, BROADCAST};
use eddy_core::{Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError};
use eddy_pipeline::{EventTimePolicy, Source};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a source starts reading the partitions it finds at job start.
/// Partitions added to a topic later are always read from their beginning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    /// The oldest record still in each partition.
    Earliest,
    /// Only records written after the job started.
    Latest,
    /// The first record at or after this time (ms since the epoch); the end
    /// of a partition with no such record.
    Timestamp(i64),
    /// The offsets the consumer group (property `group.id`) committed; the
    /// earliest record where it committed none.
    Committed,
}

/// Counters of a source, shared by all its instances; read them any time
/// through the handle [`KafkaSource::metrics`] returns.
#[derive(Debug, Default)]
pub struct SourceMetrics {
    /// Records emitted.
    pub records: AtomicU64,
    /// Records sent to the dead-letter sink.
    pub dead_letters: AtomicU64,
    /// Failed attempts to reach the cluster at start-up (retried).
    pub connect_retries: AtomicU64,
    /// The last client error seen (the client retries on its own), if any.
    pub last_error: Mutex<Option<String>>,
}

impl SourceMetrics {
    /// Records emitted so far.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Dead letters so far.
    pub fn dead_letters(&self) -> u64 {
        self.dead_letters.load(Ordering::Relaxed)
    }
}

/// Turns a decoded record into what the source emits.
pub trait Projection<K, V>: Send + Sync + 'static {
    /// What the source emits.
    type Out: Clone + Send + 'static;
    /// Whether it reads the key and headers (decoding them costs time).
    const NEEDS_KEY_AND_HEADERS: bool;
    /// Makes the emitted item.
    fn project(&self, record: KafkaRecord<K, V>) -> Self::Out;
}

/// Emits the record's value only (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct ValueOnly;

impl<K, V: Clone + Send + 'static> Projection<K, V> for ValueOnly {
    type Out = V;
    const NEEDS_KEY_AND_HEADERS: bool = false;
    #[inline]
    fn project(&self, record: KafkaRecord<K, V>) -> V {
        record.value
    }
}

/// Emits the whole [`KafkaRecord`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WholeRecord;

impl<K: Clone + Send + 'static, V: Clone + Send + 'static> Projection<K, V> for WholeRecord {
    type Out = KafkaRecord<K, V>;
    const NEEDS_KEY_AND_HEADERS: bool = true;
    #[inline]
    fn project(&self, record: KafkaRecord<K, V>) -> KafkaRecord<K, V> {
        record
    }
}

/// Emits what a function of the record returns.
#[derive(Clone)]
pub struct MapRecord<F>(F);

impl<K, V, R, F> Projection<K, V> for MapRecord<F>
where
    R: Clone + Send + 'static,
    F: Fn(KafkaRecord<K, V>) -> R + Send + Sync + 'static,
{
    type Out = R;
    const NEEDS_KEY_AND_HEADERS: bool = true;
    #[inline]
    fn project(&self, record: KafkaRecord<K, V>) -> R {
        (self.0)(record)
    }
}

/// Timestamp function over the emitted items.
type TimestampFn<T> = Arc<dyn Fn(&T) -> i64 + Send + Sync>;

/// Settings of a source that do not depend on its types.
#[derive(Debug, Clone)]
pub(crate) struct SourceSettings {
    pub(crate) bootstrap: String,
    pub(crate) topics: Vec<String>,
    pub(crate) properties: Properties,
    pub(crate) start: StartPosition,
    pub(crate) event_time: Option<EventTimePolicy>,
    pub(crate) dead_letter: DeadLetter,
    pub(crate) value_bytes_max: usize,
    pub(crate) metadata_refresh: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) stop_at_end: bool,
    pub(crate) parallelism: Option<usize>,
}

/// Default limit on a record's value size: 1 MiB, the broker's default
/// `message.max.bytes`, so anything a default topic accepts passes.
pub const VALUE_BYTES_MAX_DEFAULT: usize = 1024 * 1024;

/// How often a source looks for partitions added to its topics: often
/// enough that new partitions are read within seconds, rarely enough that
/// the metadata requests cost the broker nothing noticeable.
const METADATA_REFRESH_DEFAULT: Duration = Duration::from_secs(5);

/// How long a source keeps trying to reach the cluster at start-up before
/// it fails the job: long enough to ride out a broker restart, short enough
/// that a wrong address is reported while someone still watches.
const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);

/// A Kafka source: reads topics of one cluster and emits `P::Out` for each
/// record, decoded with `KD` (keys) and `VD` (values).
///
/// ```no_run
/// use eddy_kafka::{KafkaSource, StartPosition};
/// use eddy_pipeline::{Pipeline, Sinks};
/// # #[derive(Clone, serde::Deserialize)] struct Txn { amount: i64 }
///
/// let source = KafkaSource::topic("transactions")
///     .bootstrap("127.0.0.1:9092")
///     .start(StartPosition::Earliest)
///     .json::<Txn>();
/// let dead_letters = source.metrics();
/// let p = Pipeline::new();
/// p.read_from(source).map(|t| t.amount).write_to(Sinks::logger());
/// ```
pub struct KafkaSource<KD, VD, P>
where
    KD: Decoder,
    VD: Decoder,
    P: Projection<KD::Value, VD::Value>,
{
    pub(crate) settings: SourceSettings,
    pub(crate) key: Arc<KD>,
    pub(crate) value: Arc<VD>,
    pub(crate) projection: Arc<P>,
    pub(crate) timestamp_fn: Option<TimestampFn<P::Out>>,
    pub(crate) metrics: Arc<SourceMetrics>,
}

impl KafkaSource<Bytes, Bytes, ValueOnly> {
    /// A source of one topic, emitting raw value bytes until told otherwise.
    pub fn topic(topic: impl Into<String>) -> Self {
        Self::topics([topic.into()])
    }

    /// A source of several topics of one cluster.
    pub fn topics<I: IntoIterator<Item = S>, S: Into<String>>(topics: I) -> Self {
        KafkaSource {
            settings: SourceSettings {
                bootstrap: String::new(),
                topics: topics.into_iter().map(Into::into).collect(),
                properties: Properties::new(),
                start: StartPosition::Earliest,
                event_time: None,
                dead_letter: DeadLetter::DefaultTopic,
                value_bytes_max: VALUE_BYTES_MAX_DEFAULT,
                metadata_refresh: METADATA_REFRESH_DEFAULT,
                connect_timeout: CONNECT_TIMEOUT_DEFAULT,
                stop_at_end: false,
                parallelism: None,
            },
            key: Arc::new(Bytes),
            value: Arc::new(Bytes),
            projection: Arc::new(ValueOnly),
            timestamp_fn: None,
            metrics: Arc::new(SourceMetrics::default()),
        }
    }
}

impl<KD, VD, P> KafkaSource<KD, VD, P>
where
    KD: Decoder,
    VD: Decoder,
    P: Projection<KD::Value, VD::Value>,
{
    /// The cluster's bootstrap address(es), `host:port[,host:port…]`.
    pub fn bootstrap(mut self, bootstrap: impl Into<String>) -> Self {
        self.settings.bootstrap = bootstrap.into();
        self
    }

    /// Sets a consumer property (librdkafka's names: `fetch.min.bytes`,
    /// `max.partition.fetch.bytes`, `isolation.level`, `group.id`, …).
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.properties.insert(key.into(), value.into());
        self
    }

    /// Where to start reading (default: [`StartPosition::Earliest`]).
    pub fn start(mut self, start: StartPosition) -> Self {
        self.settings.start = start;
        self
    }

    /// Emits per-partition watermarks from the records' timestamps (or
    /// those of [`timestamp_fn`](Self::timestamp_fn)) with this allowed lag
    /// and idle timeout, coalesced over each instance's partitions.
    pub fn event_time(mut self, policy: impl Into<EventTimePolicy>) -> Self {
        self.settings.event_time = Some(policy.into());
        self
    }

    /// Takes event time from the emitted item instead of the record's
    /// timestamp. Set it after the format and projection: changing either
    /// resets it.
    pub fn timestamp_fn(mut self, f: impl Fn(&P::Out) -> i64 + Send + Sync + 'static) -> Self {
        self.timestamp_fn = Some(Arc::new(f));
        self
    }

    /// Where records that cannot be decoded go (default: the topic
    /// `<topic>.dlq`).
    pub fn dead_letter(mut self, target: DeadLetter) -> Self {
        self.settings.dead_letter = target;
        self
    }

    /// Values larger than this go to the dead-letter sink (default
    /// [`VALUE_BYTES_MAX_DEFAULT`]).
    pub fn value_bytes_max(mut self, bytes: usize) -> Self {
        self.settings.value_bytes_max = bytes;
        self
    }

    /// How long to keep trying to reach the cluster at start-up before the
    /// job fails (default 60 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// How often to look for partitions added later (default 5 s).
    pub fn metadata_refresh(mut self, interval: Duration) -> Self {
        self.settings.metadata_refresh = interval;
        self
    }

    /// Makes it a batch source: it reads up to the end offsets the
    /// partitions had at start-up, then completes. New partitions are not
    /// picked up then.
    pub fn stop_at_end(mut self) -> Self {
        self.settings.stop_at_end = true;
        self
    }

    /// Fixes the number of instances (default: the job's parallelism).
    pub fn parallelism(mut self, instances: usize) -> Self {
        self.settings.parallelism = Some(instances.max(1));
        self
    }

    /// The counters of this source (records, dead letters, retries).
    pub fn metrics(&self) -> Arc<SourceMetrics> {
        self.metrics.clone()
    }

    /// Decodes values with `decoder` and emits them.
    pub fn value_decoder<V2: Decoder>(self, decoder: V2) -> KafkaSource<KD, V2, ValueOnly> {
        KafkaSource {
            settings: self.settings,
            key: self.key,
            value: Arc::new(decoder),
            projection: Arc::new(ValueOnly),
            timestamp_fn: None,
            metrics: self.metrics,
        }
    }

    /// Emits values as raw bytes.
    pub fn bytes(self) -> KafkaSource<KD, Bytes, ValueOnly> {
        self.value_decoder(Bytes)
    }

    /// Emits values as UTF-8 strings.
    pub fn string(self) -> KafkaSource<KD, Utf8, ValueOnly> {
        self.value_decoder(Utf8)
    }

    /// Emits values parsed from JSON into `T`.
    pub fn json<T: serde::de::DeserializeOwned + Clone + Send + 'static>(
        self,
    ) -> KafkaSource<KD, Json<T>, ValueOnly> {
        self.value_decoder(Json::new())
    }

    /// Decodes keys with `decoder` (default: raw bytes).
    pub fn key_decoder<K2: Decoder>(self, decoder: K2) -> KafkaSource<K2, VD, P>
    where
        P: Projection<K2::Value, VD::Value>,
    {
        KafkaSource {
            settings: self.settings,
            key: Arc::new(decoder),
            value: self.value,
            projection: self.projection,
            timestamp_fn: None,
            metrics: self.metrics,
        }
    }

    /// Emits whole [`KafkaRecord`]s: key, value, headers, partition,
    /// offset, timestamp.
    pub fn records(self) -> KafkaSource<KD, VD, WholeRecord> {
        KafkaSource {
            settings: self.settings,
            key: self.key,
            value: self.value,
            projection: Arc::new(WholeRecord),
            timestamp_fn: None,
            metrics: self.metrics,
        }
    }

    /// Emits `f(record)` for each record.
    pub fn map_record<R, F>(self, f: F) -> KafkaSource<KD, VD, MapRecord<F>>
    where
        R: Clone + Send + 'static,
        F: Fn(KafkaRecord<KD::Value, VD::Value>) -> R + Send + Sync + 'static,
    {
        KafkaSource {
            settings: self.settings,
            key: self.key,
            value: self.value,
            projection: Arc::new(MapRecord(f)),
            timestamp_fn: None,
            metrics: self.metrics,
        }
    }
}

impl<KD, VD, P> Source for KafkaSource<KD, VD, P>
where
    KD: Decoder,
    VD: Decoder,
    P: Projection<KD::Value, VD::Value>,
{
    type Out = P::Out;
    type Bound = eddy_pipeline::Unbounded;
    type Processor = KafkaSourceP<KD, VD, P>;

    fn name(&self) -> String {
        format!("kafka:{}", self.settings.topics.join(","))
    }

    fn parallelism(&self) -> Option<usize> {
        self.settings.parallelism
    }

    fn create(&self, _ctx: &ProcessorContext) -> KafkaSourceP<KD, VD, P> {
        KafkaSourceP {
            shared: Arc::new(poller::Shared {
                settings: self.settings.clone(),
                key: self.key.clone(),
                value: self.value.clone(),
                projection: self.projection.clone(),
                timestamp_fn: self.timestamp_fn.clone(),
                metrics: self.metrics.clone(),
            }),
            poller: None,
            context: None,
            restored: HashMap::new(),
            current: VecDeque::new(),
            partitions: Vec::new(),
            next_offsets: Vec::new(),
            watermarks: None,
            pending_signal: None,
            finished: false,
        }
    }
}

/// What a snapshot saves of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct SavedPartition {
    /// Offset of the next record to read.
    next_offset: i64,
    /// Highest event timestamp emitted from the partition, or `i64::MIN`.
    top_ts: i64,
    /// Watermark the saving instance had emitted, or `i64::MIN`: after a
    /// restore an instance emits the least of its partitions' values again.
    emitted_watermark: i64,
}

/// The processor of a [`KafkaSource`] instance.
///
/// Its `complete` drains decoded batches from the instance's consumer
/// thread without blocking; it returns `true` only for a
/// [`stop_at_end`](KafkaSource::stop_at_end) source that read everything.
/// The consumer thread starts on the first `complete`, after any restore.
pub struct KafkaSourceP<KD, VD, P>
where
    KD: Decoder,
    VD: Decoder,
    P: Projection<KD::Value, VD::Value>,
{
    shared: Arc<poller::Shared<KD, VD, P>>,
    poller: Option<PollerHandle<P::Out>>,
    /// The context `init` got; the consumer thread starts with it.
    context: Option<ProcessorContext>,
    /// Partitions restored from a snapshot and not assigned yet.
    restored: HashMap<(String, i32), SavedPartition>,
    /// The batch being emitted.
    current: VecDeque<Polled<P::Out>>,
    /// Topic and partition of each slot (index into `next_offsets`).
    partitions: Vec<(Arc<str>, i32)>,
    /// Offset of the next record to read, per slot.
    next_offsets: Vec<i64>,
    watermarks: Option<PartitionWatermarks>,
    pending_signal: Option<Signal>,
    finished: bool,
}

impl<KD, VD, P> KafkaSourceP<KD, VD, P>
where
    KD: Decoder,
    VD: Decoder,
    P: Projection<KD::Value, VD::Value>,
{
    /// The offset of the next record to read of each partition this
    /// instance owns: `(topic, partition, offset)`. Every record before it
    /// has been emitted (or dead-lettered); this is what a snapshot saves.
    pub fn offsets(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .zip(&self.next_offsets)
            .map(|((t, p), o)| (t.to_string(), *p, *o))
            .collect()
    }

    /// Starts the consumer thread, once: after `init` and any restore.
    fn start_poller(&mut self) -> Result<(), ProcessorError> {
        if self.poller.is_some() {
            return Ok(());
        }
        let ctx = self
            .context
            .as_ref()
            .ok_or_else(|| ProcessorError::new("the Kafka source was not initialised"))?;
        let offsets = self
            .restored
            .iter()
            .map(|(tp, saved)| (tp.clone(), saved.next_offset))
            .collect();
        self.poller =
            Some(poller::spawn(self.shared.clone(), ctx, &offsets).map_err(ProcessorError::new)?);
        Ok(())
    }

    /// Takes partitions the consumer thread assigned, with their start
    /// offsets (restored ones included).
    fn on_assigned(&mut self, new: Vec<(Arc<str>, i32, i64)>, now_ms: i64) {
        if let Some(w) = &mut self.watermarks {
            w.assignment_known();
        }
        for (topic, partition, offset) in new {
            let saved = self.restored.remove(&(topic.to_string(), partition));
            self.partitions.push((topic, partition));
            self.next_offsets.push(offset);
            if let Some(w) = &mut self.watermarks {
                w.add_partition(now_ms, saved.map_or(i64::MIN, |s| s.top_ts));
            }
        }
    }

    fn emit_signal<O: Outbox<Event<P::Out>>>(&mut self, outbox: &mut O) -> bool {
        let Some(signal) = self.pending_signal else {
            return true;
        };
        let accepted = match signal {
            Signal::Advance(w) => outbox.offer_watermark(w),
            Signal::Idle => outbox.offer_idle(),
        };
        if accepted {
            self.pending_signal = None;
        }
        accepted
    }

    /// Emits the current batch until the outbox is full; false if it filled.
    fn emit_current<O: Outbox<Event<P::Out>>>(&mut self, outbox: &mut O, now_ms: i64) -> bool {
        let mut emitted = 0u64;
        let mut room = true;
        while let Some(polled) = self.current.pop_front() {
            let slot = polled.slot as usize;
            if let Some(event) = polled.event {
                let ts = event.ts;
                if let Err(event) = outbox.offer(event) {
                    self.current.push_front(Polled {
                        slot: polled.slot,
                        offset: polled.offset,
                        event: Some(event),
                    });
                    room = false;
                    break;
                }
                emitted += 1;
                if let Some(w) = &mut self.watermarks {
                    w.on_event(slot, ts, now_ms);
                }
            }
            self.next_offsets[slot] = polled.offset + 1;
        }
        if emitted > 0 {
            self.shared
                .metrics
                .records
                .fetch_add(emitted, Ordering::Relaxed);
        }
        room
    }
}

/// Wall-clock milliseconds since the epoch.
fn now_ms() -> i64 {
    eddy_runtime::metrics::now_ms()
}

impl<KD, VD, P> Processor for KafkaSourceP<KD, VD, P>
where
    KD: Decoder,
    VD: Decoder,
    P: Projection<KD::Value, VD::Value>,
{
    type In = ();
    type Out = Event<P::Out>;

    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        let s = &self.shared.settings;
        check_bootstrap(&s.bootstrap)
            .map_err(|e| ProcessorError::new(format!("{}: {e}", ctx.vertex_name)))?;
        if s.topics.is_empty() || s.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(ProcessorError::new(
                "a Kafka source needs at least one topic, and no empty topic names: check KafkaSource::topics",
            ));
        }
        if s.start == StartPosition::Committed && !s.properties.contains_key("group.id") {
            return Err(ProcessorError::new(
                "StartPosition::Committed reads the offsets of a consumer group: set the property group.id",
            ));
        }
        self.watermarks = s
            .event_time
            .map(|p| PartitionWatermarks::new(p.lag_ms, p.idle_timeout_ms));
        self.context = Some(ctx.clone());
        Ok(())
    }

    fn process<O: Outbox<Event<P::Out>>>(
        &mut self,
        _: usize,
        _: &mut Inbox<()>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        Ok(())
    }

    fn complete<O: Outbox<Event<P::Out>>>(
        &mut self,
        outbox: &mut O,
    ) -> Result<bool, ProcessorError> {
        self.start_poller()?;
        if let Some(error) = self.poller.as_ref().and_then(PollerHandle::failure) {
            return Err(ProcessorError::new(error));
        }
        if !self.emit_signal(outbox) {
            return Ok(false);
        }
        let now = now_ms();
        // Bounded work per call: the batches queued now, at most, and
        // fewer once the outbox fills.
        let mut batches_left = poller::QUEUE_BATCHES_MAX;
        loop {
            if !self.emit_current(outbox, now) {
                break;
            }
            if batches_left == 0 {
                break;
            }
            let Some(poller) = &self.poller else { break };
            match poller.queue.pop() {
                Some(FromPoller::Records(batch)) => {
                    self.current.extend(batch);
                    batches_left -= 1;
                }
                Some(FromPoller::Assigned(new)) => self.on_assigned(new, now),
                Some(FromPoller::Finished) => self.finished = true,
                None => break,
            }
        }
        if let Some(w) = &mut self.watermarks {
            self.pending_signal = w.poll(now);
            self.emit_signal(outbox);
        }
        Ok(self.finished && self.current.is_empty() && self.pending_signal.is_none())
    }

    fn save_to_snapshot(
        &mut self,
        _snapshot_id: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        let emitted_watermark = self.watermarks.as_ref().map_or(i64::MIN, |w| w.emitted());
        for (slot, ((topic, partition), &next_offset)) in
            self.partitions.iter().zip(&self.next_offsets).enumerate()
        {
            let saved = SavedPartition {
                next_offset,
                top_ts: self
                    .watermarks
                    .as_ref()
                    .map_or(i64::MIN, |w| w.top_ts(slot)),
                emitted_watermark,
            };
            writer.put(BROADCAST, &(&**topic, *partition), &saved)?;
        }
        // Restored partitions the consumer thread has not assigned yet keep
        // what the snapshot said: nothing of them was emitted since.
        for ((topic, partition), saved) in &self.restored {
            writer.put(BROADCAST, &(topic.as_str(), *partition), saved)?;
        }
        Ok(())
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        let ((topic, partition), saved): ((String, i32), SavedPartition) = entry.decode()?;
        let ctx = self
            .context
            .as_ref()
            .ok_or_else(|| ProcessorError::new("the Kafka source was not initialised"))?;
        let topics = &self.shared.settings.topics;
        // Topics the source no longer reads are dropped, and partitions
        // other instances own are theirs.
        let Some(ti) = topics.iter().position(|t| *t == topic) else {
            return Ok(());
        };
        if !poller::owns(
            ti,
            topics.len(),
            partition,
            ctx.instance,
            ctx.parallelism.max(1),
        ) {
            return Ok(());
        }
        self.restored.insert((topic, partition), saved);
        Ok(())
    }

    fn finish_snapshot_restore(&mut self) -> Result<(), ProcessorError> {
        let emitted = self.restored.values().map(|s| s.emitted_watermark).min();
        if let (Some(w), Some(emitted)) = (&mut self.watermarks, emitted) {
            self.pending_signal = w.restore_emitted(emitted);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ProcessorError> {
        if let Some(poller) = self.poller.take() {
            poller.stop();
        }
        Ok(())
    }
}
