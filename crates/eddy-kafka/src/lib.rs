//! Kafka sources and sinks for Eddy pipelines.
