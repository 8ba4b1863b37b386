//! Where a source sends the records it cannot decode: the dead-letter sink.
//!
//! A record that fails to decode, or whose value is larger than the source
//! allows, is not emitted. It goes, with its original key, value and headers
//! and with the reason, source topic, partition and offset added as headers,
//! to the dead-letter sink, is counted in [`SourceMetrics::dead_letters`],
//! and the job goes on. A dead letter that cannot be delivered fails the job:
//! nothing is dropped silently.
//!
//! [`SourceMetrics::dead_letters`]: crate::SourceMetrics::dead_letters

use crate::admin::{client_config, connection_properties, Properties};
use parking_lot::Mutex;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::sync::Arc;

/// Header naming why the record is a dead letter.
pub const HEADER_REASON: &str = "eddy.dlq.reason";
/// Header with the topic the record was read from.
pub const HEADER_TOPIC: &str = "eddy.dlq.topic";
/// Header with its partition, in decimal.
pub const HEADER_PARTITION: &str = "eddy.dlq.partition";
/// Header with its offset, in decimal.
pub const HEADER_OFFSET: &str = "eddy.dlq.offset";

/// A record the source could not use.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterRecord {
    /// Why: the decoding error or the size limit exceeded.
    pub reason: String,
    /// Topic it was read from.
    pub topic: String,
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its timestamp in milliseconds, if any.
    pub timestamp_ms: Option<i64>,
    /// Its key bytes, as read.
    pub key: Option<Vec<u8>>,
    /// Its value bytes, as read.
    pub value: Option<Vec<u8>>,
    /// Its headers, as read.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A function that takes dead letters (to put them in a grid map, a log, a
/// test's collection). An `Err` fails the job with its message.
pub type DeadLetterHandler = Arc<dyn Fn(DeadLetterRecord) -> Result<(), String> + Send + Sync>;

/// Where dead letters go.
#[derive(Clone)]
pub enum DeadLetter {
    /// The topic `<source topic>.dlq` of the source's cluster (the default).
    DefaultTopic,
    /// This topic of the source's cluster.
    Topic(String),
    /// A function of your own.
    Handler(DeadLetterHandler),
    /// Fail the job instead: for pipelines where a bad record is a bug.
    FailJob,
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeadLetter::DefaultTopic => f.write_str("DefaultTopic"),
            DeadLetter::Topic(t) => f.debug_tuple("Topic").field(t).finish(),
            DeadLetter::Handler(_) => f.write_str("Handler(..)"),
            DeadLetter::FailJob => f.write_str("FailJob"),
        }
    }
}

/// The outcome of a producer's deliveries: a count and the first error,
/// kept until someone reports it.
///
/// Thread safety: written by the producer's polling thread, read by the
/// processor; the mutex is taken only on errors and by readers.
#[derive(Default)]
pub(crate) struct DeliveryErrors {
    first: Mutex<Option<String>>,
    failed: std::sync::atomic::AtomicBool,
    pub(crate) delivered: std::sync::atomic::AtomicU64,
}

impl DeliveryErrors {
    pub(crate) fn record(&self, message: String) {
        let mut first = self.first.lock();
        if first.is_none() {
            *first = Some(message);
        }
        self.failed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// The first error; cheap when there is none (one atomic load).
    pub(crate) fn first(&self) -> Option<String> {
        if !self.failed.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        self.first.lock().clone()
    }
}

/// A producer context that keeps the first delivery error.
pub(crate) struct ErrorKeepingContext {
    pub(crate) errors: Arc<DeliveryErrors>,
    pub(crate) what: &'static str,
}

impl ClientContext for ErrorKeepingContext {}

impl ProducerContext for ErrorKeepingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            self.errors
                .delivered
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if let Err((e, msg)) = result {
            use rdkafka::Message;
            self.errors.record(format!(
                "delivering a {} to topic '{}' failed: {e}; check that the broker runs and the topic accepts writes",
                self.what,
                msg.topic()
            ));
        }
    }
}

/// Sends dead letters where the source was told to.
pub(crate) enum DeadLetterWriter {
    Kafka {
        producer: ThreadedProducer<ErrorKeepingContext>,
        topic: Option<String>,
        errors: Arc<DeliveryErrors>,
    },
    Handler(DeadLetterHandler),
    FailJob,
}

impl DeadLetterWriter {
    pub(crate) fn new(
        target: &DeadLetter,
        bootstrap: &str,
        properties: &Properties,
    ) -> Result<Self, String> {
        let topic = match target {
            DeadLetter::DefaultTopic => None,
            DeadLetter::Topic(t) => Some(t.clone()),
            DeadLetter::Handler(h) => return Ok(DeadLetterWriter::Handler(h.clone())),
            DeadLetter::FailJob => return Ok(DeadLetterWriter::FailJob),
        };
        let errors = Arc::new(DeliveryErrors::default());
        // The consumer's properties do not apply to a producer, except the
        // connection ones; the dead-letter producer uses the defaults.
        let mut config = client_config(bootstrap, &connection_properties(properties));
        config.set("enable.idempotence", "true");
        let producer = config
            .create_with_context(ErrorKeepingContext {
                errors: errors.clone(),
                what: "dead letter",
            })
            .map_err(|e| format!("cannot create the dead-letter producer: {e}"))?;
        Ok(DeadLetterWriter::Kafka {
            producer,
            topic,
            errors,
        })
    }

    /// Sends one dead letter; an error fails the job.
    pub(crate) fn send(&self, letter: DeadLetterRecord) -> Result<(), String> {
        match self {
            DeadLetterWriter::FailJob => Err(format!(
                "record {}/{}@{} is unusable: {}; fix the producer of the topic, or configure a dead-letter sink to skip such records",
                letter.topic, letter.partition, letter.offset, letter.reason
            )),
            DeadLetterWriter::Handler(h) => h(letter),
            DeadLetterWriter::Kafka { producer, topic, .. } => {
                let target = topic.clone().unwrap_or_else(|| format!("{}.dlq", letter.topic));
                let mut headers = OwnedHeaders::new_with_capacity(letter.headers.len() + 4);
                for (k, v) in &letter.headers {
                    headers = headers.insert(Header {
                        key: k,
                        value: Some(v),
                    });
                }
                let partition = letter.partition.to_string();
                let offset = letter.offset.to_string();
                for (k, v) in [
                    (HEADER_REASON, letter.reason.as_str()),
                    (HEADER_TOPIC, letter.topic.as_str()),
                    (HEADER_PARTITION, partition.as_str()),
                    (HEADER_OFFSET, offset.as_str()),
                ] {
                    headers = headers.insert(Header { key: k, value: Some(v) });
                }
                let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&target).headers(headers);
                if let Some(k) = &letter.key {
                    record = record.key(k.as_slice());
                }
                if let Some(v) = &letter.value {
                    record = record.payload(v.as_slice());
                }
                if let Some(ts) = letter.timestamp_ms {
                    record = record.timestamp(ts);
                }
                // Dead letters are rare: waiting for queue room (rather than
                // handing the record back) keeps this simple and bounded.
                let mut record = record;
                loop {
                    match producer.send(record) {
                        Ok(()) => return Ok(()),
                        Err((rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull,
                        ), back)) => {
                            record = back;
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        Err((e, _)) => {
                            return Err(format!("cannot send a dead letter to topic '{target}': {e}"))
                        }
                    }
                }
            }
        }
    }

    /// The first delivery error, if any.
    pub(crate) fn delivery_error(&self) -> Option<String> {
        match self {
            DeadLetterWriter::Kafka { errors, .. } => errors.first(),
            _ => None,
        }
    }

    /// Waits (bounded) for dead letters in flight.
    pub(crate) fn flush(&self) -> Result<(), String> {
        if let DeadLetterWriter::Kafka { producer, .. } = self {
            use rdkafka::producer::Producer;
            producer
                .flush(std::time::Duration::from_secs(30))
                .map_err(|e| format!("flushing dead letters failed: {e}"))?;
        }
        self.delivery_error().map_or(Ok(()), Err)
    }
}

/// How long sending one dead letter of a stage waits for the broker's
/// acknowledgement: dead letters are rare, and one that is not durable
/// must fail the job rather than vanish.
const STAGE_DEAD_LETTER_ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Dead letters of a job's fallible stages (`try_map`, …) written to a
/// Kafka topic: the value is the dead letter as JSON (job, stage, error,
/// item, event time), the key the stage, and the reason is also in the
/// `eddy.dlq.reason` header. Each is acknowledged before the stage goes
/// on; one that cannot be written fails the job.
pub fn dead_letter_topic(
    bootstrap: &str,
    topic: &str,
) -> Result<eddy_core::DeadLetters, crate::KafkaError> {
    crate::admin::check_bootstrap(bootstrap)?;
    let errors = Arc::new(DeliveryErrors::default());
    let mut config = client_config(bootstrap, &Properties::new());
    config.set("enable.idempotence", "true");
    let producer: ThreadedProducer<ErrorKeepingContext> = config
        .create_with_context(ErrorKeepingContext {
            errors: errors.clone(),
            what: "dead letter",
        })
        .map_err(|e| {
            crate::KafkaError::broker("creating the dead-letter producer", bootstrap, e)
        })?;
    let topic = topic.to_string();
    Ok(eddy_core::DeadLetters::to(
        move |letter: &eddy_core::DeadLetter| {
            use rdkafka::producer::Producer;
            let value = serde_json::to_vec(letter).map_err(|e| e.to_string())?;
            let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
                key: HEADER_REASON,
                value: Some(letter.error.as_str()),
            });
            let record: BaseRecord<'_, str, [u8]> = BaseRecord::to(&topic)
                .key(letter.stage.as_str())
                .payload(value.as_slice())
                .headers(headers);
            producer
                .send(record)
                .map_err(|(e, _)| format!("cannot send a dead letter to topic '{topic}': {e}"))?;
            producer.flush(STAGE_DEAD_LETTER_ACK_TIMEOUT).map_err(|e| {
                format!("a dead letter to topic '{topic}' was not acknowledged: {e}")
            })?;
            errors.first().map_or(Ok(()), Err)
        },
    ))
}
