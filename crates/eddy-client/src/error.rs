//! What a client call can fail with.

/// A failed call to an Eddy node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an error status; `message` is its `error` field.
    #[error("the node answered {status}: {message}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// The node's explanation, which says what to change.
        message: String,
    },
    /// The node could not be reached or the connection failed.
    #[error("cannot reach the node at {url}: {reason}; check that `eddy serve` runs there and the address (--http) is right")]
    Transport {
        /// The URL that was called.
        url: String,
        /// The underlying error.
        reason: String,
    },
    /// The node's answer was not the JSON this client expects.
    #[error("unexpected answer from {url}: {reason}; the node may run another version of Eddy")]
    Decode {
        /// The URL that was called.
        url: String,
        /// What did not fit.
        reason: String,
    },
    /// The base URL is not usable.
    #[error("invalid node URL '{0}': give it as http://host:port, e.g. http://127.0.0.1:8080")]
    InvalidUrl(String),
}

impl ClientError {
    /// The HTTP status, for errors the node answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}
