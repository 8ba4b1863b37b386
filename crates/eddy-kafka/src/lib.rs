//! Kafka sources and sinks for Eddy pipelines, over librdkafka.
//!
//! This crate is the connector layer between the pipeline API and Apache
//! Kafka: [`KafkaSource`] implements `eddy_pipeline::Source` and
//! [`KafkaSink`] implements `eddy_pipeline::Sink`, so a pipeline reads and
//! writes topics like any other source or sink, and no rdkafka type leaks
//! into the pipeline API. [`cli`] holds the `eddy produce` and
//! `eddy consume` functions.
//!
//! In a job that takes snapshots, the source saves its offsets (and its
//! event-time state) and resumes from them after a restart; the sink makes
//! at-least-once output durable before each snapshot completes, and under
//! exactly-once writes each snapshot's output in one Kafka transaction once
//! the snapshot is durable, recording the commit in
//! [`COMMIT_MARKER_TOPIC`] so that a restart neither loses nor repeats it.
//!
//! ```no_run
//! use eddy_kafka::{KafkaSink, KafkaSource};
//! use eddy_pipeline::Pipeline;
//! use eddy_runtime::{Eddy, EddyConfig, JobConfig};
//!
//! let bootstrap = "127.0.0.1:9092";
//! let p = Pipeline::new();
//! p.read_from(KafkaSource::topic("lines").bootstrap(bootstrap).string())
//!     .map(|line: String| line.to_uppercase())
//!     .write_to(KafkaSink::topic("upper").bootstrap(bootstrap).string());
//! let eddy = Eddy::new(EddyConfig::default());
//! let job = eddy.submit(p, JobConfig::default()).unwrap();
//! job.cancel();
//! ```

#![forbid(unsafe_code)]

mod admin;
pub mod cli;
mod dead_letter;
mod epochs;
mod error;
mod event_time;
pub mod format;
mod murmur2;
mod poller;
mod record;
mod redelivery;
mod sink;
mod source;
mod transactional;

pub use admin::{create_topic, end_offsets, partition_count, Properties};
pub use dead_letter::{
    dead_letter_topic, DeadLetter, DeadLetterHandler, DeadLetterRecord, HEADER_OFFSET,
    HEADER_PARTITION, HEADER_REASON, HEADER_TOPIC,
};
pub use error::KafkaError;
pub use murmur2::{murmur2, partition_for_key};
pub use record::{KafkaRecord, ProducerRecord};
pub use sink::{Acks, AsIs, KafkaSink, KafkaSinkP, KeyBy, SinkMetrics, ToRecord, Unkeyed};
pub use source::{
    KafkaSource, KafkaSourceP, MapRecord, Projection, SourceMetrics, StartPosition, ValueOnly,
    WholeRecord, VALUE_BYTES_MAX_DEFAULT,
};
pub use transactional::COMMIT_MARKER_TOPIC;
