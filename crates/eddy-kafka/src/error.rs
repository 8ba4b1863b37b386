//! The errors of this crate's library functions (admin, produce, consume,
//! bench); processors report [`eddy_core::ProcessorError`]s instead.

use thiserror::Error;

/// What went wrong talking to Kafka, with what to do about it.
#[derive(Debug, Error)]
pub enum KafkaError {
    /// A setting is missing or wrong; the message names it and the fix.
    #[error("invalid Kafka configuration: {0}")]
    Config(String),
    /// The broker could not be reached or refused a request.
    #[error("{0}")]
    Broker(String),
    /// Input (a JSON line, a record) could not be read or written.
    #[error("{0}")]
    Data(String),
    /// Reading or writing a local stream failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl KafkaError {
    /// A broker error for `what`, with the client's error and the usual fix.
    pub(crate) fn broker(what: &str, bootstrap: &str, err: impl std::fmt::Display) -> Self {
        KafkaError::Broker(format!(
            "{what} failed at {bootstrap}: {err}; check that the broker runs \
             ('scripts/kafka status') and that the bootstrap address is right"
        ))
    }
}
