//! A blocking handle on one PostgreSQL connection that reconnects after a
//! loss, for the connectors that run on threads of their own.

use crate::error::is_network;
use crate::PgError;
use std::future::Future;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio_postgres::{Client, NoTls};

/// Retry policy for transient errors: exponential backoff from `initial`
/// doubling up to `max`, for at most `attempts` tries in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait before the first retry.
    pub initial: Duration,
    /// Longest wait between two tries.
    pub max: Duration,
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
}

impl Default for Backoff {
    /// 100 ms doubling to 2 s, 10 tries: rides out a server restart or a
    /// failover of ~10 s before the job fails, which is long enough for a
    /// planned restart and short enough that a dead database is reported
    /// while someone is still watching.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            attempts: 10,
        }
    }
}

/// One connection plus the single-threaded runtime that drives it.
///
/// Thread safety: not shared; each sink instance, source instance and map
/// store owns one (the store behind a mutex).
pub(crate) struct Conn {
    url: String,
    rt: Runtime,
    client: Option<Client>,
}

impl Conn {
    /// A handle that connects on first use.
    pub(crate) fn new(url: &str) -> Result<Conn, PgError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PgError::Config(format!("cannot start a tokio runtime: {e}")))?;
        Ok(Conn {
            url: url.to_string(),
            rt,
            client: None,
        })
    }

    /// Runs `op` with a live client, connecting first when needed. A
    /// transient failure drops the client so that the next call reconnects.
    pub(crate) fn run<R, F, Fut>(&mut self, op: F) -> Result<R, PgError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = (Client, Result<R, PgError>)>,
    {
        let client = match self.client.take() {
            Some(c) if !c.is_closed() => c,
            _ => self.connect()?,
        };
        let (client, result) = self.rt.block_on(op(client));
        if !matches!(&result, Err(e) if e.is_transient()) {
            self.client = Some(client);
        }
        result
    }

    /// Like [`run`](Conn::run), retrying transient failures with `backoff`.
    pub(crate) fn run_retrying<R, F, Fut>(&mut self, backoff: Backoff, op: F) -> Result<R, PgError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = (Client, Result<R, PgError>)>,
    {
        let mut wait = backoff.initial;
        let mut attempt = 1;
        loop {
            match self.run(&op) {
                Err(e) if e.is_transient() && attempt < backoff.attempts.max(1) => {
                    tracing::warn!(
                        error = %e,
                        attempt,
                        retry_in_ms = wait.as_millis() as u64,
                        "PostgreSQL operation failed; retrying"
                    );
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(backoff.max);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn connect(&mut self) -> Result<Client, PgError> {
        let (client, connection) = self
            .rt
            .block_on(tokio_postgres::connect(&self.url, NoTls))
            .map_err(|e| match e.as_db_error() {
                // Authentication or unknown database: retrying will not help.
                Some(db) if !db.code().code().starts_with("08") => {
                    PgError::Config(format!("connecting failed: {}", db.message()))
                }
                None if !is_network(&e) => PgError::Config(format!(
                    "connecting failed: {e}; check the connection string"
                )),
                _ => PgError::Connection(e.to_string()),
            })?;
        // The connection task runs whenever the runtime is driven, that is
        // during every `block_on`; it ends when the client is dropped.
        self.rt.spawn(async move {
            // The connection ends with an error when the server goes away;
            // the next operation finds the client closed and reconnects.
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "PostgreSQL connection lost");
            }
        });
        tracing::debug!("connected to PostgreSQL");
        Ok(client)
    }
}
