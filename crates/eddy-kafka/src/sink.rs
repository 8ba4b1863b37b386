//! The Kafka sink: a builder ([`KafkaSink`]) and its processor
//! ([`KafkaSinkP`]).
//!
//! Each instance owns a librdkafka producer whose own thread batches the
//! records and reports deliveries. The processor hands records over without
//! blocking (a full producer queue hands the record back, and the processor
//! returns to be called again), fails the job on the first delivery error,
//! and completes only when every record it sent was acknowledged.
//!
//! # Snapshots
//!
//! The job's guarantee decides how the sink takes part in snapshots:
//!
//! * at-least-once: before its part of a snapshot is saved, every record
//!   sent so far is acknowledged (the producer is flushed), so that a
//!   snapshot never covers input whose output could still be lost;
//! * exactly-once: records are held per epoch and written in one Kafka
//!   transaction once the snapshot that ends the epoch is durable; see the
//!   `transactional` module for the protocol and its crash cases. Output
//!   becomes visible to `read_committed` consumers one snapshot interval
//!   late, and the sink holds that interval's output in memory. A
//!   transaction is open only while a committed epoch is written, but it
//!   writes up to one interval of output, so the job's snapshot interval
//!   must be shorter than the producer's `transaction.timeout.ms` (default
//!   60 s); `init` checks it.
//!
//! Under either, the sink waits for the broker in those calls and so runs
//! on a thread of its own.
//!
//! # A stuck producer
//!
//! Outside transactions the sink watches its producer: when records wait
//! and none was delivered for 30 s (`redelivery::STALL_TIMEOUT`), it
//! takes the unacknowledged records back, replaces the producer and sends
//! them again (a record may then be written twice, none is lost). See the
//! `redelivery` module; each replacement is logged and counted in
//! [`SinkMetrics::recoveries`].

use crate::admin::{check_bootstrap, client_config, Properties};
use crate::dead_letter::DeliveryErrors;
use crate::epochs::EpochWriter;
use crate::format::{Bytes, Encoder, Json, Utf8};
use crate::redelivery::{
    Salvage, SinkContext, StallWatch, Unsent, Verdict, PURGE_REPORTS_WAIT, RECOVERIES_IN_A_ROW_MAX,
    STALL_TIMEOUT,
};
use crate::transactional::{TransactionalSettings, COMMIT_MARKER_TOPIC};
use crate::ProducerRecord;
use eddy_core::snapshot::{SnapshotEntry, SnapshotWriter};
use eddy_core::{Event, Inbox, Outbox, Processor, ProcessorContext, ProcessorError};
use eddy_pipeline::Sink;
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, PurgeConfig, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a snapshot of an at-least-once job waits for the records sent
/// before it to be acknowledged: librdkafka's default `message.timeout.ms`
/// (five minutes) fails each record that takes longer anyway.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(300);

/// Pause while the producer's queue is full during a flush.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(1);

/// How long one wait of a snapshot's flush lasts before the sink looks at
/// its producer again: short against [`STALL_TIMEOUT`], so that a stall
/// is noticed within a second of it, and long enough that the loop costs
/// nothing next to the wait.
const FLUSH_STEP: Duration = Duration::from_secs(1);

/// How the producer has its records acknowledged. The job's guarantee
/// (`eddy_core::Guarantee`) decides the rest: under exactly-once the sink
/// writes in Kafka transactions whatever this says (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Acks {
    /// Each record is written at least once, in order per partition: the
    /// idempotent producer (`enable.idempotence=true`, `acks=all`), with
    /// every delivery error failing the job.
    #[default]
    AtLeastOnce,
    /// The leader's acknowledgement only (`acks=1`, no idempotence):
    /// faster, but a broker failure may lose or duplicate records. Delivery
    /// errors still fail the job.
    Leader,
}

/// Counters of a sink, shared by its instances.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    /// Records handed to the producer (under exactly-once: written in
    /// transactions that committed); a record sent again is counted once.
    pub sent: AtomicU64,
    /// Producers replaced because they stopped delivering (see the module
    /// docs).
    pub recoveries: AtomicU64,
    /// Records sent again by a new producer after such a replacement; some
    /// of them may have been written twice.
    pub resent: AtomicU64,
}

/// Turns a pipeline item into a record to write.
pub trait ToRecord<T, K, V>: Send + Sync + 'static {
    /// The record for `item`.
    fn to_record(&self, item: T) -> ProducerRecord<K, V>;
}

/// Takes [`ProducerRecord`]s as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsIs;

impl<K, V> ToRecord<ProducerRecord<K, V>, K, V> for AsIs {
    #[inline]
    fn to_record(&self, item: ProducerRecord<K, V>) -> ProducerRecord<K, V> {
        item
    }
}

/// Writes each item as a value without a key (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unkeyed;

impl<K, V> ToRecord<V, K, V> for Unkeyed {
    #[inline]
    fn to_record(&self, item: V) -> ProducerRecord<K, V> {
        ProducerRecord::new(None, item)
    }
}

/// Writes each item as a value with the key a function computes.
#[derive(Clone)]
pub struct KeyBy<F>(F);

impl<K, V, F: Fn(&V) -> K + Send + Sync + 'static> ToRecord<V, K, V> for KeyBy<F> {
    #[inline]
    fn to_record(&self, item: V) -> ProducerRecord<K, V> {
        ProducerRecord::new(Some((self.0)(&item)), item)
    }
}

#[derive(Debug, Clone)]
struct SinkSettings {
    bootstrap: String,
    topic: String,
    properties: Properties,
    acks: Acks,
    parallelism: Option<usize>,
    marker_topic: String,
}

impl SinkSettings {
    /// The producer's configuration: the crate's defaults, then the
    /// guarantee's, then the user's properties.
    fn producer_properties(&self) -> Properties {
        let mut p = Properties::new();
        let mut set = |k: &str, v: &str| p.insert(k.to_string(), v.to_string());
        // The Java client's default partitioner for keyed records (murmur2
        // of the key bytes), so that keys land where Java clients put them.
        set("partitioner", "murmur2_random");
        // Wait up to 5 ms to fill batches: a small latency cost for large
        // batches (the throughput) under load.
        set("linger.ms", "5");
        match self.acks {
            Acks::AtLeastOnce => {
                set("enable.idempotence", "true");
                set("acks", "all");
            }
            Acks::Leader => {
                set("enable.idempotence", "false");
                set("acks", "1");
            }
        }
        p.extend(self.properties.clone());
        p
    }
}

/// A Kafka sink writing to one topic, encoding keys with `KE` and values
/// with `VE`; `M` turns items into records.
///
/// ```no_run
/// use eddy_kafka::KafkaSink;
/// use eddy_pipeline::{Pipeline, Sources};
/// # #[derive(Clone, serde::Serialize)] struct Alert { card: String }
///
/// let p = Pipeline::new();
/// p.read_from(Sources::items(vec![Alert { card: "c1".into() }]))
///     .write_to(
///         KafkaSink::topic("alerts")
///             .bootstrap("127.0.0.1:9092")
///             .json::<Alert>()
///             .key_string_by(|a: &Alert| a.card.clone()),
///     );
/// ```
pub struct KafkaSink<KE, VE, M> {
    settings: SinkSettings,
    key: Arc<KE>,
    value: Arc<VE>,
    mapping: Arc<M>,
    metrics: Arc<SinkMetrics>,
}

impl KafkaSink<Bytes, Bytes, Unkeyed> {
    /// A sink writing raw value bytes to `topic`, until told otherwise.
    pub fn topic(topic: impl Into<String>) -> Self {
        KafkaSink {
            settings: SinkSettings {
                bootstrap: String::new(),
                topic: topic.into(),
                properties: Properties::new(),
                acks: Acks::AtLeastOnce,
                parallelism: None,
                marker_topic: COMMIT_MARKER_TOPIC.to_string(),
            },
            key: Arc::new(Bytes),
            value: Arc::new(Bytes),
            mapping: Arc::new(Unkeyed),
            metrics: Arc::new(SinkMetrics::default()),
        }
    }
}

impl<KE: Encoder, VE: Encoder, M> KafkaSink<KE, VE, M> {
    /// The cluster's bootstrap address(es), `host:port[,host:port…]`.
    pub fn bootstrap(mut self, bootstrap: impl Into<String>) -> Self {
        self.settings.bootstrap = bootstrap.into();
        self
    }

    /// Sets a producer property (librdkafka's names: `linger.ms`,
    /// `batch.size`, `compression.type`, `message.timeout.ms`, …).
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.properties.insert(key.into(), value.into());
        self
    }

    /// How records are acknowledged (default [`Acks::AtLeastOnce`]).
    pub fn acks(mut self, acks: Acks) -> Self {
        self.settings.acks = acks;
        self
    }

    /// Fixes the number of instances (default: the job's parallelism).
    pub fn parallelism(mut self, instances: usize) -> Self {
        self.settings.parallelism = Some(instances.max(1));
        self
    }

    /// The compacted topic where, under exactly-once, the sink records
    /// which epochs it committed (default [`COMMIT_MARKER_TOPIC`]; created
    /// if missing). Its records must outlive any snapshot the job may
    /// restart from: do not delete it or lower its retention.
    pub fn commit_marker_topic(mut self, topic: impl Into<String>) -> Self {
        self.settings.marker_topic = topic.into();
        self
    }

    /// The counters of this sink.
    pub fn metrics(&self) -> Arc<SinkMetrics> {
        self.metrics.clone()
    }

    fn remap<K2, V2, M2>(self, key: Arc<K2>, value: Arc<V2>, mapping: M2) -> KafkaSink<K2, V2, M2> {
        KafkaSink {
            settings: self.settings,
            key,
            value,
            mapping: Arc::new(mapping),
            metrics: self.metrics,
        }
    }

    /// Encodes values with `encoder`; items are the values, without keys.
    pub fn value_encoder<V2: Encoder>(self, encoder: V2) -> KafkaSink<KE, V2, Unkeyed> {
        let key = self.key.clone();
        self.remap(key, Arc::new(encoder), Unkeyed)
    }

    /// Writes items (strings) as UTF-8 values.
    pub fn string(self) -> KafkaSink<KE, Utf8, Unkeyed> {
        self.value_encoder(Utf8)
    }

    /// Writes items as JSON values.
    pub fn json<T: serde::Serialize + 'static>(self) -> KafkaSink<KE, Json<T>, Unkeyed> {
        self.value_encoder(Json::new())
    }

    /// Encodes keys with `encoder` (default: raw bytes).
    pub fn key_encoder<K2: Encoder>(self, encoder: K2) -> KafkaSink<K2, VE, M> {
        KafkaSink {
            settings: self.settings,
            key: Arc::new(encoder),
            value: self.value,
            mapping: self.mapping,
            metrics: self.metrics,
        }
    }

    /// Keys each item's record with `f(&item)`, encoded by the key encoder.
    pub fn key_by<F>(self, f: F) -> KafkaSink<KE, VE, KeyBy<F>>
    where
        F: Fn(&VE::Value) -> KE::Value + Send + Sync + 'static,
    {
        let (key, value) = (self.key.clone(), self.value.clone());
        self.remap(key, value, KeyBy(f))
    }

    /// Keys each item's record with the UTF-8 string `f(&item)`.
    pub fn key_string_by<F>(self, f: F) -> KafkaSink<Utf8, VE, KeyBy<F>>
    where
        F: Fn(&VE::Value) -> String + Send + Sync + 'static,
    {
        let value = self.value.clone();
        self.remap(Arc::new(Utf8), value, KeyBy(f))
    }

    /// Takes [`ProducerRecord`]s: key, value, headers, partition, timestamp.
    pub fn records(self) -> KafkaSink<KE, VE, AsIs> {
        let (key, value) = (self.key.clone(), self.value.clone());
        self.remap(key, value, AsIs)
    }
}

impl<T, KE, VE, M> Sink<T> for KafkaSink<KE, VE, M>
where
    T: Send + 'static,
    KE: Encoder,
    VE: Encoder,
    M: ToRecord<T, KE::Value, VE::Value>,
{
    type Processor = KafkaSinkP<T, KE, VE, M>;

    fn name(&self) -> String {
        format!("kafka:{}", self.settings.topic)
    }

    fn parallelism(&self) -> Option<usize> {
        self.settings.parallelism
    }

    fn create(&self, ctx: &ProcessorContext) -> KafkaSinkP<T, KE, VE, M> {
        let role = match ctx.guarantee {
            eddy_core::Guarantee::None => SnapshotRole::None,
            eddy_core::Guarantee::AtLeastOnce => SnapshotRole::Flush,
            eddy_core::Guarantee::ExactlyOnce => {
                let s = &self.settings;
                let settings = TransactionalSettings {
                    bootstrap: s.bootstrap.clone(),
                    topic: s.topic.clone(),
                    marker_topic: s.marker_topic.clone(),
                    producer_properties: s.producer_properties(),
                    properties: s.properties.clone(),
                    job_name: ctx.job_name.clone(),
                    vertex_name: ctx.vertex_name.clone(),
                };
                SnapshotRole::Epochs(Box::new(EpochWriter::new(
                    Arc::new(settings),
                    ctx.instance,
                    ctx.parallelism,
                    ctx.snapshot_requester.clone(),
                )))
            }
        };
        KafkaSinkP {
            role,
            settings: self.settings.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            mapping: self.mapping.clone(),
            metrics: self.metrics.clone(),
            producer: None,
            deliveries: Arc::new(DeliveryErrors::default()),
            salvage: Salvage::default(),
            watch: StallWatch::new(STALL_TIMEOUT, RECOVERIES_IN_A_ROW_MAX, Instant::now()),
            next_seq: 0,
            pending: VecDeque::new(),
            key_buf: Vec::new(),
            value_buf: Vec::new(),
            _t: PhantomData,
        }
    }
}

/// A record waiting to be handed to the producer: one its queue had no
/// room for, or one a replaced producer did not deliver.
struct Pending {
    record: Unsent,
    /// Already counted in [`SinkMetrics::sent`] (a record sent again).
    counted: bool,
}

/// How a sink instance takes part in the job's snapshots.
enum SnapshotRole {
    /// The job takes none.
    None,
    /// At-least-once: the producer is flushed before the sink's part of a
    /// snapshot is saved.
    Flush,
    /// Exactly-once: records wait for their snapshot, then go out in a
    /// transaction.
    Epochs(Box<EpochWriter>),
}

/// The processor of a [`KafkaSink`] instance: cooperative (it never waits
/// for the broker) in a job without snapshots, on a thread of its own in a
/// job with them.
pub struct KafkaSinkP<T, KE, VE, M> {
    role: SnapshotRole,
    settings: SinkSettings,
    key: Arc<KE>,
    value: Arc<VE>,
    mapping: Arc<M>,
    metrics: Arc<SinkMetrics>,
    producer: Option<ThreadedProducer<SinkContext>>,
    deliveries: Arc<DeliveryErrors>,
    /// Where a purged producer hands its records back.
    salvage: Salvage,
    watch: StallWatch,
    /// The number of the next record handed to the producer: its delivery
    /// opaque, which orders the records a purge hands back.
    next_seq: usize,
    /// Oldest first.
    pending: VecDeque<Pending>,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    _t: PhantomData<fn(T)>,
}

/// Outcome of handing one record to the producer.
enum Sent {
    Yes,
    QueueFull,
}

/// Hands a record to the producer; the payloads are copied by librdkafka,
/// so the buffers may be reused at once.
#[allow(clippy::too_many_arguments)]
fn send_record(
    producer: &ThreadedProducer<SinkContext>,
    topic: &str,
    seq: usize,
    key: Option<&[u8]>,
    value: &[u8],
    headers: &[(String, Vec<u8>)],
    partition: Option<i32>,
    timestamp_ms: Option<i64>,
) -> Result<Sent, ProcessorError> {
    let mut record: BaseRecord<'_, [u8], [u8], usize> =
        BaseRecord::with_opaque_to(topic, seq).payload(value);
    if let Some(k) = key {
        record = record.key(k);
    }
    if !headers.is_empty() {
        let mut owned = OwnedHeaders::new_with_capacity(headers.len());
        for (k, v) in headers {
            owned = owned.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        record = record.headers(owned);
    }
    if let Some(p) = partition {
        record = record.partition(p);
    }
    if let Some(ts) = timestamp_ms {
        record = record.timestamp(ts);
    }
    match producer.send(record) {
        Ok(()) => Ok(Sent::Yes),
        Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Ok(Sent::QueueFull),
        Err((e, _)) => Err(ProcessorError::new(format!(
            "cannot send a record to topic '{topic}': {e}; check the record size against the topic's max.message.bytes and the producer properties"
        ))),
    }
}

impl<T, KE, VE, M> KafkaSinkP<T, KE, VE, M>
where
    KE: Encoder,
    VE: Encoder,
    M: ToRecord<T, KE::Value, VE::Value>,
{
    fn check_deliveries(&self) -> Result<(), ProcessorError> {
        match self.deliveries.first() {
            Some(e) => Err(ProcessorError::new(e)),
            None => Ok(()),
        }
    }

    /// Sends the records waiting to be handed over, oldest first; false if
    /// the queue refused one again.
    fn send_pending(&mut self) -> Result<bool, ProcessorError> {
        if self.pending.is_empty() {
            return Ok(true);
        }
        let producer = self.producer.as_ref().ok_or_else(not_initialised)?;
        while let Some(p) = self.pending.front() {
            let r = &p.record;
            let sent = send_record(
                producer,
                &self.settings.topic,
                self.next_seq,
                r.key.as_deref(),
                &r.value,
                &r.headers,
                r.partition,
                r.timestamp_ms,
            )?;
            match sent {
                Sent::Yes => {
                    self.next_seq += 1;
                    if !p.counted {
                        self.metrics.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    self.pending.pop_front();
                }
                Sent::QueueFull => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Waits until every record handed over so far was acknowledged,
    /// replacing the producer if it stalls meanwhile.
    fn flush(&mut self) -> Result<(), ProcessorError> {
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        loop {
            self.check_deliveries()?;
            self.watch_deliveries()?;
            let handed_over = self.send_pending()?;
            let producer = self.producer.as_ref().ok_or_else(not_initialised)?;
            if handed_over && producer.in_flight_count() == 0 {
                return self.check_deliveries();
            }
            if Instant::now() >= deadline {
                return Err(ProcessorError::new(format!(
                    "records for topic '{}' were not acknowledged within {FLUSH_TIMEOUT:?} for a snapshot ({} in flight, {} waiting); check that the broker runs",
                    self.settings.topic,
                    producer.in_flight_count(),
                    self.pending.len()
                )));
            }
            if !handed_over {
                std::thread::sleep(QUEUE_FULL_WAIT);
            } else if producer.flush(FLUSH_STEP).is_err() {
                // Not all acknowledged yet (librdkafka reports only a
                // timeout here): look at the producer and wait again.
            }
        }
    }

    fn create_producer(&self) -> Result<ThreadedProducer<SinkContext>, ProcessorError> {
        let s = &self.settings;
        client_config(&s.bootstrap, &s.producer_properties())
            .create_with_context(SinkContext {
                errors: self.deliveries.clone(),
                salvage: self.salvage.clone(),
            })
            .map_err(|e| {
                ProcessorError::new(format!(
                    "cannot create the Kafka producer for topic '{}': {e}; check the producer properties",
                    s.topic
                ))
            })
    }

    /// Replaces the producer if it stopped delivering (see the module
    /// docs); fails once replacements stop helping.
    fn watch_deliveries(&mut self) -> Result<(), ProcessorError> {
        let Some(producer) = &self.producer else {
            return Ok(());
        };
        let delivered = self.deliveries.delivered.load(Ordering::Relaxed);
        // librdkafka's count also holds its own pending events, which made a
        // quiet sink with every record acknowledged look stalled; records
        // this instance handed over and saw no report of bound it (after a
        // replacement that count also holds the purged sends, which the
        // producer's own count then bounds).
        let unreported = (self.next_seq as u64).saturating_sub(delivered);
        let in_flight = usize::try_from(
            u64::try_from(producer.in_flight_count())
                .unwrap_or(0)
                .min(unreported),
        )
        .unwrap_or(usize::MAX);
        match self.watch.check(delivered, in_flight, Instant::now()) {
            Verdict::Progress | Verdict::Waiting => Ok(()),
            Verdict::Stalled => self.replace_producer(in_flight),
            Verdict::GiveUp => Err(ProcessorError::new(format!(
                "the Kafka producer for topic '{}' delivered nothing in {:?} with {in_flight} records in flight, and {} new producers in a row did not either; check that the broker runs and accepts writes",
                self.settings.topic,
                STALL_TIMEOUT * (RECOVERIES_IN_A_ROW_MAX + 1),
                self.watch.recoveries_in_a_row()
            ))),
        }
    }

    /// Takes back every record the producer holds, drops it, and makes a
    /// new one that sends them again before anything newer. Blocks for as
    /// long as the purge takes (milliseconds; at most
    /// [`PURGE_REPORTS_WAIT`]), also on a cooperative thread: it happens
    /// once per stall.
    fn replace_producer(&mut self, in_flight: usize) -> Result<(), ProcessorError> {
        let topic = &self.settings.topic;
        tracing::warn!(
            topic = %topic,
            in_flight,
            stall_s = STALL_TIMEOUT.as_secs(),
            recoveries_in_a_row = self.watch.recoveries_in_a_row(),
            "the Kafka producer delivered nothing for the stall timeout while records were in flight: replacing it and sending its unacknowledged records again"
        );
        let producer = self.producer.take().ok_or_else(not_initialised)?;
        // Every record, queued or in a request, goes back through the
        // delivery callback, which the producer's thread serves.
        producer.purge(PurgeConfig::default().queue().inflight());
        producer.flush(PURGE_REPORTS_WAIT).map_err(|e| {
            ProcessorError::new(format!(
                "the stalled Kafka producer for topic '{topic}' did not hand its records back within {PURGE_REPORTS_WAIT:?} ({e}); failing rather than losing them"
            ))
        })?;
        drop(producer);
        let mut salvaged = std::mem::take(&mut *self.salvage.lock());
        salvaged.sort_unstable_by_key(|(seq, _)| *seq);
        let resent = salvaged.len();
        for (_, record) in salvaged.into_iter().rev() {
            self.pending.push_front(Pending {
                record,
                counted: true,
            });
        }
        self.producer = Some(self.create_producer()?);
        self.watch.recovered(Instant::now());
        self.metrics.recoveries.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .resent
            .fetch_add(resent as u64, Ordering::Relaxed);
        tracing::warn!(topic = %topic, resent, "a new Kafka producer sends the records the stalled one did not deliver");
        self.send_pending().map(|_| ())
    }

    /// Under exactly-once: adds the inbox's records to the current epoch.
    fn hold(&mut self, inbox: &mut Inbox<Event<T>>) -> Result<(), ProcessorError> {
        let SnapshotRole::Epochs(epochs) = &mut self.role else {
            return Ok(());
        };
        while let Some(event) = inbox.poll() {
            let record = self.mapping.to_record(event.value);
            epochs.push(&*self.key, &*self.value, record).map_err(|e| {
                ProcessorError::new(format!(
                    "cannot encode a record for topic '{}': {e}",
                    self.settings.topic
                ))
            })?;
        }
        epochs.ask_if_large();
        Ok(())
    }
}

fn not_initialised() -> ProcessorError {
    ProcessorError::new("the Kafka sink was not initialised")
}

impl<T, KE, VE, M> Processor for KafkaSinkP<T, KE, VE, M>
where
    T: Send + 'static,
    KE: Encoder,
    VE: Encoder,
    M: ToRecord<T, KE::Value, VE::Value>,
{
    type In = Event<T>;
    type Out = ();

    fn validate(&self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        let s = &self.settings;
        check_bootstrap(&s.bootstrap)
            .map_err(|e| ProcessorError::new(format!("{}: {e}", ctx.vertex_name)))?;
        if s.topic.trim().is_empty() {
            return Err(ProcessorError::new(
                "a Kafka sink needs a topic name: check KafkaSink::topic",
            ));
        }
        if let SnapshotRole::Epochs(epochs) = &self.role {
            epochs.check_snapshot_interval(ctx.snapshot_interval)?;
            if s.marker_topic.trim().is_empty() {
                return Err(ProcessorError::new(
                    "an exactly-once Kafka sink needs a commit-marker topic: check KafkaSink::commit_marker_topic",
                ));
            }
        }
        Ok(())
    }

    fn init(&mut self, ctx: &ProcessorContext) -> Result<(), ProcessorError> {
        // Checked at submission too; a processor made outside a job (tests)
        // is checked here.
        self.validate(ctx)?;
        if let SnapshotRole::Epochs(_) = &self.role {
            // Its transactional producers are made when it first commits,
            // after any restore told it which ids to fence.
            return Ok(());
        }
        self.producer = Some(self.create_producer()?);
        self.watch = StallWatch::new(STALL_TIMEOUT, RECOVERIES_IN_A_ROW_MAX, Instant::now());
        Ok(())
    }

    fn is_cooperative(&self) -> bool {
        matches!(self.role, SnapshotRole::None)
    }

    fn process<O: Outbox<()>>(
        &mut self,
        _: usize,
        inbox: &mut Inbox<Event<T>>,
        _: &mut O,
    ) -> Result<(), ProcessorError> {
        if let SnapshotRole::Epochs(_) = self.role {
            return self.hold(inbox);
        }
        self.check_deliveries()?;
        self.watch_deliveries()?;
        if !self.send_pending()? {
            return Ok(());
        }
        let producer = self.producer.as_ref().ok_or_else(not_initialised)?;
        let mut sent = 0u64;
        while let Some(event) = inbox.poll() {
            let record = self.mapping.to_record(event.value);
            self.value_buf.clear();
            self.value
                .encode(&record.value, &mut self.value_buf)
                .map_err(|e| {
                    ProcessorError::new(format!(
                        "cannot encode a value for topic '{}': {e}",
                        self.settings.topic
                    ))
                })?;
            let has_key = match &record.key {
                Some(k) => {
                    self.key_buf.clear();
                    self.key.encode(k, &mut self.key_buf).map_err(|e| {
                        ProcessorError::new(format!(
                            "cannot encode a key for topic '{}': {e}",
                            self.settings.topic
                        ))
                    })?;
                    true
                }
                None => false,
            };
            let key = has_key.then_some(self.key_buf.as_slice());
            let outcome = send_record(
                producer,
                &self.settings.topic,
                self.next_seq,
                key,
                &self.value_buf,
                &record.headers,
                record.partition,
                record.timestamp_ms,
            )?;
            match outcome {
                Sent::Yes => {
                    sent += 1;
                    self.next_seq += 1;
                }
                Sent::QueueFull => {
                    // The producer's queue is full: keep the record and
                    // return; the runtime calls again once time passed.
                    self.pending.push_back(Pending {
                        record: Unsent {
                            key: key.map(<[u8]>::to_vec),
                            value: self.value_buf.clone(),
                            headers: record.headers,
                            partition: record.partition,
                            timestamp_ms: record.timestamp_ms,
                        },
                        counted: false,
                    });
                    break;
                }
            }
        }
        self.metrics.sent.fetch_add(sent, Ordering::Relaxed);
        Ok(())
    }

    fn try_process<O: Outbox<()>>(&mut self, _: &mut O) -> Result<bool, ProcessorError> {
        if let SnapshotRole::Epochs(_) = self.role {
            return Ok(true);
        }
        self.check_deliveries()?;
        self.watch_deliveries()?;
        self.send_pending()
    }

    fn complete<O: Outbox<()>>(&mut self, _: &mut O) -> Result<bool, ProcessorError> {
        if let SnapshotRole::Epochs(epochs) = &self.role {
            // Done once the last records are committed: the job's next
            // snapshots seal and commit them.
            return Ok(epochs.is_drained());
        }
        self.check_deliveries()?;
        self.watch_deliveries()?;
        if !self.send_pending()? {
            return Ok(false);
        }
        let producer = self.producer.as_ref().ok_or_else(not_initialised)?;
        // Done when every record sent was acknowledged (or failed, which
        // the next check reports).
        if producer.in_flight_count() > 0 {
            return Ok(false);
        }
        self.check_deliveries()?;
        Ok(true)
    }

    fn save_to_snapshot(
        &mut self,
        snapshot_id: u64,
        writer: &mut SnapshotWriter,
    ) -> Result<(), ProcessorError> {
        match &mut self.role {
            SnapshotRole::None => Ok(()),
            SnapshotRole::Flush => self.flush(),
            SnapshotRole::Epochs(epochs) => epochs.save(snapshot_id, writer),
        }
    }

    fn restore_from_snapshot(&mut self, entry: SnapshotEntry<'_>) -> Result<(), ProcessorError> {
        // Only an exactly-once sink saves entries; a job restarted with
        // another guarantee has no use for them.
        match &mut self.role {
            SnapshotRole::Epochs(epochs) => epochs.restore(entry),
            SnapshotRole::None | SnapshotRole::Flush => Ok(()),
        }
    }

    fn snapshot_commit_finish(&mut self, snapshot_id: u64) -> Result<(), ProcessorError> {
        if let SnapshotRole::Epochs(epochs) = &mut self.role {
            let written = epochs.commit_up_to(snapshot_id)?;
            self.metrics
                .sent
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ProcessorError> {
        // Dropping the producer purges what is still queued: after a
        // failure or cancellation nothing more is owed to the topic. An
        // exactly-once sink's open transaction, if any, is aborted by the
        // broker, or fenced by the next execution.
        self.producer = None;
        self.role = SnapshotRole::None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_core::VecOutbox;

    #[test]
    fn when_the_producer_delivers_nothing_then_it_is_replaced_and_its_records_sent_again() {
        // A port nothing listens on: the records wait in the producer.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let sink = KafkaSink::topic("t")
            .bootstrap(format!("127.0.0.1:{port}"))
            .string();
        let metrics = sink.metrics();
        let ctx = ProcessorContext::standalone("kafka:t");
        let mut p = sink.create(&ctx);
        p.init(&ctx).unwrap();
        let stall = Duration::from_millis(300);
        p.watch = StallWatch::new(stall, 1, Instant::now());
        let records = 10;
        let mut inbox = Inbox::from_vec(
            (0..records)
                .map(|i| Event::untimed(format!("r{i}")))
                .collect(),
        );
        let mut out = VecOutbox::with_capacity(1);
        p.process(0, &mut inbox, &mut out).unwrap();
        let in_flight = |p: &KafkaSinkP<_, _, _, _>| p.producer.as_ref().unwrap().in_flight_count();
        // librdkafka's count includes its own pending events (connection
        // errors here), so it may exceed the records.
        assert!(in_flight(&p) >= records);

        std::thread::sleep(stall);
        assert!(
            p.try_process(&mut out).unwrap(),
            "all handed to the new producer"
        );
        assert_eq!(metrics.recoveries.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.resent.load(Ordering::Relaxed), records as u64);
        assert_eq!(
            metrics.sent.load(Ordering::Relaxed),
            records as u64,
            "a record sent again is counted once"
        );
        assert!(
            in_flight(&p) >= records,
            "the new producer holds every record"
        );

        std::thread::sleep(stall);
        let err = p.try_process(&mut out).unwrap_err().to_string();
        assert!(err.contains("delivered nothing"), "{err}");
        p.close().unwrap();
    }
}
