//! Errors: [`ApiError`] for what a request gets back, [`ServerError`] for
//! what starting the server can fail with.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use eddy_grid::GridError;

/// An error answered to an HTTP request as `{"error": "..."}` with a status
/// code. The message says what was wrong and what to send instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status code.
    pub status: StatusCode,
    /// The message of the `error` field.
    pub message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: the named thing does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// The JSON body `{"error": message}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.message }).to_string()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"eddy\""),
            );
        }
        response
    }
}

impl From<GridError> for ApiError {
    fn from(e: GridError) -> Self {
        let status = match &e {
            GridError::NoSuchMap { .. } => StatusCode::NOT_FOUND,
            GridError::Parse(_)
            | GridError::InvalidPath { .. }
            | GridError::Json { .. }
            | GridError::InvalidConfig { .. } => StatusCode::BAD_REQUEST,
            GridError::TypeMismatch { .. } | GridError::ConfigConflict { .. } => {
                StatusCode::CONFLICT
            }
            // Failures of the node itself, not of the request.
            GridError::Encode { .. } | GridError::Io { .. } | GridError::CorruptSnapshot { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, e.to_string())
    }
}

/// What starting or running the server can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}; pick a free port with --bind (port 0 picks one) or stop the process that holds it")]
    Bind {
        /// The address that was asked for.
        addr: std::net::SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The server's runtime or thread could not be started.
    #[error(
        "cannot start the HTTP server's runtime: {0}; the process may be out of threads or memory"
    )]
    Runtime(#[source] std::io::Error),
    /// Serving connections failed.
    #[error("the HTTP server stopped with an error: {0}")]
    Serve(#[source] std::io::Error),
    /// The SQL catalog of the data directory could not be read, replayed
    /// or written.
    #[error("{reason}")]
    Catalog {
        /// What failed, where, and what to do.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid server configuration `{field}`: {reason}")]
    Config {
        /// The field, e.g. `ServerConfig::token`.
        field: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
}
