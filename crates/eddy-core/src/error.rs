//! Error types shared by all layers.

use thiserror::Error;

impl EddyError {
    /// A copy of the error, for every handle that asks how the job ended
    /// (an I/O error keeps its kind and message).
    pub fn duplicate(&self) -> EddyError {
        match self {
            EddyError::InvalidJob(s) => EddyError::InvalidJob(s.clone()),
            EddyError::StageFailed { stage, cause } => EddyError::StageFailed {
                stage: stage.clone(),
                cause: cause.clone(),
            },
            EddyError::Cancelled => EddyError::Cancelled,
            EddyError::JobState(s) => EddyError::JobState(s.clone()),
            EddyError::SnapshotFailed(s) => EddyError::SnapshotFailed(s.clone()),
            EddyError::JobFailed(s) => EddyError::JobFailed(s.clone()),
            EddyError::Io { context, source } => EddyError::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
        }
    }
}

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
    /// A command does not apply to the job in its state (export from a
    /// stopped job, a snapshot of a job without a guarantee).
    #[error("{0}")]
    JobState(String),
    /// A snapshot could not be taken or written; the message says why.
    #[error("snapshot failed: {0}")]
    SnapshotFailed(String),
    /// The job failed for a reason other than a stage (its snapshots kept
    /// failing, its restart could not read them).
    #[error("job failed: {0}")]
    JobFailed(String),
    /// An I/O error with the path or resource it concerns.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}
