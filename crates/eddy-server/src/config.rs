//! The server's settings and their limits.

use crate::error::ServerError;
use std::net::{Ipv4Addr, SocketAddr};

/// The address the server binds by default: loopback only, so a node is
/// reachable from other machines only when the operator says so.
pub const BIND_DEFAULT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// The environment variable the CLI reads the bearer token from when no
/// `--token` is given.
pub const TOKEN_ENV: &str = "EDDY_TOKEN";

/// How the HTTP server runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port ([`crate::ServerHandle::addr`]
    /// tells which). Default [`BIND_DEFAULT`].
    pub bind: SocketAddr,
    /// When set, every mutating request (POST, PUT, DELETE, PATCH) must
    /// carry `Authorization: Bearer <token>`; reads stay open.
    pub token: Option<String>,
    /// Largest request body accepted (413 above). Default 1 MiB: a map
    /// value of that size is already unusual.
    pub body_bytes_max: usize,
    /// Longest request target (path and query) accepted (414 above).
    /// Default 8 KiB, what common proxies accept.
    pub uri_bytes_max: usize,
    /// Change streams open at once (503 above). Default 64: each holds a
    /// connection and a buffer of up to
    /// [`FEED_BUFFER_EVENTS`](crate::changes::FEED_BUFFER_EVENTS) events.
    pub streams_max: usize,
    /// Threads of the server's runtime in [`crate::start`]. Default 1:
    /// operations traffic is light, and the cores belong to the engine's
    /// workers; queries run on the runtime's blocking pool either way.
    pub worker_threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: BIND_DEFAULT,
            token: None,
            body_bytes_max: 1024 * 1024,
            uri_bytes_max: 8 * 1024,
            streams_max: 64,
            worker_threads: 1,
        }
    }
}

impl ServerConfig {
    /// The default configuration on another address.
    pub fn bind(addr: SocketAddr) -> Self {
        ServerConfig {
            bind: addr,
            ..ServerConfig::default()
        }
    }

    /// Sets the bearer token for mutating requests.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Checks every field; the error names the field and what is accepted.
    pub fn validate(&self) -> Result<(), ServerError> {
        if let Some(t) = &self.token {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ServerError::Config {
                    field: "ServerConfig::token",
                    reason: "the token must be non-empty printable ASCII without spaces (e.g. from `openssl rand -hex 32`); leave it unset to disable authentication".into(),
                });
            }
        }
        let checks: [(&'static str, usize, usize); 4] = [
            ("ServerConfig::body_bytes_max", self.body_bytes_max, 1),
            ("ServerConfig::uri_bytes_max", self.uri_bytes_max, 256),
            ("ServerConfig::streams_max", self.streams_max, 1),
            ("ServerConfig::worker_threads", self.worker_threads, 1),
        ];
        for (field, value, min) in checks {
            if value < min {
                return Err(ServerError::Config {
                    field,
                    reason: format!("{value} is too small; give at least {min}"),
                });
            }
        }
        Ok(())
    }
}
