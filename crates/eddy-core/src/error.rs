//! Error types shared by all layers.

use thiserror::Error;

/// An error raised by a processor; it fails the job it runs in.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct ProcessorError {
    /// What went wrong and, where known, what to do about it.
    pub message: String,
}

impl ProcessorError {
    /// Creates an error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        ProcessorError {
            message: message.into(),
        }
    }
}

/// Errors of building and running jobs.
#[derive(Debug, Error)]
pub enum EddyError {
    /// The job definition is invalid; the message names the part and the fix.
    #[error("invalid job definition: {0}")]
    InvalidJob(String),
    /// A stage of the job failed: a processor returned an error or panicked.
    #[error("stage '{stage}' failed: {cause}")]
    StageFailed {
        /// The name of the vertex whose processor failed.
        stage: String,
        /// The error message or the panic payload.
        cause: String,
    },
    /// The job was cancelled before it completed.
    #[error("job was cancelled")]
    Cancelled,
    /// An I/O error with the path or resource it concerns.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}
