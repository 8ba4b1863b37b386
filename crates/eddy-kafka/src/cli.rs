//! The library side of `eddy produce` and `eddy consume`: write JSON lines
//! or generated events to a topic, and read a topic for inspection.
//!
//! The binary parses the flags and draws the progress bar; these functions
//! do the Kafka work and return counts.

use crate::admin::{check_bootstrap, client_config, create_topic, partition_count, Properties};
use crate::dead_letter::{DeliveryErrors, ErrorKeepingContext};
use crate::KafkaError;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Timeout of admin and metadata requests made by these functions.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `produce` waits at the end for the last records to be
/// acknowledged; a healthy local broker needs milliseconds.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Makes record `n` of a generator as (key, value).
pub type EventFn = Box<dyn FnMut(u64) -> (String, String)>;

/// Where `produce` takes its records from.
pub enum ProduceInput<R: BufRead> {
    /// One JSON document per line; `key_field` names the field whose value
    /// becomes the record key (strings as they are, other values as JSON).
    JsonLines {
        /// The lines.
        reader: R,
        /// The key field, if records are keyed.
        key_field: Option<String>,
    },
    /// Generated records.
    Generator {
        /// Record `n` as (key, value).
        event: EventFn,
        /// Events per second, or as fast as possible.
        rate_per_sec: Option<f64>,
        /// How many events.
        count: u64,
    },
}

/// Where `produce` writes.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// Bootstrap address.
    pub bootstrap: String,
    /// Target topic.
    pub topic: String,
    /// Create the topic with this many partitions first (if it does not
    /// exist yet).
    pub partitions: Option<i32>,
    /// Producer properties on top of the defaults.
    pub properties: Properties,
}

/// What `produce` did.
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceReport {
    /// Records written and acknowledged.
    pub records: u64,
    /// Value bytes written.
    pub bytes: u64,
    /// JSON lines without the key field (written without a key).
    pub unkeyed: u64,
    /// Whether the topic was created.
    pub created_topic: bool,
    /// Wall-clock time taken.
    pub elapsed: Duration,
}

fn producer(
    bootstrap: &str,
    properties: &Properties,
    errors: Arc<DeliveryErrors>,
) -> Result<ThreadedProducer<ErrorKeepingContext>, KafkaError> {
    let mut config = client_config(bootstrap, &Properties::new());
    config.set("partitioner", "murmur2_random");
    config.set("enable.idempotence", "true");
    config.set("linger.ms", "5");
    for (k, v) in properties {
        config.set(k, v);
    }
    config
        .create_with_context(ErrorKeepingContext {
            errors,
            what: "record",
        })
        .map_err(|e| {
            KafkaError::Config(format!(
                "cannot create a producer: {e}; check the producer properties"
            ))
        })
}

/// Sends one record, waiting while the producer's queue is full.
fn send(
    producer: &ThreadedProducer<ErrorKeepingContext>,
    topic: &str,
    key: Option<&str>,
    value: &[u8],
) -> Result<(), KafkaError> {
    let mut record: BaseRecord<'_, str, [u8]> = BaseRecord::to(topic).payload(value);
    if let Some(k) = key {
        record = record.key(k);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => {
                return Err(KafkaError::Data(format!(
                    "cannot send a record to '{topic}': {e}"
                )))
            }
        }
    }
}

/// Writes records to a topic; calls `progress` with the running count now
/// and then (every 1000 records). Returns once every record is acknowledged.
pub fn produce<R: BufRead>(
    options: &ProduceOptions,
    input: ProduceInput<R>,
    progress: &mut dyn FnMut(u64),
) -> Result<ProduceReport, KafkaError> {
    check_bootstrap(&options.bootstrap)?;
    let started = Instant::now();
    let topic = options.topic.as_str();
    let created_topic = match options.partitions {
        Some(n) => create_topic(&options.bootstrap, topic, n, REQUEST_TIMEOUT)?,
        None => false,
    };
    let errors = Arc::new(DeliveryErrors::default());
    let producer = producer(&options.bootstrap, &options.properties, errors.clone())?;
    let mut report = ProduceReport {
        records: 0,
        bytes: 0,
        unkeyed: 0,
        created_topic,
        elapsed: Duration::ZERO,
    };
    let mut tick = |report: &ProduceReport| -> Result<(), KafkaError> {
        if report.records % 1000 == 0 {
            progress(report.records);
            if let Some(e) = errors.first() {
                return Err(KafkaError::Broker(e));
            }
        }
        Ok(())
    };
    match input {
        ProduceInput::JsonLines { reader, key_field } => {
            for (i, line) in reader.lines().enumerate() {
                let line = line.map_err(|e| KafkaError::Io {
                    context: format!("reading line {}", i + 1),
                    source: e,
                })?;
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let doc: serde_json::Value = match serde_json::from_str(line) {
                    Ok(doc) => doc,
                    Err(e) => {
                        // What came before is written, so the message can
                        // say exactly where to resume.
                        let _ = producer.flush(FLUSH_TIMEOUT);
                        return Err(KafkaError::Data(format!(
                            "line {} is not valid JSON: {e}; the {} records before it were written: \
                             fix the line and produce the rest from there",
                            i + 1,
                            report.records
                        )));
                    }
                };
                let key = key_field
                    .as_ref()
                    .and_then(|f| doc.get(f))
                    .map(|k| match k {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                if key_field.is_some() && key.is_none() {
                    report.unkeyed += 1;
                }
                send(&producer, topic, key.as_deref(), line.as_bytes())?;
                report.records += 1;
                report.bytes += line.len() as u64;
                tick(&report)?;
            }
        }
        ProduceInput::Generator {
            mut event,
            rate_per_sec,
            count,
        } => {
            for n in 0..count {
                if let Some(rate) = rate_per_sec.filter(|r| *r > 0.0) {
                    // Open loop: event n is due n / rate seconds after start.
                    let due = started + Duration::from_secs_f64(n as f64 / rate);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
                let (key, value) = event(n);
                send(&producer, topic, Some(&key), value.as_bytes())?;
                report.records += 1;
                report.bytes += value.len() as u64;
                tick(&report)?;
            }
        }
    }
    producer.flush(FLUSH_TIMEOUT).map_err(|e| {
        KafkaError::broker(
            &format!("flushing records to '{topic}'"),
            &options.bootstrap,
            e,
        )
    })?;
    if let Some(e) = errors.first() {
        return Err(KafkaError::Broker(e));
    }
    progress(report.records);
    report.elapsed = started.elapsed();
    Ok(report)
}

/// How `consume` prints records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// One JSON object per record: partition, offset, timestamp, key, value
    /// (embedded as JSON when it is JSON, else as a string), headers.
    Json,
    /// The value as text, one per line.
    Text,
}

/// What `consume` reads.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Bootstrap address.
    pub bootstrap: String,
    /// Topic to read (all its partitions).
    pub topic: String,
    /// From the oldest record instead of only new ones.
    pub from_beginning: bool,
    /// Stop after this many records.
    pub max: Option<u64>,
    /// Only records of committed transactions (`isolation.level`).
    pub read_committed: bool,
    /// Output format.
    pub format: OutputFormat,
    /// Stop after this long without a record (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Consumer properties on top of the defaults.
    pub properties: Properties,
}

/// Reads records of a topic and prints them to `out`; returns how many.
pub fn consume(options: &ConsumeOptions, out: &mut dyn Write) -> Result<u64, KafkaError> {
    check_bootstrap(&options.bootstrap)?;
    let topic = options.topic.as_str();
    let partitions = partition_count(&options.bootstrap, topic, REQUEST_TIMEOUT)?.ok_or_else(|| {
        KafkaError::Config(format!(
            "topic '{topic}' does not exist at {}: check the name, or create it with `eddy produce --partitions N`",
            options.bootstrap
        ))
    })?;
    let mut config = client_config(&options.bootstrap, &Properties::new());
    config.set("group.id", "eddy-consume");
    config.set("enable.auto.commit", "false");
    let isolation = if options.read_committed {
        "read_committed"
    } else {
        "read_uncommitted"
    };
    config.set("isolation.level", isolation);
    for (k, v) in &options.properties {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create().map_err(|e| {
        KafkaError::Config(format!(
            "cannot create a consumer: {e}; check the consumer properties"
        ))
    })?;
    let start = if options.from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, start)
            .map_err(|e| KafkaError::Config(format!("cannot assign {topic}/{p}: {e}")))?;
    }
    consumer.assign(&tpl).map_err(|e| {
        KafkaError::broker(
            &format!("assigning the partitions of '{topic}'"),
            &options.bootstrap,
            e,
        )
    })?;
    let io = |e| KafkaError::Io {
        context: "writing records".into(),
        source: e,
    };
    let mut count = 0u64;
    let mut last_record = Instant::now();
    while !matches!(options.max, Some(m) if count >= m) {
        if options
            .idle_timeout
            .is_some_and(|t| last_record.elapsed() >= t)
        {
            break;
        }
        let msg = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            // The client retries transport errors by itself.
            Some(Err(_)) => continue,
            Some(Ok(msg)) => msg,
        };
        last_record = Instant::now();
        count += 1;
        let value = msg.payload().unwrap_or_default();
        match options.format {
            OutputFormat::Text => {
                out.write_all(value).map_err(io)?;
                out.write_all(b"\n").map_err(io)?;
            }
            OutputFormat::Json => {
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                let value_json = serde_json::from_slice::<serde_json::Value>(value)
                    .unwrap_or_else(|_| serde_json::Value::String(text(value)));
                let headers: serde_json::Map<String, serde_json::Value> = msg
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    serde_json::Value::String(text(h.value.unwrap_or_default())),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let line = serde_json::json!({
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                    "timestamp_ms": msg.timestamp().to_millis(),
                    "key": msg.key().map(text),
                    "value": value_json,
                    "headers": headers,
                });
                writeln!(out, "{line}").map_err(io)?;
            }
        }
    }
    out.flush().map_err(io)?;
    Ok(count)
}
