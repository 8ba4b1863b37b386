//! The consumer thread of a source instance.
//!
//! librdkafka's consumer calls back synchronously and its `poll` waits, so it
//! runs on a thread of its own, never on a cooperative worker. The thread
//! owns a `BaseConsumer` with a manual assignment (the instance's share of
//! the partitions), decodes records, sends the ones it cannot decode to the
//! dead-letter sink, and hands batches to the processor through a bounded
//! queue. A full queue stops it polling: that is how a slow pipeline slows
//! the consumer down, while librdkafka's own prefetch stays bounded by its
//! `queued.max.messages.kbytes`.
//!
//! A source restored from a snapshot hands the thread the saved offsets of
//! the partitions it owns: those start there, the others where a fresh
//! source would start them.

use crate::admin::client_config;
use crate::dead_letter::{DeadLetterRecord, DeadLetterWriter};
use crate::format::Decoder;
use crate::source::{Projection, SourceMetrics, SourceSettings, StartPosition};
use crate::KafkaRecord;
use crossbeam_queue::ArrayQueue;
use eddy_core::{Event, ProcessorContext, NO_TIMESTAMP};
use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most records in one batch handed to the processor. Large enough that the
/// queue operation is shared by many records, small enough that the first
/// records of a batch are not held back long waiting for the rest.
const BATCH_RECORDS_MAX: usize = 1024;

/// Batches the queue holds. With [`BATCH_RECORDS_MAX`] this bounds the
/// decoded records waiting per instance to 8k: enough to keep the processor
/// busy while the thread polls again, without hoarding memory.
pub(crate) const QUEUE_BATCHES_MAX: usize = 8;

/// How long one `poll` waits for a record when none is ready. It bounds how
/// late the thread notices a stop request or a metadata refresh that is due.
const POLL_WAIT: Duration = Duration::from_millis(50);

/// How long the thread sleeps when the queue is full: short against the
/// time the processor needs to drain a batch, long against a spin.
const QUEUE_FULL_WAIT: Duration = Duration::from_micros(200);

/// Timeout of each metadata and offset request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause between two attempts to reach the cluster at start-up.
const CONNECT_RETRY_WAIT: Duration = Duration::from_millis(500);

/// A record (or a dead letter's place) on its way to the processor.
pub(crate) struct Polled<O> {
    /// Index of its partition in the processor's table.
    pub(crate) slot: u32,
    pub(crate) offset: i64,
    /// `None` for a record that went to the dead-letter sink.
    pub(crate) event: Option<Event<O>>,
}

/// What the thread tells the processor, in order.
pub(crate) enum FromPoller<O> {
    /// New partitions, with the offset reading starts at; they get the next
    /// slots in order.
    Assigned(Vec<(Arc<str>, i32, i64)>),
    Records(Vec<Polled<O>>),
    /// A `stop_at_end` source has read everything.
    Finished,
}

/// Everything a source's instances share.
pub(crate) struct Shared<KD, VD, P: Projection<KD::Value, VD::Value>>
where
    KD: Decoder,
    VD: Decoder,
{
    pub(crate) settings: SourceSettings,
    pub(crate) key: Arc<KD>,
    pub(crate) value: Arc<VD>,
    pub(crate) projection: Arc<P>,
    pub(crate) timestamp_fn: Option<Arc<dyn Fn(&P::Out) -> i64 + Send + Sync>>,
    pub(crate) metrics: Arc<SourceMetrics>,
}

/// The processor's side of the thread.
pub(crate) struct PollerHandle<O> {
    pub(crate) queue: Arc<ArrayQueue<FromPoller<O>>>,
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

/// Stop request and failure report between the processor and the thread.
#[derive(Default)]
struct Control {
    stop: AtomicBool,
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl Control {
    fn fail(&self, message: String) {
        let mut failure = self.failure.lock();
        if failure.is_none() {
            *failure = Some(message);
        }
        self.failed.store(true, Ordering::Release);
    }
}

impl<O> PollerHandle<O> {
    /// Why the thread failed, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        if !self.control.failed.load(Ordering::Acquire) {
            return None;
        }
        self.control.failure.lock().clone()
    }

    /// Stops the thread and waits for it (it notices within [`POLL_WAIT`]).
    pub(crate) fn stop(mut self) {
        self.control.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<O> Drop for PollerHandle<O> {
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::Release);
    }
}

/// Starts the consumer thread of instance `ctx.instance`; `restored` maps
/// `(topic, partition)` to the offset a snapshot saved for it.
pub(crate) fn spawn<KD, VD, P>(
    shared: Arc<Shared<KD, VD, P>>,
    ctx: &ProcessorContext,
    restored: &HashMap<(String, i32), i64>,
) -> Result<PollerHandle<P::Out>, String>
where
    KD: Decoder,
    VD: Decoder,
    P: Projection<KD::Value, VD::Value>,
{
    let s = &shared.settings;
    let mut config = client_config(&s.bootstrap, &Default::default());
    // Defaults first, the user's properties over them.
    config.set("group.id", format!("eddy-{}", ctx.job_name));
    config.set("enable.auto.commit", "false");
    config.set("enable.auto.offset.store", "false");
    config.set("enable.partition.eof", "false");
    config.set("auto.offset.reset", "earliest");
    // A fetch waits at most this long for data on the broker. librdkafka's
    // 500 ms default puts up to half a second between a record's arrival
    // and its processing on a quiet topic; 10 ms keeps that within the
    // latency budget of a streaming job at the cost of more (cheap) empty
    // fetch requests while the topic is idle.
    config.set("fetch.wait.max.ms", "10");
    for (k, v) in &s.properties {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create().map_err(|e| {
        format!(
            "cannot create a Kafka consumer for {}: {e}; check the consumer properties",
            s.topics.join(",")
        )
    })?;
    let dead_letters = DeadLetterWriter::new(&s.dead_letter, &s.bootstrap, &s.properties)?;
    let queue = Arc::new(ArrayQueue::new(QUEUE_BATCHES_MAX));
    let control = Arc::new(Control::default());
    let restored = restored
        .iter()
        .filter_map(|((topic, p), &o)| {
            let ti = s.topics.iter().position(|t| t == topic)?;
            Some(((ti, *p), o))
        })
        .collect();
    let mut poller = Poller {
        shared: shared.clone(),
        consumer: Arc::new(consumer),
        dead_letters,
        queue: queue.clone(),
        control: control.clone(),
        instance: ctx.instance,
        parallelism: ctx.parallelism.max(1),
        owned: HashSet::new(),
        slots: Vec::new(),
        ends: Vec::new(),
        restored,
        topics: s
            .topics
            .iter()
            .map(|t| Arc::<str>::from(t.as_str()))
            .collect(),
        connected: false,
        failing: false,
        waker: ctx.waker.clone(),
        request_timeout: (s.connect_timeout / 4).clamp(Duration::from_millis(250), REQUEST_TIMEOUT),
    };
    let thread = std::thread::Builder::new()
        .name(format!("kafka-poll-{}-{}", ctx.vertex_name, ctx.instance))
        .spawn(move || {
            if let Err(message) = poller.run() {
                poller.control.fail(message);
            }
        })
        .map_err(|e| format!("cannot start the Kafka consumer thread: {e}"))?;
    Ok(PollerHandle {
        queue,
        control,
        thread: Some(thread),
    })
}

struct Poller<KD, VD, P>
where
    KD: Decoder,
    VD: Decoder,
    P: Projection<KD::Value, VD::Value>,
{
    shared: Arc<Shared<KD, VD, P>>,
    consumer: Arc<BaseConsumer>,
    dead_letters: DeadLetterWriter,
    queue: Arc<ArrayQueue<FromPoller<P::Out>>>,
    control: Arc<Control>,
    instance: usize,
    parallelism: usize,
    /// Partitions assigned so far, as `(topic index, partition)`.
    owned: HashSet<(usize, i32)>,
    /// Slot of each owned partition: `(topic index, partition)` in order.
    slots: Vec<(usize, i32)>,
    /// For `stop_at_end`: the end offset of each slot, and whether reached.
    ends: Vec<(i64, bool)>,
    /// Offsets restored from a snapshot, by `(topic index, partition)`,
    /// until the partition is assigned.
    restored: HashMap<(usize, i32), i64>,
    topics: Vec<Arc<str>>,
    /// Whether the first assignment was made (partitions found later start
    /// at their beginning, not at the configured start position).
    connected: bool,
    /// Whether the last poll reported an error and no record came since:
    /// the log says when the consumer loses and regains the broker, once.
    failing: bool,
    /// Wakes the processor's worker when a message is handed over, so that
    /// a sleeping worker takes records at once rather than at its timer.
    waker: eddy_core::Waker,
    /// Timeout of metadata and offset requests: shorter while connecting,
    /// so that several attempts fit in the connect timeout.
    request_timeout: Duration,
}

/// Whether the instance `instance` of `parallelism` reads partition
/// `partition` of the topic with index `topic_index` of `topic_count`
/// (Jet's rule: each topic's partitions are dealt round robin, each topic
/// starting at another instance so that small topics spread out).
pub(crate) fn owns(
    topic_index: usize,
    topic_count: usize,
    partition: i32,
    instance: usize,
    parallelism: usize,
) -> bool {
    let start = topic_index * (parallelism / topic_count.max(1)).max(1);
    (start + partition as usize) % parallelism == instance
}

impl<KD, VD, P> Poller<KD, VD, P>
where
    KD: Decoder,
    VD: Decoder,
    P: Projection<KD::Value, VD::Value>,
{
    fn stopping(&self) -> bool {
        self.control.stop.load(Ordering::Acquire)
    }

    fn run(&mut self) -> Result<(), String> {
        self.connect()?;
        let refresh = self.shared.settings.metadata_refresh;
        let mut next_refresh = Instant::now() + refresh;
        let mut batch: Vec<Polled<P::Out>> = Vec::with_capacity(BATCH_RECORDS_MAX);
        while !self.stopping() {
            if let Some(e) = self.dead_letters.delivery_error() {
                return Err(e);
            }
            if self.shared.settings.stop_at_end && self.all_ends_reached() {
                self.dead_letters.flush()?;
                self.push(FromPoller::Finished);
                return Ok(());
            }
            if !self.shared.settings.stop_at_end && Instant::now() >= next_refresh {
                next_refresh = Instant::now() + refresh;
                // A failed refresh is retried at the next interval; the
                // client reconnects by itself meanwhile.
                if let Err(e) = self.assign_new_partitions() {
                    *self.shared.metrics.last_error.lock() = Some(e);
                }
            }
            self.poll_batch(&mut batch)?;
            if batch.is_empty() {
                if self.shared.settings.stop_at_end {
                    self.check_positions();
                }
                continue;
            }
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_RECORDS_MAX));
            self.push(FromPoller::Records(full));
        }
        // Stopped: dead letters in flight still go out (bounded wait).
        self.dead_letters.flush()
    }

    /// Hands a message to the processor, waiting while the queue is full.
    fn push(&self, mut msg: FromPoller<P::Out>) {
        loop {
            match self.queue.push(msg) {
                Ok(()) => {
                    self.waker.wake();
                    return;
                }
                Err(back) => {
                    if self.stopping() {
                        return;
                    }
                    msg = back;
                    std::thread::sleep(QUEUE_FULL_WAIT);
                }
            }
        }
    }

    /// Reaches the cluster and takes the first assignment, retrying until
    /// the connect timeout.
    fn connect(&mut self) -> Result<(), String> {
        let shared = self.shared.clone();
        let s = &shared.settings;
        let deadline = Instant::now() + s.connect_timeout;
        let mut attempts = 0u64;
        loop {
            attempts += 1;
            match self.assign_new_partitions() {
                Ok(()) => {
                    self.request_timeout = REQUEST_TIMEOUT;
                    return Ok(());
                }
                Err(e) => {
                    *self.shared.metrics.last_error.lock() = Some(e.clone());
                    if Instant::now() >= deadline || self.stopping() {
                        return Err(format!(
                            "cannot reach the Kafka cluster at {} to read {} ({attempts} attempts over {:.0?}): {e}; \
                             check that the broker runs ('scripts/kafka status') and that the bootstrap address is right, \
                             or raise KafkaSource::connect_timeout",
                            s.bootstrap,
                            s.topics.join(","),
                            s.connect_timeout
                        ));
                    }
                    self.shared
                        .metrics
                        .connect_retries
                        .fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(CONNECT_RETRY_WAIT);
                }
            }
        }
    }

    /// Reads the topics' metadata and assigns this instance's partitions
    /// that are not assigned yet.
    fn assign_new_partitions(&mut self) -> Result<(), String> {
        let shared = self.shared.clone();
        let s = &shared.settings;
        let first = !self.connected;
        let mut new: Vec<(usize, i32)> = Vec::new();
        for (ti, topic) in s.topics.iter().enumerate() {
            let metadata = self
                .consumer
                .fetch_metadata(Some(topic), self.request_timeout)
                .map_err(|e| format!("reading metadata of topic '{topic}': {e}"))?;
            let Some(tm) = metadata.topics().iter().find(|t| t.name() == topic) else {
                continue;
            };
            if let Some(err) = tm.error() {
                let code = rdkafka::types::RDKafkaErrorCode::from(err);
                return Err(format!(
                    "topic '{topic}' is not readable: {code}; create it (scripts or `eddy produce --partitions`) or fix its name"
                ));
            }
            for p in tm.partitions() {
                let id = p.id();
                if !self.owned.contains(&(ti, id))
                    && owns(ti, s.topics.len(), id, self.instance, self.parallelism)
                {
                    new.push((ti, id));
                }
            }
        }
        new.sort_unstable();
        if new.is_empty() {
            // Nothing (new) to read: an instance beyond the partition count
            // still connected; partitions may come later. The first time,
            // the processor learns that its (empty) assignment is known,
            // so that it may declare itself idle.
            if first {
                self.push(FromPoller::Assigned(Vec::new()));
            }
            self.connected = true;
            return Ok(());
        }
        let mut offsets = Vec::with_capacity(new.len());
        for &(ti, p) in &new {
            if let Some(&o) = self.restored.get(&(ti, p)) {
                offsets.push(o);
                continue;
            }
            let start = if first {
                s.start
            } else {
                StartPosition::Earliest
            };
            offsets.push(self.start_offset(&s.topics[ti], p, start)?);
        }
        let mut tpl = TopicPartitionList::new();
        for (&(ti, p), &o) in new.iter().zip(&offsets) {
            tpl.add_partition_offset(&s.topics[ti], p, Offset::Offset(o))
                .map_err(|e| format!("bad offset {o} for {}/{p}: {e}", s.topics[ti]))?;
        }
        self.consumer
            .incremental_assign(&tpl)
            .map_err(|e| format!("assigning partitions of {}: {e}", s.topics.join(",")))?;
        let mut assigned = Vec::with_capacity(new.len());
        for (&(ti, p), &o) in new.iter().zip(&offsets) {
            self.restored.remove(&(ti, p));
            self.owned.insert((ti, p));
            self.slots.push((ti, p));
            if s.stop_at_end {
                let (_, high) = self
                    .consumer
                    .fetch_watermarks(&s.topics[ti], p, self.request_timeout)
                    .map_err(|e| format!("reading the end offset of {}/{p}: {e}", s.topics[ti]))?;
                self.ends.push((high, o >= high));
            }
            assigned.push((self.topics[ti].clone(), p, o));
        }
        self.push(FromPoller::Assigned(assigned));
        self.connected = true;
        Ok(())
    }

    /// The offset reading of `topic`/`partition` starts at.
    fn start_offset(
        &self,
        topic: &str,
        partition: i32,
        start: StartPosition,
    ) -> Result<i64, String> {
        let watermarks = || {
            self.consumer
                .fetch_watermarks(topic, partition, self.request_timeout)
                .map_err(|e| format!("reading the offsets of {topic}/{partition}: {e}"))
        };
        match start {
            StartPosition::Earliest => Ok(watermarks()?.0),
            StartPosition::Latest => Ok(watermarks()?.1),
            StartPosition::Timestamp(ts) => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(topic, partition, Offset::Offset(ts))
                    .map_err(|e| format!("bad timestamp {ts}: {e}"))?;
                let found = self
                    .consumer
                    .offsets_for_times(tpl, self.request_timeout)
                    .map_err(|e| {
                        format!("looking up offsets of {topic}/{partition} by time: {e}")
                    })?;
                match found.find_partition(topic, partition).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => Ok(o),
                    _ => Ok(watermarks()?.1),
                }
            }
            StartPosition::Committed => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(topic, partition);
                let committed = self
                    .consumer
                    .committed_offsets(tpl, self.request_timeout)
                    .map_err(|e| {
                        format!("reading committed offsets of {topic}/{partition}: {e}")
                    })?;
                match committed
                    .find_partition(topic, partition)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(o)) => Ok(o),
                    _ => Ok(watermarks()?.0),
                }
            }
        }
    }

    fn all_ends_reached(&self) -> bool {
        self.ends.iter().all(|&(_, reached)| reached)
    }

    /// For `stop_at_end`: marks partitions whose position reached the end
    /// (the last records of a partition may be transaction markers, which
    /// are never delivered).
    fn check_positions(&mut self) {
        let Ok(positions) = self.consumer.position() else {
            return;
        };
        for (slot, &(ti, p)) in self.slots.iter().enumerate() {
            if let Some(Offset::Offset(o)) = positions
                .find_partition(&self.shared.settings.topics[ti], p)
                .map(|e| e.offset())
            {
                let end = &mut self.ends[slot];
                end.1 |= o >= end.0;
            }
        }
    }

    /// Polls up to a batch of records; waits up to [`POLL_WAIT`] for the
    /// first only.
    fn poll_batch(&mut self, batch: &mut Vec<Polled<P::Out>>) -> Result<(), String> {
        let mut wait = POLL_WAIT;
        // A handle of its own, so that a message (which borrows the
        // consumer) can live while `self` is borrowed mutably.
        let consumer = self.consumer.clone();
        while batch.len() < BATCH_RECORDS_MAX {
            match consumer.poll(wait) {
                None => break,
                Some(Err(e)) => {
                    // Transport errors and the like: librdkafka retries and
                    // reconnects by itself; keep the last one for metrics.
                    if !self.failing {
                        self.failing = true;
                        tracing::warn!(
                            source = %self.shared.settings.topics.join(","),
                            instance = self.instance,
                            error = %e,
                            "Kafka consumer error; librdkafka retries"
                        );
                    }
                    *self.shared.metrics.last_error.lock() = Some(e.to_string());
                    break;
                }
                Some(Ok(msg)) => {
                    if self.failing {
                        self.failing = false;
                        tracing::info!(
                            source = %self.shared.settings.topics.join(","),
                            instance = self.instance,
                            "Kafka consumer receiving again"
                        );
                    }
                    if let Some(polled) = self.decode(&msg)? {
                        batch.push(polled);
                    }
                }
            }
            wait = Duration::ZERO;
        }
        Ok(())
    }

    fn slot_of(&self, topic: &str, partition: i32) -> Option<usize> {
        self.slots
            .iter()
            .position(|&(ti, p)| p == partition && self.shared.settings.topics[ti] == topic)
    }

    /// Decodes a record; `None` for one a `stop_at_end` source skips.
    fn decode(&mut self, msg: &BorrowedMessage<'_>) -> Result<Option<Polled<P::Out>>, String> {
        let slot = self.slot_of(msg.topic(), msg.partition()).ok_or_else(|| {
            format!(
                "received a record of {}/{} which this instance does not own: a bug in the partition assignment",
                msg.topic(),
                msg.partition()
            )
        })?;
        let offset = msg.offset();
        if self.shared.settings.stop_at_end {
            let end = &mut self.ends[slot];
            if offset >= end.0 {
                // Written after start-up: not part of this batch.
                end.1 = true;
                return Ok(None);
            }
            end.1 |= offset + 1 >= end.0;
        }
        let ts = msg.timestamp().to_millis();
        match self.decode_record(msg, slot, ts) {
            Ok(event) => Ok(Some(Polled {
                slot: slot as u32,
                offset,
                event: Some(event),
            })),
            Err(reason) => {
                self.dead_letter(msg, reason)?;
                Ok(Some(Polled {
                    slot: slot as u32,
                    offset,
                    event: None,
                }))
            }
        }
    }

    fn decode_record(
        &self,
        msg: &BorrowedMessage<'_>,
        slot: usize,
        ts: Option<i64>,
    ) -> Result<Event<P::Out>, String> {
        let s = &self.shared;
        let payload = msg.payload().unwrap_or_default();
        if payload.len() > s.settings.value_bytes_max {
            return Err(format!(
                "value of {} bytes exceeds the limit of {} bytes (KafkaSource::value_bytes_max)",
                payload.len(),
                s.settings.value_bytes_max
            ));
        }
        let value = s.value.decode(payload).map_err(|e| format!("value: {e}"))?;
        let (key, headers) = if P::NEEDS_KEY_AND_HEADERS {
            let key = match msg.key() {
                Some(k) => Some(s.key.decode(k).map_err(|e| format!("key: {e}"))?),
                None => None,
            };
            (key, read_headers(msg))
        } else {
            (None, Vec::new())
        };
        let (ti, partition) = self.slots[slot];
        let record = KafkaRecord {
            topic: self.topics[ti].clone(),
            partition,
            offset: msg.offset(),
            timestamp_ms: ts,
            key,
            value,
            headers,
        };
        let out = s.projection.project(record);
        let ts = match &s.timestamp_fn {
            Some(f) => f(&out),
            None => ts.unwrap_or(NO_TIMESTAMP),
        };
        Ok(Event { ts, value: out })
    }

    fn dead_letter(&self, msg: &BorrowedMessage<'_>, reason: String) -> Result<(), String> {
        let letter = DeadLetterRecord {
            reason,
            topic: msg.topic().to_string(),
            partition: msg.partition(),
            offset: msg.offset(),
            timestamp_ms: msg.timestamp().to_millis(),
            key: msg.key().map(<[u8]>::to_vec),
            value: msg.payload().map(<[u8]>::to_vec),
            headers: read_headers(msg),
        };
        let reason = letter.reason.clone();
        self.dead_letters.send(letter)?;
        let before = self
            .shared
            .metrics
            .dead_letters
            .fetch_add(1, Ordering::Relaxed);
        // The first dead letter, then one line per power of two: an
        // operator learns that records are rejected and how many, and a
        // topic full of bad records does not flood the log.
        let n = before + 1;
        if n.is_power_of_two() {
            tracing::warn!(
                topic = msg.topic(),
                partition = msg.partition(),
                offset = msg.offset(),
                dead_letters = n,
                reason = %reason,
                "a record could not be used and went to the dead-letter sink"
            );
        }
        Ok(())
    }
}

fn read_headers(msg: &BorrowedMessage<'_>) -> Vec<(String, Vec<u8>)> {
    let Some(headers) = msg.headers() else {
        return Vec::new();
    };
    headers
        .iter()
        .map(|h| {
            (
                h.key.to_string(),
                h.value.map(<[u8]>::to_vec).unwrap_or_default(),
            )
        })
        .collect()
}
