//! Exactly-once output to Kafka: the sink's write-ahead commit protocol.
//!
//! librdkafka cannot resume a transaction that another producer began (no
//! KIP-939), so a Kafka transaction cannot outlive the process that opened
//! it, and a transaction spanning a snapshot would be lost with a crash.
//! The sink therefore keeps the records of each *epoch* (those between two
//! snapshot barriers) itself, encoded ([`EpochRecords`]); the snapshot saves
//! them as sealed epochs ([`PendingEpochs`](eddy_core::PendingEpochs)); and
//! only once the snapshot is durable does the sink write them, in one short
//! transaction, together with a *commit marker*: a record of the compacted
//! topic [`COMMIT_MARKER_TOPIC`] whose key is the transactional id and whose
//! value is the last epoch the transaction covers (empty: none yet). The
//! marker commits or aborts with the records, so the latest committed marker
//! says exactly which epochs reached the topic.
//!
//! # Transactional ids
//!
//! `eddy-<job>-<vertex>-<writer>`, where the writer is the instance that
//! sealed the epoch: stable across restarts, so that a new producer fences
//! the one of the execution before it. Epochs restored at another
//! parallelism are committed under their writer's id, for the same reason.
//!
//! # Recovery
//!
//! Before its first commit, each instance, for every writer whose epochs it
//! restored (and for its own id in any case):
//!
//! 1. calls `init_transactions`, which fences any older producer with that
//!    id and completes its open transaction (aborts it, unless the
//!    coordinator had already decided to commit it);
//! 2. reads the latest committed marker of that id (`read_committed`, up to
//!    the end offset taken after step 1, so nothing committed is missed);
//! 3. commits the restored epochs above the marker in one transaction, and
//!    skips the others.
//!
//! The crash cases, for an epoch `e` sealed by snapshot `e`:
//!
//! * before snapshot `e` is durable: the job restarts from an older
//!   snapshot, which does not hold `e`; nothing of `e` was written, and the
//!   sources replay its input;
//! * after snapshot `e` is durable, before the commit: `e` is restored, the
//!   marker is below it, so `e` is committed at recovery;
//! * during the commit: step 1 aborts the transaction, or completes it if
//!   the commit was already decided; the marker says which, and `e` is
//!   committed once either way;
//! * after the commit: the marker is at `e` or above, so `e` is skipped.
//!
//! A producer fenced while it commits (a newer producer took its id, or the
//! broker aborted a transaction that outlived `transaction.timeout.ms`) is
//! recreated once, asks the marker whether its epochs were committed, and
//! commits them if not; fenced again, it fails the job instead of fighting
//! another producer forever.
//!
//! # Markers of earlier runs
//!
//! A job started without a snapshot may find markers of an earlier run of a
//! job with the same name, whose epoch numbers mean nothing now. So an
//! instance that restored no epoch of its own id first commits an empty
//! marker for it, before any snapshot holding one of its epochs can
//! complete: from then on, the markers of every id that has epochs in the
//! job's snapshots were written by the job's current history.

use crate::admin::{
    client_config, connection_properties, create_topic_with, partition_count, Properties,
};
use crate::dead_letter::{DeliveryErrors, ErrorKeepingContext};
use crate::epochs::EpochRecords;
use crate::partition_for_key;
use eddy_core::{ProcessorError, SealedEpoch};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The compacted topic that holds the commit markers of every exactly-once
/// Kafka sink of the cluster (unless a sink names another).
pub const COMMIT_MARKER_TOPIC: &str = "eddy-commit-markers";

/// Partitions of a marker topic the sink creates. A recovering instance
/// reads the whole partition of its id, and waits there for transactions
/// of other jobs to finish: more partitions mean less to read and fewer
/// other jobs to wait for, at a small cost in broker resources.
const MARKER_TOPIC_PARTITIONS: i32 = 8;

/// Segment age after which a marker partition may be compacted (one hour):
/// compaction only cleans closed segments, and the broker's default (seven
/// days) would let a partition grow to a week of markers, all read at
/// every recovery.
const MARKER_SEGMENT_MS: &str = "3600000";

/// How long reading a marker may wait for other producers' transactions on
/// its partition to finish. A crashed producer's transaction stays open up
/// to its `transaction.timeout.ms` (librdkafka's default: 60 s), so twice
/// that, before the job fails and is retried.
const MARKER_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Timeout of metadata and offset requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// librdkafka's default `transaction.timeout.ms`.
const TRANSACTION_TIMEOUT_DEFAULT_MS: u64 = 60_000;

/// Pause while the producer's queue is full during a commit: short against
/// the time a batch takes to leave, long against a spin.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(1);

/// How often a commit that failed with a retriable error is tried again.
const COMMIT_RETRIES_MAX: u32 = 3;

/// What the transactional producers of one sink instance share.
#[derive(Debug)]
pub(crate) struct TransactionalSettings {
    pub(crate) bootstrap: String,
    pub(crate) topic: String,
    pub(crate) marker_topic: String,
    /// The producer's configuration before the transactional id.
    pub(crate) producer_properties: Properties,
    /// The sink's own properties (the marker readers take the connection
    /// ones).
    pub(crate) properties: Properties,
    pub(crate) job_name: String,
    pub(crate) vertex_name: String,
}

impl TransactionalSettings {
    /// The transactional id of the epochs sealed by instance `writer`.
    pub(crate) fn transactional_id(&self, writer: usize) -> String {
        format!("eddy-{}-{}-{writer}", self.job_name, self.vertex_name)
    }

    /// The producers' `transaction.timeout.ms`.
    fn transaction_timeout_ms(&self) -> u64 {
        self.producer_properties
            .get("transaction.timeout.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(TRANSACTION_TIMEOUT_DEFAULT_MS)
    }

    fn transaction_timeout(&self) -> Duration {
        Duration::from_millis(self.transaction_timeout_ms())
    }

    /// Checks the job's snapshot interval against the transaction timeout.
    /// A commit writes up to one interval of output in one transaction; a
    /// sink that barely keeps up with its input takes about the interval
    /// to write it, and the broker aborts a transaction older than
    /// `transaction.timeout.ms`, after which the job could never commit
    /// that epoch.
    pub(crate) fn check_snapshot_interval(
        &self,
        interval: Option<Duration>,
    ) -> Result<(), ProcessorError> {
        let timeout_ms = self.transaction_timeout_ms();
        match interval {
            Some(interval) if interval.as_millis() >= u128::from(timeout_ms) => {
                Err(ProcessorError::new(format!(
                    "the job's snapshot interval ({interval:?}) must be shorter than the exactly-once Kafka sink's transaction.timeout.ms ({timeout_ms} ms) for topic '{}': \
                     shorten JobConfig::snapshot_interval, or raise transaction.timeout.ms with KafkaSink::property (up to the broker's transaction.max.timeout.ms, 15 minutes by default)",
                    self.topic
                )))
            }
            _ => Ok(()),
        }
    }

    /// Creates the marker topic if it is missing; returns its partition
    /// count.
    fn marker_partitions(&self) -> Result<i32, ProcessorError> {
        let topic = &self.marker_topic;
        let broker = |e: crate::KafkaError| {
            ProcessorError::new(format!(
                "cannot prepare the commit-marker topic '{topic}' of the exactly-once Kafka sink: {e}"
            ))
        };
        if let Some(n) = partition_count(&self.bootstrap, topic, REQUEST_TIMEOUT).map_err(broker)? {
            return Ok(n);
        }
        create_topic_with(
            &self.bootstrap,
            topic,
            MARKER_TOPIC_PARTITIONS,
            &[
                ("cleanup.policy", "compact"),
                ("segment.ms", MARKER_SEGMENT_MS),
            ],
            REQUEST_TIMEOUT,
        )
        .map_err(broker)?;
        // A new topic's metadata reaches every broker a moment later.
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            if let Some(n) =
                partition_count(&self.bootstrap, topic, REQUEST_TIMEOUT).map_err(broker)?
            {
                return Ok(n);
            }
            if Instant::now() >= deadline {
                return Err(ProcessorError::new(format!(
                    "the commit-marker topic '{topic}' was created but does not show in the cluster's metadata; try again"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Why a transaction failed.
enum TxnError {
    /// Another producer took the transactional id, or the broker aborted
    /// the transaction: recreate the producer.
    Fenced(String),
    /// Anything else: the transaction was aborted and the job fails.
    Failed(String),
}

/// The transactional producer of one writer id, initialised (it fenced its
/// predecessors).
pub(crate) struct TransactionalProducer {
    settings: Arc<TransactionalSettings>,
    writer: usize,
    transactional_id: String,
    marker_partition: i32,
    producer: ThreadedProducer<ErrorKeepingContext>,
    deliveries: Arc<DeliveryErrors>,
}

fn is_fenced(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    )
}

/// The marker value for `epoch` (`None`: nothing committed yet).
fn marker_value(epoch: Option<u64>) -> String {
    epoch.map_or_else(String::new, |e| e.to_string())
}

fn parse_marker(value: &[u8]) -> Option<Option<u64>> {
    if value.is_empty() {
        return Some(None);
    }
    std::str::from_utf8(value).ok()?.parse().ok().map(Some)
}

impl TransactionalProducer {
    /// Creates the producer of writer `writer` and initialises its
    /// transactions, which fences older producers with the same id.
    pub(crate) fn open(
        settings: &Arc<TransactionalSettings>,
        writer: usize,
    ) -> Result<Self, ProcessorError> {
        let transactional_id = settings.transactional_id(writer);
        let partitions = settings.marker_partitions()?;
        let marker_partition = partition_for_key(transactional_id.as_bytes(), partitions)
            .ok_or_else(|| ProcessorError::new("the commit-marker topic has no partition"))?;
        let deliveries = Arc::new(DeliveryErrors::default());
        let mut config = client_config(&settings.bootstrap, &settings.producer_properties);
        // Set last: the protocol depends on them.
        config.set("transactional.id", &transactional_id);
        config.set("enable.idempotence", "true");
        config.set("acks", "all");
        let producer: ThreadedProducer<ErrorKeepingContext> = config
            .create_with_context(ErrorKeepingContext {
                errors: deliveries.clone(),
                what: "record",
            })
            .map_err(|e| {
                ProcessorError::new(format!(
                    "cannot create the transactional Kafka producer '{transactional_id}' for topic '{}': {e}; check the producer properties",
                    settings.topic
                ))
            })?;
        producer
            .init_transactions(settings.transaction_timeout())
            .map_err(|e| {
                let hint = match e.rdkafka_error_code() {
                    Some(RDKafkaErrorCode::InvalidTransactionTimeout) => format!(
                        "transaction.timeout.ms ({} ms) exceeds the broker's transaction.max.timeout.ms: lower the sink property or raise the broker setting",
                        settings.transaction_timeout_ms()
                    ),
                    _ => "check that the broker runs and supports transactions (a single broker needs transaction.state.log.replication.factor=1)".to_string(),
                };
                ProcessorError::new(format!(
                    "cannot initialise the transactions of Kafka producer '{transactional_id}': {e}; {hint}"
                ))
            })?;
        Ok(TransactionalProducer {
            settings: settings.clone(),
            writer,
            transactional_id,
            marker_partition,
            producer,
            deliveries,
        })
    }

    /// The last epoch a committed transaction of this id covered, per the
    /// latest committed marker (`None`: no marker, or an empty one).
    pub(crate) fn last_committed(&self) -> Result<Option<u64>, ProcessorError> {
        let s = &self.settings;
        let topic = s.marker_topic.as_str();
        let partition = self.marker_partition;
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            ProcessorError::new(format!(
                "cannot read the commit marker of '{}' in {topic}/{partition} ({what}): {e}; check that the broker runs",
                self.transactional_id
            ))
        };
        let consumer = |isolation: &str| -> Result<BaseConsumer, ProcessorError> {
            let mut config = client_config(&s.bootstrap, &connection_properties(&s.properties));
            config.set("isolation.level", isolation);
            config.set("group.id", "eddy-commit-marker-reader");
            config.set("enable.auto.commit", "false");
            config.create().map_err(|e| fail("creating a consumer", &e))
        };
        // The end offset read uncommitted: a committed reader's end stops
        // at the first open transaction, which may lie before our marker.
        let (low, high) = consumer("read_uncommitted")?
            .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
            .map_err(|e| fail("reading its end offset", &e))?;
        if high <= low {
            return Ok(None);
        }
        let reader = consumer("read_committed")?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(low))
            .map_err(|e| fail("assigning it", &e))?;
        reader.assign(&tpl).map_err(|e| fail("assigning it", &e))?;
        let key = self.transactional_id.as_bytes();
        let mut last = None;
        let deadline = Instant::now() + MARKER_READ_TIMEOUT;
        loop {
            match reader.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    if m.key() == Some(key) {
                        last = parse_marker(m.payload().unwrap_or_default()).ok_or_else(|| {
                            fail(
                                "its value is not an epoch",
                                &format!("offset {}", m.offset()),
                            )
                        })?;
                    }
                    if m.offset() + 1 >= high {
                        return Ok(last);
                    }
                }
                Some(Err(e)) => return Err(fail("polling", &e)),
                None => {
                    // Transaction markers are never delivered: the position
                    // tells when the reader passed them.
                    let position = reader
                        .position()
                        .map_err(|e| fail("reading the position", &e))?;
                    if let Some(Offset::Offset(o)) = position
                        .find_partition(topic, partition)
                        .map(|e| e.offset())
                    {
                        if o >= high {
                            return Ok(last);
                        }
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(ProcessorError::new(format!(
                    "reading the commit marker of '{}' in {topic}/{partition} waited {MARKER_READ_TIMEOUT:?} for other producers' open transactions there; \
                     a crashed producer's transaction ends after its transaction.timeout.ms: restart the job then",
                    self.transactional_id
                )));
            }
        }
    }

    /// Commits `epochs` (oldest first, all of this writer) in one
    /// transaction with the marker of the last; with no epochs, commits an
    /// empty marker (nothing committed yet). A fenced producer is recreated
    /// once and commits only if the marker shows the epochs missing.
    pub(crate) fn commit(
        &mut self,
        epochs: &[SealedEpoch<EpochRecords>],
    ) -> Result<(), ProcessorError> {
        let marker = epochs.last().map(|e| e.epoch);
        let fenced = match self.try_commit(epochs, marker) {
            Ok(()) => return Ok(()),
            Err(TxnError::Failed(e)) => return Err(ProcessorError::new(e)),
            Err(TxnError::Fenced(e)) => e,
        };
        *self = TransactionalProducer::open(&self.settings, self.writer)?;
        if marker.is_some() && self.last_committed()? >= marker {
            return Ok(());
        }
        match self.try_commit(epochs, marker) {
            Ok(()) => Ok(()),
            Err(TxnError::Failed(e)) => Err(ProcessorError::new(e)),
            Err(TxnError::Fenced(again)) => Err(ProcessorError::new(format!(
                "the Kafka producer '{}' was fenced twice in one commit ({fenced}; then {again}): another producer uses this transactional id. \
                 Two jobs with the same name write to '{}': give them different names",
                self.transactional_id, self.settings.topic
            ))),
        }
    }

    /// Classifies a failed transactional call, aborting the transaction
    /// unless the producer was fenced (a fenced producer cannot abort).
    fn error(&self, what: &str, epochs: &[SealedEpoch<EpochRecords>], e: RdKafkaError) -> TxnError {
        let code = match &e {
            RdKafkaError::Transaction(t) => Some(t.code()),
            _ => e.rdkafka_error_code(),
        };
        let fatal = self.producer.client().fatal_error();
        if code.is_some_and(is_fenced) || fatal.as_ref().is_some_and(|(c, _)| is_fenced(*c)) {
            return TxnError::Fenced(format!("{what}: {e}"));
        }
        if fatal.is_none() {
            // The transaction is lost anyway; aborting releases the
            // partitions' last stable offset for read_committed readers
            // now rather than after the transaction timeout.
            let _ = self
                .producer
                .abort_transaction(self.settings.transaction_timeout());
        }
        let records: usize = epochs
            .iter()
            .flat_map(|e| &e.items)
            .map(EpochRecords::len)
            .sum();
        let span = match (epochs.first(), epochs.last()) {
            (Some(a), Some(b)) => format!("epochs {}..={}", a.epoch, b.epoch),
            _ => "an empty commit marker".to_string(),
        };
        let delivery = self
            .deliveries
            .first()
            .map_or_else(String::new, |d| format!(" ({d})"));
        TxnError::Failed(format!(
            "the Kafka transaction '{}' writing {span} ({records} records) to '{}' failed {what}: {e}{delivery}; it was aborted. \
             If it outlived transaction.timeout.ms ({} ms), raise that sink property (up to the broker's transaction.max.timeout.ms) \
             or shorten the job's snapshot interval, which bounds how much one commit writes",
            self.transactional_id,
            self.settings.topic,
            self.settings.transaction_timeout_ms()
        ))
    }

    fn try_commit(
        &self,
        epochs: &[SealedEpoch<EpochRecords>],
        marker: Option<u64>,
    ) -> Result<(), TxnError> {
        self.producer
            .begin_transaction()
            .map_err(|e| self.error("beginning", epochs, e))?;
        let topic = self.settings.topic.as_str();
        for record in epochs
            .iter()
            .flat_map(|e| &e.items)
            .flat_map(EpochRecords::iter)
        {
            let mut out: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(record.value);
            if let Some(k) = record.key {
                out = out.key(k);
            }
            let shape = record.shape;
            if !shape.headers.is_empty() {
                let mut headers = OwnedHeaders::new_with_capacity(shape.headers.len());
                for (k, v) in &shape.headers {
                    headers = headers.insert(Header {
                        key: k,
                        value: Some(v),
                    });
                }
                out = out.headers(headers);
            }
            if let Some(p) = shape.partition {
                out = out.partition(p);
            }
            if let Some(ts) = shape.timestamp_ms {
                out = out.timestamp(ts);
            }
            self.send(out)
                .map_err(|e| self.error("sending a record", epochs, e))?;
        }
        let value = marker_value(marker);
        let marker_record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.settings.marker_topic)
            .key(self.transactional_id.as_bytes())
            .payload(value.as_bytes())
            .partition(self.marker_partition);
        self.send(marker_record)
            .map_err(|e| self.error("sending the commit marker", epochs, e))?;
        let mut attempt = 0;
        loop {
            match self
                .producer
                .commit_transaction(self.settings.transaction_timeout())
            {
                Ok(()) => return Ok(()),
                Err(RdKafkaError::Transaction(t))
                    if t.is_retriable() && attempt < COMMIT_RETRIES_MAX =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(self.error("committing", epochs, e)),
            }
        }
    }

    /// Hands a record to the producer, waiting while its queue is full
    /// (the sink has a thread of its own under exactly-once).
    fn send<'a>(&self, mut record: BaseRecord<'a, [u8], [u8]>) -> Result<(), RdKafkaError> {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(QUEUE_FULL_WAIT);
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_marker_values_parsed_then_empty_means_none_and_garbage_is_refused() {
        assert_eq!(
            parse_marker(marker_value(Some(17)).as_bytes()),
            Some(Some(17))
        );
        assert_eq!(parse_marker(marker_value(None).as_bytes()), Some(None));
        assert_eq!(parse_marker(b"x1"), None);
    }

    #[test]
    fn when_snapshot_interval_not_below_transaction_timeout_then_error_names_both() {
        let mut settings = TransactionalSettings {
            bootstrap: "127.0.0.1:9092".into(),
            topic: "out".into(),
            marker_topic: COMMIT_MARKER_TOPIC.into(),
            producer_properties: Properties::new(),
            properties: Properties::new(),
            job_name: "job".into(),
            vertex_name: "sink".into(),
        };
        assert!(settings
            .check_snapshot_interval(Some(Duration::from_secs(10)))
            .is_ok());
        assert!(settings.check_snapshot_interval(None).is_ok());
        let e = settings
            .check_snapshot_interval(Some(Duration::from_secs(60)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("snapshot interval (60s)")
                && e.contains("transaction.timeout.ms (60000 ms)"),
            "{e}"
        );
        settings
            .producer_properties
            .insert("transaction.timeout.ms".into(), "120000".into());
        assert!(settings
            .check_snapshot_interval(Some(Duration::from_secs(60)))
            .is_ok());
        assert_eq!(settings.transactional_id(3), "eddy-job-sink-3");
    }
}
