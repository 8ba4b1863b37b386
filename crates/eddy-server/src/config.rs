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
    /// When set, every read (GET) except `/health` and `/ready` must carry
    /// `Authorization: Bearer <read_token>` (or the write token): a node
    /// whose maps or SQL catalog are not for everyone who reaches it.
    pub read_token: Option<String>,
    /// Lets a node bound to an address other than loopback run without a
    /// token. Off by default: such a node would let anyone who reaches it
    /// run SQL (which reads topics and writes files), cancel jobs and
    /// change maps. [`crate::start`] logs a warning when it is used.
    pub allow_unauthenticated: bool,
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
            read_token: None,
            allow_unauthenticated: false,
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

    /// Sets the bearer token for reads.
    pub fn with_read_token(mut self, token: impl Into<String>) -> Self {
        self.read_token = Some(token.into());
        self
    }

    /// Allows a non-loopback address without a token (see
    /// [`allow_unauthenticated`](ServerConfig::allow_unauthenticated)).
    pub fn allowing_unauthenticated(mut self, allow: bool) -> Self {
        self.allow_unauthenticated = allow;
        self
    }

    /// Whether the node is reachable from other machines without a token
    /// because the operator allowed it.
    pub fn is_open_to_the_network(&self) -> bool {
        !self.bind.ip().is_loopback() && self.token.is_none()
    }

    /// Checks every field; the error names the field and what is accepted.
    pub fn validate(&self) -> Result<(), ServerError> {
        for (field, token) in [
            ("ServerConfig::token", &self.token),
            ("ServerConfig::read_token", &self.read_token),
        ] {
            if let Some(t) = token {
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ServerError::Config {
                        field,
                        reason: "the token must be non-empty printable ASCII without spaces (e.g. from `openssl rand -hex 32`); leave it unset to disable authentication".into(),
                    });
                }
            }
        }
        if self.is_open_to_the_network() && !self.allow_unauthenticated {
            return Err(ServerError::Config {
                field: "ServerConfig::token",
                reason: format!(
                    "the node would listen on {}, which other machines can reach, without a token: anyone there could run SQL, cancel jobs and change maps; set a token (--token or EDDY_TOKEN), bind 127.0.0.1, or, behind a network boundary that protects it, start with --allow-unauthenticated",
                    self.bind
                ),
            });
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
