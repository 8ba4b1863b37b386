//! The record types a Kafka source emits and a Kafka sink takes.

use std::sync::Arc;

/// A record read from Kafka, decoded: what [`KafkaSource::records`]
/// emits, and what a [`KafkaSource::map_record`] function receives.
///
/// [`KafkaSource::records`]: crate::KafkaSource::records
/// [`KafkaSource::map_record`]: crate::KafkaSource::map_record
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaRecord<K, V> {
    /// The topic it was read from (shared by all records of the topic).
    pub topic: Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its timestamp in milliseconds since the epoch (create or log-append
    /// time, as the topic is configured), if it has one.
    pub timestamp_ms: Option<i64>,
    /// The decoded key, or `None` for a record without a key.
    pub key: Option<K>,
    /// The decoded value.
    pub value: V,
    /// Its headers in order; a header without a value has an empty one.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A record to write to Kafka: what a [`KafkaSink::records`] sink takes.
///
/// [`KafkaSink::records`]: crate::KafkaSink::records
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerRecord<K, V> {
    /// The key; records with equal keys land in the same partition (the Java
    /// client's murmur2 partitioning). `None`: a random partition.
    pub key: Option<K>,
    /// The value.
    pub value: V,
    /// Headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// A fixed partition instead of the key's.
    pub partition: Option<i32>,
    /// The record's timestamp in milliseconds; `None`: the time it is sent.
    pub timestamp_ms: Option<i64>,
}

impl<K, V> ProducerRecord<K, V> {
    /// A record with a key and a value, and nothing else set.
    pub fn new(key: Option<K>, value: V) -> Self {
        ProducerRecord {
            key,
            value,
            headers: Vec::new(),
            partition: None,
            timestamp_ms: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}
