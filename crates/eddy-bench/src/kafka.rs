//! `eddy bench kafka`: Eddy's Kafka source → map → Kafka sink against a raw
//! librdkafka consume-and-produce loop over the same pre-loaded topic, in
//! one run against one broker, plus end-to-end latency at a fixed rate.

use anyhow::{anyhow, bail, Context};
use eddy::kafka::{
    create_topic, KafkaRecord, KafkaSink, KafkaSource, ProducerRecord, Properties, StartPosition,
};
use eddy::prelude::*;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::Instant;

type KafkaError = anyhow::Error;

/// The first delivery error of a producer, kept by its context.
#[derive(Default)]
struct DeliveryErrors {
    first: Mutex<Option<String>>,
}

impl DeliveryErrors {
    fn first(&self) -> Option<String> {
        self.first.lock().clone()
    }
}

/// A producer context that keeps the first delivery error.
struct ErrorKeepingContext {
    errors: Arc<DeliveryErrors>,
}

impl ClientContext for ErrorKeepingContext {}

impl ProducerContext for ErrorKeepingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, msg)) = result {
            self.errors.first.lock().get_or_insert_with(|| {
                format!("delivering a record to topic '{}' failed: {e}", msg.topic())
            });
        }
    }
}

/// A client configuration for `bootstrap` with `properties` on top.
fn client_config(bootstrap: &str, properties: &Properties) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config.set("log_level", "3");
    for (k, v) in properties {
        config.set(k, v);
    }
    config
}

/// What the benchmark runs.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Records pre-loaded and copied (the issue asks for at least 1M).
    pub records: u64,
    /// Value size in bytes.
    pub value_bytes: usize,
    /// Partitions of the input and output topics.
    pub partitions: i32,
    /// Records per second of the latency run.
    pub latency_rate_per_sec: u64,
    /// Duration of the latency run.
    pub latency_duration: Duration,
}

impl Default for BenchOptions {
    /// 1M records of 100 bytes over 4 partitions; latency at 10k records/s
    /// for 5 s: a moderate load that a local broker serves without queueing,
    /// so the figures show the path's latency, not a backlog's.
    fn default() -> Self {
        BenchOptions {
            records: 1_000_000,
            value_bytes: 100,
            partitions: 4,
            latency_rate_per_sec: 10_000,
            latency_duration: Duration::from_secs(5),
        }
    }
}

/// Throughput of one copy run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Throughput {
    /// Records copied.
    pub records: u64,
    /// Seconds taken.
    pub seconds: f64,
    /// Records per second.
    pub msgs_per_sec: f64,
    /// Value megabytes (10^6 bytes) per second.
    pub mb_per_sec: f64,
}

/// The benchmark's results.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchReport {
    /// The raw librdkafka copy loop.
    pub raw: Throughput,
    /// The Eddy pipeline.
    pub eddy: Throughput,
    /// Eddy's records per second over the raw loop's (the target is ≥ 0.9).
    pub ratio: f64,
    /// Records per second of the latency run.
    pub latency_rate_per_sec: u64,
    /// Median produce-to-consume latency through the Eddy pipeline, ms.
    pub latency_p50_ms: f64,
    /// 99th percentile latency, ms.
    pub latency_p99_ms: f64,
}

impl BenchReport {
    /// A human-readable table.
    pub fn to_text(&self) -> String {
        format!(
            "kafka copy, {} records\n  raw rdkafka : {:>10.0} msgs/s {:>7.1} MB/s\n  eddy        : {:>10.0} msgs/s {:>7.1} MB/s\n  ratio       : {:.2}\nlatency at {} msgs/s: p50 {:.1} ms, p99 {:.1} ms\n",
            self.raw.records,
            self.raw.msgs_per_sec,
            self.raw.mb_per_sec,
            self.eddy.msgs_per_sec,
            self.eddy.mb_per_sec,
            self.ratio,
            self.latency_rate_per_sec,
            self.latency_p50_ms,
            self.latency_p99_ms
        )
    }
}

fn producer(
    bootstrap: &str,
    errors: Arc<DeliveryErrors>,
) -> Result<ThreadedProducer<ErrorKeepingContext>, KafkaError> {
    let mut config = client_config(bootstrap, &Properties::new());
    config.set("enable.idempotence", "true");
    config.set("linger.ms", "5");
    config
        .create_with_context(ErrorKeepingContext { errors })
        .with_context(|| format!("creating a producer for {bootstrap}"))
}

fn send(
    p: &ThreadedProducer<ErrorKeepingContext>,
    topic: &str,
    key: &[u8],
    value: &[u8],
) -> Result<(), KafkaError> {
    let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).key(key).payload(value);
    loop {
        match p.send(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                record = back;
                p.poll(Duration::from_millis(1));
            }
            Err((e, _)) => bail!("cannot send to '{topic}': {e}"),
        }
    }
}

fn flush(
    p: &ThreadedProducer<ErrorKeepingContext>,
    errors: &DeliveryErrors,
    bootstrap: &str,
) -> Result<(), KafkaError> {
    p.flush(Duration::from_secs(120))
        .with_context(|| format!("flushing records to {bootstrap}"))?;
    errors.first().map_or(Ok(()), |e| Err(anyhow!(e)))
}

fn throughput(records: u64, value_bytes: usize, elapsed: Duration) -> Throughput {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    Throughput {
        records,
        seconds,
        msgs_per_sec: records as f64 / seconds,
        mb_per_sec: (records * value_bytes as u64) as f64 / seconds / 1e6,
    }
}

/// A fresh topic name, so that runs against one broker do not mix.
fn topic_name(what: &str) -> String {
    format!(
        "eddy-bench-{what}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    )
}

/// Runs the benchmark against the broker at `bootstrap`.
pub fn run_kafka_bench(bootstrap: &str, options: &BenchOptions) -> Result<BenchReport, KafkaError> {
    let timeout = Duration::from_secs(10);
    let input = topic_name("in");
    create_topic(bootstrap, &input, options.partitions, timeout)?;
    let errors = Arc::new(DeliveryErrors::default());
    let p = producer(bootstrap, errors.clone())?;
    let mut value = vec![b'x'; options.value_bytes];
    for n in 0..options.records {
        let key = (n % 10_000).to_string();
        let digits = n.to_string();
        let len = digits.len().min(value.len());
        value[..len].copy_from_slice(&digits.as_bytes()[..len]);
        send(&p, &input, key.as_bytes(), &value)?;
    }
    flush(&p, &errors, bootstrap)?;

    let raw = raw_copy(bootstrap, &input, options)?;
    let eddy = eddy_copy(bootstrap, &input, options)?;
    let (p50, p99) = latency(bootstrap, options)?;
    Ok(BenchReport {
        ratio: eddy.msgs_per_sec / raw.msgs_per_sec,
        raw,
        eddy,
        latency_rate_per_sec: options.latency_rate_per_sec,
        latency_p50_ms: p50,
        latency_p99_ms: p99,
    })
}

/// A consumer assigned all `partitions` of `topic` from their beginning.
fn consumer_from_beginning(
    bootstrap: &str,
    group: &str,
    properties: &Properties,
    topic: &str,
    partitions: i32,
) -> Result<BaseConsumer, KafkaError> {
    let mut config = client_config(bootstrap, properties);
    config.set("group.id", group);
    config.set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config
        .create()
        .with_context(|| format!("creating a consumer for {bootstrap}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer
        .assign(&tpl)
        .with_context(|| format!("assigning partitions of '{topic}'"))?;
    Ok(consumer)
}

/// The baseline: one consumer and one producer in a loop on one thread.
fn raw_copy(
    bootstrap: &str,
    input: &str,
    options: &BenchOptions,
) -> Result<Throughput, KafkaError> {
    let output = topic_name("raw-out");
    create_topic(
        bootstrap,
        &output,
        options.partitions,
        Duration::from_secs(10),
    )?;
    let consumer = consumer_from_beginning(
        bootstrap,
        "eddy-bench-raw",
        &Properties::new(),
        input,
        options.partitions,
    )?;
    let errors = Arc::new(DeliveryErrors::default());
    let producer = producer(bootstrap, errors.clone())?;
    let started = Instant::now();
    let mut copied = 0u64;
    let deadline = started + Duration::from_secs(300);
    while copied < options.records {
        if Instant::now() > deadline {
            bail!("the raw copy stalled after {copied} records");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                send(
                    &producer,
                    &output,
                    m.key().unwrap_or_default(),
                    m.payload().unwrap_or_default(),
                )?;
                copied += 1;
            }
            Some(Err(e)) => bail!("consuming from {bootstrap}: {e}"),
            None => {}
        }
    }
    flush(&producer, &errors, bootstrap)?;
    Ok(throughput(copied, options.value_bytes, started.elapsed()))
}

/// The same copy as an Eddy pipeline: Kafka source → map → Kafka sink.
fn eddy_copy(
    bootstrap: &str,
    input: &str,
    options: &BenchOptions,
) -> Result<Throughput, KafkaError> {
    let output = topic_name("eddy-out");
    create_topic(
        bootstrap,
        &output,
        options.partitions,
        Duration::from_secs(10),
    )?;
    let source = KafkaSource::topic(input)
        .bootstrap(bootstrap)
        .start(StartPosition::Earliest)
        .stop_at_end()
        .records();
    let metrics = source.metrics();
    let p = Pipeline::new();
    p.read_from(source)
        .map(|r: KafkaRecord<Vec<u8>, Vec<u8>>| ProducerRecord::new(r.key, r.value))
        .write_to(KafkaSink::topic(output).bootstrap(bootstrap).records());
    let eddy = Eddy::new(EddyConfig::default());
    let started = Instant::now();
    let job = eddy
        .submit(p, JobConfig::default().name("bench-kafka-copy"))
        .context("submitting the Eddy copy job")?;
    job.join().context("the Eddy copy job failed")?;
    Ok(throughput(
        metrics.records(),
        options.value_bytes,
        started.elapsed(),
    ))
}

/// Produce-to-consume latency through an Eddy pipeline at a fixed rate: a
/// producer writes the send time into each value; a pipeline copies the
/// topic; a consumer of the output measures now minus the send time.
fn latency(bootstrap: &str, options: &BenchOptions) -> Result<(f64, f64), KafkaError> {
    let input = topic_name("lat-in");
    let output = topic_name("lat-out");
    create_topic(
        bootstrap,
        &input,
        options.partitions,
        Duration::from_secs(10),
    )?;
    create_topic(
        bootstrap,
        &output,
        options.partitions,
        Duration::from_secs(10),
    )?;
    let p = Pipeline::new();
    p.read_from(
        KafkaSource::topic(input.as_str())
            .bootstrap(bootstrap)
            .start(StartPosition::Earliest)
            .string(),
    )
    .map(|v: String| v)
    .write_to(
        KafkaSink::topic(output.as_str())
            .bootstrap(bootstrap)
            .string(),
    );
    let eddy = Eddy::new(EddyConfig::default());
    let job = eddy
        .submit(p, JobConfig::default().name("bench-kafka-latency"))
        .context("submitting the latency job")?;

    // The measuring consumer must not add librdkafka's default 500 ms
    // fetch wait to what it measures.
    let fetch_wait = Properties::from([("fetch.wait.max.ms".to_string(), "5".to_string())]);
    let consumer = consumer_from_beginning(
        bootstrap,
        "eddy-bench-latency",
        &fetch_wait,
        &output,
        options.partitions,
    )?;

    let errors = Arc::new(DeliveryErrors::default());
    let producer = producer(bootstrap, errors.clone())?;
    let total = options.latency_rate_per_sec * options.latency_duration.as_secs().max(1);
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram bounds")?;
    let started = Instant::now();
    // Records sent in the first second only warm the path up (the source
    // connects and assigns its partitions meanwhile): not measured.
    let measured_from_us = micros_since_epoch() + 1_000_000;
    let total = total + options.latency_rate_per_sec;
    let mut sent = 0u64;
    let mut received = 0u64;
    let deadline = started + options.latency_duration + Duration::from_secs(30);
    while received < total && Instant::now() < deadline {
        // Send what is due (open loop), then read what arrived.
        let due = ((started.elapsed().as_secs_f64() * options.latency_rate_per_sec as f64) as u64)
            .min(total);
        while sent < due {
            let now_us = micros_since_epoch();
            send(
                &producer,
                &input,
                sent.to_string().as_bytes(),
                now_us.to_string().as_bytes(),
            )?;
            sent += 1;
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(1)) {
            let sent_us: u64 = std::str::from_utf8(m.payload().unwrap_or_default())
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            received += 1;
            if sent_us >= measured_from_us {
                histogram.saturating_record(micros_since_epoch().saturating_sub(sent_us).max(1));
            }
        }
    }
    job.cancel();
    match job.join() {
        Ok(()) | Err(EddyError::Cancelled) => {}
        Err(e) => return Err(anyhow!(e).context("the latency job failed")),
    }
    if histogram.is_empty() {
        bail!("the latency run received nothing");
    }
    Ok((
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
    ))
}

fn micros_since_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
