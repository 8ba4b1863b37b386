//! How the sink notices a producer that stopped delivering, and what it
//! salvages from it to send again.
//!
//! librdkafka retries on its own, so the sink normally has nothing to do
//! after a broker failure. But its idempotent producer was seen to get
//! stuck: twice in full runs of the broker tests it kept records in flight
//! for minutes after a broker restart, with the broker up again (the cause
//! inside librdkafka is not known). The sink watches
//! for that ([`StallWatch`]): records in flight and no delivery for
//! [`STALL_TIMEOUT`]. It then purges the producer, which hands every
//! unacknowledged record back through the delivery callback
//! ([`SinkContext`] keeps them, in the order they were sent), drops it,
//! creates a new one and sends them again. A record may then be written
//! twice (the broker may have stored it before the stall), never lost:
//! at-least-once, which is what the non-transactional sink promises.

use crate::dead_letter::DeliveryErrors;
use parking_lot::Mutex;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long records may wait in the producer, with not a single one
/// delivered, before the sink calls the producer stuck and replaces it.
///
/// A working producer that lost its broker reconnects within librdkafka's
/// `reconnect.backoff.max.ms` (10 s) once the broker is back, and gives up
/// on a request that got no answer after `request.timeout.ms` (30 s) to
/// retry it; 30 s of no delivery at all is past both. Shorter replaces
/// producers that would have recovered by themselves (each replacement may
/// write the records in flight twice); longer leaves a stuck sink idle
/// longer. Raise it with slow brokers whose requests take tens of seconds.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How many producers in a row the sink replaces without any delivery in
/// between before it fails the job.
///
/// Ten stalls of [`STALL_TIMEOUT`] are five minutes: what librdkafka's
/// `message.timeout.ms` gives a record before failing it. A broker that is
/// really gone then fails the job about when it would have without the
/// watch, instead of the sink replacing producers forever.
pub(crate) const RECOVERIES_IN_A_ROW_MAX: u32 = 10;

/// How long the sink waits for the purged producer to hand its records
/// back. The purge itself is synchronous; this only covers the producer's
/// own thread serving the delivery reports, which takes milliseconds.
pub(crate) const PURGE_REPORTS_WAIT: Duration = Duration::from_secs(10);

/// A record as the producer gets it: encoded, not yet acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Unsent {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Vec<u8>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) partition: Option<i32>,
    pub(crate) timestamp_ms: Option<i64>,
}

/// The records a purge handed back, each with the number the sink gave it
/// when it sent it.
///
/// Thread safety: filled by the producer's polling thread, taken by the
/// processor; the mutex is taken only while a producer is purged.
pub(crate) type Salvage = Arc<Mutex<Vec<(usize, Unsent)>>>;

/// The sink producer's context: counts deliveries and keeps the first
/// error (in [`DeliveryErrors`]), and keeps the records a purge hands back
/// instead of calling them failed. Each record carries its send number as
/// its delivery opaque, so that they are sent again in their first order.
pub(crate) struct SinkContext {
    pub(crate) errors: Arc<DeliveryErrors>,
    pub(crate) salvage: Salvage,
}

impl ClientContext for SinkContext {
    /// librdkafka's own log (its errors, and what `debug` asks for with
    /// `log_level=7`) goes to `tracing`, where the rest of Eddy logs.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
        }
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        match result {
            Ok(_) => {
                self.errors.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((
                RdKafkaError::MessageProduction(
                    RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight,
                ),
                msg,
            )) => {
                let headers = msg
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                let unsent = Unsent {
                    key: msg.key().map(<[u8]>::to_vec),
                    value: msg.payload().unwrap_or_default().to_vec(),
                    headers,
                    // The partition the first send chose (or was told), so
                    // that records without a key stay where they were.
                    partition: (msg.partition() >= 0).then_some(msg.partition()),
                    timestamp_ms: msg.timestamp().to_millis(),
                };
                self.salvage.lock().push((seq, unsent));
            }
            Err((e, msg)) => {
                self.errors.record(format!(
                    "delivering a record to topic '{}' failed: {e}; check that the broker runs and the topic accepts writes",
                    msg.topic()
                ));
            }
        }
    }
}

/// What [`StallWatch::check`] concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing waits, or something was delivered since the last check.
    Progress,
    /// Records wait, nothing delivered yet, not for [`STALL_TIMEOUT`].
    Waiting,
    /// Records waited [`STALL_TIMEOUT`] with nothing delivered: replace
    /// the producer.
    Stalled,
    /// Stalled again, after [`RECOVERIES_IN_A_ROW_MAX`] replacements with
    /// no delivery in between: fail.
    GiveUp,
}

/// Watches a producer's deliveries for a stall.
///
/// Law: it says [`Verdict::Stalled`] only after `timeout` passed with
/// records in flight at every check and the delivery count unchanged; any
/// delivery, or a check with nothing in flight, starts the wait over.
#[derive(Debug)]
pub(crate) struct StallWatch {
    timeout: Duration,
    recoveries_max: u32,
    delivered: u64,
    since: Instant,
    recoveries_in_a_row: u32,
}

impl StallWatch {
    pub(crate) fn new(timeout: Duration, recoveries_max: u32, now: Instant) -> StallWatch {
        StallWatch {
            timeout,
            recoveries_max,
            delivered: 0,
            since: now,
            recoveries_in_a_row: 0,
        }
    }

    /// Looks at the producer: `delivered` records acknowledged so far (a
    /// count that never goes back), `in_flight` waiting now.
    pub(crate) fn check(&mut self, delivered: u64, in_flight: usize, now: Instant) -> Verdict {
        if delivered != self.delivered {
            self.delivered = delivered;
            self.recoveries_in_a_row = 0;
            self.since = now;
            return Verdict::Progress;
        }
        if in_flight == 0 {
            self.since = now;
            return Verdict::Progress;
        }
        if now.duration_since(self.since) < self.timeout {
            return Verdict::Waiting;
        }
        if self.recoveries_in_a_row >= self.recoveries_max {
            return Verdict::GiveUp;
        }
        Verdict::Stalled
    }

    /// The producer was replaced: the wait starts over.
    pub(crate) fn recovered(&mut self, now: Instant) {
        self.recoveries_in_a_row += 1;
        self.since = now;
    }

    /// Replacements since the last delivery.
    pub(crate) fn recoveries_in_a_row(&self) -> u32 {
        self.recoveries_in_a_row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(30);

    #[test]
    fn when_records_wait_without_delivery_for_the_timeout_then_stalled() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(T, 3, t0);
        assert_eq!(w.check(0, 5, t0), Verdict::Waiting);
        assert_eq!(
            w.check(0, 5, t0 + T - Duration::from_millis(1)),
            Verdict::Waiting
        );
        assert_eq!(w.check(0, 5, t0 + T), Verdict::Stalled);
    }

    #[test]
    fn when_deliveries_progress_then_never_stalled() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(T, 3, t0);
        for i in 1..10u64 {
            let now = t0 + T * i as u32 / 2;
            assert_eq!(w.check(i, 5, now), Verdict::Progress);
        }
    }

    #[test]
    fn when_nothing_is_in_flight_then_idle_time_does_not_count() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(T, 3, t0);
        assert_eq!(w.check(0, 0, t0 + T * 10), Verdict::Progress);
        assert_eq!(w.check(0, 1, t0 + T * 10), Verdict::Waiting);
        assert_eq!(w.check(0, 1, t0 + T * 11), Verdict::Stalled);
    }

    #[test]
    fn when_recoveries_bring_no_delivery_then_it_gives_up_after_the_limit() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(T, 2, t0);
        let mut now = t0 + T;
        assert_eq!(w.check(0, 1, now), Verdict::Stalled);
        w.recovered(now);
        assert_eq!(w.check(0, 1, now), Verdict::Waiting, "the wait starts over");
        now += T;
        assert_eq!(w.check(0, 1, now), Verdict::Stalled);
        w.recovered(now);
        now += T;
        assert_eq!(w.check(0, 1, now), Verdict::GiveUp);
        assert_eq!(w.recoveries_in_a_row(), 2);
    }

    #[test]
    fn when_a_recovery_delivers_then_the_count_in_a_row_restarts() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(T, 1, t0);
        assert_eq!(w.check(0, 1, t0 + T), Verdict::Stalled);
        w.recovered(t0 + T);
        assert_eq!(w.check(7, 1, t0 + T * 2), Verdict::Progress);
        assert_eq!(w.recoveries_in_a_row(), 0);
        assert_eq!(w.check(7, 1, t0 + T * 4), Verdict::Stalled);
    }
}
