//! Topic administration and client configuration shared by the source, the
//! sink and the command-line functions.

use crate::KafkaError;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Client properties (`librdkafka` names, mostly the same as the Java
/// client's), applied in order after the crate's defaults.
pub type Properties = BTreeMap<String, String>;

/// A client configuration for `bootstrap` with `properties` on top.
pub(crate) fn client_config(bootstrap: &str, properties: &Properties) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    // librdkafka logs to stderr by default; its errors reach us as values.
    config.set("log_level", "3");
    for (k, v) in properties {
        config.set(k, v);
    }
    // rdkafka sets the client's log level after creating it, from the `log`
    // crate's level (which this crate does not use) rather than from the
    // `log_level` property: a user's `log_level` (with `debug`) would be
    // overridden without this.
    let level = properties.get("log_level").map_or("3", String::as_str);
    config.set_log_level(match level.trim() {
        "0" => RDKafkaLogLevel::Emerg,
        "1" => RDKafkaLogLevel::Alert,
        "2" => RDKafkaLogLevel::Critical,
        "4" => RDKafkaLogLevel::Warning,
        "5" => RDKafkaLogLevel::Notice,
        "6" => RDKafkaLogLevel::Info,
        "7" => RDKafkaLogLevel::Debug,
        _ => RDKafkaLogLevel::Error,
    });
    config
}

/// The connection properties among `properties` (security, SASL, TLS): what
/// a helper client (a dead-letter producer, a marker reader) shares with the
/// client it serves, whose other properties do not apply to it.
pub(crate) fn connection_properties(properties: &Properties) -> Properties {
    properties
        .iter()
        .filter(|(k, _)| {
            k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Checks a bootstrap address before any client is made from it.
pub(crate) fn check_bootstrap(bootstrap: &str) -> Result<(), KafkaError> {
    if bootstrap.trim().is_empty() {
        return Err(KafkaError::Config(
            "no bootstrap servers: give the broker address as host:port (e.g. the one 'scripts/kafka start' prints)"
                .into(),
        ));
    }
    Ok(())
}

/// Runs a future to completion on this thread. The admin client's futures
/// are completed by its own polling thread, so parking until woken suffices
/// and no async runtime is needed.
fn block_on<F: Future>(future: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// Creates `topic` with `partitions` partitions (replication factor 1 if
/// the cluster has one broker, else its default). Returns `false` if it
/// already existed, which is not an error.
pub fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<bool, KafkaError> {
    create_topic_with(bootstrap, topic, partitions, &[], timeout)
}

/// [`create_topic`] with topic configs (`cleanup.policy`, `segment.ms`, …).
pub(crate) fn create_topic_with(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
    timeout: Duration,
) -> Result<bool, KafkaError> {
    check_bootstrap(bootstrap)?;
    if partitions <= 0 {
        return Err(KafkaError::Config(format!(
            "topic '{topic}' needs at least one partition, not {partitions}"
        )));
    }
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap, &Properties::new())
        .create()
        .map_err(|e| KafkaError::broker("creating an admin client", bootstrap, e))?;
    let brokers = broker_count(bootstrap, timeout)?;
    let replication = if brokers <= 1 {
        TopicReplication::Fixed(1)
    } else {
        TopicReplication::Fixed(-1)
    };
    let new_topic = configs.iter().fold(
        NewTopic::new(topic, partitions, replication),
        |t, (k, v)| t.set(k, v),
    );
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let results = block_on(admin.create_topics([&new_topic], &options))
        .map_err(|e| KafkaError::broker(&format!("creating topic '{topic}'"), bootstrap, e))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((_, code))) => Err(KafkaError::broker(
            &format!("creating topic '{topic}'"),
            bootstrap,
            code,
        )),
        None => Err(KafkaError::Broker(format!(
            "creating topic '{topic}' at {bootstrap}: the broker returned no result; try again"
        ))),
    }
}

/// Number of brokers in the cluster.
fn broker_count(bootstrap: &str, timeout: Duration) -> Result<usize, KafkaError> {
    let consumer = metadata_client(bootstrap)?;
    let metadata = consumer
        .fetch_metadata(None, timeout)
        .map_err(|e| KafkaError::broker("reading cluster metadata", bootstrap, e))?;
    Ok(metadata.brokers().len())
}

fn metadata_client(bootstrap: &str) -> Result<BaseConsumer, KafkaError> {
    check_bootstrap(bootstrap)?;
    client_config(bootstrap, &Properties::new())
        .create()
        .map_err(|e| KafkaError::broker("creating a metadata client", bootstrap, e))
}

/// Number of partitions of `topic`, or `None` if it does not exist.
pub fn partition_count(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Option<i32>, KafkaError> {
    let consumer = metadata_client(bootstrap)?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(|e| {
        KafkaError::broker(
            &format!("reading metadata of topic '{topic}'"),
            bootstrap,
            e,
        )
    })?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    if t.error().is_some() || t.partitions().is_empty() {
        return Ok(None);
    }
    Ok(Some(t.partitions().len() as i32))
}

/// The end offset of each partition of `topic`, in partition order (for a
/// topic never compacted or truncated, the records written to each).
pub fn end_offsets(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i64>, KafkaError> {
    let consumer = metadata_client(bootstrap)?;
    let partitions = partition_count(bootstrap, topic, timeout)?.ok_or_else(|| {
        KafkaError::Config(format!(
            "topic '{topic}' does not exist at {bootstrap}: create it first"
        ))
    })?;
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, timeout)
                .map(|(_, high)| high)
                .map_err(|e| {
                    KafkaError::broker(&format!("reading offsets of {topic}/{p}"), bootstrap, e)
                })
        })
        .collect()
}
